#include "util/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace bitttt {

namespace {

// Tells the core this is a spin-wait loop (saves power, frees the sibling hyper-thread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// How long an idle thread polls before blocking: about 50-200 us of pause instructions
// (then a few yields), longer than the gaps between the jobs of one token, far shorter
// than anything a user would notice as a busy CPU.
constexpr int kSpinPauses = 1 << 12;
constexpr int kSpinYields = 64;

// Polls `ready` with pause, then yield; true if it became true before giving up.
template <class Ready>
bool spin_until(Ready ready) {
    for (int i = 0; i < kSpinPauses; ++i) {
        if (ready()) return true;
        cpu_relax();
    }
    for (int i = 0; i < kSpinYields; ++i) {
        if (ready()) return true;
        std::this_thread::yield();
    }
    return ready();
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
    int workers = std::max(1, threads) - 1;
    workers_.reserve(static_cast<std::size_t>(workers));
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(const Job& job) {
    while (!failed_.load(std::memory_order_relaxed)) {
        const std::int64_t begin = next_.fetch_add(job.grain, std::memory_order_relaxed);
        if (begin >= job.n) return;
        const std::int64_t end = std::min(job.n, begin + job.grain);
        try {
            (*job.fn)(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!error_) error_ = std::current_exception();
            failed_.store(true);
        }
    }
}

void ThreadPool::worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
        auto has_news = [&] {
            return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
        };
        bool joined = false;
        Job job;
        {
            if (!spin_until(has_news)) {
                std::unique_lock<std::mutex> lock(mu_);
                ++sleepers_;
                wake_.wait(lock, has_news);
                --sleepers_;
            }
            std::lock_guard<std::mutex> lock(mu_);
            if (stop_.load()) return;
            seen = generation_.load();
            // Join only a job that still has unclaimed chunks.
            if (job_.fn && next_.load() < job_.n && !failed_.load()) {
                busy_.fetch_add(1);
                joined = true;
                job = job_;  // a copy: the caller clears job_ while this worker may still run
            }
        }
        if (!joined) continue;
        run_chunks(job);
        if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's predicate check
            done_.notify_all();
        }
    }
}

void ThreadPool::parallel_for(std::int64_t n, std::int64_t grain,
                              const std::function<void(std::int64_t, std::int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<std::int64_t>(1, grain);
    if (workers_.empty() || n <= grain) {
        for (std::int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        job_ = Job{&fn, n, grain};
        next_.store(0);
        failed_.store(false);
        generation_.fetch_add(1, std::memory_order_release);
        if (sleepers_ > 0) wake_.notify_all();
    }
    run_chunks(Job{&fn, n, grain});  // returns once every chunk is claimed (or one failed)
    auto all_done = [&] { return busy_.load(std::memory_order_acquire) == 0; };
    std::exception_ptr err;
    {
        // Close the job first: from here no worker joins it.
        std::unique_lock<std::mutex> lock(mu_);
        job_ = Job{};
    }
    if (!spin_until(all_done)) {
        std::unique_lock<std::mutex> lock(mu_);
        done_.wait(lock, all_done);
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        err = error_;
        error_ = nullptr;
    }
    if (err) std::rethrow_exception(err);
}

}  // namespace bitttt
