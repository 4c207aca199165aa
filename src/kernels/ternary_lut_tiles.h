// The tile loop the vector LUT kernels share (ternary_lut_avx2.cpp, ternary_lut_neon.cpp):
// which compile-time tile function serves a tensor, and the loop over its tiles and inputs.
// Each ISA supplies only its tile function, as Kernel<SC, T, L, D>::run (ternary_lut.h:
// SC the code or index bytes per row and block when known at compile time, else 0; T tied
// scales, L two-level scales, D dense tiles).
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

// The byte count as a compile-time constant for the common blocks (2bit: S = 16 at B = 64,
// 32 at B = 128; dense: I = 11 at B = 64, 16 at B = 96, 22 at B = 128).
template <template <int, bool, bool, bool> class Kernel, bool T, bool L, bool D>
TileFn tile_fn(int bytes) {
    if constexpr (D) {
        switch (bytes) {
            case 11: return &Kernel<11, T, L, D>::run;
            case 16: return &Kernel<16, T, L, D>::run;
            case 22: return &Kernel<22, T, L, D>::run;
            default: return &Kernel<0, T, L, D>::run;
        }
    } else {
        switch (bytes) {
            case 16: return &Kernel<16, T, L, D>::run;
            case 32: return &Kernel<32, T, L, D>::run;
            default: return &Kernel<0, T, L, D>::run;
        }
    }
}

// Tied with K = 1 is the free computation (s * 1.0f is exact, and the one scale is where a
// free tile block's first scales are).
template <template <int, bool, bool, bool> class Kernel, bool D>
TileFn choose_tile_fn(const LutWeights& w, int k_bases) {
    const bool tied = w.layout.tied() && k_bases > 1, two_level = w.layout.two_level();
    const int bytes = D ? static_cast<int>(w.layout.tile_index_bytes()) : w.code_bytes();
    return tied ? (two_level ? tile_fn<Kernel, true, true, D>(bytes) : tile_fn<Kernel, true, false, D>(bytes))
                : (two_level ? tile_fn<Kernel, false, true, D>(bytes) : tile_fn<Kernel, false, false, D>(bytes));
}

// Runs `run` over the tiles of rows [r0, r1) for m inputs, tile outer and input inner (a
// tile's codes, a few tens of KB, stay in cache for all m inputs of a prompt micro-batch),
// scaling by x_scales (one float multiply per output, as the reference).
inline void gemm_tiles(TileFn run, const LutWeights& w, int k_bases, const std::uint8_t* const* tables,
                       const float* x_scales, int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    r1 = std::min(r1, w.layout.rows);
    for (std::int64_t tile = r0 / kLutTileRows; tile * kLutTileRows < r1; ++tile) {
        const std::int64_t lo = std::max(r0, tile * kLutTileRows);
        const std::int64_t hi = std::min(r1, (tile + 1) * kLutTileRows);
        for (int j = 0; j < m; ++j) {
            alignas(32) float out[kLutTileRows];
            run(w, k_bases, tables[j], tile, out);
            float* yj = y + j * ldy;
            for (std::int64_t r = lo; r < hi; ++r) yj[r - r0] = out[r - tile * kLutTileRows] * x_scales[j];
        }
    }
}

// A GEMM over the tiles of rows [r0, r1) with the tile function that serves w.
template <template <int, bool, bool, bool> class Kernel, bool D>
void lut_gemm_tiles(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
                    std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    gemm_tiles(choose_tile_fn<Kernel, D>(w, k_bases), w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
}

}  // namespace
}  // namespace bitttt::kernels
