// Joint fits of the N bases of a block: free scales with alternating refinement, and tied
// scales (see block_fit.h).
#include "convert/block_fit.h"

#include <Eigen/Dense>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#include "bitttt/decompose.h"

namespace bitttt::fit {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, kMaxBases, kMaxBases>;
using Vec = Eigen::Matrix<double, Eigen::Dynamic, 1, 0, kMaxBases, 1>;

inline double weight(const float* d, int i) { return d ? static_cast<double>(d[i]) : 1.0; }

// Trits of every combination c (digit k of c in base 3, minus 1, base 0 least significant)
// for N = 1..8: table(N)[c * N + k]. Built once.
const std::int8_t* combo_trits(int bases) {
    static const auto tables = [] {
        std::array<std::vector<std::int8_t>, kMaxBases + 1> t;
        for (int nb = 1; nb <= kMaxBases; ++nb) {
            const int n = pow3(nb);
            t[static_cast<std::size_t>(nb)].resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(nb));
            for (int c = 0; c < n; ++c) {
                int rest = c;
                for (int k = 0; k < nb; ++k) {
                    t[static_cast<std::size_t>(nb)][static_cast<std::size_t>(c * nb + k)] = static_cast<std::int8_t>(rest % 3 - 1);
                    rest /= 3;
                }
            }
        }
        return t;
    }();
    return tables[static_cast<std::size_t>(bases)].data();
}

// Balanced-ternary digits of every level L = sum 3^(N-1-k) t_k (t_0 most significant), for
// N = 1..8: table(N)[(L + (3^N-1)/2) * N + k]. Built once.
const std::int8_t* level_trits(int bases) {
    static const auto tables = [] {
        std::array<std::vector<std::int8_t>, kMaxBases + 1> t;
        for (int nb = 1; nb <= kMaxBases; ++nb) {
            const int n = pow3(nb), half = (n - 1) / 2;
            t[static_cast<std::size_t>(nb)].resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(nb));
            for (int i = 0; i < n; ++i) {
                int level = i - half;
                for (int k = nb - 1; k >= 0; --k) {
                    const int rem = ((level % 3) + 3) % 3;
                    const int digit = rem == 2 ? -1 : rem;
                    t[static_cast<std::size_t>(nb)][static_cast<std::size_t>(i * nb + k)] = static_cast<std::int8_t>(digit);
                    level = (level - digit) / 3;
                }
            }
        }
        return t;
    }();
    return tables[static_cast<std::size_t>(bases)].data();
}

}  // namespace

// ---- grids ---------------------------------------------------------------------------------

void Grid::set_free(const float* scales, int bases) {
    bases_ = bases;
    tied_ = false;
    const int n = pow3(bases);
    values_.resize(static_cast<std::size_t>(n));
    combo_.resize(static_cast<std::size_t>(n));
    std::vector<std::pair<float, std::uint16_t>> v(static_cast<std::size_t>(n));
    for (int c = 0; c < n; ++c) {
        float acc = 0.0f;  // the reader's order: base 0 first, one float add per base
        int rest = c;
        for (int k = 0; k < bases; ++k) {
            acc += scales[k] * static_cast<float>(rest % 3 - 1);
            rest /= 3;
        }
        v[static_cast<std::size_t>(c)] = {acc, static_cast<std::uint16_t>(c)};
    }
    std::sort(v.begin(), v.end());
    for (int i = 0; i < n; ++i) {
        values_[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(i)].first;
        combo_[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(i)].second;
    }
    // Midpoints, padded to a multiple of 8 with +inf (never below x), for the counting search.
    const int m = n - 1;
    mids_.assign(static_cast<std::size_t>((m + 7) / 8 * 8), std::numeric_limits<float>::infinity());
    for (int i = 0; i < m; ++i) {
        mids_[static_cast<std::size_t>(i)] = 0.5f * values_[static_cast<std::size_t>(i)] + 0.5f * values_[static_cast<std::size_t>(i + 1)];
    }
}

void Grid::set_tied(float scale, int bases) {
    bases_ = bases;
    tied_ = true;
    step_ = scale * tied_multiplier(bases);
    const int half = (pow3(bases) - 1) / 2;
    values_.resize(static_cast<std::size_t>(2 * half + 1));
    for (int l = -half; l <= half; ++l) values_[static_cast<std::size_t>(l + half)] = step_ * static_cast<float>(l);
    combo_.clear();
}

int Grid::nearest(float x) const {
    const int n = static_cast<int>(values_.size());
    int i;
    if (tied_) {
        // Round x / step, then settle on the true nearest among the neighbours (the
        // division may be off by an ulp at a midpoint).
        const int half = (n - 1) / 2;
        const float q = step_ > 0.0f ? std::nearbyint(x / step_) : 0.0f;
        i = static_cast<int>(std::clamp(q, static_cast<float>(-half), static_cast<float>(half))) + half;
    } else if (mids_.size() <= 128) {
        // Small grids (N <= 4): the number of midpoints below x, counted branch-free in
        // lanes; binary search loses to its mispredicted branches here.
        int cnt[8] = {};
        for (std::size_t j = 0; j < mids_.size(); j += 8) {
            for (int u = 0; u < 8; ++u) cnt[u] += mids_[j + static_cast<std::size_t>(u)] < x ? 1 : 0;
        }
        i = ((cnt[0] + cnt[1]) + (cnt[2] + cnt[3])) + ((cnt[4] + cnt[5]) + (cnt[6] + cnt[7]));
    } else {
        i = static_cast<int>(std::lower_bound(values_.begin(), values_.end(), x) - values_.begin());
        i = std::min(i, n - 1);
    }
    // values_ is ascending: move to the neighbour while it is strictly closer (prefer the
    // smaller index on ties, deterministic).
    auto dist = [&](int j) { return std::fabs(static_cast<double>(x) - values_[static_cast<std::size_t>(j)]); };
    while (i > 0 && dist(i - 1) <= dist(i)) --i;
    while (i + 1 < n && dist(i + 1) < dist(i)) ++i;
    return i;
}

void Grid::trits(int i, std::int8_t* t) const {
    const std::int8_t* src = tied_ ? level_trits(bases_) + static_cast<std::size_t>(i) * static_cast<std::size_t>(bases_)
                                   : combo_trits(bases_) + static_cast<std::size_t>(combo_[static_cast<std::size_t>(i)]) *
                                                               static_cast<std::size_t>(bases_);
    std::copy(src, src + bases_, t);
}

double assign(const Grid& g, const float* r, const float* d, int n, int* idx) {
    double err = 0.0;
    for (int i = 0; i < n; ++i) {
        idx[i] = g.nearest(r[i]);
        const double e = static_cast<double>(r[i]) - g.value(idx[i]);
        err += weight(d, i) * e * e;
    }
    return err;
}

// ---- free scales ---------------------------------------------------------------------------

namespace {

// Scales in decreasing order (stored rounding, non-negative) into the grid.
void set_sorted(float* scales, int bases, Grid& g) {
    for (int k = 0; k < bases; ++k) scales[k] = round_scale(std::fabs(scales[k]));
    // Insertion sort, descending (at most 8 values).
    for (int i = 1; i < bases; ++i) {
        for (int j = i; j > 0 && scales[j - 1] < scales[j]; --j) std::swap(scales[j - 1], scales[j]);
    }
    g.set_free(scales, bases);
}

// Weighted least squares for the scales with the trits of entries idx fixed: minimise
// sum d_i (r_i - sum_k s_k t_ik)^2. A small ridge keeps the system solvable when a base is
// all zero or two bases coincide (then the solution is the minimum-norm-like one).
void solve_scales(const Grid& g, const float* r, const float* d, int n, const int* idx, float* scales,
                  BlockScratch& scratch) {
    const int nb = g.bases();
    // Per grid entry: sum d and sum d r of the weights on it; then A and y from the entries
    // in use (N^2 work per entry, not per weight).
    const auto entries = static_cast<std::size_t>(pow3(nb));
    scratch.entry_w.assign(entries, 0.0);
    scratch.entry_wr.assign(entries, 0.0);
    for (int i = 0; i < n; ++i) {
        const auto e = static_cast<std::size_t>(idx[i]);
        scratch.entry_w[e] += weight(d, i);
        scratch.entry_wr[e] += weight(d, i) * static_cast<double>(r[i]);
    }
    Mat a = Mat::Zero(nb, nb);
    Vec y = Vec::Zero(nb);
    std::int8_t t[kMaxBases];
    for (std::size_t e = 0; e < entries; ++e) {
        if (scratch.entry_w[e] == 0.0) continue;
        g.trits(static_cast<int>(e), t);
        for (int k = 0; k < nb; ++k) {
            if (t[k] == 0) continue;
            y(k) += t[k] * scratch.entry_wr[e];
            for (int j = 0; j < nb; ++j) a(k, j) += scratch.entry_w[e] * t[k] * t[j];
        }
    }
    const double ridge = 1e-9 * std::max(a.trace() / nb, 1e-30);
    a.diagonal().array() += ridge;
    const Eigen::LDLT<Mat> ldlt(a);
    Vec s = ldlt.solve(y);
    for (int k = 0; k < nb; ++k) scales[k] = std::isfinite(s(k)) ? static_cast<float>(s(k)) : 0.0f;
}

}  // namespace

namespace {

// Alternating refinement from the scales in `scales` (stored values, any order): returns
// the weighted error reached, the scales in `scales` and the nearest entries in
// scratch.best_idx.
double refine_from(const float* r, const float* d, int n, int bases, int rounds, float* scales, Grid& g,
                   BlockScratch& scratch) {
    set_sorted(scales, bases, g);
    scratch.idx.resize(static_cast<std::size_t>(n));
    scratch.best_idx.resize(static_cast<std::size_t>(n));
    double best = assign(g, r, d, n, scratch.best_idx.data());
    for (int round = 0; round < rounds && best > 0.0; ++round) {
        float s[kMaxBases];
        solve_scales(g, r, d, n, scratch.best_idx.data(), s, scratch);
        set_sorted(s, bases, g);
        const double e = assign(g, r, d, n, scratch.idx.data());
        if (!(e < best)) break;
        best = e;
        std::copy(s, s + bases, scales);
        std::swap(scratch.idx, scratch.best_idx);
    }
    return best;
}

}  // namespace

void fit_free(const float* r, const float* d, int n, int bases, int rounds, float* scales, Grid& g,
              BlockScratch& scratch) {
    // Greedy start: each stage the error-optimal ternary fit of what is left.
    scratch.residual.assign(r, r + n);
    scratch.trits.resize(static_cast<std::size_t>(n));
    for (int k = 0; k < bases; ++k) {
        const float s = round_scale(fit_ternary_optimal(scratch.residual.data(), n, scratch.trits.data()));
        scales[k] = s;
        for (int i = 0; i < n; ++i) scratch.residual[static_cast<std::size_t>(i)] -= s * scratch.trits[static_cast<std::size_t>(i)];
    }
    double best = refine_from(r, d, n, bases, rounds, scales, g, scratch);
    if (rounds > 0 && bases >= 2) {
        // Second start: the tied fit (scales s, s/3, s/9, ...), a different basin of the
        // alternating minimisation; the better of the two is kept.
        float alt[kMaxBases];
        const double s0 = fit_tied(r, d, n, bases, g, scratch);
        for (int k = 0; k < bases; ++k) alt[k] = static_cast<float>(s0 / pow3(k));
        const double e = refine_from(r, d, n, bases, rounds, alt, g, scratch);
        if (e < best) std::copy(alt, alt + bases, scales);
    }
    g.set_free(scales, bases);
}

// ---- tied scales ---------------------------------------------------------------------------

namespace {

constexpr int kTiedSearch = 25;
constexpr double kTiedLow = 0.4, kTiedHigh = 1.0;
constexpr int kTiedPolish = 4;

// Round to nearest even for |x| < 2^22 with SSE2-friendly float arithmetic (the compiler
// keeps the two additions: no -ffast-math here).
inline float round_even(float x) {
    constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
    return (x + kMagic) - kMagic;
}

// Weighted error of the uniform grid of `half` levels either side with this step (levels
// rounded, clamped); float arithmetic in lanes, which is enough to rank candidate steps.
template <bool kWeighted>
float tied_error_impl(const float* r, const float* d, int n, float step, int half) {
    const float inv = 1.0f / step, lim = static_cast<float>(half);
    float acc[8] = {};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int u = 0; u < 8; ++u) {
            const float l = std::min(std::max(round_even(r[i + u] * inv), -lim), lim);
            const float e = r[i + u] - step * l;
            acc[u] += (kWeighted ? d[i + u] : 1.0f) * (e * e);
        }
    }
    for (; i < n; ++i) {
        const float l = std::min(std::max(round_even(r[i] * inv), -lim), lim);
        const float e = r[i] - step * l;
        acc[0] += (kWeighted ? d[i] : 1.0f) * (e * e);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

float tied_error(const float* r, const float* d, int n, float step, int half) {
    return d ? tied_error_impl<true>(r, d, n, step, half) : tied_error_impl<false>(r, d, n, step, half);
}

// Least-squares step for the levels of `step`: sum d l r / sum d l^2 (0 if all levels are 0).
double tied_ls_step(const float* r, const float* d, int n, float step, int half) {
    double num = 0.0, den = 0.0;
    const float inv = 1.0f / step, lim = static_cast<float>(half);
    for (int i = 0; i < n; ++i) {
        const double l = std::min(std::max(round_even(r[i] * inv), -lim), lim);
        num += weight(d, i) * l * r[i];
        den += weight(d, i) * l * l;
    }
    return den > 0.0 ? num / den : 0.0;
}

}  // namespace

float fit_tied(const float* r, const float* d, int n, int bases, Grid& g, BlockScratch& scratch) {
    scratch.idx.resize(static_cast<std::size_t>(n));
    if (bases == 1 && d == nullptr) {
        // One base: the exact error-optimal ternary fit.
        scratch.trits.resize(static_cast<std::size_t>(n));
        const float s = round_scale(fit_ternary_optimal(r, n, scratch.trits.data()));
        g.set_tied(s, 1);
        return s;
    }
    const int half = (pow3(bases) - 1) / 2;
    double amax = 0.0;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(static_cast<double>(r[i])));
    if (!(amax > 0.0) || !std::isfinite(amax)) {
        g.set_tied(0.0f, bases);
        return 0.0f;
    }
    float best_step = static_cast<float>(amax / half), best = tied_error(r, d, n, best_step, half);
    for (int j = 0; j < kTiedSearch; ++j) {
        const double f = kTiedLow + (kTiedHigh - kTiedLow) * j / (kTiedSearch - 1);
        const auto step = static_cast<float>(amax * f / half);
        const float e = tied_error(r, d, n, step, half);
        if (e < best) best = e, best_step = step;
    }
    for (int p = 0; p < kTiedPolish; ++p) {
        const auto step = static_cast<float>(tied_ls_step(r, d, n, best_step, half));
        if (!(step > 0.0f)) break;
        const float e = tied_error(r, d, n, step, half);
        if (!(e < best)) break;
        best = e, best_step = step;
    }
    // Stored: the scale of base 1, s = step * 3^(N-1), as binary16.
    const float s = round_scale(static_cast<float>(static_cast<double>(best_step) * pow3(bases - 1)));
    g.set_tied(s, bases);
    return s;
}

}  // namespace bitttt::fit
