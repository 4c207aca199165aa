// AVX2 lookup-table ternary GEMV, design (b) (see ternary_lut.h for the layout and the
// exactness argument). Compiled with -mavx2 -mfma -mf16c -ffp-contract=off for this file
// only; called only when kernels::avx2_available().
//
// Per tile of 32 rows, block and code byte s, the four 16-byte tables of s are broadcast to
// both 128-bit halves (loaded once, used by every base of the group), and for each base one
// 32-byte load gives the 32 rows' code bytes: the low nibbles index the (4s, 4s+1) tables,
// the high nibbles the (4s+2, 4s+3) tables. Four pshufb give 32 rows x 2 pairs of (l, h)
// bytes, summed in bytes over 4 code bytes (8 lookups), then interleaved and turned into
// int16 by one maddubs with (1, 16) per 16 rows. Lanes: the low half of an int16 register
// holds rows 0-7 (unpacklo) or 8-15 (unpackhi), the high half rows 16-23 or 24-31.
//
// Per 32-byte code register (32 rows x 4 trits): 3 ops to split the nibbles, 4 shuffles, 4
// byte adds and 1/4 of the widening (2 unpacks, 2 maddubs, 2 adds), about 13 ops; design (a)
// spends about 19 on the same 128 weights (3 unpacking ops and 1 maddubs per digit, adds).
//
// Tied scales: per block the bases' int32 sums are combined as level = 3 * level + dot
// (exact), then acc += (f16(s) * tied_multiplier(K)) * float(level): the reference's order.
// Two-level scales: the eight rows' scale is super * float(u) (u8 sub-scales widened and
// converted, super-scales as floats from LutWeights::row_super), multiplied on its own
// first, exactly as the reference forms the block scale.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ternary_lut.h"

namespace bitttt::kernels {

namespace {

constexpr int kBytesPerGroup = 4;   // code bytes summed in int8 (8 lookups: l <= 120, h >= -128)
constexpr int kBytesPerInt16 = 64;  // code bytes summed in int16 (<= 16 * 8 * 254 = 32512)
constexpr std::size_t kPrefetchBytes = 4096;  // 2048 .. 16384 measured within noise of each other

inline __m256i bcast(const std::uint8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// dot[k][i] (int32, rows 8i..8i+7) += the block sums of bases k0..k0+KG-1 over code bytes
// [0, S). SC: S when known at compile time, else 0.
template <int KG, int SC>
inline void block_dots(const std::uint8_t* codes, std::size_t base_stride, const std::uint8_t* tab, int s_rt,
                       __m256i (&dot)[KG][4]) {
    const int S = SC ? SC : s_rt;
    const __m256i m15 = _mm256_set1_epi8(15);
    const __m256i w = _mm256_set1_epi16(0x1001);  // bytes (1, 16): l + 16 * h
    for (int k = 0; k < KG; ++k)
        for (int i = 0; i < 4; ++i) dot[k][i] = _mm256_setzero_si256();
    for (int s0 = 0; s0 < S; s0 += kBytesPerInt16) {
        const int s1 = std::min(S, s0 + kBytesPerInt16);
        __m256i a0[KG], a1[KG];
        for (int k = 0; k < KG; ++k) a0[k] = a1[k] = _mm256_setzero_si256();
        for (int s = s0; s < s1; s += kBytesPerGroup) {
            const int s2 = std::min(s1, s + kBytesPerGroup);
            __m256i l8[KG], h8[KG];
            for (int k = 0; k < KG; ++k) l8[k] = h8[k] = _mm256_setzero_si256();
            for (int t = s; t < s2; ++t) {
                const std::uint8_t* rec = tab + 64 * static_cast<std::size_t>(t);
                const __m256i la = bcast(rec), lb = bcast(rec + 16), ha = bcast(rec + 32), hb = bcast(rec + 48);
                for (int k = 0; k < KG; ++k) {
                    const __m256i x = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(codes + k * base_stride + 32 * static_cast<std::size_t>(t)));
                    const __m256i ia = _mm256_and_si256(x, m15);
                    const __m256i ib = _mm256_and_si256(_mm256_srli_epi16(x, 4), m15);
                    l8[k] = _mm256_add_epi8(l8[k], _mm256_add_epi8(_mm256_shuffle_epi8(la, ia), _mm256_shuffle_epi8(lb, ib)));
                    h8[k] = _mm256_add_epi8(h8[k], _mm256_add_epi8(_mm256_shuffle_epi8(ha, ia), _mm256_shuffle_epi8(hb, ib)));
                }
            }
            for (int k = 0; k < KG; ++k) {
                a0[k] = _mm256_add_epi16(a0[k], _mm256_maddubs_epi16(w, _mm256_unpacklo_epi8(l8[k], h8[k])));
                a1[k] = _mm256_add_epi16(a1[k], _mm256_maddubs_epi16(w, _mm256_unpackhi_epi8(l8[k], h8[k])));
            }
        }
        for (int k = 0; k < KG; ++k) {
            dot[k][0] = _mm256_add_epi32(dot[k][0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a0[k])));
            dot[k][1] = _mm256_add_epi32(dot[k][1], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a1[k])));
            dot[k][2] = _mm256_add_epi32(dot[k][2], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a0[k], 1)));
            dot[k][3] = _mm256_add_epi32(dot[k][3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a1[k], 1)));
        }
    }
}

// The exact scales of slot m of rows 8i..8i+7 in tile block tb: f16 (L = false) or, for
// two-level scales, sup[32 m + 8i ..] * float(u) (one multiply, exact: the reference's
// block_scale). `sup` = the tile's super-scales (LutWeights::supers).
template <bool L>
inline __m256 tile_scales(const std::uint8_t* tb, const float* sup, int m, int i) {
    const std::size_t at = static_cast<std::size_t>(kLutTileRows * m + 8 * i);
    if constexpr (L) {
        const __m128i u = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(tb + at));
        return _mm256_mul_ps(_mm256_loadu_ps(sup + at), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u)));
    } else {
        (void)sup;
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tb + 2 * at)));
    }
}

// acc[i] += scale(k) * float(dot) for bases k0..k0+KG-1 in order (rows 8i..8i+7).
// `codes` = tb + w.codes_offset().
template <int KG, int SC, bool L>
inline void block_group(const LutWeights& w, const std::uint8_t* tb, const float* sup, const std::uint8_t* codes0,
                        const std::uint8_t* tab, int k0, __m256 (&acc)[4]) {
    const std::size_t s_bytes = static_cast<std::size_t>(w.code_bytes);
    const std::size_t base_stride = s_bytes * kLutTileRows;
    const std::uint8_t* codes = codes0 + k0 * base_stride;
    __m256i dot[KG][4];
    block_dots<KG, SC>(codes, base_stride, tab, w.code_bytes, dot);
    for (int k = 0; k < KG; ++k) {
        for (int i = 0; i < 4; ++i) {
            const __m256 s = tile_scales<L>(tb, sup, k0 + k, i);
            acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(s, _mm256_cvtepi32_ps(dot[k][i])));
        }
    }
}

// Tied scales: level[i] = 3 * level[i] + dot for bases k0..k0+KG-1 in order (Horner, exact
// in int32), so that after the last base level = sum_k 3^(K-1-k) * dot_k.
template <int KG, int SC>
inline void block_group_tied(const LutWeights& w, const std::uint8_t* codes0, const std::uint8_t* tab, int k0,
                             __m256i (&level)[4]) {
    const std::size_t base_stride = static_cast<std::size_t>(w.code_bytes) * kLutTileRows;
    __m256i dot[KG][4];
    block_dots<KG, SC>(codes0 + k0 * base_stride, base_stride, tab, w.code_bytes, dot);
    for (int k = 0; k < KG; ++k) {
        for (int i = 0; i < 4; ++i) {
            level[i] = _mm256_add_epi32(_mm256_add_epi32(level[i], _mm256_add_epi32(level[i], level[i])), dot[k][i]);
        }
    }
}

// T: tied scales, L: two-level scales (compile-time choices, so the free-scale 16-bit loop
// has no tied or two-level branches).
template <int SC, bool T, bool L>
void run_tile(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::int64_t tile, float* out) {
    const std::int64_t nb = w.layout.blocks_per_row();
    const float* sup = L ? w.supers(tile) : nullptr;  // the same for every block of the tile
    const std::size_t rec_bytes = static_cast<std::size_t>(w.code_bytes) * 64;
    const std::size_t codes_off = w.codes_offset();
    const __m256 tied_mult = _mm256_set1_ps(T ? tied_multiplier(k_bases) : 1.0f);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (std::int64_t b = 0; b < nb; ++b) {
        const std::uint8_t* tb = w.tblock(tile, b);
        // Software prefetch of the tile block >= kPrefetchBytes ahead (measured, weights from
        // DRAM: 1.6-2x faster at 4096 x 4096; the hardware prefetchers alone leave the
        // stream latency-bound). Integer address arithmetic: prefetching past the end of the
        // buffer is harmless (never faults).
        const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(tb) +
                                     (kPrefetchBytes + w.tblock_bytes - 1) / w.tblock_bytes * w.tblock_bytes;
        for (std::size_t o = 0; o < w.tblock_bytes; o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(ahead + o), _MM_HINT_T0);
        const std::uint8_t* tab = tables + static_cast<std::size_t>(b) * rec_bytes;
        const std::uint8_t* codes = tb + codes_off;
        if constexpr (T) {
            // The bases' integer sums combined first, then one float multiply per row.
            __m256i level[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                                _mm256_setzero_si256()};
            for (int k0 = 0; k0 < k_bases; k0 += 4) {
                switch (std::min(4, k_bases - k0)) {
                    case 1: block_group_tied<1, SC>(w, codes, tab, k0, level); break;
                    case 2: block_group_tied<2, SC>(w, codes, tab, k0, level); break;
                    case 3: block_group_tied<3, SC>(w, codes, tab, k0, level); break;
                    default: block_group_tied<4, SC>(w, codes, tab, k0, level); break;
                }
            }
            for (int i = 0; k_bases > 0 && i < 4; ++i) {
                const __m256 sc = _mm256_mul_ps(tile_scales<L>(tb, sup, 0, i), tied_mult);
                acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(sc, _mm256_cvtepi32_ps(level[i])));
            }
        } else {
            // Bases in groups of up to 4 (register pressure), in order: the float adds keep
            // the reference's b-then-k order.
            for (int k0 = 0; k0 < k_bases; k0 += 4) {
                switch (std::min(4, k_bases - k0)) {
                    case 1: block_group<1, SC, L>(w, tb, sup, codes, tab, k0, acc); break;
                    case 2: block_group<2, SC, L>(w, tb, sup, codes, tab, k0, acc); break;
                    case 3: block_group<3, SC, L>(w, tb, sup, codes, tab, k0, acc); break;
                    default: block_group<4, SC, L>(w, tb, sup, codes, tab, k0, acc); break;
                }
            }
        }
    }
    for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + 8 * i, acc[i]);
}

using TileFn = void (*)(const LutWeights&, int, const std::uint8_t*, std::int64_t, float*);

// The code-byte count is a compile-time constant for the common blocks (S = 16: B = 64,
// S = 32: B = 128).
template <bool T, bool L>
TileFn tile_fn(int code_bytes) {
    switch (code_bytes) {
        case 16: return &run_tile<16, T, L>;
        case 32: return &run_tile<32, T, L>;
        default: return &run_tile<0, T, L>;
    }
}

}  // namespace

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
    r1 = std::min(r1, w.layout.rows);
    if (r1 <= r0) return;
    // Tied with K = 1 is the free computation (s * 1.0f is exact, and the one scale is
    // where a free tile block's first scales are).
    const bool tied = w.layout.tied() && k_bases > 1;
    const bool two_level = w.layout.two_level();
    const TileFn run = tied ? (two_level ? tile_fn<true, true>(w.code_bytes) : tile_fn<true, false>(w.code_bytes))
                            : (two_level ? tile_fn<false, true>(w.code_bytes) : tile_fn<false, false>(w.code_bytes));
    // Tile outer, input inner: a tile's codes (32 rows, a few tens of KB) stay in cache
    // for all m inputs of a prompt micro-batch.
    for (std::int64_t tile = r0 / kLutTileRows; tile * kLutTileRows < r1; ++tile) {
        const std::int64_t lo = std::max(r0, tile * kLutTileRows);
        const std::int64_t hi = std::min(r1, (tile + 1) * kLutTileRows);
        for (int j = 0; j < m; ++j) {
            alignas(32) float out[kLutTileRows];
            run(w, k_bases, tables[j], tile, out);
            const __m256 xs = _mm256_set1_ps(x_scales[j]);
            for (int i = 0; i < 4; ++i) _mm256_store_ps(out + 8 * i, _mm256_mul_ps(_mm256_load_ps(out + 8 * i), xs));
            float* yj = y + j * ldy;
            for (std::int64_t r = lo; r < hi; ++r) yj[r - r0] = out[r - tile * kLutTileRows];
        }
    }
}

void lut_gemv_avx2(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                   std::int64_t r1, float* y) {
    lut_gemm_avx2(w, k_bases, &tables, &x_scale, 1, r0, r1, y, 0);
}

}  // namespace bitttt::kernels
