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
#include <vector>

#include "bitttt/ternary.h"

namespace bitttt::kernels {

// Quantises x[0..n) to q[0..n_padded): q_i = round(x_i * 127 / max|x|) (ties to even),
// zeros from n to n_padded. Returns x_scale = max|x| / 127 (0 for an all-zero x; NaN, over
// zeros, when some x_i is NaN or infinite). quantize_int8 runs the form of active_isa():
// quantize_int8_ref (portable) or quantize_int8_avx2 (quantize_avx2.cpp; only when
// avx2_available(); defined only in builds with BITTTT_HAVE_AVX2_KERNEL), which give the
// same bits.
float quantize_int8(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded);
float quantize_int8_ref(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded);
float quantize_int8_avx2(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded);

// Sum over one packed group of `block_size` trits of t_p * q_p (exact, in int32).
std::int32_t ternary_block_dot_ref(Packing p, const std::uint8_t* group, int block_size, const std::int8_t* q);

// Sixteen int8 activations, 16-byte aligned (the AVX2 kernel's unit of activation loads).
struct alignas(16) Slice16 {
    std::int8_t b[16];
};

// One activation vector prepared for the ternary kernels: quantised once to int8, and for
// the AVX2 kernel also re-laid in the order its loads want. Built once per input vector
// (prepare_ternary_input in dispatch.h) and read-only afterwards, so one preparation
// serves every matrix that multiplies the same vector (q/k/v, gate/up), all their bases
// and all threads.
struct TernaryInput {
    std::int64_t cols = 0;
    int block_size = 0;
    Packing packing = Packing::TwoBit;
    float scale = 0.0f;                    // x ~= q * scale
    std::vector<std::int8_t> q;            // [blocks * block_size], zero padded
    // Filled only when prepared for the AVX2 kernel (see ternary_gemv_avx2.cpp):
    std::vector<Slice16> slices;           // [block][digit][chunk] digit-major activations
    std::vector<std::int32_t> block_sums;  // [block] sum of q over the block

    // True when this preparation fits a tensor of this layout.
    bool fits(const TernaryLayout& l) const {
        return cols == l.cols && block_size == l.block_size && packing == l.packing;
    }
};

// y[r - r0] = x_scale * sum_b sum_{k < k_bases} scale(r, b, k) * dot(r, b, k) for rows
// r in [r0, r1). `q` holds blocks_per_row * block_size int8 values (zero padded).
// Float order, per row: free scales acc += f16(s_k) * float(dot_k) for b = 0.., k = 0..;
// tied scales acc += (f16(s) * tied_multiplier(K)) * float(sum_k 3^(K-1-k) * dot_k) per
// block (the integer combination exact in int32); then y = acc * x_scale. Every other
// ternary kernel computes exactly this.
void ternary_gemv_ref(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                      float x_scale, std::int64_t r0, std::int64_t r1, float* y);

// The batched form (a small GEMM): for each of the m inputs j, y[j * ldy + r - r0] is what
// ternary_gemv_ref gives for in[j]->q and in[j]->scale. Every input must fit `layout`.
void ternary_gemm_ref(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const TernaryInput* const* in,
                      int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);

}  // namespace bitttt::kernels
