// Int8 matrix-vector product over the .btt int8 layout (per-row scale; include/bitttt/int8.h):
// the output layer of a low-bit model, read whole for every token.
//
// The activation vector x is quantised once to int8 with one scale (kernels::quantize_int8,
// as for the ternary layers). Each row's dot product of int8 weights and int8 activations
// is exact in int32 (cols <= kInt8MaxCols), and the row's output is
//   y[r] = ((float)dot(r) * scale[r]) * x_scale
// in that order, with separate multiplies. Faster kernels compute the same integer dot and
// the same float expression, so their outputs are bit-identical to this reference.
#pragma once

#include <cstdint>

#include "bitttt/int8.h"

namespace bitttt::kernels {

// Sum of w[i] * q[i] for i < n, exact in int32 (n <= kInt8MaxCols).
std::int32_t int8_dot_ref(const std::int8_t* w, const std::int8_t* q, std::int64_t n);

// y[r - r0] = ((float)dot(row r, q) * scale[r]) * x_scale for rows r in [r0, r1). `q` holds
// layout.cols int8 activations.
void int8_gemv_ref(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                   std::int64_t r0, std::int64_t r1, float* y);

}  // namespace bitttt::kernels
