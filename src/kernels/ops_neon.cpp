// NEON (AArch64 Advanced SIMD) versions of the ops in ops.h. Advanced SIMD, FMA and the
// binary16 conversions (fcvtl / fcvtn) are all in the Armv8-A base, so this file needs no
// -march flag; it is compiled with -ffp-contract=off, so a multiply and an add written apart
// stay apart and every FMA below is an explicit vfmaq_f32 (and -fno-schedule-insns, see
// CMakeLists.txt).
//
// They compute exactly what ops_avx2.cpp computes, bit for bit: the same operations in the
// same order, with FMA (vfmaq_f32 / vfmsq_f32) exactly where the AVX2 version uses it. Where
// an op reduces across lanes (dot products, GEMV rows, attention scores, the sums of RMSNorm
// and softmax), the AVX2 version sums in eight-lane registers and then adds the lanes in a
// fixed tree; here an eight-lane register is a pair of float32x4_t (F8: lanes 0-3 in lo,
// 4-7 in hi), chunks go to the same accumulators, and hsum() adds the lanes in the same tree.
// Element-wise ops (exp, SwiGLU, the scaling passes, conversions, axpy, RoPE, the
// attention's weighted sum of values, whose every column is its own FMA chain) give the
// same bits at any width, so they run four lanes at a time. Hence an aarch64 build produces
// the same logits as an x86-64 AVX2 build (the ternary and int8 GEMVs are bit-identical
// across ISAs too), and the same greedy output. Against the scalar reference the
// differences are the AVX2 ones, bounded by tests/test_ops.cpp; RoPE and the F16
// conversions are bit-identical to it.
//
// As in ops_avx2.cpp, every row or position goes through the same sequence of operations
// whatever rows or positions a call covers, so results do not depend on the thread count.
//
// Tails (lengths not a multiple of the width) go through small zero-filled buffers, as the
// AVX2 masked loads read zeros: the tail lanes then hold the same values in both versions.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/ops.h"

namespace bitttt::kernels::neon {

namespace {

// ---- eight-lane registers (the AVX2 __m256) as pairs of NEON registers ----------------------

struct F8 {
    float32x4_t lo, hi;  // lanes 0-3, 4-7
};

inline F8 zero8() { return {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
inline F8 add8(F8 a, F8 b) { return {vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)}; }
// acc + a * b, one rounding per lane (_mm256_fmadd_ps(a, b, acc)).
inline F8 fma8(F8 acc, F8 a, F8 b) { return {vfmaq_f32(acc.lo, a.lo, b.lo), vfmaq_f32(acc.hi, a.hi, b.hi)}; }

// The AVX2 hsum's order: lanes i + (i + 4), then (0 + 2) and (1 + 3), then those two.
inline float hsum(F8 v) {
    const float32x4_t s = vaddq_f32(v.lo, v.hi);
    const float32x2_t s2 = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}

inline F8 load8(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4)}; }
// The first rem (< 8) floats at p, zeros after; never reads past p + rem.
inline F8 load8_tail(const float* p, std::int64_t rem) {
    float buf[8] = {};
    std::memcpy(buf, p, static_cast<std::size_t>(rem) * sizeof(float));
    return load8(buf);
}

// 8 binary16 values (little-endian bytes, any alignment) as floats; exact.
inline F8 load8_f16(const std::uint8_t* p) {
    const float16x8_t h = vreinterpretq_f16_u8(vld1q_u8(p));
    return {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
}
// The first rem (< 8) binary16 values at p, zeros after; never reads past p + 2 rem.
inline F8 load8_f16_tail(const std::uint8_t* p, std::int64_t rem) {
    std::uint8_t buf[16] = {};
    std::memcpy(buf, p, static_cast<std::size_t>(2 * rem));
    return load8_f16(buf);
}
// Cache rows: F32 as they are, binary16 widened.
inline F8 load8(const std::uint16_t* p) { return load8_f16(reinterpret_cast<const std::uint8_t*>(p)); }
inline F8 load8_tail(const std::uint16_t* p, std::int64_t rem) {
    return load8_f16_tail(reinterpret_cast<const std::uint8_t*>(p), rem);
}

// Four cache values as floats (the attention's value rows).
inline float32x4_t load4(const float* p) { return vld1q_f32(p); }
inline float32x4_t load4(const std::uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
template <typename T>
inline float32x4_t load4_tail(const T* p, std::int64_t rem) {  // rem < 4, zeros after
    T buf[4] = {};
    std::memcpy(buf, p, static_cast<std::size_t>(rem) * sizeof(T));
    return load4(buf);
}
// Stores the first rem (< 4) lanes of v.
inline void store4_tail(float* p, float32x4_t v, std::int64_t rem) {
    float buf[4];
    vst1q_f32(buf, v);
    std::memcpy(p, buf, static_cast<std::size_t>(rem) * sizeof(float));
}

// ---- exp --------------------------------------------------------------------------------

// ops_avx2.cpp's exp8, four lanes: the same range reduction, polynomial and 2^n scaling,
// operation for operation (accuracy there: 8.0e-8 relative for normal results).
inline float32x4_t exp4(float32x4_t x) {
    // Past these bounds exp is 0 or inf in float; clamping keeps 2^n's exponent fields in
    // range. fmin / fmax return NaN when either operand is NaN, so NaN passes through (the
    // AVX2 min / max do too, by taking the second operand).
    x = vminq_f32(vdupq_n_f32(89.0f), vmaxq_f32(vdupq_n_f32(-104.0f), x));
    // Round to nearest, ties to even (frintn), as _mm256_round_ps(_MM_FROUND_TO_NEAREST_INT).
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    // x - n c, fused (_mm256_fnmadd_ps(n, c, x)); ln2 in two parts.
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    const float32x4_t r2 = vmulq_f32(r, r);
    const float32x4_t y = vaddq_f32(vfmaq_f32(r, p, r2), vdupq_n_f32(1.0f));
    // n in [-150, 129] is an integer already, so the conversion is exact (a NaN lane gives 0
    // here, x86's 0x80000000 there; y is NaN either way). Each half in [-75, 65]: a normal
    // power of two.
    const int32x4_t ni = vcvtq_s32_f32(n);
    const int32x4_t n1 = vshrq_n_s32(ni, 1);
    const int32x4_t n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(y, s1), s2);
}

inline F8 exp8(F8 x) { return {exp4(x.lo), exp4(x.hi)}; }

// ---- dot products of rows -----------------------------------------------------------------

// f(0), f(1), ..., f(N - 1), unrolled in the source: each index is a constant as soon as f
// is inlined, so GCC keeps the arrays indexed by it in registers (with plain loops over
// rows it kept the accumulators in registers but also stored them to the stack on every
// iteration).
template <int N, class F>
inline void unrolled(const F& f) {
    [&]<int... I>(std::integer_sequence<int, I...>) { (f(I), ...); }(std::make_integer_sequence<int, N>{});
}

// y[i] = rows[i] . x for R rows of `cols` values of type T, loaded by Load (8 values of a
// row at column c, or the first rem < 8): ops_avx2.cpp's rows_dot with F8 registers. Per
// row: 8-column chunk j goes to accumulator j & 1, in order, the tail to the next one; the
// same for any R, so a row's result does not depend on its neighbours. prefetch(row, c)
// once per 32 columns (in a plain loop: called through unrolled(), GCC 12 dropped the
// prefetches of the four-row form).
template <int R, typename T, class Load, class LoadTail, class Prefetch>
inline void rows_dot(const T* const* rows, std::int64_t cols, const float* x, float* y, const Load& load,
                     const LoadTail& load_tail, const Prefetch& prefetch) {
    const T* row[R];  // local copies, held in registers (through `rows`, GCC reloaded them)
    unrolled<R>([&](int i) { row[i] = rows[i]; });
    // Row i's two accumulators as four registers (a0 lo, a0 hi, a1 lo, a1 hi).
    float32x4_t a[R][4];
    unrolled<R>([&](int i) { a[i][0] = a[i][1] = a[i][2] = a[i][3] = vdupq_n_f32(0.0f); });
    // Chunk w (8 values) into accumulator j of row i.
    auto add = [&](int i, int j, F8 w, F8 xv) {
        a[i][2 * j] = vfmaq_f32(a[i][2 * j], w.lo, xv.lo);
        a[i][2 * j + 1] = vfmaq_f32(a[i][2 * j + 1], w.hi, xv.hi);
    };
    std::int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        // The AVX2 loop's chunk order for each accumulator, rows interleaved per chunk so that
        // one chunk of x is live at a time (16 accumulators for R = 4, of 32 registers).
        for (int i = 0; i < R; ++i) prefetch(rows[i], c);
        unrolled<4>([&](int k) {
            const F8 xv = load8(x + c + 8 * k);
            unrolled<R>([&](int i) { add(i, k & 1, load(row[i], c + 8 * k), xv); });
        });
    }
    // Which accumulator the next chunk goes to: a branch, not an index, so that every index
    // into `a` stays a constant.
    bool odd = false;
    for (; c + 8 <= cols; c += 8) {
        const F8 xv = load8(x + c);
        unrolled<R>([&](int i) {
            if (odd) {
                add(i, 1, load(row[i], c), xv);
            } else {
                add(i, 0, load(row[i], c), xv);
            }
        });
        odd = !odd;
    }
    if (c < cols) {
        const std::int64_t rem = cols - c;
        const F8 xv = load8_tail(x + c, rem);
        unrolled<R>([&](int i) {
            if (odd) {
                add(i, 1, load_tail(row[i], c, rem), xv);
            } else {
                add(i, 0, load_tail(row[i], c, rem), xv);
            }
        });
    }
    unrolled<R>([&](int i) { y[i] = hsum(add8(F8{a[i][0], a[i][1]}, F8{a[i][2], a[i][3]})); });
}

struct NoPrefetch {
    template <typename T>
    void operator()(const T*, std::int64_t) const {}
};

// Dot products of x with R rows of F32 or binary16 values (the GEMVs' F32 rows, the KV cache).
template <int R, typename T>
inline void rows_dot_plain(const T* const* rows, std::int64_t cols, const float* x, float* y) {
    rows_dot<R>(
        rows, cols, x, y, [](const T* row, std::int64_t c) { return load8(row + c); },
        [](const T* row, std::int64_t c, std::int64_t rem) { return load8_tail(row + c, rem); }, NoPrefetch{});
}

// How far ahead of the current column the F16 GEMV prefetches each row (bytes): the AVX2
// version's distance, which AArch64 has not been measured with.
constexpr std::int64_t kF16PrefetchBytes = 2048;

// Dot products of x with R binary16 rows at byte addresses of any alignment (the lm_head).
template <int R>
inline void rows_dot_f16(const std::uint8_t* const* rows, std::int64_t cols, const float* x, float* y) {
    const std::int64_t row_bytes = 2 * cols;
    rows_dot<R>(
        rows, cols, x, y, [](const std::uint8_t* row, std::int64_t c) { return load8_f16(row + 2 * c); },
        [](const std::uint8_t* row, std::int64_t c, std::int64_t rem) { return load8_f16_tail(row + 2 * c, rem); },
        [row_bytes](const std::uint8_t* row, std::int64_t c) {
            // In integer arithmetic (forming an out-of-bounds pointer is undefined; a prefetch
            // never faults) and clamped to the row's last byte rather than skipped past the
            // end as the AVX2 version does: a select instead of a branch, which had GCC copy
            // the accumulators between registers around it. prfm pldl1keep.
            const std::int64_t off = std::min(2 * c + kF16PrefetchBytes, row_bytes - 1);
            __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(row) +
                                                             static_cast<std::uintptr_t>(off)),
                               0, 3);
        });
}

// out[0..4V) = sum_t p_t v_t[0..4V): each column its own FMA chain over t from 0, so the
// same bits as the AVX2 version's eight-column blocks.
template <int V, typename T>
inline void attend_block(const float* scores, const T* v, std::int64_t n, std::int64_t stride, float* out) {
    float32x4_t acc[V];
    for (int j = 0; j < V; ++j) acc[j] = vdupq_n_f32(0.0f);
    for (std::int64_t t = 0; t < n; ++t) {
        const float32x4_t p = vdupq_n_f32(scores[t]);
        const T* vt = v + t * stride;
        for (int j = 0; j < V; ++j) acc[j] = vfmaq_f32(acc[j], p, load4(vt + 4 * j));
    }
    for (int j = 0; j < V; ++j) vst1q_f32(out + 4 * j, acc[j]);
}

}  // namespace

void exp(const float* x, std::int64_t n, float* out) {
    std::int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, exp4(vld1q_f32(x + i)));
    if (i < n) store4_tail(out + i, exp4(load4_tail(x + i, n - i)), n - i);
}

void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out) {
    // The sum of squares in ops_avx2.cpp's four eight-lane accumulators: 32-element steps,
    // then 8-element chunks into the first, the tail into the second.
    F8 s0 = zero8(), s1 = zero8(), s2 = zero8(), s3 = zero8();
    std::int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const F8 a = load8(x + i), b = load8(x + i + 8), c = load8(x + i + 16), d = load8(x + i + 24);
        s0 = fma8(s0, a, a);
        s1 = fma8(s1, b, b);
        s2 = fma8(s2, c, c);
        s3 = fma8(s3, d, d);
    }
    for (; i + 8 <= n; i += 8) {
        const F8 a = load8(x + i);
        s0 = fma8(s0, a, a);
    }
    if (i < n) {
        const F8 a = load8_tail(x + i, n - i);
        s1 = fma8(s1, a, a);
    }
    const double ss = hsum(add8(add8(s0, s1), add8(s2, s3)));
    const float32x4_t inv = vdupq_n_f32(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps)));
    // (x inv) w per element, unfused.
    for (i = 0; i + 4 <= n; i += 4) {
        vst1q_f32(out + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), inv), vld1q_f32(w + i)));
    }
    if (i < n) {
        const std::int64_t rem = n - i;
        store4_tail(out + i, vmulq_f32(vmulq_f32(load4_tail(x + i, rem), inv), load4_tail(w + i, rem)), rem);
    }
}

void softmax(float* x, std::int64_t n) {
    if (n <= 0) return;
    // The maximum is exact in any order (a +-0 tie cannot change exp(x - max)).
    float32x4_t mv = vdupq_n_f32(-INFINITY);
    std::int64_t i = 0;
    for (; i + 4 <= n; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
    float mx = vmaxvq_f32(mv);
    for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    // exp(x - max) and their sum in one eight-lane accumulator, as the AVX2 version sums.
    const float32x4_t m4 = vdupq_n_f32(mx);
    const F8 m8 = {m4, m4};
    F8 sum = zero8();
    for (i = 0; i + 8 <= n; i += 8) {
        const F8 e = exp8(F8{vsubq_f32(vld1q_f32(x + i), m4), vsubq_f32(vld1q_f32(x + i + 4), m4)});
        vst1q_f32(x + i, e.lo);
        vst1q_f32(x + i + 4, e.hi);
        sum = add8(sum, e);
    }
    if (i < n) {
        const std::int64_t rem = n - i;
        const F8 xv = load8_tail(x + i, rem);
        F8 e = exp8(F8{vsubq_f32(xv.lo, m8.lo), vsubq_f32(xv.hi, m8.hi)});
        float buf[8];
        vst1q_f32(buf, e.lo);
        vst1q_f32(buf + 4, e.hi);
        std::memcpy(x + i, buf, static_cast<std::size_t>(rem) * sizeof(float));
        // Lanes past the end hold exp(0 - mx): zeroed out of the sum, as the AVX2 mask does.
        for (std::int64_t j = rem; j < 8; ++j) buf[j] = 0.0f;
        sum = add8(sum, load8(buf));
    }
    const float32x4_t inv = vdupq_n_f32(1.0f / hsum(sum));
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), inv));
    if (i < n) store4_tail(x + i, vmulq_f32(load4_tail(x + i, n - i), inv), n - i);
}

void swiglu(const float* gate, const float* up, std::int64_t n, float* out) {
    // g / (1 + exp(-g)) * u: a correctly rounded divide (fdiv), as _mm256_div_ps.
    const float32x4_t one = vdupq_n_f32(1.0f);
    auto f = [&](float32x4_t g, float32x4_t u) {
        const float32x4_t e = exp4(vnegq_f32(g));
        return vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), u);
    };
    std::int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, f(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n) {
        const std::int64_t rem = n - i;
        store4_tail(out + i, f(load4_tail(gate + i, rem), load4_tail(up + i, rem)), rem);
    }
}

float dot(const float* a, const float* b, std::int64_t n) {
    const float* rows[1] = {a};
    float y;
    rows_dot_plain<1>(rows, n, b, &y);
    return y;
}

void axpy(float a, const float* x, std::int64_t n, float* y) {
    // y + a x, fused per element (as _mm256_fmadd_ps), so the width does not matter.
    const float32x4_t av = vdupq_n_f32(a);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
        vst1q_f32(y + i + 4, vfmaq_f32(vld1q_f32(y + i + 4), av, vld1q_f32(x + i + 4)));
    }
    for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);  // fmadd, one rounding
}

void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    std::int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float* rows[4] = {w + r * cols, w + (r + 1) * cols, w + (r + 2) * cols, w + (r + 3) * cols};
        rows_dot_plain<4>(rows, cols, x, y + (r - r0));
    }
    for (; r < r1; ++r) {
        const float* rows[1] = {w + r * cols};
        rows_dot_plain<1>(rows, cols, x, y + (r - r0));
    }
}

void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    const std::int64_t rb = 2 * cols;
    std::int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const std::uint8_t* rows[4] = {w + r * rb, w + (r + 1) * rb, w + (r + 2) * rb, w + (r + 3) * rb};
        rows_dot_f16<4>(rows, cols, x, y + (r - r0));
    }
    for (; r < r1; ++r) {
        const std::uint8_t* rows[1] = {w + r * rb};
        rows_dot_f16<1>(rows, cols, x, y + (r - r0));
    }
}

void f16_row(const std::uint8_t* src, std::int64_t n, float* out) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const F8 v = load8_f16(src + 2 * i);
        vst1q_f32(out + i, v.lo);
        vst1q_f32(out + i + 4, v.hi);
    }
    if (i < n) {
        const F8 v = load8_f16_tail(src + 2 * i, n - i);
        float buf[8];
        vst1q_f32(buf, v.lo);
        vst1q_f32(buf + 4, v.hi);
        std::memcpy(out + i, buf, static_cast<std::size_t>(n - i) * sizeof(float));
    }
}

namespace {

// attention() over a cache of T (float or binary16): the same arithmetic for both.
template <typename T>
void attention_over(const float* q, const T* k, const T* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
                    float scale, float* scores, float* out) {
    // Scores four positions at a time (sharing the loads of q), each as dot() computes it.
    std::int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
        const T* rows[4] = {k + t * stride, k + (t + 1) * stride, k + (t + 2) * stride, k + (t + 3) * stride};
        rows_dot_plain<4>(rows, hd, q, scores + t);
    }
    for (; t < n; ++t) {
        const T* rows[1] = {k + t * stride};
        rows_dot_plain<1>(rows, hd, q, scores + t);
    }
    const float32x4_t s4 = vdupq_n_f32(scale);
    for (t = 0; t + 4 <= n; t += 4) vst1q_f32(scores + t, vmulq_f32(vld1q_f32(scores + t), s4));
    for (; t < n; ++t) scores[t] *= scale;
    softmax(scores, n);

    // out = sum_t p_t v_t, up to 64 columns at a time held in registers (16 of the 32) over
    // all positions.
    std::int64_t c = 0;
    for (; c + 64 <= hd; c += 64) attend_block<16>(scores, v + c, n, stride, out + c);
    for (; c + 32 <= hd; c += 32) attend_block<8>(scores, v + c, n, stride, out + c);
    for (; c + 4 <= hd; c += 4) attend_block<1>(scores, v + c, n, stride, out + c);
    if (c < hd) {
        const std::int64_t rem = hd - c;
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (t = 0; t < n; ++t) acc = vfmaq_f32(acc, vdupq_n_f32(scores[t]), load4_tail(v + t * stride + c, rem));
        store4_tail(out + c, acc, rem);
    }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out) {
    attention_over(q, k, v, n, stride, hd, scale, scores, out);
}

void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out) {
    attention_over(q, k, v, n, stride, hd, scale, scores, out);
}

void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out) {
    // fcvtn rounds by FPCR's mode, round to nearest even unless a program changes it (as
    // _mm256_cvtps_ph with _MM_FROUND_TO_NEAREST_INT); binary16 subnormals are kept (FPCR.FZ16
    // is clear by default, and does not apply to this conversion's results anyway).
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4));
        vst1q_u16(out + i, vreinterpretq_u16_f16(h));
    }
    for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    if (i < n) {
        std::uint16_t buf[4];
        vst1_u16(buf, vreinterpret_u16_f16(vcvt_f16_f32(load4_tail(x + i, n - i))));
        std::memcpy(out + i, buf, static_cast<std::size_t>(n - i) * sizeof(std::uint16_t));
    }
}

void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin) {
    // Separate multiplies and adds (no FMA): bit-identical to the scalar version.
    const std::int64_t half = hd / 2;
    for (std::int64_t h = 0; h < n_heads; ++h) {
        float* v = vec + h * hd;
        std::int64_t i = 0;
        for (; i + 4 <= half; i += 4) {
            const float32x4_t x0 = vld1q_f32(v + i), x1 = vld1q_f32(v + i + half);
            const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
            vst1q_f32(v + i, vsubq_f32(vmulq_f32(x0, c), vmulq_f32(x1, s)));
            vst1q_f32(v + i + half, vaddq_f32(vmulq_f32(x1, c), vmulq_f32(x0, s)));
        }
        for (; i < half; ++i) {
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cos[i] - x1 * sin[i];
            v[i + half] = x1 * cos[i] + x0 * sin[i];
        }
    }
}

}  // namespace bitttt::kernels::neon
