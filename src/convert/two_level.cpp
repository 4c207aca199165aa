#include "convert/two_level.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "bitttt/dtype.h"

namespace bitttt::fit {

namespace {
constexpr float kMaxF16 = 65504.0f;
}

float super_scale(float max_scale) {
    if (!(max_scale > 0.0f)) return 0.0f;
    const float want = std::min(max_scale / static_cast<float>(kSubScaleMax), kMaxF16);
    float d = f16_to_f32(f32_to_f16(want));
    // Round up: step to the next binary16 value until 255 * d covers the maximum.
    for (int i = 0; i < 4 && static_cast<float>(kSubScaleMax) * d < max_scale && d < kMaxF16; ++i) {
        d = f16_to_f32(static_cast<std::uint16_t>(f32_to_f16(d) + 1));
    }
    return d;
}

double snap_block(const float* r, const float* d_w, int n, int bases, bool tied, const float* supers, float* scales,
                  std::uint8_t* u, Grid& g, int* idx, BlockScratch& scratch) {
    const int m = tied ? 1 : bases;
    int lo[kMaxBases];
    for (int k = 0; k < m; ++k) {
        const float x = supers[k] > 0.0f ? scales[k] / supers[k] : 0.0f;
        lo[k] = static_cast<int>(std::clamp(std::floor(x), 0.0f, static_cast<float>(kSubScaleMax)));
    }
    scratch.idx.resize(static_cast<std::size_t>(n));
    double best = -1.0;
    unsigned best_mask = 0;
    float trial[kMaxBases];
    for (unsigned mask = 0; mask < (1u << m); ++mask) {
        bool valid = true;
        for (int k = 0; k < m; ++k) {
            const int code = lo[k] + static_cast<int>((mask >> k) & 1u);
            if (code > kSubScaleMax || (supers[k] == 0.0f && code != 0)) valid = false;
            trial[k] = supers[k] * static_cast<float>(code);
        }
        if (!valid) continue;
        if (tied) g.set_tied(trial[0], bases);
        else g.set_free(trial, bases);
        const double e = assign(g, r, d_w, n, scratch.idx.data());
        if (best < 0.0 || e < best) {
            best = e;
            best_mask = mask;
            std::copy(scratch.idx.begin(), scratch.idx.end(), idx);
        }
    }
    for (int k = 0; k < m; ++k) {
        const int code = lo[k] + static_cast<int>((best_mask >> k) & 1u);
        u[k] = static_cast<std::uint8_t>(code);
        scales[k] = supers[k] * static_cast<float>(code);
    }
    if (tied) g.set_tied(scales[0], bases);
    else g.set_free(scales, bases);
    return best;
}

}  // namespace bitttt::fit
