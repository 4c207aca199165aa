// Helpers shared by the NEON lookup-table kernels (aarch64 builds only):
// ternary_lut_neon.cpp (the per-base table lookups, both packings) and the levels path of
// prompt batches, ternary_lut_levels_neon.cpp (plain NEON) and ternary_lut_levels_neon_dot.cpp
// (sdot, compiled with -march=armv8.2-a+dotprod).
//
// Everything here has internal linkage (an unnamed namespace): the files that include it are
// compiled with different -march flags, and an inline function with external linkage could be
// emitted by the dotprod file and picked by the linker for the plain one, which then would
// run Armv8.2 instructions on an Armv8.0 CPU.
//
// Register layout of a tile's 32 rows in these kernels: natural row order, four int32 or
// float lanes per register, register i holding rows 4i .. 4i+3 (eight registers per tile).
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ternary_lut.h"

#define BITTTT_NEON_INLINE [[gnu::always_inline]] inline

namespace bitttt::kernels::lut_neon {
namespace {

constexpr std::size_t kPrefetchBytes = 4096;  // as the AVX2 kernels (ternary_lut_avx2_common.h)

// The exact scales of slot m of rows 4i .. 4i+3 of a tile block whose slot-m scales are at
// `sc`: binary16 converted (L = false), or, two-level, sup[32 m + 4i ..] * float(u) (one
// multiply, the reference's block_scale). `sup` = the tile's super-scales as floats.
template <bool L>
BITTTT_NEON_INLINE float32x4_t tile_scales(const std::uint8_t* sc, const float* sup, int m, int i) {
    if constexpr (L) {
        std::uint32_t u4;
        __builtin_memcpy(&u4, sc + 4 * i, 4);
        const uint32x4_t u = vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(u4))));
        return vmulq_f32(vld1q_f32(sup + kLutTileRows * m + 4 * i), vcvtq_f32_u32(u));
    } else {
        (void)sup;
        (void)m;
        return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(sc + 8 * i)));
    }
}

// A tile's 32 binary16 super-scales of one slot (at d) as floats, into out[0 .. 32).
BITTTT_NEON_INLINE void supers_to_f32(const std::uint8_t* d, float* out) {
    for (int i = 0; i < 8; ++i) vst1q_f32(out + 4 * i, vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(d + 8 * i))));
}

// Where one tile block's bytes are: base 0's codes, the distance to the next base's (a
// plane), slot 0's scales and the distance to the next slot's.
struct TileBlock {
    const std::uint8_t* codes;
    std::size_t plane;
    const std::uint8_t* scales;
    std::size_t scale_plane;
};

// Software prefetch of `bytes` bytes at least kPrefetchBytes ahead of p in its stream, into
// L2 (locality 2: PRFM PLDL2KEEP), as the AVX2 kernels do. Integer address arithmetic:
// prefetching past the end of the buffer never faults.
BITTTT_NEON_INLINE void prefetch_ahead(const std::uint8_t* p, std::size_t bytes) {
    const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(p) + (kPrefetchBytes + bytes - 1) / bytes * bytes;
    for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(reinterpret_cast<const void*>(ahead + o), 0, 2);
}

}  // namespace
}  // namespace bitttt::kernels::lut_neon
