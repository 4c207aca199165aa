#include "kernels/int8_gemv.h"

namespace bitttt::kernels {

std::int32_t int8_dot_ref(const std::int8_t* w, const std::int8_t* q, std::int64_t n) {
    // A plain loop the auto-vectoriser widens (this file is built at -O3).
    std::int32_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<std::int32_t>(w[i]) * static_cast<std::int32_t>(q[i]);
    return sum;
}

void int8_gemv_ref(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                   std::int64_t r0, std::int64_t r1, float* y) {
    const std::int64_t cols = layout.cols;
    for (std::int64_t r = r0; r < r1; ++r) {
        const auto* w = reinterpret_cast<const std::int8_t*>(data + static_cast<std::uint64_t>(r) *
                                                                        static_cast<std::uint64_t>(cols));
        const float dot = static_cast<float>(int8_dot_ref(w, q, cols));
        y[r - r0] = dot * int8_row_scale(layout, data, r) * x_scale;
    }
}

}  // namespace bitttt::kernels
