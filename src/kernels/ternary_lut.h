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
// The weights' arrangement. pshufb looks up 16 (or 32) lanes in ONE 16-entry table, so
// the lanes of a register must all refer to the same activation pair, i.e. be different
// rows. The kernel therefore reads the `tiles` arrangement (include/bitttt/ternary.h,
// docs/FORMAT.md): per tile of 32 rows, block and base, the rows' code bytes interleaved
// (byte s of lane i at 32 s + i), the scales in their own section, each base in its own
// plane. `convert` writes it, so the engine maps the file and computes on it in place; a
// file in the older `rows` arrangement is rearranged at load (lut_repack).
//
// 2bit tiles: code byte s of a row holds positions 4s .. 4s+3 in bits [0,2) .. [6,8).
// dense tiles: index byte j holds triples 2j (bits [0,4)) and 2j+1 (bits [4,8)), each the
// magnitude |v| of v = 9 t0 + 3 t1 + t2; sign byte j the signs of triples 8j .. 8j+7.
// Two-level scales: 8-bit sub-scales u in the scale section, binary16 super-scales d per
// row and slot in their own section; the block's scale is f32(d) * float(u), exactly the
// reference's block_scale.
//
// GEMV: per row and block, acc += s_k * float(dot_k) for each base k (free scales),
// or acc += (s * tied_multiplier(K)) * float(sum_k 3^(K-1-k) dot_k) (tied), in the
// reference's order, with s = f16(s) or, two-level, the separately rounded product
// d * float(u); then y = acc * x_scale.
//
// aarch64: ternary_lut_neon.cpp reads the same tiles and tables with vqtbl1q_u8 (16 rows per
// lookup) and its own exactness argument (l and h widened apart, combined modulo 2^16; see
// its header); the levels path there is ternary_lut_levels_neon*.cpp (plain NEON, and sdot
// with the dot-product extension).
//
// RAM: the tiles arrangement is as large as the rows one (plus row padding to 32). Dense
// tiles take 5 bits per 3 trits (1.67 bits per trit when B is a multiple of 24, 1.75 at
// B = 64), against 2 for 2bit tiles.
//
// Exactness. A table entry v = t0*q0 + t1*q1 lies in [-254, 254], too wide for int8. It is
// stored as two int8 tables, l = v & 15 (0..15) and h = v >> 4 (-16..15, arithmetic
// shift), v = 16*h + l. Lookups of l and h are summed in bytes for up to 8 lookups
// (l <= 120, -128 <= h <= 120: no wrap), then one maddubs with the constant byte pairs
// (1, 16) turns (l, h) into exact int16 sums, widened to int32 every 256 weights.
//
// Tables (2bit): for block b and code byte s, one 64-byte record
//   l(4s, 4s+1)[16]  l(4s+2, 4s+3)[16]  h(4s, 4s+1)[16]  h(4s+2, 4s+3)[16]
// over the block's positions (activations past the block's end count as 0). When B is a
// multiple of 4 the records depend only on q, so the tables are the same for any block
// size and packing with the same padded length: one build serves q/k/v and gate/up.
//
// Dense: a triple's entry e (0..13) is v = t0*q0 + t1*q1 + t2*q2 for the balanced-ternary
// digits (t0, t1, t2) of e, |v| <= 381; entries 14 and 15 (never written) are 0. It is
// split as v = 20 h + l (h = floor(v / 20) in -20..19, l in 0..19), the lookup's sign is
// applied to both halves (-v = 20 (-h) + (-l)), and sums of up to 6 lookups (three index
// bytes) stay within int8 (|l| <= 6 * 19 = 114, |h| <= 6 * 20 = 120); a split by 16 would
// allow only 4 (|h| <= 24 per lookup). One 32-byte record per block and triple g:
// l(g)[16] h(g)[16], the count rounded up to even (a zero record when T is odd, so every
// index byte's high nibble has a table).
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

constexpr int kLutTileRows = kTileRows;

// Dense tables: an entry v is stored as l = v - kDenseSplit * h and h = floor(v / kDenseSplit).
constexpr int kDenseSplit = 20;

// std::allocator that default-initialises (leaves bytes unset) instead of zeroing: the
// rearrangement writes every byte, so zeroing a multi-GB buffer first would only cost time.
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

// A ternary tensor in the tiles arrangement: a view of the mapped file, or (files in the
// rows arrangement) a copy rearranged at load that it owns. Move-only.
struct LutWeights {
    TernaryLayout layout;                 // arrangement Tiles
    const std::uint8_t* data = nullptr;   // layout.total_bytes() bytes
    std::vector<std::uint8_t, UninitAllocator<std::uint8_t>> owned;  // data's bytes when rearranged at load

    LutWeights() = default;
    LutWeights(LutWeights&&) = default;             // a vector's move keeps its buffer: data stays valid
    LutWeights& operator=(LutWeights&&) = default;
    LutWeights(const LutWeights&) = delete;
    LutWeights& operator=(const LutWeights&) = delete;

    std::int64_t tiles() const { return layout.tiles(); }
    int code_bytes() const { return static_cast<int>(layout.tile_code_bytes()); }
    // Slot m's 32 scales (binary16, or uint8 two-level) of tile block (tile, b).
    const std::uint8_t* scales(int m, std::int64_t tile, std::int64_t b) const {
        return data + layout.tile_scale_offset(m, tile, b);
    }
    // Base k's code bytes [C][32] of tile block (tile, b).
    const std::uint8_t* codes(int k, std::int64_t tile, std::int64_t b) const {
        return data + layout.tile_code_offset(k, tile, b);
    }
    // Two-level: slot m's 32 binary16 super-scales of a tile.
    const std::uint8_t* supers(int m, std::int64_t tile) const { return data + layout.tile_super_offset(m, tile); }
};

// The exact scale of slot m of row lane `lane` in tile block (tile, b): f16(s), or
// f16(d) * float(u) with two-level scales (the reference's block_scale, one rounding-free
// multiply). For the scalar kernels.
float lut_scale_ref(const LutWeights& w, int m, std::int64_t tile, std::int64_t b, std::size_t lane);

// The scalar GEMVs' frame, shared by both packings: per row, block and base in the
// reference's order (free: acc += s_k * dot_k; tied: one multiply per block of the
// Horner-combined level). dot(codes, tab) is one row's integer block sum of one base:
// codes = its first code byte (code byte j at codes[32 j]), tab = the block's tables,
// which are table_block_bytes apart.
template <class Dot>
void lut_gemv_ref_frame(const LutWeights& w, int k_bases, const std::uint8_t* tables, std::size_t table_block_bytes,
                        float x_scale, std::int64_t r0, std::int64_t r1, float* y, Dot dot) {
    const std::int64_t nb = w.layout.blocks_per_row();
    const bool tied = w.layout.tied();
    const float tied_mult = tied_multiplier(k_bases);
    for (std::int64_t r = r0; r < r1; ++r) {
        const std::int64_t tile = r / kTileRows;
        const std::size_t lane = static_cast<std::size_t>(r % kTileRows);
        float acc = 0.0f;
        for (std::int64_t b = 0; b < nb; ++b) {
            const std::uint8_t* tab = tables + static_cast<std::size_t>(b) * table_block_bytes;
            std::int32_t level = 0;  // tied: sum_k 3^(K-1-k) * dot_k (Horner), exact
            for (int k = 0; k < k_bases; ++k) {
                const std::int32_t d = dot(w.codes(k, tile, b) + lane, tab);
                if (tied) {
                    level = 3 * level + d;
                    continue;
                }
                acc += lut_scale_ref(w, k, tile, b, lane) * static_cast<float>(d);
            }
            if (tied && k_bases > 0) acc += (lut_scale_ref(w, 0, tile, b, lane) * tied_mult) * static_cast<float>(level);
        }
        y[r - r0] = acc * x_scale;
    }
}

// A view of a tensor stored in the tiles arrangement (`layout.tiled()`; `data` must stay
// mapped while the result is used). Nothing is copied.
LutWeights lut_view(const TernaryLayout& layout, const std::uint8_t* data);

// Rearranges a tensor of the rows arrangement (`layout.total_bytes()` bytes at `data`)
// into tiles of the same packing, owned by the result. Trits decode as in the reference
// (a corrupt 2bit code 3 counts as +1). With a pool, tiles are done in parallel (the
// same bytes for any thread count). A tiled layout is copied as it is.
LutWeights lut_repack(const TernaryLayout& layout, const std::uint8_t* data, ThreadPool* pool = nullptr);

// Bytes of the tables for a layout: blocks_per_row * ceil(B / 4) * 64 (2bit), or
// blocks_per_row * ceil(T / 2) * 64 (dense: 32 per triple, T rounded up to even).
std::size_t lut_table_bytes(const TernaryLayout& layout);

// Fills `tables` (lut_table_bytes(layout) bytes) from q[0 .. blocks_per_row * B), the int8
// activations of quantize_int8, for the layout's packing. Afterwards the tables are only
// read: several threads may run lut_gemv over them at once.
void lut_prepare_ref(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_prepare_dense_ref(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);

// Scalar GEMV over 2bit tiles (dense: lut_gemv_dense_ref) and tables: the reference the AVX2 kernel is
// tested against (same contract as ternary_gemv_ref: 1 <= k_bases <= N, rows r in
// [r0, r1) within the tensor, writes y[r - r0]).
void lut_gemv_ref(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                  std::int64_t r1, float* y);
void lut_gemv_dense_ref(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                        std::int64_t r1, float* y);

// The kernel for the layout's packing: lut_prepare_avx2 / lut_gemv_avx2 (or the _dense_
// ones) when active_isa() is Avx2 (dispatch.h; BITTTT_ISA), lut_prepare_neon /
// lut_gemv_neon (or _dense_) when it is Neon, else the references. Same results
// either way.
void lut_prepare(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_gemv(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
              std::int64_t r1, float* y);

// The batched form for m inputs (a prompt micro-batch): y[j * ldy + r - r0] is
// lut_gemv's result for tables[j] and x_scales[j]. The AVX2 version walks tiles outer and
// inputs inner, so each tile's codes are read from memory once per batch.
void lut_gemm(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
              std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);

// The levels path for prompt batches (ternary_lut_levels_avx2.cpp). With tied scales, a
// block's K integer sums combine as sum_k 3^(K-1-k) dot_k = dot(u, q) - o * sum(q), where
// u = sum_k 3^(K-1-k) c_k (c = t + 1: 0, 1, 2) is one unsigned byte per weight (0 .. 3^K - 1)
// and o = (3^K - 1) / 2. So the kernel decodes a tile block's K bases into u once per
// micro-batch and runs one int8 GEMM (maddubs) for all of them: the cost per input no
// longer grows with K. The same holds for K = 1 with free scales (one base, s * 1.0f is s).
// Results are bit-identical to lut_gemv_ref (the same integer level, the same float
// operations in the same order).
//
// Applies when K = 1, or the scales are tied and K <= kLevelsMaxBases (u <= 80, so the
// maddubs pair sums 2 * 80 * 128 fit int16).
constexpr int kLevelsMaxBases = 4;
bool lut_levels_apply(const TernaryLayout& layout, int k_bases);
// Positions per block the levels input holds: the tile's decoded positions (2bit: 4 C,
// dense: 6 x index bytes rounded up to 4), >= B and a multiple of 4; positions >= B hold
// activation 0.
int lut_levels_positions(const TernaryLayout& layout);
// Bytes of one input in the levels form: per block a record of lut_levels_positions int8
// activations, then their int32 sum.
std::size_t lut_levels_record_bytes(const TernaryLayout& layout);
std::size_t lut_levels_bytes(const TernaryLayout& layout);
// Writes the levels form of q[0 .. blocks_per_row * B) (quantize_int8's activations).
void lut_levels_prepare(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* out);
// The smallest batch the engine sends down the levels path (the decode of a tile block is
// paid once per batch; measured in docs/BENCHMARKS.md, "Prompt processing").
constexpr int kLevelsMinBatch = 4;
// False when the environment sets BITTTT_LUT_LEVELS=0 (read once): prompts then take the
// per-base path, for measurements; the results are the same.
bool lut_levels_enabled();
// True when lut_gemm_levels can run here: the path applies, is enabled and the AVX2 or
// NEON kernels are active.
bool lut_levels_available(const TernaryLayout& layout, int k_bases);
// The levels GEMM (lut_gemm's contract, inputs in the levels form); requires
// lut_levels_available(w.layout, k_bases).
void lut_gemm_levels(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales, int m,
                     std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);

#ifdef BITTTT_HAVE_AVX2_KERNEL
// AVX2 versions (ternary_lut_avx2.cpp, ternary_lut_dense_avx2.cpp). Call only when avx2_available(). Results are
// byte-identical to the _ref functions. Row ranges need not be tile-aligned (a partial
// tile is computed whole and only its rows in [r0, r1) are written).
void lut_prepare_avx2(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_gemv_avx2(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                   std::int64_t r1, float* y);
void lut_gemm_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                   std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
void lut_prepare_dense_avx2(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_gemv_dense_avx2(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                         std::int64_t r1, float* y);
void lut_gemm_dense_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales,
                         int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
// The levels GEMM for m inputs in the levels form (lut_gemm's contract otherwise);
// requires lut_levels_apply(w.layout, k_bases).
void lut_gemm_levels_avx2(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales,
                          int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
#endif

#ifdef BITTTT_HAVE_NEON_KERNEL
// NEON versions (aarch64 builds; ternary_lut_neon.cpp, ternary_lut_levels_neon*.cpp). Call
// only when neon_available(); lut_gemm_levels_neon_dot (sdot) only when
// neon_dotprod_available(). Results are bit-identical to the _ref functions; row ranges need
// not be tile-aligned. The table builds write the references' bytes.
void lut_prepare_neon(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_prepare_dense_neon(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables);
void lut_gemv_neon(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                   std::int64_t r1, float* y);
void lut_gemm_neon(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                   std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
void lut_gemv_dense_neon(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                         std::int64_t r1, float* y);
void lut_gemm_dense_neon(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales,
                         int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
// The levels GEMM (lut_gemm_levels_avx2's contract): plain NEON (widening multiplies) and
// with the dot-product extension (sdot); requires lut_levels_apply(w.layout, k_bases).
void lut_gemm_levels_neon(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales,
                          int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
void lut_gemm_levels_neon_dot(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales,
                              int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);
#endif

}  // namespace bitttt::kernels
