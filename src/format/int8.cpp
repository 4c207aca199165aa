#include "bitttt/int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bitttt/error.h"
#include "format/le.h"

namespace bitttt {

double Int8Layout::bits_per_weight() const {
    const double n = static_cast<double>(rows) * static_cast<double>(cols);
    return n > 0 ? 8.0 * static_cast<double>(total_bytes()) / n : 0.0;
}

void Int8Layout::validate() const {
    if (rows < 0 || cols < 0) {
        throw UsageError("int8 tensor shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                         "] has a negative dimension");
    }
    if (cols > kInt8MaxCols) {
        throw UsageError("int8 tensor rows of " + std::to_string(cols) + " values are longer than the " +
                         std::to_string(kInt8MaxCols) + " whose dot products are exact in int32");
    }
}

float quantize_row_int8(const float* w, std::int64_t n, std::int8_t* q) {
    float amax = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(w[i])) {
            throw FormatError("int8 quantisation: value " + std::to_string(i) + " of the row is " +
                              (std::isnan(w[i]) ? "NaN" : "infinite"));
        }
        amax = std::max(amax, std::fabs(w[i]));
    }
    if (amax == 0.0f) {
        std::memset(q, 0, static_cast<std::size_t>(n));
        return 0.0f;
    }
    // w * 127 is exact in double, so each quotient is rounded once; |w| <= amax keeps it
    // within [-127, 127]. In float, 127 / amax would overflow for amax < 127 / FLT_MAX.
    const double m = static_cast<double>(amax);
    for (std::int64_t i = 0; i < n; ++i) {
        q[i] = static_cast<std::int8_t>(std::nearbyint(static_cast<double>(w[i]) * 127.0 / m));
    }
    return amax / 127.0f;
}

float int8_row_scale(const Int8Layout& layout, const std::uint8_t* tensor_data, std::int64_t row) {
    const std::uint32_t bits = le::u32(tensor_data + layout.scales_offset() + 4 * static_cast<std::uint64_t>(row));
    float s;
    std::memcpy(&s, &bits, 4);
    return s;
}

void dequantize_row_int8(const Int8Layout& layout, const std::uint8_t* tensor_data, std::int64_t row, float* out) {
    if (row < 0 || row >= layout.rows) {
        throw UsageError("row " + std::to_string(row) + " is out of range (allowed 0.." +
                         std::to_string(layout.rows - 1) + ")");
    }
    const float s = int8_row_scale(layout, tensor_data, row);
    const auto* q = reinterpret_cast<const std::int8_t*>(tensor_data + static_cast<std::uint64_t>(row) *
                                                                         static_cast<std::uint64_t>(layout.cols));
    for (std::int64_t c = 0; c < layout.cols; ++c) out[c] = static_cast<float>(q[c]) * s;
}

}  // namespace bitttt
