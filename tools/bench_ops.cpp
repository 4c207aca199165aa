// bitttt-bench-ops: times each op of src/kernels/ops.h and the int8 activation quantiser,
// scalar reference vs AVX2, at Llama sizes (hidden 2048 / 4096, intermediate 8192 / 14336,
// quantiser inputs 2048 / 8192 / 14336, attention with head_dim 64 / 128
// over 256 and 2048 cached positions, the F16 lm_head 32000 x 2048 and 128256 x 2048 on 1
// and 2 threads). Prints the median time per call over `--runs` samples (each sample
// repeats the call until it lasts ~20 ms, after one warm-up call), the speed-up, and for
// the GEMVs the weight bandwidth.
//
//   bitttt-bench-ops [--runs 7] [--quick]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bitttt/dtype.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "kernels/ternary_gemv.h"
#include "util/thread_pool.h"

using namespace bitttt;
using namespace bitttt::kernels;

namespace {

using Clock = std::chrono::steady_clock;

int g_runs = 7;

// Median seconds per call of fn.
double median_seconds(const std::function<void()>& fn) {
    fn();  // warm-up (page faults, caches)
    const auto t0 = Clock::now();
    fn();
    const double once = std::chrono::duration<double>(Clock::now() - t0).count();
    const int reps = std::max(1, static_cast<int>(0.02 / std::max(once, 1e-9)));
    std::vector<double> samples;
    for (int r = 0; r < g_runs; ++r) {
        const auto a = Clock::now();
        for (int i = 0; i < reps; ++i) fn();
        samples.push_back(std::chrono::duration<double>(Clock::now() - a).count() / reps);
    }
    std::sort(samples.begin(), samples.end());
    return samples[samples.size() / 2];
}

// Deterministic pseudo-random floats in about [-1, 1] (fast enough for 10^8 values).
void fill(float* p, std::size_t n, std::uint32_t seed) {
    std::uint32_t s = seed * 2654435761u + 1;
    for (std::size_t i = 0; i < n; ++i) {
        s = s * 1664525u + 1013904223u;
        p[i] = static_cast<float>(static_cast<std::int32_t>(s >> 8) - (1 << 23)) / static_cast<float>(1 << 23);
    }
}
std::vector<float> rnd(std::size_t n, std::uint32_t seed) {
    std::vector<float> v(n);
    fill(v.data(), n, seed);
    return v;
}

const OpsTable* g_ops[2];

void row(const std::string& op, const std::string& size, const std::function<void(const OpsTable&)>& fn,
         double bytes = 0.0) {
    double t[2];
    for (int i = 0; i < 2; ++i) {
        const OpsTable& o = *g_ops[i];
        t[i] = median_seconds([&] { fn(o); });
    }
    std::printf("| %-10s | %-28s | %10.2f | %10.2f | %6.2fx |", op.c_str(), size.c_str(), t[0] * 1e6, t[1] * 1e6,
                t[0] / t[1]);
    if (bytes > 0) {
        std::printf(" %6.2f / %6.2f |\n", bytes / t[0] / 1e9, bytes / t[1] / 1e9);
    } else {
        std::printf("                 |\n");
    }
    std::fflush(stdout);
}

std::string dims(std::int64_t a, std::int64_t b) { return std::to_string(a) + " x " + std::to_string(b); }

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--runs" && i + 1 < argc) {
            g_runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--quick") {
            quick = true;
        } else {
            std::fprintf(stderr, "usage: bitttt-bench-ops [--runs N] [--quick]\n");
            return 2;
        }
    }
    if (!avx2_available()) {
        std::fprintf(stderr, "bitttt-bench-ops: this CPU (or build) has no usable AVX2; nothing to compare\n");
        return 1;
    }
    g_ops[0] = &ops_table(Isa::Generic);
    g_ops[1] = &ops_table(Isa::Avx2);

    std::printf("median of %d runs, microseconds per call\n\n", g_runs);
    std::printf("| op         | size                         |  scalar us |    avx2 us | speed-up | GB/s scalar / avx2 |\n");
    std::printf("| ---------- | ---------------------------- | ---------: | ---------: | -------: | -----------------: |\n");

    for (std::int64_t n : {2048, 4096}) {
        const auto x = rnd(n, 1), w = rnd(n, 2);
        std::vector<float> out(x.size());
        row("rmsnorm", std::to_string(n), [&](const OpsTable& o) { o.rmsnorm(x.data(), w.data(), n, 1e-5f, out.data()); });
    }
    // The activation quantiser of the ternary and int8 GEMVs (not in the ops table: its two
    // forms give the same bits; quantize_int8 picks one by ISA).
#ifdef BITTTT_HAVE_AVX2_KERNEL
    for (std::int64_t n : {2048, 8192, 14336}) {
        const auto x = rnd(n, 9);
        std::vector<std::int8_t> q(x.size());
        row("quantize", std::to_string(n), [&](const OpsTable& o) {
            (&o == g_ops[0] ? quantize_int8_ref : quantize_int8_avx2)(x.data(), n, q.data(), n);
        });
    }
#endif
    for (std::int64_t n : {8192, 14336}) {
        const auto g = rnd(n, 3), u = rnd(n, 4);
        std::vector<float> out(g.size());
        row("swiglu", std::to_string(n), [&](const OpsTable& o) { o.swiglu(g.data(), u.data(), n, out.data()); });
    }
    for (std::int64_t n : {2048, 32000}) {
        const auto x = rnd(n, 5);
        std::vector<float> y(x.size());
        // Copy in each call (softmax is in place); the copy is in both columns.
        row("softmax", std::to_string(n), [&](const OpsTable& o) {
            std::memcpy(y.data(), x.data(), x.size() * sizeof(float));
            o.softmax(y.data(), n);
        });
    }
    for (std::int64_t n : {128, 4096}) {
        const auto a = rnd(n, 6), b = rnd(n, 7);
        std::vector<float> y(a.size(), 0.0f);
        volatile float sink = 0.0f;
        row("dot", std::to_string(n), [&](const OpsTable& o) { sink = sink + o.dot(a.data(), b.data(), n); });
        row("axpy", std::to_string(n), [&](const OpsTable& o) { o.axpy(1e-3f, a.data(), n, y.data()); });
    }
    for (std::int64_t n : {2048, 4096}) {
        std::vector<std::uint8_t> src(2 * static_cast<std::size_t>(n));
        const auto f = rnd(n, 8);
        for (std::int64_t i = 0; i < n; ++i) {
            const std::uint16_t h = f32_to_f16(f[i]);
            std::memcpy(src.data() + 2 * i, &h, 2);
        }
        std::vector<float> out(f.size());
        row("f16_row", std::to_string(n), [&](const OpsTable& o) { o.f16_row(src.data(), n, out.data()); });
    }
    for (std::int64_t hd : {64, 128}) {
        const std::int64_t heads = 4096 / hd;
        std::vector<float> c(hd / 2), s(hd / 2);
        for (std::int64_t i = 0; i < hd / 2; ++i) {
            c[i] = std::cos(0.1f * i);
            s[i] = std::sin(0.1f * i);
        }
        auto v = rnd(heads * hd, 9);
        row("rope", std::to_string(heads) + " heads x " + std::to_string(hd),
            [&](const OpsTable& o) { o.rope(v.data(), heads, hd, c.data(), s.data()); });
    }
    // Attention of one query head; the cache rows hold 8 kv heads (kvd = 8 hd).
    for (std::int64_t hd : {64, 128}) {
        for (std::int64_t n : {256, 2048}) {
            const std::int64_t kvd = 8 * hd;
            const auto kc = rnd(n * kvd, 10), vc = rnd(n * kvd, 11), q = rnd(hd, 12);
            std::vector<float> scores(n), out(hd);
            const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
            row("attention", "hd " + std::to_string(hd) + ", " + std::to_string(n) + " positions",
                [&](const OpsTable& o) {
                    o.attention(q.data(), kc.data() + 3 * hd, vc.data() + 3 * hd, n, kvd, hd, scale, scores.data(),
                                out.data());
                });
            // The same over a binary16 cache (the default KV cache).
            std::vector<std::uint16_t> kh(kc.size()), vh(vc.size());
            ops_table(Isa::Generic).f32_to_f16_row(kc.data(), static_cast<std::int64_t>(kc.size()), kh.data());
            ops_table(Isa::Generic).f32_to_f16_row(vc.data(), static_cast<std::int64_t>(vc.size()), vh.data());
            row("attention_f16", "hd " + std::to_string(hd) + ", " + std::to_string(n) + " positions",
                [&](const OpsTable& o) {
                    o.attention_f16(q.data(), kh.data() + 3 * hd, vh.data() + 3 * hd, n, kvd, hd, scale,
                                    scores.data(), out.data());
                });
        }
    }
    {
        const std::int64_t rows = 2048, cols = 2048;
        const auto w = rnd(rows * cols, 13), x = rnd(cols, 14);
        std::vector<float> y(rows);
        row("gemv_f32", dims(rows, cols), [&](const OpsTable& o) { o.gemv_f32(w.data(), cols, x.data(), 0, rows, y.data()); },
            4.0 * rows * cols);
    }
    // The F16 lm_head, split over a thread pool as Linear does (about 8 chunks per thread).
    std::vector<std::int64_t> vocabs = {32000, 128256};
    if (quick) vocabs = {32000};
    for (std::int64_t rows : vocabs) {
        const std::int64_t cols = 2048;
        std::vector<std::uint8_t> w(2 * static_cast<std::size_t>(rows * cols));
        {
            std::vector<float> chunk(static_cast<std::size_t>(cols));
            for (std::int64_t r = 0; r < rows; ++r) {
                fill(chunk.data(), chunk.size(), static_cast<std::uint32_t>(r));
                for (std::int64_t c = 0; c < cols; ++c) {
                    const std::uint16_t h = f32_to_f16(chunk[c] * 0.05f);
                    std::memcpy(w.data() + 2 * (r * cols + c), &h, 2);
                }
            }
        }
        const auto x = rnd(cols, 15);
        std::vector<float> y(rows);
        for (int threads : {1, 2}) {
            ThreadPool pool(threads);
            const std::int64_t grain = std::max<std::int64_t>({1, rows / (threads * 8), (16384 + cols - 1) / cols});
            row("gemv_f16", dims(rows, cols) + ", " + std::to_string(threads) + " thr",
                [&](const OpsTable& o) {
                    pool.parallel_for(rows, grain, [&](std::int64_t r0, std::int64_t r1) {
                        o.gemv_f16(w.data(), cols, x.data(), r0, r1, y.data() + r0);
                    });
                },
                2.0 * rows * cols);
        }
    }
    return 0;
}
