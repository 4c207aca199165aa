// The levels path of the NEON lookup-table kernel for prompt batches (ternary_lut.h, "The
// levels path"; ternary_lut_levels_avx2.cpp is the x86 twin): a tile block's K bases decoded
// once per micro-batch into one unsigned byte per weight, u = sum_k 3^(K-1-k) c_k
// (c = t + 1; u <= 80 for K <= 4, so it is also a valid int8), then per input one integer
// dot of u with the int8 activations: level = dot(u, q) - o * sum(q), o = (3^K - 1) / 2.
// Included by ternary_lut_levels_neon.cpp (plain NEON: widening multiplies) and
// ternary_lut_levels_neon_dot.cpp (sdot, -march=armv8.2-a+dotprod), which supply the dot
// (a class with `static void dots(dec, quads, q, int32x4_t (&dot)[8])`). Internal linkage
// throughout (see ternary_lut_neon_common.h).
//
// Decoded block (one tile of 32 rows, one block): for each quad Q of the block's positions
// (4Q .. 4Q+3), 128 bytes, row r's four bytes at 4r .. 4r+3 (vst4q_u8 interleaves the four
// positions' registers into exactly this), so 16-byte register i of a quad holds rows
// 4i .. 4i+3 x 4 positions, and sdot's int32 lane l (four products) is row 4i + l: the sums
// come out in natural row order, no permutation of the scales.
//
// Exactness: the integer identity above (positions >= B carry q = 0; a corrupt 2bit code 3
// decodes as +1 and dense magnitudes 14, 15 as three zero trits, as the reference's tables
// read them), exact int32 sums (sdot: four products |.| <= 80 * 128 per step; plain: int16
// sums of at most G products per lane, G * (3^K - 1) * 128 <= 32767, then pairwise widened),
// and the reference's float steps: acc += (s * tied_multiplier(K)) * float(level) per block in
// order, unfused, y = acc * x_scale.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/ternary_lut.h"
#include "kernels/ternary_lut_neon_common.h"

namespace bitttt::kernels::lut_neon {
namespace {

// u = 3 u + c (Horner over the bases; integer multiply-add on bytes, u <= 80 for K <= 4).
BITTTT_NEON_INLINE uint8x16_t horner(uint8x16_t u, uint8x16_t c) { return vmlaq_u8(c, u, vdupq_n_u8(3)); }

// 2bit tiles: code byte s of each base holds positions 4s .. 4s+3 (C bytes per block); the
// digit's code is min(c, 2), so a corrupt 3 reads as 2 (+1) as in the reference.
inline void decode_2bit(const std::uint8_t* codes, std::size_t plane, int k_bases, int c_bytes, std::uint8_t* dec) {
    const uint8x16_t three = vdupq_n_u8(3), two = vdupq_n_u8(2);
    for (int s = 0; s < c_bytes; ++s) {
        for (int h = 0; h < 2; ++h) {  // rows 0-15, 16-31
            uint8x16x4_t u;
            for (auto& v : u.val) v = vdupq_n_u8(0);
            for (int k = 0; k < k_bases; ++k) {
                const uint8x16_t x = vld1q_u8(codes + k * plane + 32 * static_cast<std::size_t>(s) + 16 * h);
                u.val[0] = horner(u.val[0], vminq_u8(vandq_u8(x, three), two));
                u.val[1] = horner(u.val[1], vminq_u8(vandq_u8(vshrq_n_u8(x, 2), three), two));
                u.val[2] = horner(u.val[2], vminq_u8(vandq_u8(vshrq_n_u8(x, 4), three), two));
                u.val[3] = horner(u.val[3], vminq_u8(vshrq_n_u8(x, 6), two));
            }
            vst4q_u8(dec + 128 * static_cast<std::size_t>(s) + 64 * h, u);
        }
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

// One triple's three positions of one base into u[0..3): the digits' codes of the magnitude
// nibbles, mirrored (2 - c) where the sign mask `neg` is set.
BITTTT_NEON_INLINE void triple(uint8x16_t nib, uint8x16_t neg, const uint8x16_t (&tab)[3], uint8x16_t* u) {
    const uint8x16_t two = vdupq_n_u8(2);
    for (int i = 0; i < 3; ++i) {
        const uint8x16_t c = vqtbl1q_u8(tab[i], nib);
        u[i] = horner(u[i], vbslq_u8(neg, vsubq_u8(two, c), c));
    }
}

// Dense tiles: index byte j holds triples 2j (low nibble) and 2j + 1 (high), positions
// 6j .. 6j+5; sign byte j / 4 (after the I index bytes) bits (2j) % 8 and (2j + 1) % 8. The
// positions go through `cols` (32 bytes each; those past 6 I up to the quads' end zero),
// then into quads.
inline void decode_dense(const std::uint8_t* codes, std::size_t plane, int k_bases, int i_bytes, int quads,
                         std::uint8_t* cols, std::uint8_t* dec) {
    uint8x16_t tab[3];
    for (int i = 0; i < 3; ++i) tab[i] = vld1q_u8(kDigitCodes.c[i]);
    const uint8x16_t m15 = vdupq_n_u8(15);
    const std::size_t signs = 32 * static_cast<std::size_t>(i_bytes);
    for (int j = 0; j < i_bytes; ++j) {
        const uint8x16_t bit_a = vdupq_n_u8(static_cast<std::uint8_t>(1u << (2 * j % 8)));
        const uint8x16_t bit_b = vdupq_n_u8(static_cast<std::uint8_t>(2u << (2 * j % 8)));
        for (int h = 0; h < 2; ++h) {
            uint8x16_t u[6];
            for (auto& v : u) v = vdupq_n_u8(0);
            for (int k = 0; k < k_bases; ++k) {
                const std::uint8_t* c = codes + k * plane + 16 * h;
                const uint8x16_t x = vld1q_u8(c + 32 * static_cast<std::size_t>(j));
                const uint8x16_t sg = vld1q_u8(c + signs + 32 * static_cast<std::size_t>(j / 4));
                triple(vandq_u8(x, m15), vtstq_u8(sg, bit_a), tab, u);
                triple(vshrq_n_u8(x, 4), vtstq_u8(sg, bit_b), tab, u + 3);
            }
            for (int i = 0; i < 6; ++i) vst1q_u8(cols + 32 * static_cast<std::size_t>(6 * j + i) + 16 * h, u[i]);
        }
    }
    for (int p = 6 * i_bytes; p < 4 * quads; ++p) {
        vst1q_u8(cols + 32 * static_cast<std::size_t>(p), vdupq_n_u8(0));
        vst1q_u8(cols + 32 * static_cast<std::size_t>(p) + 16, vdupq_n_u8(0));
    }
    for (int qd = 0; qd < quads; ++qd) {
        for (int h = 0; h < 2; ++h) {
            uint8x16x4_t u;
            for (int p = 0; p < 4; ++p) u.val[p] = vld1q_u8(cols + 32 * static_cast<std::size_t>(4 * qd + p) + 16 * h);
            vst4q_u8(dec + 128 * static_cast<std::size_t>(qd) + 64 * h, u);
        }
    }
}

struct Scratch {
    std::vector<std::uint8_t> dec;   // one decoded block: quads x 128 bytes
    std::vector<std::uint8_t> cols;  // dense: the block's positions, 32 bytes each
    std::vector<float> acc;          // [m][32] row sums of the tile
};

// The levels GEMM (lut_gemm's contract, inputs in the levels form) with the dot of `Dots`.
template <class Dots, bool L, bool D>
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
    const float32x4_t mult = vdupq_n_f32(tied_multiplier(k_bases));
    thread_local Scratch scratch;
    scratch.dec.resize(128 * static_cast<std::size_t>(quads));
    if (D) scratch.cols.resize(128 * static_cast<std::size_t>(quads));
    scratch.acc.resize(static_cast<std::size_t>(m) * kLutTileRows);
    std::uint8_t* dec = scratch.dec.data();
    for (std::int64_t tile = r0 / kLutTileRows; tile * kLutTileRows < r1; ++tile) {
        alignas(16) float sup[L ? kLutTileRows : 1];
        if constexpr (L) supers_to_f32(w.supers(0, tile), sup);
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
            float32x4_t sc[8];  // s * tied_multiplier(K), rows 4i .. 4i+3
            for (int i = 0; i < 8; ++i) sc[i] = vmulq_f32(tile_scales<L>(tb.scales, sup, 0, i), mult);
            for (int j = 0; j < m; ++j) {
                const std::uint8_t* q = in[j] + static_cast<std::size_t>(b) * rec;
                int32x4_t dot[8];
                Dots::dots(dec, quads, q, dot);
                std::int32_t qsum;
                std::memcpy(&qsum, q + rec - 4, 4);
                const int32x4_t corr = vdupq_n_s32(off * qsum);
                float* acc = scratch.acc.data() + static_cast<std::size_t>(j) * kLutTileRows;
                for (int i = 0; i < 8; ++i) {
                    const float32x4_t lv = vcvtq_f32_s32(vsubq_s32(dot[i], corr));
                    vst1q_f32(acc + 4 * i, vaddq_f32(vld1q_f32(acc + 4 * i), vmulq_f32(sc[i], lv)));
                }
            }
        }
        const std::int64_t lo = std::max(r0, tile * kLutTileRows);
        const std::int64_t hi = std::min(r1, (tile + 1) * kLutTileRows);
        for (int j = 0; j < m; ++j) {
            const float* acc = scratch.acc.data() + static_cast<std::size_t>(j) * kLutTileRows;
            float* yj = y + j * ldy;
            for (std::int64_t r = lo; r < hi; ++r) yj[r - r0] = acc[r - tile * kLutTileRows] * x_scales[j];
        }
    }
}

using LevelsFn = void (*)(const LutWeights&, int, const std::uint8_t* const*, const float*, int, std::int64_t,
                          std::int64_t, float*, std::int64_t);

template <class Dots>
LevelsFn levels_fn_for(const TernaryLayout& l) {
    const bool dense = l.packing == Packing::Dense;
    const bool two_level = l.two_level();
    return dense ? (two_level ? &levels_gemm<Dots, true, true> : &levels_gemm<Dots, false, true>)
                 : (two_level ? &levels_gemm<Dots, true, false> : &levels_gemm<Dots, false, false>);
}

}  // namespace
}  // namespace bitttt::kernels::lut_neon
