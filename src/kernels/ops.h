// The non-ternary operations of a Llama step: norms, softmax, SwiGLU, F32 / F16 GEMV,
// attention over the KV cache, RoPE rotation, F16 row conversion.
//
// kernels::rmsnorm etc. run the version of active_isa() (a table of function pointers
// chosen once, see ops_table()). kernels::scalar:: holds the portable reference versions
// (ops_scalar.cpp), kernels::avx2:: the AVX2 + FMA + F16C ones (ops_avx2.cpp),
// kernels::neon:: the AArch64 NEON ones (ops_neon.cpp, bit-identical to the AVX2 ones, so
// x86-64 and aarch64 builds compute the same logits). Unlike the ternary GEMV, the vector
// versions are not bit-identical to the scalar ones: they sum in a different order, use FMA
// and a polynomial exp (tests/test_ops.cpp bounds the differences). Each output element is
// still computed the same way whatever rows or positions a call covers, so results do not
// depend on the thread count.
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"

namespace bitttt::kernels {

// The signatures, documented once here (every ISA implements the same contract):
//
// rmsnorm:   out = x / sqrt(mean(x^2) + eps) * w                       (out may alias x)
// softmax:   in-place numerically stable softmax over x[0..n)
// swiglu:    out = silu(gate) * up, silu(g) = g / (1 + exp(-g))        (out may alias either)
// dot:       sum a_i * b_i
// axpy:      y += a * x
// gemv_f32:  y[r - r0] = W[r, :] . x for rows [r0, r1) of a row-major F32 matrix [rows, cols]
// gemv_f16:  the same for a little-endian binary16 matrix (any alignment)
// f16_row:   out[i] = float(binary16 at src + 2i), i < n (any alignment; exact)
// attention: one query head over cache positions [0, n): the key / value of position t
//            start at k + t * stride and v + t * stride ([hd] floats each);
//            scores[t] = softmax_t(q . k_t * scale), out[0..hd) = sum_t scores[t] * v_t.
//            `scores` is scratch of n floats (left holding the probabilities).
// attention_f16: the same over a binary16 cache (k, v and stride in binary16 elements);
//            bit-identical to `attention` of the same ISA over the cache widened to float.
// f32_to_f16_row: out[i] = binary16(x[i]), i < n, rounded to nearest even (dtype.h's
//            f32_to_f16; bit-identical across ISAs except for NaN payloads).
// rope:      rotates pairs (i, i + hd/2) of each of n_heads heads of vec ([n_heads * hd])
//            by the angle whose cosine / sine are cos[i] / sin[i] (HF "rotate_half"):
//            v[i] = x0 c - x1 s, v[i + half] = x1 c + x0 s. Bit-identical across ISAs
//            (no FMA, one multiply and one add per output).
struct OpsTable {
    void (*rmsnorm)(const float* x, const float* w, std::int64_t n, float eps, float* out);
    void (*softmax)(float* x, std::int64_t n);
    void (*swiglu)(const float* gate, const float* up, std::int64_t n, float* out);
    float (*dot)(const float* a, const float* b, std::int64_t n);
    void (*axpy)(float a, const float* x, std::int64_t n, float* y);
    void (*gemv_f32)(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
    void (*gemv_f16)(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1,
                     float* y);
    void (*f16_row)(const std::uint8_t* src, std::int64_t n, float* out);
    void (*attention)(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride,
                      std::int64_t hd, float scale, float* scores, float* out);
    void (*attention_f16)(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                          std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out);
    void (*f32_to_f16_row)(const float* x, std::int64_t n, std::uint16_t* out);
    void (*rope)(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin);
};

// The ops of an ISA. Throws UsageError for Avx2 when avx2_available() is false, for Neon
// when neon_available() is false.
const OpsTable& ops_table(Isa isa);

// The dispatched ops (the table of active_isa(), looked up once).
void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out);
void softmax(float* x, std::int64_t n);
void swiglu(const float* gate, const float* up, std::int64_t n, float* out);
float dot(const float* a, const float* b, std::int64_t n);
void axpy(float a, const float* x, std::int64_t n, float* y);
void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void f16_row(const std::uint8_t* src, std::int64_t n, float* out);
void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out);
void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out);
void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out);
void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin);

namespace scalar {
void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out);
void softmax(float* x, std::int64_t n);
void swiglu(const float* gate, const float* up, std::int64_t n, float* out);
float dot(const float* a, const float* b, std::int64_t n);
void axpy(float a, const float* x, std::int64_t n, float* y);
void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void f16_row(const std::uint8_t* src, std::int64_t n, float* out);
void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out);
void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out);
void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out);
void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin);
}  // namespace scalar

#ifdef BITTTT_HAVE_AVX2_KERNEL
// Compiled with -mavx2 -mfma -mf16c: call only when avx2_available().
namespace avx2 {
void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out);
void softmax(float* x, std::int64_t n);
void swiglu(const float* gate, const float* up, std::int64_t n, float* out);
float dot(const float* a, const float* b, std::int64_t n);
void axpy(float a, const float* x, std::int64_t n, float* y);
void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void f16_row(const std::uint8_t* src, std::int64_t n, float* out);
void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out);
void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out);
void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out);
void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin);
// out[i] = exp(x[i]) with the vector exp the softmax and SwiGLU use (exposed for tests;
// accuracy in ops_avx2.cpp).
void exp(const float* x, std::int64_t n, float* out);
}  // namespace avx2
#endif

#ifdef BITTTT_HAVE_NEON_KERNEL
// AArch64 Advanced SIMD (base Armv8-A): call only when neon_available(). The same results,
// bit for bit, as the avx2:: versions.
namespace neon {
void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out);
void softmax(float* x, std::int64_t n);
void swiglu(const float* gate, const float* up, std::int64_t n, float* out);
float dot(const float* a, const float* b, std::int64_t n);
void axpy(float a, const float* x, std::int64_t n, float* y);
void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y);
void f16_row(const std::uint8_t* src, std::int64_t n, float* out);
void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out);
void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out);
void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out);
void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin);
// The vector exp of softmax and SwiGLU (avx2::exp's, exposed for tests).
void exp(const float* x, std::int64_t n, float* out);
}  // namespace neon
#endif

}  // namespace bitttt::kernels
