// The two arrangements of a ternary tensor (rows and tiles, include/bitttt/ternary.h) and
// the conversion between them: the converter writes tiles, the engine maps them; files
// in rows are rearranged at load (or once, by `bitttt repack`).
//
// Everything here goes through one row's one block of one base at a time (its trits as
// int8 and its scale bits), so any arrangement and packing converts to any other, and
// the trits and scales are carried over exactly.
#include <algorithm>
#include <cstring>
#include <string>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/ternary.h"

namespace bitttt {

namespace {

constexpr int kMaxBlock = 4096;

// ---- one block of one row and base, in either arrangement ------------------------------

// Trits of a 2bit group of the rows arrangement, as the reference kernel reads them: a
// corrupt code 3 counts as +1 (ternary_gemv_scalar.cpp), so kernels agree after a repack.
void read_rows_2bit(const std::uint8_t* group, int block_size, std::int8_t* t) {
    const int g = block_size / 4;
    for (int d = 0; d < 4; ++d) {
        for (int j = 0; j < g; ++j) t[g * d + j] = static_cast<std::int8_t>(std::min((group[j] >> (2 * d)) & 3, 2) - 1);
    }
}

void read_block(const TernaryLayout& l, const std::uint8_t* data, std::int64_t r, std::int64_t b, int k,
                std::int8_t* t) {
    const int bs = l.block_size;
    if (!l.tiled()) {
        const std::uint8_t* group = data + static_cast<std::size_t>(r) * l.row_bytes() + l.block_offset(b) +
                                    l.block_scale_bytes() + static_cast<std::size_t>(k) * l.group_bytes();
        if (l.packing == Packing::TwoBit) {
            read_rows_2bit(group, bs, t);
        } else {
            unpack_trits(l.packing, group, bs, t);
        }
        return;
    }
    const std::uint8_t* c = data + l.tile_code_offset(k, r / kTileRows, b) + static_cast<std::size_t>(r % kTileRows);
    if (l.packing == Packing::TwoBit) {
        for (int s = 0; s < bs / 4; ++s) {
            const int byte = c[s * kTileRows];
            for (int d = 0; d < 4; ++d) t[4 * s + d] = static_cast<std::int8_t>(std::min((byte >> (2 * d)) & 3, 2) - 1);
        }
        return;
    }
    const int n_triples = l.tile_triples();
    const std::uint8_t* signs = c + l.tile_index_bytes() * kTileRows;
    std::int8_t tri[3];
    for (int g = 0; g < n_triples; ++g) {
        const int index = (c[(g / 2) * kTileRows] >> (4 * (g % 2))) & 15;
        const bool negative = (signs[(g / 8) * kTileRows] >> (g % 8)) & 1;
        triple_decode(static_cast<std::uint8_t>(index), negative, tri);
        for (int i = 0; i < 3 && 3 * g + i < bs; ++i) t[3 * g + i] = tri[i];
    }
}

// Writes the trits of row r (r < rows) block b base k. Tiles: only this row's lane bytes.
void write_block(const TernaryLayout& l, std::uint8_t* data, std::int64_t r, std::int64_t b, int k,
                 const std::int8_t* t) {
    const int bs = l.block_size;
    if (!l.tiled()) {
        std::uint8_t* group = data + static_cast<std::size_t>(r) * l.row_bytes() + l.block_offset(b) +
                              l.block_scale_bytes() + static_cast<std::size_t>(k) * l.group_bytes();
        pack_trits(l.packing, t, bs, group);
        return;
    }
    std::uint8_t* c = data + l.tile_code_offset(k, r / kTileRows, b) + static_cast<std::size_t>(r % kTileRows);
    if (l.packing == Packing::TwoBit) {
        for (int s = 0; s < bs / 4; ++s) {
            int byte = 0;
            for (int d = 0; d < 4; ++d) byte |= (t[4 * s + d] + 1) << (2 * d);
            c[s * kTileRows] = static_cast<std::uint8_t>(byte);
        }
        return;
    }
    const int n_triples = l.tile_triples();
    const std::size_t n_index = l.tile_index_bytes();
    std::uint8_t bytes[2 * kMaxBlock / 3 + 8] = {};
    std::uint8_t* signs = bytes + n_index;
    for (int g = 0; g < n_triples; ++g) {
        std::int8_t tri[3] = {0, 0, 0};
        for (int i = 0; i < 3 && 3 * g + i < bs; ++i) tri[i] = t[3 * g + i];
        std::uint8_t index = 0;
        bool negative = false;
        triple_encode(tri, index, negative);
        bytes[g / 2] = static_cast<std::uint8_t>(bytes[g / 2] | index << (4 * (g % 2)));
        if (negative) signs[g / 8] = static_cast<std::uint8_t>(signs[g / 8] | 1 << (g % 8));
    }
    for (std::size_t i = 0; i < l.tile_code_bytes(); ++i) c[i * kTileRows] = bytes[i];
}

// The stored bits of slot m's scale of row r block b (binary16 bits, or the uint8 sub-scale).
// Offset of slot m's scale of row r block b (2 bytes, or 1 two-level).
std::size_t scale_offset(const TernaryLayout& l, std::int64_t r, std::int64_t b, int m) {
    const std::size_t width = l.two_level() ? 1 : 2;
    if (l.tiled()) return l.tile_scale_offset(m, r / kTileRows, b) + width * static_cast<std::size_t>(r % kTileRows);
    return static_cast<std::size_t>(r) * l.row_bytes() + l.block_offset(b) + width * static_cast<std::size_t>(m);
}

std::uint16_t read_scale(const TernaryLayout& l, const std::uint8_t* data, std::int64_t r, std::int64_t b, int m) {
    const std::uint8_t* p = data + scale_offset(l, r, b, m);
    return l.two_level() ? p[0] : static_cast<std::uint16_t>(p[0] | p[1] << 8);
}

void write_scale(const TernaryLayout& l, std::uint8_t* data, std::int64_t r, std::int64_t b, int m, std::uint16_t v) {
    std::uint8_t* p = data + scale_offset(l, r, b, m);
    p[0] = static_cast<std::uint8_t>(v);
    if (!l.two_level()) p[1] = static_cast<std::uint8_t>(v >> 8);
}

// Two-level: the binary16 bits of slot m's super-scale of row r.
const std::uint8_t* super_ptr(const TernaryLayout& l, const std::uint8_t* data, std::int64_t r, int m) {
    if (l.tiled()) return data + l.tile_super_offset(m, r / kTileRows) + 2 * static_cast<std::size_t>(r % kTileRows);
    return data + static_cast<std::size_t>(r) * l.row_bytes() + 2 * static_cast<std::size_t>(m);
}

}  // namespace

// Declared here, called by ternary.cpp's dequantize_row and find_nonfinite_scale.
void dequantize_row_tiles(const TernaryLayout& l, const std::uint8_t* data, std::int64_t row, int k_bases, float* out);
std::int64_t find_nonfinite_scale_tiles(const TernaryLayout& l, const std::uint8_t* data);

namespace {

std::string layout_text(const TernaryLayout& l) {
    return std::string(arrangement_name(l.arrangement)) + "/" + packing_name(l.packing);
}

}  // namespace

const char* arrangement_name(Arrangement a) { return a == Arrangement::Tiles ? "tiles" : "rows"; }

std::optional<Arrangement> arrangement_from_string(std::string_view s) {
    if (s == "rows") return Arrangement::Rows;
    if (s == "tiles") return Arrangement::Tiles;
    return std::nullopt;
}

void triple_decode(std::uint8_t index, bool negative, std::int8_t t[3]) {
    int v = index > 13 ? 0 : index;
    // Balanced-ternary digits of v, least significant last.
    for (int i = 2; i >= 0; --i) {
        int d = v % 3;  // v >= 0
        if (d == 2) d = -1;
        t[i] = static_cast<std::int8_t>(negative ? -d : d);
        v = (v - d) / 3;
    }
}

void rearrange_ternary(const TernaryLayout& from, const std::uint8_t* src, const TernaryLayout& to, std::uint8_t* dst,
                       std::int64_t t0, std::int64_t t1) {
    if (from.rows != to.rows || from.cols != to.cols || from.bases != to.bases || from.block_size != to.block_size ||
        from.scales != to.scales || from.scale_bits != to.scale_bits) {
        throw UsageError("rearrange_ternary: " + layout_text(from) + " and " + layout_text(to) +
                         " differ in more than arrangement and packing");
    }
    to.validate();
    if (from.block_size > kMaxBlock) throw UsageError("rearrange_ternary: block size out of range");
    const std::int64_t nb = from.blocks_per_row();
    const int n_slots = from.scale_count();
    std::int8_t t[kMaxBlock + 3];
    std::int8_t zero[kMaxBlock + 3] = {};
    const std::int64_t r_end = std::min(from.rows, t1 * kTileRows);
    // Tiles: padding rows of the tiles [t0, t1) get zero scales and zero trits.
    const std::int64_t pad_end = to.tiled() ? std::min(to.tiles(), t1) * kTileRows : r_end;
    for (std::int64_t r = t0 * kTileRows; r < pad_end; ++r) {
        const bool real = r < from.rows;
        if (to.two_level()) {
            for (int m = 0; m < n_slots; ++m) {
                std::uint8_t* d = const_cast<std::uint8_t*>(super_ptr(to, dst, r, m));
                if (real) {
                    std::memcpy(d, super_ptr(from, src, r, m), 2);
                } else {
                    d[0] = d[1] = 0;
                }
            }
        }
        for (std::int64_t b = 0; b < nb; ++b) {
            for (int m = 0; m < n_slots; ++m) write_scale(to, dst, r, b, m, real ? read_scale(from, src, r, b, m) : 0);
            for (int k = 0; k < from.bases; ++k) {
                if (real) read_block(from, src, r, b, k, t);
                write_block(to, dst, r, b, k, real ? t : zero);
            }
        }
    }
}

std::int64_t find_nonfinite_scale_tiles(const TernaryLayout& l, const std::uint8_t* data) {
    // The scales (or two-level super-scales) are one contiguous section: scan it whole and
    // keep the first row (padding lanes of the last tile do not count).
    auto bad = [](const std::uint8_t* p) { return (p[1] & 0x7C) == 0x7C; };
    const std::int64_t nb = l.blocks_per_row();
    std::int64_t first = l.rows;
    auto scan = [&](const std::uint8_t* p, std::int64_t tile) {
        for (int i = 0; i < kTileRows; ++i) {
            const std::int64_t r = tile * kTileRows + i;
            if (r < first && bad(p + 2 * i)) first = r;
        }
    };
    for (int m = 0; m < l.scale_count(); ++m) {
        for (std::int64_t tile = 0; tile < l.tiles(); ++tile) {
            if (l.two_level()) {
                scan(data + l.tile_super_offset(m, tile), tile);
                continue;
            }
            for (std::int64_t b = 0; b < nb; ++b) scan(data + l.tile_scale_offset(m, tile, b), tile);
        }
    }
    return first < l.rows ? first : -1;
}

void dequantize_row_tiles(const TernaryLayout& l, const std::uint8_t* data, std::int64_t row, int k_bases, float* out) {
    const int bs = l.block_size;
    std::int8_t t[kMaxBlock + 3];
    std::int32_t level[kMaxBlock];
    const float tied_mult = tied_multiplier(k_bases);
    auto scale = [&](std::int64_t b, int m) {
        const std::uint16_t bits = read_scale(l, data, row, b, m);
        if (!l.two_level()) return f16_to_f32(bits);
        const std::uint8_t* d = super_ptr(l, data, row, m);
        return f16_to_f32(static_cast<std::uint16_t>(d[0] | d[1] << 8)) * static_cast<float>(bits);
    };
    std::fill(out, out + l.cols, 0.0f);
    if (k_bases == 0) return;
    for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
        const std::int64_t first = b * bs;
        const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, l.cols - first));
        float* o = out + first;
        if (l.tied()) {
            std::fill(level, level + n_valid, 0);
            for (int k = 0; k < k_bases; ++k) {
                read_block(l, data, row, b, k, t);
                const std::int32_t w = tied_weight(k_bases, k);
                for (int j = 0; j < n_valid; ++j) level[j] += w * t[j];
            }
            const float s = scale(b, 0) * tied_mult;
            for (int j = 0; j < n_valid; ++j) o[j] = s * static_cast<float>(level[j]);
            continue;
        }
        for (int k = 0; k < k_bases; ++k) {
            const float s = scale(b, k);
            read_block(l, data, row, b, k, t);
            for (int j = 0; j < n_valid; ++j) o[j] += s * static_cast<float>(t[j]);
        }
    }
}

}  // namespace bitttt
