// Error feedback over columns (GPTQ-style) for the ternary fits, from the calibration
// statistics of a layer's input: H = E[x x^T] over calibration tokens.
//
// The output error of a row w for inputs x is E[((w - w^) . x)^2] = (w - w^)^T H (w - w^).
// Quantising the columns in order and pushing each column's error onto the columns not yet
// quantised, through the inverse of H, removes the part of that error later columns can
// absorb. With H_d = H + damp * mean(diag H) * I and U the upper Cholesky factor of H_d^-1
// (U^T U = H_d^-1), after quantising column j of a row:
//     e = (w_j - w^_j) / U_jj,   w_c -= e * U_jc   for every c > j.
// Columns go in groups (see ErrorFeedback), and within a group in blocks of the ternary
// block size B: at the start of a block each row's
// block is fitted (free scales with refinement, or tied) to its current, error-updated
// values, weighted by diag(H_d); then its columns are rounded to that block's grid one by
// one, the error pushed within the block at once and onto later blocks as one matrix
// product per block (Eigen).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bitttt/decompose.h"
#include "bitttt/ternary.h"

namespace bitttt {

class ErrorFeedback {
public:
    // Fills out with the row-major block H[c0, c1) x [c0, c1) of E[x x^T].
    using BlockReader = std::function<void(std::int64_t c0, std::int64_t c1, std::vector<float>& out)>;

    // `cols` columns whose E[x_c^2] (the diagonal of H) is diag[0..cols). Error is pushed
    // within groups of `group` consecutive columns (a multiple of the block size; 0, or
    // cols and more, for the whole row: exact GPTQ), i.e. H is taken as block-diagonal:
    // the memory and the work grow with cols * group instead of cols^2. damp: relative
    // dampening (0.01 is GPTQ's default), added as damp * mean(diag) to the diagonal.
    // Throws UsageError naming `what` when a dampened block is not positive definite.
    ErrorFeedback(std::int64_t cols, std::int64_t group, const float* diag, double damp, const BlockReader& read,
                  const std::string& what);

    std::int64_t cols() const { return cols_; }
    std::int64_t group() const { return group_; }
    const float* diag() const { return diag_.data(); }

    // Quantises rows w[0..rows) (row-major, cols values each; overwritten with the
    // error-updated values) into packed rows at out (layout.row_bytes() each). `orig`
    // holds the original rows: sq_err[r * N + k] += their squared error after k+1 bases
    // (unweighted, exactly as a reader reconstructs). Rows are independent: the result
    // of a row does not depend on which other rows are quantised with it.
    // layout.block_size must divide group().
    void quantize_rows(const TernaryLayout& layout, const FitOptions& fit, float* w, const float* orig,
                       std::int64_t rows, std::uint8_t* out, double* sq_err) const;

private:
    struct Group {
        std::int64_t c0 = 0, n = 0;
        std::vector<float> u;  // n x n row-major, upper triangle: U^T U = (H_d block)^-1
    };
    std::int64_t cols_ = 0;
    std::int64_t group_ = 0;
    std::vector<Group> groups_;
    std::vector<float> diag_;  // diag(H_d), the weights of the block fits
};

}  // namespace bitttt
