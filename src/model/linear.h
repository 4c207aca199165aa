// A weight matrix W [rows, cols] the forward pass multiplies by: y = W x.
// Implementations: ternary (.btt bases, add-only), int8 with per-row scales (the output
// layer), F16 and F32 (reference / embeddings).
// Every output row is computed the same way whichever thread computes it, so results
// do not depend on the thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bitttt/int8.h"
#include "bitttt/ternary.h"
#include "util/thread_pool.h"

namespace bitttt {

class Linear {
public:
    Linear(std::int64_t rows, std::int64_t cols) : rows_(rows), cols_(cols) {}
    virtual ~Linear() = default;
    std::int64_t rows() const { return rows_; }
    std::int64_t cols() const { return cols_; }
    // y[0..rows) = W x[0..cols). Not reentrant (uses internal scratch).
    virtual void forward(const float* x, float* y, ThreadPool& pool) const = 0;
    // Bytes of weights one forward() reads.
    virtual std::uint64_t weight_bytes() const = 0;

protected:
    // Splits rows over the pool in chunks of a size that keeps every thread busy.
    std::int64_t grain(const ThreadPool& pool) const;

    std::int64_t rows_, cols_;
};

// Uses the first k_bases (1..layout.bases) of a ternary tensor stored at `data`.
std::unique_ptr<Linear> make_ternary_linear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases);
// An int8 tensor (per-row scales) stored at `data`; activations are quantised to int8.
std::unique_ptr<Linear> make_int8_linear(const Int8Layout& layout, const std::uint8_t* data);
std::unique_ptr<Linear> make_f16_linear(const std::uint8_t* data, std::int64_t rows, std::int64_t cols);
std::unique_ptr<Linear> make_f32_linear(const float* data, std::int64_t rows, std::int64_t cols);

}  // namespace bitttt
