// The levels path for prompt batches in plain NEON (Armv8.0-A; ternary_lut_levels_neon.h
// has the decoded layout and the exactness argument): the dot of a decoded block with one
// input by widening multiplies. Per quad and 16-byte register (4 rows x 4 positions), smull /
// smlal of its low and high halves with the quad's four activations (broadcast) give int16
// products, summed over G quads per lane (G * (3^K - 1) * 128 <= 32767: 127, 31, 9, 3 for
// K = 1..4), then sadalp adds each lane pair into int32 (half a row's quad each), and at the
// end addp joins the halves: int32 lanes in natural row order. Rows in two passes of 16 (the
// 8 int32 and 8 int16 accumulators of a pass fit the registers). Compiled with -O3
// -ffp-contract=off; the dotprod form (ternary_lut_levels_neon_dot.cpp) replaces it where the
// CPU has sdot.
#include "kernels/ternary_lut_levels_neon.h"

namespace bitttt::kernels {

namespace {

using namespace lut_neon;

template <int G>
struct WideningDots {
    BITTTT_NEON_INLINE static void dots(const std::uint8_t* dec, int quads, const std::uint8_t* q, int32x4_t (&dot)[8]) {
        for (int hh = 0; hh < 2; ++hh) {  // registers 4 hh .. 4 hh + 3: rows 16 hh .. 16 hh + 15
            int32x4_t a[8];
            for (auto& v : a) v = vdupq_n_s32(0);
            for (int q0 = 0; q0 < quads; q0 += G) {
                const int q1 = std::min(quads, q0 + G);
                int16x8_t p[8];
                for (auto& v : p) v = vdupq_n_s16(0);
                for (int qd = q0; qd < q1; ++qd) {
                    std::uint32_t qq;
                    std::memcpy(&qq, q + 4 * qd, 4);
                    const int8x16_t qb = vreinterpretq_s8_u32(vdupq_n_u32(qq));
                    const std::int8_t* d = reinterpret_cast<const std::int8_t*>(dec) + 128 * static_cast<std::size_t>(qd) + 64 * hh;
                    for (int i = 0; i < 4; ++i) {
                        const int8x16_t u = vld1q_s8(d + 16 * i);
                        p[2 * i] = vmlal_s8(p[2 * i], vget_low_s8(u), vget_low_s8(qb));  // rows 4i, 4i+1
                        p[2 * i + 1] = vmlal_high_s8(p[2 * i + 1], u, qb);               // rows 4i+2, 4i+3
                    }
                }
                for (int i = 0; i < 8; ++i) a[i] = vpadalq_s16(a[i], p[i]);
            }
            for (int i = 0; i < 4; ++i) dot[4 * hh + i] = vpaddq_s32(a[2 * i], a[2 * i + 1]);
        }
    }
};

}  // namespace

void lut_gemm_levels_neon(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales,
                          int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    LevelsFn run;
    switch (k_bases) {
        case 1: run = levels_fn_for<WideningDots<127>>(w.layout); break;
        case 2: run = levels_fn_for<WideningDots<31>>(w.layout); break;
        case 3: run = levels_fn_for<WideningDots<9>>(w.layout); break;
        default: run = levels_fn_for<WideningDots<3>>(w.layout); break;
    }
    run(w, k_bases, in, x_scales, m, r0, r1, y, ldy);
}

}  // namespace bitttt::kernels
