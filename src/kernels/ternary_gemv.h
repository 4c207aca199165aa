// Add-only ternary matrix-vector product over the .btt block layout (scalar reference).
//
// The activation vector x is quantised once to int8 with one scale (x ~= q * x_scale,
// BitNet's per-token absmax "A8"). Then, for each row, block and base, the int8 values
// where the trit is +1 are added and those where it is -1 subtracted: an integer sum
// with no multiply per weight. Each (block, base) integer sum is scaled once by its
// binary16 scale, and the row total once by x_scale.
//
// This scalar path is the reference every faster kernel is tested against (identical
// integer block sums), and the fallback on any CPU.
#pragma once

#include <cstdint>

#include "bitttt/ternary.h"

namespace bitttt::kernels {

// Quantises x[0..n) to q[0..n_padded): q_i = round(x_i * 127 / max|x|) (ties to even),
// zeros from n to n_padded. Returns x_scale = max|x| / 127 (0 for an all-zero x).
float quantize_int8(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded);

// Sum over one packed group of `block_size` trits of t_p * q_p (exact, in int32).
std::int32_t ternary_block_dot_ref(Packing p, const std::uint8_t* group, int block_size, const std::int8_t* q);

// y[r - r0] = x_scale * sum_b sum_{k < k_bases} scale(r, b, k) * dot(r, b, k) for rows
// r in [r0, r1). `q` holds blocks_per_row * block_size int8 values (zero padded).
void ternary_gemv_ref(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                      float x_scale, std::int64_t r0, std::int64_t r1, float* y);

}  // namespace bitttt::kernels
