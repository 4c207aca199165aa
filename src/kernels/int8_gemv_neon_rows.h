// The row loop shared by the NEON int8 GEMVs (int8_gemv_neon.cpp, int8_gemv_neon_dot.cpp):
// four rows at a time (each activation load serves four rows, four accumulator chains),
// then the rest one by one; the last cols % 16 columns in scalar code. `Acc` supplies
// zero(), add(acc, w, q) for 16 int8 weights and activations, and sum(acc) (int32).
// Include only from the NEON kernel files.
#pragma once

#include <arm_neon.h>

#include <cstdint>

#include "bitttt/int8.h"

namespace bitttt::kernels::neon {

inline std::int32_t tail_dot(const std::int8_t* w, const std::int8_t* q, std::int64_t c0, std::int64_t cols) {
    std::int32_t s = 0;
    for (std::int64_t c = c0; c < cols; ++c) s += static_cast<std::int32_t>(w[c]) * static_cast<std::int32_t>(q[c]);
    return s;
}

template <class Acc>
void int8_rows(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
               std::int64_t r0, std::int64_t r1, float* y) {
    const std::int64_t cols = layout.cols;
    const std::int64_t body = cols / 16 * 16;
    const auto row_ptr = [&](std::int64_t r) {
        return reinterpret_cast<const std::int8_t*>(data + static_cast<std::uint64_t>(r) * static_cast<std::uint64_t>(cols));
    };
    // ((float)dot * scale) * x_scale, two rounded multiplies: int8_gemv_ref's expression.
    const auto finish = [&](std::int64_t r, std::int32_t dot) {
        y[r - r0] = static_cast<float>(dot) * int8_row_scale(layout, data, r) * x_scale;
    };
    std::int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const std::int8_t* w0 = row_ptr(r);
        const std::int8_t* w1 = w0 + cols;
        const std::int8_t* w2 = w1 + cols;
        const std::int8_t* w3 = w2 + cols;
        auto a0 = Acc::zero(), a1 = Acc::zero(), a2 = Acc::zero(), a3 = Acc::zero();
        for (std::int64_t c = 0; c < body; c += 16) {
            const int8x16_t x = vld1q_s8(q + c);
            a0 = Acc::add(a0, vld1q_s8(w0 + c), x);
            a1 = Acc::add(a1, vld1q_s8(w1 + c), x);
            a2 = Acc::add(a2, vld1q_s8(w2 + c), x);
            a3 = Acc::add(a3, vld1q_s8(w3 + c), x);
        }
        finish(r, Acc::sum(a0) + tail_dot(w0, q, body, cols));
        finish(r + 1, Acc::sum(a1) + tail_dot(w1, q, body, cols));
        finish(r + 2, Acc::sum(a2) + tail_dot(w2, q, body, cols));
        finish(r + 3, Acc::sum(a3) + tail_dot(w3, q, body, cols));
    }
    for (; r < r1; ++r) {
        const std::int8_t* w = row_ptr(r);
        auto a = Acc::zero();
        for (std::int64_t c = 0; c < body; c += 16) a = Acc::add(a, vld1q_s8(w + c), vld1q_s8(q + c));
        finish(r, Acc::sum(a) + tail_dot(w, q, body, cols));
    }
}

}  // namespace bitttt::kernels::neon
