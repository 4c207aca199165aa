// int8 GEMV with the Armv8.2 dot-product extension (int8_gemv_neon.h): one sdot per 16
// weights adds four products into each int32 lane. Compiled with -march=armv8.2-a+dotprod
// for this file only; called only when the CPU reports asimddp (getauxval(AT_HWCAP)).
#include "kernels/int8_gemv_neon.h"
#include "kernels/int8_gemv_neon_rows.h"

namespace bitttt::kernels {

namespace {

struct DotAcc {
    static int32x4_t zero() { return vdupq_n_s32(0); }
    static int32x4_t add(int32x4_t acc, int8x16_t w, int8x16_t q) { return vdotq_s32(acc, w, q); }
    static std::int32_t sum(int32x4_t acc) { return vaddvq_s32(acc); }
};

}  // namespace

void int8_gemv_neon_dot(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                        std::int64_t r0, std::int64_t r1, float* y) {
    neon::int8_rows<DotAcc>(layout, data, q, x_scale, r0, r1, y);
}

}  // namespace bitttt::kernels
