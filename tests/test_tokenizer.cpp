// The tokenizer: reference ids of both Llama tokenizer families, round trips, streaming
// decoding, special tokens, BOS handling, error reporting and the split-regex matcher.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bitttt/error.h"
#include "bitttt/tokenizer.h"
#include "model/tokenizer_pretok.h"
#include "model/tokenizer_utf8.h"
#include "model/unicode_tables.h"
#include "test_util.h"

using namespace bitttt;
using nlohmann::json;
using Ids = std::vector<std::int32_t>;

namespace {

const char* kLlama3 = "models/llama3-tokenizer/tokenizer.json";
const char* kStories = "models/stories260K-hf/tokenizer.json";

std::string shared(const std::string& rel) { return test::shared_dir() + "/" + rel; }

json read_json(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return json::parse(in);
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Loaded once per test run (the Llama-3 file is 9 MB).
const json& llama3_json() {
    static const json j = read_json(shared(kLlama3));
    return j;
}
const Tokenizer& llama3() {
    static const Tokenizer t = Tokenizer::from_json(llama3_json(), shared(kLlama3));
    return t;
}
const Tokenizer& stories() {
    static const Tokenizer t = Tokenizer::load(shared(kStories));
    return t;
}

// Texts that exercise every class of the split regex and the byte-level / byte-fallback paths.
const std::vector<std::string>& varied_texts() {
    static const std::vector<std::string> texts = {
        "",
        "Hello, world!",
        " leading space",
        "   three leading spaces and trailing   ",
        "tabs\tand\nnewlines\r\nand CR\ronly",
        "\n\n\n",
        "a  b   c    d",
        "digits 1234567890 and 3.14159, 1,000,000",
        "日本語のテキスト、中文文本。",
        "Emoji: 👍 🦙 😶‍🌫️ 👨‍👩‍👧‍👦 🇫🇷",
        "combining: e\u0301 a\u0300\u0316 n\u0303",
        "Arabic: مرحبا بالعالم ١٢٣",
        "NBSP:\u00a0here\u00a0\u00a0twice, ideographic\u3000space, NEL\u0085, LS\u2028",
        "Ünïcödé Ωmega ß ſ ﬁ ligature ½ ② Ⅻ",
        "curly “quotes” and ‘single’ ones’ don't I'M we'LL",
        "code: int main() { return 0; }\n\t// done",
        "control \x01\x02\x1f\x7f bytes",
        "private use \xee\x80\x80 and U+FFFD \xef\xbf\xbd",
        "<0x41> looks like a byte token; <s> and </s> and <|eot_id|> literally",
    };
    return texts;
}

// FNV-1a 64 of an id list.
std::uint64_t fnv(const Ids& ids) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::int32_t id : ids) {
        h ^= static_cast<std::uint64_t>(static_cast<std::uint32_t>(id));
        h *= 0x100000001b3ull;
    }
    return h;
}

// Streams ids through a StreamDecoder; checks every piece is whole UTF-8; returns the text.
std::string stream_decode(const Tokenizer& tok, const Ids& ids, bool skip_special = false) {
    Tokenizer::StreamDecoder sd(tok, skip_special);
    std::string all;
    for (std::int32_t id : ids) {
        std::string piece = sd.push(id);
        INFO("piece after id " << id);
        CHECK(utf8::is_valid(piece));
        all += piece;
    }
    std::string tail = sd.flush();
    CHECK(utf8::is_valid(tail));
    return all + tail;
}

// A minimal valid tokenizer.json to break in the error tests.
json tiny() {
    return json::parse(R"({
      "version": "1.0",
      "added_tokens": [{"id": 3, "content": "<s>", "special": true, "normalized": false}],
      "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<s>": 3}, "merges": ["a b"]}
    })");
}

template <class E>
std::string error_message(const json& j) {
    try {
        Tokenizer::from_json(j, "tok.json");
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("wrong exception type: " << e.what());
    }
    FAIL("no exception thrown");
    return {};
}

std::vector<std::string> llama3_split(const std::string& s) { return pretok::split(pretok::Pattern::Llama3, s); }
std::vector<std::string> gpt2_split(const std::string& s) { return pretok::split(pretok::Pattern::Gpt2, s); }
using Pieces = std::vector<std::string>;

}  // namespace

// ---- reference vectors ---------------------------------------------------------------------

TEST_CASE("tokenizer: Llama-3 reference ids (llama.cpp test vectors)", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED("tests/llama3-tokenizer-cases.json");
    BITTTT_REQUIRE_SHARED(kLlama3);
    json cases = read_json(shared("tests/llama3-tokenizer-cases.json"));
    bool add_bos = cases.at("add_bos").get<bool>();
    CHECK_FALSE(add_bos);
    REQUIRE(cases.at("cases").size() >= 20);
    for (const auto& c : cases.at("cases")) {
        std::string text = c.at("text").get<std::string>();
        INFO("text: " << json(text).dump());
        CHECK(llama3().encode(text, add_bos) == c.at("ids").get<Ids>());
        // This tokenizer.json adds no BOS, so add_special changes nothing.
        CHECK(llama3().encode(text, true) == c.at("ids").get<Ids>());
        CHECK(llama3().decode(c.at("ids").get<Ids>()) == text);
    }
}

TEST_CASE("tokenizer: stories260K reference ids (llama2.c encode)", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED("tests/stories260K-tokenizer-cases.json");
    BITTTT_REQUIRE_SHARED(kStories);
    json cases = read_json(shared("tests/stories260K-tokenizer-cases.json"));
    bool add_bos = cases.at("add_bos").get<bool>();
    CHECK(add_bos);
    REQUIRE(cases.at("cases").size() >= 20);
    for (const auto& c : cases.at("cases")) {
        std::string text = c.at("text").get<std::string>();
        INFO("text: " << json(text).dump());
        Ids expected = c.at("ids").get<Ids>();
        CHECK(stories().encode(text, add_bos) == expected);
        REQUIRE(!expected.empty());
        CHECK(stories().encode(text, false) == Ids(expected.begin() + 1, expected.end()));
    }
}

TEST_CASE("tokenizer: whole wikitext-2 test set matches Hugging Face tokenizers", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED("text/wikitext-2-raw/wiki.test.raw.txt");
    BITTTT_REQUIRE_SHARED(kLlama3);
    BITTTT_REQUIRE_SHARED(kStories);
    std::string text = read_text(shared("text/wikitext-2-raw/wiki.test.raw.txt"));
    // Counts and FNV-1a hashes of the ids Hugging Face tokenizers 0.23.2 gives (no BOS).
    Ids l3 = llama3().encode(text, false);
    CHECK(l3.size() == 289076);
    CHECK(fnv(l3) == 0x2144efcb4c3fb2a4ull);
    CHECK(llama3().decode(l3) == text);
    Ids st = stories().encode(text, false);
    CHECK(st.size() == 815069);
    CHECK(fnv(st) == 0xfb1489678eb05ca0ull);
}

// ---- round trips ----------------------------------------------------------------------------

TEST_CASE("tokenizer: Llama-3 decode(encode(x)) == x", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    for (const std::string& text : varied_texts()) {
        INFO("text: " << json(text).dump());
        Ids ids = llama3().encode(text, false);
        CHECK(llama3().decode(ids) == text);
        CHECK(stream_decode(llama3(), ids) == text);
    }
}

TEST_CASE("tokenizer: stories260K round trip strips exactly the space the normalizer adds", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kStories);
    for (const std::string& text : varied_texts()) {
        INFO("text: " << json(text).dump());
        // Prepend "▁" + Replace " " -> "▁" on the way in; Replace "▁" -> " " and Strip(start 1)
        // on the way out: without BOS the added space is the first character and is stripped.
        Ids ids = stories().encode(text, false);
        CHECK(stories().decode(ids) == text);
        // With BOS, "<s>" comes first, so Strip finds no leading space: HF gives "<s> " + text.
        Ids with_bos = stories().encode(text);
        REQUIRE(with_bos.at(0) == 1);
        CHECK(stories().decode(with_bos) == (text.empty() ? "<s>" : "<s> " + text));
        // Skipping the special BOS before the decoder runs brings the strip back.
        CHECK(stories().decode(with_bos, true) == text);
    }
    // The one thing that does not round trip: a literal U+2581 reads as a space (as in
    // SentencePiece).
    CHECK(stories().decode(stories().encode("a\u2581b", false)) == "a b");
}

TEST_CASE("tokenizer: invalid UTF-8 input is made valid like from_utf8_lossy", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    CHECK(llama3().encode("a\xff" "b", false) == llama3().encode("a\uFFFD" "b", false));
    // A truncated 3-byte sequence is one maximal subpart: one U+FFFD.
    CHECK(llama3().encode("x\xe2\x96", false) == llama3().encode("x\uFFFD", false));
    CHECK(utf8::lossy("\xe2\x96" "a\xf0\x9f\x91") == "\uFFFD" "a" "\uFFFD");
    CHECK(utf8::lossy("\xed\xa0\x80") == "\uFFFD\uFFFD\uFFFD");  // surrogates: 3 subparts
    CHECK(utf8::lossy("\xc0\xaf") == "\uFFFD\uFFFD");
}

// ---- streaming ------------------------------------------------------------------------------

TEST_CASE("tokenizer: stream decoding equals decode() and holds split characters", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    BITTTT_REQUIRE_SHARED(kStories);
    for (const std::string& text : varied_texts()) {
        INFO("text: " << json(text).dump());
        for (bool skip : {false, true}) {
            Ids a = llama3().encode(text, true, true);
            CHECK(stream_decode(llama3(), a, skip) == llama3().decode(a, skip));
            Ids b = stories().encode(text, true, true);
            CHECK(stream_decode(stories(), b, skip) == stories().decode(b, skip));
        }
    }

    SECTION("Llama-3: an emoji split over byte-level tokens comes out whole") {
        // " this is 🦙.cpp" -> " this", " is", " \xF0\x9F", "\xA6", "\x99", ".cpp"
        Ids ids = {420, 374, 11410, 99, 247, 13, 11055};
        Tokenizer::StreamDecoder sd(llama3());
        CHECK(sd.push(420) == " this");
        CHECK(sd.push(374) == " is");
        CHECK(sd.push(11410) == " ");  // the space is complete, the emoji's first bytes are held
        CHECK(sd.push(99) == "");
        CHECK(sd.push(247) == "🦙");
        CHECK(sd.push(13) == ".");
        CHECK(sd.push(11055) == "cpp");
        CHECK(sd.flush() == "");
        CHECK(llama3().decode(ids) == " this is 🦙.cpp");
    }
    SECTION("Llama-3: an incomplete character becomes U+FFFD at flush") {
        Tokenizer::StreamDecoder sd(llama3());
        CHECK(sd.push(158) == "");  // 'â' = byte 0xE2, the start of a 3-byte character
        CHECK(sd.flush() == "\uFFFD");
        CHECK(llama3().decode({158}) == "\uFFFD");
        // After flush a new stream starts.
        CHECK(sd.push(9906) == "Hello");
        // A character straddling prompt and continuation comes out with the continuation.
        Tokenizer::StreamDecoder cont(llama3());
        cont.prefill({420, 374, 11410, 99});  // " this is" + the first 3 bytes of 🦙
        CHECK(cont.push(247) == "🦙");
    }
    SECTION("stories260K: byte-fallback tokens are held until the run ends") {
        // "👍" -> <0xF0><0x9F><0x91><0x8D> (ids 243 162 148 144)
        Tokenizer::StreamDecoder sd(stories());
        CHECK(sd.push(410) == "");  // "▁": a space that Strip(start 1) removes at stream start
        CHECK(sd.push(243) == "");
        CHECK(sd.push(162) == "");
        CHECK(sd.push(148) == "");
        CHECK(sd.push(144) == "");
        CHECK(sd.push(261) == "👍 a");  // "▁a" ends the byte run
        CHECK(sd.flush() == "");
        // An invalid run: HF turns every byte of it into U+FFFD, even a valid "▁" inside.
        CHECK(stories().decode({229, 153, 132}) == "\u2581");
        CHECK(stories().decode({229, 153, 132, 258}) == "\uFFFD\uFFFD\uFFFD\uFFFD");
        CHECK(stream_decode(stories(), {229, 153, 132, 258, 261}) == "\uFFFD\uFFFD\uFFFD\uFFFD a");
        CHECK(stream_decode(stories(), {229}) == "\uFFFD");
    }
    SECTION("stories260K: only the first token of a stream loses its leading space") {
        Ids ids = stories().encode("Once upon a time", false);  // "▁Once" "▁upon" "▁a" "▁time"
        Tokenizer::StreamDecoder sd(stories());
        CHECK(sd.push(ids[0]) == "Once");
        CHECK(sd.push(ids[1]) == " upon");
        CHECK(sd.push(ids[2]) == " a");
        CHECK(sd.push(ids[3]) == " time");
        CHECK(sd.flush() == "");
        // Continuing after a prompt: prefill it, then only the continuation comes out.
        Tokenizer::StreamDecoder cont(stories());
        cont.prefill({ids[0], ids[1]});
        CHECK(cont.push(ids[2]) == " a");
        // A fresh stream over the generated ids alone strips, as HF's decode of them does.
        CHECK(stream_decode(stories(), {ids[2], ids[3]}) == "a time");
        CHECK(stories().decode({ids[2], ids[3]}) == "a time");
    }
    SECTION("random id sequences") {
        std::mt19937 rng(7);
        for (int n = 0; n < 300; ++n) {
            Ids a, b;
            int len = static_cast<int>(rng() % 12);
            for (int k = 0; k < len; ++k) {
                // Bias towards single bytes (partial characters) and specials.
                a.push_back(rng() % 3 == 0 ? static_cast<std::int32_t>(rng() % 256)
                                           : static_cast<std::int32_t>(rng() % 128256));
                b.push_back(rng() % 2 == 0 ? static_cast<std::int32_t>(rng() % 259) : static_cast<std::int32_t>(rng() % 512));
            }
            for (bool skip : {false, true}) {
                CHECK(stream_decode(llama3(), a, skip) == llama3().decode(a, skip));
                CHECK(stream_decode(stories(), b, skip) == stories().decode(b, skip));
            }
        }
    }
}

// ---- special tokens and BOS -----------------------------------------------------------------

TEST_CASE("tokenizer: special tokens are matched only with parse_special", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    BITTTT_REQUIRE_SHARED(kStories);
    const std::string chat = "<|begin_of_text|>Hello<|eot_id|>";
    CHECK(llama3().encode(chat, false, true) == Ids{128000, 9906, 128009});
    // Literal text: the same ids HF gives with its special tokens removed.
    Ids literal = {27, 91, 7413, 3659, 4424, 91, 29, 9906, 27, 91, 68, 354, 851, 91, 29};
    CHECK(llama3().encode(chat, false, false) == literal);
    CHECK(llama3().encode(chat) == literal);
    CHECK(llama3().decode(literal) == chat);
    CHECK(llama3().decode({128000, 9906, 128009}) == chat);
    CHECK(llama3().decode({128000, 9906, 128009}, true) == "Hello");
    CHECK(llama3().is_special(128009));
    CHECK_FALSE(llama3().is_special(9906));
    CHECK(llama3().token_id("<|eot_id|>") == 128009);
    CHECK(llama3().token_id("Hello") == 9906);
    CHECK_FALSE(llama3().token_id("no such token").has_value());
    CHECK(llama3().piece(128009) == "<|eot_id|>");
    CHECK(llama3().piece(22691) == "\u0120Hello");  // "ĠHello": byte-level form
    CHECK(llama3().piece(-1).empty());
    CHECK(llama3().piece(999999).empty());
    CHECK(llama3().vocab_size() == 128256);

    // stories260K: with matching on, "<s>" in text becomes id 1 (the README's note), and the
    // text after it is a new segment that gets its own "▁".
    CHECK(stories().encode("<s>Hello</s>", true, true) == Ids{1, 1, 346, 306, 414, 2});
    CHECK(stories().encode("Hello <s> world", true, true) == Ids{1, 346, 306, 414, 410, 1, 410, 263, 304, 341});
    Ids plain = stories().encode("<s>Hello</s>", true, false);
    CHECK(plain == Ids{1, 410, 504, 419, 505, 440, 411, 306, 414, 504, 492, 419, 505});
    CHECK(stories().vocab_size() == 512);
    CHECK(stories().is_special(1));
    CHECK(stories().piece(261) == "\u2581a");
}

TEST_CASE("tokenizer: BOS follows the post-processor", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    BITTTT_REQUIRE_SHARED(kStories);
    SECTION("first Llama-3 release: ByteLevel post-processor adds nothing") {
        CHECK_FALSE(llama3().adds_bos());
        CHECK_FALSE(llama3().bos_id().has_value());
        CHECK(llama3().encode("Hello") == Ids{9906});
    }
    SECTION("later Llama-3 releases: Sequence[ByteLevel, TemplateProcessing]") {
        json j = llama3_json();
        j["post_processor"] = json::parse(R"({"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                      "tokens": ["<|begin_of_text|>"]}}}]})");
        Tokenizer t = Tokenizer::from_json(j, "llama3-later/tokenizer.json");
        CHECK(t.adds_bos());
        CHECK(t.bos_id() == 128000);
        CHECK(t.encode("Hello") == Ids{128000, 9906});
        CHECK(t.encode("Hello", false) == Ids{9906});
        CHECK(t.encode("") == Ids{128000});
        CHECK(t.decode(t.encode("Hello"), true) == "Hello");
    }
    SECTION("stories260K: TemplateProcessing puts <s> first") {
        CHECK(stories().adds_bos());
        CHECK(stories().bos_id() == 1);
        CHECK(stories().prefix_ids() == Ids{1});
        CHECK(stories().suffix_ids().empty());
        CHECK(stories().encode("") == Ids{1});
        CHECK(stories().encode("", false).empty());
    }
    SECTION("a template with a suffix (EOS after $A)") {
        json j = read_json(shared(kStories));
        j["post_processor"]["single"].push_back(json::parse(R"({"SpecialToken": {"id": "</s>", "type_id": 0}})"));
        j["post_processor"]["special_tokens"]["</s>"] = json::parse(R"({"id": "</s>", "ids": [2], "tokens": ["</s>"]})");
        Tokenizer t = Tokenizer::from_json(j, "tokenizer.json");
        CHECK(t.encode("a") == Ids{1, 261, 2});
        CHECK(t.suffix_ids() == Ids{2});
    }
}

TEST_CASE("tokenizer: encode is thread-safe", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    const std::string text = "The quick brown fox jumps over the lazy dog. 日本語 1234567 ";
    std::string big;
    for (int i = 0; i < 200; ++i) big += text;
    Ids expected = llama3().encode(big);
    std::vector<Ids> got(4);
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < got.size(); ++k) threads.emplace_back([&, k] { got[k] = llama3().encode(big); });
    for (auto& th : threads) th.join();
    for (const Ids& g : got) CHECK(g == expected);
}

// ---- other supported components (checked against HF tokenizers 0.23.2) ----------------------

TEST_CASE("tokenizer: GPT-2 style ByteLevel pre-tokenizer and added-token options", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kLlama3);
    json j = llama3_json();
    j["pre_tokenizer"] = json::parse(R"({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                                         "use_regex": true})");
    j["added_tokens"].push_back(json::parse(R"({"id": 128256, "content": "XY", "single_word": false, "lstrip": false,
        "rstrip": true, "normalized": false, "special": false})"));
    j["added_tokens"].push_back(json::parse(R"({"id": 13997, "content": "abc", "single_word": true, "lstrip": false,
        "rstrip": false, "normalized": false, "special": false})"));
    Tokenizer t = Tokenizer::from_json(j, "gpt2-style.json");
    // The expected ids are what HF tokenizers gives for the same tokenizer.json.
    CHECK(t.encode("Hello world's 123") == Ids{22691, 1917, 596, 220, 4513});
    // "XY" is in the vocabulary (16760): HF gives the added token that id, whatever the file says.
    CHECK(t.token_id("XY") == 16760);
    CHECK(t.encode("aXY  b") == Ids{264, 16760, 293});  // rstrip eats the spaces after XY
    CHECK(t.encode("abc zabc") == Ids{13997, 1167, 13997});  // non-special: always matched
    CHECK(t.encode("xabc") == Ids{865, 13997});  // "xabc": not a single word, so not matched
    CHECK(t.decode(t.encode("Hello world")) == " Hello world");
}

TEST_CASE("tokenizer: Metaspace pre-tokenizer and decoder", "[tokenizer]") {
    BITTTT_REQUIRE_SHARED(kStories);
    json j = read_json(shared(kStories));
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = json::parse(R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                                         "split": true})");
    j["decoder"] = json::parse(R"({"type": "Sequence", "decoders": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true},
        {"type": "ByteFallback"}, {"type": "Fuse"}]})");
    Tokenizer t = Tokenizer::from_json(j, "metaspace.json");
    // Same ids as the legacy normalizer form for plain text...
    CHECK(t.encode("Once upon a time") == stories().encode("Once upon a time"));
    // ...but "first" prepends only at the very start, not after a special token.
    CHECK(t.encode("<s>Hello", true, true) == Ids{1, 1, 440, 411, 306, 414});
    CHECK(t.decode(t.encode("Once upon a time", false)) == "Once upon a time");
}

// ---- errors ---------------------------------------------------------------------------------

TEST_CASE("tokenizer: malformed and unsupported tokenizer.json", "[tokenizer]") {
    CHECK_NOTHROW(Tokenizer::from_json(tiny(), "tok.json"));
    CHECK(Tokenizer::from_json(tiny(), "tok.json").encode("aab") == Ids{0, 2});

    json j = tiny();
    j["model"]["type"] = "Unigram";
    CHECK(error_message<UnsupportedError>(j) == "tok.json: model type 'Unigram' is not supported (supported: BPE)");

    j = tiny();
    j.erase("model");
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("tok.json") && Catch::Contains("'model' is missing"));

    j = tiny();
    j["model"]["vocab"] = json::array();
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.vocab' must be an object"));

    j = tiny();
    j["model"]["vocab"]["c"] = -4;
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.vocab.c' must be in"));

    j = tiny();
    j["model"]["vocab"]["c"] = "7";
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.vocab.c' must be an integer"));

    j = tiny();
    j["model"]["merges"] = json::array({"a c"});
    CHECK_THAT(error_message<FormatError>(j),
               Catch::Contains("'model.merges[0]'") && Catch::Contains("\"c\", which is not in the vocabulary"));

    j = tiny();
    j["model"]["merges"] = json::array({"ab"});
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.merges[0]' must be two tokens"));

    j = tiny();
    j["model"]["merges"] = json::parse(R"([["a", "b"]])");  // the pair form is fine
    CHECK_NOTHROW(Tokenizer::from_json(j, "tok.json"));
    j["model"]["merges"] = json::parse(R"([["a", 1]])");
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.merges[0]' must be a string"));

    j = tiny();
    j["model"]["merges"] = "a b";
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.merges' must be an array"));

    j = tiny();
    j["model"]["unk_token"] = "<unk>";
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'model.unk_token' \"<unk>\" is not in the vocabulary"));

    j = tiny();
    j["model"]["dropout"] = 0.1;
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("dropout"));

    j = tiny();
    j["added_tokens"][0].erase("content");
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'added_tokens[0].content' is missing"));

    j = tiny();
    j["normalizer"] = json::parse(R"({"type": "NFKC"})");
    CHECK(error_message<UnsupportedError>(j) ==
          "tok.json: normalizer 'NFKC' is not supported (supported: Sequence, Prepend, Replace)");

    j = tiny();
    j["normalizer"] = json::parse(R"({"type": "Replace", "pattern": {"Regex": " +"}, "content": " "})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("normalizer Replace with a Regex pattern"));

    j = tiny();
    j["pre_tokenizer"] = json::parse(R"({"type": "Whitespace"})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("pre_tokenizer 'Whitespace' is not supported"));

    j = tiny();
    j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Isolated",
                                         "invert": false})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("pre_tokenizer Split regex '\\d+' is not supported"));

    j = tiny();
    j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"Regex": ""}, "behavior": "Removed"})");
    j["pre_tokenizer"]["pattern"]["Regex"] = std::string(pretok::pattern_source(pretok::Pattern::Llama3));
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("behavior 'Removed' is not supported"));

    j = tiny();
    j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}, {"type": "Metaspace"}]})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("after ByteLevel"));

    j = tiny();
    j["post_processor"] = json::parse(R"({"type": "RobertaProcessing"})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("post_processor 'RobertaProcessing' is not supported"));

    j = tiny();
    j["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "special_tokens": {}})");
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'post_processor.special_tokens' has no entry") &&
                                                  Catch::Contains("<bos>"));

    j = tiny();
    j["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [3], "tokens": ["<s>"]}}})");
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("no $A"));

    j = tiny();
    j["decoder"] = json::parse(R"({"type": "WordPiece"})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("decoder 'WordPiece' is not supported"));

    j = tiny();
    j["decoder"] = json::parse(R"({"type": "Sequence", "decoders": [{"type": "Fuse"},
        {"type": "Replace", "pattern": {"String": "a"}, "content": "b"}]})");
    CHECK_THAT(error_message<UnsupportedError>(j), Catch::Contains("decoder step Replace after Fuse or ByteLevel"));

    j = tiny();
    j["decoder"] = json::parse(R"({"type": "Strip", "content": "ab", "start": 1, "stop": 0})");
    CHECK_THAT(error_message<FormatError>(j), Catch::Contains("'decoder.content' must be one character"));

    CHECK_THROWS_AS(Tokenizer::from_json(json::array(), "tok.json"), FormatError);

    test::TempDir dir;
    CHECK_THROWS_AS(Tokenizer::load(dir.file("missing.json")), IoError);
    {
        std::ofstream(dir.file("bad.json")) << "{ not json";
    }
    CHECK_THROWS_WITH(Tokenizer::load(dir.file("bad.json")), Catch::Contains("bad.json: the file is not valid JSON"));
}

TEST_CASE("tokenizer: decoder steps on a small vocabulary", "[tokenizer]") {
    json j = tiny();
    j["model"]["vocab"] = json::parse(R"({"_a": 0, "b": 1, "_": 2, "x": 3})");
    j["model"]["merges"] = json::array();
    j["added_tokens"] = json::array();
    SECTION("no decoder: tokens joined with spaces") {
        Tokenizer t = Tokenizer::from_json(j, "t.json");
        CHECK(t.decode({0, 1, 3}) == "_a b x");
        CHECK(stream_decode(t, {0, 1, 3}) == "_a b x");
    }
    SECTION("Strip after Fuse strips the start and end of the whole text") {
        j["decoder"] = json::parse(R"({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "_"}, "content": " "}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 1}]})");
        Tokenizer t = Tokenizer::from_json(j, "t.json");
        CHECK(t.decode({0, 1, 2, 0, 2, 2}) == "ab  a ");  // " a" "b" " " " a" " " " "
        CHECK(stream_decode(t, {0, 1, 2, 0, 2, 2}) == "ab  a ");
        Tokenizer::StreamDecoder sd(t);
        CHECK(sd.push(0) == "a");
        CHECK(sd.push(2) == "");  // maybe trailing: held
        CHECK(sd.push(1) == " b");
        CHECK(sd.push(2) == "");
        CHECK(sd.flush() == "");  // the held space was the last character: stripped
    }
    SECTION("Strip before Fuse acts on every token") {
        j["decoder"] = json::parse(R"({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "_"}, "content": " "},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})");
        Tokenizer t = Tokenizer::from_json(j, "t.json");
        CHECK(t.decode({0, 1, 0}) == "aba");
    }
}

TEST_CASE("tokenizer: BPE unk, fuse_unk and byte fallback", "[tokenizer]") {
    auto make = [](bool fuse_unk, bool byte_fallback) {
        json j = tiny();
        j["added_tokens"] = json::array();
        j["model"] = {{"type", "BPE"},
                      {"unk_token", "<unk>"},
                      {"fuse_unk", fuse_unk},
                      {"byte_fallback", byte_fallback},
                      {"vocab", {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"ab", 3}, {"<0xC3>", 4}, {"<0xA9>", 5}}},
                      {"merges", {"a b"}}};
        return Tokenizer::from_json(j, "unk.json");
    };
    // Expected ids: what HF tokenizers 0.23.2 gives for the same files.
    Tokenizer fused = make(true, false), unfused = make(false, false), fallback = make(true, true);
    CHECK(fused.encode("xyab") == Ids{0, 3});
    CHECK(fused.encode("abxyza") == Ids{3, 0, 1});
    CHECK(unfused.encode("xyab") == Ids{0, 0, 3});
    CHECK(unfused.encode("abxyza") == Ids{3, 0, 0, 0, 1});
    CHECK(fallback.encode("\u00e9x\u00e9") == Ids{4, 5, 4, 5, 0});
    // HF's quirk, kept: byte-fallback tokens go in before a pending unk.
    CHECK(fallback.encode("x\u00e9") == Ids{4, 5, 0});
    CHECK(fallback.encode("") == Ids{});
}

// ---- the split regex --------------------------------------------------------------------------

TEST_CASE("tokenizer: Llama-3 split regex matcher", "[tokenizer]") {
    CHECK(llama3_split("") == Pieces{});
    CHECK(llama3_split("  hello") == Pieces{" ", " hello"});  // \s+(?!\S) backs off one space
    CHECK(llama3_split("a\n\n b") == Pieces{"a", "\n\n", " b"});
    CHECK(llama3_split("1234567") == Pieces{"123", "456", "7"});
    CHECK(llama3_split("don't") == Pieces{"don", "'t"});
    CHECK(llama3_split("I'M") == Pieces{"I", "'M"});  // case-insensitive contractions
    CHECK(llama3_split("we'LL they'Re") == Pieces{"we", "'LL", " they", "'Re"});
    CHECK(llama3_split("He'\u017F") == Pieces{"He", "'\u017F"});  // U+017F folds to 's'
    CHECK(llama3_split("'hello") == Pieces{"'hello"});  // not a contraction: [^\r\n\p{L}\p{N}]?\p{L}+
    CHECK(llama3_split("x  \n") == Pieces{"x", "  \n"});  // \s*[\r\n]+
    CHECK(llama3_split("hi   ") == Pieces{"hi", "   "});  // trailing: \s+(?!\S) takes all
    CHECK(llama3_split("hi   there") == Pieces{"hi", "  ", " there"});
    CHECK(llama3_split("hi \tthere") == Pieces{"hi", " ", "\tthere"});
    CHECK(llama3_split("  \u00a0x") == Pieces{"  ", "\u00a0x"});
    CHECK(llama3_split("hello, world!") == Pieces{"hello", ",", " world", "!"});
    CHECK(llama3_split("a...\r\n\r\nb") == Pieces{"a", "...\r\n\r\n", "b"});
    CHECK(llama3_split(" ...x") == Pieces{" ...", "x"});
    CHECK(llama3_split("\n =") == Pieces{"\n", " ="});
    CHECK(llama3_split("a \n b") == Pieces{"a", " \n", " b"});
    CHECK(llama3_split("\r\n  \n\t x") == Pieces{"\r\n  \n", "\t", " x"});
    CHECK(llama3_split("12abc3") == Pieces{"12", "abc", "3"});
    CHECK(llama3_split("½²") == Pieces{"½²"});  // \p{N} includes No
    CHECK(llama3_split("日本語のテキスト") == Pieces{"日本語のテキスト"});
    CHECK(llama3_split("$100") == Pieces{"$", "100"});
    CHECK(llama3_split("e\u0301t\u00e9") == Pieces{"e", "\u0301t\u00e9"});  // a mark is not \p{L}
    CHECK(llama3_split("🦙 🦙") == Pieces{"🦙", " 🦙"});
}

TEST_CASE("tokenizer: GPT-2 split regex matcher", "[tokenizer]") {
    CHECK(gpt2_split("Hello  world's 123") == Pieces{"Hello", " ", " world", "'s", " 123"});
    CHECK(gpt2_split("I'M") == Pieces{"I", "'", "M"});  // case-sensitive
    CHECK(gpt2_split("1234567") == Pieces{"1234567"});
    CHECK(gpt2_split("a\n\n b") == Pieces{"a", "\n\n", " b"});
    CHECK(gpt2_split("x  ") == Pieces{"x", "  "});
    CHECK(gpt2_split(" !!") == Pieces{" !!"});
}

TEST_CASE("tokenizer: generated Unicode tables", "[tokenizer]") {
    using namespace bitttt::unicode;
    auto sorted = [](const CodePointRange* r, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            if (r[i].first > r[i].last) return false;
            if (i > 0 && r[i].first <= r[i - 1].last + 1) return false;  // sorted, merged
        }
        return true;
    };
    CHECK(sorted(kLetterRanges, kLetterRangeCount));
    CHECK(sorted(kNumberRanges, kNumberRangeCount));
    CHECK(sorted(kWhiteSpaceRanges, kWhiteSpaceRangeCount));
    CHECK(sorted(kWordRanges, kWordRangeCount));
    CHECK(is_letter('a'));
    CHECK(is_letter(0x00E9));    // é
    CHECK(is_letter(0x65E5));    // 日
    CHECK(is_letter(0x017F));    // ſ
    CHECK_FALSE(is_letter(0x0301));  // combining acute (Mn)
    CHECK_FALSE(is_letter('_'));
    CHECK(is_number('7'));
    CHECK(is_number(0x00BD));    // ½ (No)
    CHECK(is_number(0x216B));    // Ⅻ (Nl)
    CHECK(is_number(0x0663));    // Arabic-Indic three (Nd)
    CHECK_FALSE(is_number('x'));
    for (std::uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au,
                             0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u})
        CHECK(is_white_space(cp));
    for (std::uint32_t cp : {0x1Cu, 0x1Fu, 0x180Eu, 0x200Bu, 0xFEFFu, 0x61u}) CHECK_FALSE(is_white_space(cp));
    CHECK(is_word('_'));
    CHECK(is_word(0x0301));
    CHECK(is_word(0x24B6));  // Ⓐ: Other_Alphabetic
    CHECK_FALSE(is_word(0x2460));  // ① is No, not \w
    CHECK_FALSE(is_word('-'));
}
