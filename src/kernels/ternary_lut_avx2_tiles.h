// The AVX2 lookup-table ternary GEMV's tile functions, design (b) (see ternary_lut.h for
// the layout and the exactness argument), for both packings. Included only by the files
// compiled with -mavx2 -mfma -mf16c -ffp-contract=off (ternary_lut_avx2.cpp: 2bit tiles,
// ternary_lut_dense_avx2.cpp: dense tiles; each instantiates its own packing, so the two
// compile in parallel), called only when kernels::avx2_available(). Internal linkage (an
// unnamed namespace), as ternary_lut_tiles.h.
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
// converted, the tile's binary16 super-scales converted once per tile), multiplied on its own
// first, exactly as the reference forms the block scale.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut.h"
#include "kernels/ternary_lut_avx2_common.h"

namespace bitttt::kernels {
namespace {  // NOLINT(google-build-namespaces): see above

using namespace lut_avx2;

constexpr int kBytesPerGroup = 4;   // code bytes summed in int8 (8 lookups: l <= 120, h >= -128)
constexpr int kBytesPerInt16 = 64;  // code bytes summed in int16 (<= 16 * 8 * 254 = 32512)

// dot[k][i] (int32, rows 8i..8i+7) = the block sums of the KG code streams c[k] (bases of
// a tile, or of two tiles) over code bytes [0, S), all against the same tables. SC: S when
// known at compile time, else 0.
template <int KG, int SC>
inline void block_dots(const std::uint8_t* const (&c)[KG], const std::uint8_t* tab, int s_rt, __m256i (&dot)[KG][4]) {
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
                        reinterpret_cast<const __m256i*>(c[k] + 32 * static_cast<std::size_t>(t)));
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
        for (int k = 0; k < KG; ++k) widen(a0[k], a1[k], dot[k]);
    }
}

// Dense tiles (ternary_lut.h, "Dense"): the same sums from 3-trit lookups. Per index byte
// j, the low nibbles index triple 2j's tables and the high nibbles triple 2j+1's; each
// lookup is negated where the row's sign bit is set (sign_epi8: negative where bit 7 of the
// mask byte is set, zero where the mask byte is zero). Six lookups (three index bytes) are
// summed in bytes (|l| <= 6 * 19, |h| <= 6 * 20), then one maddubs with the byte pairs
// (1, 20) per 16 rows turns them into int16, as for 2bit. I: index bytes, SC its
// compile-time value or 0; the sign bytes follow the index bytes, one per four.
//
// The masks. Sign byte bit p (p = 0..7) is triple p of its four index bytes. With
// r = sign byte | 1, the byte doubling r << (7 - p) (one byte add per step) has bit p at
// bit 7 and the guard bit 1 at bit 7 - p <= 6, so it is never zero: one add per mask for
// p = 7 .. 1, walking the group's bytes from the last to the first (integer sums do not
// depend on order); p = 0 shifts bit 0 up directly (16-bit shift by 7; the bits it brings
// in from the neighbouring byte land below bit 7, then | 1).
constexpr int kDenseBytesPerFold = 3;    // index bytes summed in int8 (6 lookups)
constexpr int kDenseBytesPerInt16 = 36;  // index bytes summed in int16 (<= 72 * 381 = 27432; a multiple of 3 and 4)


// Per base: the byte sums l8, h8 of the index bytes since the last fold, and the int16 sums.
template <int KG>
struct DenseAcc {
    __m256i l8[KG], h8[KG], a0[KG], a1[KG];

    BITTTT_INLINE void fold() {  // the byte sums into int16 (l + 20 h), then cleared
        const __m256i w = _mm256_set1_epi16(static_cast<short>(1 | kDenseSplit << 8));
        for (int k = 0; k < KG; ++k) {
            a0[k] = _mm256_add_epi16(a0[k], _mm256_maddubs_epi16(w, _mm256_unpacklo_epi8(l8[k], h8[k])));
            a1[k] = _mm256_add_epi16(a1[k], _mm256_maddubs_epi16(w, _mm256_unpackhi_epi8(l8[k], h8[k])));
            l8[k] = h8[k] = _mm256_setzero_si256();
        }
    }
};

// The four 16-byte tables of index byte t (l and h of triples 2t and 2t+1), in both halves.
struct DenseTables {
    __m256i la, ha, lb, hb;
    BITTTT_INLINE DenseTables(const std::uint8_t* tab, int t) {
        const std::uint8_t* rec = tab + 64 * static_cast<std::size_t>(t);
        la = bcast(rec), ha = bcast(rec + 16), lb = bcast(rec + 32), hb = bcast(rec + 48);
    }
};

// Adds index byte t's two lookups (triples 2t, 2t+1, masks ma, mb) of one base to l8, h8.
BITTTT_INLINE void dense_lookups(const std::uint8_t* c, const DenseTables& tb, int t, __m256i ma, __m256i mb,
                                 __m256i& l8, __m256i& h8) {
    const __m256i m15 = _mm256_set1_epi8(15);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * static_cast<std::size_t>(t)));
    const __m256i ia = _mm256_and_si256(x, m15);
    const __m256i ib = _mm256_and_si256(_mm256_srli_epi16(x, 4), m15);
    l8 = _mm256_add_epi8(l8, _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(tb.la, ia), ma),
                                             _mm256_sign_epi8(_mm256_shuffle_epi8(tb.lb, ib), mb)));
    h8 = _mm256_add_epi8(h8, _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(tb.ha, ia), ma),
                                             _mm256_sign_epi8(_mm256_shuffle_epi8(tb.hb, ib), mb)));
}

// Byte J of the NB-byte group at t (sign bytes sg, r = the mask of triple 2J + 1, left as
// that of triple 2J - 1); folds when the group's bytes done so far complete a fold.
template <int J, int NB, int P, int KG>
BITTTT_INLINE void dense_byte(const std::uint8_t* const (&c)[KG], const std::uint8_t* tab, int t,
                              const __m256i (&sg)[KG], __m256i (&r)[KG], DenseAcc<KG>& acc) {
    const __m256i one = _mm256_set1_epi8(1);
    const DenseTables tb(tab, t + J);
    for (int k = 0; k < KG; ++k) {
        const __m256i mb = r[k];
        const __m256i ma = J == 0 ? _mm256_or_si256(_mm256_slli_epi16(sg[k], 7), one) : _mm256_add_epi8(mb, mb);
        if constexpr (J > 0) r[k] = _mm256_add_epi8(ma, ma);
        dense_lookups(c[k], tb, t + J, ma, mb, acc.l8[k], acc.h8[k]);
    }
    if constexpr ((P + NB - J) % kDenseBytesPerFold == 0) acc.fold();  // NB - J bytes of the group done
}

// The NB (1..4) index bytes t .. t+NB-1 of one sign byte's group, bases k < KG, the last
// byte first (the masks' order), into acc; P index bytes are pending in acc's byte sums
// (the fold schedule is known at compile time).
template <int NB, int P, int KG>
BITTTT_INLINE void dense_group(const std::uint8_t* const (&c)[KG], std::size_t signs, const std::uint8_t* tab, int t,
                               DenseAcc<KG>& acc) {
    const __m256i one = _mm256_set1_epi8(1);
    __m256i sg[KG], r[KG];
    for (int k = 0; k < KG; ++k) {
        sg[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c[k] + signs + 8 * static_cast<std::size_t>(t)));
        // r = the mask of triple 2 NB - 1 (the group's last).
        r[k] = _mm256_or_si256(NB == 4 ? sg[k] : _mm256_slli_epi16(sg[k], 8 - 2 * NB), one);
    }
    if constexpr (NB == 4) dense_byte<3, NB, P, KG>(c, tab, t, sg, r, acc);
    if constexpr (NB >= 3) dense_byte<2, NB, P, KG>(c, tab, t, sg, r, acc);
    if constexpr (NB >= 2) dense_byte<1, NB, P, KG>(c, tab, t, sg, r, acc);
    dense_byte<0, NB, P, KG>(c, tab, t, sg, r, acc);
}

// R index bytes from t, P pending: whole groups, then the rest; the last byte sums folded.
template <int R, int P, int KG>
BITTTT_INLINE void dense_bytes(const std::uint8_t* const (&c)[KG], std::size_t signs, const std::uint8_t* tab, int t,
                               DenseAcc<KG>& acc) {
    if constexpr (R == 0) {
        if constexpr (P != 0) acc.fold();
    } else {
        constexpr int NB = R < 4 ? R : 4;
        dense_group<NB, P, KG>(c, signs, tab, t, acc);
        dense_bytes<R - NB, (P + NB) % kDenseBytesPerFold, KG>(c, signs, tab, t + NB, acc);
    }
}

// The R < 12 bytes left after whole runs of 12, R known only at run time.
template <int KG, int R = 0>
BITTTT_INLINE void dense_tail(int r, const std::uint8_t* const (&c)[KG], std::size_t signs, const std::uint8_t* tab,
                              int t, DenseAcc<KG>& acc) {
    if constexpr (R < 12) {
        if (r == R) return dense_bytes<R, 0, KG>(c, signs, tab, t, acc);
        dense_tail<KG, R + 1>(r, c, signs, tab, t, acc);
    }
}

template <int KG, int SC>
inline void block_dots_dense(const std::uint8_t* const (&c)[KG], const std::uint8_t* tab, int s_rt,
                             __m256i (&dot)[KG][4]) {
    const int I = SC ? SC : s_rt;
    const std::size_t signs = 32 * static_cast<std::size_t>(I);
    DenseAcc<KG> acc;
    for (int k = 0; k < KG; ++k) {
        acc.l8[k] = acc.h8[k] = _mm256_setzero_si256();
        for (int i = 0; i < 4; ++i) dot[k][i] = _mm256_setzero_si256();
    }
    for (int j0 = 0; j0 < I; j0 += kDenseBytesPerInt16) {
        const int j1 = std::min(I, j0 + kDenseBytesPerInt16);
        for (int k = 0; k < KG; ++k) acc.a0[k] = acc.a1[k] = _mm256_setzero_si256();
        int t = j0;
        for (; t + 12 <= j1; t += 12) dense_bytes<12, 0, KG>(c, signs, tab, t, acc);
        if constexpr (SC != 0 && SC % 12 != 0 && SC <= kDenseBytesPerInt16) {
            dense_bytes<SC % 12, 0, KG>(c, signs, tab, t, acc);  // one chunk: the rest is known
        } else {
            dense_tail<KG>(j1 - t, c, signs, tab, t, acc);
        }
        for (int k = 0; k < KG; ++k) widen(acc.a0[k], acc.a1[k], dot[k]);
    }
}

// The block sums of either packing (D: dense).
template <int KG, int SC, bool D>
inline void dots(const std::uint8_t* const (&c)[KG], const std::uint8_t* tab, int s_rt, __m256i (&dot)[KG][4]) {
    if constexpr (D) {
        block_dots_dense<KG, SC>(c, tab, s_rt, dot);
    } else {
        block_dots<KG, SC>(c, tab, s_rt, dot);
    }
}

// The code streams of bases k0..k0+KG-1 of a tile block.
template <int KG>
struct BaseStreams {
    const std::uint8_t* c[KG];
    BaseStreams(const TileBlock& tb, int k0) {
        for (int k = 0; k < KG; ++k) c[k] = tb.codes + static_cast<std::size_t>(k0 + k) * tb.plane;
    }
};

// Two-level scales: slots 0..n_slots-1 of a tile's binary16 super-scales as floats
// (exact), sup[32 m + row].
inline void load_supers(const LutWeights& w, std::int64_t tile, int n_slots, float* sup) {
    for (int m = 0; m < n_slots; ++m) {
        const std::uint8_t* d = w.supers(m, tile);
        for (int i = 0; i < 4; ++i) {
            _mm256_storeu_ps(sup + kLutTileRows * m + 8 * i,
                             _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + 16 * i))));
        }
    }
}

// One Horner step of the tied level: 3 * level + dot (exact in int32).
BITTTT_INLINE __m256i horner_step(__m256i level, __m256i dot) {
    return _mm256_add_epi32(_mm256_add_epi32(level, _mm256_add_epi32(level, level)), dot);
}

// acc[i] += scale(k) * float(dot) for bases k0..k0+KG-1 in order (rows 8i..8i+7).
template <int KG, int SC, bool L, bool D>
inline void block_group(const TileBlock& tb, int s_rt, const float* sup, const std::uint8_t* tab, int k0,
                        __m256 (&acc)[4]) {
    __m256i dot[KG][4];
    dots<KG, SC, D>(BaseStreams<KG>(tb, k0).c, tab, s_rt, dot);
    for (int k = 0; k < KG; ++k) {
        const std::uint8_t* sc = tb.scales + static_cast<std::size_t>(k0 + k) * tb.scale_plane;
        for (int i = 0; i < 4; ++i) {
            const __m256 s = tile_scales<L>(sc, sup, k0 + k, i);
            acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(s, _mm256_cvtepi32_ps(dot[k][i])));
        }
    }
}

// Tied scales: level[i] = 3 * level[i] + dot for bases k0..k0+KG-1 in order (Horner, exact
// in int32), so that after the last base level = sum_k 3^(K-1-k) * dot_k.
template <int KG, int SC, bool D>
inline void block_group_tied(const TileBlock& tb, int s_rt, const std::uint8_t* tab, int k0, __m256i (&level)[4]) {
    __m256i dot[KG][4];
    dots<KG, SC, D>(BaseStreams<KG>(tb, k0).c, tab, s_rt, dot);
    for (int k = 0; k < KG; ++k) {
        for (int i = 0; i < 4; ++i) {
            level[i] = horner_step(level[i], dot[k][i]);
        }
    }
}

// T: tied scales, L: two-level scales, D: dense tiles (compile-time choices, so the
// free-scale 16-bit loop has no tied or two-level branches). SC: the code bytes (2bit) or
// index bytes (dense) per row and block when known at compile time, else 0.
template <int SC, bool T, bool L, bool D>
void run_tile(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::int64_t tile, float* out) {
    const TernaryLayout& l = w.layout;
    const std::int64_t nb = l.blocks_per_row();
    // Code bytes (2bit) or index bytes (dense) per row and block: the tables have 64 bytes
    // per such byte and block.
    const int s_rt = D ? static_cast<int>(l.tile_index_bytes()) : w.code_bytes();
    const int n_slots = T ? 1 : k_bases;  // the scale slots read
    // Two-level: the tile's super-scales as floats (exact), the same for every block.
    alignas(32) float sup[L ? 8 * kLutTileRows : 1];
    if constexpr (L) load_supers(w, tile, n_slots, sup);
    constexpr int kGroup = 4;  // bases per group (register pressure; measured: 2 for dense is no faster)
    const std::size_t rec_bytes = static_cast<std::size_t>(s_rt) * 64;
    const std::size_t code_record = l.tile_code_record();
    const std::size_t scale_record = l.tile_scale_record();
    TileBlock tb{w.codes(0, tile, 0), l.tile_plane_bytes(), w.scales(0, tile, 0), l.tile_scale_plane_bytes()};
    const __m256 tied_mult = _mm256_set1_ps(T ? tied_multiplier(k_bases) : 1.0f);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (std::int64_t b = 0; b < nb; ++b, tb.codes += code_record, tb.scales += scale_record) {
        for (int k = 0; k < k_bases; ++k) prefetch_ahead(tb.codes + k * tb.plane, code_record);
        for (int m = 0; m < n_slots; ++m) prefetch_ahead(tb.scales + m * tb.scale_plane, scale_record);
        const std::uint8_t* tab = tables + static_cast<std::size_t>(b) * rec_bytes;
        if constexpr (T) {
            // The bases' integer sums combined first, then one float multiply per row.
            __m256i level[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                                _mm256_setzero_si256()};
            for (int k0 = 0; k0 < k_bases; k0 += kGroup) {
                switch (std::min(kGroup, k_bases - k0)) {
                    case 1: block_group_tied<1, SC, D>(tb, s_rt, tab, k0, level); break;
                    case 2: block_group_tied<2, SC, D>(tb, s_rt, tab, k0, level); break;
                    case 3: block_group_tied<3, SC, D>(tb, s_rt, tab, k0, level); break;
                    default: block_group_tied<4, SC, D>(tb, s_rt, tab, k0, level); break;
                }
            }
            for (int i = 0; k_bases > 0 && i < 4; ++i) {
                const __m256 sc = _mm256_mul_ps(tile_scales<L>(tb.scales, sup, 0, i), tied_mult);
                acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(sc, _mm256_cvtepi32_ps(level[i])));
            }
        } else {
            // Bases in groups of up to 4 (register pressure), in order: the float adds keep
            // the reference's b-then-k order.
            for (int k0 = 0; k0 < k_bases; k0 += kGroup) {
                switch (std::min(kGroup, k_bases - k0)) {
                    case 1: block_group<1, SC, L, D>(tb, s_rt, sup, tab, k0, acc); break;
                    case 2: block_group<2, SC, L, D>(tb, s_rt, sup, tab, k0, acc); break;
                    case 3: block_group<3, SC, L, D>(tb, s_rt, sup, tab, k0, acc); break;
                    default: block_group<4, SC, L, D>(tb, s_rt, sup, tab, k0, acc); break;
                }
            }
        }
    }
    for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + 8 * i, acc[i]);
}

// K = 1 or 2 bases (2 for 2bit tiles only): tiles `tile` and `tile + 1` at once, out[64],
// each table load serving the 2K code streams (one base's codes form one stream over tiles
// and blocks, so the next tile is nb code records further on). Per code byte that is
// 1 + 2 / K loads instead of 1 + 4 / K (docs/BENCHMARKS.md, "Two tiles per table load").
// Dense tiles at K = 2 are left to run_tile: four dense streams' sums and masks do not fit
// the 16 registers (measured no faster). Each tile's rows get run_tile's float operations
// in the same order (free: per base in order; tied: the Horner level, one multiply), so
// the results are bit-identical to run_tile's.
template <int K, int SC, bool T, bool L, bool D>
void run_tile_pair(const LutWeights& w, const std::uint8_t* tables, std::int64_t tile, float* out) {
    static_assert(K == 1 || K == 2);
    const TernaryLayout& l = w.layout;
    const std::int64_t nb = l.blocks_per_row();
    const int s_rt = D ? static_cast<int>(l.tile_index_bytes()) : w.code_bytes();
    constexpr int kSlots = T ? 1 : K;  // the scale slots read
    alignas(32) float sup[2][L ? kSlots * kLutTileRows : 1];  // two-level: [tile][slot][row] super-scales
    if constexpr (L) {
        for (int p = 0; p < 2; ++p) load_supers(w, tile + p, kSlots, sup[p]);
    }
    const std::size_t rec_bytes = static_cast<std::size_t>(s_rt) * 64;
    const std::size_t code_record = l.tile_code_record();
    const std::size_t scale_record = l.tile_scale_record();
    const std::size_t code_stride = static_cast<std::size_t>(nb) * code_record;  // tile -> tile + 1
    const std::size_t scale_stride = static_cast<std::size_t>(nb) * scale_record;
    // Prefetch: the second tile's streams run on into tile + 2 (the next pair's first); the
    // first tile's, once they would run into the second, move on to tile + 3.
    const std::size_t ahead = prefetch_distance(code_record);
    TileBlock tb{w.codes(0, tile, 0), l.tile_plane_bytes(), w.scales(0, tile, 0), l.tile_scale_plane_bytes()};
    const __m256 tied_mult = _mm256_set1_ps(T ? tied_multiplier(K) : 1.0f);
    __m256 acc[2][4];
    for (auto& a : acc)
        for (auto& v : a) v = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < nb; ++b, tb.codes += code_record, tb.scales += scale_record) {
        const std::size_t o = static_cast<std::size_t>(b) * code_record;
        const std::uint8_t* c[2 * K];  // stream p * K + k: tile + p, base k
        for (int p = 0; p < 2; ++p)
            for (int k = 0; k < K; ++k) c[p * K + k] = tb.codes + p * code_stride + k * tb.plane;
        for (int k = 0; k < K; ++k) {
            prefetch_at(c[k], ahead + (o + ahead >= code_stride ? 2 * code_stride : 0), code_record);
            prefetch_ahead(c[K + k], code_record);
        }
        for (int m = 0; m < kSlots; ++m) {
            prefetch_ahead(tb.scales + m * tb.scale_plane, scale_record);
            prefetch_ahead(tb.scales + scale_stride + m * tb.scale_plane, scale_record);
        }
        __m256i dot[2 * K][4];
        dots<2 * K, SC, D>(c, tables + static_cast<std::size_t>(b) * rec_bytes, s_rt, dot);
        for (int p = 0; p < 2; ++p) {
            const std::uint8_t* sc = tb.scales + p * scale_stride;
            if constexpr (T) {
                for (int i = 0; i < 4; ++i) {
                    __m256i level = _mm256_setzero_si256();
                    for (int k = 0; k < K; ++k) level = horner_step(level, dot[p * K + k][i]);
                    const __m256 s = _mm256_mul_ps(tile_scales<L>(sc, sup[p], 0, i), tied_mult);
                    acc[p][i] = _mm256_add_ps(acc[p][i], _mm256_mul_ps(s, _mm256_cvtepi32_ps(level)));
                }
            } else {
                for (int k = 0; k < K; ++k) {
                    for (int i = 0; i < 4; ++i) {
                        const __m256 s = tile_scales<L>(sc + k * tb.scale_plane, sup[p], k, i);
                        acc[p][i] = _mm256_add_ps(acc[p][i], _mm256_mul_ps(s, _mm256_cvtepi32_ps(dot[p * K + k][i])));
                    }
                }
            }
        }
    }
    for (int p = 0; p < 2; ++p)
        for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + kLutTileRows * p + 8 * i, acc[p][i]);
}

// run_tile (and, for one or two bases, run_tile_pair) as the tile loop's Kernel (ternary_lut_tiles.h).
template <int SC, bool T, bool L, bool D>
struct TileKernel {
    static void run(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::int64_t tile, float* out) {
        run_tile<SC, T, L, D>(w, k_bases, tables, tile, out);
    }
    static void run_pair(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::int64_t tile, float* out) {
        if constexpr (!D) {
            if (k_bases == 2) return run_tile_pair<2, SC, T, L, D>(w, tables, tile, out);
        }
        run_tile_pair<1, SC, false, L, D>(w, tables, tile, out);  // K = 1 (choose_pair_fn); tied: the free path
    }
};

}  // namespace
}  // namespace bitttt::kernels
