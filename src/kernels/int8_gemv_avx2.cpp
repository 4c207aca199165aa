// AVX2 int8 GEMV over the .btt int8 layout (compiled with -mavx2 -mfma -mf16c for this file
// only; called only when kernels::avx2_available()).
//
// Bit-identical to int8_gemv_ref: the row's int32 dot product is exact (integer addition
// is associative, so the order of the partial sums does not matter), and the float part is
// the same expression, ((float)dot * scale) * x_scale, unfused (-ffp-contract=off).
//
// Integer part, per 32 weights w and activations q: maddubs multiplies unsigned by signed
// bytes, so it gets |w| and sign(q, w) = q * sign(w): |w| * (q * sign(w)) = w * q, and
// adjacent pairs are summed to int16 (|pair| <= 2 * 128 * 127 = 32512: no saturation, even
// for a corrupt -128 weight, whose |w| is 128 as an unsigned byte; q is never -128, see
// quantize_int8). madd with ones widens the pairs to int32 before accumulating. Four rows
// are done at once so that each activation load serves four rows and the four
// accumulator chains overlap; the last cols % 32 columns are added in scalar code.
#include <immintrin.h>

#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/int8_gemv.h"

namespace bitttt::kernels {

namespace {

inline __m256i load32(const std::int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// int32 lanes of w * q for 32 bytes (pair sums widened).
inline __m256i dot32(__m256i w, __m256i q, __m256i ones16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(q, w)), ones16);
}

inline std::int32_t hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

inline std::int32_t tail_dot(const std::int8_t* w, const std::int8_t* q, std::int64_t c0, std::int64_t cols) {
    std::int32_t s = 0;
    for (std::int64_t c = c0; c < cols; ++c) s += static_cast<std::int32_t>(w[c]) * static_cast<std::int32_t>(q[c]);
    return s;
}

}  // namespace

void int8_gemv_avx2(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                    std::int64_t r0, std::int64_t r1, float* y) {
    const std::int64_t cols = layout.cols;
    const std::int64_t body = cols / 32 * 32;
    const __m256i ones16 = _mm256_set1_epi16(1);
    auto row_ptr = [&](std::int64_t r) {
        return reinterpret_cast<const std::int8_t*>(data + static_cast<std::uint64_t>(r) *
                                                               static_cast<std::uint64_t>(cols));
    };
    auto finish = [&](std::int64_t r, std::int32_t dot) {
        y[r - r0] = static_cast<float>(dot) * int8_row_scale(layout, data, r) * x_scale;
    };
    std::int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const std::int8_t* w0 = row_ptr(r);
        const std::int8_t* w1 = w0 + cols;
        const std::int8_t* w2 = w1 + cols;
        const std::int8_t* w3 = w2 + cols;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        // The next four rows (contiguous after w3) prefetched into L2 while these run:
        // 128 of their bytes per 32 columns. Integer arithmetic: past the end is harmless.
        const std::uintptr_t next = reinterpret_cast<std::uintptr_t>(w3 + cols);
        for (std::int64_t c = 0; c < body; c += 32) {
            _mm_prefetch(reinterpret_cast<const char*>(next + 4 * static_cast<std::uintptr_t>(c)), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(next + 4 * static_cast<std::uintptr_t>(c) + 64), _MM_HINT_T1);
            const __m256i x = load32(q + c);
            a0 = _mm256_add_epi32(a0, dot32(load32(w0 + c), x, ones16));
            a1 = _mm256_add_epi32(a1, dot32(load32(w1 + c), x, ones16));
            a2 = _mm256_add_epi32(a2, dot32(load32(w2 + c), x, ones16));
            a3 = _mm256_add_epi32(a3, dot32(load32(w3 + c), x, ones16));
        }
        finish(r, hsum(a0) + tail_dot(w0, q, body, cols));
        finish(r + 1, hsum(a1) + tail_dot(w1, q, body, cols));
        finish(r + 2, hsum(a2) + tail_dot(w2, q, body, cols));
        finish(r + 3, hsum(a3) + tail_dot(w3, q, body, cols));
    }
    for (; r < r1; ++r) {
        const std::int8_t* w = row_ptr(r);
        __m256i a = _mm256_setzero_si256();
        for (std::int64_t c = 0; c < body; c += 32) a = _mm256_add_epi32(a, dot32(load32(w + c), load32(q + c), ones16));
        finish(r, hsum(a) + tail_dot(w, q, body, cols));
    }
}

}  // namespace bitttt::kernels
