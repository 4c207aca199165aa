// The `bench` command's options, shared by its two modes (cmd_bench.cpp: whole-model pp/tg;
// bench_kernels.cpp: the ternary GEMV alone).
#pragma once

#include <string>
#include <vector>

#include "bitttt/model.h"
#include "util/membw.h"
#include "util/thread_pool.h"

namespace bitttt::cli {

struct BenchArgs {
    std::string model;
    int n_prompt = 256;
    int n_gen = 64;
    int reps = 5;
    int threads = 0;
    int bases = 0;
    KvCacheType kv_cache = KvCacheType::F16;
    int batch = 0;
    int bandwidth_mib = 256;
    int bandwidth_reps = 10;
    bool json = false;
    bool markdown = false;
    bool profile = false;
    bool kernels = false;
    std::string shapes = "llama3-8b";
    std::vector<int> kernel_bases = {1, 2, 3};
    int block_size = 64;
    std::string kernel_scales = "free";  // free | tied | both
    std::string kernel_scale_bits = "16";  // 16 | 8 (two-level) | both
};

// The STREAM triad over --bandwidth-mib arrays on `pool`'s threads.
BandwidthResult bench_bandwidth(ThreadPool& pool, const BenchArgs& args);
// bench --kernels; returns the exit code.
int run_kernel_bench(const BenchArgs& args, bool quiet);

}  // namespace bitttt::cli
