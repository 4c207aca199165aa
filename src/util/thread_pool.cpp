#include "util/thread_pool.h"

#include <algorithm>

namespace bitttt {

ThreadPool::ThreadPool(int threads) {
    int workers = std::max(1, threads) - 1;
    workers_.reserve(static_cast<std::size_t>(workers));
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
    for (;;) {
        std::int64_t begin;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (next_ >= n_ || error_) return;
            begin = next_;
            next_ = std::min(n_, next_ + grain_);
        }
        std::int64_t end = std::min(n_, begin + grain_);
        try {
            (*fn_)(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!error_) error_ = std::current_exception();
        }
    }
}

void ThreadPool::worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            ++busy_;
        }
        run_chunks();
        {
            std::lock_guard<std::mutex> lock(mu_);
            --busy_;
        }
        done_.notify_all();
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
        fn_ = &fn;
        n_ = n;
        grain_ = grain;
        next_ = 0;
        error_ = nullptr;
        ++generation_;
    }
    wake_.notify_all();
    run_chunks();
    std::exception_ptr err;
    {
        std::unique_lock<std::mutex> lock(mu_);
        // All chunks handed out and every worker that joined this job has left it.
        done_.wait(lock, [&] { return (next_ >= n_ || error_) && busy_ == 0; });
        err = error_;
        error_ = nullptr;
        fn_ = nullptr;
        n_ = 0;
    }
    if (err) std::rethrow_exception(err);
}

}  // namespace bitttt
