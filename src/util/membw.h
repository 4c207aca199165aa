// Memory bandwidth, measured two ways over arrays far larger than the last-level cache,
// split over a thread pool (one contiguous slice per thread):
// - STREAM's "triad" a[i] = b[i] + s * c[i] over three arrays. Counted bytes are STREAM's
//   (two reads and one write per element; write-allocate traffic not counted).
// - A read-only stream: every byte of one array read once, with software prefetch ahead
//   (the access pattern of a GEMV over weights: reads only, no writes). On the machines
//   measured in docs/BENCHMARKS.md this gives less than the triad's count: the triad's
//   figure is not a rate a GEMV's reads can reach.
#pragma once

#include <cstdint>
#include <vector>

#include "util/thread_pool.h"

namespace bitttt {

struct BandwidthResult {
    std::vector<double> gb_per_s;  // one figure per timed repetition (GB = 1e9 bytes)
    double best = 0;               // STREAM reports the best repetition
    double median = 0;
    std::uint64_t array_bytes = 0;  // size of each array (three for the triad, one for reads)

    // Adds another measurement's repetitions (best and median over both).
    void merge(const BandwidthResult& other);
};

// Runs `reps` timed triads (after one untimed pass that also touches every page) over
// three arrays of `array_bytes` each, using every thread of `pool`.
BandwidthResult measure_triad_bandwidth(ThreadPool& pool, std::uint64_t array_bytes, int reps);

// Runs `reps` timed read-only passes (after one untimed pass that writes every page) over
// one array of `array_bytes`, using every thread of `pool`.
BandwidthResult measure_read_bandwidth(ThreadPool& pool, std::uint64_t array_bytes, int reps);

}  // namespace bitttt
