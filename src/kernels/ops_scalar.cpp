// The portable reference versions of the ops in ops.h: plain loops, double-precision sums
// where cheap, std::exp. They define the results the vector versions are tested against.
#include <algorithm>
#include <cmath>
#include <vector>

#include "bitttt/dtype.h"
#include "kernels/ops.h"

namespace bitttt::kernels::scalar {

namespace {

// binary16 -> float through a table of all 65,536 values (256 KiB, built once from
// dtype.h's exact f16_to_f32): a load instead of a call with branches per element.
const float* f16_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (std::uint32_t h = 0; h < 65536; ++h) t[h] = f16_to_f32(static_cast<std::uint16_t>(h));
        return t;
    }();
    return table.data();
}

}  // namespace

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
        const float* widen = f16_table();
        float s = 0.0f;
        for (std::int64_t c = 0; c < cols; ++c) s += widen[row[2 * c] | row[2 * c + 1] << 8] * x[c];
        y[r - r0] = s;
    }
}

void f16_row(const std::uint8_t* src, std::int64_t n, float* out) {
    const float* widen = f16_table();
    for (std::int64_t i = 0; i < n; ++i) out[i] = widen[src[2 * i] | src[2 * i + 1] << 8];
}

void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out) {
    for (std::int64_t t = 0; t < n; ++t) scores[t] = dot(q, k + t * stride, hd) * scale;
    softmax(scores, n);
    std::fill(out, out + hd, 0.0f);
    for (std::int64_t t = 0; t < n; ++t) axpy(scores[t], v + t * stride, hd, out);
}

// As attention() over the widened cache: the same products and sums in the same order.
void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out) {
    const float* widen = f16_table();
    for (std::int64_t t = 0; t < n; ++t) {
        const std::uint16_t* kt = k + t * stride;
        float s = 0.0f;
        for (std::int64_t i = 0; i < hd; ++i) s += q[i] * widen[kt[i]];
        scores[t] = s * scale;
    }
    softmax(scores, n);
    std::fill(out, out + hd, 0.0f);
    for (std::int64_t t = 0; t < n; ++t) {
        const std::uint16_t* vt = v + t * stride;
        const float p = scores[t];
        for (std::int64_t i = 0; i < hd; ++i) out[i] += p * widen[vt[i]];
    }
}

void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = f32_to_f16(x[i]);
}

void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin) {
    const std::int64_t half = hd / 2;
    for (std::int64_t h = 0; h < n_heads; ++h) {
        float* v = vec + h * hd;
        for (std::int64_t i = 0; i < half; ++i) {
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cos[i] - x1 * sin[i];
            v[i + half] = x1 * cos[i] + x0 * sin[i];
        }
    }
}

}  // namespace bitttt::kernels::scalar
