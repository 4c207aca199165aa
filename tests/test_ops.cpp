// The AVX2 ops (src/kernels/ops_avx2.cpp) against the scalar reference (ops_scalar.cpp) and
// a double-precision computation, on awkward lengths, with tolerances derived from the data
// (n * eps * sum|terms| for sums, the stated exp error for softmax and SwiGLU): the vector
// exp over [-88, 88], softmax of huge, equal and -inf inputs, F16 GEMV on odd row counts,
// unaligned pointers and arbitrary row splits, attention over 1..300 positions with GQA
// strides, RoPE (bit-identical), the F16 row conversion (exact) and the dispatch table.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"

using namespace bitttt;
using namespace bitttt::kernels;

namespace {

constexpr float kEps = FLT_EPSILON;  // 2^-23
// ops_avx2.cpp's exp: max relative error 8.0e-8 measured (normal results); the bound tested
// leaves room for other compilers' rounding of the constants.
constexpr double kExpRelErr = 4e-7;
const std::vector<std::int64_t> kSizes = {1, 3, 7, 8, 33, 64, 255, 257, 4096};

bool skip_without_avx2() {
    if (avx2_available()) return false;
    WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 ops are not tested");
    return true;
}

// The AVX2 table through the dispatcher (builds where the AVX2 file is not compiled in).
const OpsTable& vec_ops() { return ops_table(Isa::Avx2); }

std::vector<float> randn(std::int64_t n, std::mt19937& rng, float sd = 1.0f) {
    std::normal_distribution<float> d(0.0f, sd);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = d(rng);
    return v;
}

bool same_bits(const float* a, const float* b, std::int64_t n) {
    return std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("ops: the dispatch table", "[ops]") {
    const OpsTable& s = ops_table(Isa::Generic);
    CHECK(s.rmsnorm == &scalar::rmsnorm);
    CHECK(s.attention == &scalar::attention);
    CHECK(s.gemv_f16 == &scalar::gemv_f16);
    if (avx2_available()) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
        CHECK(vec_ops().rmsnorm == &avx2::rmsnorm);
        CHECK(vec_ops().gemv_f16 == &avx2::gemv_f16);
#endif
    } else {
        CHECK_THROWS_AS(ops_table(Isa::Avx2), UsageError);
    }
}

#ifdef BITTTT_HAVE_AVX2_KERNEL
TEST_CASE("ops: vector exp accuracy over [-88, 88] and at the edges", "[ops]") {
    if (skip_without_avx2()) return;
    // Every 2^-10 over [-88, 88] plus random points: relative error against double exp
    // where the result is a normal float, absolute error of a few subnormal ulps below.
    std::vector<float> x;
    for (double v = -88.0; v <= 88.0; v += 1.0 / 1024) x.push_back(static_cast<float>(v));
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-88.0f, 88.0f);
    for (int i = 0; i < 100000; ++i) x.push_back(u(rng));
    std::vector<float> y(x.size());
    avx2::exp(x.data(), static_cast<std::int64_t>(x.size()), y.data());
    double worst = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double want = std::exp(static_cast<double>(x[i]));
        if (want >= FLT_MIN) {
            worst = std::max(worst, std::fabs(y[i] - want) / want);
        } else {
            INFO("x = " << x[i]);
            REQUIRE(std::fabs(y[i] - want) <= 4 * std::ldexp(1.0, -149));
        }
    }
    INFO("max relative error " << worst);
    CHECK(worst < kExpRelErr);

    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> edge = {0.0f, -0.0f, 1.0f, 88.7f, 88.75f, 89.0f, 100.0f, inf,
                                     -87.33f, -105.0f, -120.0f, -200.0f, -inf, std::nanf("")};
    std::vector<float> e(edge.size());
    avx2::exp(edge.data(), static_cast<std::int64_t>(edge.size()), e.data());
    CHECK(e[0] == 1.0f);
    CHECK(e[1] == 1.0f);
    CHECK(e[2] == Approx(std::exp(1.0)).epsilon(kExpRelErr));
    CHECK(e[3] == Approx(std::exp(static_cast<double>(88.7f))).epsilon(kExpRelErr));  // just below FLT_MAX
    CHECK(e[4] == inf);                                         // exp(88.75) > FLT_MAX
    CHECK(e[5] == inf);
    CHECK(e[6] == inf);
    CHECK(e[7] == inf);
    CHECK(e[8] / std::exp(static_cast<double>(-87.33f)) == Approx(1.0).epsilon(kExpRelErr));  // near FLT_MIN
    CHECK(e[9] == 0.0f);  // exp(-105) < half the smallest subnormal
    CHECK(e[10] == 0.0f);
    CHECK(e[11] == 0.0f);
    CHECK(e[12] == 0.0f);
    CHECK(std::isnan(e[13]));
}
#endif

TEST_CASE("ops: AVX2 dot, axpy, rmsnorm, swiglu match the scalar reference", "[ops]") {
    if (skip_without_avx2()) return;
    const OpsTable& v = vec_ops();
    std::mt19937 rng(11);
    for (std::int64_t n : kSizes) {
        INFO("n = " << n);
        const std::vector<float> a = randn(n, rng), b = randn(n, rng, 3.0f);

        // dot: both within n eps sum|a b| of the exact sum.
        double exact = 0.0, mag = 0.0;
        for (std::int64_t i = 0; i < n; ++i) {
            exact += static_cast<double>(a[i]) * b[i];
            mag += std::fabs(static_cast<double>(a[i]) * b[i]);
        }
        const double tol = static_cast<double>(n) * kEps * mag;
        CHECK(std::fabs(v.dot(a.data(), b.data(), n) - exact) <= tol);
        CHECK(std::fabs(scalar::dot(a.data(), b.data(), n) - exact) <= tol);

        // axpy: one FMA vs multiply + add, so within an ulp or two of each result.
        std::vector<float> y1 = randn(n, rng), y2 = y1;
        scalar::axpy(0.37f, a.data(), n, y1.data());
        v.axpy(0.37f, a.data(), n, y2.data());
        for (std::int64_t i = 0; i < n; ++i) {
            CHECK(std::fabs(y1[i] - y2[i]) <= 2 * kEps * (std::fabs(y1[i]) + std::fabs(0.37f * a[i])));
        }

        // rmsnorm: the sum of squares has relative error <= n eps, the inverse root half that.
        std::vector<float> r1(a.size()), r2(a.size());
        scalar::rmsnorm(a.data(), b.data(), n, 1e-5f, r1.data());
        v.rmsnorm(a.data(), b.data(), n, 1e-5f, r2.data());
        for (std::int64_t i = 0; i < n; ++i) {
            CHECK(std::fabs(r1[i] - r2[i]) <= std::fabs(r1[i]) * (0.5 * n * kEps + 6 * kEps));
        }
        // In place (out aliases x).
        std::vector<float> r3 = a;
        v.rmsnorm(r3.data(), b.data(), n, 1e-5f, r3.data());
        CHECK(same_bits(r2.data(), r3.data(), n));

        // swiglu: the exp error moves 1 + e by at most kExpRelErr relative; gates up to +-20.
        std::vector<float> g = randn(n, rng, 6.0f), s1(a.size()), s2(a.size());
        scalar::swiglu(g.data(), b.data(), n, s1.data());
        v.swiglu(g.data(), b.data(), n, s2.data());
        for (std::int64_t i = 0; i < n; ++i) {
            CHECK(std::fabs(s1[i] - s2[i]) <= std::fabs(s1[i]) * (kExpRelErr + 4 * kEps) + 1e-30);
        }
        std::vector<float> s3 = g;  // out aliases gate
        v.swiglu(s3.data(), b.data(), n, s3.data());
        CHECK(same_bits(s2.data(), s3.data(), n));
    }
    // SwiGLU at the exp's overflow edges: silu(-100) is -0-ish, silu(100) = 100.
    const std::vector<float> g = {-100.0f, -89.0f, -88.0f, 88.0f, 100.0f, 0.0f, -0.0f, 1e-30f};
    const std::vector<float> one(g.size(), 1.0f);
    std::vector<float> s1(g.size()), s2(g.size());
    scalar::swiglu(g.data(), one.data(), static_cast<std::int64_t>(g.size()), s1.data());
    v.swiglu(g.data(), one.data(), static_cast<std::int64_t>(g.size()), s2.data());
    for (std::size_t i = 0; i < g.size(); ++i) {
        INFO("g = " << g[i]);
        CHECK(std::fabs(s1[i] - s2[i]) <= std::fabs(s1[i]) * (kExpRelErr + 4 * kEps) + 1e-36);
    }
}

TEST_CASE("ops: AVX2 softmax of random, large, equal and -inf inputs", "[ops]") {
    if (skip_without_avx2()) return;
    const OpsTable& v = vec_ops();
    std::mt19937 rng(12);
    auto check = [&](std::vector<float> x) {
        const std::int64_t n = static_cast<std::int64_t>(x.size());
        std::vector<float> a = x, b = x;
        scalar::softmax(a.data(), n);
        v.softmax(b.data(), n);
        double sum = 0.0;
        for (std::int64_t i = 0; i < n; ++i) {
            // exp error, then the float normalisation (n eps relative at most).
            REQUIRE(std::isfinite(b[i]));
            CHECK(std::fabs(a[i] - b[i]) <= a[i] * (2 * kExpRelErr + (n + 4) * kEps) + 1e-37);
            sum += b[i];
        }
        CHECK(sum == Approx(1.0).epsilon(n * kEps + 1e-6));
    };
    for (std::int64_t n : kSizes) {
        INFO("n = " << n);
        check(randn(n, rng, 5.0f));
        check(std::vector<float>(static_cast<std::size_t>(n), 3.5f));  // equal: 1/n each
        std::vector<float> big = randn(n, rng, 30.0f);  // exp(x) itself would overflow
        for (auto& x : big) x += 1e5f;
        check(big);
        std::vector<float> huge(static_cast<std::size_t>(n), -1e30f);  // x - max = -2e30
        huge[static_cast<std::size_t>(n / 2)] = 1e30f;
        check(huge);
        std::vector<float> masked = randn(n, rng);  // -inf and -FLT_MAX (masked positions)
        for (std::int64_t i = 1; i < n; i += 2) masked[i] = (i % 4 == 1) ? -INFINITY : -FLT_MAX;
        check(masked);
    }
    std::vector<float> eq(257, -2.0f);
    v.softmax(eq.data(), 257);
    for (float p : eq) CHECK(p == Approx(1.0 / 257).epsilon(1e-6));
}

TEST_CASE("ops: AVX2 F32 / F16 GEMV on odd shapes, unaligned, any row split", "[ops]") {
    if (skip_without_avx2()) return;
    const OpsTable& v = vec_ops();
    std::mt19937 rng(13);
    for (std::int64_t rows : {1, 3, 5, 9, 37}) {
        for (std::int64_t cols : kSizes) {
            INFO("rows " << rows << " cols " << cols);
            const std::vector<float> wf = randn(rows * cols, rng);
            // F16 bytes at an odd address; x at a 4-byte (not 32-byte) aligned address.
            std::vector<std::uint8_t> buf(static_cast<std::size_t>(2 * rows * cols + 1));
            std::uint8_t* w16 = buf.data() + 1;
            std::vector<float> w16f(wf.size());  // the F16 weights as floats
            for (std::size_t i = 0; i < wf.size(); ++i) {
                const std::uint16_t h = f32_to_f16(wf[i]);
                w16[2 * i] = static_cast<std::uint8_t>(h & 0xFF);
                w16[2 * i + 1] = static_cast<std::uint8_t>(h >> 8);
                w16f[i] = f16_to_f32(h);
            }
            std::vector<float> xbuf = randn(cols + 1, rng);
            const float* x = xbuf.data() + 1;
            std::vector<float> ref32(static_cast<std::size_t>(rows)), got32(ref32.size()), ref16(ref32.size()),
                got16(ref32.size());
            scalar::gemv_f32(wf.data(), cols, x, 0, rows, ref32.data());
            v.gemv_f32(wf.data(), cols, x, 0, rows, got32.data());
            scalar::gemv_f16(w16, cols, x, 0, rows, ref16.data());
            v.gemv_f16(w16, cols, x, 0, rows, got16.data());
            for (std::int64_t r = 0; r < rows; ++r) {
                double m32 = 0.0, m16 = 0.0;
                for (std::int64_t c = 0; c < cols; ++c) {
                    m32 += std::fabs(static_cast<double>(wf[r * cols + c]) * x[c]);
                    m16 += std::fabs(static_cast<double>(w16f[r * cols + c]) * x[c]);
                }
                CHECK(std::fabs(ref32[r] - got32[r]) <= cols * kEps * m32);
                CHECK(std::fabs(ref16[r] - got16[r]) <= cols * kEps * m16);
                // A row is computed the same way as the dot product of that row.
                CHECK(got32[r] == v.dot(wf.data() + r * cols, x, cols));
            }
            // Split at random row boundaries (as the thread pool does): the same bits.
            std::vector<float> split16(ref32.size(), -1.0f), split32(ref32.size(), -1.0f);
            std::uniform_int_distribution<int> step(1, 6);
            for (std::int64_t r0 = 0; r0 < rows;) {
                const std::int64_t r1 = std::min<std::int64_t>(rows, r0 + step(rng));
                v.gemv_f16(w16, cols, x, r0, r1, split16.data() + r0);
                v.gemv_f32(wf.data(), cols, x, r0, r1, split32.data() + r0);
                r0 = r1;
            }
            CHECK(same_bits(split16.data(), got16.data(), rows));
            CHECK(same_bits(split32.data(), got32.data(), rows));
        }
    }
}

TEST_CASE("ops: F16 row conversion is exact for every binary16 value", "[ops]") {
    if (skip_without_avx2()) return;
    std::vector<std::uint8_t> buf(2 * 65536 + 1);
    for (std::uint32_t h = 0; h < 65536; ++h) {
        buf[1 + 2 * h] = static_cast<std::uint8_t>(h & 0xFF);
        buf[2 + 2 * h] = static_cast<std::uint8_t>(h >> 8);
    }
    for (std::int64_t n : {65536, 65533, 7, 1}) {
        std::vector<float> a(static_cast<std::size_t>(n)), b(a.size());
        scalar::f16_row(buf.data() + 1, n, a.data());
        vec_ops().f16_row(buf.data() + 1, n, b.data());
        for (std::int64_t i = 0; i < n; ++i) {
            INFO("binary16 0x" << std::hex << i);
            if (std::isnan(a[i])) {
                CHECK(std::isnan(b[i]));
            } else {
                CHECK(std::memcmp(&a[i], &b[i], sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("ops: AVX2 attention over 1..300 positions with GQA strides", "[ops]") {
    if (skip_without_avx2()) return;
    const OpsTable& v = vec_ops();
    std::mt19937 rng(14);
    struct Shape {
        std::int64_t hd, n_kv;
    };
    for (Shape s : {Shape{64, 4}, Shape{128, 2}, Shape{8, 3}, Shape{36, 2}, Shape{100, 1}, Shape{3, 5}}) {
        const std::int64_t kvd = s.hd * s.n_kv, max_n = 300;
        const std::vector<float> kc = randn(max_n * kvd, rng), vc = randn(max_n * kvd, rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
        std::vector<float> sc1(max_n), sc2(max_n), o1(static_cast<std::size_t>(s.hd)), o2(o1.size());
        for (std::int64_t n = 1; n <= max_n; n += (n < 40 ? 1 : 13)) {
            const std::int64_t kvh = n % s.n_kv;  // the last kv head lands next to the row's end
            const float* k = kc.data() + kvh * s.hd;
            const float* vv = vc.data() + kvh * s.hd;
            const std::vector<float> q = randn(s.hd, rng, 2.0f);
            scalar::attention(q.data(), k, vv, n, kvd, s.hd, scale, sc1.data(), o1.data());
            v.attention(q.data(), k, vv, n, kvd, s.hd, scale, sc2.data(), o2.data());
            // Bound from the data: score t is off by at most D = hd eps scale sum|q k_t| in
            // each version, which moves every probability by a factor within exp(+-2D), plus
            // the exp and normalisation errors; the output then by that relative amount of
            // sum_t p_t |v_t|, plus the n eps of the sum itself.
            double d = 0.0;
            for (std::int64_t t = 0; t < n; ++t) {
                double m = 0.0;
                for (std::int64_t i = 0; i < s.hd; ++i) m += std::fabs(static_cast<double>(q[i]) * k[t * kvd + i]);
                d = std::max(d, s.hd * kEps * scale * m);
            }
            const double prel = 4 * d + 2 * kExpRelErr + (n + 4) * kEps;
            INFO("hd " << s.hd << " n_kv " << s.n_kv << " n " << n);
            for (std::int64_t t = 0; t < n; ++t) REQUIRE(std::fabs(sc1[t] - sc2[t]) <= sc1[t] * prel + 1e-37);
            for (std::int64_t i = 0; i < s.hd; ++i) {
                double mag = 0.0;
                for (std::int64_t t = 0; t < n; ++t) mag += sc1[t] * std::fabs(vv[t * kvd + i]);
                REQUIRE(std::fabs(o1[i] - o2[i]) <= mag * (prel + (n + 2) * kEps));
            }
        }
    }
}

TEST_CASE("ops: attention over a binary16 cache is attention over the widened cache, bit for bit", "[ops]") {
    std::vector<const OpsTable*> tables = {&ops_table(Isa::Generic)};
    if (avx2_available()) tables.push_back(&vec_ops());
    std::mt19937 rng(15);
    struct Shape {
        std::int64_t hd, n_kv;
    };
    for (const OpsTable* ops : tables) {
        for (Shape s : {Shape{64, 4}, Shape{128, 2}, Shape{8, 3}, Shape{36, 2}, Shape{100, 1}, Shape{3, 5}, Shape{2, 1}}) {
            const std::int64_t kvd = s.hd * s.n_kv, max_n = 300;
            std::vector<float> kf = randn(max_n * kvd, rng, 3.0f), vf = randn(max_n * kvd, rng, 3.0f);
            std::vector<std::uint16_t> k16(kf.size()), v16(vf.size());
            ops->f32_to_f16_row(kf.data(), static_cast<std::int64_t>(kf.size()), k16.data());
            ops->f32_to_f16_row(vf.data(), static_cast<std::int64_t>(vf.size()), v16.data());
            for (std::size_t i = 0; i < kf.size(); ++i) kf[i] = f16_to_f32(k16[i]);  // the widened cache
            for (std::size_t i = 0; i < vf.size(); ++i) vf[i] = f16_to_f32(v16[i]);
            const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
            std::vector<float> sc1(max_n), sc2(max_n), o1(static_cast<std::size_t>(s.hd)), o2(o1.size());
            for (std::int64_t n = 1; n <= max_n; n += (n < 40 ? 1 : 13)) {
                const std::int64_t kvh = n % s.n_kv;  // the last kv head lands next to the row's end
                const std::vector<float> q = randn(s.hd, rng, 2.0f);
                ops->attention(q.data(), kf.data() + kvh * s.hd, vf.data() + kvh * s.hd, n, kvd, s.hd, scale, sc1.data(),
                               o1.data());
                ops->attention_f16(q.data(), k16.data() + kvh * s.hd, v16.data() + kvh * s.hd, n, kvd, s.hd, scale,
                                   sc2.data(), o2.data());
                INFO("hd " << s.hd << " n_kv " << s.n_kv << " n " << n);
                REQUIRE(std::memcmp(sc1.data(), sc2.data(), static_cast<std::size_t>(n) * sizeof(float)) == 0);
                REQUIRE(std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("ops: F32 -> binary16 rows round to nearest even, the same on every ISA", "[ops]") {
    // Specials, the binary16 range's edges, exact halfway cases (ties to even both ways),
    // subnormals, and random values across the whole exponent range.
    std::vector<float> x = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e9f,
                            std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 1e-9f, -1e-9f,
                            1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 1.0f / 4096, 3.0e-06f, -7.5e-07f};
    std::mt19937 rng(16);
    std::uniform_real_distribution<float> mant(1.0f, 2.0f);
    std::uniform_int_distribution<int> ex(-30, 18), sign(0, 1);
    for (int i = 0; i < 20000; ++i) x.push_back((sign(rng) ? -1.0f : 1.0f) * std::ldexp(mant(rng), ex(rng)));
    // Every reference value is f32_to_f16 (dtype.h), which the converter uses too.
    std::vector<std::uint16_t> want(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) want[i] = f32_to_f16(x[i]);
    std::vector<const OpsTable*> tables = {&ops_table(Isa::Generic)};
    if (avx2_available()) tables.push_back(&vec_ops());
    for (const OpsTable* ops : tables) {
        // Whole, and every length and offset around the 8-wide blocks and tail.
        std::vector<std::uint16_t> got(x.size(), 0xBEEF);
        ops->f32_to_f16_row(x.data(), static_cast<std::int64_t>(x.size()), got.data());
        CHECK(got == want);
        for (std::int64_t off = 0; off < 9; ++off) {
            for (std::int64_t n = 0; n <= 33; ++n) {
                std::vector<std::uint16_t> part(static_cast<std::size_t>(n) + 1, 0xBEEF);
                ops->f32_to_f16_row(x.data() + off, n, part.data());
                INFO("offset " << off << " n " << n);
                for (std::int64_t i = 0; i < n; ++i) REQUIRE(part[i] == want[off + i]);
                REQUIRE(part[n] == 0xBEEF);  // nothing written past the row
            }
        }
    }
    // NaN stays NaN (the payload may differ between ISAs).
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (const OpsTable* ops : tables) {
        std::uint16_t h = 0;
        ops->f32_to_f16_row(&nan, 1, &h);
        CHECK(std::isnan(f16_to_f32(h)));
    }
}

TEST_CASE("ops: AVX2 RoPE rotation is bit-identical to the scalar one", "[ops]") {
    if (skip_without_avx2()) return;
    std::mt19937 rng(15);
    for (std::int64_t hd : {2, 6, 16, 34, 64, 128}) {
        const std::int64_t half = hd / 2;
        std::vector<float> c(static_cast<std::size_t>(half)), s(c.size());
        for (std::int64_t i = 0; i < half; ++i) {
            c[i] = std::cos(0.37f * static_cast<float>(i + 1));
            s[i] = std::sin(0.37f * static_cast<float>(i + 1));
        }
        std::vector<float> a = randn(5 * hd, rng), b = a;
        scalar::rope(a.data(), 5, hd, c.data(), s.data());
        vec_ops().rope(b.data(), 5, hd, c.data(), s.data());
        INFO("hd " << hd);
        CHECK(same_bits(a.data(), b.data(), 5 * hd));
    }
}
