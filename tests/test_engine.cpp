// The engine: scalar ternary GEMV against a dequantised float product, int8 activation
// quantisation, RoPE (with llama3 scaling) against values computed here, the whole
// forward pass against a naive double-precision reference, --bases truncation,
// determinism across thread counts, sampling, and the stories260K golden outputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <fstream>
#include <limits>
#include <random>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/generate.h"
#include "bitttt/model.h"
#include "bitttt/safetensors.h"
#include "fixtures.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"
#include "model/rope.h"
#include "model/sampler.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using bitttt::test::TinyModel;
using nlohmann::json;

namespace {

// Random packed ternary tensor bytes with valid scales.
std::vector<std::uint8_t> random_ternary(const TernaryLayout& l, std::mt19937& rng) {
    std::vector<std::uint8_t> data(l.total_bytes());
    std::uniform_int_distribution<int> trit(-1, 1);
    std::uniform_real_distribution<float> scale(0.001f, 0.1f);
    std::vector<std::int8_t> t(static_cast<std::size_t>(l.block_size));
    for (std::int64_t r = 0; r < l.rows; ++r) {
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            std::uint8_t* blk = data.data() + r * l.row_bytes() + b * l.block_bytes();
            for (int k = 0; k < l.bases; ++k) {
                const std::uint16_t h = f32_to_f16(scale(rng));
                blk[2 * k] = static_cast<std::uint8_t>(h & 0xFF);
                blk[2 * k + 1] = static_cast<std::uint8_t>(h >> 8);
                const std::int64_t valid = std::min<std::int64_t>(l.block_size, l.cols - b * l.block_size);
                for (int p = 0; p < l.block_size; ++p) t[p] = p < valid ? static_cast<std::int8_t>(trit(rng)) : 0;
                pack_trits(l.packing, t.data(), l.block_size, blk + 2 * l.bases + k * l.group_bytes());
            }
        }
    }
    return data;
}

// Writes the TinyModel fixture to dir/m and converts it to dir/m.btt with `bases` bases.
ConvertOptions convert_tiny(const TempDir& dir, int bases) {
    TinyModel().write(dir.path() / "m");
    ConvertOptions o;
    o.input = (dir.path() / "m").string();
    o.output = dir.file("m.btt");
    o.bases = bases;
    o.threads = 1;
    convert(o);
    return o;
}

}  // namespace

TEST_CASE("engine: int8 activation quantisation", "[engine][kernels]") {
    std::vector<float> x = {0.5f, -2.0f, 1.0f, 0.0f, 1.99f};
    std::vector<std::int8_t> q(8, 99);
    float s = kernels::quantize_int8(x.data(), 5, q.data(), 8);
    CHECK(s == Approx(2.0f / 127));
    CHECK(q[1] == -127);
    CHECK(q[3] == 0);
    CHECK(q[5] == 0);
    CHECK(q[7] == 0);  // padding zeroed
    for (int i = 0; i < 5; ++i) CHECK(std::fabs(q[i] * s - x[i]) <= s / 2 + 1e-7f);
    std::vector<float> zero(3, 0.0f);
    CHECK(kernels::quantize_int8(zero.data(), 3, q.data(), 3) == 0.0f);
    // Non-finite activations (a model whose values overflowed; a fuzzer finding: NaN reached
    // an undefined float -> int8 conversion): zeros under a NaN scale, so the row's products
    // stay non-finite for the output check to report.
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (const std::vector<float>& bad : {std::vector<float>{nan, 1.0f, -0.5f}, std::vector<float>{1.0f, -inf, 0.5f},
                                          std::vector<float>{0.0f, 0.0f, inf}}) {
        std::fill(q.begin(), q.end(), std::int8_t{99});
        CHECK(std::isnan(kernels::quantize_int8(bad.data(), 3, q.data(), 4)));
        for (int i = 0; i < 4; ++i) CHECK(q[i] == 0);
    }
    // A row of subnormals (a fuzzer finding: 127 / amax overflowed and 0 * inf gave a NaN
    // that reached the float -> int8 conversion): quantised like any other row.
    const float tiny = std::numeric_limits<float>::denorm_min();
    for (const std::vector<float>& small : {std::vector<float>{tiny, 0.0f, -tiny}, std::vector<float>{2 * tiny, tiny, 0.0f},
                                            std::vector<float>{1e-39f, -5e-40f, 0.0f}}) {
        const float sc = kernels::quantize_int8(small.data(), 3, q.data(), 4);
        // The scale amax / 127 may itself underflow to 0 (then the row reads as zeros).
        CHECK(sc >= 0.0f);
        CHECK(q[3] == 0);
        for (int i = 0; i < 3; ++i) {
            CHECK(std::abs(q[i]) <= 127);
            if (sc > 0.0f) CHECK(std::fabs(q[i] * static_cast<double>(sc) - small[i]) <= sc);
        }
    }
    CHECK(q[0] == 127);
}

#ifdef BITTTT_HAVE_AVX2_KERNEL
TEST_CASE("engine: the AVX2 activation quantiser gives the reference's bits", "[engine][kernels]") {
    if (!kernels::avx2_available()) {
        WARN("no AVX2 on this CPU: quantize_int8_avx2 not tested");
        return;
    }
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const float tiny = std::numeric_limits<float>::denorm_min();
    auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
    int cases = 0;
    for (std::int64_t n : {1, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 255, 257, 2048, 8197}) {
        for (int kind = 0; kind < 9; ++kind) {
            std::vector<float> x(static_cast<std::size_t>(n));
            for (auto& v : x) v = normal(rng) * (kind == 1 ? 1e-30f : kind == 2 ? 1e30f : 1.0f);
            const std::size_t at = static_cast<std::size_t>(rng() % static_cast<std::uint32_t>(n));
            switch (kind) {
                case 3:  // exact ties: max 127, so x * 127 / max = x, and halves round to even
                    for (std::size_t i = 0; i < x.size(); ++i) {
                        x[i] = static_cast<float>(static_cast<int>(i % 254) - 127) + 0.5f;  // -126.5 .. 126.5
                    }
                    x[at] = 127.0f;
                    break;
                case 4: x[at] = nan; break;  // anywhere: in the vector part or the tail
                case 5: x[at] = -inf; break;
                case 6: std::fill(x.begin(), x.end(), 0.0f); break;
                case 7: std::fill(x.begin(), x.end(), -0.0f); x[at] = tiny; break;  // a subnormal max
                case 8: x[at] = 1e4f; break;  // one outlier: most values round to 0 or +-1
                default: break;
            }
            for (std::int64_t pad : {std::int64_t{0}, std::int64_t{13}}) {
                INFO("n " << n << ", kind " << kind << ", padding " << pad);
                std::vector<std::int8_t> qa(static_cast<std::size_t>(n + pad), 99), qr(qa.size(), 77);
                const float sa = kernels::quantize_int8_avx2(x.data(), n, qa.data(), n + pad);
                const float sr = kernels::quantize_int8_ref(x.data(), n, qr.data(), n + pad);
                CHECK(same(sa, sr));
                CHECK(qa == qr);
                ++cases;
            }
        }
    }
    CHECK(cases == 15 * 9 * 2);
}
#endif  // BITTTT_HAVE_AVX2_KERNEL

TEST_CASE("engine: scalar ternary GEMV equals the dequantised float product", "[engine][kernels]") {
    std::mt19937 rng(11);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (std::int64_t cols : {1, 3, 7, 33, 64, 255, 257}) {
            for (int n = 1; n <= 4; ++n) {
                for (int bs : {8, 64}) {
                    TernaryLayout l{13, cols, n, bs, p};
                    auto data = random_ternary(l, rng);
                    std::vector<float> x = bitttt::test::gaussian(static_cast<std::size_t>(cols), 3, 1.0f);
                    std::vector<std::int8_t> q(static_cast<std::size_t>(l.blocks_per_row() * bs));
                    const float xs = kernels::quantize_int8(x.data(), cols, q.data(), static_cast<std::int64_t>(q.size()));
                    for (int k = 1; k <= n; ++k) {
                        INFO(packing_name(p) << " cols " << cols << " N " << n << " K " << k << " B " << bs);
                        std::vector<float> y(13);
                        kernels::ternary_gemv_ref(l, data.data(), k, q.data(), xs, 0, 13, y.data());
                        std::vector<float> w(static_cast<std::size_t>(cols));
                        for (std::int64_t r = 0; r < 13; ++r) {
                            dequantize_row(l, data.data(), r, k, w.data());
                            double ref = 0, mag = 0;
                            for (std::int64_t c = 0; c < cols; ++c) {
                                ref += static_cast<double>(w[c]) * q[c] * xs;
                                mag += std::fabs(static_cast<double>(w[c]) * q[c] * xs);
                            }
                            // float accumulation over blocks x bases: a few ulps of the magnitude.
                            CHECK(std::fabs(y[r] - ref) <= 1e-5 * mag + 1e-30);
                        }
                        // Rows computed in pieces give the same bits (thread splits do not matter).
                        std::vector<float> y2(13);
                        kernels::ternary_gemv_ref(l, data.data(), k, q.data(), xs, 0, 5, y2.data());
                        kernels::ternary_gemv_ref(l, data.data(), k, q.data(), xs, 5, 13, y2.data() + 5);
                        CHECK(y == y2);
                    }
                }
            }
        }
    }
}

TEST_CASE("engine: block integer sums are exact", "[engine][kernels]") {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> trit(-1, 1), act(-127, 127);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bs : {4, 20, 64, 128, 256}) {
            std::vector<std::int8_t> t(static_cast<std::size_t>(bs)), q(static_cast<std::size_t>(bs));
            std::vector<std::uint8_t> g(group_bytes(p, bs));
            for (int it = 0; it < 50; ++it) {
                std::int32_t want = 0;
                for (int i = 0; i < bs; ++i) {
                    t[i] = static_cast<std::int8_t>(trit(rng));
                    q[i] = static_cast<std::int8_t>(it == 0 ? 127 : act(rng));
                    want += t[i] * q[i];
                }
                pack_trits(p, t.data(), bs, g.data());
                REQUIRE(kernels::ternary_block_dot_ref(p, g.data(), bs, q.data()) == want);
            }
        }
    }
}

TEST_CASE("engine: RoPE frequencies and rotation, llama3 and linear scaling", "[engine][rope]") {
    LlamaConfig c;
    c.head_dim = 128;
    c.rope_theta = 500000.0;
    c.rope_scaling.type = "llama3";
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 8192;
    std::vector<float> f = rope_inv_freq(c);
    REQUIRE(f.size() == 64);
    const double pi = std::acos(-1.0);
    int kept = 0, divided = 0, smoothed = 0;
    for (int i = 0; i < 64; ++i) {
        const double base = std::pow(500000.0, -2.0 * i / 128.0);
        const double wavelen = 2 * pi / base;
        double want;
        if (wavelen < 8192.0 / 4.0) {
            want = base;  // high frequencies: unchanged
            ++kept;
        } else if (wavelen > 8192.0 / 1.0) {
            want = base / 8.0;  // low frequencies: slowed down by the factor
            ++divided;
        } else {
            const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
            want = (1 - smooth) * base / 8.0 + smooth * base;
            ++smoothed;
        }
        CHECK(f[i] == Approx(want).epsilon(1e-6));
    }
    CHECK(kept > 0);
    CHECK(divided > 0);
    CHECK(smoothed > 0);
    CHECK(f[0] == 1.0f);

    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = 4.0;
    CHECK(rope_inv_freq(c)[3] == Approx(std::pow(500000.0, -6.0 / 128.0) / 4.0).epsilon(1e-6));

    // apply(): pairs (i, i + half) rotate by pos * inv_freq[i], as complex multiplication.
    c.rope_scaling.type = "none";
    c.head_dim = 8;
    c.rope_theta = 10000.0;
    Rope rope(c);
    std::vector<float> v = bitttt::test::gaussian(16, 9, 1.0f), orig = v;
    rope.apply(v.data(), 2, 7);
    for (int h = 0; h < 2; ++h) {
        for (int i = 0; i < 4; ++i) {
            const double ang = 7.0 * std::pow(10000.0, -2.0 * i / 8.0);
            std::complex<double> z(orig[h * 8 + i], orig[h * 8 + i + 4]);
            z *= std::polar(1.0, ang);
            CHECK(v[h * 8 + i] == Approx(z.real()).margin(1e-5));
            CHECK(v[h * 8 + i + 4] == Approx(z.imag()).margin(1e-5));
        }
    }
}

namespace {

// A naive double-precision Llama forward over a whole sequence, written independently
// of src/model: returns the logits of the last position.
std::vector<double> naive_forward(const Checkpoint& ck, const TinyModel& m, const std::vector<std::int32_t>& toks) {
    auto W = [&](const std::string& n) {
        std::vector<float> f = ck.read_f32(*ck.find(n));
        return std::vector<double>(f.begin(), f.end());
    };
    const int H = static_cast<int>(m.hidden), F = static_cast<int>(m.inter), nh = static_cast<int>(m.heads),
              nkv = static_cast<int>(m.kv_heads), hd = H / nh, T = static_cast<int>(toks.size());
    auto matvec = [](const std::vector<double>& w, const std::vector<double>& x, int rows) {
        const int cols = static_cast<int>(x.size());
        std::vector<double> y(static_cast<std::size_t>(rows), 0.0);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c) y[r] += w[static_cast<std::size_t>(r) * cols + c] * x[c];
        return y;
    };
    auto rms = [](const std::vector<double>& x, const std::vector<double>& g) {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + 1e-5);
        std::vector<double> y(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
        return y;
    };
    auto rope = [&](std::vector<double>& v, int heads, int pos) {
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < hd / 2; ++i) {
                const double ang = pos * std::pow(10000.0, -2.0 * i / hd);
                const double a = v[h * hd + i], b = v[h * hd + i + hd / 2];
                v[h * hd + i] = a * std::cos(ang) - b * std::sin(ang);
                v[h * hd + i + hd / 2] = b * std::cos(ang) + a * std::sin(ang);
            }
    };
    const std::vector<double> emb = W("model.embed_tokens.weight");
    std::vector<std::vector<double>> xs(static_cast<std::size_t>(T));
    for (int t = 0; t < T; ++t) xs[t].assign(emb.begin() + toks[t] * H, emb.begin() + (toks[t] + 1) * H);
    for (int l = 0; l < m.layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        auto wq = W(p + "self_attn.q_proj.weight"), wk = W(p + "self_attn.k_proj.weight"),
             wv = W(p + "self_attn.v_proj.weight"), wo = W(p + "self_attn.o_proj.weight"),
             g1 = W(p + "input_layernorm.weight"), g2 = W(p + "post_attention_layernorm.weight"),
             wg = W(p + "mlp.gate_proj.weight"), wu = W(p + "mlp.up_proj.weight"), wd = W(p + "mlp.down_proj.weight");
        std::vector<std::vector<double>> Q(T), K(T), V(T);
        for (int t = 0; t < T; ++t) {
            auto xn = rms(xs[t], g1);
            Q[t] = matvec(wq, xn, nh * hd);
            K[t] = matvec(wk, xn, nkv * hd);
            V[t] = matvec(wv, xn, nkv * hd);
            rope(Q[t], nh, t);
            rope(K[t], nkv, t);
        }
        for (int t = 0; t < T; ++t) {
            std::vector<double> att_out(static_cast<std::size_t>(nh * hd), 0.0);
            for (int h = 0; h < nh; ++h) {
                const int kvh = h / (nh / nkv);
                std::vector<double> s(static_cast<std::size_t>(t + 1));
                double mx = -1e300;
                for (int u = 0; u <= t; ++u) {
                    double d = 0;
                    for (int i = 0; i < hd; ++i) d += Q[t][h * hd + i] * K[u][kvh * hd + i];
                    s[u] = d / std::sqrt(static_cast<double>(hd));
                    mx = std::max(mx, s[u]);
                }
                double sum = 0;
                for (auto& v : s) sum += (v = std::exp(v - mx));
                for (int u = 0; u <= t; ++u)
                    for (int i = 0; i < hd; ++i) att_out[h * hd + i] += s[u] / sum * V[u][kvh * hd + i];
            }
            auto o = matvec(wo, att_out, H);
            for (int i = 0; i < H; ++i) xs[t][i] += o[i];
            auto xn = rms(xs[t], g2);
            auto g = matvec(wg, xn, F), u = matvec(wu, xn, F);
            for (int i = 0; i < F; ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
            auto d = matvec(wd, g, H);
            for (int i = 0; i < H; ++i) xs[t][i] += d[i];
        }
    }
    auto xn = rms(xs[T - 1], W("model.norm.weight"));
    return matvec(W("lm_head.weight"), xn, static_cast<int>(m.vocab));
}

LoadOptions opts(int bases, int threads, int ctx, KvCacheType kv) {
    LoadOptions o{bases, threads, ctx};
    o.kv_cache = kv;
    return o;
}

}  // namespace

TEST_CASE("engine: F32 forward pass matches a naive double-precision reference", "[engine][forward]") {
    TempDir dir;
    TinyModel tm;  // GQA 4/2 heads, untied lm_head, intermediate 44
    tm.write(dir.path() / "m");
    Checkpoint ck = Checkpoint::open((dir.path() / "m").string());
    const std::vector<std::int32_t> toks = {1, 17, 5, 63, 2, 40, 40};
    std::vector<double> want = naive_forward(ck, tm, toks);
    double mag = 0;
    for (double v : want) mag = std::max(mag, std::fabs(v));
    // With an F32 KV cache the only differences are float rounding; a binary16 cache adds
    // a relative error of at most 2^-11 to every key and value, which moves the logits by a
    // small multiple of that (here within 4 x 2^-11 of the largest).
    for (const auto& [kv, tol] : {std::pair{KvCacheType::F32, 1e-4}, std::pair{KvCacheType::F16, 4.0 / 2048}}) {
        INFO("kv cache " << kv_cache_type_name(kv));
        auto model = Model::load((dir.path() / "m").string(), opts(0, 2, 16, kv));
        CHECK(model->kv_cache_type() == kv);
        const float* logits = nullptr;
        for (std::size_t t = 0; t < toks.size(); ++t) logits = model->forward(toks[t], static_cast<int>(t));
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(logits[i] == Approx(want[i]).margin(tol * mag));
    }
}

TEST_CASE("engine: the KV cache's size, and binary16 by default", "[engine][kv]") {
    TempDir dir;
    TinyModel tm;  // 2 layers, 2 kv heads of 8
    tm.write(dir.path() / "m");
    const std::string path = (dir.path() / "m").string();
    const std::uint64_t elems = 2ull * 2 * 24 * 2 * 8;  // keys and values x layers x ctx x kv heads x head_dim
    auto by_default = Model::load(path, LoadOptions{0, 1, 24});
    CHECK(by_default->kv_cache_type() == KvCacheType::F16);
    CHECK(by_default->kv_cache_bytes() == 2 * elems);
    CHECK(Model::load(path, opts(0, 1, 24, KvCacheType::F32))->kv_cache_bytes() == 4 * elems);
}

TEST_CASE("engine: first K bases of an N-base file equal a K-base conversion", "[engine][bases]") {
    // True of the plain greedy residual fit (each base fitted to what the previous left);
    // tied scales and refinement fit all N bases together, so their prefixes differ.
    TempDir dir;
    TinyModel().write(dir.path() / "m");
    for (int n : {2, 3}) {
        ConvertOptions o;
        o.input = (dir.path() / "m").string();
        o.output = dir.file("n" + std::to_string(n) + ".btt");
        o.bases = n;
        o.scales = ScaleMode::Free;
        o.refine_rounds = 0;
        o.threads = 1;
        convert(o);
    }
    auto a = Model::load(dir.file("n3.btt"), LoadOptions{2, 1, 8});
    auto b = Model::load(dir.file("n2.btt"), LoadOptions{0, 1, 8});
    CHECK(a->bases() == 2);
    for (int pos = 0; pos < 5; ++pos) {
        const float* la = a->forward(3 + pos, pos);
        std::vector<float> va(la, la + 64);
        const float* lb = b->forward(3 + pos, pos);
        CHECK(va == std::vector<float>(lb, lb + 64));
    }
    CHECK_THROWS_WITH(Model::load(dir.file("n2.btt"), LoadOptions{3, 1, 8}), Catch::Contains("--bases 3"));
}

TEST_CASE("engine: results do not depend on the thread count", "[engine][threads]") {
    TempDir dir;
    const ConvertOptions o = convert_tiny(dir, 2);
    std::vector<std::vector<float>> runs;
    std::vector<std::vector<std::int32_t>> sampled;
    for (int threads : {1, 2, 3, 4}) {
        for (KvCacheType kv : {KvCacheType::F16, KvCacheType::F32}) {
            auto m = Model::load(o.output, opts(0, threads, 32, kv));
            std::vector<float> all;
            for (int pos = 0; pos < 6; ++pos) {
                const float* l = m->forward((pos * 7) % 64, pos);
                all.insert(all.end(), l, l + 64);
            }
            runs.push_back(all);
            auto m2 = Model::load(o.output, opts(0, threads, 32, kv));
            GenerateOptions g;
            g.max_new_tokens = 12;
            g.temperature = 1.0f;
            g.seed = 1234;
            sampled.push_back(generate(*m2, {1, 5, 9}, g).ids);
        }
    }
    // Runs alternate F16, F32: each the same on every thread count.
    for (std::size_t i = 2; i < runs.size(); ++i) {
        CHECK(runs[i] == runs[i % 2]);
        CHECK(sampled[i] == sampled[i % 2]);
    }
    CHECK(runs[0] != runs[1]);  // the two caches do differ
}

TEST_CASE("engine: batched prompt processing equals token-by-token", "[engine][batch]") {
    TempDir dir;
    const ConvertOptions o = convert_tiny(dir, 2);
    // 75 tokens: more than two micro-batches, the last one partial.
    std::vector<std::int32_t> toks(75);
    for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<std::int32_t>((i * 13 + 5) % 64);
    const std::size_t vocab = 64;
    for (const std::string& path : {o.output, (dir.path() / "m").string()}) {
        for (int threads : {1, 2}) {
            for (KvCacheType kv : {KvCacheType::F16, KvCacheType::F32}) {
                CAPTURE(path, threads, kv_cache_type_name(kv));
                auto seq = Model::load(path, opts(0, threads, 96, kv));
                std::vector<float> want;
                for (int pos = 0; pos < 75; ++pos) {
                    const float* l = seq->forward(toks[static_cast<std::size_t>(pos)], pos);
                    want.insert(want.end(), l, l + vocab);
                }
                auto bat = Model::load(path, opts(0, threads, 96, kv));
                std::vector<float> got(75 * vocab);
                // Positions 0..39, then 40..74 continuing the same cache.
                bat->forward_batch(toks.data(), 40, 0, got.data());
                const float* last = bat->forward_batch(toks.data() + 40, 35, 40, got.data() + 40 * vocab);
                CHECK(got == want);
                CHECK(std::vector<float>(last, last + vocab) == std::vector<float>(want.end() - 64, want.end()));
                // Without all_logits only the last token's logits come back; rewinding works.
                const float* l2 = bat->forward_batch(toks.data(), 33, 0, nullptr);
                CHECK(std::vector<float>(l2, l2 + vocab) ==
                      std::vector<float>(want.begin() + 32 * 64, want.begin() + 33 * 64));
                CHECK_THROWS_WITH(bat->forward_batch(toks.data(), 75, 30, nullptr), Catch::Contains("raise --ctx"));
            }
        }
    }
}

TEST_CASE("engine: sampler", "[engine][sampler]") {
    std::vector<float> logits = {0.1f, 2.0f, 2.0f, -1.0f};
    CHECK(argmax(logits.data(), 4) == 1);  // ties -> lowest id
    Sampler greedy(SamplerOptions{0.0f, 0, 1.0f, 1});
    CHECK(greedy.sample(logits.data(), 4) == 1);
    // top-k 1 is greedy whatever the temperature.
    Sampler k1(SamplerOptions{5.0f, 1, 1.0f, 7});
    for (int i = 0; i < 20; ++i) CHECK(k1.sample(logits.data(), 4) == 1);
    // Frequencies follow softmax(logits / T).
    Sampler s(SamplerOptions{1.0f, 0, 1.0f, 42});
    std::vector<int> counts(4, 0);
    const int n = 40000;
    for (int i = 0; i < n; ++i) ++counts[static_cast<std::size_t>(s.sample(logits.data(), 4))];
    double z = 0;
    for (float l : logits) z += std::exp(l);
    for (int i = 0; i < 4; ++i) {
        const double p = std::exp(logits[i]) / z;
        CHECK(std::fabs(counts[i] / static_cast<double>(n) - p) < 4 * std::sqrt(p * (1 - p) / n) + 1e-3);
    }
    // top-p keeps the smallest prefix reaching p: here only ids 1 and 2.
    Sampler tp(SamplerOptions{1.0f, 0, 0.8f, 3});
    for (int i = 0; i < 200; ++i) {
        const auto id = tp.sample(logits.data(), 4);
        CHECK((id == 1 || id == 2));
    }
    CHECK_THROWS(Sampler(SamplerOptions{1.0f, 0, 0.0f, 0}));
}

TEST_CASE("engine: loading errors are clear", "[engine]") {
    TempDir dir;
    bitttt::SafetensorsWriter w;
    w.add("w", DType::F32, {8, 8}, bitttt::test::f32_bytes(bitttt::test::gaussian(64, 1)));
    w.write(dir.file("bare.safetensors"));
    ConvertOptions o;
    o.input = dir.file("bare.safetensors");
    o.output = dir.file("bare.btt");
    o.bases = 1;
    convert(o);
    CHECK_THROWS_WITH(Model::load(o.output, {}), Catch::Contains("weights-only"));
    CHECK_THROWS_WITH(Model::load(dir.file("bare.safetensors"), {}), Catch::Contains("no config.json"));
    TinyModel().write(dir.path() / "m");
    auto m = Model::load((dir.path() / "m").string(), LoadOptions{0, 1, 4});
    CHECK_THROWS_WITH(m->forward(1, 4), Catch::Contains("context"));
    CHECK_THROWS_WITH(m->forward(64, 0), Catch::Contains("vocabulary"));
    GenerateOptions g;
    CHECK_THROWS_WITH(generate(*m, {1, 2, 3, 4, 5}, g), Catch::Contains("longer than the context"));
}
