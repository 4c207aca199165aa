// AVX2 + FMA + F16C versions of the ops in ops.h (compiled with -mavx2 -mfma -mf16c for this
// file only; called only when kernels::avx2_available()).
//
// They use FMA and sum in eight lanes, so they differ from the scalar reference by rounding
// (tests/test_ops.cpp bounds the difference from the data). Where rows or positions are
// processed several at a time (GEMV, attention scores), every row still goes through the
// same sequence of operations as when it is processed alone, so results do not depend on
// how rows are split between threads.
//
// ops_neon.cpp computes the same bits on AArch64 (same operation order, FMA in the same
// places, the same exp): a change to the arithmetic here goes there too, and
// tests/test_ops.cpp pins the bits of both ("the vector ops give the same bits").
//
// exp: range reduction x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is exact
// enough), a degree-6 polynomial for e^r (Cephes' expf coefficients) and 2^n applied as
// two exponent-field scalings 2^(n/2) 2^(n - n/2), so results that are subnormal, overflow
// to inf or underflow to 0 come out right without special cases. Measured max relative
// error against double-precision exp over [-88, 88] where the result is a normal float:
// 8.0e-8, 1.3 units of 2^-24 (tests/test_ops.cpp checks < 4e-7 on ~270K points); below
// FLT_MIN the error is a few subnormal ulps. NaN propagates.
//
// The F16 GEMV (the lm_head, 32000-128256 rows) is memory bound: four rows at a time share
// each load of x, two accumulators per row keep eight FMA chains in flight, and each row's
// line 2 KB ahead is prefetched. Measured (32000 and 128256 x 2048, one thread, variants
// interleaved in one process, medians of 11, a noisy shared machine): without prefetch
// 15-20 GB/s, 1-2 KB ahead 21-24 GB/s; 512 B and 4 KB ahead, or prefetching on into the
// next rows, were within noise of 2 KB. A plain one-stream AVX2 read loop over 525 MB
// reached 14.5 GB/s on the same machine.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/ops.h"

namespace bitttt::kernels::avx2 {

namespace {

inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

inline float hmax(__m256 v) {
    const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 s2 = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s2, _mm_movehdup_ps(s2)));
}

// Lanes [0, rem) set, rem in 0..8.
inline __m256i tail_mask(std::int64_t rem) {
    alignas(32) static const std::int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + 8 - rem));
}

// 8 binary16 values (any alignment) as floats; exact.
inline __m256 load_f16(const std::uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// The first rem (< 8) binary16 values at p, zeros after; never reads past p + 2 rem.
inline __m256 load_f16_tail(const std::uint8_t* p, std::int64_t rem) {
    alignas(16) std::uint8_t buf[16] = {};
    std::memcpy(buf, p, static_cast<std::size_t>(2 * rem));
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
}

inline __m256 exp8(__m256 x) {
    // Past these bounds exp is 0 or inf in float; clamping keeps 2^n's exponent fields in range.
    // max / min take the second operand when one is NaN, so NaN passes through.
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
    // n in [-150, 129]: each half in [-75, 65], a normal power of two.
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

// y[i] = rows[i] . x for R rows of `cols` values, loaded by Load (8 values at column c, or
// the first rem < 8). Per row: 8-column chunk j goes to accumulator j & 1, in order, the
// tail to the next one; the same for any R, so a row's result does not depend on its
// neighbours. prefetch(i, c) is called once per 32 columns.
template <int R, class Load, class LoadTail, class Prefetch>
inline void rows_dot(std::int64_t cols, const float* x, float* y, const Load& load, const LoadTail& load_tail,
                     const Prefetch& prefetch) {
    __m256 a0[R], a1[R];
    for (int i = 0; i < R; ++i) a0[i] = a1[i] = _mm256_setzero_ps();
    std::int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
        const __m256 x2 = _mm256_loadu_ps(x + c + 16), x3 = _mm256_loadu_ps(x + c + 24);
        for (int i = 0; i < R; ++i) {
            prefetch(i, c);
            a0[i] = _mm256_fmadd_ps(load(i, c), x0, a0[i]);
            a1[i] = _mm256_fmadd_ps(load(i, c + 8), x1, a1[i]);
            a0[i] = _mm256_fmadd_ps(load(i, c + 16), x2, a0[i]);
            a1[i] = _mm256_fmadd_ps(load(i, c + 24), x3, a1[i]);
        }
    }
    bool odd = false;  // which accumulator the next chunk goes to
    for (; c + 8 <= cols; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
        for (int i = 0; i < R; ++i) {
            if (odd) {
                a1[i] = _mm256_fmadd_ps(load(i, c), xv, a1[i]);
            } else {
                a0[i] = _mm256_fmadd_ps(load(i, c), xv, a0[i]);
            }
        }
        odd = !odd;
    }
    if (c < cols) {
        const std::int64_t rem = cols - c;
        const __m256 xv = _mm256_maskload_ps(x + c, tail_mask(rem));
        for (int i = 0; i < R; ++i) {
            if (odd) {
                a1[i] = _mm256_fmadd_ps(load_tail(i, c, rem), xv, a1[i]);
            } else {
                a0[i] = _mm256_fmadd_ps(load_tail(i, c, rem), xv, a0[i]);
            }
        }
    }
    for (int i = 0; i < R; ++i) y[i] = hsum(_mm256_add_ps(a0[i], a1[i]));
}

struct NoPrefetch {
    void operator()(int, std::int64_t) const {}
};

// Dot products of x with R F32 rows at the given addresses.
template <int R>
inline void rows_dot_f32(const float* const* rows, std::int64_t cols, const float* x, float* y) {
    rows_dot<R>(
        cols, x, y, [&](int i, std::int64_t c) { return _mm256_loadu_ps(rows[i] + c); },
        [&](int i, std::int64_t c, std::int64_t rem) { return _mm256_maskload_ps(rows[i] + c, tail_mask(rem)); },
        NoPrefetch{});
}

// How far ahead of the current column the F16 GEMV prefetches each row (bytes).
constexpr std::int64_t kF16PrefetchBytes = 2048;

template <int R>
inline void rows_dot_f16(const std::uint8_t* const* rows, std::int64_t cols, const float* x, float* y) {
    const std::int64_t row_bytes = 2 * cols;
    rows_dot<R>(
        cols, x, y, [&](int i, std::int64_t c) { return load_f16(rows[i] + 2 * c); },
        [&](int i, std::int64_t c, std::int64_t rem) { return load_f16_tail(rows[i] + 2 * c, rem); },
        [&](int i, std::int64_t c) {
            // Integer arithmetic: the address may lie past the row (prefetches never fault,
            // but forming an out-of-bounds pointer is undefined).
            if (kF16PrefetchBytes > 0 && 2 * c + kF16PrefetchBytes < row_bytes) {
                _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(rows[i]) +
                                                            static_cast<std::uintptr_t>(2 * c + kF16PrefetchBytes)),
                             _MM_HINT_T0);
            }
        });
}

// Eight cache values as floats: F32 as they are, binary16 widened (exact).
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const std::uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
// The first rem (< 8) values, zeros after; never reads past p + rem.
inline __m256 load8_tail(const float* p, std::int64_t rem) { return _mm256_maskload_ps(p, tail_mask(rem)); }
inline __m256 load8_tail(const std::uint16_t* p, std::int64_t rem) {
    return load_f16_tail(reinterpret_cast<const std::uint8_t*>(p), rem);
}

// out[0..8V) = sum_t p_t v_t[0..8V)
template <int V, typename T>
inline void attend_block(const float* scores, const T* v, std::int64_t n, std::int64_t stride, float* out) {
    __m256 acc[V];
    for (int j = 0; j < V; ++j) acc[j] = _mm256_setzero_ps();
    for (std::int64_t t = 0; t < n; ++t) {
        const __m256 p = _mm256_broadcast_ss(scores + t);
        const T* vt = v + t * stride;
        for (int j = 0; j < V; ++j) acc[j] = _mm256_fmadd_ps(p, load8(vt + 8 * j), acc[j]);
    }
    for (int j = 0; j < V; ++j) _mm256_storeu_ps(out + 8 * j, acc[j]);
}

// Dot products of x with R cache rows (F32 or binary16).
template <int R>
inline void cache_rows_dot(const float* const* rows, std::int64_t cols, const float* x, float* y) {
    rows_dot_f32<R>(rows, cols, x, y);
}
template <int R>
inline void cache_rows_dot(const std::uint16_t* const* rows, std::int64_t cols, const float* x, float* y) {
    rows_dot<R>(
        cols, x, y, [&](int i, std::int64_t c) { return load8(rows[i] + c); },
        [&](int i, std::int64_t c, std::int64_t rem) { return load8_tail(rows[i] + c, rem); }, NoPrefetch{});
}

}  // namespace

void exp(const float* x, std::int64_t n, float* out) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(out + i, m, exp8(_mm256_maskload_ps(x + i, m)));
    }
}

void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        const __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
        s2 = _mm256_fmadd_ps(c, c, s2);
        s3 = _mm256_fmadd_ps(d, d, s3);
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        const __m256 a = _mm256_maskload_ps(x + i, tail_mask(n - i));
        s1 = _mm256_fmadd_ps(a, a, s1);
    }
    const double ss = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps)));
    for (i = 0; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv), _mm256_loadu_ps(w + i)));
    }
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(out + i, m,
                            _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv), _mm256_maskload_ps(w + i, m)));
    }
}

void softmax(float* x, std::int64_t n) {
    if (n <= 0) return;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float mx = hmax(mv);
    for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    const __m256 m8 = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        // Lanes past the end hold 0 - mx: masked out of the sum.
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), m8)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum(sum));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
}

void swiglu(const float* gate, const float* up, std::int64_t n, float* out) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    auto f = [&](__m256 g, __m256 u) {
        const __m256 e = exp8(_mm256_xor_ps(g, sign));
        return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), u);
    };
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, f(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(out + i, m, f(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
    }
}

float dot(const float* a, const float* b, std::int64_t n) {
    const float* rows[1] = {a};
    float y;
    rows_dot_f32<1>(rows, n, b, &y);
    return y;
}

void axpy(float a, const float* x, std::int64_t n, float* y) {
    const __m256 av = _mm256_set1_ps(a);
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
        _mm256_storeu_ps(y + i + 8, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
    }
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(av, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
    }
}

void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    std::int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float* rows[4] = {w + r * cols, w + (r + 1) * cols, w + (r + 2) * cols, w + (r + 3) * cols};
        rows_dot_f32<4>(rows, cols, x, y + (r - r0));
    }
    for (; r < r1; ++r) {
        const float* rows[1] = {w + r * cols};
        rows_dot_f32<1>(rows, cols, x, y + (r - r0));
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
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_f16(src + 2 * i));
    if (i < n) _mm256_maskstore_ps(out + i, tail_mask(n - i), load_f16_tail(src + 2 * i, n - i));
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
        cache_rows_dot<4>(rows, hd, q, scores + t);
    }
    for (; t < n; ++t) {
        const T* rows[1] = {k + t * stride};
        cache_rows_dot<1>(rows, hd, q, scores + t);
    }
    const __m256 s8 = _mm256_set1_ps(scale);
    for (t = 0; t + 8 <= n; t += 8) _mm256_storeu_ps(scores + t, _mm256_mul_ps(_mm256_loadu_ps(scores + t), s8));
    for (; t < n; ++t) scores[t] *= scale;
    softmax(scores, n);

    // out = sum_t p_t v_t, up to 64 columns at a time held in registers over all positions.
    std::int64_t c = 0;
    for (; c + 64 <= hd; c += 64) attend_block<8>(scores, v + c, n, stride, out + c);
    for (; c + 32 <= hd; c += 32) attend_block<4>(scores, v + c, n, stride, out + c);
    for (; c + 8 <= hd; c += 8) attend_block<1>(scores, v + c, n, stride, out + c);
    if (c < hd) {
        const std::int64_t rem = hd - c;
        __m256 acc = _mm256_setzero_ps();
        for (t = 0; t < n; ++t) {
            acc = _mm256_fmadd_ps(_mm256_broadcast_ss(scores + t), load8_tail(v + t * stride + c, rem), acc);
        }
        _mm256_maskstore_ps(out + c, tail_mask(rem), acc);
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
    constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), kRound));
    }
    if (i < n) {
        alignas(16) std::uint16_t buf[8];
        _mm_store_si128(reinterpret_cast<__m128i*>(buf),
                        _mm256_cvtps_ph(_mm256_maskload_ps(x + i, tail_mask(n - i)), kRound));
        std::memcpy(out + i, buf, static_cast<std::size_t>(n - i) * sizeof(std::uint16_t));
    }
}

void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin) {
    // Separate multiplies and adds (no FMA): bit-identical to the scalar version.
    const std::int64_t half = hd / 2;
    for (std::int64_t h = 0; h < n_heads; ++h) {
        float* v = vec + h * hd;
        std::int64_t i = 0;
        for (; i + 8 <= half; i += 8) {
            const __m256 x0 = _mm256_loadu_ps(v + i), x1 = _mm256_loadu_ps(v + i + half);
            const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
            _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
            _mm256_storeu_ps(v + i + half, _mm256_add_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x0, s)));
        }
        for (; i < half; ++i) {
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cos[i] - x1 * sin[i];
            v[i + half] = x1 * cos[i] + x0 * sin[i];
        }
    }
}

}  // namespace bitttt::kernels::avx2
