// The non-ternary operations of a Llama step (scalar reference versions).
#pragma once

#include <cstdint>

namespace bitttt::kernels {

// out = x / sqrt(mean(x^2) + eps) * w   (out may alias x)
void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out);
// In-place numerically stable softmax over x[0..n).
void softmax(float* x, std::int64_t n);
// out = silu(gate) * up, silu(g) = g / (1 + exp(-g))   (out may alias either input)
void swiglu(const float* gate, const float* up, std::int64_t n, float* out);
// sum a_i * b_i
float dot(const float* a, const float* b, std::int64_t n);
// y += a * x
void axpy(float a, const float* x, std::int64_t n, float* y);
// y[r - r0] = W[r, :] . x for rows [r0, r1) of a row-major F32 matrix [rows, cols].
void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
// The same for a little-endian binary16 matrix (any alignment).
void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);

}  // namespace bitttt::kernels
