// The NEON int8 GEMV kernels (aarch64 builds only): plain NEON (int8_gemv_neon.cpp,
// widening multiplies) and the dot-product extension (int8_gemv_neon_dot.cpp, sdot,
// compiled with -march=armv8.2-a+dotprod and called only when the CPU reports asimddp).
// Both compute int8_gemv_ref's exact int32 dots and its float expression, unfused, so
// their outputs are bit-identical to it.
#pragma once

#include <cstdint>

#include "bitttt/int8.h"

namespace bitttt::kernels {

#ifdef BITTTT_HAVE_NEON_KERNEL
void int8_gemv_neon(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                    std::int64_t r0, std::int64_t r1, float* y);
void int8_gemv_neon_dot(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                        std::int64_t r0, std::int64_t r1, float* y);
#endif

}  // namespace bitttt::kernels
