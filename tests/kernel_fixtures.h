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
// (normal, subnormal, negative, zero): one per block for tied layouts, N for free ones.
inline std::vector<std::uint8_t> make_tensor(const TernaryLayout& l, std::mt19937& rng, Fill fill) {
    std::vector<std::uint8_t> data(l.total_bytes());
    std::uniform_int_distribution<int> trit(-1, 1), byte(0, 255), kind(0, 9);
    std::uniform_real_distribution<float> mag(1e-3f, 4.0f);
    const std::size_t gb = l.group_bytes();
    std::vector<std::int8_t> t(static_cast<std::size_t>(l.block_size));
    unsigned counter = static_cast<unsigned>(byte(rng));
    for (std::int64_t r = 0; r < l.rows; ++r) {
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            std::uint8_t* blk = data.data() + r * l.row_bytes() + b * l.block_bytes();
            for (int k = 0; k < l.scale_count(); ++k) {
                const int kd = kind(rng);
                std::uint16_t h = f32_to_f16(kd == 0 ? -mag(rng) : mag(rng));
                if (kd == 1) h = static_cast<std::uint16_t>(byte(rng) | 1);  // subnormal
                if (kd == 2) h = 0;
                blk[2 * k] = static_cast<std::uint8_t>(h & 0xFF);
                blk[2 * k + 1] = static_cast<std::uint8_t>(h >> 8);
            }
            for (int k = 0; k < l.bases; ++k) {
                std::uint8_t* grp = blk + 2 * l.scale_count() + k * gb;
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
