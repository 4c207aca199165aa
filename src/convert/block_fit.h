// Fits of all N bases of one block at once (converter side): joint refinement with free
// scales, and tied scales. Both describe their result as a Grid, the 3^N values a reader
// can reconstruct in the block, so that re-picking a weight's trits, error feedback and the
// error statistics all use exactly the stored (binary16-rounded) scales.
#pragma once

#include <cstdint>
#include <vector>

#include "bitttt/ternary.h"

namespace bitttt::fit {

constexpr int kMaxBases = 8;

// 3^n for 0 <= n <= 8.
constexpr int pow3(int n) {
    int p = 1;
    for (int i = 0; i < n; ++i) p *= 3;
    return p;
}

// The values one block can take, for stored scales: every combination c of N trits
// (t_k = digit k of c in base 3, minus 1; base 0 is the least significant digit), its
// value exactly as the reference dequantisation computes it, sorted by value.
class Grid {
public:
    // Free scales s[0..n) (as stored): value = ((s0 t0) + s1 t1) + ... in float.
    void set_free(const float* scales, int bases);
    // Tied scale s (as stored): value = (s * tied_multiplier(N)) * level, level =
    // sum 3^(N-1-k) t_k in [-(3^N-1)/2, (3^N-1)/2].
    void set_tied(float scale, int bases);

    int bases() const { return bases_; }
    // Index (into value()/combo()) of the value nearest to x (the smaller on ties).
    int nearest(float x) const;
    float value(int i) const { return values_[static_cast<std::size_t>(i)]; }
    // The trits of entry i: t[k] for k = 0..N-1.
    void trits(int i, std::int8_t* t) const;

private:
    int bases_ = 0;
    bool tied_ = false;
    float step_ = 0.0f;                 // tied: scale * tied_multiplier(N)
    std::vector<float> values_;         // ascending
    std::vector<float> mids_;           // free: midpoints between consecutive values (+ padding)
    std::vector<std::uint16_t> combo_;  // free: combination index of each value
};

// Squared error sum d_i (r_i - grid value nearest r_i)^2 of a block (d null = all 1), and
// the nearest entry of each weight in idx[0..n).
double assign(const Grid& g, const float* r, const float* d, int n, int* idx);

// Scratch for the block fits (one per thread).
struct BlockScratch {
    std::vector<float> residual;
    std::vector<std::int8_t> trits;  // [N][n]
    std::vector<int> idx, best_idx;
    std::vector<double> entry_w, entry_wr;  // per grid entry: sum of weights, of weight * value
    Grid grid;                              // a caller's grid, reused from block to block
};

// Free scales. Starts from the greedy residual fit (each stage error-optimal, scales
// rounded as stored), then runs up to `rounds` rounds of: the N x N weighted least-squares
// solve for the scales with the trits fixed (Eigen, ridge-regularised when the system is
// singular or ill-conditioned), scales rounded as stored; then the exhaustive re-pick of
// every weight's N trits among the 3^N combinations with the scales fixed. A round is kept
// only if it lowers the weighted error, and the loop stops at the first that does not, so
// the result is never worse than the greedy start. Bases are returned in order of
// decreasing scale (significance), all scales >= 0.
// Writes scales[0..N) (as stored) and returns the grid through `g`.
void fit_free(const float* r, const float* d, int n, int bases, int rounds, float* scales, Grid& g,
              BlockScratch& scratch);

// Tied scales: a uniform grid of 3^N levels, step = s / 3^(N-1). Searches the step over
// max|r| * f / ((3^N-1)/2) for 25 values of f in [0.4, 1] (the best weighted error), then
// polishes it by least squares with the levels fixed, re-rounding the levels, while the
// error falls; finally s is rounded as stored. N = 1 uses the exact optimal ternary fit.
// Returns s (as stored) and the grid through `g`.
float fit_tied(const float* r, const float* d, int n, int bases, Grid& g, BlockScratch& scratch);

}  // namespace bitttt::fit

namespace bitttt {
// Packs one fitted block: each weight i < n_valid takes the trits of grid entry idx[i];
// trits of dead bases (scale 0) and padding are 0; scales[0..scale_count) are stored as
// binary16, or for two-level layouts the 8-bit codes sub[0..scale_count) (the scales
// must then be their exact values). t is scratch of N * block_size trits and holds the
// block's trits afterwards (base k at t + k * block_size). Defined in decompose.cpp.
void write_block(const TernaryLayout& layout, const fit::Grid& grid, const int* idx, int n_valid, const float* scales,
                 std::int8_t* t, std::uint8_t* blk, const std::uint8_t* sub = nullptr);
}  // namespace bitttt
