// Helpers shared by the AVX2 lookup-table kernels (ternary_lut_avx2_tiles.h, the per-base
// table lookups; ternary_lut_levels_avx2.cpp, the combined levels of a prompt batch).
// Include only from files compiled with -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut.h"

#define BITTTT_INLINE [[gnu::always_inline]] inline

namespace bitttt::kernels::lut_avx2 {

constexpr std::size_t kPrefetchBytes = 4096;  // 2048 .. 16384 measured within noise of each other

inline __m256i bcast(const std::uint8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// dot[i] (int32, rows 8i..8i+7) += the int16 sums a0 (rows 0-7 | 16-23, unpacklo) and a1
// (rows 8-15 | 24-31, unpackhi).
inline void widen(__m256i a0, __m256i a1, __m256i (&dot)[4]) {
    dot[0] = _mm256_add_epi32(dot[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a0)));
    dot[1] = _mm256_add_epi32(dot[1], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a1)));
    dot[2] = _mm256_add_epi32(dot[2], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a0, 1)));
    dot[3] = _mm256_add_epi32(dot[3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a1, 1)));
}

// The exact scales of slot m of rows 8i..8i+7 of a tile block, whose slot-m scales are at
// `sc`: f16 (L = false) or, for two-level scales, sup[32 m + 8i ..] * float(u) (one
// multiply, exact: the reference's block_scale). `sup` = the tile's super-scales as floats.
template <bool L>
inline __m256 tile_scales(const std::uint8_t* sc, const float* sup, int m, int i) {
    if constexpr (L) {
        const __m128i u = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 8 * i));
        return _mm256_mul_ps(_mm256_loadu_ps(sup + kLutTileRows * m + 8 * i),
                             _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u)));
    } else {
        (void)sup;
        (void)m;
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 16 * i)));
    }
}

// Where one tile block's bytes are: base 0's codes, the distance to the next base's (a
// plane), slot 0's scales and the distance to the next slot's.
struct TileBlock {
    const std::uint8_t* codes;
    std::size_t plane;
    const std::uint8_t* scales;
    std::size_t scale_plane;
};

// Software prefetch of `bytes` bytes `distance` past p (prefetch_at), or at least
// kPrefetchBytes ahead of p in its stream (prefetch_ahead) (measured,
// weights from DRAM: 1.6-2x faster at 4096 x 4096; the hardware prefetchers alone leave
// the stream latency-bound), into L2 (hint T1): end to end 1.15x the generation speed of
// prefetching into L1 (T0) at N = 1 and 3 (docs/BENCHMARKS.md, "Where a token's time
// goes"). Integer address arithmetic: prefetching past the end of the buffer is harmless
// (never faults).
inline void prefetch_at(const std::uint8_t* p, std::size_t distance, std::size_t bytes) {
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(p) + distance;
    for (std::size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(at + o), _MM_HINT_T1);
}

// kPrefetchBytes rounded up to whole records of `bytes`.
inline std::size_t prefetch_distance(std::size_t bytes) { return (kPrefetchBytes + bytes - 1) / bytes * bytes; }

inline void prefetch_ahead(const std::uint8_t* p, std::size_t bytes) { prefetch_at(p, prefetch_distance(bytes), bytes); }

}  // namespace bitttt::kernels::lut_avx2
