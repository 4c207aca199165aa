// A weight matrix W [rows, cols] the forward pass multiplies by: Y = X W^T for a batch of
// m input rows X [m, cols] (m = 1 when generating, up to a micro-batch when processing a
// prompt). Implementations: ternary (.btt bases, add-only), F16 and F32 (reference /
// embeddings). Every output row is computed the same way whichever thread computes it and
// whatever the batch size, so results depend on neither.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bitttt/ternary.h"
#include "kernels/ternary_gemv.h"
#include "util/thread_pool.h"

namespace bitttt {

// The input rows of one or more linear layers, with their int8 forms cached: matrices that
// multiply the same input (q/k/v, gate/up) quantise and re-lay it once, not once each.
class LinearInput {
public:
    // Points at m rows of `cols` floats (row stride cols); drops the cached forms.
    void set(const float* x, int m, std::int64_t cols);
    const float* x() const { return x_; }
    int m() const { return m_; }
    std::int64_t cols() const { return cols_; }
    // Every row prepared for the active ternary kernel and tensors of this block size and
    // packing (built on first use; m pointers).
    const kernels::TernaryInput* const* ternary(int block_size, Packing packing, ThreadPool& pool) const;

private:
    struct Prepared {
        int block_size = 0;
        Packing packing = Packing::TwoBit;
        bool valid = false;
        std::vector<kernels::TernaryInput> rows;
        std::vector<const kernels::TernaryInput*> ptrs;
    };
    const float* x_ = nullptr;
    int m_ = 0;
    std::int64_t cols_ = 0;
    mutable std::vector<Prepared> cache_;  // one per (block size, packing) seen; usually one
};

class Linear {
public:
    Linear(std::int64_t rows, std::int64_t cols) : rows_(rows), cols_(cols) {}
    virtual ~Linear() = default;
    std::int64_t rows() const { return rows_; }
    std::int64_t cols() const { return cols_; }
    // y[j * rows + r] = W[r, :] . x_j for the input's m rows (in.cols() == cols()).
    virtual void forward(const LinearInput& in, float* y, ThreadPool& pool) const = 0;
    // Bytes of weights one forward() reads.
    virtual std::uint64_t weight_bytes() const = 0;

protected:
    // Splits rows over the pool in chunks of a size that keeps every thread busy.
    std::int64_t grain(const ThreadPool& pool) const;

    std::int64_t rows_, cols_;
};

// Uses the first k_bases (1..layout.bases) of a ternary tensor stored at `data`.
std::unique_ptr<Linear> make_ternary_linear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases);
std::unique_ptr<Linear> make_f16_linear(const std::uint8_t* data, std::int64_t rows, std::int64_t cols);
std::unique_ptr<Linear> make_f32_linear(const float* data, std::int64_t rows, std::int64_t cols);

}  // namespace bitttt
