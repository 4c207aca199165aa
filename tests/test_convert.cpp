// End-to-end conversion: stories260K from ../shared, synthetic tiny models, sharded
// input, weights-only input, determinism, and failures that must leave no output.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/safetensors.h"
#include "fixtures.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using bitttt::test::TinyModel;
using nlohmann::json;

namespace {

ConvertOptions options(const std::string& in, const std::string& out, int bases) {
    ConvertOptions o;
    o.input = in;
    o.output = out;
    o.bases = bases;
    o.threads = 2;
    return o;
}

// ||W - W^_k|| / ||W|| recomputed from the file's bytes with the reference dequantiser.
double relative_error_from_file(const BttFile& f, const BttTensor& t, const std::vector<float>& w, int k) {
    std::vector<float> row(static_cast<std::size_t>(t.layout.cols));
    double err = 0, norm = 0;
    for (std::int64_t r = 0; r < t.layout.rows; ++r) {
        dequantize_row(t.layout, f.data(t), r, k, row.data());
        for (std::int64_t c = 0; c < t.layout.cols; ++c) {
            double x = w[static_cast<std::size_t>(r * t.layout.cols + c)];
            err += (x - row[c]) * (x - row[c]);
            norm += x * x;
        }
    }
    return std::sqrt(err / norm);
}

std::vector<char> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("convert: stories260K at N = 1, 2, 3", "[convert][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    const std::string src = bitttt::test::shared_dir() + "/models/stories260K-hf";
    Checkpoint ckpt = Checkpoint::open(src);
    TempDir dir;
    std::vector<double> final_errors;
    for (int n = 1; n <= 3; ++n) {
        const std::string out = dir.file("s" + std::to_string(n) + ".btt");
        ConvertReport rep = convert(options(src, out, n));
        INFO("bases " << n);
        CHECK_FALSE(rep.weights_only);
        REQUIRE(rep.relative_error_by_base.size() == static_cast<std::size_t>(n));
        for (int k = 1; k < n; ++k) CHECK(rep.relative_error_by_base[k] < rep.relative_error_by_base[k - 1]);
        final_errors.push_back(rep.relative_error_by_base.back());
        CHECK(rep.ternary_parameters == 5 * (64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3));
        // The bare minimum size: 2 bits per trit per base, plus the int8 embedding.
        CHECK(rep.size_bytes > static_cast<std::uint64_t>(rep.ternary_parameters) * n / 4 + 512 * 64);
        CHECK(rep.size_bytes == std::filesystem::file_size(out));

        BttFile f(out);
        CHECK_FALSE(f.weights_only());
        CHECK(f.header()["model"]["num_hidden_layers"] == 5);
        CHECK(f.header()["tokenizer"]["model"]["type"] == "BPE");
        CHECK(f.find("lm_head.weight") == nullptr);  // tied
        // Tied: the table is the output layer and takes the lm_head default.
        CHECK(f.find("model.embed_tokens.weight")->encoding == kDefaultLmHeadEncoding);
        CHECK(f.header()["conversion"]["lm_head"] == encoding_name(kDefaultLmHeadEncoding));
        CHECK(f.header()["conversion"]["embeddings"] == encoding_name(kDefaultLmHeadEncoding));
        CHECK(f.find("model.norm.weight")->encoding == Encoding::F32);
        std::size_t ternary = 0;
        for (const auto& t : f.tensors()) {
            CHECK_NOTHROW(f.verify(t));
            if (t.encoding != Encoding::Ternary) continue;
            ++ternary;
            CHECK(t.layout.bases == n);
            // Stored statistics agree with what the file really reconstructs.
            std::vector<float> w = ckpt.read_f32(*ckpt.find(t.name));
            for (int k = 1; k <= n; ++k) {
                CHECK(relative_error_from_file(f, t, w, k) ==
                      Approx(t.relative_error_by_base[static_cast<std::size_t>(k - 1)]).epsilon(1e-6));
            }
        }
        CHECK(ternary == 35);
        // The int8 table matches the source to within half a step of its row's scale.
        const BttTensor* emb = f.find("model.embed_tokens.weight");
        REQUIRE(emb->encoding == Encoding::Int8);
        std::vector<float> src_emb = ckpt.read_f32(*ckpt.find(emb->name));
        std::vector<float> row(64);
        for (std::int64_t r = 0; r < 512; ++r) {
            dequantize_row_int8(emb->int8, f.data(*emb), r, row.data());
            float amax = 0;
            for (int c = 0; c < 64; ++c) amax = std::max(amax, std::fabs(src_emb[static_cast<std::size_t>(r * 64 + c)]));
            for (int c = 0; c < 64; ++c) {
                REQUIRE(std::fabs(row[c] - src_emb[static_cast<std::size_t>(r * 64 + c)]) <= amax / 254 * 1.0001f);
            }
        }
    }
    // Each added base must buy real accuracy on a trained model.
    CHECK(final_errors[1] < 0.7 * final_errors[0]);
    CHECK(final_errors[2] < 0.7 * final_errors[1]);
}

TEST_CASE("convert: output is identical for any thread count", "[convert]") {
    TempDir dir;
    TinyModel().write(dir.path() / "m");
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        auto o1 = options((dir.path() / "m").string(), dir.file("t1.btt"), 3);
        o1.packing = p;
        o1.threads = 1;
        auto o2 = o1;
        o2.output = dir.file("t2.btt");
        o2.threads = 2;
        auto o3 = o1;
        o3.output = dir.file("t3.btt");
        o3.threads = 5;
        convert(o1);
        convert(o2);
        convert(o3);
        CHECK(slurp(o1.output) == slurp(o2.output));
        CHECK(slurp(o1.output) == slurp(o3.output));
    }
}

TEST_CASE("convert: tiny model, every option combination reconstructs as reported", "[convert]") {
    TempDir dir;
    TinyModel tm;
    tm.write(dir.path() / "m");
    Checkpoint ckpt = Checkpoint::open((dir.path() / "m").string());
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        struct Fit {
            Method method;
            ScaleMode scales;
            int rounds;
            int scale_bits = 16;
        };
        for (const Fit& fit : {Fit{Method::Greedy, ScaleMode::Tied, 0}, Fit{Method::Greedy, ScaleMode::Free, 0},
                               Fit{Method::Greedy, ScaleMode::Free, 4}, Fit{Method::Absmean, ScaleMode::Free, 0},
                               Fit{Method::AbsmeanTensor, ScaleMode::Free, 0}, Fit{Method::Greedy, ScaleMode::Tied, 0, 8},
                               Fit{Method::Greedy, ScaleMode::Free, 4, 8}}) {
            const Method m = fit.method;
            for (int block : {16, 64, 100}) {
                INFO(packing_name(p) << " " << method_name(m) << " " << scale_mode_name(fit.scales) << " refine "
                                     << fit.rounds << " scale bits " << fit.scale_bits << " block " << block);
                auto o = options((dir.path() / "m").string(), dir.file("x.btt"), 2);
                o.packing = p;
                o.method = m;
                o.scales = fit.scales;
                o.refine_rounds = fit.rounds;
                o.scale_bits = fit.scale_bits;
                o.block_size = block;
                o.lm_head = Encoding::Ternary;
                ConvertReport rep = convert(o);
                BttFile f(o.output);
                CHECK(f.version() == 3u);  // the linear layers in tiles (the default)
                CHECK(f.find("lm_head.weight")->encoding == Encoding::Ternary);
                CHECK(f.find("model.embed_tokens.weight")->encoding == kDefaultEmbeddingEncoding);
                for (const auto& t : f.tensors()) {
                    if (t.encoding != Encoding::Ternary) continue;
                    CHECK(t.layout.block_size == block);
                    CHECK(t.layout.scales == fit.scales);
                    CHECK(t.layout.scale_bits == fit.scale_bits);
                    CHECK(t.method == method_name(m));
                    std::vector<float> w = ckpt.read_f32(*ckpt.find(t.name));
                    for (int k = 1; k <= 2; ++k) {
                        CHECK(relative_error_from_file(f, t, w, k) ==
                              Approx(t.relative_error_by_base[static_cast<std::size_t>(k - 1)]).epsilon(1e-6));
                    }
                }
            }
        }
    }
}

TEST_CASE("convert: absmean-tensor with one base is BitNet b1.58's rule", "[convert]") {
    TempDir dir;
    TinyModel().write(dir.path() / "m");
    auto o = options((dir.path() / "m").string(), dir.file("b.btt"), 1);
    o.method = Method::AbsmeanTensor;
    o.scales = ScaleMode::Free;
    o.refine_rounds = 0;
    convert(o);
    BttFile f(o.output);
    Checkpoint ckpt = Checkpoint::open((dir.path() / "m").string());
    const BttTensor& t = *f.find("model.layers.1.mlp.down_proj.weight");
    std::vector<float> w = ckpt.read_f32(*ckpt.find(t.name));
    double mean = 0;
    for (float x : w) mean += std::fabs(x);
    mean /= static_cast<double>(w.size());
    const float scale = f16_to_f32(f32_to_f16(static_cast<float>(mean)));
    std::vector<float> row(static_cast<std::size_t>(t.layout.cols));
    for (std::int64_t r = 0; r < t.layout.rows; ++r) {
        dequantize_row(t.layout, f.data(t), r, 1, row.data());
        for (std::int64_t c = 0; c < t.layout.cols; ++c) {
            float x = w[static_cast<std::size_t>(r * t.layout.cols + c)];
            float q = std::max(-1.0f, std::min(1.0f, std::round(x / scale)));
            REQUIRE(row[c] == q * scale);
        }
    }
}

TEST_CASE("convert: a sharded checkpoint converts exactly like the single file", "[convert]") {
    TempDir dir;
    TinyModel tm;
    tm.write(dir.path() / "single");
    // Split the same tensors over two shards with an index.
    Checkpoint single = Checkpoint::open((dir.path() / "single").string());
    std::filesystem::create_directories(dir.path() / "sharded");
    std::filesystem::copy_file(dir.path() / "single" / "config.json", dir.path() / "sharded" / "config.json");
    SafetensorsWriter w1, w2;
    json weight_map = json::object();
    std::size_t i = 0;
    for (const auto& e : single.tensors()) {
        const bool first = i++ < single.tensors().size() / 2;
        std::vector<std::uint8_t> bytes(e.file->data(*e.info), e.file->data(*e.info) + e.info->nbytes());
        (first ? w1 : w2).add(e.info->name, e.info->dtype, e.info->shape, bytes);
        weight_map[e.info->name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    w1.write((dir.path() / "sharded" / "model-00001-of-00002.safetensors").string());
    w2.write((dir.path() / "sharded" / "model-00002-of-00002.safetensors").string());
    std::ofstream(dir.path() / "sharded" / "model.safetensors.index.json")
        << json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump();

    convert(options((dir.path() / "single").string(), dir.file("a.btt"), 2));
    convert(options((dir.path() / "sharded").string(), dir.file("b.btt"), 2));
    BttFile a(dir.file("a.btt")), b(dir.file("b.btt"));
    REQUIRE(a.tensors().size() == b.tensors().size());
    for (const auto& t : a.tensors()) {
        const BttTensor* u = b.find(t.name);
        REQUIRE(u);
        CHECK(u->xxh64 == t.xxh64);
    }
}

TEST_CASE("convert: a bare safetensors file gives a weights-only file", "[convert]") {
    TempDir dir;
    SafetensorsWriter w;
    w.add("w2d", DType::F32, {40, 70}, bitttt::test::f32_bytes(bitttt::test::gaussian(2800, 3)));
    w.add("bias", DType::F32, {70}, bitttt::test::f32_bytes(bitttt::test::gaussian(70, 4)));
    w.add("ids", DType::I32, {4}, std::vector<std::uint8_t>(16, 0));
    w.write(dir.file("bare.safetensors"));
    ConvertReport rep = convert(options(dir.file("bare.safetensors"), dir.file("bare.btt"), 3));
    CHECK(rep.weights_only);
    CHECK(rep.skipped.size() == 1);
    BttFile f(dir.file("bare.btt"));
    CHECK(f.weights_only());
    CHECK(f.find("w2d")->encoding == Encoding::Ternary);
    CHECK(f.find("bias")->encoding == Encoding::F32);
    CHECK(f.find("ids") == nullptr);
}

TEST_CASE("convert: failures name the problem and leave no output file", "[convert]") {
    TempDir dir;
    const auto model = dir.path() / "m";
    const std::string out = dir.file("out") + "/x.btt";
    std::filesystem::create_directories(dir.file("out"));

    SECTION("a NaN in the last tensor, after most of the file was written") {
        TinyModel().write(model, [](const std::string& name, std::vector<float>& v) {
            if (name == "lm_head.weight") v[70] = std::nanf("");
        });
        REQUIRE_THROWS_WITH(convert(options(model.string(), out, 2)),
                            Catch::Contains("lm_head.weight") && Catch::Contains("[2, 6]") && Catch::Contains("NaN"));
    }
    SECTION("a tensor the config needs is missing") {
        TinyModel tm;
        tm.write(model);
        json cfg = tm.config();
        cfg["num_hidden_layers"] = 3;
        std::ofstream(model / "config.json") << cfg.dump();
        REQUIRE_THROWS_WITH(convert(options(model.string(), out, 2)),
                            Catch::Contains("model.layers.2.input_layernorm.weight") && Catch::Contains("missing"));
    }
    SECTION("a tensor with the wrong shape") {
        TinyModel tm;
        tm.write(model);
        json cfg = tm.config();
        cfg["intermediate_size"] = 48;
        std::ofstream(model / "config.json") << cfg.dump();
        REQUIRE_THROWS_WITH(convert(options(model.string(), out, 2)),
                            Catch::Contains("mlp.gate_proj.weight") && Catch::Contains("[44, 32]") &&
                                Catch::Contains("[48, 32]"));
    }
    SECTION("bad options") {
        TinyModel().write(model);
        auto o = options(model.string(), out, 2);
        o.packing = Packing::TwoBit;
        o.block_size = 30;  // 2bit needs a multiple of 4
        REQUIRE_THROWS_AS(convert(o), UsageError);
        o = options(model.string(), out, 9);
        REQUIRE_THROWS_AS(convert(o), UsageError);
    }
    SECTION("output would overwrite the input") {
        TinyModel().write(model);
        REQUIRE_THROWS_AS(convert(options(model.string(), (model / "model.safetensors").string(), 2)), UsageError);
        CHECK(std::filesystem::file_size(model / "model.safetensors") > 0);
    }
    CHECK(bitttt::test::list_dir(dir.file("out")).empty());
}

TEST_CASE("convert: default output names", "[convert]") {
    TempDir dir;
    TinyModel().write(dir.path() / "llama3");
    CHECK(default_output_path((dir.path() / "llama3").string() + "/", 3) == "llama3-n3.btt");
    CHECK(default_output_path((dir.path() / "llama3" / "model.safetensors").string(), 2) == "llama3-n2.btt");
    CHECK(default_output_path("/x/y/gauss.safetensors", 1) == "gauss-n1.btt");
}

TEST_CASE("convert: defaults + dense keep a 4096x4096 Gaussian at N = 3 within 35% of F16", "[convert][size]") {
    // The size bar of the tied-scale default: at most 35% of the F16 bytes (dense tiles at
    // B = 64: (2 + 3 x 14) / (64 x 2) = 34.4%) with a relative error no worse than the
    // greedy free-scale fit's 0.114.
    TempDir dir;
    bitttt::SafetensorsWriter w;
    const std::vector<float> v = bitttt::test::gaussian(4096 * 4096, 5);  // N(0, 0.02)
    w.add("weight", DType::F32, {4096, 4096}, bitttt::test::f32_bytes(v));
    w.write(dir.file("gauss.safetensors"));
    ConvertOptions o;
    o.input = dir.file("gauss.safetensors");
    o.output = dir.file("g.btt");
    o.bases = 3;
    o.packing = Packing::Dense;
    const ConvertReport rep = convert(o);
    REQUIRE(rep.tensors.size() == 1);
    const double f16_bytes = 4096.0 * 4096.0 * 2.0;
    CHECK(static_cast<double>(rep.tensors[0].size) <= 0.35 * f16_bytes);
    CHECK(rep.relative_error_by_base.back() <= 0.114);
    WARN("Gaussian 4096x4096, N = 3, defaults + dense: " << 100.0 * static_cast<double>(rep.tensors[0].size) / f16_bytes
                                                          << "% of F16, relative error " << rep.relative_error_by_base.back());
}
