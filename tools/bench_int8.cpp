// bitttt-bench-int8: the output layer's matrix-vector product alone, at real sizes, for the
// encodings `bitttt convert --lm-head` offers: F16 (kernels::gemv_f16), int8 through the
// scalar reference and int8 through the AVX2 kernel (activation quantisation included, as
// in Int8Linear::forward). Rows are split over a ThreadPool as Linear::forward splits them.
// Prints, per shape, thread count and kernel, the median time of the repetitions and the
// weight bytes read per second (GB/s = 1e9 bytes/s). The data is random: it measures
// speed, never quality. Checks that the AVX2 int8 outputs equal the reference's bit for bit.
//
//   bitttt-bench-int8 [--reps N] [--rows R ...] [--cols C] [--threads T ...]
//   (defaults: --reps 9 --rows 32000 128256 --cols 2048 --threads 1 2)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/int8.h"
#include "kernels/dispatch.h"
#include "kernels/int8_gemv.h"
#include "kernels/ops.h"
#include "kernels/ternary_gemv.h"
#include "util/thread_pool.h"

using namespace bitttt;

namespace {

// Chunks of rows as Linear::grain picks them (about 8 per thread, >= 16K weights each).
std::int64_t grain(std::int64_t rows, std::int64_t cols, int threads) {
    const std::int64_t balanced = rows / (static_cast<std::int64_t>(threads) * 8);
    const std::int64_t floor = (16384 + cols - 1) / cols;
    return std::max<std::int64_t>({1, balanced, floor});
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median seconds of `reps` runs of fn, after one warm-up run.
double time_median(int reps, const std::function<void()>& fn) {
    fn();
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(t);
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: bitttt-bench-int8 [--reps N] [--rows R ...] [--cols C] [--threads T ...]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 9;
    std::int64_t cols = 2048;
    std::vector<std::int64_t> all_rows;
    std::vector<int> all_threads;
    std::vector<std::int64_t>* list = nullptr;
    std::vector<int>* tlist = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc) {
            reps = std::atoi(argv[++i]);
            list = nullptr, tlist = nullptr;
        } else if (a == "--cols" && i + 1 < argc) {
            cols = std::atoll(argv[++i]);
            list = nullptr, tlist = nullptr;
        } else if (a == "--rows") {
            list = &all_rows, tlist = nullptr;
        } else if (a == "--threads") {
            tlist = &all_threads, list = nullptr;
        } else if (list && std::atoll(a.c_str()) > 0) {
            list->push_back(std::atoll(a.c_str()));
        } else if (tlist && std::atoi(a.c_str()) > 0) {
            tlist->push_back(std::atoi(a.c_str()));
        } else {
            usage();
        }
    }
    if (reps < 1 || cols < 1 || cols > kInt8MaxCols) usage();
    if (all_rows.empty()) all_rows = {32000, 128256};
    if (all_threads.empty()) all_threads = {1, 2};

    const bool avx2 = kernels::avx2_available();
    std::printf("| shape | threads | kernel | median ms | GB/s (weight bytes) |\n|---|---|---|---|---|\n");
    for (std::int64_t rows : all_rows) {
        std::mt19937 rng(42);
        std::normal_distribution<float> gauss(0.0f, 1.0f);
        // F16 weights and their int8 quantisation, made row by row.
        const Int8Layout layout{rows, cols};
        std::vector<std::uint8_t> f16(static_cast<std::size_t>(rows * cols) * 2);
        std::vector<std::uint8_t> i8(layout.total_bytes(), 0);
        std::vector<float> w(static_cast<std::size_t>(cols));
        for (std::int64_t r = 0; r < rows; ++r) {
            for (auto& v : w) v = 0.02f * gauss(rng);
            for (std::int64_t c = 0; c < cols; ++c) {
                const std::uint16_t h = f32_to_f16(w[static_cast<std::size_t>(c)]);
                f16[static_cast<std::size_t>(2 * (r * cols + c))] = static_cast<std::uint8_t>(h & 0xFF);
                f16[static_cast<std::size_t>(2 * (r * cols + c) + 1)] = static_cast<std::uint8_t>(h >> 8);
            }
            const float s =
                quantize_row_int8(w.data(), cols, reinterpret_cast<std::int8_t*>(i8.data() + r * cols));
            std::memcpy(i8.data() + layout.scales_offset() + 4 * static_cast<std::uint64_t>(r), &s, 4);
        }
        std::vector<float> x(static_cast<std::size_t>(cols));
        for (auto& v : x) v = gauss(rng);
        std::vector<std::int8_t> q(static_cast<std::size_t>(cols));
        std::vector<float> y(static_cast<std::size_t>(rows)), y_ref(y.size());

        const double f16_bytes = static_cast<double>(f16.size());
        const double i8_bytes = static_cast<double>(layout.total_bytes());
        const std::string shape = std::to_string(rows) + " x " + std::to_string(cols);
        for (int threads : all_threads) {
            ThreadPool pool(threads);
            const std::int64_t g = grain(rows, cols, threads);
            auto run_int8 = [&](kernels::Int8GemvFn fn, std::vector<float>& out) {
                const float xs = kernels::quantize_int8(x.data(), cols, q.data(), cols);
                pool.parallel_for(rows, g, [&](std::int64_t r0, std::int64_t r1) {
                    fn(layout, i8.data(), q.data(), xs, r0, r1, out.data() + r0);
                });
            };
            struct Case {
                const char* name;
                double bytes;
                std::function<void()> fn;
            };
            std::vector<Case> cases;
            cases.push_back({"f16 (gemv_f16)", f16_bytes, [&] {
                                 pool.parallel_for(rows, g, [&](std::int64_t r0, std::int64_t r1) {
                                     kernels::gemv_f16(f16.data(), cols, x.data(), r0, r1, y.data() + r0);
                                 });
                             }});
            cases.push_back({"int8 scalar (int8_gemv_ref)", i8_bytes,
                             [&] { run_int8(kernels::int8_gemv_kernel(kernels::Isa::Generic), y_ref); }});
            if (avx2) {
                cases.push_back({"int8 avx2", i8_bytes,
                                 [&] { run_int8(kernels::int8_gemv_kernel(kernels::Isa::Avx2), y); }});
            }
            for (const Case& c : cases) {
                const double t = time_median(reps, c.fn);
                std::printf("| %s | %d | %s | %.2f | %.2f |\n", shape.c_str(), threads, c.name, 1e3 * t,
                            c.bytes / t / 1e9);
                std::fflush(stdout);
            }
            if (avx2 && std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) != 0) {
                std::fprintf(stderr, "error: the AVX2 int8 output differs from the reference\n");
                return 1;
            }
        }
    }
    return 0;
}
