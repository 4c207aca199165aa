// A persistent pool of worker threads (created once, reused for every job).
//
// parallel_for splits [0, n) into chunks of `grain` and hands them out dynamically; the
// calling thread works too. Work must write only to places owned by its chunk, so
// results never depend on how many threads ran or which thread took which chunk.
//
// A token's forward pass is ~100 short jobs, so hand-off latency matters: idle workers
// spin briefly (with pause, then yield) before sleeping on a condition variable, and
// chunks are claimed with an atomic counter. The caller waits only for workers that
// joined the job, so a worker the OS has descheduled never delays it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bitttt {

class ThreadPool {
public:
    // `threads` total, including the caller (so threads - 1 workers); at least 1.
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(begin, end) over chunks covering [0, n). The first exception thrown by
    // any chunk is rethrown here after all threads stopped; remaining chunks are skipped.
    void parallel_for(std::int64_t n, std::int64_t grain,
                      const std::function<void(std::int64_t, std::int64_t)>& fn);

private:
    struct Job {
        const std::function<void(std::int64_t, std::int64_t)>* fn = nullptr;
        std::int64_t n = 0;
        std::int64_t grain = 1;
    };
    void worker_loop();
    void run_chunks(const Job& job);

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable wake_;  // a new job (or stop) for sleeping workers
    std::condition_variable done_;  // the last joined worker left the job
    std::atomic<std::uint64_t> generation_{0};  // bumped once per job
    std::atomic<bool> stop_{false};
    int sleepers_ = 0;  // guarded by mu_

    // Current job: written under mu_ before generation_ is bumped. A worker joins (busy_ + 1)
    // under mu_ only while chunks are left, taking a copy of job_, so the caller never waits
    // for a worker that did not take part and may clear job_ while joined workers finish.
    Job job_;
    std::atomic<std::int64_t> next_{0};  // first index not yet claimed
    std::atomic<int> busy_{0};           // workers inside the current job
    std::atomic<bool> failed_{false};
    std::exception_ptr error_;           // guarded by mu_
};

}  // namespace bitttt
