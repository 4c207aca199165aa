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

const char* packing_name(Packing p);                          // "2bit" / "dense"
std::optional<Packing> packing_from_string(std::string_view s);

// Bytes of one packed group of `block_size` trits.
std::size_t group_bytes(Packing p, int block_size);

struct TernaryLayout {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    int bases = 1;        // N
    int block_size = 64;  // B
    Packing packing = Packing::TwoBit;

    std::int64_t blocks_per_row() const { return (cols + block_size - 1) / block_size; }
    std::size_t group_bytes() const { return bitttt::group_bytes(packing, block_size); }
    std::size_t block_bytes() const { return static_cast<std::size_t>(bases) * (2 + group_bytes()); }
    std::size_t row_bytes() const { return static_cast<std::size_t>(blocks_per_row()) * block_bytes(); }
    std::size_t total_bytes() const { return static_cast<std::size_t>(rows) * row_bytes(); }
    // Stored bits per weight of the tensor (scales included, padding included).
    double bits_per_weight() const;
    // Throws UsageError if block_size is unusable for the packing (< 4, > 4096,
    // not a multiple of 4 for 2bit) or bases not in 1..8.
    void validate() const;
};

// Packs `block_size` trits (each -1, 0 or +1) into group_bytes(p, block_size) bytes.
void pack_trits(Packing p, const std::int8_t* trits, int block_size, std::uint8_t* out);
// Unpacks group_bytes(p, block_size) bytes into `block_size` trits.
void unpack_trits(Packing p, const std::uint8_t* in, int block_size, std::int8_t* trits);

// Dense code helpers (exposed for tests and kernels).
std::uint8_t dense_encode5(const std::uint8_t codes[5]);  // codes in {0,1,2}, c_0 first
void dense_decode5(std::uint8_t q, std::uint8_t codes[5]);

// Reconstructs row `row` of a ternary tensor using its first `k_bases` bases, as float
// (the slow reference dequantisation).
void dequantize_row(const TernaryLayout& layout, const std::uint8_t* tensor_data, std::int64_t row,
                    int k_bases, float* out);

}  // namespace bitttt
