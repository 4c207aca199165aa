// Portable parts of the lookup-table GEMV (design (b), see ternary_lut.h): views and
// rearranged copies of the weights, the reference table build, a scalar GEMV over 2bit
// tiles, and the choice of kernel by packing and ISA (AVX2, NEON, or these references).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "bitttt/dtype.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_lut.h"
#include "util/thread_pool.h"

namespace bitttt::kernels {

namespace {

// The trit of a 2-bit nibble code (0, 1, 2 = -1, 0, +1; 3, never written, as +1).
constexpr int code_trit(int c) { return c == 0 ? -1 : c == 1 ? 0 : 1; }

}  // namespace

float lut_scale_ref(const LutWeights& w, int m, std::int64_t tile, std::int64_t b, std::size_t lane) {
    const std::uint8_t* sc = w.scales(m, tile, b);
    if (!w.layout.two_level()) return f16_to_f32(static_cast<std::uint16_t>(sc[2 * lane] | sc[2 * lane + 1] << 8));
    const std::uint8_t* d = w.supers(m, tile) + 2 * lane;
    return f16_to_f32(static_cast<std::uint16_t>(d[0] | d[1] << 8)) * static_cast<float>(sc[lane]);
}

LutWeights lut_view(const TernaryLayout& layout, const std::uint8_t* data) {
    LutWeights w;
    w.layout = layout;
    w.data = data;
    return w;
}

LutWeights lut_repack(const TernaryLayout& layout, const std::uint8_t* data, ThreadPool* pool) {
    LutWeights w;
    w.layout = with_arrangement(layout, Arrangement::Tiles);
    w.owned.resize(w.layout.total_bytes());
    w.data = w.owned.data();
    if (layout.tiled()) {
        std::memcpy(w.owned.data(), data, w.owned.size());
        return w;
    }
    // Tiles write disjoint bytes: the result does not depend on the thread count.
    auto run = [&](std::int64_t t0, std::int64_t t1) { rearrange_ternary(layout, data, w.layout, w.owned.data(), t0, t1); };
    if (pool != nullptr) {
        pool->parallel_for(w.tiles(), 8, run);
    } else {
        run(0, w.tiles());
    }
    return w;
}

std::size_t lut_table_bytes(const TernaryLayout& layout) {
    const auto nb = static_cast<std::size_t>(layout.blocks_per_row());
    if (layout.packing == Packing::Dense) return nb * layout.tile_index_bytes() * 64;  // 32 per triple, T rounded up to even
    return nb * static_cast<std::size_t>((layout.block_size + 3) / 4) * 64;
}

void lut_prepare_ref(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const int bs = layout.block_size;
    const int s_bytes = (bs + 3) / 4;
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        for (int s = 0; s < s_bytes; ++s) {
            std::uint8_t* rec = tables + (static_cast<std::size_t>(b) * static_cast<std::size_t>(s_bytes) +
                                          static_cast<std::size_t>(s)) * 64;
            for (int half = 0; half < 2; ++half) {  // pair (4s, 4s+1), then (4s+2, 4s+3)
                const int p = 4 * s + 2 * half;
                const int q0 = p < bs ? q[b * bs + p] : 0;
                const int q1 = p + 1 < bs ? q[b * bs + p + 1] : 0;
                for (int e = 0; e < 16; ++e) {
                    const int v = code_trit(e & 3) * q0 + code_trit(e >> 2) * q1;
                    rec[16 * half + e] = static_cast<std::uint8_t>(v & 15);
                    rec[32 + 16 * half + e] = static_cast<std::uint8_t>(static_cast<std::int8_t>(v >> 4));
                }
            }
        }
    }
}

void lut_gemv_ref(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                  std::int64_t r1, float* y) {
    const std::size_t s_bytes = static_cast<std::size_t>(w.code_bytes());
    auto entry = [](const std::uint8_t* rec, int half, int idx) {
        return 16 * static_cast<std::int8_t>(rec[32 + 16 * half + idx]) + rec[16 * half + idx];
    };
    lut_gemv_ref_frame(w, k_bases, tables, s_bytes * 64, x_scale, r0, r1, y,
                       [&](const std::uint8_t* codes, const std::uint8_t* tab) {
                           std::int32_t dot = 0;
                           for (std::size_t s = 0; s < s_bytes; ++s) {
                               const int c = codes[s * kLutTileRows];
                               dot += entry(tab + 64 * s, 0, c & 15) + entry(tab + 64 * s, 1, c >> 4);
                           }
                           return dot;
                       });
}

void lut_prepare(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const bool dense = layout.packing == Packing::Dense;
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (active_isa() == Isa::Avx2) {
        return dense ? lut_prepare_dense_avx2(layout, q, tables) : lut_prepare_avx2(layout, q, tables);
    }
#endif
#ifdef BITTTT_HAVE_NEON_KERNEL
    if (active_isa() == Isa::Neon) {
        return dense ? lut_prepare_dense_neon(layout, q, tables) : lut_prepare_neon(layout, q, tables);
    }
#endif
    if (dense) return lut_prepare_dense_ref(layout, q, tables);
    lut_prepare_ref(layout, q, tables);
}

bool lut_levels_apply(const TernaryLayout& layout, int k_bases) {
    return k_bases == 1 || (layout.tied() && k_bases >= 1 && k_bases <= kLevelsMaxBases);
}

int lut_levels_positions(const TernaryLayout& layout) {
    return layout.packing == Packing::Dense ? (6 * static_cast<int>(layout.tile_index_bytes()) + 3) / 4 * 4
                                            : 4 * static_cast<int>(layout.tile_code_bytes());
}

std::size_t lut_levels_record_bytes(const TernaryLayout& layout) {
    return static_cast<std::size_t>(lut_levels_positions(layout)) + 4;
}

std::size_t lut_levels_bytes(const TernaryLayout& layout) {
    return static_cast<std::size_t>(layout.blocks_per_row()) * lut_levels_record_bytes(layout);
}

void lut_levels_prepare(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* out) {
    const int bs = layout.block_size;
    const std::size_t rec = lut_levels_record_bytes(layout);
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        std::uint8_t* o = out + static_cast<std::size_t>(b) * rec;
        std::memset(o, 0, rec);
        std::int32_t sum = 0;
        for (int i = 0; i < bs; ++i) {
            const std::int8_t v = q[b * bs + i];
            o[i] = static_cast<std::uint8_t>(v);
            sum += v;
        }
        std::memcpy(o + rec - 4, &sum, 4);
    }
}

bool lut_levels_enabled() {
    static const bool on = [] {
        const char* v = std::getenv("BITTTT_LUT_LEVELS");
        return !(v && std::string_view(v) == "0");
    }();
    return on;
}

bool lut_levels_available(const TernaryLayout& layout, int k_bases) {
#if defined(BITTTT_HAVE_AVX2_KERNEL) || defined(BITTTT_HAVE_NEON_KERNEL)
    const Isa isa = active_isa();
    return lut_levels_enabled() && (isa == Isa::Avx2 || isa == Isa::Neon) && lut_levels_apply(layout, k_bases);
#else
    (void)layout;
    (void)k_bases;
    return false;
#endif
}

void lut_gemm_levels(const LutWeights& w, int k_bases, const std::uint8_t* const* in, const float* x_scales, int m,
                     std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    if (!lut_levels_available(w.layout, k_bases)) throw std::logic_error("lut_gemm_levels: the levels path is not available");
#ifdef BITTTT_HAVE_AVX2_KERNEL
    lut_gemm_levels_avx2(w, k_bases, in, x_scales, m, r0, r1, y, ldy);
#elif defined(BITTTT_HAVE_NEON_KERNEL)
    // The sdot form where the CPU has the dot-product extension (decided once).
    static const bool dot = neon_dotprod_available();
    if (dot) return lut_gemm_levels_neon_dot(w, k_bases, in, x_scales, m, r0, r1, y, ldy);
    lut_gemm_levels_neon(w, k_bases, in, x_scales, m, r0, r1, y, ldy);
#else
    (void)in, (void)x_scales, (void)m, (void)r0, (void)r1, (void)y, (void)ldy;
#endif
}

void lut_gemm(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
              std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    const bool dense = w.layout.packing == Packing::Dense;
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (active_isa() == Isa::Avx2) {
        if (dense) return lut_gemm_dense_avx2(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
        return lut_gemm_avx2(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
    }
#endif
#ifdef BITTTT_HAVE_NEON_KERNEL
    if (active_isa() == Isa::Neon) {
        if (dense) return lut_gemm_dense_neon(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
        return lut_gemm_neon(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
    }
#endif
    for (int j = 0; j < m; ++j) {
        if (dense) {
            lut_gemv_dense_ref(w, k_bases, tables[j], x_scales[j], r0, r1, y + j * ldy);
        } else {
            lut_gemv_ref(w, k_bases, tables[j], x_scales[j], r0, r1, y + j * ldy);
        }
    }
}

void lut_gemv(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
              std::int64_t r1, float* y) {
    lut_gemm(w, k_bases, &tables, &x_scale, 1, r0, r1, y, 0);
}

}  // namespace bitttt::kernels
