// bitttt-bench-lut: the two ternary GEMV designs on Llama shapes, interleaved in one run.
//   (a) kernels::ternary_gemv_avx2: .btt layout, trits unpacked to bytes + maddubs;
//   (b) kernels::lut_gemv (the AVX2 LUT kernel of the packing): weights in the tiles
//       arrangement, pshufb lookup tables over activation pairs (2bit) or triples (dense)
//       built once per vector (lut_prepare, timed inside (b)).
// Rows are split into chunks of a multiple of 32 rows (about 8 per thread), handed out by the
// project's ThreadPool; both designs get the same chunks.
//
// Two figures per case, medians over the runs:
//   cold: each GEMV after evicting the caches (a 96 MB write), i.e. weights from DRAM as
//         when decoding a model larger than the caches;
//   warm: back-to-back GEMVs of the same matrix (weights in cache as far as they fit),
//         the median over every single GEMV of all runs.
// GB/s = packed .btt bytes of the K bases read (rows * blocks * K * (2 + G); two-level:
// rows * (2 K + blocks * K * (1 + G))) / time.
//
// Usage: bitttt-bench-lut [runs (default 9)] [--quick: first shape only] [--shape RxC: that shape only]
//                         [--two-level: 8-bit sub-scales under a binary16 per row and base]
//        bitttt-bench-lut [runs] --file-layout: experiment (c), LUT over the .btt layout
//        bitttt-bench-lut [runs] --compute: the LUT kernel alone on one thread, weights in L2
//            (256 x 4096, B = 64), 2bit and dense tiles interleaved at N = 1, 2, 3, free and tied
//            scales: the kernels' instruction cost without memory traffic (picoseconds per
//            trit, and dense / 2bit)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/ternary.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"
#include "kernels/ternary_lut.h"
#include "util/thread_pool.h"

using namespace bitttt;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Random packed weights, fast: groups are copied from a pool of packed random-trit groups
// (the kernels have no data-dependent branches, so the content does not change timing).
std::vector<std::uint8_t> random_weights(const TernaryLayout& l, std::mt19937_64& rng) {
    const std::size_t gb = l.group_bytes();
    constexpr int kPool = 4096;
    std::vector<std::uint8_t> pool(kPool * gb);
    std::vector<std::int8_t> t(static_cast<std::size_t>(l.block_size));
    std::uniform_int_distribution<int> trit(-1, 1);
    for (int i = 0; i < kPool; ++i) {
        for (auto& v : t) v = static_cast<std::int8_t>(trit(rng));
        pack_trits(l.packing, t.data(), l.block_size, pool.data() + i * gb);
    }
    std::vector<std::uint8_t> data(l.total_bytes());
    std::uniform_real_distribution<float> mag(0.001f, 0.05f);
    const std::uint16_t scales[4] = {f32_to_f16(mag(rng)), f32_to_f16(mag(rng)), f32_to_f16(-mag(rng)),
                                     f32_to_f16(mag(rng))};
    std::uint64_t x = rng() | 1;
    for (std::int64_t r = 0; r < l.rows; ++r) {
        std::uint8_t* row = data.data() + static_cast<std::size_t>(r) * l.row_bytes();
        // Two-level: super-scales from the same few values, 8-bit sub-scales from x.
        for (std::size_t k = 0; k < l.row_header_bytes() / 2; ++k) std::memcpy(row + 2 * k, &scales[(r + k) & 3], 2);
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            std::uint8_t* blk = row + l.block_offset(b);
            for (int k = 0; k < l.bases; ++k) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
                if (k < l.scale_count()) {
                    if (l.two_level()) blk[k] = static_cast<std::uint8_t>(x >> 40);
                    else std::memcpy(blk + 2 * k, &scales[x & 3], 2);
                }
                std::memcpy(blk + l.block_scale_bytes() + k * gb, pool.data() + ((x >> 8) % kPool) * gb, gb);
            }
        }
    }
    return data;
}

std::vector<std::uint8_t> g_evict(96u << 20);

// Written by every thread of the pool, so that its workers are awake when the timed GEMV
// starts (otherwise waking them shows up in the time on a loaded machine).
void evict_caches(ThreadPool& pool) {
    static std::uint8_t v = 0;
    ++v;
    const std::int64_t parts = 64;
    const std::size_t part = g_evict.size() / parts;
    pool.parallel_for(parts, 1, [&](std::int64_t p0, std::int64_t p1) {
        std::memset(g_evict.data() + static_cast<std::size_t>(p0) * part, v, static_cast<std::size_t>(p1 - p0) * part);
    });
}

struct Result {
    double a_cold, b_cold, prep_cold, a_warm, b_warm, prep_warm;
};

struct Case {
    TernaryLayout layout;
    std::vector<std::uint8_t> data;
    kernels::LutWeights lut;
    std::vector<std::int8_t> q;
    std::vector<std::uint8_t> tables;
    std::vector<float> ya, yb;
    float x_scale = 0.01f;
};

Result run_case(Case& c, ThreadPool& pool, int runs) {
    const TernaryLayout& l = c.layout;
    const int k = l.bases;
    const int threads = pool.size();
    const std::int64_t chunk =
        std::max<std::int64_t>(32, (l.rows / (threads * 8) + 31) / 32 * 32);  // rows per chunk, multiple of 32
    const std::int64_t chunks = (l.rows + chunk - 1) / chunk;
    double prep_t = 0;
    auto gemv_a = [&] {
        pool.parallel_for(chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
            const std::int64_t r0 = c0 * chunk, r1 = std::min(l.rows, c1 * chunk);
            kernels::ternary_gemv_avx2(l, c.data.data(), k, c.q.data(), c.x_scale, r0, r1, c.ya.data() + r0);
        });
    };
    auto gemv_b = [&] {
        const auto t0 = Clock::now();
        kernels::lut_prepare(l, c.q.data(), c.tables.data());
        prep_t = seconds_since(t0);
        pool.parallel_for(chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
            const std::int64_t r0 = c0 * chunk, r1 = std::min(l.rows, c1 * chunk);
            kernels::lut_gemv(c.lut, k, c.tables.data(), c.x_scale, r0, r1, c.yb.data() + r0);
        });
    };
    // Warm-up (also checks that both designs agree bit for bit).
    for (int i = 0; i < 2; ++i) gemv_a(), gemv_b();
    if (std::memcmp(c.ya.data(), c.yb.data(), c.ya.size() * sizeof(float)) != 0) {
        std::fprintf(stderr, "designs disagree\n");
        std::exit(1);
    }
    // Back-to-back repetitions for the warm figure: about 5 ms per run and design.
    const auto t0 = Clock::now();
    gemv_a();
    const int reps = std::clamp(static_cast<int>(0.005 / std::max(seconds_since(t0), 1e-6)), 2, 50);
    std::vector<double> ac, bc, pc, aw, bw, pw;
    for (int r = 0; r < runs; ++r) {
        // Alternate which design goes first.
        for (int d = 0; d < 2; ++d) {
            const bool a = (d == 0) == (r % 2 == 0);
            evict_caches(pool);
            auto t = Clock::now();
            a ? gemv_a() : gemv_b();
            (a ? ac : bc).push_back(seconds_since(t));
            if (!a) pc.push_back(prep_t);
            // Each back-to-back GEMV is one warm sample (a median over single GEMVs resists
            // the other jobs on a shared machine better than an average).
            for (int i = 0; i < reps; ++i) {
                t = Clock::now();
                a ? gemv_a() : gemv_b();
                (a ? aw : bw).push_back(seconds_since(t));
                if (!a) pw.push_back(prep_t);
            }
        }
    }
    return {median(ac), median(bc), median(pc), median(aw), median(bw), median(pw)};
}

// Experiment (c): lookup tables WITHOUT repacking. In the .btt layout group byte j holds
// positions j + G*d, d = 0..3 (2bit) or 0..4 (dense), so a table per (block, j) of all 256
// byte values (int16 sums of the byte's trits times those activations) turns each group
// byte into one scalar load. pshufb cannot serve it (each byte lane would need its own
// table), so the lookups are scalar; the tables are 512 bytes per group byte.
struct FileLut {
    std::vector<std::int16_t> tab;  // [block][j][256]
};

void file_lut_prepare(const TernaryLayout& l, const std::int8_t* q, FileLut& f) {
    const int g = static_cast<int>(l.group_bytes());
    const int bs = l.block_size;
    const int digits = l.packing == Packing::TwoBit ? 4 : 5;
    // tt[d][v]: the trit of digit d of byte value v, decoded as the reference does.
    std::int8_t tt[5][256];
    static const int pow3[5] = {1, 3, 9, 27, 81};
    for (int v = 0; v < 256; ++v) {
        for (int d = 0; d < 5; ++d) {
            tt[d][v] = static_cast<std::int8_t>(l.packing == Packing::TwoBit
                                                    ? (d < 4 ? std::min(((v >> (2 * d)) & 3) - 1, 1) : 0)
                                                    : ((((v * pow3[d]) & 0xFF) * 3) >> 8) - 1);
        }
    }
    f.tab.resize(static_cast<std::size_t>(l.blocks_per_row()) * g * 256);
    for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
        for (int j = 0; j < g; ++j) {
            std::int16_t* e = f.tab.data() + (static_cast<std::size_t>(b) * g + j) * 256;
            int qd[5] = {0, 0, 0, 0, 0};
            for (int d = 0; d < digits; ++d) qd[d] = j + g * d < bs ? q[b * bs + j + g * d] : 0;
            for (int v = 0; v < 256; ++v)
                e[v] = static_cast<std::int16_t>(tt[0][v] * qd[0] + tt[1][v] * qd[1] + tt[2][v] * qd[2] + tt[3][v] * qd[3] +
                                                 tt[4][v] * qd[4]);
        }
    }
}

// Free scales only (every layout this tool builds has them).
void file_lut_gemv(const TernaryLayout& l, const std::uint8_t* data, int k_bases, const FileLut& f, float x_scale,
                   std::int64_t r0, std::int64_t r1, float* y) {
    const std::size_t g = l.group_bytes();
    for (std::int64_t r = r0; r < r1; ++r) {
        const std::uint8_t* row = data + static_cast<std::size_t>(r) * l.row_bytes();
        float acc = 0.0f;
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            const std::uint8_t* blk = row + l.block_offset(b);
            const std::int16_t* tb = f.tab.data() + static_cast<std::size_t>(b) * g * 256;
            for (int k = 0; k < k_bases; ++k) {
                const std::uint8_t* grp = blk + l.block_scale_bytes() + k * g;
                std::int32_t dot = 0;
                for (std::size_t j = 0; j < g; ++j) dot += tb[j * 256 + grp[j]];
                acc += l.block_scale(row, blk, k) * static_cast<float>(dot);
            }
        }
        y[r - r0] = acc * x_scale;
    }
}

// --compute: 2bit and dense at each N, alternating, each sample the mean of back-to-back
// GEMVs over about 1 ms; medians of `runs` * 5 samples.
int compute_only(int runs, std::mt19937_64& rng) {
    constexpr std::int64_t kRows = 256, kCols = 4096;
    std::printf("one thread, %lld x %lld, B = 64, weights in L2; median of %d samples, ps per trit (rows x cols x N)\n",
                static_cast<long long>(kRows), static_cast<long long>(kCols), runs * 5);
    std::printf("| scales | N | 2bit ps/trit | dense ps/trit | dense / 2bit |\n|---|---|---|---|---|\n");
    std::vector<std::int8_t> q(kCols);
    std::uniform_int_distribution<int> qv(-127, 127);
    for (auto& v : q) v = static_cast<std::int8_t>(qv(rng));
    for (int cs = 0; cs < 6; ++cs) {
        const ScaleMode mode = cs < 3 ? ScaleMode::Free : ScaleMode::Tied;
        const int n = cs % 3 + 1;
        struct One {
            TernaryLayout l;
            std::vector<std::uint8_t> data;
            kernels::LutWeights lut;
            std::vector<std::uint8_t> tables;
            std::vector<double> t;
        } one[2];
        const Packing packings[2] = {Packing::TwoBit, Packing::Dense};
        for (int p = 0; p < 2; ++p) {
            One& o = one[p];
            o.l.rows = kRows, o.l.cols = kCols, o.l.bases = n, o.l.block_size = 64, o.l.packing = packings[p];
            o.l.scales = mode;
            o.l.validate();
            o.data = random_weights(o.l, rng);
            o.lut = kernels::lut_repack(o.l, o.data.data());
            o.tables.resize(kernels::lut_table_bytes(o.l));
            kernels::lut_prepare(o.l, q.data(), o.tables.data());
        }
        std::vector<float> y(kRows);
        auto gemv = [&](One& o) { kernels::lut_gemv(o.lut, n, o.tables.data(), 0.01f, 0, kRows, y.data()); };
        int reps = 1;
        {
            const auto t0 = Clock::now();
            for (int i = 0; i < 10; ++i) gemv(one[0]);
            reps = std::max(1, static_cast<int>(1e-3 / std::max(seconds_since(t0) / 10, 1e-9)));
        }
        for (int s = 0; s < runs * 5; ++s) {
            for (int p = 0; p < 2; ++p) {
                One& o = one[(p + s) % 2];
                gemv(o);
                const auto t0 = Clock::now();
                for (int i = 0; i < reps; ++i) gemv(o);
                o.t.push_back(seconds_since(t0) / reps);
            }
        }
        const double trits = static_cast<double>(kRows) * kCols * n;
        const double a = median(one[0].t) / trits * 1e12, b = median(one[1].t) / trits * 1e12;
        std::printf("| %s | %d | %.2f | %.2f | %.2f |\n", scale_mode_name(mode), n, a, b, b / a);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 9;
    bool quick = false, file_layout = false, compute = false;
    int scale_bits = 16;
    std::pair<long long, long long> one_shape{0, 0};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) quick = true;
        else if (std::strcmp(argv[i], "--file-layout") == 0) file_layout = true;
        else if (std::strcmp(argv[i], "--compute") == 0) compute = true;
        else if (std::strcmp(argv[i], "--two-level") == 0) scale_bits = 8;
        else if (std::strcmp(argv[i], "--shape") == 0 && i + 1 < argc) {
            long long r = 0, c = 0;
            if (std::sscanf(argv[++i], "%lldx%lld", &r, &c) == 2) one_shape = {r, c};
        }
        else runs = std::max(1, std::atoi(argv[i]));
    }
    if (!kernels::avx2_available()) {
        std::fprintf(stderr, "bitttt-bench-lut: this CPU (or build) has no usable AVX2\n");
        return 1;
    }
    struct Shape {
        std::int64_t rows, cols;
    };
    struct Pb {
        Packing p;
        int bs;
    };
    std::vector<Shape> shapes = {{4096, 4096}, {14336, 4096}, {4096, 14336}, {2048, 2048}, {8192, 2048}, {2048, 8192}};
    if (one_shape.first > 0) shapes = {{one_shape.first, one_shape.second}};
    const Pb pbs[] = {{Packing::TwoBit, 64}, {Packing::TwoBit, 128}, {Packing::Dense, 64}};
    std::mt19937_64 rng(42);
    if (compute) return compute_only(runs, rng);
    ThreadPool pool1(1), pool2(2);
    if (file_layout) {
        // Experiment (c) against (a) and (b), one thread, 4096 x 4096, caches evicted.
        std::printf("| packing | B | N | (a) us | (b) us | (c) file-layout LUT us | (c) prepare us | (c) tables KB |\n|---|---|---|---|---|---|---|---|\n");
        for (const Pb& pb : {Pb{Packing::TwoBit, 64}, Pb{Packing::Dense, 64}}) {
            for (int n = 1; n <= 3; ++n) {
                TernaryLayout l;
                l.rows = 4096, l.cols = 4096, l.bases = n, l.block_size = pb.bs, l.packing = pb.p;
                l.scale_bits = scale_bits;
                const auto data = random_weights(l, rng);
                const auto lut = kernels::lut_repack(l, data.data());
                std::vector<std::int8_t> q(4096);
                std::uniform_int_distribution<int> qv(-127, 127);
                for (auto& v : q) v = static_cast<std::int8_t>(qv(rng));
                std::vector<std::uint8_t> tables(kernels::lut_table_bytes(l));
                std::vector<float> ya(4096), yb(4096), yc(4096);
                FileLut f;
                std::vector<double> ta, tb, tc, tp;
                for (int r = 0; r < runs + 1; ++r) {
                    evict_caches(pool1);
                    auto t = Clock::now();
                    kernels::ternary_gemv_avx2(l, data.data(), n, q.data(), 0.01f, 0, l.rows, ya.data());
                    ta.push_back(seconds_since(t));
                    evict_caches(pool1);
                    t = Clock::now();
                    kernels::lut_prepare(l, q.data(), tables.data());
                    kernels::lut_gemv(lut, n, tables.data(), 0.01f, 0, l.rows, yb.data());
                    tb.push_back(seconds_since(t));
                    evict_caches(pool1);
                    t = Clock::now();
                    file_lut_prepare(l, q.data(), f);
                    tp.push_back(seconds_since(t));
                    file_lut_gemv(l, data.data(), n, f, 0.01f, 0, l.rows, yc.data());
                    tc.push_back(seconds_since(t));
                    if (r == 0) ta.clear(), tb.clear(), tc.clear(), tp.clear();  // warm-up
                }
                if (std::memcmp(ya.data(), yc.data(), ya.size() * 4) != 0 || std::memcmp(ya.data(), yb.data(), ya.size() * 4) != 0) {
                    std::fprintf(stderr, "designs disagree\n");
                    return 1;
                }
                std::printf("| %s | %d | %d | %.0f | %.0f | %.0f | %.0f | %.0f |\n", packing_name(pb.p), pb.bs, n, median(ta) * 1e6,
                            median(tb) * 1e6, median(tc) * 1e6, median(tp) * 1e6, f.tab.size() * 2 / 1024.0);
            }
        }
        return 0;
    }
    std::printf("runs %d (medians), times in us; GB/s of packed .btt bytes of the K = N bases; %s scales\n", runs,
                scale_bits == 8 ? "two-level (u8 under f16)" : "f16");
    std::printf("| rows x cols | packing | B | N | thr | (a) cold | (b) cold | (b) prep | (a) GB/s | (b) GB/s | "
                "(a)/(b) cold | (a) warm | (b) warm | (b) prep warm | (a)/(b) warm | repack ms | repack ms 2 thr |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Shape& sh : shapes) {
        for (const Pb& pb : pbs) {
            for (int n = 1; n <= 3; ++n) {
                Case c;
                c.layout.rows = sh.rows;
                c.layout.cols = sh.cols;
                c.layout.bases = n;
                c.layout.block_size = pb.bs;
                c.layout.packing = pb.p;
                c.layout.scale_bits = scale_bits;
                c.layout.validate();
                c.data = random_weights(c.layout, rng);
                auto t0 = Clock::now();
                c.lut = kernels::lut_repack(c.layout, c.data.data());
                const double repack_ms = seconds_since(t0) * 1e3;
                t0 = Clock::now();
                const auto lut2 = kernels::lut_repack(c.layout, c.data.data(), &pool2);
                const double repack2_ms = seconds_since(t0) * 1e3;
                if (lut2.owned != c.lut.owned) {
                    std::fprintf(stderr, "parallel repack differs\n");
                    return 1;
                }
                std::vector<float> x(static_cast<std::size_t>(sh.cols));
                std::normal_distribution<float> nd(0.0f, 1.0f);
                for (auto& v : x) v = nd(rng);
                c.q.resize(static_cast<std::size_t>(c.layout.blocks_per_row() * c.layout.block_size));
                c.x_scale = kernels::quantize_int8(x.data(), sh.cols, c.q.data(), static_cast<std::int64_t>(c.q.size()));
                c.tables.resize(kernels::lut_table_bytes(c.layout));
                c.ya.assign(static_cast<std::size_t>(sh.rows), 0.0f);
                c.yb.assign(static_cast<std::size_t>(sh.rows), 1.0f);
                // Per row: the K super-scales (two-level), then per block K scales and groups.
                const double scale_bytes = c.layout.two_level() ? 1.0 : 2.0;
                const double bytes = static_cast<double>(sh.rows) *
                                     (static_cast<double>(c.layout.row_header_bytes()) +
                                      static_cast<double>(c.layout.blocks_per_row()) * n *
                                          (scale_bytes + static_cast<double>(c.layout.group_bytes())));
                for (ThreadPool* pool : {&pool1, &pool2}) {
                    const Result r = run_case(c, *pool, runs);
                    std::printf("| %lldx%lld | %s | %d | %d | %d | %.0f | %.0f | %.1f | %.1f | %.1f | %.2f | %.0f | %.0f | "
                                "%.1f | %.2f | %.0f | %.0f |\n",
                                static_cast<long long>(sh.rows), static_cast<long long>(sh.cols), packing_name(pb.p),
                                pb.bs, n, pool->size(), r.a_cold * 1e6, r.b_cold * 1e6, r.prep_cold * 1e6,
                                bytes / r.a_cold * 1e-9, bytes / r.b_cold * 1e-9, r.a_cold / r.b_cold, r.a_warm * 1e6,
                                r.b_warm * 1e6, r.prep_warm * 1e6, r.a_warm / r.b_warm, repack_ms, repack2_ms);
                    std::fflush(stdout);
                }
            }
        }
        if (quick) break;
    }
    return 0;
}
