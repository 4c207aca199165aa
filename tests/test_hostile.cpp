// Hostile inputs: hand-made files that once crashed, hung or gave silent wrong answers.
// Each case is a class (checked arithmetic, bounds on every count, ids against the
// vocabulary, depth limits, typed header fields, paths checked against inputs, names
// escaped), tested with more than the one example: through the `bitttt` binary, each must
// exit non-zero with one line on stderr naming the file and what is wrong, and leave no
// output file behind.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/error.h"
#include "bitttt/json_fields.h"
#include "bitttt/limits.h"
#include "fixtures.h"
#include "format/le.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::Result;
using bitttt::test::run_cli;
using bitttt::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A tokenizer.json for TinyModel's 64-entry vocabulary: one token per character.
json tiny_tokenizer() {
    json vocab = json::object();
    vocab["<unk>"] = 0;
    vocab["<s>"] = 1;
    vocab["</s>"] = 2;
    const std::string chars = "abcdefghijklmnopqrstuvwxyz0123456789 .,";
    for (std::size_t i = 0; i < chars.size(); ++i) vocab[std::string(1, chars[i])] = 3 + static_cast<int>(i);
    return {{"version", "1.0"},
            {"added_tokens", {{{"id", 1}, {"content", "<s>"}, {"special", true}}, {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
            {"normalizer", nullptr},
            {"pre_tokenizer", nullptr},
            {"post_processor", nullptr},
            {"decoder", nullptr},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
}

// A runnable tiny model folder (config.json, model.safetensors, tokenizer.json) and its .btt
// (the default tiles arrangement, a version-3 file, unless `arrangement` says rows).
struct Fixture {
    TempDir dir;
    std::string folder = dir.file("m");
    std::string btt = dir.file("m.btt");
    explicit Fixture(const std::string& arrangement = "tiles") {
        bitttt::test::TinyModel().write(folder);
        spit(folder + "/tokenizer.json", tiny_tokenizer().dump());
        const Result r =
            run_cli("convert '" + folder + "' --bases 2 --arrangement " + arrangement + " -o '" + btt + "' -q", dir);
        REQUIRE(r.code == 0);
    }
};

// The header and the data section of a .btt, to rewrite by hand.
struct RawBtt {
    json header;
    std::string data;  // from data_offset to the end
    std::uint32_t version = 1;
};

RawBtt read_raw(const std::string& path) {
    const std::string b = slurp(path);
    const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
    const std::uint64_t hb = le::u64(p + 8), off = le::u64(p + 16);
    return {json::parse(b.substr(kBttPreambleBytes, hb)), b.substr(off), le::u32(p + 4)};
}

// Writes a .btt with a consistent preamble (checksum included) around `header_text`.
void write_raw(const std::string& path, const std::string& header_text, const std::string& data,
               std::uint32_t version = kBttVersion) {
    const std::uint64_t off = (kBttPreambleBytes + header_text.size() + 63) / 64 * 64;
    std::string b(off, ' ');
    std::memcpy(b.data(), "BTTT", 4);
    auto* p = reinterpret_cast<std::uint8_t*>(b.data());
    le::put_u32(p + 4, version);
    le::put_u64(p + 8, header_text.size());
    le::put_u64(p + 16, off);
    le::put_u64(p + 24, checksum64(header_text.data(), header_text.size()));
    std::memcpy(b.data() + kBttPreambleBytes, header_text.data(), header_text.size());
    spit(path, b + data);
}

void write_raw(const std::string& path, const RawBtt& r) { write_raw(path, r.header.dump(), r.data, r.version); }

// The tensor entry named `name` in a header.
json& entry(json& header, const std::string& name) {
    for (auto& t : header["tensors"]) {
        if (t["name"] == name) return t;
    }
    FAIL("no tensor " << name);
    return header;
}

// A clean failure: exit 1 (or `code`), exactly one line on stderr besides the load's note
// that a kernel reading the rows arrangement (the scalar one, on CPUs without AVX2)
// rearranged the file's tiles, naming `file` and containing every `what`.
void expect_clean_error(const Result& r, const std::string& file, std::initializer_list<std::string> what,
                        int code = 1) {
    INFO("stderr: " << r.err);
    CHECK(r.code == code);
    std::istringstream lines(r.err);
    int errors = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.find("rearranged at load for the") == std::string::npos) ++errors;
    }
    CHECK(errors == 1);
    CHECK(r.err.find("internal error") == std::string::npos);
    if (!file.empty()) CHECK(r.err.find(file) != std::string::npos);
    for (const auto& w : what) CHECK(r.err.find(w) != std::string::npos);
}

}  // namespace

TEST_CASE("hostile .btt: tensor sizes, counts and their products", "[hostile][btt]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    const std::string bad = fx.dir.file("bad.btt");
    const std::string q = "model.layers.0.self_attn.q_proj.weight";
    struct Case {
        const char* label;
        std::function<void(json&)> edit;
        std::vector<std::string> what;
    };
    const std::vector<Case> cases = {
        // Each dimension below the per-dimension cap, their product past 2^64.
        {"product overflows 2^64", [&](json& h) { entry(h, q)["shape"] = {std::uint64_t{1} << 33, std::uint64_t{1} << 33}; },
         {"'model.layers.0.self_attn.q_proj.weight'", "shape"}},
        {"product just past the element limit",
         [&](json& h) { entry(h, q)["shape"] = {std::uint64_t{1} << 20, (std::uint64_t{1} << 20) + 1}; },
         {"shape", "limit"}},
        {"one dimension past its cap", [&](json& h) { entry(h, q)["shape"] = {1, (std::uint64_t{1} << 40) + 1}; },
         {"shape[1]", "1099511627776"}},
        {"negative dimension", [&](json& h) { entry(h, q)["shape"] = {-4, 32}; }, {"shape[0]"}},
        {"3-D ternary tensor", [&](json& h) { entry(h, q)["shape"] = {4, 4, 2}; }, {"2-D"}},
        {"size past the end of the data", [&](json& h) { entry(h, q)["size"] = std::uint64_t{1} << 62; }, {"past end"}},
        {"offset + size wraps", [&](json& h) { entry(h, q)["offset"] = ~std::uint64_t{0} - 63; }, {"past end"}},
        {"bases one past the limit", [&](json& h) { entry(h, q)["bases"] = 9; }, {"'bases'"}},
        {"block size 0", [&](json& h) { entry(h, q)["block_size"] = 0; }, {"'block_size'"}},
        {"block size past the limit", [&](json& h) { entry(h, q)["block_size"] = 4097; }, {"'block_size'"}},
        {"scale_bits in a version-1 file (rows)",
         [&](json& h) {
             entry(h, q)["scale_bits"] = 8;
             entry(h, q).erase("arrangement");
         },
         {"version-1"}},
        {"duplicate tensor", [&](json& h) { h["tensors"].push_back(entry(h, q)); }, {"appears twice"}},
        {"tensor count past the limit",
         [&](json& h) {
             json t = entry(h, q);
             t["size"] = 0;
             t["shape"] = {0, 0};
             t["encoding"] = "f32";
             // One past the limit, counting the model's own tensors.
             for (std::uint64_t i = h["tensors"].size(); i <= limits::kMaxTensors; ++i) {
                 t["name"] = "z" + std::to_string(i);
                 h["tensors"].push_back(t);
             }
         },
         {"more than the limit"}},
    };
    for (const auto& c : cases) {
        INFO(c.label);
        RawBtt r = good;
        c.edit(r.header);
        if (std::string(c.label).find("version-1") != std::string::npos) r.version = 1;
        write_raw(bad, r);
        // (The header of 65,537 entries is read once.)
        const bool heavy = std::string(c.label) == "tensor count past the limit";
        for (const char* cmd : {"inspect", "inspect --verify", "run -n 1 -p ab"}) {
            if (heavy && std::string(cmd) != "inspect") continue;
            INFO(cmd);
            const Result res = run_cli(std::string(cmd) + " '" + bad + "'", fx.dir);
            const std::vector<std::string>& w = c.what;
            INFO("stderr: " << res.err);
            CHECK(res.code == 1);
            CHECK(std::count(res.err.begin(), res.err.end(), '\n') == 1);
            CHECK(res.err.find("bad.btt") != std::string::npos);
            for (const auto& s : w) CHECK(res.err.find(s) != std::string::npos);
        }
    }
}

TEST_CASE("hostile .btt: the largest tensor count allowed is read, in linear time", "[hostile][btt]") {
    Fixture fx;
    RawBtt r = read_raw(fx.btt);
    json t = {{"shape", {0}}, {"encoding", "f32"}, {"offset", 0}, {"size", 0}, {"xxh64", "ef46db3751d8e999"}};
    for (std::uint64_t i = r.header["tensors"].size(); i < limits::kMaxTensors; ++i) {
        t["name"] = "extra." + std::to_string(i);
        r.header["tensors"].push_back(t);
    }
    REQUIRE(r.header["tensors"].size() == limits::kMaxTensors);
    const std::string path = fx.dir.file("many.btt");
    write_raw(path, r);
    const Result res = run_cli("inspect --json '" + path + "'", fx.dir);
    INFO(res.err);
    CHECK(res.code == 0);
}

TEST_CASE("hostile .btt: header bytes, dimensions and elements at their limits pass that check, one past is refused",
          "[hostile][btt]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    const std::string bad = fx.dir.file("bad.btt");
    const auto message = [&] {
        try {
            BttFile f(bad);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    // The header size in the preamble: at the limit the file is merely too short for it.
    for (const std::uint64_t bytes : {limits::kMaxBttHeaderBytes, limits::kMaxBttHeaderBytes + 1}) {
        INFO("header bytes " << bytes);
        write_raw(bad, good);
        std::string b = slurp(bad);
        le::put_u64(reinterpret_cast<std::uint8_t*>(b.data()) + 8, bytes);
        spit(bad, b);
        const std::string msg = message();
        INFO(msg);
        CHECK(msg.find("bad.btt") != std::string::npos);
        const bool refused_for_limit = msg.find("larger than the limit (" + std::to_string(limits::kMaxBttHeaderBytes)) !=
                                       std::string::npos;
        CHECK(refused_for_limit == (bytes > limits::kMaxBttHeaderBytes));
        if (bytes == limits::kMaxBttHeaderBytes) CHECK(msg.find("past end of file") != std::string::npos);
    }
    // One dimension, and the element count: at the limit the shape is read (and then does
    // not match the bytes); one past, the shape itself is refused.
    const std::string q = "model.layers.0.self_attn.q_proj.weight";
    const auto max_dim = static_cast<std::uint64_t>(limits::kMaxDimension);
    struct Case {
        json at, past;
        std::string what;
    };
    for (const Case& c : std::vector<Case>{{json{1, max_dim}, json{1, max_dim + 1}, "shape[1]"},
                                          {json{1u << 20, 1u << 20}, json{1u << 20, (1u << 20) + 1}, "elements (the limit)"},
                                          {json{1u << 10, 1u << 10, 1u << 20}, json{1u << 10, (1u << 10) + 1, 1u << 20},
                                           "elements (the limit)"}}) {
        for (const bool past : {false, true}) {
            INFO((past ? c.past : c.at).dump());
            RawBtt r = good;
            entry(r.header, q)["shape"] = past ? c.past : c.at;
            if (c.at.size() == 3) entry(r.header, q)["encoding"] = "f32";
            write_raw(bad, r);
            const std::string msg = message();
            INFO(msg);
            CHECK(msg.find("bad.btt") != std::string::npos);
            CHECK(msg.find(q) != std::string::npos);
            CHECK((msg.find(c.what) != std::string::npos) == past);
            CHECK((msg.find("limit") != std::string::npos) == past);
        }
    }
}

TEST_CASE("hostile JSON: nesting at the depth limit is read, one level deeper is refused", "[hostile][json]") {
    for (const int depth : {1, limits::kMaxJsonDepth - 1, limits::kMaxJsonDepth, limits::kMaxJsonDepth + 1, 100000}) {
        INFO("depth " << depth);
        // Alternating objects and arrays, with strings holding brackets that do not count.
        std::string open, close;
        for (int i = 0; i < depth; ++i) {
            open += i % 2 == 0 ? "{\"k[\":" : "[\"]}\",";
            close = (i % 2 == 0 ? "}" : "]") + close;
        }
        const std::string text = open + "0" + close;
        if (depth <= limits::kMaxJsonDepth) {
            CHECK(parse_json_text(text.data(), text.data() + text.size(), "/x/h.json", "the header").is_object());
        } else {
            CHECK_THROWS_WITH(parse_json_text(text.data(), text.data() + text.size(), "/x/h.json", "the header"),
                              Catch::Contains("/x/h.json") && Catch::Contains("deeper than " + std::to_string(limits::kMaxJsonDepth)));
        }
    }
}

TEST_CASE("hostile .btt: header JSON that is deep, huge-valued or ill-typed", "[hostile][btt]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    const std::string bad = fx.dir.file("bad.btt");
    auto nested = [](int depth) { return std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']'); };
    std::string text = good.header.dump();
    // Nesting: a million levels in the tokenizer, and just past the limit in the model.
    for (const auto& [where, depth] : std::vector<std::pair<std::string, int>>{{"tokenizer", 1000000},
                                                                              {"model", limits::kMaxJsonDepth}}) {
        INFO(where << " nested " << depth);
        json h = good.header;
        h[where]["deep"] = "@@";
        std::string s = h.dump();
        s.replace(s.find("\"@@\""), 4, nested(depth));
        write_raw(bad, s, good.data);
        for (const char* cmd : {"inspect", "run -n 1 -p ab"}) {
            expect_clean_error(run_cli(std::string(cmd) + " '" + bad + "'", fx.dir), "bad.btt", {"deeper than"});
        }
    }
    // 1e999 and fields of the wrong type, anywhere a reader looks.
    struct Case {
        const char* label;
        std::function<std::string()> text;
        std::string what;
    };
    auto with = [&](std::function<void(json&)> f) {
        json h = good.header;
        f(h);
        return h.dump();
    };
    const std::vector<Case> cases = {
        {"1e999", [&] { std::string s = good.header.dump(); s.replace(s.find("\"size\":") + 7, 0, "1e999,\"x\":"); return s; },
         "not valid JSON"},
        {"size is a string", [&] { return with([](json& h) { h["tensors"][0]["size"] = "12"; }); }, "'size'"},
        {"name is null", [&] { return with([](json& h) { h["tensors"][0]["name"] = nullptr; }); }, "'tensors[].name'"},
        {"tensors is an object", [&] { return with([](json& h) { h["tensors"] = json::object(); }); }, "'tensors'"},
        {"model is a number", [&] { return with([](json& h) { h["model"] = 3; }); }, "'model'"},
        {"vocab_size missing", [&] { return with([](json& h) { h["model"].erase("vocab_size"); }); }, "'vocab_size'"},
        {"vocab_size is a string", [&] { return with([](json& h) { h["model"]["vocab_size"] = "64"; }); }, "'vocab_size'"},
        {"hidden_size is 2.5", [&] { return with([](json& h) { h["model"]["hidden_size"] = 2.5; }); }, "'hidden_size'"},
        {"rope_scaling is a list", [&] { return with([](json& h) { h["model"]["rope_scaling"] = {1, 2}; }); }, "'rope_scaling'"},
        {"architectures is a string", [&] { return with([](json& h) { h["model"]["architectures"] = "Llama"; }); },
         "'architectures'"},
        {"conversion scales is a number", [&] { return with([](json& h) { h["conversion"]["scales"] = 1; }); },
         "'conversion.scales'"},
        {"created_by is an object", [&] { return with([](json& h) { h["created_by"] = json::object(); }); }, "'created_by'"},
        {"norm is a string", [&] { return with([](json& h) { h["tensors"][0]["norm"] = "big"; }); }, "'norm'"},
        {"xxh64 short", [&] { return with([](json& h) { h["tensors"][0]["xxh64"] = "12"; }); }, "'xxh64'"},
    };
    for (const auto& c : cases) {
        INFO(c.label);
        write_raw(bad, c.text(), good.data);
        expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {c.what});
    }
    // A missing or empty `architectures`, or no rope_scaling, is fine: defaults apply.
    for (auto edit : std::vector<std::function<void(json&)>>{[](json& h) { h["model"]["architectures"] = json::array(); },
                                                              [](json& h) { h["model"].erase("architectures"); },
                                                              [](json& h) { h["model"].erase("rope_scaling"); }}) {
        json h = good.header;
        edit(h);
        write_raw(bad, h.dump(), good.data);
        const Result r = run_cli("inspect '" + bad + "'", fx.dir);
        CHECK(r.code == 0);
        CHECK(r.out.find("LlamaForCausalLM") != std::string::npos);
    }
}

TEST_CASE("hostile configs: every count bounded before anything is allocated", "[hostile][config]") {
    Fixture fx;
    const json cfg = json::parse(slurp(fx.folder + "/config.json"));
    const std::string out = fx.dir.file("out.btt");
    struct Case {
        const char* field;
        json value;
    };
    const std::vector<Case> cases = {
        {"num_hidden_layers", 1e9},
        {"num_hidden_layers", limits::kMaxLayers + 1},
        {"num_attention_heads", std::int64_t{1} << 62},
        {"num_attention_heads", limits::kMaxHeads + 1},
        {"num_key_value_heads", 0},
        {"hidden_size", limits::kMaxHidden + 1},
        {"intermediate_size", -1},
        {"vocab_size", limits::kMaxVocab + 1},
        {"head_dim", limits::kMaxHeadDim + 1},
        {"max_position_embeddings", limits::kMaxContext + 1},
        {"eos_token_id", (std::int64_t{1} << 32) + 2},
        {"eos_token_id", json::array({2, 64})},
        {"bos_token_id", 64},
        {"rms_norm_eps", "small"},
    };
    for (const auto& c : cases) {
        INFO(c.field << " = " << c.value.dump());
        json bad = cfg;
        bad[c.field] = c.value;
        spit(fx.folder + "/config.json", bad.dump());
        const Result r = run_cli("convert '" + fx.folder + "' --bases 1 -o '" + out + "' -q", fx.dir);
        expect_clean_error(r, "config.json", {std::string("'") + c.field});
        CHECK_FALSE(fs::exists(out));
    }
    // At the limit is still a limit for the shape checks, not a refusal of the config: a
    // model with the largest allowed layer count fails later, on its missing tensors.
    json at = cfg;
    at["num_hidden_layers"] = limits::kMaxLayers;
    spit(fx.folder + "/config.json", at.dump());
    expect_clean_error(run_cli("convert '" + fx.folder + "' --bases 1 -o '" + out + "' -q", fx.dir), "", {"missing"});
    CHECK_FALSE(fs::exists(out));
}

TEST_CASE("hostile tokenizers: ids outside the vocabulary, deep nesting", "[hostile][tokenizer]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    const std::string bad = fx.dir.file("bad.btt");
    const std::string text = fx.dir.file("text.txt");
    std::string t;
    for (int i = 0; i < 40; ++i) t += "abc def ghi. ";
    spit(text, t);
    // Ids just above and far above the model's 64 entries.
    for (int id : {64, 65, 1 << 20}) {
        INFO("id " << id);
        json h = good.header;
        h["tokenizer"]["model"]["vocab"]["zz"] = id;
        write_raw(bad, h.dump(), good.data);
        expect_clean_error(run_cli("perplexity '" + bad + "' -f '" + text + "' -c 16", fx.dir), "bad.btt",
                           {"vocabulary"});
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2", fx.dir), "bad.btt", {"vocabulary"});
    }
    // Sequences nested at the limit (read), just past it, and far past it (the JSON depth
    // limit).
    for (int depth : {limits::kMaxTokenizerNesting, limits::kMaxTokenizerNesting + 1, 10000}) {
        INFO("depth " << depth);
        json norm = {{"type", "Prepend"}, {"prepend", "x"}};
        for (int i = 0; i < std::min(depth, 200); ++i) norm = {{"type", "Sequence"}, {"normalizers", {norm}}};
        std::string s = norm.dump();
        if (depth > 200) {
            std::string open, close;
            for (int i = 200; i < depth; ++i) {
                open += R"({"type":"Sequence","normalizers":[)";
                close += "]}";
            }
            s = open + s + close;
        }
        json tok = tiny_tokenizer();
        tok["normalizer"] = "@@";
        std::string ts = tok.dump();
        ts.replace(ts.find("\"@@\""), 4, s);
        spit(fx.folder + "/tokenizer.json", ts);
        if (depth == limits::kMaxTokenizerNesting) {
            const Result r = run_cli("tokenize --tokenizer '" + fx.folder + "/tokenizer.json' ab", fx.dir);
            INFO(r.err);
            CHECK(r.code == 0);
            continue;
        }
        const std::string out = fx.dir.file("out.btt");
        expect_clean_error(run_cli("convert '" + fx.folder + "' --bases 1 -o '" + out + "' -q", fx.dir),
                           "tokenizer.json", {"deeper than"});
        CHECK_FALSE(fs::exists(out));
        expect_clean_error(run_cli("tokenize --tokenizer '" + fx.folder + "/tokenizer.json' ab", fx.dir),
                           "tokenizer.json", {"deeper than"});
    }
}

TEST_CASE("hostile paths: convert never overwrites an input or an existing file", "[hostile][cli]") {
    Fixture fx;
    for (const char* name : {"config.json", "tokenizer.json", "model.safetensors"}) {
        INFO(name);
        const std::string target = fx.folder + "/" + name;
        const std::string before = slurp(target);
        // Without --force the existing file is refused; with it, being an input is.
        expect_clean_error(run_cli("convert '" + fx.folder + "' --bases 1 -o '" + target + "' -q", fx.dir), target,
                           {"exists", "--force"}, 2);
        expect_clean_error(run_cli("convert '" + fx.folder + "' --bases 1 -o '" + target + "' -q --force", fx.dir),
                           target, {"is the input file"}, 2);
        CHECK(slurp(target) == before);
    }
    // The calibration file is an input too.
    const std::string cal = fx.dir.file("cal.safetensors");
    const std::string corpus = fx.dir.file("corpus.txt");
    std::string t;
    for (int i = 0; i < 200; ++i) t += "abc def ghi. ";
    spit(corpus, t);
    REQUIRE(run_cli("calibrate '" + fx.folder + "' --file '" + corpus + "' --ctx 16 -o '" + cal + "' -q", fx.dir).code == 0);
    const std::string before = slurp(cal);
    expect_clean_error(run_cli("convert '" + fx.folder + "' --bases 1 --calibration '" + cal + "' -o '" + cal +
                                   "' -q --force",
                               fx.dir),
                       cal, {"is the input file"}, 2);
    CHECK(slurp(cal) == before);
    // An existing output is kept as it was, and --force replaces it.
    const std::string before_btt = slurp(fx.btt);
    CHECK(run_cli("convert '" + fx.folder + "' --bases 1 -o '" + fx.btt + "' -q", fx.dir).code == 2);
    CHECK(slurp(fx.btt) == before_btt);
    CHECK(run_cli("convert '" + fx.folder + "' --bases 1 -o '" + fx.btt + "' -q --force", fx.dir).code == 0);
    CHECK(slurp(fx.btt) != before_btt);
}

TEST_CASE("hostile run: corrupt data, bad flags and prompts are caught before the first token", "[hostile][run]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    const std::string bad = fx.dir.file("bad.btt");
    // A NaN in a norm: a clear error at load, not garbage.
    {
        RawBtt r = good;
        const json& n = entry(r.header, "model.norm.weight");
        const float nan = std::nanf("");
        std::memcpy(r.data.data() + n["offset"].get<std::size_t>() + 8, &nan, 4);
        write_raw(bad, r);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2", fx.dir), "bad.btt", {"model.norm.weight", "not finite"});
        // Flags and prompts are checked before the weights: their errors come first.
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2 --top-p 1.5", fx.dir), "", {"--top-p"}, 2);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2 --top-p 0", fx.dir), "", {"--top-p"}, 2);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2 --temp nan", fx.dir), "", {"--temp"}, 2);
        expect_clean_error(run_cli("run '" + bad + "' -p 'abcdefghijklmnopqrstuvwxyz' -n 2 --ctx 8", fx.dir), "",
                           {"26 tokens", "context of 8"}, 2);
        expect_clean_error(run_cli("run '" + bad + "' -f '" + fx.dir.path().string() + "' -n 2", fx.dir), "",
                           {"is a folder"});
    }
    // A NaN scale in a ternary tensor (binary16 0x7E00 in the first block's scale).
    {
        RawBtt r = good;
        const json& t = entry(r.header, "model.layers.1.self_attn.k_proj.weight");
        const std::size_t at = t["offset"].get<std::size_t>();
        r.data[at] = 0x00;
        r.data[at + 1] = 0x7E;
        write_raw(bad, r);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2", fx.dir), "bad.btt",
                           {"model.layers.1.self_attn.k_proj.weight", "not finite"});
    }
    // Huge but finite int8 row scales in the embedding (a fuzzer finding): the activations
    // overflow to infinity and NaN; run and perplexity say so instead of printing garbage.
    {
        RawBtt r = good;
        const json& e = entry(r.header, "model.embed_tokens.weight");
        const std::size_t rows = e["shape"][0].get<std::size_t>(), cols = e["shape"][1].get<std::size_t>();
        const std::size_t scales_at = e["offset"].get<std::size_t>() + (rows * cols + 63) / 64 * 64;
        const float huge = 3e38f;
        for (std::size_t i = 0; i < rows; ++i) std::memcpy(r.data.data() + scales_at + 4 * i, &huge, 4);
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx",
                      static_cast<unsigned long long>(
                          checksum64(r.data.data() + e["offset"].get<std::size_t>(), e["size"].get<std::size_t>())));
        entry(r.header, "model.embed_tokens.weight")["xxh64"] = hex;  // consistent: only --verify'd data
        write_raw(bad, r);
        std::string t;
        for (int i = 0; i < 20; ++i) t += "abc def. ";
        spit(fx.dir.file("t.txt"), t);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2 --verify -q", fx.dir), "bad.btt", {"not finite"});
        expect_clean_error(run_cli("perplexity '" + bad + "' -f '" + fx.dir.file("t.txt") + "' -c 16", fx.dir), "bad.btt",
                           {"not finite"});
    }
    // A flipped weight byte: run --verify names the tensor.
    {
        RawBtt r = good;
        const json& q = entry(r.header, "model.layers.1.mlp.up_proj.weight");
        r.data[q["offset"].get<std::size_t>() + 5] ^= 0x40;
        write_raw(bad, r);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2 --verify", fx.dir), "bad.btt",
                           {"model.layers.1.mlp.up_proj.weight", "checksum"});
        CHECK(run_cli("run '" + fx.btt + "' -p ab -n 2 --verify", fx.dir).code == 0);
    }
    // A tensor name with terminal escapes and a newline is printed escaped.
    {
        RawBtt r = good;
        entry(r.header, "model.layers.0.mlp.up_proj.weight")["name"] = "evil\x1b[2J\nname";
        write_raw(bad, r);
        const Result res = run_cli("inspect --all '" + bad + "'", fx.dir);
        CHECK(res.out.find('\x1b') == std::string::npos);
        CHECK(res.out.find("evil\\x1b[2J\\nname") != std::string::npos);
        const Result run = run_cli("run '" + bad + "' -p ab -n 1", fx.dir);
        CHECK(run.code == 1);
        CHECK(run.err.find('\x1b') == std::string::npos);
    }
}

TEST_CASE("hostile .btt: truncated at every section boundary", "[hostile][btt]") {
    Fixture fx;
    const std::string whole = slurp(fx.btt);
    const BttFile f(fx.btt);
    std::vector<std::size_t> cuts = {0, 1, 4, 8, 16, 24, 31, kBttPreambleBytes, kBttPreambleBytes + 10,
                                     static_cast<std::size_t>(f.data_offset()) - 1,
                                     static_cast<std::size_t>(f.data_offset())};
    for (const auto& t : f.tensors()) {
        for (std::size_t at : {t.offset, t.offset + t.size / 2, t.offset + t.size - 1}) {
            cuts.push_back(static_cast<std::size_t>(f.data_offset() + at));
        }
    }
    cuts.push_back(whole.size() - 1);
    const std::string path = fx.dir.file("cut.btt");
    for (std::size_t cut : cuts) {
        if (cut >= whole.size()) continue;
        INFO("cut at " << cut << " of " << whole.size());
        spit(path, whole.substr(0, cut));
        try {
            BttFile g(path);
            FAIL("a truncated file was accepted");
        } catch (const FormatError& e) {
            CHECK(std::string(e.what()).find("cut.btt") != std::string::npos);
        } catch (const IoError& e) {
            CHECK(std::string(e.what()).find("cut.btt") != std::string::npos);
        }
    }
}

TEST_CASE("hostile .btt: every header field missing or of the wrong type", "[hostile][btt]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    const std::string bad = fx.dir.file("bad.btt");
    // Fields a reader may do without (a default applies); every other one is required.
    const std::set<std::string> optional_tensor = {"norm", "relative_error_by_base", "rmse_by_base", "scales",
                                                   "scale_bits", "arrangement", "method", "bits_per_weight"};
    const std::vector<json> wrong = {json::object(), json::array({1}), "text", -3, 1.5, true};
    int checked = 0;
    for (const std::string name : {"model.layers.0.self_attn.q_proj.weight", "model.norm.weight", "lm_head.weight"}) {
        json e = good.header;
        const json fields = entry(e, name);
        for (const auto& [key, value] : fields.items()) {
            INFO(name << " field " << key);
            RawBtt r = good;
            entry(r.header, name).erase(key);
            write_raw(bad, r);
            if (optional_tensor.count(key) != 0) {
                // A default applies; where the default does not fit the bytes (free scales
                // for a tied tensor), the size check says so.
                try {
                    BttFile g(bad);
                } catch (const FormatError& ex) {
                    CHECK(std::string(ex.what()).find("bad.btt") != std::string::npos);
                }
            } else {
                CHECK_THROWS_WITH(BttFile(bad), Catch::Contains("bad.btt") && Catch::Contains(key));
            }
            for (const json& w : wrong) {
                if (w.type() == value.type() || (w.is_number() && value.is_number() && key != "xxh64")) continue;
                if (key == "bits_per_weight") continue;  // written for readers of the JSON, never read back
                INFO("as " << w.dump());
                RawBtt r2 = good;
                entry(r2.header, name)[key] = w;
                write_raw(bad, r2);
                CHECK_THROWS_WITH(BttFile(bad), Catch::Contains("bad.btt") && Catch::Contains(key));
                ++checked;
            }
        }
    }
    CHECK(checked > 30);
    // The model config: every field the engine reads, missing (required ones) and ill-typed.
    const std::set<std::string> required_model = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                                  "num_attention_heads", "vocab_size"};
    for (const auto& [key, value] : good.header["model"].items()) {
        INFO("model field " << key);
        json h = good.header;
        h["model"].erase(key);
        write_raw(bad, h.dump(), good.data);
        const Result r = run_cli("inspect '" + bad + "'", fx.dir);
        if (required_model.count(key) != 0) expect_clean_error(r, "bad.btt", {key});
        for (const json& w : {json::object(), json("text")}) {
            if (value.is_null() && key != "rope_scaling") continue;
            json h2 = good.header;
            h2["model"][key] = w;
            write_raw(bad, h2.dump(), good.data);
            if (key == "rope_scaling" && w.is_object()) continue;  // an empty object is the default scaling
            if (key == "model_type" && w.is_string()) {
                expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {"model_type"});
                continue;
            }
            if (key == "hidden_act" && w.is_string()) {
                expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {"hidden_act"});
                continue;
            }
            if (key == "architectures" || key == "model_type" || key == "hidden_act") {
                expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {key});
                continue;
            }
            expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {key});
        }
    }
}

TEST_CASE("hostile .btt: the tiles arrangement", "[hostile][btt][tiles]") {
    Fixture fx;
    const RawBtt good = read_raw(fx.btt);
    REQUIRE(good.version == 3);
    const std::string bad = fx.dir.file("bad.btt");
    const std::string k = "model.layers.1.self_attn.k_proj.weight";
    REQUIRE(entry(const_cast<json&>(good.header), k)["arrangement"] == "tiles");
    // Tiles in a file that claims an older version; an unknown arrangement; a size that is
    // the rows arrangement's, not the tiles'.
    {
        RawBtt r = good;
        r.version = 2;
        write_raw(bad, r);
        expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {"tiles", "version-2"});
    }
    {
        RawBtt r = good;
        entry(r.header, k)["arrangement"] = "columns";
        write_raw(bad, r);
        expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {"'arrangement'", "columns"});
    }
    {
        // k_proj is [16, 32] at N = 2: 1088 bytes in tiles (one tile padded to 32 rows), 544 in rows.
        RawBtt r = good;
        entry(r.header, k)["arrangement"] = "rows";
        write_raw(bad, r);
        expect_clean_error(run_cli("inspect '" + bad + "'", fx.dir), "bad.btt", {k, "holds 1088", "need 544"});
    }
    // A NaN scale in the scale section of a tiled tensor: refused at load, naming the row
    // (row 5 of tile 0: lane 5 of the first tile block's scales).
    {
        RawBtt r = good;
        const std::size_t at = entry(r.header, k)["offset"].get<std::size_t>() + 2 * 5;
        r.data[at] = 0x00;
        r.data[at + 1] = 0x7E;
        write_raw(bad, r);
        expect_clean_error(run_cli("run '" + bad + "' -p ab -n 2", fx.dir), "bad.btt", {k, "row 5", "not finite"});
    }
    // Corrupt codes (every byte 0xFF: 2bit code 3, dense index 15 and all signs) still run
    // to the end, whatever the text.
    {
        RawBtt r = good;
        const json& e = entry(r.header, k);
        const std::size_t off = e["offset"].get<std::size_t>(), size = e["size"].get<std::size_t>();
        const std::size_t codes = 2 * 32 * ((e["shape"][1].get<std::size_t>() + 63) / 64) *
                                  ((e["shape"][0].get<std::size_t>() + 31) / 32);  // after the tied f16 scales
        for (std::size_t i = off + codes; i < off + size; ++i) r.data[i] = static_cast<char>(0xFF);
        write_raw(bad, r);
        const Result res = run_cli("run '" + bad + "' -p ab -n 4", fx.dir);
        CHECK(res.code == 0);
    }
}
