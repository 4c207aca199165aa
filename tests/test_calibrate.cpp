// `bitttt calibrate`: the statistics accumulator against naive double sums, the layer-by-
// layer pass against the engine's F32 reference (GQA, RoPE with llama3 scaling, causal
// chunks), calibration files (round trip, validation, determinism), the streaming
// safetensors writer and the command line.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>

#include "bitttt/calibrate.h"
#include "bitttt/calibration.h"
#include "bitttt/error.h"
#include "bitttt/file_io.h"
#include "bitttt/model.h"
#include "bitttt/safetensors.h"
#include "bitttt/tokenizer.h"
#include "convert/calibrate_gemm.h"
#include "convert/calibrate_internal.h"
#include "fixtures.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using nlohmann::json;

namespace {

std::string stories_dir() { return bitttt::test::shared_dir() + "/models/stories260K-hf"; }
std::string calib_text() { return bitttt::test::shared_dir() + "/text/tinystories/tinystories_calib.txt"; }

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// True when `a` ([n, n] row-major, symmetric) plus a tiny ridge has a Cholesky factor.
bool positive_semidefinite(const std::vector<double>& a, std::size_t n) {
    double trace = 0;
    for (std::size_t i = 0; i < n; ++i) trace += a[i * n + i];
    const double ridge = 1e-6 * trace / static_cast<double>(n) + 1e-30;
    std::vector<double> l(n * n, 0.0);
    for (std::size_t j = 0; j < n; ++j) {
        double d = a[j * n + j] + ridge;
        for (std::size_t k = 0; k < j; ++k) d -= l[j * n + k] * l[j * n + k];
        if (!(d > 0)) return false;
        l[j * n + j] = std::sqrt(d);
        for (std::size_t i = j + 1; i < n; ++i) {
            double s = a[i * n + j];
            for (std::size_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
            l[i * n + j] = s / l[j * n + j];
        }
    }
    return true;
}

// Final RMSNorm + output layer over the pass's hidden states ([tokens, hidden]), naive double.
std::vector<float> logits_from_hidden(const Checkpoint& ckpt, const LlamaConfig& cfg, const std::vector<float>& hidden) {
    const std::vector<float> norm = ckpt.read_f32(*ckpt.find("model.norm.weight"));
    const std::vector<float> head =
        ckpt.read_f32(*ckpt.find(cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
    const std::size_t h = static_cast<std::size_t>(cfg.hidden_size), vocab = static_cast<std::size_t>(cfg.vocab_size);
    const std::size_t tokens = hidden.size() / h;
    std::vector<float> out(tokens * vocab);
    std::vector<double> xn(h);
    for (std::size_t t = 0; t < tokens; ++t) {
        double ss = 0;
        for (std::size_t i = 0; i < h; ++i) ss += static_cast<double>(hidden[t * h + i]) * hidden[t * h + i];
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(h) + cfg.rms_norm_eps);
        for (std::size_t i = 0; i < h; ++i) xn[i] = hidden[t * h + i] * inv * norm[i];
        for (std::size_t v = 0; v < vocab; ++v) {
            double s = 0;
            for (std::size_t i = 0; i < h; ++i) s += xn[i] * head[v * h + i];
            out[t * vocab + v] = static_cast<float>(s);
        }
    }
    return out;
}

// Runs the calibration layer stack over `tokens` (chunks of ctx) and compares its logits
// with the engine's F32 reference model, chunk by chunk from position 0. The tolerance is
// 1e-4 of the largest reference logit. As a check that it is tight enough to catch
// attention that is wrong (positions, mask, heads), the reference's logits of the same
// chunk attending also to the previous chunk (positions ctx..2ctx-1) must differ by far more.
void check_against_engine(const std::string& model_dir, const std::vector<std::int32_t>& tokens, int ctx) {
    const Checkpoint ckpt = Checkpoint::open(model_dir);
    const LlamaConfig cfg = LlamaConfig::load(*ckpt.config_path());
    ThreadPool pool(2);
    calib::LayerRunner runner(ckpt, cfg, tokens, ctx, pool);
    for (std::int64_t l = 0; l < cfg.num_hidden_layers; ++l) runner.run_layer(l, nullptr);
    const std::vector<float> ours = logits_from_hidden(ckpt, cfg, runner.hidden());

    LoadOptions lo{0, 2, 2 * ctx, 0};
    lo.kv_cache = KvCacheType::F32;  // the layer pass keeps keys and values in F32
    auto model = Model::load(model_dir, lo);
    const std::size_t vocab = static_cast<std::size_t>(cfg.vocab_size), C = static_cast<std::size_t>(ctx);
    const std::size_t chunks = tokens.size() / C;
    REQUIRE(chunks >= 2);
    std::vector<float> ref(C * vocab), continued(C * vocab);
    double max_ref = 0, max_diff = 0, max_context_diff = 0;
    for (std::size_t c = 0; c < chunks; ++c) {
        model->forward_batch(tokens.data() + c * C, ctx, 0, ref.data());
        model->forward_batch(tokens.data() + ((c + chunks - 1) % chunks) * C, ctx, 0, nullptr);
        model->forward_batch(tokens.data() + c * C, ctx, ctx, continued.data());
        for (std::size_t i = 0; i < C * vocab; ++i) {
            max_ref = std::max(max_ref, std::abs(static_cast<double>(ref[i])));
            max_diff = std::max(max_diff, std::abs(static_cast<double>(ours[c * C * vocab + i]) - ref[i]));
            max_context_diff = std::max(max_context_diff, std::abs(static_cast<double>(continued[i]) - ref[i]));
        }
    }
    const double tol = 1e-4 * max_ref;
    INFO("max |logit| " << max_ref << ", max difference " << max_diff << ", with the previous chunk as context "
                        << max_context_diff);
    CHECK(max_ref > 0);
    CHECK(max_diff <= tol);
    CHECK(max_context_diff > 100 * tol);
}

std::vector<std::int32_t> stories_tokens(int ctx, int chunks) {
    const Tokenizer tok = Tokenizer::load(stories_dir() + "/tokenizer.json");
    return calibration_tokens(tok.encode(read_file(calib_text()), true, false), ctx, chunks, 1);
}

struct CliResult {
    int code;
    std::string out;
    std::string err;
};

CliResult bitttt_cli(const std::string& args, const TempDir& dir) {
    const std::string out = dir.file("cli.out"), err = dir.file("cli.err");
    const std::string cmd = std::string("'") + BITTTT_CLI_PATH + "' " + args + " >'" + out + "' 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

}  // namespace

TEST_CASE("calibrate: calibration_key maps every projection to the input it reads", "[calibrate]") {
    CHECK(calibration_key("model.layers.3.self_attn.q_proj.weight") == "model.layers.3.self_attn.qkv");
    CHECK(calibration_key("model.layers.3.self_attn.k_proj.weight") == "model.layers.3.self_attn.qkv");
    CHECK(calibration_key("model.layers.3.self_attn.v_proj.weight") == "model.layers.3.self_attn.qkv");
    CHECK(calibration_key("model.layers.3.self_attn.o_proj.weight") == "model.layers.3.self_attn.o_proj");
    CHECK(calibration_key("model.layers.3.mlp.gate_proj.weight") == "model.layers.3.mlp.gate_up");
    CHECK(calibration_key("model.layers.3.mlp.up_proj.weight") == "model.layers.3.mlp.gate_up");
    CHECK(calibration_key("model.layers.31.mlp.down_proj.weight") == "model.layers.31.mlp.down_proj");
    CHECK(calibration_key("model.layers.0.mlp.down_proj") == "model.layers.0.mlp.down_proj");
    for (const char* other : {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight",
                              "model.layers.0.input_layernorm.weight", "model.layers.x.mlp.up_proj.weight",
                              "model.layers.0.mlp.up_proj.bias", "layers.0.mlp.up_proj.weight", ""}) {
        INFO(other);
        CHECK_FALSE(calibration_key(other).has_value());
    }
    CHECK(calibration_layer_keys(2) == std::vector<std::string>{"model.layers.2.self_attn.qkv",
                                                                "model.layers.2.self_attn.o_proj",
                                                                "model.layers.2.mlp.gate_up",
                                                                "model.layers.2.mlp.down_proj"});
}

TEST_CASE("calibrate: statistics equal naive double sums, for any thread count", "[calibrate]") {
    // n spans three panels (the last partial); rows arrive in blocks of uneven sizes.
    const std::int64_t n = 300;
    const std::vector<std::int64_t> blocks = {1, 97, 256, 40};
    std::mt19937 rng(5);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<std::vector<float>> data;
    for (const std::int64_t rows : blocks) {
        std::vector<float> x(static_cast<std::size_t>(rows * n));
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t i = 0; i < n; ++i) x[static_cast<std::size_t>(r * n + i)] = d(rng) * (1.0f + 0.01f * i) + 0.3f;
        data.push_back(std::move(x));
    }
    std::vector<double> sum(static_cast<std::size_t>(n * n), 0.0);
    std::int64_t total = 0;
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        for (std::int64_t r = 0; r < blocks[b]; ++r) {
            const float* x = data[b].data() + r * n;
            for (std::int64_t i = 0; i < n; ++i)
                for (std::int64_t j = 0; j < n; ++j) sum[static_cast<std::size_t>(i * n + j)] += static_cast<double>(x[i]) * x[j];
        }
        total += blocks[b];
    }

    std::vector<float> packed1;
    for (const int threads : {1, 2}) {
        ThreadPool pool(threads);
        calib::InputStats s(n, true);
        for (std::size_t b = 0; b < blocks.size(); ++b) s.add(data[b].data(), blocks[b], pool);
        REQUIRE(s.count() == total);
        const std::vector<float> ms = s.mean_sq();
        std::vector<float> packed;
        s.packed_xtx([&](const float* v, std::size_t k) { packed.insert(packed.end(), v, v + k); });
        REQUIRE(packed.size() == static_cast<std::size_t>(n * (n + 1) / 2));
        double worst = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double want = sum[static_cast<std::size_t>(i * n + i)] / static_cast<double>(total);
            CHECK(ms[static_cast<std::size_t>(i)] == Approx(want).epsilon(1e-6));
            CHECK(packed[static_cast<std::size_t>(packed_upper_index(n, i, i))] == ms[static_cast<std::size_t>(i)]);
            for (std::int64_t j = i; j < n; ++j) {
                const double w = sum[static_cast<std::size_t>(i * n + j)] / static_cast<double>(total);
                const double scale = std::sqrt(sum[static_cast<std::size_t>(i * n + i)] * sum[static_cast<std::size_t>(j * n + j)]) /
                                     static_cast<double>(total);
                worst = std::max(worst, std::abs(packed[static_cast<std::size_t>(packed_upper_index(n, i, j))] - w) / scale);
            }
        }
        INFO("worst error relative to sqrt(E[x_i^2] E[x_j^2]): " << worst);
        CHECK(worst < 1e-6);
        if (threads == 1) packed1 = packed;
        else CHECK(packed == packed1);  // bit-identical for any thread count

        calib::InputStats diag(n, false);
        diag.add(data[0].data(), blocks[0], pool);
        std::size_t calls = 0;
        diag.packed_xtx([&](const float*, std::size_t) { ++calls; });
        CHECK(calls == 0);
    }
}

TEST_CASE("calibrate: 16k tokens with a large common offset keep float-exact averages", "[calibrate]") {
    // x = 3 + small noise: X^T X / tokens is ~9 everywhere. A float running sum over these
    // 16384 tokens is off by about 3e-6 relative, more than the 1e-6 allowed here; the
    // double accumulator leaves only the final rounding to float (~6e-8).
    const std::int64_t n = 9, rows = 256, blocks = 64;
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> noise(-0.01f, 0.01f);
    std::vector<long double> exact(static_cast<std::size_t>(n * n), 0.0L);
    ThreadPool pool(2);
    calib::InputStats s(n, true);
    std::vector<float> x(static_cast<std::size_t>(rows * n));
    for (std::int64_t b = 0; b < blocks; ++b) {
        for (auto& v : x) v = 3.0f + noise(rng);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t i = 0; i < n; ++i)
                for (std::int64_t j = 0; j < n; ++j)
                    exact[static_cast<std::size_t>(i * n + j)] += static_cast<long double>(x[static_cast<std::size_t>(r * n + i)]) * x[static_cast<std::size_t>(r * n + j)];
        s.add(x.data(), rows, pool);
    }
    std::vector<float> packed;
    s.packed_xtx([&](const float* v, std::size_t k) { packed.insert(packed.end(), v, v + k); });
    double worst = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t j = i; j < n; ++j) {
            const long double want = exact[static_cast<std::size_t>(i * n + j)] / (rows * blocks);
            worst = std::max(worst, static_cast<double>(std::abs(packed[static_cast<std::size_t>(packed_upper_index(n, i, j))] - want) / want));
        }
    }
    INFO("worst relative error " << worst);
    CHECK(worst < 1e-6);
}

TEST_CASE("calibrate: the generic and AVX2 builds of the GEMMs agree with naive sums", "[calibrate][avx2]") {
    std::mt19937 rng(9);
    std::normal_distribution<float> d(0.0f, 1.0f);
    auto fill = [&](std::size_t n) {
        std::vector<float> v(n);
        for (auto& x : v) x = d(rng);
        return v;
    };
    const std::int64_t rows = 37, in = 53, out = 29, C = 19, hd = 8, n = 45, r0 = 16, pr = 12;
    const std::vector<float> x = fill(static_cast<std::size_t>(rows * in)), w = fill(static_cast<std::size_t>(out * in));
    const std::vector<float> q = fill(static_cast<std::size_t>(C * 2 * hd)), kv = fill(static_cast<std::size_t>(C * hd));
    std::vector<const calib::GemmOps*> sets = {&calib::gemm_ops_generic()};
    if (calib::gemm_ops_avx2()) sets.push_back(calib::gemm_ops_avx2());
    else WARN("AVX2 build not usable here: only the generic GEMMs are tested");
    CHECK((calib::gemm_ops().isa == std::string("generic") || calib::gemm_ops().isa == std::string("avx2")));
    for (const calib::GemmOps* ops : sets) {
        INFO(ops->isa);
        // y (row stride out + 3) = x w^T
        std::vector<float> y(static_cast<std::size_t>(rows * (out + 3)), -7.0f);
        ops->matmul_wt(x.data(), rows, in, w.data(), out, y.data(), out + 3);
        for (std::int64_t r = 0; r < rows; ++r) {
            for (std::int64_t o = 0; o < out; ++o) {
                double s = 0;
                for (std::int64_t i = 0; i < in; ++i) s += static_cast<double>(x[static_cast<std::size_t>(r * in + i)]) * w[static_cast<std::size_t>(o * in + i)];
                CHECK(y[static_cast<std::size_t>(r * (out + 3) + o)] == Approx(s).margin(1e-4));
            }
            CHECK(y[static_cast<std::size_t>(r * (out + 3) + out)] == -7.0f);
        }
        // one panel of the upper triangle, added twice
        const std::vector<float> xs(x.begin(), x.begin() + rows * n);
        std::vector<double> acc(static_cast<std::size_t>(pr * (n - r0)), 0.0);
        ops->xtx_panel(xs.data(), rows, n, r0, pr, acc.data());
        ops->xtx_panel(xs.data(), rows, n, r0, pr, acc.data());
        for (std::int64_t i = 0; i < pr; ++i) {
            for (std::int64_t j = 0; j < n - r0; ++j) {
                double s = 0;
                for (std::int64_t r = 0; r < rows; ++r) s += static_cast<double>(xs[static_cast<std::size_t>(r * n + r0 + i)]) * xs[static_cast<std::size_t>(r * n + r0 + j)];
                CHECK(acc[static_cast<std::size_t>(i * (n - r0) + j)] == Approx(2 * s).margin(1e-4));
            }
        }
        // causal attention, second head of q (row stride 2 hd)
        std::vector<float> o(static_cast<std::size_t>(C * hd)), scores(static_cast<std::size_t>(C * C));
        const float scale = 0.35f;
        ops->attention(q.data() + hd, 2 * hd, kv.data(), kv.data(), hd, C, hd, scale, o.data(), hd, scores.data());
        for (std::int64_t i = 0; i < C; ++i) {
            std::vector<double> p(static_cast<std::size_t>(i + 1));
            double mx = -1e300, sum = 0;
            for (std::int64_t j = 0; j <= i; ++j) {
                double s = 0;
                for (std::int64_t t = 0; t < hd; ++t) s += static_cast<double>(q[static_cast<std::size_t>(i * 2 * hd + hd + t)]) * kv[static_cast<std::size_t>(j * hd + t)];
                p[static_cast<std::size_t>(j)] = s * scale;
                mx = std::max(mx, s * scale);
            }
            for (auto& e : p) sum += (e = std::exp(e - mx));
            for (std::int64_t t = 0; t < hd; ++t) {
                double want = 0;
                for (std::int64_t j = 0; j <= i; ++j) want += p[static_cast<std::size_t>(j)] / sum * kv[static_cast<std::size_t>(j * hd + t)];
                CHECK(o[static_cast<std::size_t>(i * hd + t)] == Approx(want).margin(1e-5));
            }
        }
    }
}

TEST_CASE("calibrate: calibration_tokens cuts chunks, puts BOS first and rejects short text", "[calibrate]") {
    std::vector<std::int32_t> text(100);
    for (int i = 0; i < 100; ++i) text[static_cast<std::size_t>(i)] = 10 + i;
    const auto t = calibration_tokens(text, 16, 3, 1);
    REQUIRE(t.size() == 48);
    CHECK(t[0] == 1);
    CHECK(t[1] == 11);
    CHECK(t[16] == 1);
    CHECK(t[17] == 27);
    CHECK(t[47] == 57);
    CHECK(calibration_tokens(text, 16, 3, -1)[16] == 26);
    try {
        calibration_tokens(text, 16, 7, 1);
        FAIL("no error");
    } catch (const UsageError& e) {
        const std::string m = e.what();
        CHECK(m.find("100 tokens") != std::string::npos);
        CHECK(m.find("--chunks 7 needs 112") != std::string::npos);
    }
}

TEST_CASE("calibrate: SafetensorsStreamWriter writes in order, rejects misuse, leaves nothing on failure",
          "[calibrate][safetensors]") {
    TempDir dir;
    const std::string path = dir.file("s.safetensors");
    std::vector<SafetensorsStreamWriter::Spec> specs = {{"a", DType::F32, {3}}, {"e", DType::F32, {0}},
                                                        {"b", DType::F32, {2, 2}}};
    {
        SafetensorsStreamWriter w(path, specs, {{"format", "test"}});
        const float a[3] = {1, 2, 3}, b[4] = {4, 5, 6, 7};
        CHECK_THROWS_AS(w.append("b", b, 4), UsageError);  // out of order
        w.append("a", a, 8);
        CHECK_THROWS_AS(w.append("a", a + 2, 8), UsageError);  // past the end
        w.append("a", a + 2, 4);
        w.append("b", b, 16);
        w.finish();
        CHECK(w.file_size() == std::filesystem::file_size(path));
    }
    const SafetensorsFile f(path);
    CHECK(f.metadata().at("format") == "test");
    REQUIRE(f.tensors().size() == 3);
    const TensorInfo* b = f.find("b");
    REQUIRE(b);
    float v[4];
    std::memcpy(v, f.data(*b), 16);
    CHECK(v[3] == 7.0f);
    {
        SafetensorsStreamWriter w(dir.file("t.safetensors"), specs, {});
        const float a[3] = {1, 2, 3};
        w.append("a", a, 12);
        CHECK_THROWS_AS(w.finish(), UsageError);
    }
    CHECK(bitttt::test::list_dir(dir.path()) == std::vector<std::string>{"s.safetensors"});
}

TEST_CASE("calibrate: the layer pass matches the engine with GQA and llama3 RoPE scaling", "[calibrate]") {
    TempDir dir;
    bitttt::test::TinyModel m;  // 4 heads over 2 kv heads
    m.write(dir.path());
    json cfg = m.config();
    cfg["max_position_embeddings"] = 256;
    // head_dim 8: wavelengths 6.3, 63, 628, 6283 fall in all three llama3 bands.
    cfg["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 64}};
    std::ofstream(dir.path() / "config.json") << cfg.dump(2);
    std::mt19937 rng(3);
    std::uniform_int_distribution<std::int32_t> id(0, static_cast<std::int32_t>(m.vocab - 1));
    // 5 chunks of 48: several chunks share one attention block (causal mask and positions per chunk).
    std::vector<std::int32_t> tokens(5 * 48);
    for (auto& t : tokens) t = id(rng);
    check_against_engine(dir.path().string(), tokens, 48);
}

TEST_CASE("calibrate: the layer pass matches the engine on stories260K", "[calibrate][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    BITTTT_REQUIRE_SHARED("text/tinystories/tinystories_calib.txt");
    check_against_engine(stories_dir(), stories_tokens(64, 6), 64);
}

TEST_CASE("calibrate: calibration files round-trip, are valid statistics and do not depend on threads",
          "[calibrate][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    BITTTT_REQUIRE_SHARED("text/tinystories/tinystories_calib.txt");
    TempDir dir;
    const int ctx = 32, chunks = 4;
    const std::vector<std::int32_t> tokens = stories_tokens(ctx, chunks);
    CalibrateOptions o;
    o.ctx = ctx;
    o.chunks = chunks;
    o.text = "tinystories_calib.txt";
    o.threads = 1;
    const std::string path = dir.file("calib.safetensors");
    const CalibrateReport r = calibrate(stories_dir(), tokens, path, o);
    CHECK(r.tokens == ctx * chunks);
    CHECK(r.layers == 5);
    CHECK(r.keys.size() == 20);
    CHECK(r.size_bytes == std::filesystem::file_size(path));

    const CalibrationFile f(path);
    CHECK(f.tokens() == ctx * chunks);
    CHECK(f.has_full());
    CHECK(f.keys().size() == 20);
    CHECK(f.metadata().at("format") == "bitttt-calibration");
    CHECK(f.metadata().at("stats") == "full");
    CHECK(f.metadata().at("chunks") == "4");
    CHECK(f.metadata().at("ctx") == "32");
    CHECK(f.metadata().at("text") == "tinystories_calib.txt");

    const Checkpoint ckpt = Checkpoint::open(stories_dir());
    const LlamaConfig cfg = LlamaConfig::load(*ckpt.config_path());
    for (const auto& [name, shape] : cfg.required_tensors()) {
        if (!calibration_key(name)) {
            CHECK(f.mean_sq(name, shape.back()) == nullptr);
            continue;
        }
        INFO(name);
        const std::int64_t n = shape[1];
        const float* ms = f.mean_sq(name, n);
        REQUIRE(ms != nullptr);
        CHECK_THROWS_AS(f.mean_sq(name, n + 1), FormatError);
        std::vector<double> xtx;
        REQUIRE(f.xtx(name, n, xtx));
        REQUIRE(xtx.size() == static_cast<std::size_t>(n * n));
        bool symmetric = true, diagonal = true;
        for (std::int64_t i = 0; i < n; ++i) {
            diagonal = diagonal && xtx[static_cast<std::size_t>(i * n + i)] == static_cast<double>(ms[i]) && ms[i] > 0;
            for (std::int64_t j = 0; j < n; ++j)
                symmetric = symmetric && xtx[static_cast<std::size_t>(i * n + j)] == xtx[static_cast<std::size_t>(j * n + i)];
        }
        CHECK(symmetric);
        CHECK(diagonal);
        CHECK(positive_semidefinite(xtx, static_cast<std::size_t>(n)));
    }

    // The qkv input of each layer, recomputed here from the pass's hidden states (naive,
    // double): RMSNorm(x) * input_layernorm.
    {
        ThreadPool pool(1);
        calib::LayerRunner runner(ckpt, cfg, tokens, ctx, pool);
        const std::int64_t h = cfg.hidden_size;
        for (std::int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            const std::vector<float> w = ckpt.read_f32(*ckpt.find(p + "input_layernorm.weight"));
            std::vector<double> sum(static_cast<std::size_t>(h * h), 0.0);
            const std::vector<float>& x = runner.hidden();
            std::vector<double> xn(static_cast<std::size_t>(h));
            for (std::int64_t t = 0; t < runner.tokens(); ++t) {
                double ss = 0;
                for (std::int64_t i = 0; i < h; ++i) ss += static_cast<double>(x[static_cast<std::size_t>(t * h + i)]) * x[static_cast<std::size_t>(t * h + i)];
                const double inv = 1.0 / std::sqrt(ss / static_cast<double>(h) + cfg.rms_norm_eps);
                for (std::int64_t i = 0; i < h; ++i) xn[static_cast<std::size_t>(i)] = x[static_cast<std::size_t>(t * h + i)] * inv * w[static_cast<std::size_t>(i)];
                for (std::int64_t i = 0; i < h; ++i)
                    for (std::int64_t j = 0; j < h; ++j) sum[static_cast<std::size_t>(i * h + j)] += xn[static_cast<std::size_t>(i)] * xn[static_cast<std::size_t>(j)];
            }
            std::vector<double> xtx;
            REQUIRE(f.xtx(p + "self_attn.q_proj.weight", h, xtx));
            double worst = 0, top = 0;
            for (std::size_t i = 0; i < sum.size(); ++i) {
                const double want = sum[i] / static_cast<double>(runner.tokens());
                worst = std::max(worst, std::abs(xtx[i] - want));
                top = std::max(top, std::abs(want));
            }
            INFO("layer " << l << ": worst " << worst << " of " << top);
            CHECK(worst <= 1e-4 * top);
            runner.run_layer(l, nullptr);
        }
    }

    // Another thread count gives the same bytes; diagonal stats hold only mean squares.
    o.threads = 2;
    calibrate(stories_dir(), tokens, dir.file("calib2.safetensors"), o);
    CHECK(slurp(path) == slurp(dir.file("calib2.safetensors")));
    o.full = false;
    calibrate(stories_dir(), tokens, dir.file("diag.safetensors"), o);
    const CalibrationFile g(dir.file("diag.safetensors"));
    CHECK_FALSE(g.has_full());
    CHECK(g.metadata().at("stats") == "diag");
    std::vector<double> none;
    CHECK_FALSE(g.xtx("model.layers.0.mlp.down_proj.weight", cfg.intermediate_size, none));
    const float* a = f.mean_sq("model.layers.4.mlp.down_proj.weight", cfg.intermediate_size);
    const float* b = g.mean_sq("model.layers.4.mlp.down_proj.weight", cfg.intermediate_size);
    REQUIRE((a && b));
    CHECK(std::equal(a, a + cfg.intermediate_size, b));
}

TEST_CASE("calibrate: corrupt, truncated or foreign files are rejected naming the file", "[calibrate]") {
    TempDir dir;
    const std::int64_t n = 4;
    auto write = [&](const std::string& name, std::map<std::string, std::string> md, std::int64_t xtx_len,
                     float first = 1.0f) {
        SafetensorsWriter w;
        w.set_metadata(std::move(md));
        w.add("model.layers.0.mlp.gate_up.mean_sq", DType::F32, {n},
              bitttt::test::f32_bytes({first, 2.0f, 3.0f, 4.0f}));
        w.add("model.layers.0.mlp.gate_up.xtx", DType::F32, {xtx_len},
              bitttt::test::f32_bytes(std::vector<float>(static_cast<std::size_t>(xtx_len), 0.5f)));
        w.write(dir.file(name));
        return dir.file(name);
    };
    const std::map<std::string, std::string> good = {
        {"format", "bitttt-calibration"}, {"version", "1"}, {"tokens", "64"}, {"stats", "full"}};
    const std::string ok = write("ok.safetensors", good, n * (n + 1) / 2);
    {
        const CalibrationFile f(ok);
        CHECK(f.tokens() == 64);
        std::vector<double> x;
        REQUIRE(f.xtx("model.layers.0.mlp.up_proj.weight", n, x));
        CHECK(x[1 * n + 0] == 0.5);
        CHECK(f.mean_sq("model.layers.1.mlp.up_proj.weight", n) == nullptr);
    }
    auto rejects = [&](const std::string& path, const std::string& fragment) {
        INFO(path << ": expecting '" << fragment << "'");
        try {
            CalibrationFile f(path);
            FAIL("accepted");
        } catch (const FormatError& e) {
            const std::string m = e.what();
            INFO(m);
            CHECK(m.find(path) != std::string::npos);
            CHECK(m.find(fragment) != std::string::npos);
        }
    };
    // Truncated: the last tensor's data runs past the end.
    const std::string bytes = slurp(ok);
    std::ofstream(dir.file("cut.safetensors"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 8));
    rejects(dir.file("cut.safetensors"), "past end");
    // Garbage header.
    std::string junk = bytes;
    junk[10] = '\x01';
    std::ofstream(dir.file("junk.safetensors"), std::ios::binary).write(junk.data(), static_cast<std::streamsize>(junk.size()));
    rejects(dir.file("junk.safetensors"), "junk.safetensors");
    auto md = good;
    md["format"] = "pt";
    rejects(write("pt.safetensors", md, 10), "not a calibration file");
    md = good;
    md["tokens"] = "-3";
    rejects(write("tok.safetensors", md, 10), "tokens");
    rejects(write("len.safetensors", good, 9), "n(n+1)/2");
    rejects(write("nan.safetensors", good, 10, std::nanf("")), "mean_sq");
    md = good;
    md["stats"] = "diag";
    rejects(write("diag.safetensors", md, 10), "diag");
}

TEST_CASE("calibrate: the command line writes a file and reports it in JSON, with clear usage errors",
          "[calibrate][cli][shared]") {
    TempDir dir;
    const CliResult help = bitttt_cli("--help", dir);
    CHECK(help.out.find("calibrate") != std::string::npos);
    CHECK(help.out.find("--stats") != std::string::npos);
    const CliResult missing = bitttt_cli("calibrate some-model -o '" + dir.file("x.safetensors") + "'", dir);
    CHECK(missing.code == 2);
    CHECK(missing.err.find("--file") != std::string::npos);

    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    BITTTT_REQUIRE_SHARED("text/tinystories/tinystories_calib.txt");
    const std::string out = dir.file("c.safetensors");
    const CliResult r = bitttt_cli("calibrate '" + stories_dir() + "' --file '" + calib_text() +
                                       "' --ctx 32 --chunks 2 --json -o '" + out + "'",
                                   dir);
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = json::parse(r.out);
    CHECK(j["tokens"] == 64);
    CHECK(j["chunks"] == 2);
    CHECK(j["ctx"] == 32);
    CHECK(j["stats"] == "full");
    CHECK(j["keys"].size() == 20);
    CHECK(j["seconds"].get<double>() >= 0);
    CHECK(j["layer_seconds"].size() == 5);
    CHECK(j["peak_rss_bytes"].get<double>() > 0);
    CHECK(j["size_bytes"] == std::filesystem::file_size(out));
    CHECK(CalibrationFile(out).tokens() == 64);
    const CliResult ins = bitttt_cli("inspect '" + out + "' --json --verify", dir);
    REQUIRE(ins.code == 0);
    const json k = json::parse(ins.out);
    CHECK(k["tokens"] == 64);
    CHECK(k["full"] == true);
    CHECK(k["verified"] == true);
    CHECK(k["keys"].size() == 20);
    CHECK(k["keys"][3]["key"] == "model.layers.0.mlp.down_proj");
    CHECK(k["keys"][3]["n"] == 172);
    const CliResult text = bitttt_cli("inspect '" + out + "'", dir);
    CHECK(text.code == 0);
    CHECK(text.out.find("calibration file") != std::string::npos);

    std::ofstream(dir.file("short.txt")) << "Once upon a time there was a cat.";
    const std::string out2 = dir.file("s.safetensors");
    const CliResult s = bitttt_cli("calibrate '" + stories_dir() + "' --file '" + dir.file("short.txt") +
                                       "' --ctx 64 -o '" + out2 + "'",
                                   dir);
    CHECK(s.code == 2);
    CHECK(s.err.find("tokens") != std::string::npos);
    CHECK(s.err.find("--chunks 64") != std::string::npos);
    CHECK(std::count(s.err.begin(), s.err.end(), '\n') == 1);
    CHECK_FALSE(std::filesystem::exists(out2));
    const CliResult longctx = bitttt_cli("calibrate '" + stories_dir() + "' --file '" + calib_text() +
                                             "' --ctx 1024 -o '" + out2 + "'",
                                         dir);
    CHECK(longctx.code == 2);
    CHECK(longctx.err.find("max_position_embeddings (512)") != std::string::npos);
}
