// The GGUF writer and the Llama export (include/bitttt/gguf.h), read back by a small
// independent GGUF parser written here from the format's description: header, every
// key/value type the writer uses, tensor infos, alignment, data; the export's names,
// dimensions, types, the q/k rotary reordering, values, metadata and the placeholder
// vocabulary; clear refusals.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <variant>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/gguf.h"
#include "fixtures.h"
#include "test_util.h"

using namespace bitttt;

namespace {

struct GgufTensorInfo {
    std::vector<std::uint64_t> ne;
    std::uint32_t type = 0;
    std::uint64_t offset = 0;
};

using GgufValue = std::variant<std::uint32_t, float, std::string, std::vector<std::string>, std::vector<float>,
                               std::vector<std::int32_t>>;

struct ParsedGguf {
    std::uint32_t version = 0;
    std::map<std::string, GgufValue> kv;
    std::vector<std::string> kv_order;
    std::map<std::string, GgufTensorInfo> tensors;
    std::vector<std::string> tensor_order;
    std::uint64_t data_start = 0;
    std::vector<std::uint8_t> bytes;

    const std::uint8_t* data(const std::string& name) const { return bytes.data() + data_start + tensors.at(name).offset; }
};

class Reader {
public:
    explicit Reader(const std::vector<std::uint8_t>& b) : b_(b) {}
    template <class T>
    T get() {
        REQUIRE(pos_ + sizeof(T) <= b_.size());
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string str() {
        const auto n = get<std::uint64_t>();
        REQUIRE(pos_ + n <= b_.size());
        std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
        pos_ += n;
        return s;
    }
    std::uint64_t pos() const { return pos_; }

private:
    const std::vector<std::uint8_t>& b_;
    std::uint64_t pos_ = 0;
};

ParsedGguf parse_gguf(const std::string& path) {
    ParsedGguf g;
    std::ifstream f(path, std::ios::binary);
    g.bytes.assign(std::istreambuf_iterator<char>(f), {});
    Reader r(g.bytes);
    REQUIRE(r.get<std::uint32_t>() == 0x46554747u);  // "GGUF"
    g.version = r.get<std::uint32_t>();
    const auto n_tensors = r.get<std::uint64_t>(), n_kv = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n_kv; ++i) {
        const std::string key = r.str();
        const auto type = r.get<std::uint32_t>();
        switch (type) {
            case 4: g.kv[key] = r.get<std::uint32_t>(); break;
            case 6: g.kv[key] = r.get<float>(); break;
            case 8: g.kv[key] = r.str(); break;
            case 9: {
                const auto et = r.get<std::uint32_t>();
                const auto n = r.get<std::uint64_t>();
                if (et == 8) {
                    std::vector<std::string> v;
                    for (std::uint64_t j = 0; j < n; ++j) v.push_back(r.str());
                    g.kv[key] = v;
                } else if (et == 6) {
                    std::vector<float> v;
                    for (std::uint64_t j = 0; j < n; ++j) v.push_back(r.get<float>());
                    g.kv[key] = v;
                } else {
                    REQUIRE(et == 5);
                    std::vector<std::int32_t> v;
                    for (std::uint64_t j = 0; j < n; ++j) v.push_back(r.get<std::int32_t>());
                    g.kv[key] = v;
                }
                break;
            }
            default: FAIL("unexpected value type " << type << " for " << key);
        }
        g.kv_order.push_back(key);
    }
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
        const std::string name = r.str();
        GgufTensorInfo t;
        const auto nd = r.get<std::uint32_t>();
        for (std::uint32_t d = 0; d < nd; ++d) t.ne.push_back(r.get<std::uint64_t>());
        t.type = r.get<std::uint32_t>();
        t.offset = r.get<std::uint64_t>();
        g.tensors[name] = t;
        g.tensor_order.push_back(name);
    }
    g.data_start = (r.pos() + 31) / 32 * 32;
    for (std::uint64_t p = r.pos(); p < g.data_start; ++p) CHECK(g.bytes[p] == 0);
    return g;
}

std::uint64_t tensor_bytes(const GgufTensorInfo& t) {
    std::uint64_t n = t.type == 0 ? 4 : 2;
    for (auto d : t.ne) n *= d;
    return n;
}

float f16_at(const std::uint8_t* p, std::size_t i) {
    std::uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return f16_to_f32(h);
}

}  // namespace

TEST_CASE("GGUF writer: header, key/values, tensor infos, aligned data", "[gguf]") {
    test::TempDir dir;
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("a.count", 7);
    w.add_f32("a.eps", 1e-5f);
    w.add_strings("a.words", {"x", "", "long word"});
    w.add_f32s("a.floats", {1.5f, -2.0f});
    w.add_i32s("a.ints", {-1, 3, 6});
    // 3 F32 values (12 bytes: the next tensor starts at 32), then a 5 x 3 F16 matrix.
    w.add_tensor("v", GgufTensorType::F32, {3}, [](std::uint8_t* d, std::size_t n) {
        REQUIRE(n == 12);
        const float v[3] = {1, 2, 3};
        std::memcpy(d, v, n);
    });
    w.add_tensor("m", GgufTensorType::F16, {5, 3}, [](std::uint8_t* d, std::size_t n) {
        REQUIRE(n == 30);
        for (std::size_t i = 0; i < 15; ++i) {
            const std::uint16_t h = f32_to_f16(static_cast<float>(i));
            std::memcpy(d + 2 * i, &h, 2);
        }
    });
    CHECK_THROWS_AS(w.add_u32("a.count", 1), UsageError);
    CHECK_THROWS_AS(w.add_tensor("v", GgufTensorType::F32, {1}, [](std::uint8_t*, std::size_t) {}), UsageError);
    CHECK_THROWS_AS(w.add_tensor("z", GgufTensorType::F32, {0}, [](std::uint8_t*, std::size_t) {}), UsageError);
    std::size_t calls = 0;
    w.write(dir.file("t.gguf"), [&](std::size_t done, std::size_t total) {
        ++calls;
        CHECK(total == 2);
        CHECK(done == calls);
    });
    CHECK(calls == 2);
    CHECK(test::list_dir(dir.path()) == std::vector<std::string>{"t.gguf"});

    const ParsedGguf g = parse_gguf(dir.file("t.gguf"));
    CHECK(g.version == 3);
    CHECK(g.kv_order == std::vector<std::string>{"general.architecture", "a.count", "a.eps", "a.words", "a.floats",
                                                 "a.ints"});
    CHECK(std::get<std::string>(g.kv.at("general.architecture")) == "llama");
    CHECK(std::get<std::uint32_t>(g.kv.at("a.count")) == 7);
    CHECK(std::get<float>(g.kv.at("a.eps")) == 1e-5f);
    CHECK(std::get<std::vector<std::string>>(g.kv.at("a.words")) == std::vector<std::string>{"x", "", "long word"});
    CHECK(std::get<std::vector<float>>(g.kv.at("a.floats")) == std::vector<float>{1.5f, -2.0f});
    CHECK(std::get<std::vector<std::int32_t>>(g.kv.at("a.ints")) == std::vector<std::int32_t>{-1, 3, 6});
    REQUIRE(g.tensor_order == std::vector<std::string>{"v", "m"});
    CHECK(g.tensors.at("v").offset == 0);
    CHECK(g.tensors.at("m").offset == 32);
    CHECK(g.tensors.at("m").ne == std::vector<std::uint64_t>{5, 3});
    CHECK(g.tensors.at("m").type == 1);
    CHECK(g.bytes.size() == g.data_start + 32 + 30);
    float v[3];
    std::memcpy(v, g.data("v"), 12);
    CHECK(v[2] == 3.0f);
    for (std::size_t i = 12; i < 32; ++i) CHECK(g.data("v")[i] == 0);  // padding
    for (std::size_t i = 0; i < 15; ++i) CHECK(f16_at(g.data("m"), i) == static_cast<float>(i));
}

TEST_CASE("GGUF export of a Llama checkpoint: names, shapes, rotary order, values, metadata", "[gguf]") {
    test::TempDir dir;
    test::TinyModel m;
    m.vocab = 300;  // the placeholder vocabulary needs 259 tokens
    m.write(dir.path() / "hf");
    export_llama_gguf((dir.path() / "hf").string(), dir.file("m.gguf"));
    const ParsedGguf g = parse_gguf(dir.file("m.gguf"));
    const Checkpoint ck = Checkpoint::open((dir.path() / "hf").string());

    // Every tensor: 2-D F16 with dims reversed, 1-D F32, nothing else; aligned, in bounds.
    CHECK(g.tensors.size() == 3 + 9 * static_cast<std::size_t>(m.layers));
    for (const auto& [name, t] : g.tensors) {
        INFO(name);
        CHECK(t.offset % 32 == 0);
        CHECK(g.data_start + t.offset + tensor_bytes(t) <= g.bytes.size());
        CHECK(t.type == (t.ne.size() == 1 ? 0u : 1u));
    }
    const std::int64_t hd = m.hidden / m.heads;
    CHECK(g.tensors.at("token_embd.weight").ne == std::vector<std::uint64_t>{32, 300});
    CHECK(g.tensors.at("blk.1.attn_k.weight").ne ==
          std::vector<std::uint64_t>{32, static_cast<std::uint64_t>(m.kv_heads * hd)});
    CHECK(g.tensors.at("blk.0.ffn_down.weight").ne == std::vector<std::uint64_t>{44, 32});
    CHECK(g.tensors.count("output.weight") == 1);
    CHECK(g.tensors.count("rope_freqs.weight") == 0);

    // Values: binary16 of the checkpoint's; q and k rows in llama.cpp's pair order
    // (file row h*hd + 2i + s = checkpoint row h*hd + s*hd/2 + i), the rest unchanged.
    auto check_matrix = [&](const std::string& gname, const std::string& hfname, bool rotary) {
        INFO(gname);
        const std::vector<float> src = ck.read_f32(*ck.find(hfname));
        const auto& t = g.tensors.at(gname);
        const std::int64_t cols = static_cast<std::int64_t>(t.ne[0]), rows = static_cast<std::int64_t>(t.ne[1]);
        int bad = 0;
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t h = r / hd, j = r % hd;
            const std::int64_t s = rotary ? h * hd + (j % 2) * (hd / 2) + j / 2 : r;
            for (std::int64_t c = 0; c < cols; ++c) {
                if (f16_at(g.data(gname), static_cast<std::size_t>(r * cols + c)) !=
                    f16_to_f32(f32_to_f16(src[static_cast<std::size_t>(s * cols + c)])))
                    ++bad;
            }
        }
        CHECK(bad == 0);
    };
    check_matrix("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", true);
    check_matrix("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", true);
    check_matrix("blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight", false);
    check_matrix("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", false);
    check_matrix("token_embd.weight", "model.embed_tokens.weight", false);
    check_matrix("output.weight", "lm_head.weight", false);
    {
        const std::vector<float> src = ck.read_f32(*ck.find("model.layers.1.post_attention_layernorm.weight"));
        CHECK(std::memcmp(g.data("blk.1.ffn_norm.weight"), src.data(), src.size() * 4) == 0);
    }

    // Metadata llama.cpp's "llama" loader reads, and the placeholder vocabulary.
    CHECK(std::get<std::string>(g.kv.at("general.architecture")) == "llama");
    CHECK(std::get<std::uint32_t>(g.kv.at("general.file_type")) == 1);
    CHECK(std::get<std::uint32_t>(g.kv.at("llama.block_count")) == 2);
    CHECK(std::get<std::uint32_t>(g.kv.at("llama.embedding_length")) == 32);
    CHECK(std::get<std::uint32_t>(g.kv.at("llama.feed_forward_length")) == 44);
    CHECK(std::get<std::uint32_t>(g.kv.at("llama.attention.head_count")) == 4);
    CHECK(std::get<std::uint32_t>(g.kv.at("llama.attention.head_count_kv")) == 2);
    CHECK(std::get<std::uint32_t>(g.kv.at("llama.rope.dimension_count")) == 8);
    CHECK(std::get<float>(g.kv.at("llama.rope.freq_base")) == 10000.0f);
    CHECK(std::get<float>(g.kv.at("llama.attention.layer_norm_rms_epsilon")) == 1e-5f);
    const auto& tokens = std::get<std::vector<std::string>>(g.kv.at("tokenizer.ggml.tokens"));
    REQUIRE(tokens.size() == 300);
    CHECK(tokens[1] == "<s>");
    CHECK(tokens[3] == "<0x00>");
    CHECK(tokens[258] == "<0xFF>");
    CHECK(tokens[299] == "tok299");
    CHECK(std::get<std::vector<std::int32_t>>(g.kv.at("tokenizer.ggml.token_type"))[10] == 6);
    CHECK(std::get<std::vector<float>>(g.kv.at("tokenizer.ggml.scores")).size() == 300);
}

TEST_CASE("GGUF export: tied embeddings, llama3 rope factors, refusals", "[gguf]") {
    test::TempDir dir;
    test::TinyModel m;
    m.vocab = 300;
    m.tied = true;
    m.write(dir.path() / "tied");
    {
        // llama3 rope scaling: rope_freqs.weight holds unscaled / scaled frequency.
        nlohmann::json cfg = m.config();
        cfg["rope_scaling"] = {{"rope_type", "llama3"},          {"factor", 8.0}, {"low_freq_factor", 1.0},
                               {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
        std::ofstream(dir.path() / "tied" / "config.json") << cfg.dump();
    }
    export_llama_gguf((dir.path() / "tied").string(), dir.file("t.gguf"));
    const ParsedGguf g = parse_gguf(dir.file("t.gguf"));
    CHECK(g.tensors.count("output.weight") == 0);  // llama.cpp reuses token_embd
    REQUIRE(g.tensors.count("rope_freqs.weight") == 1);
    const auto& rf = g.tensors.at("rope_freqs.weight");
    REQUIRE(rf.ne == std::vector<std::uint64_t>{4});
    float f[4];
    std::memcpy(f, g.data("rope_freqs.weight"), 16);
    CHECK(f[0] == 1.0f);                 // the shortest wavelength is kept
    CHECK(f[3] == Approx(8.0f).epsilon(1e-5));  // the longest is slowed by the factor
    CHECK(test::list_dir(dir.path()) == std::vector<std::string>{"t.gguf", "tied"});

    // A vocabulary too small for the placeholder, and a folder without config.json.
    test::TinyModel small;
    small.write(dir.path() / "small");
    CHECK_THROWS_AS(export_llama_gguf((dir.path() / "small").string(), dir.file("s.gguf")), UnsupportedError);
    small.write(dir.path() / "noconfig", [](const std::string&, std::vector<float>&) {}, false);
    CHECK_THROWS_AS(export_llama_gguf((dir.path() / "noconfig").string(), dir.file("n.gguf")), FormatError);
    CHECK(!std::filesystem::exists(dir.file("s.gguf")));
    CHECK(!std::filesystem::exists(dir.file("n.gguf")));
}
