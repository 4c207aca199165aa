// AVX2 lookup-table ternary GEMV, design (b), 2bit tiles: the table build and the GEMV/GEMM
// entry points (the tile functions: ternary_lut_avx2_tiles.h). Compiled with -mavx2 -mfma
// -mf16c -ffp-contract=off for this file only; called only when kernels::avx2_available().
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut.h"
#include "kernels/ternary_lut_avx2_common.h"
#include "kernels/ternary_lut_avx2_tiles.h"
#include "kernels/ternary_lut_tiles.h"

namespace bitttt::kernels {

void lut_prepare_avx2(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const int bs = layout.block_size;
    const int s_bytes = (bs + 3) / 4;
    // Entry e = c0 + 4 * c1 of a pair table is t(c0) * q0 + t(c1) * q1, t(0, 1, 2, 3) =
    // (-1, 0, +1, +1): int16 lanes e = 0..15 of sign(q0, T0) + sign(q1, T1).
    const __m256i t0 = _mm256_setr_epi16(-1, 0, 1, 1, -1, 0, 1, 1, -1, 0, 1, 1, -1, 0, 1, 1);
    const __m256i t1 = _mm256_setr_epi16(-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m256i m15 = _mm256_set1_epi16(15);
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        const std::int8_t* qb = q + b * bs;
        for (int s = 0; s < s_bytes; ++s) {
            int v[4];
            for (int i = 0; i < 4; ++i) v[i] = 4 * s + i < bs ? qb[4 * s + i] : 0;
            const __m256i va = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(static_cast<short>(v[0])), t0),
                                                _mm256_sign_epi16(_mm256_set1_epi16(static_cast<short>(v[1])), t1));
            const __m256i vb = _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(static_cast<short>(v[2])), t0),
                                                _mm256_sign_epi16(_mm256_set1_epi16(static_cast<short>(v[3])), t1));
            // packs interleaves the halves: quadwords (a0-7, b0-7, a8-15, b8-15) -> (a, b).
            const __m256i l = _mm256_permute4x64_epi64(
                _mm256_packs_epi16(_mm256_and_si256(va, m15), _mm256_and_si256(vb, m15)), 0xD8);
            const __m256i h = _mm256_permute4x64_epi64(
                _mm256_packs_epi16(_mm256_srai_epi16(va, 4), _mm256_srai_epi16(vb, 4)), 0xD8);
            std::uint8_t* rec = tables + (static_cast<std::size_t>(b) * static_cast<std::size_t>(s_bytes) +
                                          static_cast<std::size_t>(s)) * 64;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(rec), l);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(rec + 32), h);
        }
    }
}

void lut_gemm_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                   std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    lut_gemm_tiles<TileKernel, false>(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
}

void lut_gemv_avx2(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                   std::int64_t r1, float* y) {
    lut_gemm_avx2(w, k_bases, &tables, &x_scale, 1, r0, r1, y, 0);
}

}  // namespace bitttt::kernels
