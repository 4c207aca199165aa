// Summary statistics of repeated measurements (benchmarks).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace bitttt {

// The median (mean of the middle two for an even count); 0 for no values.
inline double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t k = v.size();
    return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

inline double mean(const std::vector<double>& v) {
    double s = 0.0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// Sample standard deviation (n - 1); 0 for fewer than two values.
inline double sample_sd(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean(v);
    double ss = 0.0;
    for (double x : v) ss += (x - m) * (x - m);
    return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

}  // namespace bitttt
