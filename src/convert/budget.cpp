// The bits-per-weight budget (see budget.h).
#include "convert/budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bitttt/error.h"
#include "util/thread_pool.h"

namespace bitttt {

double budget_bits_per_weight(const std::vector<BudgetTensor>& tensors, const std::vector<int>& bases) {
    double bytes = 0.0, weights = 0.0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        bytes += tensors[i].bytes[static_cast<std::size_t>(bases[i] - 1)];
        weights += static_cast<double>(tensors[i].weights);
    }
    return weights > 0 ? bytes * 8.0 / weights : 0.0;
}

namespace {

double total_bytes(const std::vector<BudgetTensor>& ts, const std::vector<int>& n) {
    double b = 0.0;
    for (std::size_t i = 0; i < ts.size(); ++i) b += ts[i].bytes[static_cast<std::size_t>(n[i] - 1)];
    return b;
}

double total_error(const std::vector<BudgetTensor>& ts, const std::vector<int>& n) {
    double e = 0.0;
    for (std::size_t i = 0; i < ts.size(); ++i) e += ts[i].error[static_cast<std::size_t>(n[i] - 1)];
    return e;
}

// Upgrades (one tensor, N -> N + j) by the largest error removed per byte added while one
// fits the budget. Ties go to the earlier tensor.
void fill_greedily(const std::vector<BudgetTensor>& ts, double budget, std::vector<int>& n) {
    double bytes = total_bytes(ts, n);
    for (;;) {
        int best_t = -1, best_to = 0;
        double best_rate = 0.0;
        for (std::size_t i = 0; i < ts.size(); ++i) {
            const auto& t = ts[i];
            const auto cur = static_cast<std::size_t>(n[i] - 1);
            for (std::size_t to = cur + 1; to < t.bytes.size(); ++to) {
                const double add = t.bytes[to] - t.bytes[cur];
                const double gain = t.error[cur] - t.error[to];
                if (add <= 0.0 || bytes + add > budget || gain <= 0.0) continue;
                if (gain / add > best_rate) best_rate = gain / add, best_t = static_cast<int>(i), best_to = static_cast<int>(to) + 1;
            }
        }
        if (best_t < 0) return;
        const auto i = static_cast<std::size_t>(best_t);
        bytes += ts[i].bytes[static_cast<std::size_t>(best_to - 1)] - ts[i].bytes[static_cast<std::size_t>(n[i] - 1)];
        n[i] = best_to;
    }
}

// The choice minimising sum error + lambda * bytes (each tensor on its own).
std::vector<int> lagrangian_choice(const std::vector<BudgetTensor>& ts, double lambda) {
    std::vector<int> n(ts.size(), 1);
    for (std::size_t i = 0; i < ts.size(); ++i) {
        double best = ts[i].error[0] + lambda * ts[i].bytes[0];
        for (std::size_t k = 1; k < ts[i].bytes.size(); ++k) {
            const double v = ts[i].error[k] + lambda * ts[i].bytes[k];
            if (v < best) best = v, n[i] = static_cast<int>(k) + 1;
        }
    }
    return n;
}

}  // namespace

std::vector<int> allocate_bases(const std::vector<BudgetTensor>& tensors, double target_bpw) {
    double weights = 0.0;
    for (const auto& t : tensors) {
        if (t.bytes.empty() || t.bytes.size() != t.error.size()) {
            throw UsageError("tensor '" + t.name + "': no bases to choose from");
        }
        weights += static_cast<double>(t.weights);
    }
    // bytes; the relative 1e-12 absorbs the rounding of a target computed from these sizes
    const double budget = target_bpw * weights / 8.0 * (1.0 + 1e-12);
    std::vector<int> ones(tensors.size(), 1);
    if (total_bytes(tensors, ones) > budget) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "--target-bpw %.3f is below what one base per tensor takes with these settings (%.3f bits "
                      "per weight)",
                      target_bpw, total_bytes(tensors, ones) * 8.0 / weights);
        throw UsageError(std::string(buf) + "; raise it, or use --packing dense, --scales tied or a larger --block-size");
    }
    // (a) Greedy from N = 1 everywhere.
    std::vector<int> greedy = ones;
    fill_greedily(tensors, budget, greedy);
    // (b) Lagrangian relaxation: the smallest price per byte whose unconstrained choice fits
    // (bisection on a log scale), then the rest of the budget filled greedily. Its choices
    // lie on each tensor's lower convex hull, which the greedy walk can miss.
    double max_rate = 0.0;
    for (const auto& t : tensors) {
        for (std::size_t k = 1; k < t.bytes.size(); ++k) {
            const double add = t.bytes[k] - t.bytes[0];
            if (add > 0) max_rate = std::max(max_rate, (t.error[0] - t.error[k]) / add);
        }
    }
    std::vector<int> lagr = ones;
    if (max_rate > 0.0) {
        double lo = max_rate * 1e-12, hi = max_rate * 2.0;  // hi: everything at N = 1 (feasible)
        for (int it = 0; it < 100; ++it) {
            const double mid = std::sqrt(lo * hi);
            if (total_bytes(tensors, lagrangian_choice(tensors, mid)) <= budget) hi = mid; else lo = mid;
        }
        lagr = lagrangian_choice(tensors, hi);
        if (total_bytes(tensors, lagr) > budget) lagr = ones;
        fill_greedily(tensors, budget, lagr);
    }
    return total_error(tensors, lagr) < total_error(tensors, greedy) ? lagr : greedy;
}

std::vector<double> estimate_errors(const Checkpoint& ckpt, const Checkpoint::Entry& e, std::int64_t rows,
                                    std::int64_t cols, int max_bases, TernaryLayout layout, const FitOptions& fit,
                                    std::int64_t sample, ThreadPool& pool) {
    sample = std::min(rows, sample);
    const auto nb = static_cast<std::size_t>(max_bases);
    std::vector<double> row_err(static_cast<std::size_t>(sample) * nb, 0.0);
    std::vector<double> row_norm(static_cast<std::size_t>(sample), 0.0);
    layout.rows = 1;
    pool.parallel_for(sample, 1, [&](std::int64_t b, std::int64_t end) {
        std::vector<float> w(static_cast<std::size_t>(cols)), back(static_cast<std::size_t>(cols));
        std::vector<std::uint8_t> packed;
        std::vector<double> sq(nb);
        RowScratch scratch;
        TernaryLayout l = layout;  // per thread: bases changes below
        for (std::int64_t i = b; i < end; ++i) {
            const std::int64_t r = i * rows / sample;
            ckpt.read_rows_f32(e, r, r + 1, w.data());
            for (int n = 1; n <= max_bases; ++n) {
                l.bases = n;
                packed.resize(l.row_bytes());
                decompose_row(w.data(), l, fit, nullptr, packed.data(), sq.data(), scratch);
                dequantize_row(l, packed.data(), 0, n, back.data());
                double err = 0.0;
                for (std::int64_t c = 0; c < cols; ++c) {
                    const double d = static_cast<double>(w[static_cast<std::size_t>(c)]) - back[static_cast<std::size_t>(c)];
                    err += (fit.col_weights ? fit.col_weights[c] : 1.0) * d * d;
                }
                row_err[static_cast<std::size_t>(i) * nb + static_cast<std::size_t>(n - 1)] = err;
            }
            double norm = 0.0;
            for (std::int64_t c = 0; c < cols; ++c) {
                norm += (fit.col_weights ? fit.col_weights[c] : 1.0) * static_cast<double>(w[static_cast<std::size_t>(c)]) * w[static_cast<std::size_t>(c)];
            }
            row_norm[static_cast<std::size_t>(i)] = norm;
        }
    });
    std::vector<double> err(nb, 0.0);
    for (std::int64_t i = 0; i < sample; ++i) {
        for (std::size_t n = 0; n < nb; ++n) err[n] += row_err[static_cast<std::size_t>(i) * nb + n];
    }
    for (double& x : err) x *= static_cast<double>(rows) / static_cast<double>(std::max<std::int64_t>(sample, 1));
    double norm = 0.0;
    for (double v : row_norm) norm += v;
    norm *= static_cast<double>(rows) / static_cast<double>(std::max<std::int64_t>(sample, 1));
    // Relative to the tensor's own (weighted) energy, times its size: a tensor's error
    // counts by how much of it is lost, not by the scale of its weights or inputs (measured
    // on stories260K: lower perplexity at every budget with a calibration file, and at most
    // budgets without, than the absolute error).
    if (norm > 0) {
        for (double& x : err) x = x / norm * static_cast<double>(rows * cols);
    }
    return err;
}

}  // namespace bitttt
