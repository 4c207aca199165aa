// Packed ternary tensors for the kernel tests (shared by the maddubs and LUT kernel tests).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/ternary.h"

namespace bitttt::test {

enum class Fill { Random, Raw, AllPlus, AllMinus, EveryByte };

// A packed tensor: random trits, random bytes (corrupt 2bit codes, dense bytes > 242), all
// +1 or all -1 trits, or group bytes cycling through all 256 values. Scales random finite
// (normal, subnormal, negative, zero): one per block for tied layouts, N for free ones;
// two-level layouts get random super-scales of that kind and random 8-bit sub-scales.
inline std::vector<std::uint8_t> make_tensor(const TernaryLayout& l, std::mt19937& rng, Fill fill) {
    std::vector<std::uint8_t> data(l.total_bytes());
    std::uniform_int_distribution<int> trit(-1, 1), byte(0, 255), kind(0, 9);
    std::uniform_real_distribution<float> mag(1e-3f, 4.0f);
    const std::size_t gb = l.group_bytes();
    std::vector<std::int8_t> t(static_cast<std::size_t>(l.block_size));
    unsigned counter = static_cast<unsigned>(byte(rng));
    auto random_f16 = [&](std::uint8_t* p) {
        const int kd = kind(rng);
        std::uint16_t h = f32_to_f16(kd == 0 ? -mag(rng) : mag(rng));
        if (kd == 1) h = static_cast<std::uint16_t>(byte(rng) | 1);  // subnormal
        if (kd == 2) h = 0;
        p[0] = static_cast<std::uint8_t>(h & 0xFF);
        p[1] = static_cast<std::uint8_t>(h >> 8);
    };
    for (std::int64_t r = 0; r < l.rows; ++r) {
        std::uint8_t* row = data.data() + r * l.row_bytes();
        // Two-level: random super-scales per row, random 8-bit sub-scales (0 and 255 included).
        if (l.two_level()) {
            for (int k = 0; k < l.scale_count(); ++k) random_f16(row + 2 * k);
        }
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            std::uint8_t* blk = row + l.block_offset(b);
            for (int k = 0; k < l.scale_count(); ++k) {
                if (l.two_level()) {
                    blk[k] = static_cast<std::uint8_t>(kind(rng) == 0 ? (byte(rng) & 1) * 255 : byte(rng));
                } else {
                    random_f16(blk + 2 * k);
                }
            }
            for (int k = 0; k < l.bases; ++k) {
                std::uint8_t* grp = blk + l.block_scale_bytes() + k * gb;
                switch (fill) {
                    case Fill::Raw:
                        for (std::size_t j = 0; j < gb; ++j) grp[j] = static_cast<std::uint8_t>(byte(rng));
                        break;
                    case Fill::EveryByte:
                        for (std::size_t j = 0; j < gb; ++j) grp[j] = static_cast<std::uint8_t>(counter++);
                        break;
                    default:
                        for (auto& v : t) {
                            v = static_cast<std::int8_t>(fill == Fill::AllPlus    ? 1
                                                         : fill == Fill::AllMinus ? -1
                                                                                  : trit(rng));
                        }
                        pack_trits(l.packing, t.data(), l.block_size, grp);
                }
            }
        }
    }
    return data;
}

}  // namespace bitttt::test
