// GPTQ-style error feedback for the ternary fits (see error_feedback.h).
#include "convert/error_feedback.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <string>

#include "bitttt/error.h"
#include "convert/block_fit.h"

namespace bitttt {

namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;  // column-major
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace

ErrorFeedback::ErrorFeedback(const std::vector<double>& h, std::int64_t cols, double damp, const std::string& what)
    : cols_(cols) {
    const auto n = static_cast<Eigen::Index>(cols);
    if (static_cast<std::int64_t>(h.size()) != cols * cols) {
        throw UsageError(what + ": calibration matrix has " + std::to_string(h.size()) + " values, expected " +
                         std::to_string(cols) + "^2");
    }
    double mean_diag = 0.0;
    for (std::int64_t i = 0; i < cols; ++i) mean_diag += h[static_cast<std::size_t>(i * cols + i)];
    mean_diag /= static_cast<double>(std::max<std::int64_t>(cols, 1));
    if (!(mean_diag > 0.0) || !std::isfinite(mean_diag)) {
        throw UsageError(what + ": the calibration statistics are zero or not finite; recalibrate");
    }
    const double add = damp * mean_diag;
    diag_.resize(static_cast<std::size_t>(cols));
    for (std::int64_t i = 0; i < cols; ++i) {
        diag_[static_cast<std::size_t>(i)] = static_cast<float>(h[static_cast<std::size_t>(i * cols + i)] + add);
    }

    // With P the order-reversing permutation, let P H_d P = L L^T (Cholesky). Then
    // H_d^-1 = P L^-T L^-1 P = U^T U with U = P L^-1 P, which is upper triangular: one
    // Cholesky and one triangular inverse, no full inverse.
    MatF m(n, n);
    for (Eigen::Index j = 0; j < n; ++j) {
        for (Eigen::Index i = 0; i < n; ++i) {
            double v = h[static_cast<std::size_t>((n - 1 - i) * n + (n - 1 - j))];
            if (i == j) v += add;
            m(i, j) = static_cast<float>(v);
        }
    }
    Eigen::LLT<Eigen::Ref<MatF>> llt(m);  // in place: m holds L
    if (llt.info() != Eigen::Success) {
        throw UsageError(what + ": the dampened calibration matrix is not positive definite; recalibrate with "
                                "more text or raise the dampening");
    }
    MatF linv = MatF::Identity(n, n);
    m.triangularView<Eigen::Lower>().solveInPlace(linv);
    m.resize(0, 0);
    // U(i, j) = Linv(n-1-i, n-1-j): in column-major storage, the buffer reversed. Stored
    // row-major as u_[i * n + j], which is the transpose of that buffer's layout.
    u_.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(n));
    for (Eigen::Index i = 0; i < n; ++i) {
        for (Eigen::Index j = i; j < n; ++j) u_[static_cast<std::size_t>(i * n + j)] = linv(n - 1 - i, n - 1 - j);
        for (Eigen::Index j = 0; j < i; ++j) u_[static_cast<std::size_t>(i * n + j)] = 0.0f;
    }
}

void ErrorFeedback::quantize_rows(const TernaryLayout& layout, const FitOptions& fit, float* w, const float* orig,
                                  std::int64_t rows, std::uint8_t* out, double* sq_err) const {
    const std::int64_t n = cols_;
    const int bs = layout.block_size;
    const int nb = layout.bases;
    const std::int64_t nblocks = layout.blocks_per_row();
    const std::size_t row_bytes = layout.row_bytes();
    Eigen::Map<RowMatF> wm(w, rows, n);
    Eigen::Map<const RowMatF> um(u_.data(), n, n);

    thread_local fit::BlockScratch scratch;
    std::vector<fit::Grid> grids(static_cast<std::size_t>(rows));
    std::vector<float> scales(static_cast<std::size_t>(rows) * fit::kMaxBases);
    std::vector<int> idx(static_cast<std::size_t>(rows) * static_cast<std::size_t>(bs));
    std::vector<std::int8_t> trits(static_cast<std::size_t>(nb) * static_cast<std::size_t>(bs));
    RowMatF err(rows, bs);

    for (std::int64_t b = 0; b < nblocks; ++b) {
        const std::int64_t c0 = b * bs;
        const int nv = static_cast<int>(std::min<std::int64_t>(bs, n - c0));
        const float* d = diag_.data() + c0;
        // Each row's block fitted to its current (error-updated) values.
        for (std::int64_t r = 0; r < rows; ++r) {
            const float* x = w + r * n + c0;
            float* s = scales.data() + r * fit::kMaxBases;
            fit::Grid& g = grids[static_cast<std::size_t>(r)];
            if (layout.tied()) {
                s[0] = fit::fit_tied(x, d, nv, nb, g, scratch);
            } else {
                fit::fit_free(x, d, nv, nb, fit.refine_rounds, s, g, scratch);
            }
        }
        // Column by column: round to the row's grid, push the error right within the block.
        for (int j = 0; j < nv; ++j) {
            const std::int64_t c = c0 + j;
            const float ujj = um(c, c);
            for (std::int64_t r = 0; r < rows; ++r) {
                float* x = w + r * n;
                const fit::Grid& g = grids[static_cast<std::size_t>(r)];
                const int i = g.nearest(x[c]);
                idx[static_cast<std::size_t>(r * bs + j)] = i;
                const float e = (x[c] - g.value(i)) / ujj;
                err(r, j) = e;
                for (int jj = j + 1; jj < nv; ++jj) x[c0 + jj] -= e * um(c, c0 + jj);
            }
        }
        // ... and onto every later column at once.
        const std::int64_t rest = n - (c0 + nv);
        if (rest > 0) {
            wm.rightCols(rest).noalias() -= err.leftCols(nv) * um.block(c0, c0 + nv, nv, rest);
        }
        // Pack, and the statistics against the original weights.
        for (std::int64_t r = 0; r < rows; ++r) {
            std::uint8_t* blk = out + static_cast<std::size_t>(r) * row_bytes + static_cast<std::size_t>(b) * layout.block_bytes();
            const float* s = scales.data() + r * fit::kMaxBases;
            write_block(layout, grids[static_cast<std::size_t>(r)], idx.data() + r * bs, nv, s, trits.data(), blk);
            add_prefix_errors(layout, orig + r * n + c0, nv, s, trits.data(), bs, sq_err + r * nb);
        }
    }
}

}  // namespace bitttt
