#include "util/membw.h"

#include <algorithm>
#include <atomic>
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

// Sums its slice of x (so the reads cannot be dropped), prefetching kPrefetch bytes ahead
// into L2, as the GEMV kernels do; four independent sums keep the adds off the critical path.
std::uint64_t read_slice(const std::uint64_t* x, std::int64_t n) {
    constexpr std::int64_t kPrefetch = 4096 / sizeof(std::uint64_t), kLine = 64 / sizeof(std::uint64_t);
    std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::int64_t i = 0;
    for (; i + kLine <= n; i += kLine) {
        __builtin_prefetch(x + i + kPrefetch, 0, 2);
        s0 += x[i] + x[i + 4];
        s1 += x[i + 1] + x[i + 5];
        s2 += x[i + 2] + x[i + 6];
        s3 += x[i + 3] + x[i + 7];
    }
    for (; i < n; ++i) s0 += x[i];
    return s0 + s1 + s2 + s3;
}

double read_pass(ThreadPool& pool, const std::uint64_t* x, std::int64_t n) {
    const std::int64_t parts = pool.size();
    std::atomic<std::uint64_t> sink{0};
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(parts, 1, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            sink.fetch_add(read_slice(x + n * p / parts, n * (p + 1) / parts - n * p / parts), std::memory_order_relaxed);
        }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The sum is what the reads computed: 1 per element (written below), so a wrong
    // slicing would show; it is not otherwise used.
    if (sink.load() != static_cast<std::uint64_t>(n)) return 0.0;
    return s;
}

void finish(BandwidthResult& r) {
    if (!r.gb_per_s.empty()) {
        r.best = *std::max_element(r.gb_per_s.begin(), r.gb_per_s.end());
        r.median = median(r.gb_per_s);
    }
}

}  // namespace

void BandwidthResult::merge(const BandwidthResult& other) {
    gb_per_s.insert(gb_per_s.end(), other.gb_per_s.begin(), other.gb_per_s.end());
    finish(*this);
}

BandwidthResult measure_read_bandwidth(ThreadPool& pool, std::uint64_t array_bytes, int reps) {
    const std::int64_t n = static_cast<std::int64_t>(array_bytes / sizeof(std::uint64_t));
    std::unique_ptr<std::uint64_t[]> x(new std::uint64_t[static_cast<std::size_t>(n)]);
    const std::int64_t parts = pool.size();
    pool.parallel_for(parts, 1, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) std::fill(x.get() + n * p / parts, x.get() + n * (p + 1) / parts, 1);
    });
    read_pass(pool, x.get(), n);

    BandwidthResult r;
    r.array_bytes = static_cast<std::uint64_t>(n) * sizeof(std::uint64_t);
    for (int i = 0; i < reps; ++i) {
        const double s = read_pass(pool, x.get(), n);
        if (s > 0) r.gb_per_s.push_back(static_cast<double>(r.array_bytes) / s / 1e9);
    }
    finish(r);
    return r;
}

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
    finish(r);
    return r;
}

}  // namespace bitttt
