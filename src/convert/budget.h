// A bits-per-weight budget: how many bases each ternary tensor gets so that the tensors
// together stay within a target number of stored bits per weight, spending the bits where
// they remove the most error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bitttt/decompose.h"
#include "bitttt/safetensors.h"
#include "bitttt/ternary.h"

namespace bitttt {

class ThreadPool;

struct BudgetTensor {
    std::string name;
    std::int64_t weights = 0;    // rows * cols
    std::vector<double> bytes;   // [N - 1]: stored bytes with N bases, N = 1..max
    std::vector<double> error;   // [N - 1]: (estimated) error with N bases, any additive unit
};

// Chooses N_t in [1, max] for every tensor so that sum bytes_t(N_t) * 8 <= target_bpw *
// sum weights_t, greedily: starting from N = 1 everywhere, repeatedly applies the upgrade
// (one tensor, N -> N + j for any j) with the largest error removed per byte added that
// still fits, until none fits. Ties go to the earlier tensor, so the result is
// deterministic. Throws UsageError naming the smallest reachable figure when even N = 1
// everywhere exceeds the target.
std::vector<int> allocate_bases(const std::vector<BudgetTensor>& tensors, double target_bpw);

// Stored bits per weight of a choice: sum bytes * 8 / sum weights.
double budget_bits_per_weight(const std::vector<BudgetTensor>& tensors, const std::vector<int>& bases);

// Error of tensor `e` ([rows, cols]) with N = 1..max_bases bases of `layout` (whose
// bases field is ignored), estimated from `sample` rows spread evenly over the tensor and
// fitted with `fit` as the conversion fits them: sum over those rows and columns of
// w_c (W - W^)^2, with w_c = fit.col_weights (1 without), divided by the same sum of
// w_c W^2 and multiplied by rows * cols (relative error, counted per weight). [N - 1].
std::vector<double> estimate_errors(const Checkpoint& ckpt, const Checkpoint::Entry& e, std::int64_t rows,
                                    std::int64_t cols, int max_bases, TernaryLayout layout, const FitOptions& fit,
                                    std::int64_t sample, ThreadPool& pool);

}  // namespace bitttt
