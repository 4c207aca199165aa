#include <algorithm>
#include <cmath>
#include <limits>

#include "bitttt/dtype.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"

namespace bitttt::kernels {

float quantize_int8(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (active_isa() == Isa::Avx2) return quantize_int8_avx2(x, n, q, n_padded);
#endif
    return quantize_int8_ref(x, n, q, n_padded);
}

float quantize_int8_ref(const float* x, std::int64_t n, std::int8_t* q, std::int64_t n_padded) {
    float amax = 0.0f;
    bool finite = true;
    for (std::int64_t i = 0; i < n; ++i) {
        const float a = std::fabs(x[i]);
        finite &= a <= std::numeric_limits<float>::max();  // false for NaN and infinity
        amax = std::max(amax, a);
    }
    if (!finite) {
        // A model whose values overflowed: the row becomes NaN (a NaN scale over zeros), so
        // that everything computed from it is NaN too and the caller's check of the output
        // reports it, rather than a silently finite wrong answer.
        std::fill(q, q + n_padded, std::int8_t{0});
        return std::numeric_limits<float>::quiet_NaN();
    }
    if (!(amax > 0.0f)) {
        std::fill(q, q + n_padded, std::int8_t{0});
        return 0.0f;
    }
    const float inv = 127.0f / amax;
    if (inv <= std::numeric_limits<float>::max()) {
        for (std::int64_t i = 0; i < n; ++i) {
            const float v = std::nearbyint(x[i] * inv);
            q[i] = static_cast<std::int8_t>(std::clamp(v, -127.0f, 127.0f));
        }
    } else {
        // amax below 127 / FLT_MAX (a subnormal row; a fuzzer finding): 127 / amax is
        // infinite and 0 * inf NaN, so divide first (|x / amax| <= 1).
        for (std::int64_t i = 0; i < n; ++i) {
            const float v = std::nearbyint(x[i] / amax * 127.0f);
            q[i] = static_cast<std::int8_t>(std::clamp(v, -127.0f, 127.0f));
        }
    }
    std::fill(q + n, q + n_padded, std::int8_t{0});
    return amax / 127.0f;
}

namespace {

// Unpacks one group into trits t[0..block_size) (the digit loops vectorise).
void unpack_group(Packing p, const std::uint8_t* group, int block_size, std::int8_t* t) {
    const int g = static_cast<int>(group_bytes(p, block_size));
    if (p == Packing::TwoBit) {
        for (int d = 0; d < 4; ++d) {
            std::int8_t* td = t + g * d;
            for (int j = 0; j < g; ++j) td[j] = static_cast<std::int8_t>(((group[j] >> (2 * d)) & 3) - 1);
        }
        return;
    }
    // Dense: digit d of byte q is (((q * 3^d) mod 256) * 3) >> 8; slots past block_size are
    // padding and are not written.
    static constexpr std::uint16_t kPow3[5] = {1, 3, 9, 27, 81};
    for (int d = 0; d < 5; ++d) {
        const int n = std::min(g, block_size - g * d);
        std::int8_t* td = t + g * d;
        for (int j = 0; j < n; ++j) {
            const std::uint16_t m = static_cast<std::uint16_t>((group[j] * kPow3[d]) & 0xFF);
            td[j] = static_cast<std::int8_t>(((m * 3) >> 8) - 1);
        }
    }
}

}  // namespace

std::int32_t ternary_block_dot_ref(Packing p, const std::uint8_t* group, int block_size, const std::int8_t* q) {
    std::int8_t t[4096];
    unpack_group(p, group, block_size, t);
    // Add the activations whose trit is +1, subtract those whose trit is -1.
    std::int32_t sum = 0;
    // Branch-free (random trits defeat a branch predictor): masks select the value.
    for (int i = 0; i < block_size; ++i) {
        const std::int32_t v = q[i];
        const std::int32_t plus = -static_cast<std::int32_t>(t[i] > 0);
        const std::int32_t minus = -static_cast<std::int32_t>(t[i] < 0);
        sum += (v & plus) - (v & minus);
    }
    return sum;
}

void ternary_gemv_ref(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                      float x_scale, std::int64_t r0, std::int64_t r1, float* y) {
    const int bs = layout.block_size;
    const std::size_t gb = layout.group_bytes();
    const std::size_t groups = layout.block_scale_bytes();  // offset of group 0
    const std::int64_t nblocks = layout.blocks_per_row();
    const bool tied = layout.tied();
    const float tied_mult = tied_multiplier(k_bases);
    for (std::int64_t r = r0; r < r1; ++r) {
        const std::uint8_t* row = data + static_cast<std::size_t>(r) * layout.row_bytes();
        float acc = 0.0f;
        for (std::int64_t b = 0; b < nblocks; ++b) {
            const std::uint8_t* blk = row + layout.block_offset(b);
            const std::int8_t* qb = q + b * bs;
            if (tied) {
                // One exact integer level sum (Horner: 3^(K-1-k) weights), one float multiply.
                if (k_bases <= 0) continue;
                std::int32_t level = 0;
                for (int k = 0; k < k_bases; ++k) {
                    level = 3 * level + ternary_block_dot_ref(layout.packing, blk + groups + k * gb, bs, qb);
                }
                acc += (layout.block_scale(row, blk, 0) * tied_mult) * static_cast<float>(level);
                continue;
            }
            for (int k = 0; k < k_bases; ++k) {
                const std::int32_t dot = ternary_block_dot_ref(layout.packing, blk + groups + k * gb, bs, qb);
                acc += layout.block_scale(row, blk, k) * static_cast<float>(dot);
            }
        }
        y[r - r0] = acc * x_scale;
    }
}

void ternary_gemm_ref(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const TernaryInput* const* in,
                      int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    for (int j = 0; j < m; ++j) {
        ternary_gemv_ref(layout, data, k_bases, in[j]->q.data(), in[j]->scale, r0, r1, y + j * ldy);
    }
}

}  // namespace bitttt::kernels
