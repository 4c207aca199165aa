// The packed multi-base ternary layout shared by the converter (writes it) and the
// engine (reads it). See docs/FORMAT.md for the byte-level description.
//
// A ternary tensor W [rows, cols] is stored as W ~= sum_k s_k(block) * T_k, k = 1..N.
// Each row is cut into blocks of `block_size` consecutive weights along the input
// dimension; the last block of a row is padded with zero trits when cols is not a
// multiple of block_size. Every block has the same byte size:
//
//   block := scale[0..N)  (N x IEEE binary16, little-endian)
//            group[0..N)  (N x group_bytes(packing, block_size) packed trits)
//
// A row is blocks_per_row consecutive blocks; the tensor is rows consecutive rows.
// Bases are in order of significance: a reader may use only the first K <= N.
//
// Tied scales (ScaleMode::Tied): a block stores ONE binary16 scale s, and base k
// (0-based) has the scale s / 3^k, so the N bases are the balanced-ternary digits of one
// integer level in [-(3^N-1)/2, (3^N-1)/2] on a uniform grid of step s / 3^(N-1):
//
//   block := scale (1 x binary16)  group[0..N)
//
// With the first K bases, a block contributes (f16(s) * tied_multiplier(K)) * I, where
// I = sum_{k<K} 3^(K-1-k) * I_k is an exact integer combination of the per-base integer
// sums I_k and tied_multiplier(K) = (float)3^-(K-1); kernels and the reference compute
// exactly this (one float multiply per block), so results are bit-identical.
//
// Two-level scales (scale_bits = 8): every scale slot m (m < M; M = N free, 1 tied) of a
// row has one binary16 super-scale d_m, stored in front of the row's blocks, and each
// block stores an unsigned 8-bit sub-scale u in place of each binary16 scale:
//
//   row   := d[0..M) (M x binary16)  block[0..blocks_per_row)
//   block := u[0..M) (M x uint8)     group[0..N)
//
// The block's scale in slot m is exactly f16(d_m) * float(u_m) (an 11-bit by 8-bit
// product: exact in binary32), and everything downstream uses that value where a
// binary16 scale would be (block_scale() below; the same float order in every kernel).
//
// Trit position p (0 <= p < block_size) of a group lives in byte (p % G), digit (p / G),
// where G = group_bytes. Codes are c = t + 1 in {0, 1, 2}.
//   2bit : G = block_size / 4 (block_size must be a multiple of 4); digit d is bits [2d, 2d+2).
//   dense: G = ceil(block_size / 5); a byte holds 5 digits c_0..c_4 (c_0 most significant)
//          as q = ceil(v * 256 / 243) with v = sum_d c_d * 3^(4-d), so that
//          c_d = (((q * 3^d) mod 256) * 3) >> 8. Slots p >= block_size hold code 1 (t = 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bitttt {

enum class Packing { TwoBit, Dense };
enum class ScaleMode { Free, Tied };

const char* packing_name(Packing p);                          // "2bit" / "dense"
std::optional<Packing> packing_from_string(std::string_view s);
const char* scale_mode_name(ScaleMode m);                     // "free" / "tied"
std::optional<ScaleMode> scale_mode_from_string(std::string_view s);

// (float)3^-(k_bases-1): the block multiplier of tied scales with the first k_bases bases
// (see above). 1 <= k_bases <= 8.
float tied_multiplier(int k_bases);
// 3^(k_bases-1-k): the integer weight of base k's block sum with the first k_bases bases.
inline std::int32_t tied_weight(int k_bases, int k) {
    std::int32_t w = 1;
    for (int i = k + 1; i < k_bases; ++i) w *= 3;
    return w;
}

// Bytes of one packed group of `block_size` trits.
std::size_t group_bytes(Packing p, int block_size);

struct TernaryLayout {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    int bases = 1;        // N
    int block_size = 64;  // B
    Packing packing = Packing::TwoBit;
    ScaleMode scales = ScaleMode::Free;
    int scale_bits = 16;  // 16: a binary16 scale per block and slot; 8: two-level (above)

    std::int64_t blocks_per_row() const { return (cols + block_size - 1) / block_size; }
    std::size_t group_bytes() const { return bitttt::group_bytes(packing, block_size); }
    bool tied() const { return scales == ScaleMode::Tied; }
    bool two_level() const { return scale_bits == 8; }
    // Scale slots per block: N (free) or 1 (tied).
    int scale_count() const { return tied() ? 1 : bases; }
    // Bytes of a block's scales: the groups start here (2 or 1 byte per slot).
    std::size_t block_scale_bytes() const {
        return (two_level() ? 1u : 2u) * static_cast<std::size_t>(scale_count());
    }
    // Bytes in front of a row's blocks: the super-scales (two-level), else none.
    std::size_t row_header_bytes() const { return two_level() ? 2 * static_cast<std::size_t>(scale_count()) : 0; }
    std::size_t block_bytes() const {
        return block_scale_bytes() + static_cast<std::size_t>(bases) * group_bytes();
    }
    std::size_t row_bytes() const {
        return row_header_bytes() + static_cast<std::size_t>(blocks_per_row()) * block_bytes();
    }
    // Offset of block b within its row.
    std::size_t block_offset(std::int64_t b) const {
        return row_header_bytes() + static_cast<std::size_t>(b) * block_bytes();
    }
    std::size_t total_bytes() const { return static_cast<std::size_t>(rows) * row_bytes(); }
    // Stored bits per weight of the tensor (scales included, padding included).
    double bits_per_weight() const;
    // Throws UsageError if block_size is unusable for the packing (< 4, > 4096,
    // not a multiple of 4 for 2bit), bases not in 1..8 or scale_bits not 16 or 8.
    void validate() const;

    // The exact scale of slot m of a block (`row` and `blk` point at the row and the
    // block): f16(s) for 16-bit scales, f16(d_m) * float(u_m) for two-level ones.
    float block_scale(const std::uint8_t* row, const std::uint8_t* blk, int m) const;
};

// Bits 16 / 8 by name ("f16" / "u8") and back.
const char* scale_bits_name(int bits);
std::optional<int> scale_bits_from_string(std::string_view s);

// Packs `block_size` trits (each -1, 0 or +1) into group_bytes(p, block_size) bytes.
void pack_trits(Packing p, const std::int8_t* trits, int block_size, std::uint8_t* out);
// Unpacks group_bytes(p, block_size) bytes into `block_size` trits.
void unpack_trits(Packing p, const std::uint8_t* in, int block_size, std::int8_t* trits);

// Dense code helpers (exposed for tests and kernels).
std::uint8_t dense_encode5(const std::uint8_t codes[5]);  // codes in {0,1,2}, c_0 first
void dense_decode5(std::uint8_t q, std::uint8_t codes[5]);

// The first row holding a scale that is infinite or NaN (binary16 exponent all ones; for
// two-level layouts a super-scale), or -1. Reads every block's scale bytes once.
std::int64_t find_nonfinite_scale(const TernaryLayout& layout, const std::uint8_t* tensor_data);

// Reconstructs row `row` of a ternary tensor using its first `k_bases` bases, as float
// (the slow reference dequantisation).
void dequantize_row(const TernaryLayout& layout, const std::uint8_t* tensor_data, std::int64_t row,
                    int k_bases, float* out);

}  // namespace bitttt
