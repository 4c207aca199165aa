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
//
// Arrangements. Everything above is the `rows` arrangement: a row's blocks are contiguous,
// bases interleaved per block. The `tiles` arrangement (format version 3) stores the same
// trits and scales in the order the lookup-table kernel reads them, so the engine maps
// the file and computes on it in place (docs/FORMAT.md, "The tiles arrangement"):
//
//   tensor := supers[M][tiles][32]          binary16 super-scales (two-level only)
//             scales[M][tiles][nb][32]      binary16 (or uint8 sub-scales), slot m of 32 rows
//             codes[N][tiles][nb][C][32]    base k's code bytes of 32 rows, byte c of row
//                                           lane i at c * 32 + i
//
// where tiles = ceil(rows / 32) (the last tile padded with zero trits and zero scales),
// nb = blocks_per_row and C = tile_code_bytes(). Sections are slot-major and base-major,
// so a reader of the first K bases touches only their planes. Codes per row, block, base:
//   2bit : C = ceil(B / 4); byte s holds positions 4s .. 4s+3 in bits [0,2) .. [6,8)
//          (codes 0, 1, 2 = -1, 0, +1; positions >= B hold code 1).
//   dense: triple g = positions 3g, 3g+1, 3g+2 (T = ceil(B / 3) triples; positions >= B
//          are 0) is v = 9 t0 + 3 t1 + t2 in [-13, 13], stored as the index |v| (4 bits)
//          and the sign v < 0 (1 bit): C = ceil(T / 2) index bytes (byte j: triple 2j in
//          bits [0,4), 2j+1 in [4,8)) then ceil(T / 8) sign bytes (byte j: bit i = triple
//          8j + i negative). 5 bits per 3 trits: exactly 5/3 bits per trit when B is a
//          multiple of 24 (48, 96, ...); 1.75 at B = 64 and 128 (the last triple is partial).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bitttt {

enum class Packing { TwoBit, Dense };
enum class Arrangement { Rows, Tiles };
// Rows per tile in the tiles arrangement (one AVX2 register of code bytes).
inline constexpr int kTileRows = 32;
enum class ScaleMode { Free, Tied };

const char* packing_name(Packing p);                          // "2bit" / "dense"
std::optional<Packing> packing_from_string(std::string_view s);
const char* arrangement_name(Arrangement a);                   // "rows" / "tiles"
std::optional<Arrangement> arrangement_from_string(std::string_view s);
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
    Arrangement arrangement = Arrangement::Rows;

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
    std::size_t total_bytes() const {
        return tiled() ? tile_codes_offset() + static_cast<std::size_t>(bases) * tile_plane_bytes()
                       : static_cast<std::size_t>(rows) * row_bytes();
    }

    // ---- the tiles arrangement (above); the row_* / block_* helpers describe `rows` ----
    bool tiled() const { return arrangement == Arrangement::Tiles; }
    std::int64_t tiles() const { return (rows + kTileRows - 1) / kTileRows; }
    int tile_triples() const { return (block_size + 2) / 3; }  // dense: T
    // dense: index bytes per row, block and base (the sign bytes follow).
    std::size_t tile_index_bytes() const { return static_cast<std::size_t>((tile_triples() + 1) / 2); }
    // Code bytes per row, block and base (C above).
    std::size_t tile_code_bytes() const {
        return packing == Packing::TwoBit ? static_cast<std::size_t>((block_size + 3) / 4)
                                          : tile_index_bytes() + static_cast<std::size_t>((tile_triples() + 7) / 8);
    }
    // Bytes of one slot's scales of one tile block (32 scales of 2 bytes, or 1 two-level).
    std::size_t tile_scale_record() const { return kTileRows * (two_level() ? 1u : 2u); }
    // Bytes of one base's codes of one tile block.
    std::size_t tile_code_record() const { return kTileRows * tile_code_bytes(); }
    std::size_t tile_supers_bytes() const {
        return two_level() ? static_cast<std::size_t>(scale_count()) * static_cast<std::size_t>(tiles()) * kTileRows * 2 : 0;
    }
    // Bytes of one slot's scales (every tile and block), and of one base's codes.
    std::size_t tile_scale_plane_bytes() const {
        return static_cast<std::size_t>(tiles()) * static_cast<std::size_t>(blocks_per_row()) * tile_scale_record();
    }
    std::size_t tile_plane_bytes() const {
        return static_cast<std::size_t>(tiles()) * static_cast<std::size_t>(blocks_per_row()) * tile_code_record();
    }
    std::size_t tile_scales_offset() const { return tile_supers_bytes(); }
    std::size_t tile_codes_offset() const {
        return tile_scales_offset() + static_cast<std::size_t>(scale_count()) * tile_scale_plane_bytes();
    }
    // Offsets within the tensor of slot m's super-scales of a tile (32 x binary16), slot
    // m's scales of a tile block, and base k's codes of a tile block.
    std::size_t tile_super_offset(int m, std::int64_t tile) const {
        return (static_cast<std::size_t>(m) * static_cast<std::size_t>(tiles()) + static_cast<std::size_t>(tile)) *
               kTileRows * 2;
    }
    std::size_t tile_scale_offset(int m, std::int64_t tile, std::int64_t b) const {
        return tile_scales_offset() + static_cast<std::size_t>(m) * tile_scale_plane_bytes() +
               (static_cast<std::size_t>(tile) * static_cast<std::size_t>(blocks_per_row()) + static_cast<std::size_t>(b)) *
                   tile_scale_record();
    }
    std::size_t tile_code_offset(int k, std::int64_t tile, std::int64_t b) const {
        return tile_codes_offset() + static_cast<std::size_t>(k) * tile_plane_bytes() +
               (static_cast<std::size_t>(tile) * static_cast<std::size_t>(blocks_per_row()) + static_cast<std::size_t>(b)) *
                   tile_code_record();
    }
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

// The same layout in another arrangement.
inline TernaryLayout with_arrangement(TernaryLayout l, Arrangement a) {
    l.arrangement = a;
    return l;
}

// Dense tiles: the index (|v|, 0..13) and sign of a triple t0, t1, t2 (v = 9 t0 + 3 t1 + t2),
// and back (indices 14 and 15, never written, decode to 0 0 0).
inline void triple_encode(const std::int8_t t[3], std::uint8_t& index, bool& negative) {
    const int v = 9 * t[0] + 3 * t[1] + t[2];
    index = static_cast<std::uint8_t>(v < 0 ? -v : v);
    negative = v < 0;
}
void triple_decode(std::uint8_t index, bool negative, std::int8_t t[3]);

// Packs `block_size` trits (each -1, 0 or +1) into group_bytes(p, block_size) bytes.
void pack_trits(Packing p, const std::int8_t* trits, int block_size, std::uint8_t* out);
// Unpacks group_bytes(p, block_size) bytes into `block_size` trits.
void unpack_trits(Packing p, const std::uint8_t* in, int block_size, std::int8_t* trits);

// Dense code helpers (exposed for tests and kernels).
std::uint8_t dense_encode5(const std::uint8_t codes[5]);  // codes in {0,1,2}, c_0 first
void dense_decode5(std::uint8_t q, std::uint8_t codes[5]);

// The first row holding a scale that is infinite or NaN (binary16 exponent all ones; for
// two-level layouts a super-scale), or -1. Reads every block's scale bytes once (tiles:
// one contiguous section; the codes are not touched).
std::int64_t find_nonfinite_scale(const TernaryLayout& layout, const std::uint8_t* tensor_data);

// Rewrites a tensor from layout `from` (bytes at src) into `to` (bytes at dst,
// to.total_bytes()), which may differ from it only in arrangement and packing: the same
// trits and scale bits (a corrupt 2bit code 3 becomes +1, as the kernels read it). Does
// tiles [t0, t1) (rows [32 t0, 32 t1) of a rows target), so callers can split the work;
// a tiles target's padding rows get zero scales and zero trits.
void rearrange_ternary(const TernaryLayout& from, const std::uint8_t* src, const TernaryLayout& to, std::uint8_t* dst,
                       std::int64_t t0, std::int64_t t1);

// Reconstructs row `row` of a ternary tensor using its first `k_bases` bases, as float
// (the slow reference dequantisation).
void dequantize_row(const TernaryLayout& layout, const std::uint8_t* tensor_data, std::int64_t row,
                    int k_bases, float* out);

}  // namespace bitttt
