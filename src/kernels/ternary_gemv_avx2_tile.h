// Shared parts of the maddubs AVX2 ternary kernel (ternary_gemv_avx2.cpp: one input at a
// time; ternary_gemv_avx2_batch.cpp: several inputs per pass over the weights). Include
// only from files compiled with -mavx2 -mf16c (the inline helpers use those instructions).
// Layout, exactness and lane order are described at the top of ternary_gemv_avx2.cpp.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ternary_gemv.h"

namespace bitttt::kernels::maddubs {

constexpr int kChunk = 16;  // group bytes per 128-bit half
// int16 accumulation per lane: 2bit <= 4 digits * 508 per chunk, dense <= 5 * 254; after
// 12 chunks at most 24384 < 32767, then widened to int32.
constexpr int kMaxChunksInt16 = 12;

using Slice = Slice16;

struct Ctx {
    std::int64_t nblocks;
    int n_scales;  // scale slots per block: N (free) or 1 (tied)
    int k_bases;   // K <= N used
    bool tied;     // tied scales: one per block, bases combined in int32 first
    float tied_mult;  // tied_multiplier(K)
    std::int32_t tied_sum;  // sum_k 3^(K-1-k) = (3^K - 1) / 2: the weight of the 2bit block sums of q
    int g;         // group bytes
    int chunks;    // ceil(G / 16)
    int digits;    // 4 (2bit) or 5 (dense)
    std::size_t block_bytes;
    std::size_t row_header;  // bytes in front of a row's first block (two-level super-scales)
    const Slice* q;
    const std::int32_t* sums;
};

constexpr std::size_t kPrefetchBytes = 192;

inline void prefetch(const std::uint8_t* base, std::size_t off) {
    // Address arithmetic on integers: the address may lie past the end of the tensor.
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<std::uintptr_t>(base) + off), _MM_HINT_T0);
}

// Software prefetch of the block a few cache lines ahead in each of the tile's rows: eight
// interleaved streams of small blocks are more than the hardware prefetchers follow well
// (measured: +40-70% at one base when the weights come from DRAM). Prefetching past the
// end of the tensor is harmless (never faults).
template <int NP>
inline void prefetch_block(const std::uint8_t* const* lo, const std::uint8_t* const* hi, std::size_t boff,
                           std::size_t block_bytes) {
    for (std::size_t o = boff + kPrefetchBytes; o < boff + kPrefetchBytes + block_bytes; o += 64) {
        for (int p = 0; p < NP; ++p) {
            prefetch(lo[p], o);
            prefetch(hi[p], o);
        }
    }
}

inline std::uint16_t load_u16(const std::uint8_t* p) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);  // little-endian host (x86)
    return v;
}

inline __m256i load_pair(const std::uint8_t* lo, const std::uint8_t* hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}

inline __m256i qload(const Slice* s) { return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(s))); }

// Adds the int16 pair sums into the int32 accumulators and clears them (before int16
// could overflow: see kMaxChunksInt16).
template <int NP>
inline void widen(__m256i (&a16)[NP], __m256i (&a32)[4]) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int p = 0; p < NP; ++p) {
        a32[p] = _mm256_add_epi32(a32[p], _mm256_madd_epi16(a16[p], ones16));
        a16[p] = _mm256_setzero_si256();
    }
}

// The four pairs' int32 accumulators reduced to the eight rows' sums in lane order
// [p0.lo p1.lo p2.lo p3.lo | p0.hi p1.hi p2.hi p3.hi].
inline __m256i reduce_pairs(const __m256i (&a32)[4]) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(a32[0], a32[1]), _mm256_hadd_epi32(a32[2], a32[3]));
}

// The eight f16 scales at offset `off` of the tile's rows, in lane order (lane p: lo[p],
// lane 4 + p: hi[p]; lanes of absent pairs 0).
template <int NP>
inline __m128i load_scales(const std::uint8_t* const* lo, const std::uint8_t* const* hi, std::size_t off) {
    __m128i s = _mm_cvtsi32_si128(load_u16(lo[0] + off));
    if constexpr (NP > 1) s = _mm_insert_epi16(s, load_u16(lo[1] + off), 1);
    if constexpr (NP > 2) s = _mm_insert_epi16(s, load_u16(lo[2] + off), 2);
    if constexpr (NP > 3) s = _mm_insert_epi16(s, load_u16(lo[3] + off), 3);
    s = _mm_insert_epi16(s, load_u16(hi[0] + off), 4);
    if constexpr (NP > 1) s = _mm_insert_epi16(s, load_u16(hi[1] + off), 5);
    if constexpr (NP > 2) s = _mm_insert_epi16(s, load_u16(hi[2] + off), 6);
    if constexpr (NP > 3) s = _mm_insert_epi16(s, load_u16(hi[3] + off), 7);
    return s;
}

// The eight u8 sub-scales at offset `off` of the tile's rows, widened to int32 in lane order.
template <int NP>
inline __m256i load_subs(const std::uint8_t* const* lo, const std::uint8_t* const* hi, std::size_t off) {
    __m128i s = _mm_cvtsi32_si128(lo[0][off]);
    if constexpr (NP > 1) s = _mm_insert_epi8(s, lo[1][off], 1);
    if constexpr (NP > 2) s = _mm_insert_epi8(s, lo[2][off], 2);
    if constexpr (NP > 3) s = _mm_insert_epi8(s, lo[3][off], 3);
    s = _mm_insert_epi8(s, hi[0][off], 4);
    if constexpr (NP > 1) s = _mm_insert_epi8(s, hi[1][off], 5);
    if constexpr (NP > 2) s = _mm_insert_epi8(s, hi[2][off], 6);
    if constexpr (NP > 3) s = _mm_insert_epi8(s, hi[3][off], 7);
    return _mm256_cvtepu8_epi32(s);
}

// Where a tile's scales are: L = two-level (a compile-time choice). Holds the rows'
// super-scales, converted once per tile call.
template <int NP, bool L>
struct TileScales {
    static constexpr std::size_t kSlotBytes = L ? 1 : 2;  // bytes per scale slot in a block
    __m256 super[L ? 8 : 1];                              // two-level: slot m's d of the eight rows

    TileScales(const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi) {
        if constexpr (L) {
            const int slots = cx.tied ? 1 : cx.k_bases;  // only the slots used (K <= 8)
            for (int m = 0; m < slots; ++m) {
                super[m] = _mm256_cvtph_ps(load_scales<NP>(lo, hi, 2 * static_cast<std::size_t>(m)));
            }
        } else {
            (void)cx, (void)lo, (void)hi;
        }
    }
    // Offset of block b in a row, and of its group 0 within the block.
    static std::size_t block(const Ctx& cx, std::int64_t b) {
        return (L ? cx.row_header : 0) + static_cast<std::size_t>(b) * cx.block_bytes;
    }
    static std::size_t groups(const Ctx& cx) { return kSlotBytes * static_cast<std::size_t>(cx.n_scales); }
    // The eight rows' exact scales of slot m of the block at boff: f16(s), or d * float(u)
    // (one multiply, exact: the reference's block_scale).
    __m256 at(const std::uint8_t* const* lo, const std::uint8_t* const* hi, std::size_t boff, int m) const {
        if constexpr (L) {
            return _mm256_mul_ps(super[m], _mm256_cvtepi32_ps(load_subs<NP>(lo, hi, boff + static_cast<std::size_t>(m))));
        } else {
            return _mm256_cvtph_ps(load_scales<NP>(lo, hi, boff + 2 * static_cast<std::size_t>(m)));
        }
    }
};

inline int digits_of(Packing p) { return p == Packing::TwoBit ? 4 : 5; }
inline int chunks_of(int g) { return (g + kChunk - 1) / kChunk; }

// Up to eight rows (NP = np pairs lo[p], hi[p]) for m inputs: out[j * 8 + lane] (the batched
// path, ternary_gemv_avx2_batch.cpp). The instance for a packing, tied scales (T) and
// two-level scales (L), chosen once per call.
using TileBatchFn = void (*)(int np, const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi,
                             const TernaryInput* const* in, int m, float* out);
TileBatchFn tile_batch_fn(Packing p, bool tied, bool two_level);

}  // namespace bitttt::kernels::maddubs
