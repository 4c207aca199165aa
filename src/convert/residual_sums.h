// Sums over a row's residual in double, shared by the one-scale fits (ternary_fit.cpp) and
// the row decomposition (decompose.cpp). Converter-internal.
#pragma once

#include <cmath>

namespace bitttt::residual_sums {

// sum r_i^2 in double, with four independent accumulators (one serial chain of double
// additions would cost more than the rest of a stage).
inline double squares(const float* r, int n) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int u = 0; u < 4; ++u) acc[u] += static_cast<double>(r[i + u]) * static_cast<double>(r[i + u]);
    }
    for (; i < n; ++i) acc[0] += static_cast<double>(r[i]) * static_cast<double>(r[i]);
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// sum |r_i| in double, likewise.
inline double abs_sum(const float* r, int n) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int u = 0; u < 4; ++u) acc[u] += std::fabs(static_cast<double>(r[i + u]));
    }
    for (; i < n; ++i) acc[0] += std::fabs(static_cast<double>(r[i]));
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace bitttt::residual_sums
