// NEON lookup-table ternary GEMV / GEMM, design (b), for aarch64 (see ternary_lut.h for the
// tiles arrangement, the tables and the exactness argument; ternary_lut_avx2_tiles.h is the
// x86 twin). Advanced SIMD is part of Armv8-A: no extra -march flag. Compiled with
// -O3 -ffp-contract=off; the float steps use separate vmulq_f32 / vaddq_f32, never a fused
// multiply-add, so results are bit-identical to lut_gemv_ref / lut_gemv_dense_ref.
//
// 2bit tiles. Per tile of 32 rows, block and code byte s, the four 16-byte tables of s
// (l and h of the pairs (4s, 4s+1) and (4s+2, 4s+3)) are loaded, and one 32-byte load per
// base gives the 32 rows' code bytes in two registers (rows 0-15, 16-31). The low nibble
// (vandq_u8 with 15) indexes the (4s, 4s+1) tables, the high nibble (vshrq_n_u8 by 4, which
// leaves 0..15) the (4s+2, 4s+3) ones; vqtbl1q_u8 is the 16-entry lookup (pshufb's twin;
// indices >= 16 would give 0, the nibbles never are). Four lookups per 16 rows give the
// (l, h) bytes of both pairs.
//
// Exactness (2bit). Byte sums of l (0..15) and h (-16..15) over 4 code bytes (8 lookups) stay
// in 0..120 and -128..120: no wrap. They are then widened into two int16 sums per row, l and
// h apart (uaddw / saddw: four instructions per 16 rows, no interleaving as pshufb + maddubs
// need on x86), and every 64 code bytes combined as l + 16 h (one integer mla by 16, wrapping
// arithmetic) and widened into int32 (saddw). The combination is exact because it is computed
// modulo 2^16 and its true value, a sum of 128 table entries |v| <= 254, is at most 32512 in
// magnitude; the separate l and h sums only need to be right modulo 2^16 as well.
//
// Dense tiles: per index byte j, the low nibbles index triple 2j's tables, the high nibbles
// triple 2j+1's; a lookup t is negated where the row's sign bit is set, with m = vtstq_u8(sign
// byte, bit) (0 or -1 per byte) as (t ^ m) - m. The "- m" is not done per lookup: the sums
// of t ^ m (for l and h) and the sum of m are kept apart and subtracted at the fold, every
// three index bytes (6 lookups): the true folded sums |l| <= 6 * 19, |h| <= 6 * 20 fit int8,
// and byte arithmetic is modulo 256, so the wrapping partial sums give them exactly. Then as
// for 2bit, with l + 20 h every 36 index bytes (|sum| <= 72 * 381 = 27432 < 2^15).
//
// Float work per row and block, the reference's order: free scales, for each base k in turn,
// acc += s_k * float(dot_k); tied, level = 3 * level + dot_k (exact int32), then
// acc += (s * tied_multiplier(K)) * float(level); two-level, s = f32(d) * float(u) first. The
// tile's result is acc * x_scale. Lanes: register i of the int32 sums, the scales and the
// accumulators holds rows 4i .. 4i+3.
//
// The table builds (lut_prepare_neon, lut_prepare_dense_neon) compute the entries in int16
// lanes and write the references' bytes (tested byte for byte).
//
// Cost, counted in the compiled code (aarch64-linux-gnu-objdump of run_tile<16, free, f16,
// 2bit>, GCC 12 -O3, loop bodies times their trip counts): one tile block of 32 rows x 64
// columns and one base takes 566 instructions: 128 tbl, 64 nibble ops, 112 byte adds, 68
// loads of codes and tables, 45 widening (32 uaddw / saddw folds, 13 for l + 16 h into
// int32), 32 for the scales (fcvtl, scvtf, fmul, fadd), the rest loop control, prefetch and
// spills. The AVX2 kernel (its one-base path) takes 595 for the same block: half the
// lookups and adds (32 lanes per pshufb), but more register moves and loop control.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut.h"
#include "kernels/ternary_lut_neon_common.h"
#include "kernels/ternary_lut_tiles.h"

namespace bitttt::kernels {

namespace {

using namespace lut_neon;

constexpr int kBytesPerGroup = 4;         // 2bit: code bytes summed in bytes (8 lookups)
constexpr int kBytesPerInt16 = 64;        // 2bit: code bytes per int16 combination (<= 128 * 254)
constexpr int kDenseBytesPerFold = 3;     // dense: index bytes summed in bytes (6 lookups)
constexpr int kDenseBytesPerInt16 = 36;   // dense: index bytes per int16 combination (<= 72 * 381)

// dot[i] (int32, rows 4i .. 4i+3) += al + split * ah for the int16 sums al, ah of rows
// 8i' .. 8i'+7 (register i' = i / 2).
template <int Split>
BITTTT_NEON_INLINE void widen(const int16x8_t (&al)[4], const int16x8_t (&ah)[4], int32x4_t (&dot)[8]) {
    for (int i = 0; i < 4; ++i) {
        const int16x8_t c = vmlaq_n_s16(al[i], ah[i], Split);
        dot[2 * i] = vaddw_s16(dot[2 * i], vget_low_s16(c));
        dot[2 * i + 1] = vaddw_high_s16(dot[2 * i + 1], c);
    }
}

// al, ah (int16, rows 8i .. 8i+7) += the byte sums l8, h8 (rows 0-15, 16-31), l8 unsigned
// when U (2bit: 0..120), else signed like h8.
template <bool U>
BITTTT_NEON_INLINE void fold(const uint8x16_t (&l8)[2], const uint8x16_t (&h8)[2], int16x8_t (&al)[4],
                             int16x8_t (&ah)[4]) {
    for (int h = 0; h < 2; ++h) {
        if constexpr (U) {
            al[2 * h] = vreinterpretq_s16_u16(vaddw_u8(vreinterpretq_u16_s16(al[2 * h]), vget_low_u8(l8[h])));
            al[2 * h + 1] = vreinterpretq_s16_u16(vaddw_high_u8(vreinterpretq_u16_s16(al[2 * h + 1]), l8[h]));
        } else {
            al[2 * h] = vaddw_s8(al[2 * h], vget_low_s8(vreinterpretq_s8_u8(l8[h])));
            al[2 * h + 1] = vaddw_high_s8(al[2 * h + 1], vreinterpretq_s8_u8(l8[h]));
        }
        ah[2 * h] = vaddw_s8(ah[2 * h], vget_low_s8(vreinterpretq_s8_u8(h8[h])));
        ah[2 * h + 1] = vaddw_high_s8(ah[2 * h + 1], vreinterpretq_s8_u8(h8[h]));
    }
}

// dot[i] (int32, rows 4i .. 4i+3) = one base's block sums over its S code bytes at `codes`
// (code byte t of the 32 rows at codes + 32 t), tables at `tab`. SC: S when known at compile
// time, else 0.
template <int SC>
BITTTT_NEON_INLINE void block_dots(const std::uint8_t* codes, const std::uint8_t* tab, int s_rt, int32x4_t (&dot)[8]) {
    const int S = SC ? SC : s_rt;
    const uint8x16_t m15 = vdupq_n_u8(15);
    for (auto& d : dot) d = vdupq_n_s32(0);
    for (int s0 = 0; s0 < S; s0 += kBytesPerInt16) {
        const int s1 = std::min(S, s0 + kBytesPerInt16);
        int16x8_t al[4], ah[4];
        for (int i = 0; i < 4; ++i) al[i] = ah[i] = vdupq_n_s16(0);
        for (int s = s0; s < s1; s += kBytesPerGroup) {
            const int s2 = std::min(s1, s + kBytesPerGroup);
            uint8x16_t l8[2] = {vdupq_n_u8(0), vdupq_n_u8(0)}, h8[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
            auto code_byte = [&](int t) {
                const std::uint8_t* rec = tab + 64 * static_cast<std::size_t>(t);
                const uint8x16_t la = vld1q_u8(rec), lb = vld1q_u8(rec + 16), ha = vld1q_u8(rec + 32),
                                 hb = vld1q_u8(rec + 48);
                const std::uint8_t* c = codes + 32 * static_cast<std::size_t>(t);
                for (int h = 0; h < 2; ++h) {
                    const uint8x16_t x = vld1q_u8(c + 16 * h);
                    const uint8x16_t ia = vandq_u8(x, m15), ib = vshrq_n_u8(x, 4);
                    l8[h] = vaddq_u8(l8[h], vaddq_u8(vqtbl1q_u8(la, ia), vqtbl1q_u8(lb, ib)));
                    h8[h] = vaddq_u8(h8[h], vaddq_u8(vqtbl1q_u8(ha, ia), vqtbl1q_u8(hb, ib)));
                }
            };
            if (s2 - s == kBytesPerGroup) {  // a whole group: a fixed trip count, unrolled
                for (int t = 0; t < kBytesPerGroup; ++t) code_byte(s + t);
            } else {
                for (int t = s; t < s2; ++t) code_byte(t);
            }
            fold<true>(l8, h8, al, ah);
        }
        widen<16>(al, ah, dot);
    }
}

// Dense: the same sums from 3-trit lookups (see the file header). I index bytes (IC when
// known at compile time, else 0); the sign bytes follow them, one per four index bytes.
template <int IC>
BITTTT_NEON_INLINE void block_dots_dense(const std::uint8_t* codes, const std::uint8_t* tab, int i_rt,
                                         int32x4_t (&dot)[8]) {
    const int I = IC ? IC : i_rt;
    const std::uint8_t* signs = codes + 32 * static_cast<std::size_t>(I);
    const uint8x16_t m15 = vdupq_n_u8(15);
    for (auto& d : dot) d = vdupq_n_s32(0);
    for (int j0 = 0; j0 < I; j0 += kDenseBytesPerInt16) {
        const int j1 = std::min(I, j0 + kDenseBytesPerInt16);
        int16x8_t al[4], ah[4];
        for (int i = 0; i < 4; ++i) al[i] = ah[i] = vdupq_n_s16(0);
        for (int j = j0; j < j1; j += kDenseBytesPerFold) {
            const int j2 = std::min(j1, j + kDenseBytesPerFold);
            uint8x16_t l8[2] = {vdupq_n_u8(0), vdupq_n_u8(0)}, h8[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
            uint8x16_t ms[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};  // sum of the masks: minus the negated lookups
            auto index_byte = [&](int t) {
                const std::uint8_t* rec = tab + 64 * static_cast<std::size_t>(t);
                const uint8x16_t la = vld1q_u8(rec), ha = vld1q_u8(rec + 16), lb = vld1q_u8(rec + 32),
                                 hb = vld1q_u8(rec + 48);
                // Triples 2t and 2t+1: bits (2t) % 8 and (2t+1) % 8 of sign byte t / 4.
                const uint8x16_t bit_a = vdupq_n_u8(static_cast<std::uint8_t>(1u << (2 * t % 8)));
                const uint8x16_t bit_b = vdupq_n_u8(static_cast<std::uint8_t>(2u << (2 * t % 8)));
                const std::uint8_t* c = codes + 32 * static_cast<std::size_t>(t);
                const std::uint8_t* sg = signs + 32 * static_cast<std::size_t>(t / 4);
                for (int h = 0; h < 2; ++h) {
                    const uint8x16_t x = vld1q_u8(c + 16 * h), s = vld1q_u8(sg + 16 * h);
                    const uint8x16_t ia = vandq_u8(x, m15), ib = vshrq_n_u8(x, 4);
                    const uint8x16_t ma = vtstq_u8(s, bit_a), mb = vtstq_u8(s, bit_b);
                    l8[h] = vaddq_u8(l8[h], vaddq_u8(veorq_u8(vqtbl1q_u8(la, ia), ma), veorq_u8(vqtbl1q_u8(lb, ib), mb)));
                    h8[h] = vaddq_u8(h8[h], vaddq_u8(veorq_u8(vqtbl1q_u8(ha, ia), ma), veorq_u8(vqtbl1q_u8(hb, ib), mb)));
                    ms[h] = vaddq_u8(ms[h], vaddq_u8(ma, mb));
                }
            };
            if (j2 - j == kDenseBytesPerFold) {  // a whole fold: a fixed trip count, unrolled
                for (int t = 0; t < kDenseBytesPerFold; ++t) index_byte(j + t);
            } else {
                for (int t = j; t < j2; ++t) index_byte(t);
            }
            for (int h = 0; h < 2; ++h) {
                l8[h] = vsubq_u8(l8[h], ms[h]);
                h8[h] = vsubq_u8(h8[h], ms[h]);
            }
            fold<false>(l8, h8, al, ah);
        }
        widen<kDenseSplit>(al, ah, dot);
    }
}

// T: tied scales, L: two-level scales, D: dense tiles (compile-time choices). SC: the code
// bytes (2bit) or index bytes (dense) per row and block when known at compile time, else 0.
// out[0 .. 32) = the tile's 32 row sums (before x_scale).
template <int SC, bool T, bool L, bool D>
void run_tile(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::int64_t tile, float* out) {
    const TernaryLayout& l = w.layout;
    const std::int64_t nb = l.blocks_per_row();
    // Code bytes (2bit) or index bytes (dense) per row and block: 64 table bytes each.
    const int s_rt = D ? static_cast<int>(l.tile_index_bytes()) : w.code_bytes();
    const int n_slots = T ? 1 : k_bases;  // the scale slots read
    alignas(16) float sup[L ? 8 * kLutTileRows : 1];
    if constexpr (L) {
        for (int m = 0; m < n_slots; ++m) supers_to_f32(w.supers(m, tile), sup + kLutTileRows * m);
    }
    const std::size_t rec_bytes = static_cast<std::size_t>(s_rt) * 64;
    const std::size_t code_record = l.tile_code_record();
    const std::size_t scale_record = l.tile_scale_record();
    TileBlock tb{w.codes(0, tile, 0), l.tile_plane_bytes(), w.scales(0, tile, 0), l.tile_scale_plane_bytes()};
    const float32x4_t tied_mult = vdupq_n_f32(T ? tied_multiplier(k_bases) : 1.0f);
    float32x4_t acc[8];
    for (auto& a : acc) a = vdupq_n_f32(0.0f);
    for (std::int64_t b = 0; b < nb; ++b, tb.codes += code_record, tb.scales += scale_record) {
        for (int k = 0; k < k_bases; ++k) prefetch_ahead(tb.codes + k * tb.plane, code_record);
        for (int m = 0; m < n_slots; ++m) prefetch_ahead(tb.scales + m * tb.scale_plane, scale_record);
        const std::uint8_t* tab = tables + static_cast<std::size_t>(b) * rec_bytes;
        int32x4_t level[8];  // tied: sum_k 3^(K-1-k) dot_k (Horner), exact
        for (auto& v : level) v = vdupq_n_s32(0);
        for (int k = 0; k < k_bases; ++k) {
            int32x4_t dot[8];
            if constexpr (D) {
                block_dots_dense<SC>(tb.codes + k * tb.plane, tab, s_rt, dot);
            } else {
                block_dots<SC>(tb.codes + k * tb.plane, tab, s_rt, dot);
            }
            if constexpr (T) {
                for (int i = 0; i < 8; ++i) level[i] = vmlaq_n_s32(dot[i], level[i], 3);  // integer: 3 level + dot
            } else {
                const std::uint8_t* sc = tb.scales + static_cast<std::size_t>(k) * tb.scale_plane;
                for (int i = 0; i < 8; ++i) {
                    const float32x4_t s = tile_scales<L>(sc, sup, k, i);
                    acc[i] = vaddq_f32(acc[i], vmulq_f32(s, vcvtq_f32_s32(dot[i])));
                }
            }
        }
        if constexpr (T) {
            for (int i = 0; k_bases > 0 && i < 8; ++i) {
                const float32x4_t s = vmulq_f32(tile_scales<L>(tb.scales, sup, 0, i), tied_mult);
                acc[i] = vaddq_f32(acc[i], vmulq_f32(s, vcvtq_f32_s32(level[i])));
            }
        }
    }
    for (int i = 0; i < 8; ++i) vst1q_f32(out + 4 * i, acc[i]);
}

// run_tile as the tile loop's Kernel (ternary_lut_tiles.h).
template <int SC, bool T, bool L, bool D>
struct TileKernel {
    static void run(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::int64_t tile, float* out) {
        run_tile<SC, T, L, D>(w, k_bases, tables, tile, out);
    }
};

}  // namespace

void lut_prepare_neon(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const int bs = layout.block_size;
    const int s_bytes = (bs + 3) / 4;
    // Entry e = c0 + 4 * c1 of a pair table is t(c0) * q0 + t(c1) * q1, t(0, 1, 2, 3) =
    // (-1, 0, +1, +1), in int16 lanes (entries 0-7, 8-15); then l = v & 15, h = v >> 4
    // (arithmetic), both narrowed to bytes (h in -16..15).
    static constexpr std::int16_t kT0[16] = {-1, 0, 1, 1, -1, 0, 1, 1, -1, 0, 1, 1, -1, 0, 1, 1};
    static constexpr std::int16_t kT1[16] = {-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    const int16x8_t t0[2] = {vld1q_s16(kT0), vld1q_s16(kT0 + 8)}, t1[2] = {vld1q_s16(kT1), vld1q_s16(kT1 + 8)};
    const int16x8_t m15 = vdupq_n_s16(15);
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        const std::int8_t* qb = q + b * bs;
        for (int s = 0; s < s_bytes; ++s) {
            std::int16_t v[4];
            for (int i = 0; i < 4; ++i) v[i] = static_cast<std::int16_t>(4 * s + i < bs ? qb[4 * s + i] : 0);
            std::uint8_t* rec = tables + (static_cast<std::size_t>(b) * static_cast<std::size_t>(s_bytes) +
                                          static_cast<std::size_t>(s)) * 64;
            for (int half = 0; half < 2; ++half) {  // pair (4s, 4s+1), then (4s+2, 4s+3)
                int16x8_t e[2];
                for (int i = 0; i < 2; ++i) e[i] = vmlaq_n_s16(vmulq_n_s16(t0[i], v[2 * half]), t1[i], v[2 * half + 1]);
                vst1q_u8(rec + 16 * half, vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(vandq_s16(e[0], m15)),
                                                                           vmovn_s16(vandq_s16(e[1], m15)))));
                vst1q_u8(rec + 32 + 16 * half, vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(vshrq_n_s16(e[0], 4)),
                                                                                vmovn_s16(vshrq_n_s16(e[1], 4)))));
            }
        }
    }
}

void lut_prepare_dense_neon(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const int bs = layout.block_size;
    const int n_records = 2 * static_cast<int>(layout.tile_index_bytes());  // T rounded up to even
    // Entry e of a triple table is d0(e) q0 + d1(e) q1 + d2(e) q2 for the balanced-ternary
    // digits of e (0 for e = 14, 15), in int16 lanes (entries 0-7, 8-15).
    static constexpr std::int16_t kD0[16] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    static constexpr std::int16_t kD1[16] = {0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0};
    static constexpr std::int16_t kD2[16] = {0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0};
    const int16x8_t d0[2] = {vld1q_s16(kD0), vld1q_s16(kD0 + 8)}, d1[2] = {vld1q_s16(kD1), vld1q_s16(kD1 + 8)},
                    d2[2] = {vld1q_s16(kD2), vld1q_s16(kD2 + 8)};
    static_assert(kDenseSplit == 20, "the multiply-high constant below divides by 20");
    const uint16x4_t inv = vdup_n_u16(3277);  // ceil(65536 / 20): u * 3277 >> 16 = u / 20 for u < 3276
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        const std::int8_t* qb = q + b * bs;
        for (int g = 0; g < n_records; ++g) {
            std::int16_t v[3];
            for (int i = 0; i < 3; ++i) v[i] = static_cast<std::int16_t>(3 * g + i < bs ? qb[3 * g + i] : 0);
            int8x8_t l8[2], h8[2];
            for (int i = 0; i < 2; ++i) {
                const int16x8_t e = vmlaq_n_s16(vmlaq_n_s16(vmulq_n_s16(d0[i], v[0]), d1[i], v[1]), d2[i], v[2]);
                // h = floor(e / 20) = floor((e + 400) / 20) - 20 (0 <= e + 400 <= 781), by a
                // widening multiply-high; l = e - 20 h.
                const uint16x8_t u = vreinterpretq_u16_s16(vaddq_s16(e, vdupq_n_s16(20 * kDenseSplit)));
                const uint16x8_t qt = vcombine_u16(vshrn_n_u32(vmull_u16(vget_low_u16(u), inv), 16),
                                                   vshrn_n_u32(vmull_high_u16(u, vcombine_u16(inv, inv)), 16));
                const int16x8_t h = vsubq_s16(vreinterpretq_s16_u16(qt), vdupq_n_s16(20));
                l8[i] = vmovn_s16(vmlsq_n_s16(e, h, kDenseSplit));
                h8[i] = vmovn_s16(h);
            }
            std::uint8_t* rec = tables + (static_cast<std::size_t>(b) * static_cast<std::size_t>(n_records) +
                                          static_cast<std::size_t>(g)) * 32;
            vst1q_u8(rec, vreinterpretq_u8_s8(vcombine_s8(l8[0], l8[1])));
            vst1q_u8(rec + 16, vreinterpretq_u8_s8(vcombine_s8(h8[0], h8[1])));
        }
    }
}

void lut_gemm_neon(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                   std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    lut_gemm_tiles<TileKernel, false>(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
}

void lut_gemm_dense_neon(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales,
                         int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    lut_gemm_tiles<TileKernel, true>(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
}

void lut_gemv_neon(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                   std::int64_t r1, float* y) {
    lut_gemm_neon(w, k_bases, &tables, &x_scale, 1, r0, r1, y, 0);
}

void lut_gemv_dense_neon(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                         std::int64_t r1, float* y) {
    lut_gemm_dense_neon(w, k_bases, &tables, &x_scale, 1, r0, r1, y, 0);
}

}  // namespace bitttt::kernels
