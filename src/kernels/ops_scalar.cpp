#include <algorithm>
#include <cmath>

#include "bitttt/dtype.h"
#include "kernels/ops.h"

namespace bitttt::kernels {

void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out) {
    double ss = 0.0;
    for (std::int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

void softmax(float* x, std::int64_t n) {
    if (n <= 0) return;
    const float mx = *std::max_element(x, x + n);
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (std::int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, std::int64_t n, float* out) {
    for (std::int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

float dot(const float* a, const float* b, std::int64_t n) {
    float s = 0.0f;
    for (std::int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpy(float a, const float* x, std::int64_t n, float* y) {
    for (std::int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    for (std::int64_t r = r0; r < r1; ++r) y[r - r0] = dot(w + r * cols, x, cols);
}

void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    for (std::int64_t r = r0; r < r1; ++r) {
        const std::uint8_t* row = w + 2 * r * cols;
        float s = 0.0f;
        for (std::int64_t c = 0; c < cols; ++c) {
            s += f16_to_f32(static_cast<std::uint16_t>(row[2 * c] | row[2 * c + 1] << 8)) * x[c];
        }
        y[r - r0] = s;
    }
}

}  // namespace bitttt::kernels
