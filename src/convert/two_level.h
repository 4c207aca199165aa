// Two-level scales on the converter side (the layout is in include/bitttt/ternary.h): a
// row's blocks are fitted as usual, then each scale slot gets one binary16 super-scale d
// for the row and every block's scale in that slot becomes an 8-bit multiple u * d.
#pragma once

#include <cstdint>

#include "convert/block_fit.h"

namespace bitttt::fit {

constexpr int kSubScaleMax = 255;

// The super-scale of a slot whose largest fitted block scale in the row is `max_scale`:
// the smallest binary16 value d with 255 * d >= max_scale (0 when max_scale <= 0), so
// that no block's scale is clipped. Exact as stored.
float super_scale(float max_scale);

// Snaps one block's fitted scales scales[0..M) (M = 1 tied, N free) to multiples u * d of
// the row's super-scales supers[0..M): per slot the two multiples around the fitted value
// (u clamped to 0..255), every combination tried with the trits re-picked (the nearest
// grid value per weight, weighted by d_w, null = all 1), the lowest weighted error kept.
// Writes the exact scales d * u, the codes u[0..M), the grid and each weight's entry
// idx[0..n); returns the weighted error. Uses scratch.idx.
double snap_block(const float* r, const float* d_w, int n, int bases, bool tied, const float* supers, float* scales,
                  std::uint8_t* u, Grid& g, int* idx, BlockScratch& scratch);

}  // namespace bitttt::fit
