// Portable parts of the lookup-table GEMV (design (b), see ternary_lut.h): the weight
// repacking, the reference table build, and a scalar GEMV over the repacked layout.
#include <algorithm>
#include <cstring>

#include "bitttt/dtype.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_lut.h"
#include "util/thread_pool.h"

namespace bitttt::kernels {

namespace {

// Trits of one .btt group, decoded exactly as the reference kernel does (ternary_gemv_scalar.cpp):
// a corrupt 2bit code 3 (t = 2) counts as +1 there, so it becomes +1 here.
void decode_group(Packing p, const std::uint8_t* group, int block_size, std::int8_t* t) {
    const int g = static_cast<int>(group_bytes(p, block_size));
    if (p == Packing::TwoBit) {
        for (int d = 0; d < 4; ++d) {
            for (int j = 0; j < g; ++j) {
                const int v = ((group[j] >> (2 * d)) & 3) - 1;
                t[g * d + j] = static_cast<std::int8_t>(std::min(v, 1));
            }
        }
        return;
    }
    static constexpr int kPow3[5] = {1, 3, 9, 27, 81};
    for (int d = 0; d < 5; ++d) {
        const int n = std::min(g, block_size - g * d);
        for (int j = 0; j < n; ++j) {
            const int m = (group[j] * kPow3[d]) & 0xFF;
            t[g * d + j] = static_cast<std::int8_t>(((m * 3) >> 8) - 1);
        }
    }
}

// The trit of a 2-bit nibble code (0, 1, 2 = -1, 0, +1; 3, never written, as +1).
constexpr int code_trit(int c) { return c == 0 ? -1 : c == 1 ? 0 : 1; }

// Where one trit's code is read from in a 2bit group.
struct Source {
    std::uint16_t byte;
    std::uint8_t shift;
};
constexpr std::size_t kMaxDirectGroup = 1024;  // group bytes handled by the fast path

// Every byte with each 2-bit field clamped to 2 (code 3, never written, reads as +1).
struct ClampTable {
    std::uint8_t v[256];
    constexpr ClampTable() : v() {
        for (int b = 0; b < 256; ++b) {
            int out = 0;
            for (int d = 0; d < 4; ++d) out |= std::min((b >> (2 * d)) & 3, 2) << (2 * d);
            v[b] = static_cast<std::uint8_t>(out);
        }
    }
};
constexpr ClampTable kClamp;

// Re-lays tiles [t0, t1) of w (w.data sized, contents unset: every byte is written).
void repack_tiles(LutWeights& w, const std::uint8_t* data, std::int64_t t0, std::int64_t t1) {
    const TernaryLayout& layout = w.layout;
    const int n = layout.bases;
    const int n_scales = layout.scale_count();  // N (free) or 1 (tied)
    const int bs = layout.block_size;
    const std::int64_t nb = layout.blocks_per_row();
    const std::size_t gb = layout.group_bytes();
    const std::size_t s_bytes = static_cast<std::size_t>(w.code_bytes);
    std::vector<std::int8_t> t(s_bytes * 4, 0);  // positions >= B stay 0
    // Fast path: where each position's 2-bit code sits in the .btt group (byte p % G,
    // bits 2 (p / G)), for every position p of a block.
    const bool direct = layout.packing == Packing::TwoBit && bs % 4 == 0 && gb <= kMaxDirectGroup;
    std::vector<Source> sources;
    if (direct) {
        for (int p = 0; p < bs; ++p) {
            sources.push_back({static_cast<std::uint16_t>(p % static_cast<int>(gb)),
                               static_cast<std::uint8_t>(2 * (p / static_cast<int>(gb)))});
        }
    }
    const bool two_level = layout.two_level();
    for (std::int64_t tile = t0; tile < t1; ++tile) {
        if (two_level) {
            // The tile's super-scales as floats (exact); padding rows keep 0.
            float* sup = w.row_super.data() +
                         static_cast<std::size_t>(tile) * kLutTileRows * static_cast<std::size_t>(n_scales);
            for (int lane = 0; lane < kLutTileRows; ++lane) {
                const std::int64_t r = tile * kLutTileRows + lane;
                for (int k = 0; k < n_scales; ++k) {
                    float d = 0.0f;
                    if (r < layout.rows) {
                        const std::uint8_t* h = data + static_cast<std::size_t>(r) * layout.row_bytes() + 2 * k;
                        d = f16_to_f32(static_cast<std::uint16_t>(h[0] | h[1] << 8));
                    }
                    sup[k * kLutTileRows + lane] = d;
                }
            }
        }
        for (std::int64_t b = 0; b < nb; ++b) {
            std::uint8_t* dst = w.data.data() + (static_cast<std::size_t>(tile) * static_cast<std::size_t>(nb) +
                                                 static_cast<std::size_t>(b)) * w.tblock_bytes;
            std::uint8_t* codes = dst + w.codes_offset();
            // Padding rows: zero scales and zero trits (code 0x55).
            std::memset(dst, 0, w.codes_offset());
            std::memset(codes, 0x55, static_cast<std::size_t>(n) * kLutTileRows * s_bytes);
            for (int lane = 0; lane < kLutTileRows; ++lane) {
                const std::int64_t r = tile * kLutTileRows + lane;
                if (r >= layout.rows) break;
                const std::uint8_t* blk = data + static_cast<std::size_t>(r) * layout.row_bytes() + layout.block_offset(b);
                for (int k = 0; k < n_scales; ++k) {
                    if (two_level) {
                        dst[k * kLutTileRows + lane] = blk[k];
                    } else {
                        dst[2 * (k * kLutTileRows + lane)] = blk[2 * k];
                        dst[2 * (k * kLutTileRows + lane) + 1] = blk[2 * k + 1];
                    }
                }
                for (int k = 0; k < n; ++k) {
                    const std::uint8_t* group = blk + layout.block_scale_bytes() + k * gb;
                    std::uint8_t* c = codes + static_cast<std::size_t>(k) * s_bytes * kLutTileRows + lane;
                    if (direct) {
                        // 2bit with B % 4 == 0: move each 2-bit code straight to its new place
                        // (code 3 clamped to 2 first, as the reference reads it as +1).
                        std::uint8_t fixed[kMaxDirectGroup];
                        for (std::size_t j = 0; j < gb; ++j) fixed[j] = kClamp.v[group[j]];
                        const Source* src = sources.data();
                        for (std::size_t s = 0; s < s_bytes; ++s, src += 4) {
                            c[s * kLutTileRows] = static_cast<std::uint8_t>(
                                ((fixed[src[0].byte] >> src[0].shift) & 3) |
                                ((fixed[src[1].byte] >> src[1].shift) & 3) << 2 |
                                ((fixed[src[2].byte] >> src[2].shift) & 3) << 4 |
                                ((fixed[src[3].byte] >> src[3].shift) & 3) << 6);
                        }
                        continue;
                    }
                    decode_group(layout.packing, group, bs, t.data());
                    for (std::size_t s = 0; s < s_bytes; ++s) {
                        const std::int8_t* ts = t.data() + 4 * s;
                        c[s * kLutTileRows] =
                            static_cast<std::uint8_t>((ts[0] + 1) | (ts[1] + 1) << 2 | (ts[2] + 1) << 4 | (ts[3] + 1) << 6);
                    }
                }
            }
        }
    }
}

}  // namespace

LutWeights lut_repack(const TernaryLayout& layout, const std::uint8_t* data, ThreadPool* pool) {
    LutWeights w;
    w.layout = layout;
    w.tiles = (layout.rows + kLutTileRows - 1) / kLutTileRows;
    w.code_bytes = (layout.block_size + 3) / 4;
    w.tblock_bytes = kLutTileRows * (layout.block_scale_bytes() +
                                     static_cast<std::size_t>(layout.bases) * static_cast<std::size_t>(w.code_bytes));
    w.data.resize(static_cast<std::size_t>(w.tiles) * static_cast<std::size_t>(layout.blocks_per_row()) * w.tblock_bytes);
    if (layout.two_level()) {
        w.row_super.resize(static_cast<std::size_t>(w.tiles) * kLutTileRows * static_cast<std::size_t>(layout.scale_count()));
    }
    if (pool != nullptr) {
        // Tiles write disjoint parts of w.data: the result does not depend on the thread count.
        pool->parallel_for(w.tiles, 8, [&](std::int64_t t0, std::int64_t t1) { repack_tiles(w, data, t0, t1); });
    } else {
        repack_tiles(w, data, 0, w.tiles);
    }
    return w;
}

std::size_t lut_table_bytes(const TernaryLayout& layout) {
    return static_cast<std::size_t>(layout.blocks_per_row()) * static_cast<std::size_t>((layout.block_size + 3) / 4) *
           64;
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
    const std::int64_t nb = w.layout.blocks_per_row();
    const std::size_t s_bytes = static_cast<std::size_t>(w.code_bytes);
    const bool tied = w.layout.tied();
    const bool two_level = w.layout.two_level();
    const float tied_mult = tied_multiplier(k_bases);
    auto entry = [](const std::uint8_t* rec, int half, int idx) {
        return 16 * static_cast<std::int8_t>(rec[32 + 16 * half + idx]) + rec[16 * half + idx];
    };
    for (std::int64_t r = r0; r < r1; ++r) {
        const std::int64_t tile = r / kLutTileRows;
        const std::size_t lane = static_cast<std::size_t>(r % kLutTileRows);
        // The exact scale of slot m in tile block tb: f16(s), or d * float(u) (the reference's
        // block_scale, one rounding-free multiply).
        auto scale = [&](const std::uint8_t* tb, std::size_t m) {
            const std::size_t i = m * kLutTileRows + lane;
            if (two_level) return w.supers(tile)[i] * static_cast<float>(tb[i]);
            return f16_to_f32(static_cast<std::uint16_t>(tb[2 * i] | tb[2 * i + 1] << 8));
        };
        float acc = 0.0f;
        for (std::int64_t b = 0; b < nb; ++b) {
            const std::uint8_t* tb = w.tblock(tile, b);
            const std::uint8_t* codes = tb + w.codes_offset();
            const std::uint8_t* tab = tables + static_cast<std::size_t>(b) * s_bytes * 64;
            std::int32_t level = 0;  // tied: sum_k 3^(K-1-k) * dot_k (Horner), exact
            for (std::size_t k = 0; k < static_cast<std::size_t>(k_bases); ++k) {
                std::int32_t dot = 0;
                for (std::size_t s = 0; s < s_bytes; ++s) {
                    const int c = codes[(k * s_bytes + s) * kLutTileRows + lane];
                    dot += entry(tab + 64 * s, 0, c & 15) + entry(tab + 64 * s, 1, c >> 4);
                }
                if (tied) {
                    level = 3 * level + dot;
                    continue;
                }
                acc += scale(tb, k) * static_cast<float>(dot);
            }
            if (tied && k_bases > 0) acc += (scale(tb, 0) * tied_mult) * static_cast<float>(level);
        }
        y[r - r0] = acc * x_scale;
    }
}

void lut_prepare(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (active_isa() == Isa::Avx2) return lut_prepare_avx2(layout, q, tables);
#endif
    lut_prepare_ref(layout, q, tables);
}

void lut_gemm(const LutWeights& w, int k_bases, const std::uint8_t* const* tables, const float* x_scales, int m,
              std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (active_isa() == Isa::Avx2) return lut_gemm_avx2(w, k_bases, tables, x_scales, m, r0, r1, y, ldy);
#endif
    for (int j = 0; j < m; ++j) lut_gemv_ref(w, k_bases, tables[j], x_scales[j], r0, r1, y + j * ldy);
}

void lut_gemv(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
              std::int64_t r1, float* y) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (active_isa() == Isa::Avx2) return lut_gemv_avx2(w, k_bases, tables, x_scale, r0, r1, y);
#endif
    lut_gemv_ref(w, k_bases, tables, x_scale, r0, r1, y);
}

}  // namespace bitttt::kernels
