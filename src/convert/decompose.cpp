// Greedy residual ternary decomposition (see include/bitttt/decompose.h), row by row.
//
// A row is approximated block by block as  w ~= s_1 T_1 + ... + s_N T_N  with trits
// T_k in {-1,0,1} and one non-negative scale per block and base. Stage k fits one
// scaled ternary vector to the residual r = w - sum_{j<k} s_j T_j left by the stages
// before it, using the scales exactly as stored (binary16), so that the residual, and
// the error statistics, describe what a reader reconstructs. The one-block fits are in
// ternary_fit.cpp.
#include "bitttt/decompose.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "convert/block_fit.h"
#include "convert/residual_sums.h"
#include "convert/two_level.h"

namespace bitttt {

namespace {

// Writes the binary16 bits of a scale, little-endian.
inline void store_f16(std::uint8_t* p, float s) {
    const std::uint16_t h = f32_to_f16(s);
    p[0] = static_cast<std::uint8_t>(h & 0xffu);
    p[1] = static_cast<std::uint8_t>(h >> 8);
}

}  // namespace

// ---- rows ----------------------------------------------------------------------------------

namespace {

// Copies w into scratch.residual, zero-padded to whole blocks, and sizes the trit buffer.
void init_residual(const float* w, const TernaryLayout& layout, RowScratch& scratch) {
    const std::size_t padded =
        static_cast<std::size_t>(layout.blocks_per_row()) * static_cast<std::size_t>(layout.block_size);
    const std::size_t cols = static_cast<std::size_t>(layout.cols);
    scratch.residual.resize(padded);
    std::copy(w, w + cols, scratch.residual.begin());
    std::fill(scratch.residual.begin() + static_cast<std::ptrdiff_t>(cols), scratch.residual.end(), 0.0f);
    scratch.trits.resize(static_cast<std::size_t>(layout.block_size));
}

// Fits one block's residual r[0..n_valid) for the given method and stage. Writes the
// trits (0 beyond n_valid up to block_size) and returns the scale as stored.
float fit_block(Method method, const float* r, int n_valid, int block_size, float tensor_scale,
                std::int8_t* t) {
    float stored = 0.0f;
    switch (method) {
        case Method::Greedy:
            // The trits of the exact fit are kept after rounding the scale. With the
            // support fixed the error is E(s) = E* + m (s - s*)^2, so rounding s* to
            // binary16 (relative error <= 2^-11) costs at most m s*^2 2^-22, a relative
            // 2^-22 of what the stage removed (S*^2/m = m s*^2).
            stored = round_scale(fit_ternary_optimal(r, n_valid, t));
            break;
        case Method::Absmean: {
            const float scale = mean_abs(r, n_valid);
            fit_ternary_absmean(r, n_valid, scale, t);
            stored = round_scale(scale);
            break;
        }
        case Method::AbsmeanTensor:
            fit_ternary_absmean(r, n_valid, tensor_scale, t);
            stored = round_scale(tensor_scale);
            break;
    }
    // A scale that rounds to 0 (below the binary16 subnormal range) contributes nothing;
    // zero its trits so the stored bytes are canonical.
    if (stored == 0.0f) std::memset(t, 0, static_cast<std::size_t>(n_valid));
    // Padding positions are never part of the fit.
    if (n_valid < block_size) std::memset(t + n_valid, 0, static_cast<std::size_t>(block_size - n_valid));
    return stored;
}

}  // namespace

void write_block(const TernaryLayout& layout, const fit::Grid& grid, const int* idx, int n_valid, const float* scales,
                 std::int8_t* t, std::uint8_t* blk, const std::uint8_t* sub) {
    const int bs = layout.block_size;
    const int nb = layout.bases;
    const std::size_t gb = layout.group_bytes();
    std::int8_t digits[fit::kMaxBases];
    for (int i = 0; i < n_valid; ++i) {
        grid.trits(idx[i], digits);
        for (int k = 0; k < nb; ++k) t[k * bs + i] = digits[k];
    }
    for (int k = 0; k < nb; ++k) {
        std::int8_t* tk = t + k * bs;
        // Canonical bytes: a base whose scale is 0 contributes nothing, so its trits are 0;
        // padding positions are never part of the fit.
        const bool dead = layout.tied() ? scales[0] == 0.0f : scales[k] == 0.0f;
        if (dead) std::memset(tk, 0, static_cast<std::size_t>(n_valid));
        if (n_valid < bs) std::memset(tk + n_valid, 0, static_cast<std::size_t>(bs - n_valid));
        pack_trits(layout.packing, tk, bs, blk + layout.block_scale_bytes() + k * gb);
    }
    if (layout.two_level()) {
        if (sub == nullptr) throw Error("write_block: a two-level layout needs the 8-bit scale codes");
        std::copy(sub, sub + layout.scale_count(), blk);
        return;
    }
    for (int k = 0; k < layout.scale_count(); ++k) store_f16(blk + 2 * k, scales[k]);
}

namespace {

// r -= s * t over the block.
inline void subtract_scaled(float* r, const std::int8_t* t, int n, float s) {
    for (int i = 0; i < n; ++i) r[i] -= s * static_cast<float>(t[i]);
}

}  // namespace

void decompose_row(const float* w, const TernaryLayout& layout, Method method,
                   const float* tensor_scales, std::uint8_t* out, double* sq_err,
                   RowScratch& scratch) {
    layout.validate();
    if (method == Method::AbsmeanTensor && tensor_scales == nullptr) {
        throw UsageError("method absmean-tensor needs per-stage tensor scales");
    }
    if (layout.two_level()) {  // always a joint fit (below)
        FitOptions fit;
        fit.method = method;
        decompose_row(w, layout, fit, tensor_scales, out, sq_err, scratch);
        return;
    }
    init_residual(w, layout, scratch);

    const int bs = layout.block_size;
    const int nbases = layout.bases;
    const std::size_t gb = layout.group_bytes();
    const std::size_t block_bytes = layout.block_bytes();
    const std::int64_t nblocks = layout.blocks_per_row();
    std::int8_t* t = scratch.trits.data();

    for (int k = 0; k < nbases; ++k) {
        const float tensor_scale = method == Method::AbsmeanTensor ? tensor_scales[k] : 0.0f;
        double err = 0.0;
        for (std::int64_t b = 0; b < nblocks; ++b) {
            float* r = scratch.residual.data() + b * bs;
            const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, layout.cols - b * bs));
            const float s = fit_block(method, r, n_valid, bs, tensor_scale, t);

            std::uint8_t* blk = out + static_cast<std::size_t>(b) * block_bytes;
            store_f16(blk + 2 * k, s);
            pack_trits(layout.packing, t, bs, blk + 2 * static_cast<std::size_t>(nbases) + k * gb);

            subtract_scaled(r, t, n_valid, s);
            err += residual_sums::squares(r, n_valid);
        }
        sq_err[k] += err;
    }
}

void add_prefix_errors(const TernaryLayout& layout, const float* r, int n, const float* scales,
                       const std::int8_t* trits, int stride, double* sq_err) {
    const int nb = layout.bases;
    if (layout.tied()) {
        // Exactly dequantize_row: (f16(s) * m_K) * level_K, level_K = sum 3^(K-1-k) t_k.
        for (int kk = 1; kk <= nb; ++kk) {
            const float step = scales[0] * tied_multiplier(kk);
            double err = 0.0;
            for (int i = 0; i < n; ++i) {
                std::int32_t level = 0;
                for (int k = 0; k < kk; ++k) level = 3 * level + trits[k * stride + i];
                const double e = static_cast<double>(r[i]) - static_cast<double>(step * static_cast<float>(level));
                err += e * e;
            }
            sq_err[kk - 1] += err;
        }
        return;
    }
    for (int i = 0; i < n; ++i) {
        float acc = 0.0f;  // one float add per base, base 1 first
        for (int k = 0; k < nb; ++k) {
            acc += scales[k] * static_cast<float>(trits[k * stride + i]);
            const double e = static_cast<double>(r[i]) - static_cast<double>(acc);
            sq_err[k] += e * e;
        }
    }
}

namespace {

// One block's joint fit: tied, or free with refinement; scales[0..M) as fitted (binary16).
void fit_block_joint(const TernaryLayout& layout, const FitOptions& fit, const float* r, const float* d, int n_valid,
                     float* scales, fit::Grid& grid, fit::BlockScratch& scratch) {
    if (layout.tied()) {
        scales[0] = fit::fit_tied(r, d, n_valid, layout.bases, grid, scratch);
    } else {
        fit::fit_free(r, d, n_valid, layout.bases, fit.refine_rounds, scales, grid, scratch);
    }
}

// Two-level scales: every block fitted, then the row's super-scales chosen from the fitted
// scales (no block clipped) and each block's scales snapped to 8-bit multiples of them.
void decompose_row_two_level(const float* w, const TernaryLayout& layout, const FitOptions& fit, std::uint8_t* out,
                             double* sq_err, RowScratch& scratch) {
    auto& bs_scratch = *static_cast<fit::BlockScratch*>(scratch.joint.get());
    const int bs = layout.block_size;
    const int m = layout.scale_count();
    const std::int64_t nblocks = layout.blocks_per_row();
    std::int8_t* t = scratch.trits.data();
    fit::Grid& grid = bs_scratch.grid;
    auto& fitted = scratch.block;  // [block][kMaxBases] fitted scales
    fitted.assign(static_cast<std::size_t>(nblocks) * fit::kMaxBases, 0.0f);
    float supers[fit::kMaxBases] = {};
    for (std::int64_t b = 0; b < nblocks; ++b) {
        const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, layout.cols - b * bs));
        float* s = fitted.data() + b * fit::kMaxBases;
        fit_block_joint(layout, fit, w + b * bs, fit.col_weights ? fit.col_weights + b * bs : nullptr, n_valid, s, grid,
                        bs_scratch);
        for (int k = 0; k < m; ++k) supers[k] = std::max(supers[k], s[k]);
    }
    for (int k = 0; k < m; ++k) {
        supers[k] = fit::super_scale(supers[k]);
        store_f16(out + 2 * k, supers[k]);
    }
    std::vector<int>& idx = bs_scratch.best_idx;
    idx.resize(static_cast<std::size_t>(bs));
    for (std::int64_t b = 0; b < nblocks; ++b) {
        const float* r = w + b * bs;
        const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, layout.cols - b * bs));
        float* s = fitted.data() + b * fit::kMaxBases;
        std::uint8_t sub[fit::kMaxBases];
        fit::snap_block(r, fit.col_weights ? fit.col_weights + b * bs : nullptr, n_valid, layout.bases, layout.tied(),
                        supers, s, sub, grid, idx.data(), bs_scratch);
        write_block(layout, grid, idx.data(), n_valid, s, t, out + layout.block_offset(b), sub);
        add_prefix_errors(layout, r, n_valid, s, t, bs, sq_err);
    }
}

// Every block fitted at once (tied scales, refinement, column weights or two-level scales).
void decompose_row_joint(const float* w, const TernaryLayout& layout, const FitOptions& fit, std::uint8_t* out,
                         double* sq_err, RowScratch& scratch) {
    if (!scratch.joint) scratch.joint = std::make_shared<fit::BlockScratch>();
    auto& bs_scratch = *static_cast<fit::BlockScratch*>(scratch.joint.get());
    const int bs = layout.block_size;
    const int nb = layout.bases;
    const std::size_t block_bytes = layout.block_bytes();
    const std::int64_t nblocks = layout.blocks_per_row();
    scratch.trits.resize(static_cast<std::size_t>(nb) * static_cast<std::size_t>(bs));
    std::int8_t* t = scratch.trits.data();
    fit::Grid& grid = bs_scratch.grid;  // its buffers are reused from row to row
    if (layout.two_level()) {
        decompose_row_two_level(w, layout, fit, out, sq_err, scratch);
        return;
    }
    for (std::int64_t b = 0; b < nblocks; ++b) {
        const float* r = w + b * bs;
        const float* d = fit.col_weights ? fit.col_weights + b * bs : nullptr;
        const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, layout.cols - b * bs));
        float scales[fit::kMaxBases] = {};
        fit_block_joint(layout, fit, r, d, n_valid, scales, grid, bs_scratch);
        bs_scratch.idx.resize(static_cast<std::size_t>(n_valid));
        fit::assign(grid, r, nullptr, n_valid, bs_scratch.idx.data());
        write_block(layout, grid, bs_scratch.idx.data(), n_valid, scales, t,
                    out + static_cast<std::size_t>(b) * block_bytes);
        add_prefix_errors(layout, r, n_valid, scales, t, bs, sq_err);
    }
}

}  // namespace

void decompose_row(const float* w, const TernaryLayout& layout, const FitOptions& fit, const float* tensor_scales,
                   std::uint8_t* out, double* sq_err, RowScratch& scratch) {
    layout.validate();
    const bool joint = layout.tied() || layout.two_level() || fit.refine_rounds > 0 || fit.col_weights != nullptr;
    if (!joint) {
        decompose_row(w, layout, fit.method, tensor_scales, out, sq_err, scratch);
        return;
    }
    if (fit.method != Method::Greedy) {
        throw UsageError(std::string("tied and two-level scales, refinement and calibration weights need the greedy "
                                     "method, not ") +
                         method_name(fit.method));
    }
    decompose_row_joint(w, layout, fit, out, sq_err, scratch);
}

void accumulate_abs_residual(const float* w, const TernaryLayout& layout, const float* scales,
                             int stage, double* abs_sum, RowScratch& scratch) {
    layout.validate();
    if (stage < 0 || stage > layout.bases) {
        throw UsageError("stage " + std::to_string(stage) + " is out of range (allowed 0.." +
                         std::to_string(layout.bases) + ")");
    }
    init_residual(w, layout, scratch);

    const int bs = layout.block_size;
    const std::int64_t nblocks = layout.blocks_per_row();
    std::int8_t* t = scratch.trits.data();
    double acc = 0.0;
    for (std::int64_t b = 0; b < nblocks; ++b) {
        float* r = scratch.residual.data() + b * bs;
        const int n_valid = static_cast<int>(std::min<std::int64_t>(bs, layout.cols - b * bs));
        // Replays stages 0..stage-1 exactly as decompose_row does for AbsmeanTensor.
        for (int k = 0; k < stage; ++k) {
            const float s = fit_block(Method::AbsmeanTensor, r, n_valid, bs, scales[k], t);
            subtract_scaled(r, t, n_valid, s);
        }
        acc += residual_sums::abs_sum(r, n_valid);
    }
    *abs_sum += acc;
}

}  // namespace bitttt
