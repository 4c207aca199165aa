// The tile loop the vector LUT kernels share (ternary_lut_avx2_tiles.h, ternary_lut_neon.cpp):
// which compile-time tile function serves a tensor, and the loop over its tiles and inputs.
// Each ISA supplies only its tile function, as Kernel<SC, T, L, D>::run (ternary_lut.h:
// SC the code or index bytes per row and block when known at compile time, else 0; T tied
// scales, L two-level scales, D dense tiles), and optionally a two-tile one for one base
// (or two, 2bit), Kernel<SC, T, L, D>::run_pair.
//
// Everything here has internal linkage (an unnamed namespace): each kernel file compiles it
// with its own ISA flags, and one shared out-of-line copy could be linked with another
// ISA's instructions.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/ternary_lut.h"

namespace bitttt::kernels {
namespace {  // NOLINT(google-build-namespaces): see above

using TileFn = void (*)(const LutWeights&, int, const std::uint8_t*, std::int64_t, float*);

// Kernel's tile function, or its two-tile one (run_pair: out[64] for tiles tile and
// tile + 1).
template <template <int, bool, bool, bool> class Kernel, int SC, bool T, bool L, bool D, bool Pair>
constexpr TileFn member() {
    if constexpr (Pair) {
        return &Kernel<SC, T, L, D>::run_pair;
    } else {
        return &Kernel<SC, T, L, D>::run;
    }
}

// The byte count as a compile-time constant for the common blocks (2bit: S = 16 at B = 64,
// 32 at B = 128; dense: I = 11 at B = 64, 16 at B = 96, 22 at B = 128).
template <template <int, bool, bool, bool> class Kernel, bool T, bool L, bool D, bool Pair = false>
TileFn tile_fn(int bytes) {
#ifdef BITTTT_LUT_GENERIC_TILES
    // Sanitizer builds: the run-time byte count only, to save compile time there
    // (docs/HARDENING.md); the same bytes are read either way.
    (void)bytes;
    return member<Kernel, 0, T, L, D, Pair>();
#else
    if constexpr (D) {
        switch (bytes) {
            case 11: return member<Kernel, 11, T, L, D, Pair>();
            case 16: return member<Kernel, 16, T, L, D, Pair>();
            case 22: return member<Kernel, 22, T, L, D, Pair>();
            default: return member<Kernel, 0, T, L, D, Pair>();
        }
    } else {
        switch (bytes) {
            case 16: return member<Kernel, 16, T, L, D, Pair>();
            case 32: return member<Kernel, 32, T, L, D, Pair>();
            default: return member<Kernel, 0, T, L, D, Pair>();
        }
    }
#endif
}

// The tile function (Pair: the two-tile one) that serves w. Tied with K = 1 is the free
// computation (s * 1.0f is exact, and the one scale is where a free tile block's first
// scales are).
template <template <int, bool, bool, bool> class Kernel, bool D, bool Pair = false>
TileFn choose_tile_fn(const LutWeights& w, int k_bases) {
    const bool tied = w.layout.tied() && k_bases > 1, two_level = w.layout.two_level();
    const int bytes = D ? static_cast<int>(w.layout.tile_index_bytes()) : w.code_bytes();
    return tied ? (two_level ? tile_fn<Kernel, true, true, D, Pair>(bytes) : tile_fn<Kernel, true, false, D, Pair>(bytes))
                : (two_level ? tile_fn<Kernel, false, true, D, Pair>(bytes)
                             : tile_fn<Kernel, false, false, D, Pair>(bytes));
}

// The two-tile function for one base, or two with 2bit tiles, if Kernel has one (else
// nullptr): with more bases the tile function's own sharing of each table load between
// them is enough.
template <template <int, bool, bool, bool> class Kernel, bool D>
TileFn choose_pair_fn(const LutWeights& w, int k_bases) {
    if constexpr (requires { &Kernel<0, false, false, D>::run_pair; }) {
        return k_bases <= (D ? 1 : 2) ? choose_tile_fn<Kernel, D, true>(w, k_bases) : nullptr;
    } else {
        (void)w, (void)k_bases;
        return nullptr;
    }
}

// Runs `run` over the tiles of rows [r0, r1) for m inputs, tile outer and input inner (a
// tile's codes, a few tens of KB, stay in cache for all m inputs of a prompt micro-batch),
// scaling by x_scales (one float multiply per output, as the reference). With `pair`, two
// whole tiles at a time where both hold rows of the range.
inline void gemm_tiles(TileFn run, TileFn pair, const LutWeights& w, int k_bases, const std::uint8_t* const* tables,
                       const float* x_scales, int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    r1 = std::min(r1, w.layout.rows);
    for (std::int64_t tile = r0 / kLutTileRows; tile * kLutTileRows < r1;) {
        const int n = pair && (tile + 1) * kLutTileRows < r1 ? 2 : 1;  // tiles this step
        const std::int64_t lo = std::max(r0, tile * kLutTileRows);
        const std::int64_t hi = std::min(r1, (tile + n) * kLutTileRows);
        for (int j = 0; j < m; ++j) {
            alignas(32) float out[2 * kLutTileRows];
            (n == 2 ? pair : run)(w, k_bases, tables[j], tile, out);
            float* yj = y + j * ldy;
            for (std::int64_t r = lo; r < hi; ++r) yj[r - r0] = out[r - tile * kLutTileRows] * x_scales[j];
        }
        tile += n;
    }
}

// A GEMM over the tiles of rows [r0, r1) with the tile functions that serve w.
template <template <int, bool, bool, bool> class Kernel, bool D>
void lut_gemm_tiles(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                    std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    gemm_tiles(choose_tile_fn<Kernel, D>(w, k_bases), choose_pair_fn<Kernel, D>(w, k_bases), w, k_bases, tables,
               x_scales, m, r0, r1, y, ldy);
}

}  // namespace
}  // namespace bitttt::kernels
