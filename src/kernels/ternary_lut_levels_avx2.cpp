// The levels path of the lookup-table kernel for prompt batches (ternary_lut.h, "The
// levels path"): a tile block's K bases decoded once into one unsigned byte per weight,
// u = sum_k 3^(K-1-k) c_k, then one maddubs GEMM over the micro-batch. Compiled with
// -mavx2 -mfma -mf16c -ffp-contract=off; called only when kernels::avx2_available().
//
// Decoded block (one tile of 32 rows, one block): for each quad Q of the block's positions
// (4Q .. 4Q+3), 128 bytes in four registers R0..R3, each holding 8 rows x the quad's 4
// bytes (a row's bytes side by side): R0 rows 0-3 | 16-19, R1 rows 4-7 | 20-23, R2 rows
// 8-11 | 24-27, R3 rows 12-15 | 28-31 (the halves of unpack instructions). One maddubs of
// R_i with the input's four bytes (q_4Q .. q_4Q+3) broadcast gives, per row, two int16
// sums of two products each, |.| <= 2 * 80 * 128 for K <= 4; G quads are summed in int16
// (G * 2 * (3^K - 1) * 128 <= 32767), then one madd with ones adds each row's two int16
// lanes into its int32 lane. The int32 lanes stay in that row order (the scales are
// permuted to match, once per block and tile) until the tile's results are written.
//
// Cost per input and 32 rows x 4 positions: one broadcast, four maddubs, four adds, plus
// (four madd, four adds) every G quads, for any K: the per-base kernel spends about 13 ops
// per 32 rows x 4 trits and base. The decode (about 5 ops per 32 weights and base) is paid
// once per micro-batch.
//
// Exactness: dot(u, q) - o * sum(q) = sum_k 3^(K-1-k) dot_k with o = (3^K - 1) / 2 (integer
// identities; positions >= B carry q = 0), and the float steps are the reference's:
// acc += (s * tied_multiplier(K)) * float(level) per block in order, y = acc * x_scale.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/ternary_lut.h"
#include "kernels/ternary_lut_avx2_common.h"

namespace bitttt::kernels {

namespace {

using namespace lut_avx2;

// Quad Q of a decoded block from the 32 rows' bytes of positions 4Q .. 4Q+3.
BITTTT_INLINE void store_quad(std::uint8_t* dec, int quad, __m256i u0, __m256i u1, __m256i u2, __m256i u3) {
    const __m256i lo01 = _mm256_unpacklo_epi8(u0, u1), hi01 = _mm256_unpackhi_epi8(u0, u1);  // rows 0-7 | 16-23, 8-15 | 24-31
    const __m256i lo23 = _mm256_unpacklo_epi8(u2, u3), hi23 = _mm256_unpackhi_epi8(u2, u3);
    __m256i* o = reinterpret_cast<__m256i*>(dec + 128 * static_cast<std::size_t>(quad));
    _mm256_storeu_si256(o, _mm256_unpacklo_epi16(lo01, lo23));
    _mm256_storeu_si256(o + 1, _mm256_unpackhi_epi16(lo01, lo23));
    _mm256_storeu_si256(o + 2, _mm256_unpacklo_epi16(hi01, hi23));
    _mm256_storeu_si256(o + 3, _mm256_unpackhi_epi16(hi01, hi23));
}

// The row of int32 lane l of register i of a tile's sums (the decoded block's row order).
constexpr int lane_row(int i, int l) { return 4 * i + (l & 3) + (l >= 4 ? 16 : 0); }

// u = 3 u + c (Horner over the bases; u <= 80 for K <= 4).
BITTTT_INLINE __m256i horner(__m256i u, __m256i c) {
    return _mm256_add_epi8(_mm256_add_epi8(u, _mm256_add_epi8(u, u)), c);
}

// The code of digit P of a 2bit code byte register, a corrupt code 3 read as 2 (+1), as
// the reference does.
template <int P>
BITTTT_INLINE __m256i code_2bit(__m256i x) {
    const __m256i three = _mm256_set1_epi8(3), two = _mm256_set1_epi8(2);
    const __m256i s = P == 0 ? x : _mm256_srli_epi16(x, 2 * P);
    return _mm256_min_epu8(_mm256_and_si256(s, three), two);
}

// 2bit tiles: code byte s of each base holds positions 4s .. 4s+3 (C bytes per block).
void decode_2bit(const std::uint8_t* codes, std::size_t plane, int k_bases, int c_bytes, std::uint8_t* dec) {
    for (int s = 0; s < c_bytes; ++s) {
        __m256i u0 = _mm256_setzero_si256(), u1 = u0, u2 = u0, u3 = u0;
        for (int k = 0; k < k_bases; ++k) {
            const __m256i x = _mm256_loadu_si256(
                reinterpret_cast<const __m256i*>(codes + k * plane + 32 * static_cast<std::size_t>(s)));
            u0 = horner(u0, code_2bit<0>(x));
            u1 = horner(u1, code_2bit<1>(x));
            u2 = horner(u2, code_2bit<2>(x));
            u3 = horner(u3, code_2bit<3>(x));
        }
        store_quad(dec, s, u0, u1, u2, u3);
    }
}

// The codes c = t + 1 of digit I (t0, t1, t2 of e = 9 t0 + 3 t1 + t2) of every magnitude e
// of a dense index nibble; e = 14, 15 (never written; the reference's tables hold 0 there)
// decode as t = 0.
struct DigitCodes {
    std::uint8_t c[3][16];
    constexpr DigitCodes() : c() {
        for (int e = 0; e < 16; ++e) {
            int v = e < 14 ? e : 0;
            for (int i = 2; i >= 0; --i) {
                int d = v % 3;
                if (d == 2) d = -1;
                c[i][e] = static_cast<std::uint8_t>(d + 1);
                v = (v - d) / 3;
            }
        }
    }
};
constexpr DigitCodes kDigitCodes;

// One triple's three positions of one base into u[0..3): the digits' codes of the
// magnitude nibbles, mirrored (2 - c) where the sign mask `neg` is set.
BITTTT_INLINE void triple(__m256i nib, __m256i neg, const __m256i (&tab)[3], __m256i* u) {
    const __m256i two = _mm256_set1_epi8(2);
    for (int i = 0; i < 3; ++i) {
        const __m256i c = _mm256_shuffle_epi8(tab[i], nib);
        u[i] = horner(u[i], _mm256_blendv_epi8(c, _mm256_sub_epi8(two, c), neg));
    }
}

// Dense tiles: index byte j holds triples 2j (low nibble) and 2j + 1 (high), positions
// 6j .. 6j+5; sign byte j / 4 (after the I index bytes) bit (2j) % 8 and (2j + 1) % 8. The
// positions go through `cols` (32 bytes each; those past 6 I up to the quads' end zero),
// then into quads.
void decode_dense(const std::uint8_t* codes, std::size_t plane, int k_bases, int i_bytes, int quads,
                  std::uint8_t* cols, std::uint8_t* dec) {
    __m256i tab[3];
    for (int i = 0; i < 3; ++i) tab[i] = bcast(kDigitCodes.c[i]);
    const __m256i m15 = _mm256_set1_epi8(15);
    const std::size_t signs = 32 * static_cast<std::size_t>(i_bytes);
    __m256i* col = reinterpret_cast<__m256i*>(cols);
    for (int j = 0; j < i_bytes; ++j) {
        const __m256i bit_a = _mm256_set1_epi8(static_cast<char>(1 << (2 * j % 8)));
        const __m256i bit_b = _mm256_set1_epi8(static_cast<char>(1 << ((2 * j + 1) % 8)));
        __m256i u[6];
        for (auto& v : u) v = _mm256_setzero_si256();
        for (int k = 0; k < k_bases; ++k) {
            const std::uint8_t* c = codes + k * plane;
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32 * static_cast<std::size_t>(j)));
            const __m256i sg =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + signs + 32 * static_cast<std::size_t>(j / 4)));
            triple(_mm256_and_si256(x, m15), _mm256_cmpeq_epi8(_mm256_and_si256(sg, bit_a), bit_a), tab, u);
            triple(_mm256_and_si256(_mm256_srli_epi16(x, 4), m15), _mm256_cmpeq_epi8(_mm256_and_si256(sg, bit_b), bit_b),
                   tab, u + 3);
        }
        for (int i = 0; i < 6; ++i) _mm256_storeu_si256(col + 6 * j + i, u[i]);
    }
    for (int p = 6 * i_bytes; p < 4 * quads; ++p) _mm256_storeu_si256(col + p, _mm256_setzero_si256());
    for (int qd = 0; qd < quads; ++qd) {
        store_quad(dec, qd, _mm256_loadu_si256(col + 4 * qd), _mm256_loadu_si256(col + 4 * qd + 1),
                   _mm256_loadu_si256(col + 4 * qd + 2), _mm256_loadu_si256(col + 4 * qd + 3));
    }
}

// dot[i] (the rows of register i) = sum over the block's quads of u . q, G quads per
// int16 sum.
template <int G>
BITTTT_INLINE void level_dots(const std::uint8_t* dec, int quads, const std::uint8_t* q, __m256i (&dot)[4]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (auto& d : dot) d = _mm256_setzero_si256();
    for (int q0 = 0; q0 < quads; q0 += G) {
        const int q1 = std::min(quads, q0 + G);
        __m256i a[4];
        for (auto& v : a) v = _mm256_setzero_si256();
        for (int qd = q0; qd < q1; ++qd) {
            std::int32_t qq;
            std::memcpy(&qq, q + 4 * qd, 4);
            const __m256i qb = _mm256_set1_epi32(qq);
            const __m256i* d = reinterpret_cast<const __m256i*>(dec + 128 * static_cast<std::size_t>(qd));
            for (int i = 0; i < 4; ++i) a[i] = _mm256_add_epi16(a[i], _mm256_maddubs_epi16(_mm256_loadu_si256(d + i), qb));
        }
        for (int i = 0; i < 4; ++i) dot[i] = _mm256_add_epi32(dot[i], _mm256_madd_epi16(a[i], ones));
    }
}

struct Scratch {
    std::vector<std::uint8_t> dec;   // one decoded block: quads x 128 bytes
    std::vector<std::uint8_t> cols;  // dense: the block's positions, 32 bytes each
    std::vector<float> acc;         // [m][32] row sums of the tile
};

template <int G, bool L, bool D>
void levels_gemm(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales, int m,
                 std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    const TernaryLayout& l = w.layout;
    r1 = std::min(r1, l.rows);
    const std::int64_t nb = l.blocks_per_row();
    const int quads = lut_levels_positions(l) / 4;
    const std::size_t rec = lut_levels_record_bytes(l);
    std::int32_t off = 0;  // (3^K - 1) / 2
    for (int k = 0; k < k_bases; ++k) off = 3 * off + 1;
    const int bytes = D ? static_cast<int>(l.tile_index_bytes()) : w.code_bytes();
    const std::size_t code_record = l.tile_code_record();
    const std::size_t scale_record = l.tile_scale_record();
    const __m256 mult = _mm256_set1_ps(tied_multiplier(k_bases));
    thread_local Scratch scratch;
    scratch.dec.resize(128 * static_cast<std::size_t>(quads));
    if (D) scratch.cols.resize(128 * static_cast<std::size_t>(quads));
    scratch.acc.resize(static_cast<std::size_t>(m) * kLutTileRows);
    std::uint8_t* dec = scratch.dec.data();
    for (std::int64_t tile = r0 / kLutTileRows; tile * kLutTileRows < r1; ++tile) {
        alignas(32) float sup[L ? kLutTileRows : 1];
        if constexpr (L) {
            const std::uint8_t* d = w.supers(0, tile);
            for (int i = 0; i < 4; ++i) {
                _mm256_store_ps(sup + 8 * i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + 16 * i))));
            }
        }
        std::fill(scratch.acc.begin(), scratch.acc.end(), 0.0f);
        TileBlock tb{w.codes(0, tile, 0), l.tile_plane_bytes(), w.scales(0, tile, 0), l.tile_scale_plane_bytes()};
        for (std::int64_t b = 0; b < nb; ++b, tb.codes += code_record, tb.scales += scale_record) {
            for (int k = 0; k < k_bases; ++k) prefetch_ahead(tb.codes + k * tb.plane, code_record);
            prefetch_ahead(tb.scales, scale_record);
            if constexpr (D) {
                decode_dense(tb.codes, tb.plane, k_bases, bytes, quads, scratch.cols.data(), dec);
            } else {
                decode_2bit(tb.codes, tb.plane, k_bases, bytes, dec);
            }
            // Rows 8i..8i+7 scaled, then permuted into the registers' row order.
            __m256 s8[4], sc[4];
            for (int i = 0; i < 4; ++i) s8[i] = _mm256_mul_ps(tile_scales<L>(tb.scales, sup, 0, i), mult);
            sc[0] = _mm256_permute2f128_ps(s8[0], s8[2], 0x20);
            sc[1] = _mm256_permute2f128_ps(s8[0], s8[2], 0x31);
            sc[2] = _mm256_permute2f128_ps(s8[1], s8[3], 0x20);
            sc[3] = _mm256_permute2f128_ps(s8[1], s8[3], 0x31);
            for (int j = 0; j < m; ++j) {
                const std::uint8_t* q = in[j] + static_cast<std::size_t>(b) * rec;
                __m256i dot[4];
                level_dots<G>(dec, quads, q, dot);
                std::int32_t qsum;
                std::memcpy(&qsum, q + rec - 4, 4);
                const __m256i corr = _mm256_set1_epi32(off * qsum);
                float* acc = scratch.acc.data() + static_cast<std::size_t>(j) * kLutTileRows;
                for (int i = 0; i < 4; ++i) {
                    const __m256 lv = _mm256_cvtepi32_ps(_mm256_sub_epi32(dot[i], corr));
                    _mm256_storeu_ps(acc + 8 * i, _mm256_add_ps(_mm256_loadu_ps(acc + 8 * i), _mm256_mul_ps(sc[i], lv)));
                }
            }
        }
        const std::int64_t lo = std::max(r0, tile * kLutTileRows);
        const std::int64_t hi = std::min(r1, (tile + 1) * kLutTileRows);
        for (int j = 0; j < m; ++j) {
            const float* acc = scratch.acc.data() + static_cast<std::size_t>(j) * kLutTileRows;
            float* yj = y + j * ldy;
            float out[kLutTileRows];
            for (int i = 0; i < 4; ++i) {
                for (int ln = 0; ln < 8; ++ln) out[lane_row(i, ln)] = acc[8 * i + ln] * x_scales[j];
            }
            for (std::int64_t r = lo; r < hi; ++r) yj[r - r0] = out[r - tile * kLutTileRows];
        }
    }
}

using LevelsFn = void (*)(const LutWeights&, int, const std::uint8_t* const*, const float*, int, std::int64_t,
                          std::int64_t, float*, std::int64_t);

// G: quads summed in int16, the most with G * 2 * (3^K - 1) * 128 <= 32767.
template <bool L, bool D>
LevelsFn levels_fn(int k_bases) {
    switch (k_bases) {
        case 1: return &levels_gemm<63, L, D>;
        case 2: return &levels_gemm<15, L, D>;
        case 3: return &levels_gemm<4, L, D>;
        default: return &levels_gemm<1, L, D>;
    }
}

}  // namespace

void lut_gemm_levels_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales,
                          int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    const bool dense = w.layout.packing == Packing::Dense;
    const bool two_level = w.layout.two_level();
    const LevelsFn run = dense ? (two_level ? levels_fn<true, true>(k_bases) : levels_fn<false, true>(k_bases))
                               : (two_level ? levels_fn<true, false>(k_bases) : levels_fn<false, false>(k_bases));
    run(w, k_bases, in, x_scales, m, r0, r1, y, ldy);
}

}  // namespace bitttt::kernels
