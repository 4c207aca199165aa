// Ternary GEMV with lookup tables over activation pairs (design (b); design (a) is the
// maddubs kernel in ternary_gemv_avx2.cpp). Same contract as ternary_gemv_ref: identical
// integer block sums and the same float order, so outputs are bit-identical.
//
// Idea (T-MAC / bitnet.cpp "TL1" style). Two trits (t0, t1) of one row at activation
// positions (p, p+1) take 3 x 3 values, so t0*q[p] + t1*q[p+1] is one of 9 numbers that
// depend on the activations only. `lut_prepare` computes them once per activation vector,
// as a 16-entry table indexed by the 4-bit code c0 + 4*c1 (c = t + 1; code 3 is unused);
// the GEMV then replaces 2 multiply-adds per row by one table lookup (pshufb), and the
// tables serve every row, every base and every matrix that multiplies the same vector.
//
// Why the weights are repacked. pshufb looks up 16 (or 32) lanes in ONE 16-entry table,
// so the lanes of a register must all refer to the same activation pair, i.e. be different
// rows. In the .btt layout consecutive bytes of a row are different activation positions
// (byte j holds positions j, j+G, j+2G, j+3G), so a lookup per position would need a
// different table per lane, or an on-the-fly 32-row byte transpose per group. `lut_repack`
// therefore re-lays the weights once at load time:
//
//   tile   := 32 consecutive rows (the last tile padded with zero trits and zero scales)
//   tensor := tile[0] ... tile[ceil(rows / 32) - 1]
//   tile   := tblock[0] ... tblock[blocks_per_row - 1]
//   tblock := scales[M][32]       binary16, row-major in the tile (base 1 first); M = N for
//                                 free scales, M = 1 for tied ones (the block's one scale)
//             codes[N][S][32]     S = ceil(B / 4) bytes per row and base
//   code byte s of a row: bits [0,2) position 4s, [2,4) 4s+1, [4,6) 4s+2, [6,8) 4s+3 of the
//   block (codes 0, 1, 2 = -1, 0, +1; positions >= B hold code 1).
//
// Two-level scales (layout.two_level(): a binary16 super-scale d per row and slot, an 8-bit
// sub-scale u per block and slot) keep the same tiles with 8-bit scales:
//
//   tblock := subs[M][32]          uint8 u, row-major in the tile (padding rows 0)
//             codes[N][S][32]      as above
//
// and the super-scales live beside the tiles, already converted to float (an exact
// conversion), in LutWeights::row_super: [tile][M][32] (padding rows 0), read once per tile
// rather than per block. The block's scale is row_super * float(u), exactly the reference's
// block_scale.
//
// GEMV: per row and block, acc += s_k * float(dot_k) for each base k (free scales),
// or acc += (s * tied_multiplier(K)) * float(sum_k 3^(K-1-k) dot_k) (tied), in the
// reference's order, with s = f16(s) or, two-level, the separately rounded product
// d * float(u); then y = acc * x_scale.
//
// RAM: for 2bit, S = G, so the repacked tensor has exactly the .btt size (plus row padding
// to 32; two-level: the super-scales take 4 bytes instead of 2 per row and slot); it can
// replace the mapped weights if their pages are dropped after repacking. For dense, the
// 5-trits-per-byte code becomes 4 per byte: S/G = 5/4 of the trit bytes (the LUT needs
// 2-trit nibbles; 3^5 = 243 entry tables do not fit a 16-entry shuffle).
//
// Exactness. A table entry v = t0*q0 + t1*q1 lies in [-254, 254], too wide for int8. It is
// stored as two int8 tables, l = v & 15 (0..15) and h = v >> 4 (-16..15, arithmetic
// shift), v = 16*h + l. Lookups of l and h are summed in bytes for up to 8 lookups
// (l <= 120, -128 <= h <= 120: no wrap), then one maddubs with the constant byte pairs
// (1, 16) turns (l, h) into exact int16 sums, widened to int32 every 256 weights.
//
// Tables: for block b and code byte s, one 64-byte record
//   l(4s, 4s+1)[16]  l(4s+2, 4s+3)[16]  h(4s, 4s+1)[16]  h(4s+2, 4s+3)[16]
// over the block's positions (activations past the block's end count as 0). When B is a
// multiple of 4 the records depend only on q, so the tables are the same for any block
// size and packing with the same padded length: one build serves q/k/v and gate/up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "bitttt/ternary.h"

namespace bitttt {
class ThreadPool;
}

namespace bitttt::kernels {

constexpr int kLutTileRows = 32;

// std::allocator that default-initialises (leaves bytes unset) instead of zeroing: the
// repack writes every byte, so zeroing a multi-GB buffer first would only cost time.
template <class T>
struct UninitAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() = default;
    template <class U>
    UninitAllocator(const UninitAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

// A ternary tensor re-laid for the LUT kernel (see above). Owns its bytes.
struct LutWeights {
    TernaryLayout layout;               // the source layout (rows, cols, N, B, packing, scale bits)
    std::int64_t tiles = 0;             // ceil(rows / 32)
    int code_bytes = 0;                 // S = ceil(B / 4) per row, block and base
    std::size_t tblock_bytes = 0;       // 32 * (c * M + N * S), M = layout.scale_count(), c = 2 or 1 (two-level)
    std::vector<std::uint8_t, UninitAllocator<std::uint8_t>> data;  // tiles * blocks_per_row * tblock_bytes
    std::vector<float> row_super;       // two-level only: [tile][M][32] f16(d), 0 for padding rows

    // Offset of codes[0][0][0] in a tile block (after the M x 32 scales of c bytes).
    std::size_t codes_offset() const { return kLutTileRows * layout.block_scale_bytes(); }
    // Two-level: the tile's super-scales, slot m of lane i at [32 m + i].
    const float* supers(std::int64_t tile) const {
        return row_super.data() +
               static_cast<std::size_t>(tile) * kLutTileRows * static_cast<std::size_t>(layout.scale_count());
    }

    const std::uint8_t* tblock(std::int64_t tile, std::int64_t block) const {
        return data.data() + (static_cast<std::size_t>(tile) * static_cast<std::size_t>(layout.blocks_per_row()) +
                              static_cast<std::size_t>(block)) * tblock_bytes;
    }
};

// Re-lays a .btt ternary tensor (`layout.total_bytes()` bytes at `data`). Trits decode as
// in the reference (a corrupt 2bit code 3 counts as +1). With a pool, tiles are repacked
// in parallel (same bytes for any thread count).
LutWeights lut_repack(const TernaryLayout& layout, const std::uint8_t* data, ThreadPool* pool = nullptr);

// Bytes of the tables for a layout: blocks_per_row * ceil(B / 4) * 64.
std::size_t lut_table_bytes(const TernaryLayout& layout);

// Fills `tables` (lut_table_bytes(layout) bytes) from q[0 .. blocks_per_row * B), the int8
// activations of quantize_int8. Afterwards the tables are only read: several threads may
// run lut_gemv over them at once.
void lut_prepare_ref(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);

// Scalar GEMV over the repacked layout and tables: the reference the AVX2 kernel is
// tested against (same contract as ternary_gemv_ref: 1 <= k_bases <= N, rows r in
// [r0, r1) within the tensor, writes y[r - r0]).
void lut_gemv_ref(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                  std::int64_t r1, float* y);

// lut_prepare_avx2 / lut_gemv_avx2 when active_isa() is Avx2 (dispatch.h; BITTTT_ISA),
// else the references. Same results either way.
void lut_prepare(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_gemv(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
              std::int64_t r1, float* y);

// The batched form for m inputs (a prompt micro-batch): y[j * ldy + r - r0] is
// lut_gemv's result for tables[j] and x_scales[j]. The AVX2 version walks tiles outer and
// inputs inner, so each tile's codes are read from memory once per batch.
void lut_gemm(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
              std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);

#ifdef BITTTT_HAVE_AVX2_KERNEL
// AVX2 versions (ternary_lut_avx2.cpp). Call only when avx2_available(). Results are
// byte-identical to the _ref functions. Row ranges need not be tile-aligned (a partial
// tile is computed whole and only its rows in [r0, r1) are written).
void lut_prepare_avx2(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_gemv_avx2(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                   std::int64_t r1, float* y);
void lut_gemm_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                   std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
#endif

}  // namespace bitttt::kernels
