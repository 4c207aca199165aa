// bitttt-fuzz-seeds: writes the seed inputs of the fuzz targets (tools/fuzz.sh runs it).
//
//   bitttt-fuzz-seeds hostile OUT            hand-made hostile inputs, OUT/<target>/*
//   bitttt-fuzz-seeds tiny-model DIR [bl]    a tiny Hugging Face Llama folder (config.json,
//                                            tokenizer.json, model.safetensors) to convert;
//                                            "bl": a byte-level (Llama-3 style) tokenizer
//   bitttt-fuzz-seeds split FILE OUT [MAX]   a .safetensors or .btt file in the targets'
//                                            "JSON header NUL data" form (data cut to MAX bytes)
//   bitttt-fuzz-seeds btt-hostile FILE OUT   variants of a real .btt's header, in that form
//   bitttt-fuzz-seeds shrink-tokenizer IN OUT N
//                                            tokenizer.json keeping ids < N and the merges
//                                            among them (a small seed with a big one's shape)
//
// Everything is generated here: nothing is copied into the repository.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/btt.h"
#include "bitttt/dtype.h"
#include "bitttt/file_io.h"
#include "bitttt/safetensors.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

void write(const fs::path& p, const std::string& bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string le64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
    return s;
}

std::string repeat(const std::string& s, std::size_t n) {
    std::string out;
    out.reserve(s.size() * n);
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

// A .safetensors file from header text and data bytes (length prefix as given or right).
std::string st_file(const std::string& header, const std::string& data = {}) { return le64(header.size()) + header + data; }

// JSON nested `depth` levels: {"k": {"k": ... leaf ... }}.
std::string nested(const std::string& open, const std::string& close, std::size_t depth, const std::string& leaf) {
    return repeat(open, depth) + leaf + repeat(close, depth);
}

// ---- tiny model -----------------------------------------------------------------------

// A SentencePiece-style BPE (Llama 2): <unk> <s> </s>, byte fallback <0x00>..<0xFF>,
// letters with and without the "▁" space marker, a few merges.
json tiny_tokenizer_sp() {
    json vocab = json::object();
    int id = 0;
    for (const char* s : {"<unk>", "<s>", "</s>"}) vocab[s] = id++;
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        vocab[buf] = id++;
    }
    vocab["\xe2\x96\x81"] = id++;
    for (char c = 'a'; c <= 'z'; ++c) vocab[std::string(1, c)] = id++;
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"\xe2\x96\x81", "t"}, {"h", "e"}, {"\xe2\x96\x81t", "he"}, {"\xe2\x96\x81", "a"}, {"i", "n"}, {"\xe2\x96\x81", "o"}};
    json jm = json::array();
    for (const auto& [a, b] : merges) {
        vocab[a + b] = id++;
        jm.push_back(a + " " + b);
    }
    json added = json::array();
    for (int i = 0; i < 3; ++i) {
        added.push_back({{"id", i}, {"content", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"}, {"single_word", false},
                         {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}});
    }
    return {
        {"version", "1.0"},
        {"truncation", nullptr},
        {"padding", nullptr},
        {"added_tokens", added},
        {"normalizer",
         {{"type", "Sequence"},
          {"normalizers",
           {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}},
            {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xe2\x96\x81"}}}}}},
        {"pre_tokenizer", nullptr},
        {"post_processor",
         {{"type", "TemplateProcessing"},
          {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair", json::array()},
          {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
        {"decoder",
         {{"type", "Sequence"},
          {"decoders",
           {{{"type", "Replace"}, {"pattern", {{"String", "\xe2\x96\x81"}}}, {"content", " "}},
            {{"type", "ByteFallback"}},
            {{"type", "Fuse"}},
            {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab},
          {"merges", jm}}},
    };
}

// GPT-2's byte-to-character map (printable bytes as themselves, the others from U+0100 up).
std::string byte_char(int b) {
    static std::vector<std::uint32_t> map = [] {
        std::vector<std::uint32_t> m(256, 0);
        std::set<int> direct;
        for (int c = '!'; c <= '~'; ++c) direct.insert(c);
        for (int c = 0xA1; c <= 0xAC; ++c) direct.insert(c);
        for (int c = 0xAE; c <= 0xFF; ++c) direct.insert(c);
        std::uint32_t next = 256;
        for (int c = 0; c < 256; ++c) m[c] = direct.count(c) ? static_cast<std::uint32_t>(c) : next++;
        return m;
    }();
    const std::uint32_t cp = map[b];
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

// A byte-level BPE in Llama 3's shape (split regex + ByteLevel, ignore_merges).
json tiny_tokenizer_bl() {
    json vocab = json::object();
    int id = 0;
    for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = id++;
    const std::string sp = byte_char(' ');
    const std::vector<std::pair<std::string, std::string>> merges = {{sp, "t"}, {"h", "e"}, {sp + "t", "he"}, {"i", "n"}};
    json jm = json::array();
    for (const auto& [a, b] : merges) {
        vocab[a + b] = id++;
        jm.push_back(json::array({a, b}));
    }
    json added = json::array();
    for (const char* s : {"<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"}) {
        added.push_back({{"id", id++}, {"content", s}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", false}, {"special", true}});
    }
    const std::string regex =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json split = {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
    json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
    json bos = {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}};
    json seq_a = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};
    json specials = json::object();
    specials["<|begin_of_text|>"] = {{"id", "<|begin_of_text|>"}, {"ids", {260}}, {"tokens", {"<|begin_of_text|>"}}};
    json templ = {{"type", "TemplateProcessing"}, {"single", {bos, seq_a}}, {"pair", json::array()}, {"special_tokens", specials}};
    json bl_post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
    json t = json::object();
    t["version"] = "1.0";
    t["added_tokens"] = added;
    t["normalizer"] = nullptr;
    t["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {split, byte_level}}};
    t["post_processor"] = {{"type", "Sequence"}, {"processors", {bl_post, templ}}};
    t["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    t["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false},
                  {"byte_fallback", false}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", jm}};
    return t;
}

json tiny_config(std::int64_t vocab, bool tied) {
    return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 32},
            {"intermediate_size", 48}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
            {"num_key_value_heads", 1}, {"vocab_size", vocab}, {"max_position_embeddings", 64},
            {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"rope_scaling", nullptr}, {"hidden_act", "silu"},
            {"tie_word_embeddings", tied}, {"bos_token_id", 1}, {"eos_token_id", 2}};
}

void tiny_model(const fs::path& dir, bool byte_level) {
    const json tok = byte_level ? tiny_tokenizer_bl() : tiny_tokenizer_sp();
    std::int64_t vocab = 0;
    for (const auto& [k, v] : tok["model"]["vocab"].items()) vocab = std::max<std::int64_t>(vocab, v.get<std::int64_t>() + 1);
    for (const auto& a : tok["added_tokens"]) vocab = std::max<std::int64_t>(vocab, a["id"].get<std::int64_t>() + 1);
    const json cfg = tiny_config(vocab, !byte_level);
    write(dir / "config.json", cfg.dump(2));
    write(dir / "tokenizer.json", tok.dump(2));

    std::uint64_t state = byte_level ? 7 : 3;
    auto values = [&](std::size_t n) {
        std::vector<std::uint8_t> b(4 * n);
        for (std::size_t i = 0; i < n; ++i) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const float v = static_cast<float>(static_cast<std::int64_t>(state >> 40) - (1 << 23)) / float(1 << 23) * 0.1f;
            std::memcpy(b.data() + 4 * i, &v, 4);
        }
        return b;
    };
    auto ones = [](std::size_t n) {
        std::vector<std::uint8_t> b(4 * n);
        const float one = 1.0f;
        for (std::size_t i = 0; i < n; ++i) std::memcpy(b.data() + 4 * i, &one, 4);
        return b;
    };
    const std::int64_t h = 32, ff = 48, q = 32, kv = 16;
    bitttt::SafetensorsWriter w;
    w.add("model.embed_tokens.weight", bitttt::DType::F32, {vocab, h}, values(static_cast<std::size_t>(vocab * h)));
    const std::string p = "model.layers.0.";
    w.add(p + "input_layernorm.weight", bitttt::DType::F32, {h}, ones(h));
    w.add(p + "self_attn.q_proj.weight", bitttt::DType::F32, {q, h}, values(q * h));
    w.add(p + "self_attn.k_proj.weight", bitttt::DType::F32, {kv, h}, values(kv * h));
    w.add(p + "self_attn.v_proj.weight", bitttt::DType::F32, {kv, h}, values(kv * h));
    w.add(p + "self_attn.o_proj.weight", bitttt::DType::F32, {h, q}, values(h * q));
    w.add(p + "post_attention_layernorm.weight", bitttt::DType::F32, {h}, ones(h));
    w.add(p + "mlp.gate_proj.weight", bitttt::DType::F32, {ff, h}, values(ff * h));
    w.add(p + "mlp.up_proj.weight", bitttt::DType::F32, {ff, h}, values(ff * h));
    w.add(p + "mlp.down_proj.weight", bitttt::DType::F32, {h, ff}, values(h * ff));
    w.add("model.norm.weight", bitttt::DType::F32, {h}, ones(h));
    if (byte_level) w.add("lm_head.weight", bitttt::DType::F32, {vocab, h}, values(static_cast<std::size_t>(vocab * h)));
    w.write((dir / "model.safetensors").string());
}

// ---- hostile seeds ----------------------------------------------------------------------

struct Seeds {
    fs::path dir;
    void add(const std::string& name, const std::string& bytes) const { write(dir / name, bytes); }
};

// Strings that break naive handling of names and messages.
const std::vector<std::string>& odd_names() {
    static const std::vector<std::string> n = {
        "",
        "\\u0000",
        "a\\nb\\r\\t",
        "\\u001b[31mred\\u001b[0m",
        "\\\\\\\"",
        "../../etc/passwd",
        "\\u00ff\\uffff\\ud83d\\ude00",
        "%s%s%s%n",
    };
    return n;
}

void hostile_safetensors(const Seeds& s) {
    const std::string f32 = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    s.add("valid", st_file(R"({"__metadata__":{"format":"pt"},"a":)" + f32 + R"(,"b":{"dtype":"BF16","shape":[2,1],"data_offsets":[8,12]},"s":{"dtype":"F64","shape":[],"data_offsets":[12,20]},"z":{"dtype":"U8","shape":[0,5],"data_offsets":[20,20]}})",
                           std::string(20, '\x3f')));
    s.add("empty", "");
    s.add("short", "\x08\0\0\0\0\0\0");
    s.add("len-past-end", le64(1000) + "{}");
    s.add("len-huge", le64(~0ull) + "{}");
    s.add("len-2-63", le64(1ull << 63) + "{}");
    s.add("len-zero", le64(0));
    s.add("header-not-object", st_file("[1,2,3]"));
    s.add("header-null", st_file("null"));
    s.add("deep-array", st_file("{\"a\":" + nested("[", "]", 100000, "") + "}"));
    s.add("deep-object", st_file(nested("{\"a\":", "}", 100000, "{}")));
    s.add("deep-metadata", st_file("{\"__metadata__\":" + nested("{\"a\":", "}", 50000, "\"x\"") + "}"));
    for (const char* num : {"1e999", "-1e999", "1.5", "-1", "18446744073709551615", "18446744073709551616",
                            "9223372036854775807", "9223372036854775808", "\"8\"", "null", "true", "-0", "0.0"}) {
        s.add(std::string("shape-") + num,
              st_file(std::string(R"({"a":{"dtype":"F32","shape":[)") + num + R"(],"data_offsets":[0,8]}})",
                      std::string(8, 0)));
        s.add(std::string("offset-") + num,
              st_file(std::string(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,)") + num + "]}}",
                      std::string(8, 0)));
    }
    // Shapes whose element count or byte count overflows 64 bits, or int64.
    s.add("numel-overflow", st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})"));
    s.add("bytes-overflow", st_file(R"({"a":{"dtype":"F64","shape":[2305843009213693952,2],"data_offsets":[0,0]}})"));
    s.add("bytes-2-64", st_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"));
    s.add("zero-times-huge", st_file(R"({"a":{"dtype":"F32","shape":[0,9223372036854775807,9223372036854775807],"data_offsets":[0,0]}})"));
    s.add("begin-after-end", st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[5,3]}})", std::string(8, 0)));
    s.add("end-huge", st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[18446744073709551614,18446744073709551615]}})"));
    s.add("overlap", st_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                             std::string(8, 0)));
    s.add("same-range", st_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                                std::string(8, 0)));
    s.add("duplicate-key", st_file(R"({"a":)" + f32 + R"(,"a":)" + f32 + "}", std::string(8, 0)));
    s.add("metadata-int", st_file(R"({"__metadata__":{"format":1}})"));
    s.add("metadata-array", st_file(R"({"__metadata__":["format"]})"));
    s.add("dtype-unknown", st_file(R"({"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", std::string(8, 0)));
    s.add("dtype-int", st_file(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", std::string(8, 0)));
    s.add("missing-fields", st_file(R"({"a":{},"b":{"dtype":"F32"},"c":{"dtype":"F32","shape":[1]}})"));
    s.add("entry-not-object", st_file(R"({"a":[1,2],"b":"x"})"));
    s.add("offsets-three", st_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,1,2]}})", "xx"));
    // 100,000 zero-size tensors.
    {
        std::string h = "{";
        for (int i = 0; i < 100000; ++i)
            h += (i ? ",\"t" : "\"t") + std::to_string(i) + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
        s.add("many-empty-tensors", st_file(h + "}"));
    }
    {
        std::string h = "{";
        int i = 0;
        for (const std::string& n : odd_names())
            h += (i ? "," : "") + std::string("\"") + n + R"(":{"dtype":"U8","shape":[1],"data_offsets":[)" +
                 std::to_string(i) + "," + std::to_string(i + 1) + "]}", ++i;
        s.add("odd-names", st_file(h + "}", std::string(16, 'x')));
    }
    s.add("raw-invalid-utf8-name", st_file("{\"\xff\xfe\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x"));
    // Split form ("header NUL data"): the targets build the length prefix.
    s.add("split-valid", R"({"a":)" + f32 + "}" + std::string(1, '\0') + std::string(8, 0));
    // Calibration files: metadata and tensor names the calibration reader checks.
    const std::string md = R"("__metadata__":{"format":"bitttt-calibration","version":"1","tokens":"16","chunks":"1","ctx":"16","text":"t","model":"m","stats":"full"})";
    const std::string key = "model.layers.0.self_attn.qkv";
    std::string one(4, '\0');
    const float v = 1.0f;
    std::memcpy(one.data(), &v, 4);
    s.add("calibration-valid",
          st_file("{" + md + ",\"" + key + R"(.mean_sq":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},")" + key +
                      R"(.xtx":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}})",
                  repeat(one, 5)));
    s.add("calibration-nan",
          st_file("{" + md + ",\"" + key + R"(.mean_sq":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},")" + key +
                      R"(.xtx":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  std::string("\0\0\xc0\x7f\0\0\x80\x7f", 8)));
    s.add("calibration-bad-tokens",
          st_file(R"({"__metadata__":{"format":"bitttt-calibration","version":"1","tokens":"1e999","stats":"diag"},")" + key +
                      R"(.mean_sq":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                  one));
    s.add("calibration-wrong-n",
          st_file("{" + md + ",\"" + key + R"(.mean_sq":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},")" + key +
                      R"(.xtx":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                  repeat(one, 5)));
    s.add("calibration-2d",
          st_file("{" + md + ",\"" + key + R"(.mean_sq":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}})", one));
}

void hostile_index(const Seeds& s) {
    const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
    json valid = {{"metadata", {{"total_size", 200}}}, {"weight_map", json::object()}};
    for (const char* t : {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                          "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                          "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight", "empty"})
        valid["weight_map"][t] = s1;
    for (const char* t : {"model.layers.0.post_attention_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
                          "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.norm.weight",
                          "lm_head.weight", "ints"})
        valid["weight_map"][t] = s2;
    s.add("valid", valid.dump(1));
    json extra = valid;
    extra["weight_map"]["model.layers.1.input_layernorm.weight"] = "sub/extra.safetensors";
    s.add("subfolder", extra.dump());
    const std::vector<std::string> shards = {
        "../model-00001-of-00002.safetensors", "/etc/passwd", "/dev/zero", "/dev/stdin", ".", "", "sub",
        "sub/../model-00001-of-00002.safetensors", "./" + s1, "corrupt.safetensors", "empty.safetensors",
        "missing.safetensors", "model.safetensors.index.json", "config.json", "sub//extra.safetensors",
        std::string("a\0b", 3), "\x1b[2J", "C:\\x.safetensors", s1 + "/"};
    for (const std::string& shard : shards) {
        json j = valid;
        j["weight_map"]["model.norm.weight"] = shard;
        s.add("shard-" + std::to_string(std::hash<std::string>{}(shard) % 100000), j.dump());
    }
    json wrong = valid;
    wrong["weight_map"]["lm_head.weight"] = s1;  // the tensor is in the other shard
    s.add("wrong-shard", wrong.dump());
    json absent = valid;
    absent["weight_map"]["not.in.any.shard"] = s2;
    s.add("absent-tensor", absent.dump());
    s.add("no-weight-map", R"({"metadata":{}})");
    s.add("weight-map-array", R"({"weight_map":["a"]})");
    s.add("weight-map-empty", R"({"weight_map":{}})");
    s.add("weight-map-int", R"({"weight_map":{"a":1}})");
    s.add("not-object", "[]");
    s.add("not-json", "{\"weight_map\":");
    s.add("total-size-huge", R"({"metadata":{"total_size":1e999},"weight_map":{"model.norm.weight":")" + s2 + "\"}}");
    s.add("duplicate-key", R"({"weight_map":{"model.norm.weight":")" + s2 + R"(","model.norm.weight":")" + s1 + "\"}}");
    s.add("deep", "{\"weight_map\":" + nested("{\"a\":", "}", 100000, "\"x\"") + "}");
    {
        std::string h = "{\"weight_map\":{";
        for (int i = 0; i < 100000; ++i) h += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":\"" + s1 + "\"";
        s.add("many-entries", h + "}}");
    }
}

void hostile_config(const Seeds& s) {
    const json base = tiny_config(300, true);
    s.add("tiny", base.dump(2));
    json l3 = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 4096},
               {"intermediate_size", 14336}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
               {"num_key_value_heads", 8}, {"vocab_size", 128256}, {"max_position_embeddings", 131072},
               {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0}, {"hidden_act", "silu"}, {"tie_word_embeddings", false},
               {"rope_scaling", {{"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                 {"original_max_position_embeddings", 8192}, {"rope_type", "llama3"}}},
               {"bos_token_id", 128000}, {"eos_token_id", {128001, 128008, 128009}}};
    s.add("llama3", l3.dump(2));
    auto variant = [&](const std::string& name, const std::function<void(json&)>& change) {
        json j = base;
        change(j);
        s.add(name, j.dump());
    };
    const std::vector<const char*> ints = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                           "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings",
                                           "bos_token_id", "eos_token_id"};
    for (const char* k : ints) {
        variant(std::string(k) + "-missing", [&](json& j) { j.erase(k); });
        variant(std::string(k) + "-string", [&](json& j) { j[k] = "64"; });
        variant(std::string(k) + "-float", [&](json& j) { j[k] = 64.5; });
        variant(std::string(k) + "-negative", [&](json& j) { j[k] = -64; });
        variant(std::string(k) + "-2^62", [&](json& j) { j[k] = std::int64_t{1} << 62; });
        variant(std::string(k) + "-int64max", [&](json& j) { j[k] = INT64_MAX; });
        variant(std::string(k) + "-uint64max", [&](json& j) { j[k] = UINT64_MAX; });
        variant(std::string(k) + "-1e300", [&](json& j) { j[k] = 1e300; });
        variant(std::string(k) + "-2^63float", [&](json& j) { j[k] = 9223372036854775808.0; });
        variant(std::string(k) + "-object", [&](json& j) { j[k] = json::object(); });
    }
    for (const char* k : {"rms_norm_eps", "rope_theta"}) {
        variant(std::string(k) + "-zero", [&](json& j) { j[k] = 0; });
        variant(std::string(k) + "-string", [&](json& j) { j[k] = "1e-5"; });
        variant(std::string(k) + "-tiny", [&](json& j) { j[k] = 5e-324; });
        variant(std::string(k) + "-huge", [&](json& j) { j[k] = 1.7e308; });
    }
    // Products that overflow: q = heads * head_dim, the embedding vocab * hidden, layers.
    variant("heads-2^62", [](json& j) { j["num_attention_heads"] = std::int64_t{1} << 62; j["num_key_value_heads"] = std::int64_t{1} << 62; j["head_dim"] = 2; });
    variant("head-dim-2^62", [](json& j) { j["head_dim"] = std::int64_t{1} << 62; });
    variant("hidden-vocab-overflow", [](json& j) { j["hidden_size"] = std::int64_t{1} << 32; j["vocab_size"] = std::int64_t{1} << 32; j["head_dim"] = 16; });
    variant("ff-overflow", [](json& j) { j["intermediate_size"] = std::int64_t{1} << 61; });
    variant("layers-1e9", [](json& j) { j["num_hidden_layers"] = 1000000000; });
    variant("kv-not-divisor", [](json& j) { j["num_key_value_heads"] = 3; });
    variant("head-dim-odd", [](json& j) { j["head_dim"] = 15; });
    variant("hidden-not-multiple", [](json& j) { j["hidden_size"] = 33; });
    variant("model-type", [](json& j) { j["model_type"] = "mistral"; });
    variant("hidden-act", [](json& j) { j["hidden_act"] = "gelu"; });
    variant("bias", [](json& j) { j["attention_bias"] = true; });
    variant("bias-string", [](json& j) { j["mlp_bias"] = "false"; });
    variant("architectures-odd", [](json& j) { j["architectures"] = {1, {2}}; });
    variant("eos-list-mixed", [](json& j) { j["eos_token_id"] = {1, "2", nullptr, 1e300}; });
    variant("eos-nested", [](json& j) { j["eos_token_id"] = {{1}}; });
    variant("rope-linear", [](json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 4}}; });
    variant("rope-linear-zero", [](json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 0}}; });
    variant("rope-llama3-bad", [](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"low_freq_factor", 4}, {"high_freq_factor", 1}}; });
    variant("rope-llama3-huge", [](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 1e308}, {"original_max_position_embeddings", 1e300}}; });
    variant("rope-yarn", [](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4}}; });
    variant("rope-array", [](json& j) { j["rope_scaling"] = {1, 2}; });
    variant("rope-type-int", [](json& j) { j["rope_scaling"] = {{"rope_type", 3}}; });
    s.add("huge-number", R"({"hidden_size":1e999,"intermediate_size":48,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":300})");
    s.add("huge-eps", R"({"hidden_size":32,"intermediate_size":48,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":300,"rms_norm_eps":-1e999})");
    s.add("deep-array", "{\"hidden_size\":" + nested("[", "]", 100000, "") + "}");
    s.add("deep-object", nested("{\"a\":", "}", 100000, "1"));
    s.add("duplicate-keys", R"({"hidden_size":32,"hidden_size":64,"intermediate_size":48,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":300})");
    s.add("not-object", "[1]");
    s.add("empty", "");
    s.add("bom", "\xef\xbb\xbf{}");
    s.add("invalid-utf8", "{\"model_type\":\"\xff\"}");
    s.add("escapes", R"({"model_type":"ll\u0000ama","architectures":["\u001b[31m\ud83d\ude00"]})");
}

void hostile_tokenizer(const Seeds& s) {
    const json sp = tiny_tokenizer_sp(), bl = tiny_tokenizer_bl();
    const std::string texts = std::string(1, '\0') + "Hello <s> world</s>" + std::string(1, '\0') + "\xe2\x96\x81the in" +
                              std::string(1, '\0') + "<|begin_of_text|>hi<|eot_id|>" + std::string(1, '\0') +
                              std::string("\x01\x00\x00\x00\xff\xff\xff\x7f\x00\x00\x00\x80", 12);
    s.add("tiny-sp", sp.dump());
    s.add("tiny-sp-texts", sp.dump() + texts);
    s.add("tiny-bl", bl.dump());
    s.add("tiny-bl-texts", bl.dump() + texts);
    auto variant = [&](const std::string& name, const json& from, const std::function<void(json&)>& change) {
        json j = from;
        change(j);
        s.add(name, j.dump() + texts);
    };
    // Deep nesting of every recursive component (10,000 levels).
    auto deep = [](const char* type, const char* list, const json& leaf, int depth) {
        std::string open = std::string("{\"type\":\"") + type + "\",\"" + list + "\":[";
        return repeat(open, static_cast<std::size_t>(depth)) + leaf.dump() + repeat("]}", static_cast<std::size_t>(depth));
    };
    auto with_raw = [&](const std::string& name, const json& from, const char* key, const std::string& raw) {
        json j = from;
        j[key] = "@@RAW@@";
        std::string text = j.dump();
        text.replace(text.find("\"@@RAW@@\""), 9, raw);
        s.add(name, text + texts);
    };
    with_raw("deep-normalizer", sp, "normalizer", deep("Sequence", "normalizers", sp["normalizer"]["normalizers"][0], 10000));
    with_raw("deep-pre-tokenizer", bl, "pre_tokenizer", deep("Sequence", "pretokenizers", bl["pre_tokenizer"]["pretokenizers"][1], 10000));
    with_raw("deep-decoder", sp, "decoder", deep("Sequence", "decoders", json{{"type", "Fuse"}}, 10000));
    with_raw("deep-post-processor", sp, "post_processor", deep("Sequence", "processors", json{{"type", "ByteLevel"}}, 10000));
    with_raw("deep-vocab-value", sp, "normalizer", nested("[", "]", 100000, ""));
    // Ids: above the vocabulary, huge, negative, non-integer.
    for (const auto& [name, id_value] : std::vector<std::pair<std::string, json>>{
             {"2^31-1", 2147483647}, {"2^31", 2147483648ll}, {"2^40", 1ll << 40}, {"-1", -1}, {"1e999-ish", 1e300},
             {"1.5", 1.5}, {"string", "7"}, {"uint64max", UINT64_MAX}, {"1000000", 1000000}}) {
        const json id = id_value;
        variant("vocab-id-" + name, sp, [&](json& j) { j["model"]["vocab"]["zzz"] = id; });
        variant("added-id-" + name, sp, [&](json& j) { j["added_tokens"][1]["id"] = id; });
        variant("template-id-" + name, sp, [&](json& j) { j["post_processor"]["special_tokens"]["<s>"]["ids"] = {id}; });
    }
    variant("vocab-duplicate-ids", sp, [](json& j) { j["model"]["vocab"]["zzz"] = 5; j["model"]["vocab"]["yyy"] = 5; });
    variant("vocab-sparse", sp, [](json& j) { j["model"]["vocab"] = {{"a", 0}, {"b", 100000}}; j["model"]["merges"] = json::array(); });
    variant("vocab-empty", sp, [](json& j) { j["model"]["vocab"] = json::object(); j["model"]["merges"] = json::array(); });
    variant("vocab-array", sp, [](json& j) { j["model"]["vocab"] = {"a", "b"}; });
    variant("merges-unknown", sp, [](json& j) { j["model"]["merges"].push_back("qq zz"); });
    variant("merges-no-space", sp, [](json& j) { j["model"]["merges"].push_back("ab"); });
    variant("merges-three", sp, [](json& j) { j["model"]["merges"].push_back("a b c"); });
    variant("merges-pair-ints", sp, [](json& j) { j["model"]["merges"].push_back({1, 2}); });
    variant("merges-self", sp, [](json& j) { j["model"]["vocab"]["aa"] = 400; j["model"]["merges"].push_back("a a"); });
    variant("unk-missing", sp, [](json& j) { j["model"]["unk_token"] = "<nope>"; });
    variant("no-byte-fallback-tokens", sp, [](json& j) {
        json v = json::object();
        for (const auto& [k, id] : j["model"]["vocab"].items())
            if (k.rfind("<0x", 0) != 0) v[k] = id;
        j["model"]["vocab"] = v;
    });
    variant("byte-level-missing-bytes", bl, [](json& j) { j["model"]["vocab"].erase("a"); });
    variant("added-empty-content", sp, [](json& j) { j["added_tokens"].push_back({{"id", 290}, {"content", ""}, {"special", true}}); });
    variant("added-options", sp, [](json& j) {
        j["added_tokens"].push_back({{"id", 291}, {"content", " in "}, {"special", false}, {"single_word", true},
                                     {"lstrip", true}, {"rstrip", true}, {"normalized", true}});
    });
    variant("added-long", sp, [](json& j) { j["added_tokens"].push_back({{"id", 292}, {"content", repeat("ab", 5000)}, {"special", true}}); });
    variant("replace-empty-pattern", sp, [](json& j) { j["normalizer"]["normalizers"][1]["pattern"]["String"] = ""; });
    variant("replace-regex", sp, [](json& j) { j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", "(a+)+$"}}; });
    variant("replace-grows", sp, [](json& j) { j["normalizer"]["normalizers"][1]["content"] = repeat("\xe2\x96\x81", 1000); });
    variant("prepend-long", sp, [](json& j) { j["normalizer"]["normalizers"][0]["prepend"] = repeat("x", 10000); });
    variant("decoder-replace-empty", sp, [](json& j) { j["decoder"]["decoders"][0]["pattern"]["String"] = ""; });
    variant("strip-huge", sp, [](json& j) { j["decoder"]["decoders"][3]["start"] = 1e300; j["decoder"]["decoders"][3]["stop"] = -1; });
    variant("split-other-regex", bl, [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+|(?=x)"; });
    variant("split-invert", bl, [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; });
    variant("metaspace", sp, [](json& j) {
        j["normalizer"] = nullptr;
        j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"}, {"prepend_scheme", "first"}, {"split", true}};
        j["decoder"] = {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"}, {"prepend_scheme", "always"}};
    });
    variant("metaspace-multichar", sp, [](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "ab"}}; });
    variant("template-unknown-token", sp, [](json& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<nope>"; });
    variant("template-no-a", sp, [](json& j) { j["post_processor"]["single"].erase(1); });
    variant("template-twice-a", sp, [](json& j) { j["post_processor"]["single"].push_back(j["post_processor"]["single"][1]); });
    variant("model-not-bpe", sp, [](json& j) { j["model"]["type"] = "Unigram"; });
    variant("dropout", sp, [](json& j) { j["model"]["dropout"] = 0.5; });
    variant("byte-level-ignore-merges-off", bl, [](json& j) { j["model"]["ignore_merges"] = false; });
    s.add("not-object", "[]" + texts);
    s.add("empty", "");
    s.add("huge-number", R"({"model":{"type":"BPE","vocab":{"a":1e999},"merges":[]}})");
    s.add("deep", nested("{\"a\":", "}", 100000, "1"));
}

// ---- .btt ------------------------------------------------------------------------------

// "header NUL data" of a .btt or .safetensors file (data cut to `max_data` bytes).
void split_file(const fs::path& in, const fs::path& out, std::size_t max_data) {
    const std::string b = bitttt::read_file(in.string());
    std::string header, data;
    if (b.rfind("BTTT", 0) == 0 && b.size() >= 32) {
        std::uint64_t hb = 0, off = 0;
        for (int i = 7; i >= 0; --i) hb = hb << 8 | static_cast<std::uint8_t>(b[8 + i]);
        for (int i = 7; i >= 0; --i) off = off << 8 | static_cast<std::uint8_t>(b[16 + i]);
        header = b.substr(32, hb);
        data = b.substr(off);
    } else if (b.size() >= 8) {
        std::uint64_t hb = 0;
        for (int i = 7; i >= 0; --i) hb = hb << 8 | static_cast<std::uint8_t>(b[i]);
        header = b.substr(8, hb);
        data = b.substr(std::min<std::size_t>(b.size(), 8 + hb));
    }
    if (data.size() > max_data) data.resize(max_data);
    write(out, header + std::string(1, '\0') + data);
}

void btt_hostile(const fs::path& in, const Seeds& s) {
    const bitttt::BttFile f(in.string());
    const std::string data = bitttt::read_file(in.string()).substr(f.data_offset());
    if (f.tensors().empty()) return;
    const json base = json::parse(f.header().dump());
    auto emit = [&](const std::string& name, const json& h) { s.add(name, h.dump() + std::string(1, '\0') + data); };
    auto variant = [&](const std::string& name, const std::function<void(json&)>& change) {
        json h = base;
        change(h);
        emit(name, h);
    };
    auto tensor = [](json& h, const std::string& name) -> json& {
        for (auto& t : h["tensors"])
            if (t["name"] == name) return t;
        return h["tensors"][0];
    };
    const bool has_model = base.contains("model") && base["model"].is_object();
    if (has_model) {
        for (const char* k : {"hidden_size", "num_attention_heads", "head_dim", "vocab_size", "num_hidden_layers",
                              "max_position_embeddings", "num_key_value_heads", "intermediate_size"}) {
            variant(std::string("model-") + k + "-missing", [&](json& h) { h["model"].erase(k); });
            variant(std::string("model-") + k + "-string", [&](json& h) { h["model"][k] = "32"; });
            variant(std::string("model-") + k + "-2^62", [&](json& h) { h["model"][k] = std::int64_t{1} << 62; });
            variant(std::string("model-") + k + "-zero", [&](json& h) { h["model"][k] = 0; });
        }
        variant("model-empty", [](json& h) { h["model"] = json::object(); });
        variant("model-array", [](json& h) { h["model"] = {1}; });
        variant("model-architectures-missing", [](json& h) { h["model"].erase("architectures"); });
        variant("model-architectures-int", [](json& h) { h["model"]["architectures"] = {1}; });
        variant("model-rope-odd", [](json& h) { h["model"]["rope_scaling"] = {{"rope_type", 7}}; });
        variant("model-tie-flipped", [](json& h) { h["model"]["tie_word_embeddings"] = !h["model"]["tie_word_embeddings"].get<bool>(); });
        variant("model-ctx-1", [](json& h) { h["model"]["max_position_embeddings"] = 1; });
    }
    if (base.contains("tokenizer")) {
        {
            // Built as text: a 10,000-deep json object would overflow this program's stack too.
            json h = base;
            h["tokenizer"]["normalizer"] = "@@RAW@@";
            std::string text = h.dump();
            const std::string deep = repeat(R"({"type":"Sequence","normalizers":[)", 10000) +
                                     R"({"type":"Prepend","prepend":"x"})" + repeat("]}", 10000);
            text.replace(text.find("\"@@RAW@@\""), 9, deep);
            s.add("tokenizer-deep", text + std::string(1, '\0') + data);
        }
        variant("tokenizer-string", [](json& h) { h["tokenizer"] = "BPE"; });
        variant("tokenizer-no-model", [](json& h) { h["tokenizer"].erase("model"); });
        variant("tokenizer-vocab-int", [](json& h) { h["tokenizer"]["model"]["vocab"] = 5; });
        variant("tokenizer-added-string", [](json& h) { h["tokenizer"]["added_tokens"] = "x"; });
    }
    const std::string first = base["tensors"][0]["name"];
    variant("tensors-missing", [](json& h) { h.erase("tensors"); });
    variant("tensors-object", [](json& h) { h["tensors"] = json::object(); });
    variant("tensors-empty", [](json& h) { h["tensors"] = json::array(); });
    variant("tensor-not-object", [](json& h) { h["tensors"].push_back(7); });
    variant("tensor-duplicate", [](json& h) { h["tensors"].push_back(h["tensors"][0]); });
    variant("tensor-shape-overflow", [&](json& h) { tensor(h, first)["shape"] = {std::int64_t{1} << 40, std::int64_t{1} << 40}; });
    variant("tensor-shape-2^63", [&](json& h) { tensor(h, first)["shape"] = {UINT64_MAX, 1}; });
    variant("tensor-shape-3d", [&](json& h) { tensor(h, first)["shape"] = {2, 2, 2}; });
    variant("tensor-shape-float", [&](json& h) { tensor(h, first)["shape"] = {1.5, 2}; });
    variant("tensor-offset-wrap", [&](json& h) { tensor(h, first)["offset"] = UINT64_MAX - 63; });
    variant("tensor-size-huge", [&](json& h) { tensor(h, first)["size"] = UINT64_MAX; });
    variant("tensor-offset-negative", [&](json& h) { tensor(h, first)["offset"] = -64; });
    variant("tensor-offset-float", [&](json& h) { tensor(h, first)["offset"] = 1e300; });
    variant("tensor-xxh64-bad", [&](json& h) { tensor(h, first)["xxh64"] = "zzzzzzzzzzzzzzzz"; });
    variant("tensor-xxh64-short", [&](json& h) { tensor(h, first)["xxh64"] = "12"; });
    variant("tensor-xxh64-int", [&](json& h) { tensor(h, first)["xxh64"] = 12; });
    variant("tensor-encoding-unknown", [&](json& h) { tensor(h, first)["encoding"] = "q4_0"; });
    variant("tensor-bases-0", [&](json& h) { tensor(h, first)["bases"] = 0; });
    variant("tensor-bases-huge", [&](json& h) { tensor(h, first)["bases"] = UINT64_MAX; });
    variant("tensor-block-odd", [&](json& h) { tensor(h, first)["block_size"] = 3; });
    variant("tensor-scale-bits", [&](json& h) { tensor(h, first)["scale_bits"] = 4; });
    variant("tensor-errors-strings", [&](json& h) { tensor(h, first)["relative_error_by_base"] = {"a"}; tensor(h, first)["norm"] = "x"; });
    variant("tensor-errors-huge", [&](json& h) { tensor(h, first)["relative_error_by_base"] = {1.7e308, -1.7e308, 5e-324}; });
    variant("tensor-name-escapes", [&](json& h) { tensor(h, first)["name"] = std::string("a\0\n\x1b[31m\xc3\xa9", 10); });
    variant("conversion-odd", [](json& h) { h["conversion"] = {{"bases", "3"}, {"scales", 1}, {"target_bpw", "x"}, {"calibration", {{"error_feedback", "yes"}}}}; });
    variant("created-by-int", [](json& h) { h["created_by"] = 5; });
    variant("format-version-odd", [](json& h) { h["format_version"] = -1; });
    // 100,000 zero-size tensors.
    variant("many-empty-tensors", [](json& h) {
        for (int i = 0; i < 100000; ++i)
            h["tensors"].push_back({{"name", "e" + std::to_string(i)}, {"shape", {0}}, {"encoding", "f32"}, {"offset", 0},
                                    {"size", 0}, {"xxh64", "ef46db3751d8e999"}});
    });
    s.add("deep-header", nested("[", "]", 100000, "") + std::string(1, '\0'));
    s.add("huge-number-header", "{\"tensors\":[],\"x\":1e999}" + std::string(1, '\0'));
    // Raw files: a version-1 file whose tensor claims two-level scales; versions 0 and 3.
    for (const std::uint32_t version : {0u, 1u, 3u, 0xffffffffu}) {
        json h = base;
        for (auto& t : h["tensors"])
            if (t["encoding"] == "ternary") t["scale_bits"] = 8;
        const std::string text = h.dump();
        const std::size_t off = (32 + text.size() + 63) / 64 * 64;
        std::string file(off, ' ');
        std::memcpy(file.data(), "BTTT", 4);
        for (int i = 0; i < 4; ++i) file[4 + i] = static_cast<char>(version >> (8 * i));
        const std::string hb = le64(text.size()), doff = le64(off);
        std::memcpy(file.data() + 8, hb.data(), 8);
        std::memcpy(file.data() + 16, doff.data(), 8);
        std::memcpy(file.data() + 32, text.data(), text.size());
        s.add("raw-version-" + std::to_string(version), file + data);
    }
}

// ---- tokenizer shrinking ----------------------------------------------------------------

// Parsed as nlohmann::json (std::map objects), not the ordered_json of the rest of this file:
// ordered_json's objects are vectors searched linearly on every insertion, and parsing the
// 128,256-entry Llama-3 vocabulary that way took 100 s under the sanitizers. The copy's
// objects come out with sorted keys, which no reader of tokenizer.json depends on.
void shrink_tokenizer(const fs::path& in, const fs::path& out, std::int64_t keep) {
    using json = nlohmann::json;
    json t = json::parse(bitttt::read_file(in.string()));
    json& m = t["model"];
    json vocab = json::object();
    for (const auto& [piece, id] : m["vocab"].items())
        if (id.get<std::int64_t>() < keep) vocab[piece] = id;
    json merges = json::array();
    for (const auto& mg : m["merges"]) {
        std::string a, b;
        if (mg.is_string()) {
            const std::string s = mg.get<std::string>();
            const std::size_t sp = s.find(' ');
            if (sp == std::string::npos) continue;
            a = s.substr(0, sp), b = s.substr(sp + 1);
        } else {
            a = mg[0].get<std::string>(), b = mg[1].get<std::string>();
        }
        if (vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) merges.push_back(mg);
    }
    m["vocab"] = vocab;
    m["merges"] = merges;
    // Added tokens keep their content but move right after the kept vocabulary.
    std::int64_t next = keep;
    json added = json::array();
    for (auto a : t["added_tokens"]) {
        if (added.size() >= 16) break;
        const std::int64_t old = a["id"].get<std::int64_t>();
        a["id"] = next++;
        added.push_back(a);
        // Keep the post-processor's ids in step.
        if (t.contains("post_processor") && t["post_processor"].is_object()) {
            std::function<void(json&)> fix = [&](json& p) {
                if (p.is_object()) {
                    if (p.contains("ids") && p["ids"].is_array())
                        for (auto& id : p["ids"])
                            if (id == old) id = a["id"];
                    for (auto& [k, v] : p.items()) fix(v);
                } else if (p.is_array()) {
                    for (auto& v : p) fix(v);
                }
            };
            fix(t["post_processor"]);
        }
    }
    t["added_tokens"] = added;
    write(out, t.dump());
}

int usage() {
    std::cerr << "usage: bitttt-fuzz-seeds hostile OUT | tiny-model DIR [bl] | split FILE OUT [MAX] |\n"
                 "       btt-hostile FILE.btt OUT | shrink-tokenizer IN OUT N\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::vector<std::string> a(argv + 1, argv + argc);
        if (a.size() == 2 && a[0] == "hostile") {
            const fs::path out = a[1];
            hostile_safetensors({out / "fuzz_safetensors"});
            hostile_index({out / "fuzz_safetensors_index"});
            hostile_config({out / "fuzz_config"});
            hostile_tokenizer({out / "fuzz_tokenizer"});
        } else if ((a.size() == 2 || a.size() == 3) && a[0] == "tiny-model") {
            tiny_model(a[1], a.size() == 3 && a[2] == "bl");
        } else if ((a.size() == 3 || a.size() == 4) && a[0] == "split") {
            split_file(a[1], a[2], a.size() == 4 ? std::stoull(a[3]) : SIZE_MAX);
        } else if (a.size() == 3 && a[0] == "btt-hostile") {
            btt_hostile(a[1], {a[2]});
        } else if (a.size() == 4 && a[0] == "shrink-tokenizer") {
            shrink_tokenizer(a[1], a[2], std::stoll(a[3]));
        } else {
            return usage();
        }
    } catch (const std::exception& e) {
        std::cerr << "bitttt-fuzz-seeds: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
