// A weight matrix W [rows, cols] the forward pass multiplies by: Y = X W^T for a batch of
// m input rows X [m, cols] (m = 1 when generating, up to a micro-batch when processing a
// prompt). Implementations: ternary (.btt bases, add-only), int8 with per-row scales (the
// output layer), F16 and F32 (reference / embeddings). Every output row is computed the
// same way whichever thread computes it and whatever the batch size, so results depend
// on neither.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "bitttt/int8.h"
#include "bitttt/ternary.h"
#include "kernels/ternary_gemv.h"
#include "kernels/ternary_lut.h"
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
    // Prepares every row for the active ternary kernel and tensors of this block size and
    // packing (once per set(); not thread-safe).
    void prepare_ternary(int block_size, Packing packing, ThreadPool& pool) const;
    // The prepared rows (m pointers); prepare_ternary must have run. Thread-safe.
    const kernels::TernaryInput* const* ternary(int block_size, Packing packing) const;
    // Every row quantised and turned into lookup tables for the LUT ternary kernel, or
    // (levels = true) into the levels form of its prompt path (ternary_lut.h; shared by
    // all tensors with this block size and packing). Not thread-safe.
    void prepare_lut(const TernaryLayout& layout, ThreadPool& pool, bool levels = false) const;
    // Every row's tables or levels form (m pointers) and activation scales (m);
    // prepare_lut must have run for a layout of this block size and packing, in that
    // form. Thread-safe.
    const std::uint8_t* const* lut_tables(int block_size, Packing packing) const;
    const std::uint8_t* const* lut_levels(int block_size, Packing packing) const;
    const float* lut_scales(int block_size, Packing packing) const;
    // Every row quantised to int8 (cols values, one scale), for the int8 layers.
    void prepare_int8() const;
    const std::int8_t* int8_row(int j) const { return q8_.data() + static_cast<std::size_t>(j) * static_cast<std::size_t>(cols_); }
    float int8_scale(int j) const { return q8_scales_[static_cast<std::size_t>(j)]; }

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
    struct LutForm {
        bool valid = false;
        // [m, bytes per row]; not zeroed when it grows (every byte is written before it is read)
        std::vector<std::uint8_t, kernels::UninitAllocator<std::uint8_t>> bytes;
        std::vector<const std::uint8_t*> ptrs;  // [m] row starts in bytes
    };
    struct LutPrepared {
        int block_size = 0;
        Packing packing = Packing::TwoBit;
        LutForm tables, levels;
        std::vector<float> scales;  // [m], the same for either form
    };
    mutable std::vector<LutPrepared> lut_;
    const LutPrepared& lut_for(int block_size, Packing packing, bool levels) const;
    mutable bool q8_valid_ = false;
    mutable std::vector<std::int8_t> q8_;  // [m, cols]
    mutable std::vector<float> q8_scales_; // [m]
};

class Linear {
public:
    Linear(std::int64_t rows, std::int64_t cols) : rows_(rows), cols_(cols) {}
    virtual ~Linear() = default;
    std::int64_t rows() const { return rows_; }
    std::int64_t cols() const { return cols_; }
    // y[j * rows + r] = W[r, :] . x_j for the input's m rows (in.cols() == cols()).
    void forward(const LinearInput& in, float* y, ThreadPool& pool) const;
    // Bytes of weights one forward() reads.
    virtual std::uint64_t weight_bytes() const = 0;

    // The two halves of forward(), so that several matrices can share one parallel job
    // (forward_group): prepare() once per input (not thread-safe), then forward_rows() for
    // disjoint row ranges from any threads.
    virtual void prepare(const LinearInput& /*in*/, ThreadPool& /*pool*/) const {}
    virtual void forward_rows(const LinearInput& in, std::int64_t r0, std::int64_t r1, float* y) const = 0;
    // Rows per chunk of work: enough chunks to keep every thread busy, enough weights per
    // chunk to be worth a hand-off.
    virtual std::int64_t grain(const ThreadPool& pool) const;

    std::int64_t rows_, cols_;
};

// One matrix of a group and where its output goes ([m, rows]).
struct LinearOutput {
    const Linear* w;
    float* y;
};

// Computes several matrices that multiply the same input (q/k/v; gate/up) in one parallel
// job: one hand-off to the threads instead of one per matrix.
void forward_group(std::initializer_list<LinearOutput> group, const LinearInput& in, ThreadPool& pool);

// Uses the first k_bases (1..layout.bases) of a ternary tensor stored at `data`. When the
// active design (kernels::active_design()) reads the arrangement the tensor has (LUT:
// tiles; maddubs and the reference: rows), the Linear computes on `data` in place, which
// must stay mapped. Otherwise the weights are rearranged into memory the Linear owns (in
// parallel over `pool`) and `data` is not used after this returns.
std::unique_ptr<Linear> make_ternary_linear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases,
                                            ThreadPool& pool);
// True when make_ternary_linear copies a tensor of this layout (the caller may drop the
// source pages).
bool ternary_linear_copies_weights(const TernaryLayout& layout);
// An int8 tensor (per-row scales) stored at `data`; activations are quantised to int8.
std::unique_ptr<Linear> make_int8_linear(const Int8Layout& layout, const std::uint8_t* data);
std::unique_ptr<Linear> make_f16_linear(const std::uint8_t* data, std::int64_t rows, std::int64_t cols);
std::unique_ptr<Linear> make_f32_linear(const float* data, std::int64_t rows, std::int64_t cols);

}  // namespace bitttt
