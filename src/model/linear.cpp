#include "model/linear.h"

#include <algorithm>

#include "kernels/dispatch.h"
#include "kernels/int8_gemv.h"
#include "kernels/ops.h"
#include "kernels/ternary_gemv.h"

namespace bitttt {

std::int64_t Linear::grain(const ThreadPool& pool) const {
    // About 8 chunks per thread, but at least ~16K weights per chunk: handing out less
    // work costs more in synchronisation than it saves (small matrices run inline).
    constexpr std::int64_t kMinWeights = 16384;
    const std::int64_t balanced = rows_ / (static_cast<std::int64_t>(pool.size()) * 8);
    const std::int64_t floor = (kMinWeights + cols_ - 1) / std::max<std::int64_t>(cols_, 1);
    return std::max<std::int64_t>({1, balanced, floor});
}

namespace {

class TernaryLinear final : public Linear {
public:
    TernaryLinear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases)
        : Linear(layout.rows, layout.cols), layout_(layout), data_(data), k_(k_bases),
          q_(static_cast<std::size_t>(layout.blocks_per_row() * layout.block_size)) {}

    void forward(const float* x, float* y, ThreadPool& pool) const override {
        const float x_scale = kernels::quantize_int8(x, cols_, q_.data(), static_cast<std::int64_t>(q_.size()));
        pool.parallel_for(rows_, grain(pool), [&](std::int64_t r0, std::int64_t r1) {
            kernels::ternary_gemv(layout_, data_, k_, q_.data(), x_scale, r0, r1, y + r0);
        });
    }

    std::uint64_t weight_bytes() const override {
        // Only the first k bases' scales and groups are read.
        const std::uint64_t per_block = static_cast<std::uint64_t>(k_) * (2 + layout_.group_bytes());
        return static_cast<std::uint64_t>(rows_) * static_cast<std::uint64_t>(layout_.blocks_per_row()) * per_block;
    }

private:
    TernaryLayout layout_;
    const std::uint8_t* data_;
    int k_;
    mutable std::vector<std::int8_t> q_;
};

class Int8Linear final : public Linear {
public:
    Int8Linear(const Int8Layout& layout, const std::uint8_t* data)
        : Linear(layout.rows, layout.cols), layout_(layout), data_(data), q_(static_cast<std::size_t>(layout.cols)) {}

    void forward(const float* x, float* y, ThreadPool& pool) const override {
        const float x_scale = kernels::quantize_int8(x, cols_, q_.data(), cols_);
        pool.parallel_for(rows_, grain(pool), [&](std::int64_t r0, std::int64_t r1) {
            kernels::int8_gemv(layout_, data_, q_.data(), x_scale, r0, r1, y + r0);
        });
    }

    std::uint64_t weight_bytes() const override { return layout_.values_bytes() + 4 * static_cast<std::uint64_t>(rows_); }

private:
    Int8Layout layout_;
    const std::uint8_t* data_;
    mutable std::vector<std::int8_t> q_;
};

class F16Linear final : public Linear {
public:
    F16Linear(const std::uint8_t* data, std::int64_t rows, std::int64_t cols) : Linear(rows, cols), data_(data) {}
    void forward(const float* x, float* y, ThreadPool& pool) const override {
        pool.parallel_for(rows_, grain(pool), [&](std::int64_t r0, std::int64_t r1) {
            kernels::gemv_f16(data_, cols_, x, r0, r1, y + r0);
        });
    }
    std::uint64_t weight_bytes() const override { return static_cast<std::uint64_t>(rows_ * cols_) * 2; }

private:
    const std::uint8_t* data_;
};

class F32Linear final : public Linear {
public:
    F32Linear(const float* data, std::int64_t rows, std::int64_t cols) : Linear(rows, cols), data_(data) {}
    void forward(const float* x, float* y, ThreadPool& pool) const override {
        pool.parallel_for(rows_, grain(pool), [&](std::int64_t r0, std::int64_t r1) {
            kernels::gemv_f32(data_, cols_, x, r0, r1, y + r0);
        });
    }
    std::uint64_t weight_bytes() const override { return static_cast<std::uint64_t>(rows_ * cols_) * 4; }

private:
    const float* data_;
};

}  // namespace

std::unique_ptr<Linear> make_ternary_linear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases) {
    return std::make_unique<TernaryLinear>(layout, data, k_bases);
}
std::unique_ptr<Linear> make_int8_linear(const Int8Layout& layout, const std::uint8_t* data) {
    return std::make_unique<Int8Linear>(layout, data);
}
std::unique_ptr<Linear> make_f16_linear(const std::uint8_t* data, std::int64_t rows, std::int64_t cols) {
    return std::make_unique<F16Linear>(data, rows, cols);
}
std::unique_ptr<Linear> make_f32_linear(const float* data, std::int64_t rows, std::int64_t cols) {
    return std::make_unique<F32Linear>(data, rows, cols);
}

}  // namespace bitttt
