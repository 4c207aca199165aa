// Greedy residual ternary decomposition: W ~= sum_k s_k * T_k, fitted one base at a
// time to what the previous bases left (converter side; the engine never needs it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "bitttt/ternary.h"

namespace bitttt {

enum class Method {
    Greedy,         // error-optimal ternary fit per block at every stage
    Absmean,        // BitNet b1.58 rule, scale = mean|r| per block
    AbsmeanTensor,  // BitNet b1.58 rule, one scale per tensor per stage
};

const char* method_name(Method m);  // "greedy", "absmean", "absmean-tensor"
std::optional<Method> method_from_string(std::string_view s);

// Error-optimal one-scale ternary fit of r[0..n): minimises sum (r_i - s*t_i)^2 over
// s >= 0 and t in {-1,0,1}^n. For a fixed support the best s is mean |r| over it; the
// best support is the m largest |r| for the m maximising (sum of those |r|)^2 / m.
// Writes t, returns s (0 and all-zero trits when r is all zero).
float fit_ternary_optimal(const float* r, int n, std::int8_t* t);

// BitNet b1.58 rule with a given scale: t_i = clamp(round(r_i / scale), -1, 1)
// (round half away from zero); scale <= 0 gives all-zero trits.
void fit_ternary_absmean(const float* r, int n, float scale, std::int8_t* t);

// Mean |r| over r[0..n) (0 for n == 0).
float mean_abs(const float* r, int n);

// Rounds a scale to what the file stores (binary16), clamped to the finite range.
float round_scale(float s);

// Decomposes one row w[0..layout.cols) into its packed bytes (layout.row_bytes() at out).
// Each stage fits the residual left by the previous stages *with the stored (rounded)
// scales*, so the error statistics describe exactly what a reader reconstructs.
// sq_err[k] receives sum over the row of (w - reconstruction with k+1 bases)^2, for
// k = 0..bases-1 (added to, not overwritten). For Method::AbsmeanTensor, tensor_scales
// holds the per-stage scales (size bases); it is ignored otherwise.
struct RowScratch {
    std::vector<float> residual;
    std::vector<float> block;
    std::vector<std::int8_t> trits;
    std::shared_ptr<void> joint;  // the joint fits' own scratch (block_fit.h)
};
void decompose_row(const float* w, const TernaryLayout& layout, Method method,
                   const float* tensor_scales, std::uint8_t* out, double* sq_err,
                   RowScratch& scratch);

// How the N bases of a block are fitted beyond the per-stage rule.
struct FitOptions {
    Method method = Method::Greedy;
    // Free scales: rounds of joint refinement after the greedy start (0 = plain greedy
    // residual fitting). Each round solves the N x N least-squares system for the scales
    // with the trits fixed, then re-picks every weight's N trits among the 3^N
    // combinations; a round is kept only if it lowers the error. Ignored for tied scales.
    int refine_rounds = 0;
    // Importance of each input column (e.g. the calibration mean square E[x_c^2]), or null
    // for all equal: the fits minimise sum_c weight_c (w_c - w^_c)^2.
    const float* col_weights = nullptr;
};

// The general form: layout.scales picks free or tied scales; refinement and column
// weights need Method::Greedy (UsageError otherwise). With tied scales, or refinement, or
// weights, every block is fitted jointly (block_fit.h); otherwise this is the greedy
// residual fit above. sq_err[k] as above, always unweighted.
void decompose_row(const float* w, const TernaryLayout& layout, const FitOptions& fit,
                   const float* tensor_scales, std::uint8_t* out, double* sq_err, RowScratch& scratch);

// Squared errors of one fitted block, as a reader reconstructs it with 1..N bases:
// sq_err[k] += sum_{i < n} (r_i - w^_i(k+1 bases))^2. `scales` holds N stored scales
// (free) or one (tied); trits[k * stride + i] is base k's trit of weight i.
void add_prefix_errors(const TernaryLayout& layout, const float* r, int n, const float* scales,
                       const std::int8_t* trits, int stride, double* sq_err);

// For Method::AbsmeanTensor stage k (0-based): given the rows' residuals after stages
// 0..k-1 computed with `scales[0..k)`, adds sum |residual| of this row to *abs_sum.
void accumulate_abs_residual(const float* w, const TernaryLayout& layout, const float* scales,
                             int stage, double* abs_sum, RowScratch& scratch);

}  // namespace bitttt
