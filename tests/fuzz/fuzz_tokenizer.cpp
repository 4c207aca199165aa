// libFuzzer target: tokenizer.json, then encoding and decoding with it.
//
// Input: "tokenizer.json NUL text NUL text ..." (the part after the first NUL is
// optional). Tokenizer::load reads the JSON part as `bitttt convert` does; a tokenizer
// that loads then encodes fixed probe strings, the texts of the input and a slice of the
// JSON itself (vocabulary pieces and merges), with and without special tokens; decodes
// the ids it produced, ids just outside the vocabulary and ids taken from the input
// bytes, whole and through the streaming decoder; and looks pieces up.
#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bitttt/tokenizer.h"
#include "fuzz_common.h"

namespace {

using namespace bitttt;

volatile std::size_t g_sink;

constexpr std::size_t kMaxText = 4096;  // per encoded text: keeps one input well under the timeout

std::vector<std::string> texts_of(const fuzz::Split& s) {
    std::vector<std::string> t = {
        "",
        "Hello world",
        " Once upon a time, there was a little girl named Lily.\n\n",
        "<s> </s><unk><|begin_of_text|><|eot_id|> <0x0A>",
        "\xff\xfe\xc3 \xe2\x82 \xf0\x9f\x98\x80 caf\xc3\xa9 \t\r\n  ",
        "   leading and trailing spaces   ",
        std::string("a\0b", 3),
    };
    // A slice of the JSON: pieces and merges of the file's own vocabulary.
    const std::string_view j = s.json;
    const std::size_t from = j.size() > 300 ? j.size() / 2 : 0;
    t.emplace_back(j.substr(from, 300));
    std::string_view rest = s.rest;
    for (int k = 0; k < 4 && !rest.empty(); ++k) {
        const std::size_t z = rest.find('\0');
        t.emplace_back(rest.substr(0, std::min(z, kMaxText)));
        if (z == std::string_view::npos) break;
        rest.remove_prefix(z + 1);
    }
    return t;
}

std::vector<std::int32_t> probe_ids(const Tokenizer& tok, std::string_view rest) {
    const std::int32_t n = tok.vocab_size();
    const std::int32_t above = n < INT32_MAX ? n + 1 : n;
    std::vector<std::int32_t> ids = {0, 1, n - 1, n, above, -1, INT32_MIN, INT32_MAX, 255, 256, 259};
    for (std::size_t i = 0; i + 4 <= rest.size() && ids.size() < 64; i += 4) {
        std::int32_t v;
        std::memcpy(&v, rest.data() + i, 4);
        ids.push_back(v);
        if (n > 0) ids.push_back(static_cast<std::int32_t>(static_cast<std::uint32_t>(v) % static_cast<std::uint32_t>(n)));
    }
    return ids;
}

void decode_all(const Tokenizer& tok, const std::vector<std::int32_t>& ids) {
    for (const bool skip : {false, true}) {
        const std::string whole = tok.decode(ids, skip);
        Tokenizer::StreamDecoder sd(tok, skip);
        std::string streamed;
        for (const std::int32_t id : ids) streamed += sd.push(id);
        streamed += sd.flush();
        g_sink = whole.size() + streamed.size();
        // Prefill with half the ids, then stream the rest.
        sd.prefill(std::vector<std::int32_t>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(ids.size() / 2)));
        for (std::size_t i = ids.size() / 2; i < ids.size(); ++i) g_sink = sd.push(ids[i]).size();
        sd.reset();
    }
}

void run(const std::string& path, const fuzz::Split& s) {
    const Tokenizer tok = Tokenizer::load(path);
    g_sink = tok.prefix_ids().size() + tok.suffix_ids().size() + tok.adds_bos() + tok.bos_id().value_or(0);
    for (const std::string& text : texts_of(s)) {
        for (const bool parse_special : {false, true}) {
            const std::vector<std::int32_t> ids = tok.encode(text, /*add_special=*/!parse_special, parse_special);
            decode_all(tok, ids);
        }
    }
    const std::vector<std::int32_t> ids = probe_ids(tok, s.rest);
    decode_all(tok, ids);
    for (const std::int32_t id : ids) {
        const std::string p = tok.piece(id);
        g_sink = p.size() + tok.is_special(id);
        if (const auto back = tok.token_id(p)) g_sink = static_cast<std::size_t>(*back);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fuzz::Split s = fuzz::split_at_nul(fuzz::as_view(data, size));
    const std::string path = fuzz::input_file(s.json, "tokenizer.json");
    fuzz::expect_ok_or_error([&] { run(path, s); });
    return 0;
}
