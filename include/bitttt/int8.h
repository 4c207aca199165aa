// The int8 (per-row scale) layout shared by the converter (writes it) and the engine
// (reads it). See docs/FORMAT.md ("int8 tensors") for the byte-level description.
//
// A tensor W [rows, cols] is stored as W[r, c] ~= q[r, c] * scale[r], q in [-127, 127],
// scale[r] = max_c |W[r, c]| / 127 (symmetric absmax per row):
//
//   tensor := q[0][0..cols) ... q[rows-1][0..cols)   rows * cols int8, row-major
//             zero bytes up to a multiple of 64      (so the scales are aligned too)
//             scale[0..rows)                         rows x IEEE binary32, little-endian
//
// The values come first so that they start on the tensor's 64-byte boundary and every row
// does too when cols is a multiple of 64 (all real hidden sizes); the scales come last so
// the converter can stream the values row slab by row slab and append the (small) scale
// array at the end.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitttt {

// Largest row length whose int8 x int8 dot product is exact in int32 for any stored
// values (|q| <= 128 for a corrupt -128, activations |x| <= 127): 131072 * 128 * 127 < 2^31.
inline constexpr std::int64_t kInt8MaxCols = std::int64_t{1} << 17;

struct Int8Layout {
    std::int64_t rows = 0;
    std::int64_t cols = 0;

    std::uint64_t values_bytes() const { return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols); }
    // Offset of scale[0] from the tensor's start.
    std::uint64_t scales_offset() const { return (values_bytes() + 63) / 64 * 64; }
    std::uint64_t total_bytes() const { return scales_offset() + 4 * static_cast<std::uint64_t>(rows); }
    // Bits per weight, scales and padding included.
    double bits_per_weight() const;
    // Throws UsageError if rows or cols is negative or cols > kInt8MaxCols.
    void validate() const;
};

// Quantises one row w[0..n) into q[0..n): q_i = round(w_i * 127 / max|w|) (ties to even,
// computed in double so that tiny rows neither overflow nor lose the rounding), and
// returns the scale max|w| / 127 (0 for an all-zero row, whose q are all 0). Every
// |w_i - q_i * scale| <= max|w| / 254 (to float rounding) unless max|w| is below
// 127 * FLT_MIN (subnormal scale). Throws FormatError for a NaN or infinite w_i (callers
// that can name the tensor check first).
float quantize_row_int8(const float* w, std::int64_t n, std::int8_t* q);

// The stored scale of row `row` (reads the little-endian binary32 at any alignment).
float int8_row_scale(const Int8Layout& layout, const std::uint8_t* tensor_data, std::int64_t row);

// Reconstructs row `row`: out[c] = float(q[row, c]) * scale[row]. Throws UsageError for
// a row out of range.
void dequantize_row_int8(const Int8Layout& layout, const std::uint8_t* tensor_data, std::int64_t row, float* out);

}  // namespace bitttt
