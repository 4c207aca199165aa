// The vector ops (src/kernels/ops_avx2.cpp on x86-64, ops_neon.cpp on aarch64: every vector
// ISA this build and CPU have, through the same checks) against the scalar reference
// (ops_scalar.cpp) and a double-precision computation, on awkward lengths, with tolerances
// derived from the data (n * eps * sum|terms| for sums, the stated exp error for softmax and
// SwiGLU): the vector exp over [-88, 88], softmax of huge, equal and -inf inputs, F16 GEMV
// on odd row counts, unaligned pointers and arbitrary row splits, attention over 1..300
// positions with GQA strides, RoPE (bit-identical), the F16 row conversion (exact) and the
// dispatch table. One test pins the vector ops' exact bits (hashes of their outputs on
// fixed inputs), the same on AVX2 and NEON: x86-64 and aarch64 builds compute the same
// logits.
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

// A vector ISA's ops: its table (through the dispatcher) and the vector exp its softmax
// and SwiGLU use.
struct VecOps {
    const char* name;
    const OpsTable* ops;
    void (*exp)(const float* x, std::int64_t n, float* out);
};

// The vector ISAs this build has and this CPU runs (AVX2 on x86-64, NEON on aarch64); every
// check below runs on each. None (e.g. an x86-64 CPU without AVX2): a SKIPPED warning.
std::vector<VecOps> vector_isas() {
    std::vector<VecOps> v;
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (avx2_available()) v.push_back({"avx2", &ops_table(Isa::Avx2), &avx2::exp});
#endif
#ifdef BITTTT_HAVE_NEON_KERNEL
    if (neon_available()) v.push_back({"neon", &ops_table(Isa::Neon), &neon::exp});
#endif
    if (v.empty()) WARN("SKIPPED: this CPU (or build) has no vector ops (AVX2 or NEON); they are not tested");
    return v;
}

// The scalar table, then every vector one.
std::vector<const OpsTable*> all_tables() {
    std::vector<const OpsTable*> t = {&ops_table(Isa::Generic)};
    for (const VecOps& v : vector_isas()) t.push_back(v.ops);
    return t;
}

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
        CHECK(ops_table(Isa::Avx2).rmsnorm == &avx2::rmsnorm);
        CHECK(ops_table(Isa::Avx2).gemv_f16 == &avx2::gemv_f16);
#endif
    } else {
        CHECK_THROWS_AS(ops_table(Isa::Avx2), UsageError);
    }
    if (neon_available()) {
#ifdef BITTTT_HAVE_NEON_KERNEL
        const OpsTable& n = ops_table(Isa::Neon);
        CHECK(n.rmsnorm == &neon::rmsnorm);
        CHECK(n.softmax == &neon::softmax);
        CHECK(n.attention_f16 == &neon::attention_f16);
        CHECK(n.gemv_f16 == &neon::gemv_f16);
        CHECK(n.rope == &neon::rope);
#endif
    } else {
        CHECK_THROWS_AS(ops_table(Isa::Neon), UsageError);
    }
    // The dispatched ops run the table of the ISA in use.
    const std::vector<float> a = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f};
    CHECK(dot(a.data(), a.data(), 9) == ops_table(active_isa()).dot(a.data(), a.data(), 9));
}

namespace {

// The vector exp of one ISA (check_exp's caller loops over vector_isas()).
void check_exp(const VecOps& v) {
    // Every 2^-10 over [-88, 88] plus random points: relative error against double exp
    // where the result is a normal float, absolute error of a few subnormal ulps below.
    std::vector<float> x;
    for (double v = -88.0; v <= 88.0; v += 1.0 / 1024) x.push_back(static_cast<float>(v));
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-88.0f, 88.0f);
    for (int i = 0; i < 100000; ++i) x.push_back(u(rng));
    std::vector<float> y(x.size());
    v.exp(x.data(), static_cast<std::int64_t>(x.size()), y.data());
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
    v.exp(edge.data(), static_cast<std::int64_t>(edge.size()), e.data());
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
    // Every length around the vector widths gives each element's value (tails included).
    for (std::int64_t n = 1; n <= 19; ++n) {
        std::vector<float> part(static_cast<std::size_t>(n) + 1, -7.0f);
        v.exp(x.data() + 3, n, part.data());
        INFO("n " << n);
        REQUIRE(same_bits(part.data(), y.data() + 3, n));
        REQUIRE(part[static_cast<std::size_t>(n)] == -7.0f);  // nothing written past the end
    }
}

}  // namespace

TEST_CASE("ops: vector exp accuracy over [-88, 88] and at the edges", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        check_exp(v);
    }
}

namespace {

void check_dot_axpy_rmsnorm_swiglu(const OpsTable& v) {
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

}  // namespace

TEST_CASE("ops: vector dot, axpy, rmsnorm, swiglu match the scalar reference", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        check_dot_axpy_rmsnorm_swiglu(*v.ops);
    }
}

namespace {

void check_softmax(const OpsTable& v) {
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

}  // namespace

TEST_CASE("ops: vector softmax of random, large, equal and -inf inputs", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        check_softmax(*v.ops);
    }
}

namespace {

void check_gemv(const OpsTable& v) {
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

}  // namespace

TEST_CASE("ops: vector F32 / F16 GEMV on odd shapes, unaligned, any row split", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        check_gemv(*v.ops);
    }
}

TEST_CASE("ops: F16 row conversion is exact for every binary16 value", "[ops]") {
    std::vector<std::uint8_t> buf(2 * 65536 + 1);
    for (std::uint32_t h = 0; h < 65536; ++h) {
        buf[1 + 2 * h] = static_cast<std::uint8_t>(h & 0xFF);
        buf[2 + 2 * h] = static_cast<std::uint8_t>(h >> 8);
    }
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        for (std::int64_t n : {65536, 65533, 7, 3, 1}) {
            std::vector<float> a(static_cast<std::size_t>(n)), b(a.size() + 1, -7.0f);
            scalar::f16_row(buf.data() + 1, n, a.data());
            v.ops->f16_row(buf.data() + 1, n, b.data());
            REQUIRE(b[static_cast<std::size_t>(n)] == -7.0f);  // nothing written past the row
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
}

namespace {

void check_attention(const OpsTable& v) {
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

}  // namespace

TEST_CASE("ops: vector attention over 1..300 positions with GQA strides", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        check_attention(*v.ops);
    }
}

TEST_CASE("ops: attention over a binary16 cache is attention over the widened cache, bit for bit", "[ops]") {
    const std::vector<const OpsTable*> tables = all_tables();
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
    const std::vector<const OpsTable*> tables = all_tables();
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

namespace {

void check_rope(const OpsTable& v) {
    std::mt19937 rng(15);
    for (std::int64_t hd : {2, 6, 10, 16, 34, 64, 128}) {
        const std::int64_t half = hd / 2;
        std::vector<float> c(static_cast<std::size_t>(half)), s(c.size());
        for (std::int64_t i = 0; i < half; ++i) {
            c[i] = std::cos(0.37f * static_cast<float>(i + 1));
            s[i] = std::sin(0.37f * static_cast<float>(i + 1));
        }
        std::vector<float> a = randn(5 * hd, rng), b = a;
        scalar::rope(a.data(), 5, hd, c.data(), s.data());
        v.rope(b.data(), 5, hd, c.data(), s.data());
        INFO("hd " << hd);
        CHECK(same_bits(a.data(), b.data(), 5 * hd));
    }
}

}  // namespace

TEST_CASE("ops: vector RoPE rotation is bit-identical to the scalar one", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        INFO("isa " << v.name);
        check_rope(*v.ops);
    }
}

namespace {

// Inputs that every platform generates alike: a 64-bit LCG (std::normal_distribution's
// algorithm is the standard library's own) giving 24-bit integers scaled by powers of two,
// exact in float.
struct Lcg {
    std::uint64_t s;
    float next(int exp2) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        const auto v = static_cast<std::int32_t>(s >> 40) - (1 << 23);  // [-2^23, 2^23)
        return std::ldexp(static_cast<float>(v), exp2 - 23);             // [-2^exp2, 2^exp2)
    }
    std::vector<float> vec(std::int64_t n, int exp2) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (auto& x : v) x = next(exp2);
        return v;
    }
};

// FNV-1a over the bytes of n values, continuing from h.
template <typename T>
std::uint64_t fnv(const T* p, std::int64_t n, std::uint64_t h) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) * sizeof(T); ++i) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
constexpr std::uint64_t kFnvStart = 0xcbf29ce484222325ULL;

// Hashes of every vector op's outputs on fixed inputs, in the order of kVecOpsBits.
std::vector<std::uint64_t> vector_op_bits(const VecOps& v) {
    const OpsTable& o = *v.ops;
    Lcg g{42};
    std::vector<std::uint64_t> h;
    const std::vector<std::int64_t> sizes = {1, 3, 7, 8, 9, 33, 64, 255, 257, 1000};
    {  // exp over [-128, 128)
        const std::vector<float> x = g.vec(4003, 7);
        std::vector<float> y(x.size());
        v.exp(x.data(), static_cast<std::int64_t>(x.size()), y.data());
        h.push_back(fnv(y.data(), static_cast<std::int64_t>(y.size()), kFnvStart));
    }
    std::uint64_t hd = kFnvStart, ha = kFnvStart, hr = kFnvStart, hs = kFnvStart, hw = kFnvStart;
    for (std::int64_t n : sizes) {
        const std::vector<float> a = g.vec(n, 2), b = g.vec(n, 3);
        const float d = o.dot(a.data(), b.data(), n);
        hd = fnv(&d, 1, hd);
        std::vector<float> y = g.vec(n, 1);
        o.axpy(g.next(0), a.data(), n, y.data());
        ha = fnv(y.data(), n, ha);
        o.rmsnorm(a.data(), b.data(), n, 1e-5f, y.data());
        hr = fnv(y.data(), n, hr);
        std::vector<float> s = g.vec(n, 5);  // softmax with masked (-inf) positions
        for (std::int64_t i = 2; i < n; i += 3) s[static_cast<std::size_t>(i)] = -INFINITY;
        o.softmax(s.data(), n);
        hs = fnv(s.data(), n, hs);
        const std::vector<float> gate = g.vec(n, 4);
        o.swiglu(gate.data(), b.data(), n, y.data());
        hw = fnv(y.data(), n, hw);
    }
    h.insert(h.end(), {hd, ha, hr, hs, hw});
    {  // GEMVs: 6 rows (a group of four and two single rows) of awkward lengths
        std::uint64_t h32 = kFnvStart, h16 = kFnvStart;
        for (std::int64_t cols : {7, 33, 64, 300}) {
            const std::vector<float> w = g.vec(6 * cols, 1), x = g.vec(cols, 2);
            std::vector<std::uint16_t> w16(w.size());
            for (std::size_t i = 0; i < w.size(); ++i) w16[i] = f32_to_f16(w[i]);
            std::vector<std::uint8_t> bytes(2 * w16.size());
            std::memcpy(bytes.data(), w16.data(), bytes.size());  // little-endian hosts both
            float y[6];
            o.gemv_f32(w.data(), cols, x.data(), 0, 6, y);
            h32 = fnv(y, 6, h32);
            o.gemv_f16(bytes.data(), cols, x.data(), 0, 6, y);
            h16 = fnv(y, 6, h16);
        }
        h.insert(h.end(), {h32, h16});
    }
    {  // attention over F32 and binary16 caches
        std::uint64_t h32 = kFnvStart, h16 = kFnvStart;
        const std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {{64, 2}, {36, 2}, {3, 3}, {100, 1}};
        for (auto [hdim, n_kv] : shapes) {
            const std::int64_t kvd = hdim * n_kv, max_n = 70;
            const std::vector<float> kc = g.vec(max_n * kvd, 2), vc = g.vec(max_n * kvd, 2);
            std::vector<std::uint16_t> k16(kc.size()), v16(vc.size());
            o.f32_to_f16_row(kc.data(), static_cast<std::int64_t>(kc.size()), k16.data());
            o.f32_to_f16_row(vc.data(), static_cast<std::int64_t>(vc.size()), v16.data());
            std::vector<float> sc(max_n), out(static_cast<std::size_t>(hdim));
            for (std::int64_t n : {1, 5, 9, 33, 70}) {
                const std::vector<float> q = g.vec(hdim, 1);
                const std::int64_t off = (n % n_kv) * hdim;
                o.attention(q.data(), kc.data() + off, vc.data() + off, n, kvd, hdim, 0.125f, sc.data(), out.data());
                h32 = fnv(out.data(), hdim, fnv(sc.data(), n, h32));
                o.attention_f16(q.data(), k16.data() + off, v16.data() + off, n, kvd, hdim, 0.125f, sc.data(),
                                out.data());
                h16 = fnv(out.data(), hdim, fnv(sc.data(), n, h16));
            }
        }
        h.insert(h.end(), {h32, h16});
    }
    {  // conversions and RoPE
        const std::vector<float> x = g.vec(1001, 17);
        std::vector<std::uint16_t> x16(x.size());
        o.f32_to_f16_row(x.data(), static_cast<std::int64_t>(x.size()), x16.data());
        std::vector<float> back(x.size());
        o.f16_row(reinterpret_cast<const std::uint8_t*>(x16.data()), static_cast<std::int64_t>(x16.size()),
                  back.data());
        std::vector<float> r = g.vec(3 * 68, 2);
        const std::vector<float> c = g.vec(34, 0), s = g.vec(34, 0);
        o.rope(r.data(), 3, 68, c.data(), s.data());
        h.insert(h.end(), {fnv(x16.data(), static_cast<std::int64_t>(x16.size()), kFnvStart),
                           fnv(back.data(), static_cast<std::int64_t>(back.size()), kFnvStart),
                           fnv(r.data(), static_cast<std::int64_t>(r.size()), kFnvStart)});
    }
    return h;
}

// The hashes as the AVX2 ops compute them (recorded from an x86-64 AVX2 build); the NEON
// ops must give the same. A deliberate change to an op's arithmetic changes ops_avx2.cpp
// and ops_neon.cpp alike, and then these values.
constexpr const char* kVecOpsNames[] = {"exp",     "dot",    "axpy",      "rmsnorm",       "softmax",
                                        "swiglu",  "gemv_f32", "gemv_f16", "attention",   "attention_f16",
                                        "f32_to_f16_row", "f16_row", "rope"};
constexpr std::uint64_t kVecOpsBits[] = {
    0x50363cfae5b59e2dULL, 0xdbd2957b63a64405ULL, 0x9e1c5dfb78558eb2ULL, 0x458ebaba50048871ULL,
    0x5bf97d1b60ab0e4bULL, 0x837f524a03d78919ULL, 0x71648d1ab389070cULL, 0x651e5b68e84c7e2cULL,
    0xa85776b489add120ULL, 0xb79ba25fe422876fULL, 0x8d72fe8bc9cf813fULL, 0x7d3f09465c7ff2d4ULL,
    0x88844d2cd971c78cULL};

}  // namespace

TEST_CASE("ops: the vector ops give the same bits on AVX2 and NEON", "[ops]") {
    for (const VecOps& v : vector_isas()) {
        const std::vector<std::uint64_t> got = vector_op_bits(v);
        REQUIRE(got.size() == std::size(kVecOpsBits));
        static_assert(std::size(kVecOpsNames) == std::size(kVecOpsBits));
        for (std::size_t i = 0; i < got.size(); ++i) {
            INFO("isa " << v.name << " op " << kVecOpsNames[i] << " hash 0x" << std::hex << got[i]);
            CHECK(got[i] == kVecOpsBits[i]);
        }
    }
}
