// AVX2 lookup-table ternary GEMV, design (b), dense tiles: the table build and the
// GEMV/GEMM entry points (the tile functions: ternary_lut_avx2_tiles.h). Compiled with
// -mavx2 -mfma -mf16c -ffp-contract=off for this file only; called only when
// kernels::avx2_available().
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut.h"
#include "kernels/ternary_lut_avx2_common.h"
#include "kernels/ternary_lut_avx2_tiles.h"
#include "kernels/ternary_lut_tiles.h"

namespace bitttt::kernels {


void lut_prepare_dense_avx2(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const int bs = layout.block_size;
    const int n_records = 2 * static_cast<int>(layout.tile_index_bytes());  // T rounded up to even
    // Entry e of a triple table is d0(e) q0 + d1(e) q1 + d2(e) q2 for the balanced-ternary
    // digits of e (0 for e = 14, 15): int16 lanes e = 0..15.
    const __m256i d0 = _mm256_setr_epi16(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0);
    const __m256i d1 = _mm256_setr_epi16(0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0);
    const __m256i d2 = _mm256_setr_epi16(0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0);
    static_assert(kDenseSplit == 20, "the multiply-high constant below divides by 20");
    const __m256i bias = _mm256_set1_epi16(20 * kDenseSplit), bias_q = _mm256_set1_epi16(20);
    const __m256i inv = _mm256_set1_epi16(3277);  // ceil(65536 / 20): u * 3277 >> 16 = u / 20 for u < 3276
    const __m256i split = _mm256_set1_epi16(kDenseSplit);
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        const std::int8_t* qb = q + b * bs;
        for (int g = 0; g < n_records; ++g) {
            short v[3];
            for (int i = 0; i < 3; ++i) v[i] = static_cast<short>(3 * g + i < bs ? qb[3 * g + i] : 0);
            const __m256i e = _mm256_add_epi16(
                _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(v[0]), d0), _mm256_sign_epi16(_mm256_set1_epi16(v[1]), d1)),
                _mm256_sign_epi16(_mm256_set1_epi16(v[2]), d2));
            // h = floor(e / 20) = floor((e + 400) / 20) - 20, the division by a multiply-high
            // (exact for 0 <= e + 400 <= 781), l = e - 20 h; packs per 128-bit half:
            // (l0-7, h0-7 | l8-15, h8-15) -> (l0-15, h0-15).
            const __m256i h = _mm256_sub_epi16(_mm256_mulhi_epu16(_mm256_add_epi16(e, bias), inv), bias_q);
            const __m256i l = _mm256_sub_epi16(e, _mm256_mullo_epi16(h, split));
            const __m256i lh = _mm256_permute4x64_epi64(_mm256_packs_epi16(l, h), 0xD8);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(tables + (static_cast<std::size_t>(b) * n_records + g) * 32), lh);
        }
    }
}

void lut_gemm_dense_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales,
                         int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    lut_gemm_tiles<TileKernel, true>(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
}

void lut_gemv_dense_avx2(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                         std::int64_t r1, float* y) {
    lut_gemm_dense_avx2(w, k_bases, &tables, &x_scale, 1, r0, r1, y, 0);
}

}  // namespace bitttt::kernels
