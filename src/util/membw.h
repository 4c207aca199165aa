// Memory bandwidth as STREAM measures it: the "triad" a[i] = b[i] + s * c[i] over three
// arrays far larger than the last-level cache, split over a thread pool. Counted bytes
// are STREAM's (two reads and one write per element; write-allocate traffic not counted).
#pragma once

#include <cstdint>
#include <vector>

#include "util/thread_pool.h"

namespace bitttt {

struct BandwidthResult {
    std::vector<double> gb_per_s;  // one figure per timed repetition (GB = 1e9 bytes)
    double best = 0;               // STREAM reports the best repetition
    double median = 0;
    std::uint64_t array_bytes = 0;  // size of each of the three arrays
};

// Runs `reps` timed triads (after one untimed pass that also touches every page) over
// three arrays of `array_bytes` each, using every thread of `pool`.
BandwidthResult measure_triad_bandwidth(ThreadPool& pool, std::uint64_t array_bytes, int reps);

}  // namespace bitttt
