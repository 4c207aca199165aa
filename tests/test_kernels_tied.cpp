// Every ternary kernel on tied-scale layouts (one scale per block, base k at s / 3^k) and
// on free ones, with binary16 scales and with two-level scales (8-bit sub-scales under a
// binary16 super-scale per row and slot): the scalar reference against the float product
// of the dequantised rows (dequantize_row, the definition of the format), and every other
// kernel (batched reference, maddubs AVX2 single and batched, LUT reference of the
// packing, the dispatching LUT entry points, LUT AVX2 and NEON single, batched and levels)
// bit-identical to the reference, for N = 1..4, every K <= N, both packings, block sizes
// 32..256 (and some that are no multiple of 16 or of 4), awkward shapes and row
// sub-ranges. Also: at N = 1 a tied tensor is a free one, and two-level scales whose
// products d * u are binary16 values give the binary16 tensor's results.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/ternary.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"
#include "kernels/ternary_lut.h"
#include "kernel_fixtures.h"

using namespace bitttt;
using namespace bitttt::kernels;
using bitttt::test::Fill;
using bitttt::test::make_tensor;

namespace {

bool same_bits(const float* a, const float* b, std::int64_t n) {
    return std::memcmp(a, b, static_cast<std::size_t>(n) * sizeof(float)) == 0;
}

// The LUT reference table build and GEMV of the layout's packing (2bit or dense tiles).
void lut_prepare_ref_for(const TernaryLayout& l, const std::int8_t* q, std::uint8_t* tables) {
    if (l.packing == Packing::Dense) {
        lut_prepare_dense_ref(l, q, tables);
    } else {
        lut_prepare_ref(l, q, tables);
    }
}

void lut_gemv_ref_for(const LutWeights& w, int k, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                      std::int64_t r1, float* y) {
    if (w.layout.packing == Packing::Dense) {
        lut_gemv_dense_ref(w, k, tables, x_scale, r0, r1, y);
    } else {
        lut_gemv_ref(w, k, tables, x_scale, r0, r1, y);
    }
}

// One input vector prepared for every kernel: int8 activations (TernaryInput, laid out for
// AVX2 when it is available) and the LUT tables of the same activations.
struct Prepared {
    TernaryInput in;
    std::vector<std::uint8_t> tables;
};

Prepared prepare(const TernaryLayout& l, std::mt19937& rng, Isa isa) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(l.cols));
    for (auto& v : x) v = nd(rng);
    Prepared p;
    prepare_ternary_input(isa, x.data(), l.cols, l.block_size, l.packing, p.in);
    p.tables.resize(lut_table_bytes(l));
    lut_prepare_ref_for(l, p.in.q.data(), p.tables.data());
    return p;
}

// |w[r, c]| bounded term by term: sum_k |s_k * t_k| for free scales (the bases' terms may
// cancel in w, not in the kernel's float sums), |w| itself for tied ones (one term).
void abs_terms_row(const TernaryLayout& l, const std::uint8_t* data, std::int64_t r, int k, float* out) {
    if (l.tied()) {
        dequantize_row(l, data, r, k, out);
        for (std::int64_t c = 0; c < l.cols; ++c) out[c] = std::fabs(out[c]);
        return;
    }
    std::vector<std::int8_t> t(static_cast<std::size_t>(l.block_size));
    std::fill(out, out + l.cols, 0.0f);
    const std::uint8_t* row = data + r * l.row_bytes();
    for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
        const std::uint8_t* blk = row + l.block_offset(b);
        for (int i = 0; i < k; ++i) {
            const float s = std::fabs(l.block_scale(row, blk, i));
            unpack_trits(l.packing, blk + l.block_scale_bytes() + i * l.group_bytes(), l.block_size, t.data());
            for (std::int64_t c = b * l.block_size; c < std::min(l.cols, (b + 1) * l.block_size); ++c) {
                out[c] += s * static_cast<float>(std::abs(t[static_cast<std::size_t>(c - b * l.block_size)]));
            }
        }
    }
}

// ternary_gemv_ref against sum_c w[r, c] * q[c] * x_scale in double, w from dequantize_row.
// The kernel's float error: each block term (s * m_K) * float(I) or s_k * float(I_k) (s the
// exact block scale: f16(s), or d * float(u) for two-level scales) has a few roundings
// relative to itself, and the row sum adds one rounding per term, so
// |y - exact| <= (terms + 4) * 2 eps * sum |terms| <= (terms + 4) * 2 eps * sum_c |w| |q| x_scale,
// with |w| bounded term by term (abs_terms_row); the dequantised weights are themselves
// rounded once per base relative to the exact values.
void check_against_dequantised(const TernaryLayout& l, const std::uint8_t* data, int k, const Prepared& p,
                               const std::vector<float>& y) {
    std::vector<float> w(static_cast<std::size_t>(l.cols)), a(w.size());
    const double terms = static_cast<double>(l.blocks_per_row()) * (l.tied() ? 1 : k);
    for (std::int64_t r = 0; r < l.rows; ++r) {
        dequantize_row(l, data, r, k, w.data());
        abs_terms_row(l, data, r, k, a.data());
        double exact = 0, mag = 0;
        for (std::int64_t c = 0; c < l.cols; ++c) {
            const double qx = static_cast<double>(p.in.q[static_cast<std::size_t>(c)]) * static_cast<double>(p.in.scale);
            exact += static_cast<double>(w[static_cast<std::size_t>(c)]) * qx;
            mag += static_cast<double>(a[static_cast<std::size_t>(c)]) * std::fabs(qx);
        }
        const double tol = (terms + 4) * 2 * FLT_EPSILON * mag + 1e-30;
        INFO("row " << r << " y " << y[static_cast<std::size_t>(r)] << " exact " << exact << " tol " << tol);
        REQUIRE(std::fabs(static_cast<double>(y[static_cast<std::size_t>(r)]) - exact) <= tol);
    }
}

// Every kernel over [r0, r1) against `ref` (the reference over all rows) for input a (and
// b, c in the batched forms).
void check_kernels(const TernaryLayout& l, const std::uint8_t* data, const LutWeights& w, int k, const Prepared& a,
                   const Prepared& b, const std::vector<float>& ref_a, const std::vector<float>& ref_b, std::int64_t r0,
                   std::int64_t r1) {
    const std::int64_t n = r1 - r0;
    const TernaryInput* ins[2] = {&a.in, &b.in};
    const std::uint8_t* tabs[2] = {a.tables.data(), b.tables.data()};
    const float xs[2] = {a.in.scale, b.in.scale};
    const std::int64_t ldy = n + 3;
    std::vector<float> y(static_cast<std::size_t>(2 * ldy), -7.0f);
    INFO("rows [" << r0 << ", " << r1 << ")");
    auto same2 = [&](const char* what) {
        INFO(what);
        CHECK(same_bits(y.data(), ref_a.data() + r0, n));
        CHECK(same_bits(y.data() + ldy, ref_b.data() + r0, n));
    };
    ternary_gemv_ref(l, data, k, a.in.q.data(), a.in.scale, r0, r1, y.data());
    CHECK(same_bits(y.data(), ref_a.data() + r0, n));
    ternary_gemm_ref(l, data, k, ins, 2, r0, r1, y.data(), ldy);
    same2("ternary_gemm_ref");
    lut_gemv_ref_for(w, k, a.tables.data(), a.in.scale, r0, r1, y.data());
    {
        INFO("LUT reference gemv");
        CHECK(same_bits(y.data(), ref_a.data() + r0, n));
    }
    // The dispatching LUT entry points (what the engine runs: AVX2 or the references).
    lut_gemv(w, k, a.tables.data(), a.in.scale, r0, r1, y.data());
    {
        INFO("lut_gemv (dispatch)");
        CHECK(same_bits(y.data(), ref_a.data() + r0, n));
    }
    lut_gemm(w, k, tabs, xs, 2, r0, r1, y.data(), ldy);
    same2("lut_gemm (dispatch)");
#ifdef BITTTT_HAVE_NEON_KERNEL
    if (neon_available()) {
        const bool dense = l.packing == Packing::Dense;
        (dense ? lut_gemv_dense_neon : lut_gemv_neon)(w, k, a.tables.data(), a.in.scale, r0, r1, y.data());
        {
            INFO((dense ? "lut_gemv_dense_neon" : "lut_gemv_neon"));
            CHECK(same_bits(y.data(), ref_a.data() + r0, n));
        }
        (dense ? lut_gemm_dense_neon : lut_gemm_neon)(w, k, tabs, xs, 2, r0, r1, y.data(), ldy);
        same2(dense ? "lut_gemm_dense_neon" : "lut_gemm_neon");
        // The levels path (prompt batches): K = 1, or tied scales with K <= 4; plain NEON,
        // and sdot where the CPU has it.
        if (lut_levels_apply(l, k)) {
            std::vector<std::uint8_t> la(lut_levels_bytes(l)), lb(la.size());
            lut_levels_prepare(l, a.in.q.data(), la.data());
            lut_levels_prepare(l, b.in.q.data(), lb.data());
            const std::uint8_t* lv[2] = {la.data(), lb.data()};
            lut_gemm_levels_neon(w, k, lv, xs, 2, r0, r1, y.data(), ldy);
            same2("lut_gemm_levels_neon");
            if (neon_dotprod_available()) {
                lut_gemm_levels_neon_dot(w, k, lv, xs, 2, r0, r1, y.data(), ldy);
                same2("lut_gemm_levels_neon_dot");
            }
        }
    }
#endif
    if (!avx2_available()) return;
    ternary_gemv_kernel(Isa::Avx2)(l, data, k, a.in.q.data(), a.in.scale, r0, r1, y.data());
    {
        INFO("maddubs gemv");
        CHECK(same_bits(y.data(), ref_a.data() + r0, n));
    }
    ternary_gemm_kernel(Isa::Avx2)(l, data, k, ins, 2, r0, r1, y.data(), ldy);
    same2("maddubs gemm");
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (l.packing == Packing::TwoBit) {
        lut_gemv_avx2(w, k, a.tables.data(), a.in.scale, r0, r1, y.data());
        {
            INFO("lut_gemv_avx2");
            CHECK(same_bits(y.data(), ref_a.data() + r0, n));
        }
        lut_gemm_avx2(w, k, tabs, xs, 2, r0, r1, y.data(), ldy);
        same2("lut_gemm_avx2");
    }
#ifdef BITTTT_HAVE_LUT_DENSE_AVX2
    if (l.packing == Packing::Dense) {
        lut_gemv_dense_avx2(w, k, a.tables.data(), a.in.scale, r0, r1, y.data());
        {
            INFO("lut_gemv_dense_avx2");
            CHECK(same_bits(y.data(), ref_a.data() + r0, n));
        }
        lut_gemm_dense_avx2(w, k, tabs, xs, 2, r0, r1, y.data(), ldy);
        same2("lut_gemm_dense_avx2");
    }
#endif
    // The levels path (prompt batches): K = 1, or tied scales with K <= 4.
    if (lut_levels_apply(l, k)) {
        std::vector<std::uint8_t> la(lut_levels_bytes(l)), lb(la.size());
        lut_levels_prepare(l, a.in.q.data(), la.data());
        lut_levels_prepare(l, b.in.q.data(), lb.data());
        const std::uint8_t* lv[2] = {la.data(), lb.data()};
        lut_gemm_levels_avx2(w, k, lv, xs, 2, r0, r1, y.data(), ldy);
        same2("lut_gemm_levels_avx2");
    }
#endif
}

struct Pb {
    Packing p;
    int bs;
};

// Every case of one scale mode and scale width (16: binary16, 8: two-level); returns the
// number of (layout, K) cases.
int run_mode(ScaleMode mode, int scale_bits, std::mt19937& rng) {
    const Isa isa = avx2_available() ? Isa::Avx2 : Isa::Generic;
    const Pb pbs[] = {{Packing::TwoBit, 32}, {Packing::TwoBit, 64}, {Packing::TwoBit, 128}, {Packing::TwoBit, 256},
                      {Packing::Dense, 32},  {Packing::Dense, 64},  {Packing::Dense, 128},  {Packing::Dense, 256},
                      {Packing::TwoBit, 36}, {Packing::Dense, 22}};
    const std::int64_t all_cols[] = {1, 3, 7, 33, 255, 257};
    const std::int64_t all_rows[] = {1, 3, 7, 33, 45, 70};
    int cases = 0;
    for (const Pb& pb : pbs) {
        for (std::int64_t cols : all_cols) {
            for (std::int64_t rows : all_rows) {
                for (int n = 1; n <= 4; ++n) {
                    const TernaryLayout l{rows, cols, n, pb.bs, pb.p, mode, scale_bits};
                    l.validate();
                    const auto data = make_tensor(l, rng, Fill::Random);
                    const LutWeights w = lut_repack(l, data.data());
                    const Prepared a = prepare(l, rng, isa), b = prepare(l, rng, isa);
                    for (int k = 1; k <= n; ++k) {
                        INFO(scale_mode_name(mode) << " " << scale_bits_name(scale_bits) << " " << packing_name(pb.p)
                                                   << " B " << pb.bs << " rows " << rows << " cols " << cols << " N "
                                                   << n << " K " << k);
                        std::vector<float> ref_a(static_cast<std::size_t>(rows)), ref_b(ref_a.size());
                        ternary_gemv_ref(l, data.data(), k, a.in.q.data(), a.in.scale, 0, rows, ref_a.data());
                        ternary_gemv_ref(l, data.data(), k, b.in.q.data(), b.in.scale, 0, rows, ref_b.data());
                        check_against_dequantised(l, data.data(), k, a, ref_a);
                        check_kernels(l, data.data(), w, k, a, b, ref_a, ref_b, 0, rows);
                        if (rows > 2) {
                            std::uniform_int_distribution<std::int64_t> cut(1, rows - 1);
                            std::int64_t r0 = cut(rng), r1 = cut(rng);
                            if (r0 > r1) std::swap(r0, r1);
                            check_kernels(l, data.data(), w, k, a, b, ref_a, ref_b, r0, r1 + 1);
                        }
                        ++cases;
                    }
                }
            }
        }
    }
    return cases;
}

}  // namespace

TEST_CASE("tied scales: every kernel equals the reference, which equals the dequantised product",
          "[kernels][tied]") {
    std::mt19937 rng(31);
    CHECK(run_mode(ScaleMode::Tied, 16, rng) == 10 * 6 * 6 * 10);
}

TEST_CASE("free scales: every kernel equals the reference, which equals the dequantised product",
          "[kernels][tied]") {
    std::mt19937 rng(32);
    CHECK(run_mode(ScaleMode::Free, 16, rng) == 10 * 6 * 6 * 10);
}

TEST_CASE("two-level tied scales: every kernel equals the reference, which equals the dequantised product",
          "[kernels][tied][two-level]") {
    std::mt19937 rng(33);
    CHECK(run_mode(ScaleMode::Tied, 8, rng) == 10 * 6 * 6 * 10);
}

TEST_CASE("two-level free scales: every kernel equals the reference, which equals the dequantised product",
          "[kernels][tied][two-level]") {
    std::mt19937 rng(34);
    CHECK(run_mode(ScaleMode::Free, 8, rng) == 10 * 6 * 6 * 10);
}

TEST_CASE("two-level scales whose products are binary16 values give the binary16 tensor's results",
          "[kernels][tied][two-level]") {
    // Super-scales +-2^e (e in -24..7, subnormal ones included) times any u in 0..255 are
    // binary16 values (u * 2^e, a multiple of 2^-24 below 65504), so the same tensor written
    // with 16-bit scales f16(d * u) must give the same bits in every kernel: the two-level
    // decoding checked against the binary16 path rather than against block_scale().
    const Isa isa = avx2_available() ? Isa::Avx2 : Isa::Generic;
    std::mt19937 rng(35);
    std::uniform_int_distribution<int> expo(-24, 7), sign(0, 1);
    int cases = 0;
    for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
        for (const Pb pb :
             {Pb{Packing::TwoBit, 64}, Pb{Packing::Dense, 64}, Pb{Packing::TwoBit, 36}, Pb{Packing::Dense, 22}}) {
            for (std::int64_t rows : {1, 3, 33, 45}) {
                for (std::int64_t cols : {7, 257}) {
                    for (int n = 1; n <= 4; ++n) {
                        const TernaryLayout two{rows, cols, n, pb.bs, pb.p, mode, 8};
                        const TernaryLayout f16{rows, cols, n, pb.bs, pb.p, mode, 16};
                        auto d2 = make_tensor(two, rng, Fill::Raw);
                        std::vector<std::uint8_t> d16(f16.total_bytes());
                        for (std::int64_t r = 0; r < rows; ++r) {
                            std::uint8_t* row = d2.data() + r * two.row_bytes();
                            for (int m = 0; m < two.scale_count(); ++m) {
                                const float d = std::ldexp(sign(rng) ? -1.0f : 1.0f, expo(rng));
                                const std::uint16_t h = f32_to_f16(d);
                                row[2 * m] = static_cast<std::uint8_t>(h & 0xFF);
                                row[2 * m + 1] = static_cast<std::uint8_t>(h >> 8);
                            }
                            for (std::int64_t b = 0; b < two.blocks_per_row(); ++b) {
                                const std::uint8_t* src = row + two.block_offset(b);
                                std::uint8_t* dst = d16.data() + r * f16.row_bytes() + f16.block_offset(b);
                                for (int m = 0; m < two.scale_count(); ++m) {
                                    const float s = two.block_scale(row, src, m);
                                    const std::uint16_t h = f32_to_f16(s);
                                    REQUIRE(f16_to_f32(h) == s);
                                    dst[2 * m] = static_cast<std::uint8_t>(h & 0xFF);
                                    dst[2 * m + 1] = static_cast<std::uint8_t>(h >> 8);
                                }
                                std::memcpy(dst + f16.block_scale_bytes(), src + two.block_scale_bytes(),
                                            static_cast<std::size_t>(n) * two.group_bytes());
                            }
                        }
                        const LutWeights w = lut_repack(two, d2.data());
                        const Prepared a = prepare(two, rng, isa), b = prepare(two, rng, isa);
                        for (int k = 1; k <= n; ++k) {
                            INFO(scale_mode_name(mode) << " " << packing_name(pb.p) << " B " << pb.bs << " rows " << rows
                                                       << " cols " << cols << " N " << n << " K " << k);
                            std::vector<float> ref_a(static_cast<std::size_t>(rows)), ref_b(ref_a.size()), y2(ref_a.size());
                            ternary_gemv_ref(f16, d16.data(), k, a.in.q.data(), a.in.scale, 0, rows, ref_a.data());
                            ternary_gemv_ref(f16, d16.data(), k, b.in.q.data(), b.in.scale, 0, rows, ref_b.data());
                            ternary_gemv_ref(two, d2.data(), k, a.in.q.data(), a.in.scale, 0, rows, y2.data());
                            CHECK(same_bits(y2.data(), ref_a.data(), rows));
                            check_kernels(two, d2.data(), w, k, a, b, ref_a, ref_b, 0, rows);
                            ++cases;
                        }
                    }
                }
            }
        }
    }
    CHECK(cases == 2 * 4 * 4 * 2 * 10);
}

TEST_CASE("tied scales: the reference combines the bases as 3^(K-1-k) in integers", "[kernels][tied]") {
    // One block, B = 4, N = 3: trits of base k are chosen so that the level of each weight
    // is known, and the activations are 1: y = (s * 3^-(K-1)) * sum of levels.
    TernaryLayout l{1, 4, 3, 4, Packing::TwoBit, ScaleMode::Tied};
    std::vector<std::uint8_t> data(l.total_bytes());
    const std::uint16_t s = 0x3C00;  // 1.0
    data[0] = static_cast<std::uint8_t>(s & 0xFF);
    data[1] = static_cast<std::uint8_t>(s >> 8);
    const std::int8_t t[3][4] = {{1, -1, 0, 1}, {1, 1, -1, 0}, {-1, 0, 1, 1}};
    for (int k = 0; k < 3; ++k) pack_trits(l.packing, t[k], 4, data.data() + 2 + k * l.group_bytes());
    const std::int8_t q[4] = {1, 1, 1, 1};
    // Levels with K = 3: 9 t0 + 3 t1 + t2 = (11, -6, -2, 10), sum 13; scale 1/9.
    // K = 2: 3 t0 + t1 = (4, -2, -1, 3), sum 4; scale 1/3. K = 1: sum 1.
    const float want[4] = {0.0f, 1.0f, 4.0f * tied_multiplier(2), 13.0f * tied_multiplier(3)};
    for (int k = 1; k <= 3; ++k) {
        float y = 0;
        ternary_gemv_ref(l, data.data(), k, q, 1.0f, 0, 1, &y);
        CHECK(y == want[k]);
        std::vector<float> w(4);
        dequantize_row(l, data.data(), 0, k, w.data());
        CHECK(w[0] + w[1] + w[2] + w[3] == Approx(want[k]));
    }
    CHECK(tied_multiplier(3) == static_cast<float>(1.0 / 9.0));
}

TEST_CASE("tied scales at N = 1: the same bytes and the same results as free scales", "[kernels][tied]") {
    const Isa isa = avx2_available() ? Isa::Avx2 : Isa::Generic;
    for (int bits : {16, 8}) {
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bs : {32, 64, 128}) {
            CAPTURE(bits, packing_name(p), bs);
            const TernaryLayout fr{45, 257, 1, bs, p, ScaleMode::Free, bits};
            const TernaryLayout ti{45, 257, 1, bs, p, ScaleMode::Tied, bits};
            CHECK(ti.block_bytes() == fr.block_bytes());
            CHECK(ti.total_bytes() == fr.total_bytes());
            CHECK(ti.bits_per_weight() == fr.bits_per_weight());
            std::mt19937 r1(bs), r2(bs);
            const auto df = make_tensor(fr, r1, Fill::Random);
            const auto dt = make_tensor(ti, r2, Fill::Random);
            REQUIRE(df == dt);
            const LutWeights wf = lut_repack(fr, df.data()), wt = lut_repack(ti, dt.data());
            CHECK(wf.layout.total_bytes() == wt.layout.total_bytes());
            CHECK(std::memcmp(wf.data, wt.data, wf.layout.total_bytes()) == 0);
            std::mt19937 rng(5);
            const Prepared a = prepare(fr, rng, isa), b = prepare(fr, rng, isa);
            std::vector<float> ref_a(45), ref_b(45), tied_a(45);
            ternary_gemv_ref(fr, df.data(), 1, a.in.q.data(), a.in.scale, 0, 45, ref_a.data());
            ternary_gemv_ref(fr, df.data(), 1, b.in.q.data(), b.in.scale, 0, 45, ref_b.data());
            ternary_gemv_ref(ti, dt.data(), 1, a.in.q.data(), a.in.scale, 0, 45, tied_a.data());
            CHECK(same_bits(ref_a.data(), tied_a.data(), 45));
            check_kernels(ti, dt.data(), wt, 1, a, b, ref_a, ref_b, 0, 45);
            std::vector<float> wrow_f(257), wrow_t(257);
            for (std::int64_t r = 0; r < 45; ++r) {
                dequantize_row(fr, df.data(), r, 1, wrow_f.data());
                dequantize_row(ti, dt.data(), r, 1, wrow_t.data());
                CHECK(wrow_f == wrow_t);
            }
        }
    }
    }
}

TEST_CASE("tied scales: N = 8 at B = 4096, the largest levels, are exact in every kernel", "[kernels][tied]") {
    // All trits +1 (or -1) against activations +127 (or -127): |level| = 3280 * 127 * 4096,
    // just below 2^31; the maddubs kernel's 2bit sums of codes c = t + 1 pass 2^31 on the way.
    // Two-level: super-scale 0.5 and sub-scales 2, a block scale of exactly 1.0 again.
    const Isa isa = avx2_available() ? Isa::Avx2 : Isa::Generic;
    for (int bits : {16, 8})
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        const TernaryLayout l{9, 2 * 4096, 8, 4096, p, ScaleMode::Tied, bits};
        std::vector<std::uint8_t> data(l.total_bytes());
        std::vector<std::int8_t> t(4096);
        for (std::int64_t r = 0; r < l.rows; ++r) {
            std::fill(t.begin(), t.end(), static_cast<std::int8_t>(r % 2 ? -1 : 1));
            std::uint8_t* row = data.data() + r * l.row_bytes();
            if (l.two_level()) {
                row[0] = 0x00;  // binary16 0.5
                row[1] = 0x38;
            }
            for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
                std::uint8_t* blk = row + l.block_offset(b);
                if (l.two_level()) {
                    blk[0] = 2;
                } else {
                    blk[0] = 0x00;  // binary16 1.0
                    blk[1] = 0x3C;
                }
                for (int k = 0; k < l.bases; ++k) {
                    pack_trits(p, t.data(), 4096, blk + l.block_scale_bytes() + k * l.group_bytes());
                }
            }
        }
        const LutWeights w = lut_repack(l, data.data());
        for (float xv : {1.0f, -1.0f}) {
            Prepared a, b;
            const std::vector<float> x(static_cast<std::size_t>(l.cols), xv);
            for (Prepared* pr : {&a, &b}) {
                prepare_ternary_input(isa, x.data(), l.cols, l.block_size, l.packing, pr->in);
                pr->tables.resize(lut_table_bytes(l));
                lut_prepare_ref_for(l, pr->in.q.data(), pr->tables.data());
            }
            for (int k : {1, 2, 3, 4, 7, 8}) {  // 2..4: the levels path at its largest u
                CAPTURE(bits, packing_name(p), xv, k);
                std::vector<float> ref(9);
                ternary_gemv_ref(l, data.data(), k, a.in.q.data(), a.in.scale, 0, 9, ref.data());
                std::int64_t level = 0;
                for (int i = 0; i < k; ++i) level = 3 * level + 127 * 4096;
                const float block = (1.0f * tied_multiplier(k)) * static_cast<float>(level);
                const float want = (block + block) * a.in.scale * (xv > 0 ? 1.0f : -1.0f);
                CHECK(ref[0] == want);
                CHECK(ref[1] == -want);
                check_kernels(l, data.data(), w, k, a, b, ref, ref, 0, 9);
                check_kernels(l, data.data(), w, k, a, b, ref, ref, 3, 8);
            }
        }
    }
}
