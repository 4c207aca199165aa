// AVX2 activation quantiser (quantize_int8's AVX2 form). Compiled with -mavx2 for this file
// only; called only when kernels::avx2_available().
//
// Bit-identical to quantize_int8_ref: max|x| does not depend on the order it is taken in,
// q_i = x_i * (127 / max|x|) is the same single multiply, _mm256_round_ps to nearest is
// std::nearbyint in the default rounding mode (ties to even), then the same clamp. The rare
// rows the reference treats specially (a NaN or infinity, all zeros, a subnormal max) are
// left to it. Generation quantises every layer input once per token on one thread, and the
// reference's nearbyint is a libm call per element on x86-64 builds without SSE4.1 (an
// 8192-wide input cost about as much as building its lookup tables).
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/ternary_gemv.h"

namespace bitttt::kernels {

float quantize_int8_avx2(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded) {
    // max|x|, and whether every |x| is finite (a NaN compares false with everything).
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 big = _mm256_set1_ps(std::numeric_limits<float>::max());
    __m256 vmax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ));  // > max, or NaN
        vmax = _mm256_max_ps(vmax, a);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, vmax);
    float amax = 0.0f;
    bool finite = _mm256_movemask_ps(bad) == 0;
    for (float v : lanes) amax = v > amax ? v : amax;
    for (; i < n; ++i) {
        const float a = x[i] < 0 ? -x[i] : x[i];
        finite &= a <= std::numeric_limits<float>::max();
        amax = a > amax ? a : amax;
    }
    const float inv = 127.0f / amax;
    if (!finite || !(amax > 0.0f) || !(inv <= std::numeric_limits<float>::max())) {
        return quantize_int8_ref(x, n, q, n_padded);
    }
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    auto quant8 = [&](const float* p) {  // eight values, rounded and clamped, as int32
        const __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(p), vinv),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
    };
    i = 0;
    for (; i + 32 <= n; i += 32) {
        // The packs work per 128-bit lane: of the eight groups of four values a0 a1 b0 b1
        // c0 c1 d0 d1 (a0: the first four of a), the bytes come out as dwords a0 b0 c0 d0
        // a1 b1 c1 d1; one dword permute puts them back in order.
        const __m256i ab = _mm256_packs_epi32(quant8(x + i), quant8(x + i + 8));
        const __m256i cd = _mm256_packs_epi32(quant8(x + i + 16), quant8(x + i + 24));
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), bytes);
    }
    for (; i < n; ++i) {
        const float v = std::nearbyint(x[i] * inv);
        q[i] = static_cast<std::int8_t>(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v);
    }
    for (i = n; i < n_padded; ++i) q[i] = 0;
    return amax / 127.0f;
}

}  // namespace bitttt::kernels
