// GPTQ-style error feedback for the ternary fits (see error_feedback.h).
#include "convert/error_feedback.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <string>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "convert/block_fit.h"
#include "convert/calibrate_gemm.h"
#include "convert/two_level.h"

namespace bitttt {

namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;  // column-major
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace

ErrorFeedback::ErrorFeedback(std::int64_t cols, std::int64_t group, const float* diag, double damp,
                             const BlockReader& read, const std::string& what)
    : cols_(cols), group_(group <= 0 || group >= cols ? cols : group) {
    double mean_diag = 0.0;
    for (std::int64_t i = 0; i < cols; ++i) mean_diag += diag[i];
    mean_diag /= static_cast<double>(std::max<std::int64_t>(cols, 1));
    if (!(mean_diag > 0.0) || !std::isfinite(mean_diag)) {
        throw UsageError(what + ": the calibration statistics are zero or not finite; recalibrate");
    }
    const double add = damp * mean_diag;
    diag_.resize(static_cast<std::size_t>(cols));
    for (std::int64_t i = 0; i < cols; ++i) diag_[static_cast<std::size_t>(i)] = static_cast<float>(diag[i] + add);

    std::vector<float> h;
    for (std::int64_t c0 = 0; c0 < cols; c0 += group_) {
        Group g;
        g.c0 = c0;
        g.n = std::min(group_, cols - c0);
        const auto n = static_cast<Eigen::Index>(g.n);
        read(c0, c0 + g.n, h);
        // With P the order-reversing permutation, let P H_d P = L L^T (Cholesky). Then
        // H_d^-1 = P L^-T L^-1 P = U^T U with U = P L^-1 P, which is upper triangular: one
        // Cholesky and one triangular solve, no full inverse.
        MatF m(n, n);
        for (Eigen::Index j = 0; j < n; ++j) {
            for (Eigen::Index i = 0; i < n; ++i) m(i, j) = h[static_cast<std::size_t>((n - 1 - i) * n + (n - 1 - j))];
            m(j, j) += static_cast<float>(add);
        }
        Eigen::LLT<Eigen::Ref<MatF>> llt(m);  // in place: m holds L
        if (llt.info() != Eigen::Success) {
            throw UsageError(what + ": the dampened calibration matrix is not positive definite; recalibrate with "
                                    "more text or raise --damp");
        }
        MatF linv = MatF::Identity(n, n);
        m.triangularView<Eigen::Lower>().solveInPlace(linv);
        g.u.assign(static_cast<std::size_t>(n) * static_cast<std::size_t>(n), 0.0f);
        for (Eigen::Index i = 0; i < n; ++i) {
            for (Eigen::Index j = i; j < n; ++j) g.u[static_cast<std::size_t>(i * n + j)] = linv(n - 1 - i, n - 1 - j);
        }
        groups_.push_back(std::move(g));
    }
}

void ErrorFeedback::quantize_rows(const TernaryLayout& layout, const FitOptions& fit, float* w, const float* orig,
                                  std::int64_t rows, std::uint8_t* out, double* sq_err) const {
    const std::int64_t n = cols_;
    const int bs = layout.block_size;
    const int nb = layout.bases;
    const std::size_t row_bytes = layout.row_bytes();
    if (group_ % bs != 0 && group_ != cols_) {
        throw UsageError("error feedback groups of " + std::to_string(group_) + " columns do not hold whole blocks of " +
                         std::to_string(bs));
    }

    thread_local fit::BlockScratch scratch;
    std::vector<fit::Grid> grids(static_cast<std::size_t>(rows));
    std::vector<float> scales(static_cast<std::size_t>(rows) * fit::kMaxBases);
    std::vector<int> idx(static_cast<std::size_t>(rows) * static_cast<std::size_t>(bs));
    std::vector<std::int8_t> trits(static_cast<std::size_t>(nb) * static_cast<std::size_t>(bs));
    RowMatF err(rows, bs);
    // Two-level scales: each row's super-scales come from fits of its original values (the
    // error-updated ones are not known yet), and every block's fitted scales are snapped to
    // them (clamped at 255 * d when the updates pushed a block past the original range).
    const int m = layout.scale_count();
    std::vector<float> supers;
    std::vector<std::uint8_t> subs(static_cast<std::size_t>(rows) * fit::kMaxBases);
    if (layout.two_level()) {
        supers.assign(static_cast<std::size_t>(rows) * fit::kMaxBases, 0.0f);
        fit::Grid probe;
        for (std::int64_t r = 0; r < rows; ++r) {
            float* sup = supers.data() + r * fit::kMaxBases;
            for (std::int64_t c0 = 0; c0 < n; c0 += bs) {
                const int nv = static_cast<int>(std::min<std::int64_t>(bs, n - c0));
                float s[fit::kMaxBases] = {};
                if (layout.tied()) {
                    s[0] = fit::fit_tied(orig + r * n + c0, diag_.data() + c0, nv, nb, probe, scratch);
                } else {
                    fit::fit_free(orig + r * n + c0, diag_.data() + c0, nv, nb, fit.refine_rounds, s, probe, scratch);
                }
                for (int k = 0; k < m; ++k) sup[k] = std::max(sup[k], s[k]);
            }
            std::uint8_t* header = out + static_cast<std::size_t>(r) * row_bytes;
            for (int k = 0; k < m; ++k) {
                sup[k] = fit::super_scale(sup[k]);
                const std::uint16_t h = f32_to_f16(sup[k]);
                header[2 * k] = static_cast<std::uint8_t>(h & 0xFF);
                header[2 * k + 1] = static_cast<std::uint8_t>(h >> 8);
            }
        }
    }

    for (const Group& g : groups_) {
        for (std::int64_t j0 = 0; j0 < g.n; j0 += bs) {  // j: column within the group
            const std::int64_t c0 = g.c0 + j0;              // c: column within the row
            const int nv = static_cast<int>(std::min<std::int64_t>(bs, n - c0));
            const std::int64_t b = c0 / bs;
            const float* d = diag_.data() + c0;
            // Each row's block fitted to its current (error-updated) values.
            for (std::int64_t r = 0; r < rows; ++r) {
                const float* x = w + r * n + c0;
                float* s = scales.data() + r * fit::kMaxBases;
                fit::Grid& grid = grids[static_cast<std::size_t>(r)];
                if (layout.tied()) {
                    s[0] = fit::fit_tied(x, d, nv, nb, grid, scratch);
                } else {
                    fit::fit_free(x, d, nv, nb, fit.refine_rounds, s, grid, scratch);
                }
                if (layout.two_level()) {
                    scratch.best_idx.resize(static_cast<std::size_t>(nv));
                    fit::snap_block(x, d, nv, nb, layout.tied(), supers.data() + r * fit::kMaxBases, s,
                                    subs.data() + r * fit::kMaxBases, grid, scratch.best_idx.data(), scratch);
                }
            }
            // Column by column: round to the row's grid, push the error right within the block.
            for (int j = 0; j < nv; ++j) {
                const std::int64_t jj = j0 + j;
                const float* urow = g.u.data() + jj * g.n;
                const float ujj = urow[jj];
                for (std::int64_t r = 0; r < rows; ++r) {
                    float* x = w + r * n + c0;
                    const fit::Grid& grid = grids[static_cast<std::size_t>(r)];
                    const int i = grid.nearest(x[j]);
                    idx[static_cast<std::size_t>(r * bs + j)] = i;
                    const float e = (x[j] - grid.value(i)) / ujj;
                    err(r, j) = e;
                    for (int k = j + 1; k < nv; ++k) x[k] -= e * urow[j0 + k];
                }
            }
            // ... and onto the group's later columns at once.
            const std::int64_t rest = g.n - (j0 + nv);
            if (rest > 0) {
                // AVX2 + FMA when the CPU has it (calibrate_gemm.h), like calibration's GEMMs.
                calib::gemm_ops().sub_matmul(w + c0 + nv, n, err.data(), bs, g.u.data() + j0 * g.n + j0 + nv, g.n,
                                             rows, nv, rest);
            }
            // Pack, and the statistics against the original weights.
            for (std::int64_t r = 0; r < rows; ++r) {
                std::uint8_t* blk = out + static_cast<std::size_t>(r) * row_bytes + layout.block_offset(b);
                const float* s = scales.data() + r * fit::kMaxBases;
                write_block(layout, grids[static_cast<std::size_t>(r)], idx.data() + r * bs, nv, s, trits.data(), blk,
                            subs.data() + r * fit::kMaxBases);
                add_prefix_errors(layout, orig + r * n + c0, nv, s, trits.data(), bs, sq_err + r * nb);
            }
        }
    }
}

}  // namespace bitttt
