#include "model/linear.h"

#include <algorithm>
#include <stdexcept>

#include "kernels/dispatch.h"
#include "kernels/int8_gemv.h"
#include "kernels/ops.h"
#include "kernels/ternary_gemv.h"
#include "kernels/ternary_lut.h"

namespace bitttt {

void LinearInput::set(const float* x, int m, std::int64_t cols) {
    x_ = x;
    m_ = m;
    cols_ = cols;
    for (auto& p : cache_) p.valid = false;
    for (auto& p : lut_) p.tables.valid = p.levels.valid = false;
    q8_valid_ = false;
}

void LinearInput::prepare_lut(const TernaryLayout& layout, ThreadPool& pool, bool levels) const {
    LutPrepared* p = nullptr;
    for (auto& c : lut_) {
        if (c.block_size == layout.block_size && c.packing == layout.packing) p = &c;
    }
    if (!p) {
        lut_.push_back(LutPrepared{layout.block_size, layout.packing, {}, {}, {}});
        p = &lut_.back();
    }
    LutForm& f = levels ? p->levels : p->tables;
    if (f.valid) return;
    const std::size_t row_bytes = levels ? kernels::lut_levels_bytes(layout) : kernels::lut_table_bytes(layout);
    f.bytes.resize(row_bytes * static_cast<std::size_t>(m_));
    p->scales.resize(static_cast<std::size_t>(m_));
    const std::int64_t padded = layout.blocks_per_row() * layout.block_size;
    pool.parallel_for(m_, m_ >= 8 ? 2 : m_, [&](std::int64_t j0, std::int64_t j1) {
        thread_local std::vector<std::int8_t> q;
        q.resize(static_cast<std::size_t>(padded));
        for (std::int64_t j = j0; j < j1; ++j) {
            p->scales[static_cast<std::size_t>(j)] = kernels::quantize_int8(x_ + j * cols_, cols_, q.data(), padded);
            std::uint8_t* out = f.bytes.data() + static_cast<std::size_t>(j) * row_bytes;
            if (levels) {
                kernels::lut_levels_prepare(layout, q.data(), out);
            } else {
                kernels::lut_prepare(layout, q.data(), out);
            }
        }
    });
    f.ptrs.resize(static_cast<std::size_t>(m_));
    for (int j = 0; j < m_; ++j) f.ptrs[static_cast<std::size_t>(j)] = f.bytes.data() + static_cast<std::size_t>(j) * row_bytes;
    f.valid = true;
}

const LinearInput::LutPrepared& LinearInput::lut_for(int block_size, Packing packing, bool levels) const {
    for (const auto& c : lut_) {
        if (c.block_size == block_size && c.packing == packing && (levels ? c.levels.valid : c.tables.valid)) return c;
    }
    throw std::logic_error("LinearInput: LUT tables or levels read before prepare_lut");
}

const std::uint8_t* const* LinearInput::lut_tables(int block_size, Packing packing) const {
    return lut_for(block_size, packing, false).tables.ptrs.data();
}

const std::uint8_t* const* LinearInput::lut_levels(int block_size, Packing packing) const {
    return lut_for(block_size, packing, true).levels.ptrs.data();
}

const float* LinearInput::lut_scales(int block_size, Packing packing) const {
    for (const auto& c : lut_) {
        if (c.block_size == block_size && c.packing == packing && (c.tables.valid || c.levels.valid)) return c.scales.data();
    }
    throw std::logic_error("LinearInput: LUT scales read before prepare_lut");
}

void LinearInput::prepare_int8() const {
    if (q8_valid_) return;
    q8_.resize(static_cast<std::size_t>(m_) * static_cast<std::size_t>(cols_));
    q8_scales_.resize(static_cast<std::size_t>(m_));
    for (int j = 0; j < m_; ++j) {
        std::int8_t* q = q8_.data() + static_cast<std::size_t>(j) * static_cast<std::size_t>(cols_);
        q8_scales_[static_cast<std::size_t>(j)] = kernels::quantize_int8(x_ + j * cols_, cols_, q, cols_);
    }
    q8_valid_ = true;
}

void LinearInput::prepare_ternary(int block_size, Packing packing, ThreadPool& pool) const {
    Prepared* p = nullptr;
    for (auto& c : cache_) {
        if (c.block_size == block_size && c.packing == packing) p = &c;
    }
    if (!p) {
        cache_.push_back(Prepared{block_size, packing, false, {}, {}});
        p = &cache_.back();
    }
    if (p->valid) return;
    if (p->rows.size() < static_cast<std::size_t>(m_)) p->rows.resize(static_cast<std::size_t>(m_));
    p->ptrs.resize(static_cast<std::size_t>(m_));
    const kernels::Isa isa = kernels::active_isa();
    // Rows in parallel only when there are enough to be worth a hand-off.
    pool.parallel_for(m_, m_ >= 8 ? 2 : m_, [&](std::int64_t j0, std::int64_t j1) {
        for (std::int64_t j = j0; j < j1; ++j) {
            kernels::prepare_ternary_input(isa, x_ + j * cols_, cols_, block_size, packing,
                                           p->rows[static_cast<std::size_t>(j)]);
        }
    });
    for (int j = 0; j < m_; ++j) p->ptrs[static_cast<std::size_t>(j)] = &p->rows[static_cast<std::size_t>(j)];
    p->valid = true;
}

const kernels::TernaryInput* const* LinearInput::ternary(int block_size, Packing packing) const {
    for (const auto& c : cache_) {
        if (c.block_size == block_size && c.packing == packing && c.valid) return c.ptrs.data();
    }
    throw std::logic_error("LinearInput::ternary called before prepare_ternary");
}

void Linear::forward(const LinearInput& in, float* y, ThreadPool& pool) const { forward_group({{this, y}}, in, pool); }

void forward_group(std::initializer_list<LinearOutput> group, const LinearInput& in, ThreadPool& pool) {
    struct Chunk {
        const LinearOutput* out;
        std::int64_t r0, r1;
    };
    // The caller's own list (a thread_local named inside the lambda would be each worker's).
    thread_local std::vector<Chunk> scratch;
    std::vector<Chunk>& chunks = scratch;
    chunks.clear();
    for (const LinearOutput& o : group) {
        o.w->prepare(in, pool);
        const std::int64_t g = o.w->grain(pool);
        for (std::int64_t r = 0; r < o.w->rows(); r += g) chunks.push_back({&o, r, std::min(o.w->rows(), r + g)});
    }
    pool.parallel_for(static_cast<std::int64_t>(chunks.size()), 1, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const Chunk& ch = chunks[static_cast<std::size_t>(c)];
            ch.out->w->forward_rows(in, ch.r0, ch.r1, ch.out->y + ch.r0);
        }
    });
}

std::int64_t Linear::grain(const ThreadPool& pool) const {
    // About 8 chunks per thread, but at least ~16K weights per chunk: handing out less
    // work costs more in synchronisation than it saves (small matrices run inline).
    constexpr std::int64_t kMinWeights = 16384;
    const std::int64_t balanced = rows_ / (static_cast<std::int64_t>(pool.size()) * 8);
    const std::int64_t floor = (kMinWeights + cols_ - 1) / std::max<std::int64_t>(cols_, 1);
    return std::max<std::int64_t>({1, balanced, floor});
}

namespace {

// Design (a) and the reference: the rows arrangement, in place (or rearranged at load
// from a file in tiles).
class TernaryLinear final : public Linear {
public:
    TernaryLinear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, ThreadPool& pool)
        : Linear(layout.rows, layout.cols), layout_(with_arrangement(layout, Arrangement::Rows)), data_(data), k_(k_bases) {
        if (layout.tiled()) {
            owned_.resize(layout_.total_bytes());
            pool.parallel_for(layout.tiles(), 8, [&](std::int64_t t0, std::int64_t t1) {
                rearrange_ternary(layout, data, layout_, owned_.data(), t0, t1);
            });
            data_ = owned_.data();
        }
    }

    void prepare(const LinearInput& in, ThreadPool& pool) const override {
        in.prepare_ternary(layout_.block_size, layout_.packing, pool);
    }
    void forward_rows(const LinearInput& in, std::int64_t r0, std::int64_t r1, float* y) const override {
        kernels::ternary_gemm(layout_, data_, k_, in.ternary(layout_.block_size, layout_.packing), in.m(), r0, r1, y,
                              rows_);
    }

    std::uint64_t weight_bytes() const override {
        // Only the first k bases' groups are read, with their k scales (free) or the block's
        // one scale (tied): 2 bytes each, or 1 with two-level scales, which add the used
        // slots' binary16 super-scales once per row.
        const std::uint64_t scales = layout_.tied() ? 1 : static_cast<std::uint64_t>(k_);
        const std::uint64_t per_scale = layout_.two_level() ? 1 : 2;
        const std::uint64_t per_row_header = layout_.two_level() ? 2 * scales : 0;
        const std::uint64_t per_block = per_scale * scales + static_cast<std::uint64_t>(k_) * layout_.group_bytes();
        return static_cast<std::uint64_t>(rows_) *
               (per_row_header + static_cast<std::uint64_t>(layout_.blocks_per_row()) * per_block);
    }

private:
    TernaryLayout layout_;
    const std::uint8_t* data_;
    std::vector<std::uint8_t, kernels::UninitAllocator<std::uint8_t>> owned_;
    int k_;
};

// Design (b): lookup tables over activation pairs, on the tiles arrangement: the mapped
// file itself, or a copy rearranged at load from a file in rows.
class LutTernaryLinear final : public Linear {
public:
    LutTernaryLinear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, ThreadPool& pool)
        : Linear(layout.rows, layout.cols),
          w_(layout.tiled() ? kernels::lut_view(layout, data) : kernels::lut_repack(layout, data, &pool)),
          k_(k_bases) {}

    // Batches of kernels::kLevelsMinBatch inputs or more take the levels path where it
    // applies (one int8 GEMM for all bases; the same results).
    void prepare(const LinearInput& in, ThreadPool& pool) const override {
        in.prepare_lut(w_.layout, pool, levels(in.m()));
    }
    void forward_rows(const LinearInput& in, std::int64_t r0, std::int64_t r1, float* y) const override {
        const int bs = w_.layout.block_size;
        const Packing p = w_.layout.packing;
        if (levels(in.m())) {
            kernels::lut_gemm_levels(w_, k_, in.lut_levels(bs, p), in.lut_scales(bs, p), in.m(), r0, r1, y, rows_);
        } else {
            kernels::lut_gemm(w_, k_, in.lut_tables(bs, p), in.lut_scales(bs, p), in.m(), r0, r1, y, rows_);
        }
    }
    // Whole pairs of 32-row tiles per chunk (a partial tile is computed whole): the AVX2
    // GEMV runs two tiles per table load at one or two bases, and only within a chunk
    // (a 512-row k or v matrix in chunks of one tile left that undone).
    std::int64_t grain(const ThreadPool& pool) const override {
        const std::int64_t t = 2 * kernels::kLutTileRows;
        return (Linear::grain(pool) + t - 1) / t * t;
    }
    std::uint64_t weight_bytes() const override {
        // The first k bases' code planes and the used scale slots (one when tied), with
        // their super-scales when two-level.
        const TernaryLayout& l = w_.layout;
        const std::uint64_t slots = l.tied() ? 1 : static_cast<std::uint64_t>(k_);
        const std::uint64_t supers = l.two_level() ? slots * static_cast<std::uint64_t>(l.tiles()) * kTileRows * 2 : 0;
        return static_cast<std::uint64_t>(k_) * l.tile_plane_bytes() + slots * l.tile_scale_plane_bytes() + supers;
    }

private:
    bool levels(int m) const { return levels_ && m >= kernels::kLevelsMinBatch; }
    kernels::LutWeights w_;
    int k_;
    bool levels_ = kernels::lut_levels_available(w_.layout, k_);
};

class Int8Linear final : public Linear {
public:
    Int8Linear(const Int8Layout& layout, const std::uint8_t* data)
        : Linear(layout.rows, layout.cols), layout_(layout), data_(data) {}

    void prepare(const LinearInput& in, ThreadPool& /*pool*/) const override { in.prepare_int8(); }
    void forward_rows(const LinearInput& in, std::int64_t r0, std::int64_t r1, float* y) const override {
        for (int j = 0; j < in.m(); ++j) {
            kernels::int8_gemv(layout_, data_, in.int8_row(j), in.int8_scale(j), r0, r1, y + j * rows_);
        }
    }

    std::uint64_t weight_bytes() const override { return layout_.values_bytes() + 4 * static_cast<std::uint64_t>(rows_); }

private:
    Int8Layout layout_;
    const std::uint8_t* data_;
};

class F16Linear final : public Linear {
public:
    F16Linear(const std::uint8_t* data, std::int64_t rows, std::int64_t cols) : Linear(rows, cols), data_(data) {}
    void forward_rows(const LinearInput& in, std::int64_t r0, std::int64_t r1, float* y) const override {
        for (int j = 0; j < in.m(); ++j) kernels::gemv_f16(data_, cols_, in.x() + j * cols_, r0, r1, y + j * rows_);
    }
    std::uint64_t weight_bytes() const override { return static_cast<std::uint64_t>(rows_ * cols_) * 2; }

private:
    const std::uint8_t* data_;
};

class F32Linear final : public Linear {
public:
    F32Linear(const float* data, std::int64_t rows, std::int64_t cols) : Linear(rows, cols), data_(data) {}
    void forward_rows(const LinearInput& in, std::int64_t r0, std::int64_t r1, float* y) const override {
        for (int j = 0; j < in.m(); ++j) kernels::gemv_f32(data_, cols_, in.x() + j * cols_, r0, r1, y + j * rows_);
    }
    std::uint64_t weight_bytes() const override { return static_cast<std::uint64_t>(rows_ * cols_) * 4; }

private:
    const float* data_;
};

}  // namespace

bool ternary_linear_copies_weights(const TernaryLayout& layout) {
    return layout.tiled() != (kernels::active_design() == kernels::TernaryDesign::Lut);
}

std::unique_ptr<Linear> make_ternary_linear(const TernaryLayout& layout, const std::uint8_t* data, int k_bases,
                                            ThreadPool& pool) {
    if (kernels::active_design() == kernels::TernaryDesign::Lut) {
        return std::make_unique<LutTernaryLinear>(layout, data, k_bases, pool);
    }
    return std::make_unique<TernaryLinear>(layout, data, k_bases, pool);
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
