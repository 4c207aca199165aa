#include "util/membw.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "util/stats.h"

namespace bitttt {

namespace {

// The arrays are split into one contiguous slice per thread so each thread streams its
// own pages (the split is static: a bandwidth test wants no hand-off traffic).
void triad(ThreadPool& pool, float* a, const float* b, const float* c, std::int64_t n, float s) {
    const std::int64_t parts = pool.size();
    pool.parallel_for(parts, 1, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const std::int64_t i0 = n * p / parts, i1 = n * (p + 1) / parts;
            for (std::int64_t i = i0; i < i1; ++i) a[i] = b[i] + s * c[i];
        }
    });
}

}  // namespace

BandwidthResult measure_triad_bandwidth(ThreadPool& pool, std::uint64_t array_bytes, int reps) {
    const std::int64_t n = static_cast<std::int64_t>(array_bytes / sizeof(float));
    // Not value-initialised: the warm-up pass below writes every element first (so the
    // pages are faulted in by the threads that later stream them).
    std::unique_ptr<float[]> a(new float[static_cast<std::size_t>(n)]);
    std::unique_ptr<float[]> b(new float[static_cast<std::size_t>(n)]);
    std::unique_ptr<float[]> c(new float[static_cast<std::size_t>(n)]);
    const std::int64_t parts = pool.size();
    pool.parallel_for(parts, 1, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            for (std::int64_t i = n * p / parts; i < n * (p + 1) / parts; ++i) {
                a[i] = 0.0f;
                b[i] = 1.0f;
                c[i] = 2.0f;
            }
        }
    });
    triad(pool, a.get(), b.get(), c.get(), n, 3.0f);

    BandwidthResult r;
    r.array_bytes = static_cast<std::uint64_t>(n) * sizeof(float);
    const double bytes = 3.0 * static_cast<double>(r.array_bytes);
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        triad(pool, a.get(), b.get(), c.get(), n, 3.0f);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.gb_per_s.push_back(bytes / s / 1e9);
    }
    if (!r.gb_per_s.empty()) {
        r.best = *std::max_element(r.gb_per_s.begin(), r.gb_per_s.end());
        r.median = median(r.gb_per_s);
    }
    return r;
}

}  // namespace bitttt
