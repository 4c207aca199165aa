// Packing of trits into bytes and the reference dequantisation of the multi-base
// ternary layout (see include/bitttt/ternary.h for the byte layout).
#include "bitttt/ternary.h"

#include <algorithm>
#include <memory>
#include <string>

#include "bitttt/dtype.h"
#include "bitttt/error.h"

namespace bitttt {

namespace {

constexpr int kMinBlockSize = 4;
constexpr int kMaxBlockSize = 4096;
constexpr int kMaxBases = 8;

// 3^(4-d): weight of digit d in a dense byte (digit 0 is the most significant).
constexpr std::uint32_t kDensePow[5] = {81, 27, 9, 3, 1};

// Code of a trit: c = t + 1 in {0, 1, 2}. Anything outside {-1, 0, 1} is a caller bug;
// it is clamped rather than allowed to corrupt neighbouring digits.
// Branch-free (random trits would defeat the branch predictor).
inline std::uint32_t trit_code(std::int8_t t) {
    const int clamped = std::min(std::max(static_cast<int>(t), -1), 1);
    return static_cast<std::uint32_t>(clamped + 1);
}

}  // namespace

const char* packing_name(Packing p) {
    switch (p) {
        case Packing::TwoBit: return "2bit";
        case Packing::Dense: return "dense";
    }
    return "?";
}

std::optional<Packing> packing_from_string(std::string_view s) {
    if (s == "2bit") return Packing::TwoBit;
    if (s == "dense") return Packing::Dense;
    return std::nullopt;
}

const char* scale_mode_name(ScaleMode m) { return m == ScaleMode::Tied ? "tied" : "free"; }

std::optional<ScaleMode> scale_mode_from_string(std::string_view s) {
    if (s == "free") return ScaleMode::Free;
    if (s == "tied") return ScaleMode::Tied;
    return std::nullopt;
}

const char* scale_bits_name(int bits) { return bits == 8 ? "u8" : "f16"; }

std::optional<int> scale_bits_from_string(std::string_view s) {
    if (s == "f16" || s == "16") return 16;
    if (s == "u8" || s == "8") return 8;
    return std::nullopt;
}

float tied_multiplier(int k_bases) {
    double m = 1.0;
    for (int i = 1; i < k_bases; ++i) m /= 3.0;
    return static_cast<float>(m);
}

std::size_t group_bytes(Packing p, int block_size) {
    if (block_size <= 0) return 0;
    const auto b = static_cast<std::size_t>(block_size);
    // 2bit: 4 trits per byte. Valid layouts have block_size % 4 == 0 (validate()); the
    // ceiling only keeps pack/unpack memory-safe for a block size validate() rejects.
    // dense: 5 trits per byte (3^5 = 243 <= 256), i.e. 1.6 bits per trit.
    return p == Packing::TwoBit ? (b + 3) / 4 : (b + 4) / 5;
}

double TernaryLayout::bits_per_weight() const {
    const double weights = static_cast<double>(rows) * static_cast<double>(cols);
    if (weights <= 0) return 0.0;
    return static_cast<double>(total_bytes()) * 8.0 / weights;
}

void TernaryLayout::validate() const {
    if (block_size < kMinBlockSize || block_size > kMaxBlockSize) {
        throw UsageError("block size " + std::to_string(block_size) + " is out of range (allowed " +
                         std::to_string(kMinBlockSize) + ".." + std::to_string(kMaxBlockSize) + ")");
    }
    if (packing == Packing::TwoBit && block_size % 4 != 0) {
        throw UsageError("block size " + std::to_string(block_size) +
                         " is not allowed for 2bit packing (must be a multiple of 4 in " +
                         std::to_string(kMinBlockSize) + ".." + std::to_string(kMaxBlockSize) + ")");
    }
    if (bases < 1 || bases > kMaxBases) {
        throw UsageError("number of bases " + std::to_string(bases) + " is out of range (allowed 1.." +
                         std::to_string(kMaxBases) + ")");
    }
    if (scale_bits != 16 && scale_bits != 8) {
        throw UsageError("scale bits " + std::to_string(scale_bits) + " are not supported (allowed 16 or 8)");
    }
    if (rows < 0 || cols < 0) {
        throw UsageError("tensor shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                         "] is invalid (rows and cols must be >= 0)");
    }
}

float TernaryLayout::block_scale(const std::uint8_t* row, const std::uint8_t* blk, int m) const {
    if (!two_level()) return f16_to_f32(static_cast<std::uint16_t>(blk[2 * m] | (blk[2 * m + 1] << 8)));
    const float d = f16_to_f32(static_cast<std::uint16_t>(row[2 * m] | (row[2 * m + 1] << 8)));
    return d * static_cast<float>(blk[m]);
}

// ---- dense code ---------------------------------------------------------------------
//
// Five codes c_0..c_4 form v = sum c_d 3^(4-d) in [0, 243). The byte stores
// q = ceil(v * 256 / 243), i.e. v/243 as an 8-bit fixed-point fraction rounded up:
// q/256 = v/243 + e with 0 <= e < 1/256.
// Decoding digit d: q * 3^d / 256 = v * 3^d / 243 + e * 3^d. The fractional part of
// v * 3^d / 243 is 0.c_d c_{d+1} ... c_4 in base 3 (the mod 256 drops the digits before d),
// which is at most (c_d + 1)/3 - 1/3^(5-d). The error e * 3^d < 3^d / 256 < 1/3^(5-d)
// because 3^5 = 243 < 256, so it can never carry into the next digit, and
// ((q * 3^d mod 256) * 3) >> 8 = floor(3 * fraction) = c_d exactly. (The tests also check
// all 243 values exhaustively.)

std::uint8_t dense_encode5(const std::uint8_t codes[5]) {
    std::uint32_t v = 0;
    for (int d = 0; d < 5; ++d) v += static_cast<std::uint32_t>(codes[d]) * kDensePow[d];
    // v <= 242 for valid codes -> q <= 255.
    return static_cast<std::uint8_t>((v * 256u + 242u) / 243u);
}

void dense_decode5(std::uint8_t q, std::uint8_t codes[5]) {
    std::uint32_t x = q;
    for (int d = 0; d < 5; ++d) {
        // x = (q * 3^d) mod 256
        codes[d] = static_cast<std::uint8_t>(((x & 0xffu) * 3u) >> 8);
        x = (x & 0xffu) * 3u;
    }
}

// ---- packing -------------------------------------------------------------------------

void pack_trits(Packing p, const std::int8_t* trits, int block_size, std::uint8_t* out) {
    if (block_size <= 0) return;
    const int digits = p == Packing::TwoBit ? 4 : 5;
    const int g = static_cast<int>(group_bytes(p, block_size));
    // Codes of all digits * G slots; slots past the block hold code 1 (trit 0).
    std::uint8_t codes[kMaxBlockSize + 8];
    std::uint8_t* c = block_size <= kMaxBlockSize ? codes : nullptr;
    std::unique_ptr<std::uint8_t[]> big;  // only for block sizes validate() rejects
    if (c == nullptr) {
        big = std::make_unique<std::uint8_t[]>(static_cast<std::size_t>(digits) * g);
        c = big.get();
    }
    for (int i = 0; i < block_size; ++i) c[i] = static_cast<std::uint8_t>(trit_code(trits[i]));
    for (int i = block_size; i < digits * g; ++i) c[i] = 1;

    if (p == Packing::TwoBit) {
        // Byte i holds positions i, i+G, i+2G, i+3G in bits [0,2), [2,4), [4,6), [6,8).
        for (int i = 0; i < g; ++i) {
            out[i] = static_cast<std::uint8_t>(c[i] | (c[i + g] << 2) | (c[i + 2 * g] << 4) | (c[i + 3 * g] << 6));
        }
    } else {
        // Byte i holds positions i, i+G, ..., i+4G as digits c_0..c_4.
        for (int i = 0; i < g; ++i) {
            const std::uint32_t v = c[i] * kDensePow[0] + c[i + g] * kDensePow[1] + c[i + 2 * g] * kDensePow[2] +
                                    c[i + 3 * g] * kDensePow[3] + c[i + 4 * g] * kDensePow[4];
            out[i] = static_cast<std::uint8_t>((v * 256u + 242u) / 243u);
        }
    }
}

void unpack_trits(Packing p, const std::uint8_t* in, int block_size, std::int8_t* trits) {
    const int g = static_cast<int>(group_bytes(p, block_size));
    if (p == Packing::TwoBit) {
        for (int i = 0; i < g; ++i) {
            const std::uint32_t byte = in[i];
            for (int d = 0; d < 4; ++d) {
                const int pos = i + d * g;
                if (pos >= block_size) break;
                const std::uint32_t c = (byte >> (2 * d)) & 3u;
                // Code 3 is never written; a corrupt byte reads it as trit 0.
                trits[pos] = static_cast<std::int8_t>(c == 3u ? 0 : static_cast<int>(c) - 1);
            }
        }
    } else {
        for (int i = 0; i < g; ++i) {
            std::uint8_t codes[5];
            dense_decode5(in[i], codes);  // always yields codes in {0, 1, 2}
            for (int d = 0; d < 5; ++d) {
                const int pos = i + d * g;
                if (pos >= block_size) break;
                trits[pos] = static_cast<std::int8_t>(static_cast<int>(codes[d]) - 1);
            }
        }
    }
}

// The tiles arrangement's versions (ternary_tiles.cpp).
std::int64_t find_nonfinite_scale_tiles(const TernaryLayout& l, const std::uint8_t* data);
void dequantize_row_tiles(const TernaryLayout& l, const std::uint8_t* data, std::int64_t row, int k_bases, float* out);

std::int64_t find_nonfinite_scale(const TernaryLayout& layout, const std::uint8_t* tensor_data) {
    if (layout.tiled()) return find_nonfinite_scale_tiles(layout, tensor_data);
    // binary16 with exponent bits 0x7C00 all set is inf or NaN; 8-bit sub-scales are integers.
    auto bad = [](const std::uint8_t* p) { return (p[1] & 0x7C) == 0x7C; };
    const int m = layout.scale_count();
    const std::int64_t nb = layout.blocks_per_row();
    for (std::int64_t r = 0; r < layout.rows; ++r) {
        const std::uint8_t* row = tensor_data + static_cast<std::size_t>(r) * layout.row_bytes();
        if (layout.two_level()) {
            for (int k = 0; k < m; ++k) {
                if (bad(row + 2 * k)) return r;
            }
            continue;
        }
        for (std::int64_t b = 0; b < nb; ++b) {
            const std::uint8_t* blk = row + layout.block_offset(b);
            for (int k = 0; k < m; ++k) {
                if (bad(blk + 2 * k)) return r;
            }
        }
    }
    return -1;
}

// ---- reference dequantisation ----------------------------------------------------------

void dequantize_row(const TernaryLayout& layout, const std::uint8_t* tensor_data, std::int64_t row,
                    int k_bases, float* out) {
    layout.validate();
    if (row < 0 || row >= layout.rows) {
        throw UsageError("row " + std::to_string(row) + " is out of range (allowed 0.." +
                         std::to_string(layout.rows - 1) + ")");
    }
    if (k_bases < 0 || k_bases > layout.bases) {
        throw UsageError("number of bases to use " + std::to_string(k_bases) +
                         " is out of range (allowed 0.." + std::to_string(layout.bases) + ")");
    }
    if (layout.tiled()) return dequantize_row_tiles(layout, tensor_data, row, k_bases, out);
    const int bs = layout.block_size;
    const std::size_t gb = layout.group_bytes();
    const std::int64_t nblocks = layout.blocks_per_row();
    const std::uint8_t* row_data = tensor_data + static_cast<std::size_t>(row) * layout.row_bytes();

    std::fill(out, out + layout.cols, 0.0f);
    if (k_bases == 0) return;
    std::int8_t trits[kMaxBlockSize];
    std::int32_t level[kMaxBlockSize];
    const float tied_mult = tied_multiplier(k_bases);
    for (std::int64_t b = 0; b < nblocks; ++b) {
        const std::uint8_t* blk = row_data + layout.block_offset(b);
        const std::uint8_t* groups = blk + layout.block_scale_bytes();
        const std::int64_t first = b * bs;
        const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, layout.cols - first));
        float* o = out + first;
        if (layout.tied()) {
            // One integer level per weight, one float multiply (the kernels' order).
            std::fill(level, level + n_valid, 0);
            for (int k = 0; k < k_bases; ++k) {
                unpack_trits(layout.packing, groups + k * gb, bs, trits);
                const std::int32_t w = tied_weight(k_bases, k);
                for (int j = 0; j < n_valid; ++j) level[j] += w * trits[j];
            }
            const float s = layout.block_scale(row_data, blk, 0) * tied_mult;
            for (int j = 0; j < n_valid; ++j) o[j] = s * static_cast<float>(level[j]);
            continue;
        }
        for (int k = 0; k < k_bases; ++k) {
            const float s = layout.block_scale(row_data, blk, k);
            unpack_trits(layout.packing, groups + k * gb, bs, trits);
            for (int j = 0; j < n_valid; ++j) o[j] += s * static_cast<float>(trits[j]);
        }
    }
}

}  // namespace bitttt
