// The persistent thread pool: every index covered exactly once, exceptions, many tiny
// jobs back to back (the spin path), jobs after idle gaps (the sleep/wake path); the
// memory bandwidth tests that run on it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "util/membw.h"
#include "util/thread_pool.h"

using bitttt::BandwidthResult;
using bitttt::measure_read_bandwidth;
using bitttt::measure_triad_bandwidth;
using bitttt::ThreadPool;

TEST_CASE("thread pool covers every index exactly once", "[util][threads]") {
    for (int threads : {1, 2, 3, 5}) {
        ThreadPool pool(threads);
        CHECK(pool.size() == threads);
        for (std::int64_t n : {1, 2, 7, 64, 1000}) {
            for (std::int64_t grain : {1, 3, 64, 5000}) {
                // (Catch2 assertions are not thread-safe: workers only record.)
                std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
                std::atomic<bool> oversized{false};
                pool.parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) {
                    if (e - b > grain) oversized = true;
                    for (std::int64_t i = b; i < e; ++i) hits[static_cast<std::size_t>(i)]++;
                });
                CHECK_FALSE(oversized);
                for (auto& h : hits) REQUIRE(h.load() == 1);
            }
        }
        bool called = false;
        pool.parallel_for(0, 1, [&](std::int64_t, std::int64_t) { called = true; });
        CHECK_FALSE(called);
    }
}

TEST_CASE("thread pool rethrows the first exception and stays usable", "[util][threads]") {
    ThreadPool pool(3);
    CHECK_THROWS_WITH(pool.parallel_for(100, 1,
                                        [](std::int64_t b, std::int64_t) {
                                            if (b == 37) throw std::runtime_error("chunk 37 failed");
                                        }),
                      "chunk 37 failed");
    std::atomic<std::int64_t> sum{0};
    pool.parallel_for(100, 7, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) sum += i;
    });
    CHECK(sum == 4950);
}

TEST_CASE("thread pool runs many tiny jobs and jobs after idle gaps", "[util][threads]") {
    ThreadPool pool(2);
    std::int64_t total = 0;
    std::vector<std::int64_t> part(2);
    for (int job = 0; job < 20000; ++job) {  // back to back: workers never sleep
        pool.parallel_for(2, 1, [&](std::int64_t b, std::int64_t) { part[static_cast<std::size_t>(b)] = job + b; });
        total += part[0] + part[1];
    }
    CHECK(total == 2 * (19999LL * 20000 / 2) + 20000);
    for (int job = 0; job < 3; ++job) {  // gaps long enough for workers to block
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        std::atomic<int> n{0};
        pool.parallel_for(8, 1, [&](std::int64_t, std::int64_t) { ++n; });
        CHECK(n == 8);
    }
}

TEST_CASE("membw: both bandwidth tests cover their arrays on any thread count", "[util][threads]") {
    // The read-only test checks its own sum (one per element, so a slice read twice or
    // skipped shows) and records no figure when it is wrong; the sizes are odd on purpose.
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        const BandwidthResult r = measure_read_bandwidth(pool, (1u << 20) + 24, 3);
        CHECK(r.gb_per_s.size() == 3);
        CHECK(r.array_bytes == (1u << 20) + 24);
        CHECK(r.best > 0);
        CHECK(r.median <= r.best);
        const BandwidthResult t = measure_triad_bandwidth(pool, (1u << 20) + 20, 2);
        CHECK(t.gb_per_s.size() == 2);
        BandwidthResult both = r;
        both.merge(t);
        CHECK(both.gb_per_s.size() == 5);
        CHECK(both.best == std::max(r.best, t.best));
    }
}
