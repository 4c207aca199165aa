// Joint fits of a block's N bases (refinement with free scales, tied scales) and error
// feedback over columns.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "bitttt/decompose.h"
#include "bitttt/dtype.h"
#include "bitttt/ternary.h"
#include "convert/block_fit.h"
#include "convert/error_feedback.h"
#include "convert/two_level.h"

using namespace bitttt;

namespace {

std::vector<float> random_block(std::mt19937& rng, int n, int shape) {
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::student_t_distribution<float> heavy(3.0f);
    std::uniform_int_distribution<int> small_int(-2, 2);
    std::vector<float> r(static_cast<std::size_t>(n));
    for (auto& x : r) {
        switch (shape % 4) {
            case 0: x = gauss(rng) * 0.02f; break;
            case 1: x = heavy(rng) * 0.01f; break;
            case 2: x = static_cast<float>(small_int(rng)) * 0.5f; break;  // ties
            default: x = gauss(rng) * (rng() % 8 == 0 ? 1.0f : 0.001f); break;  // outliers
        }
    }
    return r;
}

std::vector<float> random_weights(std::mt19937& rng, int n) {
    std::uniform_real_distribution<float> u(0.05f, 4.0f);
    std::vector<float> d(static_cast<std::size_t>(n));
    for (auto& x : d) x = u(rng);
    return d;
}

double weighted_error(const std::vector<float>& r, const float* d, const fit::Grid& g) {
    double e = 0.0;
    for (std::size_t i = 0; i < r.size(); ++i) {
        const double diff = static_cast<double>(r[i]) - g.value(g.nearest(r[i]));
        e += (d ? d[i] : 1.0) * diff * diff;
    }
    return e;
}

// Error of the plain greedy residual fit (stage by stage, rounded scales).
double greedy_error(const std::vector<float>& r, const float* d, int bases) {
    std::vector<float> res = r;
    std::vector<std::int8_t> t(r.size());
    for (int k = 0; k < bases; ++k) {
        const float s = round_scale(fit_ternary_optimal(res.data(), static_cast<int>(res.size()), t.data()));
        for (std::size_t i = 0; i < res.size(); ++i) res[i] -= s * t[i];
    }
    double e = 0.0;
    for (std::size_t i = 0; i < res.size(); ++i) e += (d ? d[i] : 1.0) * static_cast<double>(res[i]) * res[i];
    return e;
}

// The value of trit combination t under free scales, as a reader computes it.
float free_value(const float* s, const std::int8_t* t, int bases) {
    float acc = 0.0f;
    for (int k = 0; k < bases; ++k) acc += s[k] * static_cast<float>(t[k]);
    return acc;
}

}  // namespace

TEST_CASE("Grid: nearest is the exhaustive best and trits reproduce the value", "[fit]") {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-3.0f, 3.0f);
    for (int bases = 1; bases <= 4; ++bases) {
        for (int trial = 0; trial < 20; ++trial) {
            float s[fit::kMaxBases];
            for (int k = 0; k < bases; ++k) s[k] = round_scale(std::fabs(u(rng)) / static_cast<float>(k + 1));
            fit::Grid free_grid, tied_grid;
            free_grid.set_free(s, bases);
            tied_grid.set_tied(s[0], bases);
            for (int q = 0; q < 50; ++q) {
                const float x = u(rng) * 2.0f;
                for (const fit::Grid* g : {&free_grid, &tied_grid}) {
                    // The value of trits t as a reader computes it.
                    auto value = [&](const std::int8_t* t) {
                        if (g != &tied_grid) return free_value(s, t, bases);
                        std::int32_t level = 0;
                        for (int k = 0; k < bases; ++k) level = 3 * level + t[k];
                        return (s[0] * tied_multiplier(bases)) * static_cast<float>(level);
                    };
                    const int i = g->nearest(x);
                    std::int8_t t[fit::kMaxBases];
                    g->trits(i, t);
                    // The trits give back the grid value, in the reader's arithmetic.
                    CHECK(value(t) == g->value(i));
                    // No combination of trits is closer.
                    double best = std::numeric_limits<double>::infinity();
                    for (int c = 0; c < fit::pow3(bases); ++c) {
                        std::int8_t tc[fit::kMaxBases];
                        int rest = c;
                        for (int k = 0; k < bases; ++k) tc[k] = static_cast<std::int8_t>(rest % 3 - 1), rest /= 3;
                        best = std::min(best, std::fabs(static_cast<double>(x) - value(tc)));
                    }
                    CHECK(std::fabs(static_cast<double>(x) - g->value(i)) == best);
                }
            }
        }
    }
}

TEST_CASE("refinement never raises a block's error above the greedy fit", "[fit]") {
    std::mt19937 rng(5);
    fit::BlockScratch scratch;
    int improved = 0, total = 0;
    for (int bases = 1; bases <= 4; ++bases) {
        for (int n : {1, 3, 7, 16, 64, 128}) {
            for (int shape = 0; shape < 8; ++shape) {
                const auto r = random_block(rng, n, shape);
                const auto dw = random_weights(rng, n);
                for (const float* d : {static_cast<const float*>(nullptr), dw.data()}) {
                    for (int rounds : {0, 1, 8}) {
                        float s[fit::kMaxBases];
                        fit::Grid g;
                        fit::fit_free(r.data(), d, n, bases, rounds, s, g, scratch);
                        const double e = weighted_error(r, d, g);
                        const double e0 = greedy_error(r, d, bases);
                        // Re-picking with the greedy scales is never worse than the greedy trits;
                        // the float sums of a reader may differ from the residual's by rounding.
                        CHECK(e <= e0 * (1 + 1e-5) + 1e-12);
                        for (int k = 0; k < bases; ++k) {
                            CHECK(s[k] >= 0.0f);
                            CHECK(s[k] == round_scale(s[k]));  // stored exactly
                            if (k > 0) CHECK(s[k] <= s[k - 1]);
                        }
                        if (rounds == 8 && bases >= 2 && n >= 16) {
                            ++total;
                            improved += e < e0 * (1 - 1e-3) ? 1 : 0;
                        }
                    }
                }
            }
        }
    }
    // Refinement is worth having: it lowers most blocks' error.
    CHECK(improved * 2 > total);
}

TEST_CASE("joint fits against the exhaustive optimum on tiny blocks", "[fit]") {
    // Global optimum over every trit assignment of n weights and N bases, with the best
    // (least-squares) scales for each: free scales have N scales, tied scales one step.
    std::mt19937 rng(7);
    fit::BlockScratch scratch;
    for (int bases = 1; bases <= 2; ++bases) {
        const int n = 4;
        const int levels = fit::pow3(bases);
        int free_exact = 0, tied_exact = 0, trials = 0;
        double worst_free = 0.0, worst_tied = 0.0;
        for (int trial = 0; trial < 40; ++trial) {
            const auto r = random_block(rng, n, trial);
            // Tied: levels L_i in [-(3^N-1)/2, (3^N-1)/2], step = sum L r / sum L^2.
            const int half = (levels - 1) / 2;
            double tied_opt = 0.0;
            for (int i = 0; i < n; ++i) tied_opt += static_cast<double>(r[i]) * r[i];
            std::vector<int> L(static_cast<std::size_t>(n));
            int combos = 1;
            for (int i = 0; i < n; ++i) combos *= levels;
            for (int c = 0; c < combos; ++c) {
                int rest = c;
                double lr = 0, ll = 0, rr = 0;
                for (int i = 0; i < n; ++i) {
                    L[static_cast<std::size_t>(i)] = rest % levels - half;
                    rest /= levels;
                    lr += L[static_cast<std::size_t>(i)] * static_cast<double>(r[i]);
                    ll += static_cast<double>(L[static_cast<std::size_t>(i)]) * L[static_cast<std::size_t>(i)];
                    rr += static_cast<double>(r[i]) * r[i];
                }
                if (ll > 0 && lr > 0) tied_opt = std::min(tied_opt, rr - lr * lr / ll);
            }
            // Free: each weight's combination of N trits; scales by least squares (N <= 2).
            double free_opt = tied_opt;
            if (bases == 2) {
                for (int c = 0; c < combos; ++c) {
                    int rest = c;
                    double a00 = 0, a01 = 0, a11 = 0, y0 = 0, y1 = 0, rr = 0;
                    for (int i = 0; i < n; ++i) {
                        const int code = rest % 9;
                        rest /= 9;
                        const double t0 = code % 3 - 1, t1 = code / 3 - 1, x = r[i];
                        a00 += t0 * t0, a01 += t0 * t1, a11 += t1 * t1, y0 += t0 * x, y1 += t1 * x, rr += x * x;
                    }
                    const double det = a00 * a11 - a01 * a01;
                    if (std::fabs(det) < 1e-12) continue;
                    const double s0 = (a11 * y0 - a01 * y1) / det, s1 = (a00 * y1 - a01 * y0) / det;
                    free_opt = std::min(free_opt, rr - (s0 * y0 + s1 * y1));
                }
            }
            float s[fit::kMaxBases];
            fit::Grid g;
            fit::fit_free(r.data(), nullptr, n, bases, 16, s, g, scratch);
            const double ef = weighted_error(r, nullptr, g);
            const float st = fit::fit_tied(r.data(), nullptr, n, bases, g, scratch);
            (void)st;
            const double et = weighted_error(r, nullptr, g);
            // Scales are stored as binary16: allow its rounding (relative 2^-11 on each scale).
            double norm = 0;
            for (float x : r) norm += static_cast<double>(x) * x;
            const double slack = 2e-3 * norm + 1e-12;
            CHECK(ef >= free_opt - slack);
            CHECK(et >= tied_opt - slack);
            ++trials;
            free_exact += ef <= free_opt + slack ? 1 : 0;
            tied_exact += et <= tied_opt + slack ? 1 : 0;
            // Excess error over the optimum, relative to the block's energy.
            worst_free = std::max(worst_free, (ef - free_opt) / norm);
            worst_tied = std::max(worst_tied, (et - tied_opt) / norm);
        }
        INFO("N = " << bases << ": free optimal in " << free_exact << "/" << trials << " (worst excess " << worst_free
                    << " of ||r||^2), tied optimal in " << tied_exact << "/" << trials << " (worst excess "
                    << worst_tied << ")");
        if (bases == 1) {
            // One base: both are the exact error-optimal ternary fit.
            CHECK(free_exact == trials);
            CHECK(tied_exact == trials);
        } else {
            // Alternating minimisation and a step search are local methods: most tiny cases
            // reach the optimum, none is far from it.
            CHECK(free_exact * 4 >= trials * 3);
            CHECK(tied_exact * 4 >= trials * 3);
            CHECK(worst_free < 1.5);
            CHECK(worst_tied < 1.5);
        }
        WARN("N = " << bases << ": free optimal in " << free_exact << "/" << trials << " (worst excess " << worst_free
                    << " of ||r||^2), tied optimal in " << tied_exact << "/" << trials << " (worst excess "
                    << worst_tied << ")");
    }
}

TEST_CASE("decompose_row with tied scales and refinement reconstructs as reported", "[fit][row]") {
    std::mt19937 rng(3);
    for (auto packing : {Packing::TwoBit, Packing::Dense}) {
        for (auto scales : {ScaleMode::Free, ScaleMode::Tied}) {
          for (int scale_bits : {16, 8}) {
            for (int bases = 1; bases <= 4; ++bases) {
                for (int cols : {1, 7, 64, 130}) {
                    TernaryLayout l{1, cols, bases, 32, packing, scales, scale_bits};
                    const auto w = random_block(rng, cols, bases + cols);
                    std::vector<std::uint8_t> out(l.row_bytes());
                    std::vector<double> err(static_cast<std::size_t>(bases), 0.0);
                    RowScratch scratch;
                    FitOptions fit;
                    fit.refine_rounds = 4;
                    decompose_row(w.data(), l, fit, nullptr, out.data(), err.data(), scratch);
                    for (int k = 1; k <= bases; ++k) {
                        std::vector<float> back(static_cast<std::size_t>(cols));
                        dequantize_row(l, out.data(), 0, k, back.data());
                        double e = 0;
                        for (int c = 0; c < cols; ++c) {
                            const double d = static_cast<double>(w[static_cast<std::size_t>(c)]) - back[static_cast<std::size_t>(c)];
                            e += d * d;
                        }
                        CHECK(e == Approx(err[static_cast<std::size_t>(k - 1)]).epsilon(1e-9).margin(1e-15));
                    }
                    if (bases >= 2) CHECK(err[static_cast<std::size_t>(bases - 1)] <= err[0]);
                }
            }
          }
        }
    }
}

TEST_CASE("error feedback lowers the calibration-weighted output error of a layer", "[fit][feedback]") {
    std::mt19937 rng(17);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    const int rows = 48, cols = 192, tokens = 1024;
    // Inputs with correlated channels and uneven scales, as real activations have.
    std::vector<float> mix(static_cast<std::size_t>(cols) * cols);
    for (auto& x : mix) x = gauss(rng) * 0.2f;
    for (int i = 0; i < cols; ++i) mix[static_cast<std::size_t>(i * cols + i)] += 1.0f + (i % 7 == 0 ? 4.0f : 0.0f);
    std::vector<double> h(static_cast<std::size_t>(cols) * cols, 0.0);
    std::vector<float> z(static_cast<std::size_t>(cols)), x(static_cast<std::size_t>(cols));
    for (int t = 0; t < tokens; ++t) {
        for (auto& v : z) v = gauss(rng);
        for (int i = 0; i < cols; ++i) {
            float acc = 0;
            for (int j = 0; j < cols; ++j) acc += mix[static_cast<std::size_t>(i * cols + j)] * z[static_cast<std::size_t>(j)];
            x[static_cast<std::size_t>(i)] = acc;
        }
        for (int i = 0; i < cols; ++i) {
            for (int j = 0; j < cols; ++j) h[static_cast<std::size_t>(i * cols + j)] += static_cast<double>(x[static_cast<std::size_t>(i)]) * x[static_cast<std::size_t>(j)] / tokens;
        }
    }
    std::vector<float> w(static_cast<std::size_t>(rows) * cols);
    for (auto& v : w) v = gauss(rng) * 0.05f;
    // (w - w^)^T H (w - w^) summed over rows: the mean squared output error.
    auto output_error = [&](const TernaryLayout& l, const std::vector<std::uint8_t>& packed) {
        double total = 0;
        std::vector<float> back(static_cast<std::size_t>(cols));
        std::vector<double> e(static_cast<std::size_t>(cols));
        for (int r = 0; r < rows; ++r) {
            dequantize_row(l, packed.data(), r, l.bases, back.data());
            for (int c = 0; c < cols; ++c) e[static_cast<std::size_t>(c)] = static_cast<double>(w[static_cast<std::size_t>(r * cols + c)]) - back[static_cast<std::size_t>(c)];
            for (int i = 0; i < cols; ++i) {
                double hi = 0;
                for (int j = 0; j < cols; ++j) hi += h[static_cast<std::size_t>(i * cols + j)] * e[static_cast<std::size_t>(j)];
                total += e[static_cast<std::size_t>(i)] * hi;
            }
        }
        return total;
    };
    std::vector<float> diag(static_cast<std::size_t>(cols));
    for (int i = 0; i < cols; ++i) diag[static_cast<std::size_t>(i)] = static_cast<float>(h[static_cast<std::size_t>(i * cols + i)]);
    auto read = [&](std::int64_t c0, std::int64_t c1, std::vector<float>& out) {
        const auto m = static_cast<std::size_t>(c1 - c0);
        out.resize(m * m);
        for (std::int64_t i = c0; i < c1; ++i) {
            for (std::int64_t j = c0; j < c1; ++j) {
                out[static_cast<std::size_t>(i - c0) * m + static_cast<std::size_t>(j - c0)] =
                    static_cast<float>(h[static_cast<std::size_t>(i * cols + j)]);
            }
        }
    };
    ErrorFeedback fb(cols, 0, diag.data(), 0.01, read, "test layer");
    ErrorFeedback fb_grouped(cols, 64, diag.data(), 0.01, read, "test layer");
    for (auto scales : {ScaleMode::Free, ScaleMode::Tied}) {
      for (int scale_bits : {16, 8}) {
        for (int bases = 1; bases <= 3; ++bases) {
            TernaryLayout l{rows, cols, bases, 64, Packing::TwoBit, scales, scale_bits};
            FitOptions fit;
            fit.refine_rounds = 8;
            // Plain fits, row by row.
            std::vector<std::uint8_t> plain(l.total_bytes()), fed(l.total_bytes());
            std::vector<double> err(static_cast<std::size_t>(rows * bases), 0.0), err2 = err;
            RowScratch scratch;
            for (int r = 0; r < rows; ++r) {
                decompose_row(w.data() + r * cols, l, fit, nullptr, plain.data() + r * l.row_bytes(),
                              err.data() + r * bases, scratch);
            }
            std::vector<float> work = w;
            fb.quantize_rows(l, fit, work.data(), w.data(), rows, fed.data(), err2.data());
            std::vector<std::uint8_t> grouped(l.total_bytes());
            std::vector<double> err3 = err;
            work = w;
            fb_grouped.quantize_rows(l, fit, work.data(), w.data(), rows, grouped.data(), err3.data());
            const double e_plain = output_error(l, plain), e_fed = output_error(l, fed),
                         e_grouped = output_error(l, grouped);
            INFO((scales == ScaleMode::Tied ? "tied" : "free") << " scale bits " << scale_bits << " N = " << bases
                                                                 << ": output error plain "
                                                                 << e_plain << ", with feedback " << e_fed
                                                                 << ", within groups of 64 columns " << e_grouped);
            CHECK(e_fed < 0.9 * e_plain);
            // Feedback within groups helps less than over whole rows, but still helps.
            CHECK(e_grouped < e_plain);
            CHECK(e_fed <= e_grouped * 1.05);
            // The reported statistics are those of the stored rows.
            for (int r = 0; r < 3; ++r) {
                std::vector<float> back(static_cast<std::size_t>(cols));
                dequantize_row(l, fed.data(), r, bases, back.data());
                double e = 0;
                for (int c = 0; c < cols; ++c) {
                    const double d = static_cast<double>(w[static_cast<std::size_t>(r * cols + c)]) - back[static_cast<std::size_t>(c)];
                    e += d * d;
                }
                CHECK(e == Approx(err2[static_cast<std::size_t>(r * bases + bases - 1)]).epsilon(1e-9));
            }
            // A row's result does not depend on the rows quantised with it.
            std::vector<float> one(w.begin() + 5 * cols, w.begin() + 6 * cols);
            std::vector<std::uint8_t> one_out(l.row_bytes());
            std::vector<double> one_err(static_cast<std::size_t>(bases), 0.0);
            fb.quantize_rows(l, fit, one.data(), w.data() + 5 * cols, 1, one_out.data(), one_err.data());
            CHECK(std::equal(one_out.begin(), one_out.end(), fed.begin() + 5 * static_cast<std::ptrdiff_t>(l.row_bytes())));
        }
      }
    }
}

TEST_CASE("two-level scales: super-scales cover the row, snapping picks the best multiples", "[fit][two-level]") {
    // super_scale: the smallest binary16 d with 255 d >= max.
    std::mt19937 rng(29);
    std::uniform_real_distribution<float> expo(-20.0f, 20.0f);
    CHECK(fit::super_scale(0.0f) == 0.0f);
    CHECK(fit::super_scale(-1.0f) == 0.0f);
    for (int i = 0; i < 2000; ++i) {
        const float mx = std::exp2(expo(rng));
        const float d = fit::super_scale(mx);
        INFO("max " << mx << " d " << d);
        CHECK(f16_to_f32(f32_to_f16(d)) == d);
        CHECK(255.0f * d >= mx);
        const float below = f16_to_f32(static_cast<std::uint16_t>(f32_to_f16(d) - 1));
        CHECK(255.0f * below < mx);
    }
    // snap_block: the stored scales are d * u exactly, and its error is the best over the
    // floor / ceiling multiples of every slot (checked here against all u in 0..255 for
    // one slot: never worse than the two neighbours of the fitted scale).
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 64);
        const int bases = 1 + trial % 3;
        const bool tied = trial % 2 == 0;
        const auto r = random_block(rng, n, trial);
        const auto dw = random_weights(rng, n);
        const float* d = trial % 3 == 0 ? dw.data() : nullptr;
        fit::BlockScratch scratch;
        fit::Grid g;
        float s[fit::kMaxBases] = {};
        if (tied) s[0] = fit::fit_tied(r.data(), d, n, bases, g, scratch);
        else fit::fit_free(r.data(), d, n, bases, 2, s, g, scratch);
        const int m = tied ? 1 : bases;
        float supers[fit::kMaxBases] = {};
        for (int k = 0; k < m; ++k) supers[k] = fit::super_scale(s[k] * (1.0f + 3.0f * static_cast<float>(trial % 5)));
        float snapped[fit::kMaxBases];
        std::copy(s, s + fit::kMaxBases, snapped);
        std::uint8_t u[fit::kMaxBases] = {};
        std::vector<int> idx(static_cast<std::size_t>(n));
        const double e = fit::snap_block(r.data(), d, n, bases, tied, supers, snapped, u, g, idx.data(), scratch);
        for (int k = 0; k < m; ++k) CHECK(snapped[k] == supers[k] * static_cast<float>(u[k]));
        CHECK(e == Approx(weighted_error(r, d, g)).epsilon(1e-12).margin(1e-30));
        if (m == 1) {
            // Every multiple near the fitted scale does no better than the snap.
            const int u0 = static_cast<int>(u[0]);
            for (int cand = std::max(0, u0 - 1); cand <= std::min(255, u0 + 1); ++cand) {
                const float sc = supers[0] * static_cast<float>(cand);
                fit::Grid alt;
                if (tied) alt.set_tied(sc, bases);
                else alt.set_free(&sc, bases);
                const double lo = std::floor(s[0] / supers[0]), hi = lo + 1;
                if (cand == lo || cand == hi) CHECK(e <= weighted_error(r, d, alt) * (1 + 1e-12));
            }
        }
    }
}
