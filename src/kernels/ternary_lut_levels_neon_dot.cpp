// The levels path for prompt batches with the Armv8.2 dot-product extension
// (ternary_lut_levels_neon.h has the decoded layout and the exactness argument): one sdot
// per 16-byte register of a decoded quad (4 rows x 4 positions) adds the four products of
// each row into its int32 lane. The activations of four quads are loaded in one register and
// picked by lane (sdot by element), so the per-input work is one load per 16 positions and
// eight sdot per quad. Compiled with -O3 -march=armv8.2-a+dotprod -ffp-contract=off for this
// file only; called only when the CPU reports asimddp (neon_dotprod_available()).
#include "kernels/ternary_lut_levels_neon.h"

namespace bitttt::kernels {

namespace {

using namespace lut_neon;

// dot[i] += sum over registers i of quad `d` (rows 4i .. 4i+3) times the quad's activations,
// lane Lq of qv.
template <int Lq>
BITTTT_NEON_INLINE void quad_dot(const std::int8_t* d, int8x16_t qv, int32x4_t (&dot)[8]) {
    for (int i = 0; i < 8; ++i) dot[i] = vdotq_laneq_s32(dot[i], vld1q_s8(d + 16 * i), qv, Lq);
}

struct SdotDots {
    BITTTT_NEON_INLINE static void dots(const std::uint8_t* dec, int quads, const std::uint8_t* q, int32x4_t (&dot)[8]) {
        const std::int8_t* d = reinterpret_cast<const std::int8_t*>(dec);
        const std::int8_t* qs = reinterpret_cast<const std::int8_t*>(q);
        for (auto& v : dot) v = vdupq_n_s32(0);
        int qd = 0;
        for (; qd + 4 <= quads; qd += 4) {
            const int8x16_t qv = vld1q_s8(qs + 4 * qd);
            quad_dot<0>(d + 128 * static_cast<std::size_t>(qd), qv, dot);
            quad_dot<1>(d + 128 * static_cast<std::size_t>(qd + 1), qv, dot);
            quad_dot<2>(d + 128 * static_cast<std::size_t>(qd + 2), qv, dot);
            quad_dot<3>(d + 128 * static_cast<std::size_t>(qd + 3), qv, dot);
        }
        for (; qd < quads; ++qd) {
            std::uint32_t qq;
            std::memcpy(&qq, q + 4 * qd, 4);
            quad_dot<0>(d + 128 * static_cast<std::size_t>(qd), vreinterpretq_s8_u32(vdupq_n_u32(qq)), dot);
        }
    }
};

}  // namespace

void lut_gemm_levels_neon_dot(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales,
                              int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    levels_fn_for<SdotDots>(w.layout)(w, k_bases, in, x_scales, m, r0, r1, y, ldy);
}

}  // namespace bitttt::kernels
