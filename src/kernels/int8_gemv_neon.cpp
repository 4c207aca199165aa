// Plain-NEON int8 GEMV (int8_gemv_neon.h). Per 16 weights: two widening multiplies
// (smull, smlal2) give eight int16 lanes of two products each, |.| <= 2 * 128 * 127 = 32512
// (a corrupt -128 weight included; q is never -128, see quantize_int8), and sadalp adds
// adjacent lanes into the int32 accumulator. Exact, like the reference.
#include "kernels/int8_gemv_neon.h"
#include "kernels/int8_gemv_neon_rows.h"

namespace bitttt::kernels {

namespace {

struct WideningAcc {
    static int32x4_t zero() { return vdupq_n_s32(0); }
    static int32x4_t add(int32x4_t acc, int8x16_t w, int8x16_t q) {
        const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(q)), w, q);
        return vpadalq_s16(acc, p);
    }
    static std::int32_t sum(int32x4_t acc) { return vaddvq_s32(acc); }
};

}  // namespace

void int8_gemv_neon(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                    std::int64_t r0, std::int64_t r1, float* y) {
    neon::int8_rows<WideningAcc>(layout, data, q, x_scale, r0, r1, y);
}

}  // namespace bitttt::kernels
