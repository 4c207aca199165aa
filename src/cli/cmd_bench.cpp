// bitttt bench MODEL [-p P] [-n N] [-r R] [--threads T] [--bases K] [--json|--markdown] [--profile]
// bitttt bench --kernels [MODEL] [...]   (bench_kernels.cpp)
//
// Speed as llama-bench measures it: prompt processing (pp: P tokens in one batched call)
// and generation (tg: N tokens one at a time from an empty cache), each R times after a
// warm-up, excluding tokenisation and load (the token ids are synthetic: speed does not
// depend on which ids they are). The same run measures the machine's memory bandwidth
// (STREAM triad, and a read-only stream), so generation speed can be given as a fraction
// of the bandwidth limit (bandwidth / weight bytes read per token) for each.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "bitttt/error.h"
#include "bitttt/model.h"
#include "cli/bench.h"
#include "cli/commands.h"
#include "kernels/dispatch.h"
#include "util/membw.h"
#include "util/stats.h"
#include "util/sysinfo.h"
#include "util/thread_pool.h"

namespace bitttt::cli {

namespace {

using json = nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Deterministic, well-spread token ids (never 0, which is often a padding/unk id).
std::vector<std::int32_t> synthetic_tokens(int n, std::int64_t vocab) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    std::uint64_t s = 12345;
    for (auto& id : ids) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        id = static_cast<std::int32_t>(1 + (s >> 33) % static_cast<std::uint64_t>(std::max<std::int64_t>(vocab - 1, 1)));
    }
    return ids;
}

// The weight bytes an op read per second of its time (0 for ops that read no weights).
double op_gb_per_s(const OpProfile& o) {
    return o.weight_bytes > 0 && o.seconds > 0 ? static_cast<double>(o.weight_bytes) / o.seconds / 1e9 : 0.0;
}

std::int32_t argmax(const float* v, std::int64_t n) {
    return static_cast<std::int32_t>(std::max_element(v, v + n) - v);
}

struct Sample {
    std::vector<double> runs;  // tokens per second, one per repetition
    double mean = 0, sd = 0, median = 0;

    void finish() {
        mean = bitttt::mean(runs);
        sd = sample_sd(runs);
        median = bitttt::median(runs);
    }
    json to_json() const { return {{"mean", mean}, {"sd", sd}, {"median", median}, {"runs", runs}}; }
};

}  // namespace

BandwidthResult bench_bandwidth(ThreadPool& pool, const BenchArgs& a) {
    return measure_triad_bandwidth(pool, static_cast<std::uint64_t>(a.bandwidth_mib) << 20, a.bandwidth_reps);
}

BandwidthResult bench_read_bandwidth(ThreadPool& pool, const BenchArgs& a) {
    // The triad's footprint (three arrays) as one array.
    return measure_read_bandwidth(pool, static_cast<std::uint64_t>(3 * a.bandwidth_mib) << 20, a.bandwidth_reps);
}

namespace {

int run_model_bench(const BenchArgs& a, bool quiet) {
    const kernels::Isa isa = kernels::active_isa();  // a bad BITTTT_ISA fails before any work
    const kernels::TernaryDesign design = kernels::active_design();
    if (a.model.empty()) throw UsageError("bench needs a MODEL (a .btt file or HF folder), or --kernels");
    if (a.n_prompt <= 0 && a.n_gen <= 0) throw UsageError("nothing to measure: -p and -n are both 0");
    LoadOptions lo{a.bases, a.threads, std::max(a.n_prompt, a.n_gen) + 1, a.batch};
    lo.kv_cache = a.kv_cache;
    std::unique_ptr<Model> model;
    try {
        model = Model::load(a.model, lo);
        note_rearranged(*model, a.model);
    } catch (const UsageError& e) {
        // The context is sized from -p/-n here, so say so (the loader speaks of --ctx).
        throw UsageError("-p/-n need a context of " + std::to_string(lo.ctx) + " tokens: " + e.what());
    }
    const LlamaConfig& cfg = model->config();
    const std::int64_t vocab = cfg.vocab_size;
    const std::vector<std::int32_t> prompt = synthetic_tokens(std::max(a.n_prompt, 1), vocab);

    auto run_pp = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        model->forward_batch(prompt.data(), a.n_prompt, 0, nullptr);
        return a.n_prompt / seconds_since(t0);
    };
    auto run_tg = [&](int n) {
        std::int32_t tok = prompt[0];
        const auto t0 = std::chrono::steady_clock::now();
        for (int pos = 0; pos < n; ++pos) tok = argmax(model->forward(tok, pos), vocab);
        return n / seconds_since(t0);
    };
    auto note = [&](const char* what) {
        if (!quiet) std::fprintf(stderr, "bitttt bench: %s\n", what);
    };

    // The bandwidth measurement uses the same threads as the model.
    ThreadPool pool(model->threads());
    BandwidthResult bw, rbw;
    if (a.bandwidth_mib > 0) {
        note("measuring memory bandwidth (STREAM triad, read-only stream)...");
        bw = bench_bandwidth(pool, a);
        rbw = bench_read_bandwidth(pool, a);
    }
    note("warm-up...");
    if (a.n_prompt > 0) run_pp();
    if (a.n_gen > 0) run_tg(std::min(a.n_gen, 16));

    Sample pp, tg;
    for (int r = 0; r < a.reps; ++r) {
        if (!quiet) std::fprintf(stderr, "bitttt bench: repetition %d/%d\n", r + 1, a.reps);
        if (a.n_prompt > 0) pp.runs.push_back(run_pp());
        if (a.n_gen > 0) tg.runs.push_back(run_tg(a.n_gen));
    }
    // One profiled pass of each test after the timed ones, so profiling costs nothing in
    // the reported speeds.
    struct Profiled {
        std::string test;
        int tokens;
        double seconds;
        std::vector<OpProfile> ops;
    };
    std::vector<Profiled> profiles;
    auto profile_pass = [&](const std::string& test, int tokens, const std::function<void()>& run) {
        model->set_profiling(true);
        const auto t0 = std::chrono::steady_clock::now();
        run();
        profiles.push_back({test, tokens, seconds_since(t0), model->profile()});
        model->set_profiling(false);
    };
    if (a.profile && a.n_prompt > 0) profile_pass("pp" + std::to_string(a.n_prompt), a.n_prompt, [&] { run_pp(); });
    if (a.profile && a.n_gen > 0) profile_pass("tg" + std::to_string(a.n_gen), a.n_gen, [&] { run_tg(a.n_gen); });
    if (a.bandwidth_mib > 0) {
        // A second measurement after the model ran: the best and median cover both.
        bw.merge(bench_bandwidth(pool, a));
        rbw.merge(bench_read_bandwidth(pool, a));
    }
    pp.finish();
    tg.finish();

    const WeightStats ws = model->weight_stats();
    const double bytes_per_token = static_cast<double>(ws.linear_bytes + ws.output_bytes);
    const double linear_bpw = ws.linear_params ? 8.0 * static_cast<double>(ws.linear_bytes) / static_cast<double>(ws.linear_params) : 0;
    const double limit = bw.best > 0 ? bw.best * 1e9 / bytes_per_token : 0.0;
    const double fraction = limit > 0 && a.n_gen > 0 ? tg.mean / limit : 0.0;
    const double read_limit = rbw.best > 0 ? rbw.best * 1e9 / bytes_per_token : 0.0;
    const double read_fraction = read_limit > 0 && a.n_gen > 0 ? tg.mean / read_limit : 0.0;

    json j = {
        {"model", a.model},
        {"description", model->description()},
        {"isa", kernels::isa_name(isa)},
        {"ternary_kernel", kernels::design_name(design)},
        {"threads", model->threads()},
        {"bases", model->bases()},
        {"batch", model->batch()},
        {"kv_cache", kv_cache_type_name(model->kv_cache_type())},
        {"n_prompt", a.n_prompt},
        {"n_gen", a.n_gen},
        {"repetitions", a.reps},
        {"weight_bytes_per_token", ws.linear_bytes + ws.output_bytes},
        {"linear_bits_per_weight", linear_bpw},
        {"linear_bytes", ws.linear_bytes},
        {"output_layer_bytes", ws.output_bytes},
        {"peak_rss_bytes", peak_rss_bytes()},
    };
    if (a.n_prompt > 0) j["pp_tokens_per_s"] = pp.to_json();
    if (a.n_gen > 0) j["tg_tokens_per_s"] = tg.to_json();
    if (a.bandwidth_mib > 0) {
        j["bandwidth_gb_s"] = bw.best;
        j["bandwidth_gb_s_median"] = bw.median;
        j["bandwidth_runs_gb_s"] = bw.gb_per_s;
        j["tg_bandwidth_limit_tokens_per_s"] = limit;
        if (a.n_gen > 0) j["fraction_of_bandwidth_limit"] = fraction;
        j["read_bandwidth_gb_s"] = rbw.best;
        j["read_bandwidth_gb_s_median"] = rbw.median;
        j["read_bandwidth_runs_gb_s"] = rbw.gb_per_s;
        j["tg_read_limit_tokens_per_s"] = read_limit;
        if (a.n_gen > 0) j["fraction_of_read_limit"] = read_fraction;
    }
    if (!profiles.empty()) {
        json pj = json::array();
        for (const Profiled& p : profiles) {
            json ops = json::array();
            double total = 0;
            for (const OpProfile& o : p.ops) total += o.seconds;
            for (const OpProfile& o : p.ops) {
                json oj = {{"op", o.op},
                           {"ms_per_token", 1e3 * o.seconds / p.tokens},
                           {"percent", total > 0 ? 100.0 * o.seconds / total : 0.0},
                           {"weight_bytes", o.weight_bytes},
                           {"weight_gb_per_s", nullptr}};
                const double gbs = op_gb_per_s(o);
                if (gbs > 0) oj["weight_gb_per_s"] = gbs;
                if (gbs > 0 && rbw.best > 0) oj["fraction_of_read_bandwidth"] = gbs / rbw.best;
                ops.push_back(oj);
            }
            pj.push_back({{"test", p.test}, {"tokens", p.tokens}, {"seconds", p.seconds}, {"ops", ops}});
        }
        j["profile"] = pj;
    }
    if (a.json) {
        std::printf("%s\n", json_text(j, 2).c_str());
        return 0;
    }
    auto fmt = [](const Sample& s) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.2f +/- %.2f", s.mean, s.sd);
        return std::string(buf);
    };
    if (a.markdown) {
        std::printf("| model | isa | threads | bases | bits/weight (linear) | MB/token | test | t/s | %% of bandwidth limit |\n");
        std::printf("|---|---|---|---|---|---|---|---|---|\n");
        auto row = [&](const std::string& test, const Sample& s, const std::string& frac) {
            std::printf("| %s | %s | %d | %d | %.2f | %.1f | %s | %s | %s |\n", a.model.c_str(), kernels::isa_name(isa),
                        model->threads(), model->bases(), linear_bpw, bytes_per_token / 1e6, test.c_str(),
                        fmt(s).c_str(), frac.c_str());
        };
        if (a.n_prompt > 0) row("pp" + std::to_string(a.n_prompt), pp, "");
        if (a.n_gen > 0) {
            char f[32] = "";
            if (limit > 0) std::snprintf(f, sizeof f, "%.1f%%", 100.0 * fraction);
            row("tg" + std::to_string(a.n_gen), tg, f);
        }
        return 0;
    }
    std::printf("%s\n", model->description().c_str());
    std::printf("kernels %s, %d threads, batch %d, %.2f bits/weight in linear layers, %.1f MB of weights per token "
                "(output layer %.1f MB)\n",
                kernels::kernels_in_use().c_str(), model->threads(), model->batch(), linear_bpw, bytes_per_token / 1e6,
                static_cast<double>(ws.output_bytes) / 1e6);
    if (a.n_prompt > 0) std::printf("pp%-5d %s tokens/s\n", a.n_prompt, fmt(pp).c_str());
    if (a.n_gen > 0) std::printf("tg%-5d %s tokens/s\n", a.n_gen, fmt(tg).c_str());
    if (a.bandwidth_mib > 0) {
        std::printf("memory bandwidth (triad, %d threads): best %.1f GB/s, median %.1f GB/s\n", pool.size(), bw.best,
                    bw.median);
        std::printf("memory bandwidth (read-only, %d threads): best %.1f GB/s, median %.1f GB/s\n", pool.size(),
                    rbw.best, rbw.median);
        if (a.n_gen > 0) {
            std::printf("bandwidth limit %.1f tokens/s (triad), %.1f tokens/s (read-only); generation reaches %.1f%% "
                        "and %.1f%% of them\n",
                        limit, read_limit, 100.0 * fraction, 100.0 * read_fraction);
        }
    }
    for (const Profiled& p : profiles) {
        std::printf("profile of one %s pass (%.2f ms/token):\n", p.test.c_str(), 1e3 * p.seconds / p.tokens);
        double total = 0;
        for (const OpProfile& o : p.ops) total += o.seconds;
        for (const OpProfile& o : p.ops) {
            std::printf("  %-14s %8.3f ms/token  %5.1f%%", o.op.c_str(), 1e3 * o.seconds / p.tokens,
                        total > 0 ? 100.0 * o.seconds / total : 0.0);
            // Ops that read weights: how much per token, and how fast against the read-only stream.
            const double gbs = op_gb_per_s(o);
            if (gbs > 0) {
                std::printf("  %8.1f MB/token %6.1f GB/s", static_cast<double>(o.weight_bytes) / p.tokens / 1e6, gbs);
                if (rbw.best > 0) std::printf(" (%.0f%% of read-only)", 100.0 * gbs / rbw.best);
            }
            std::printf("\n");
        }
    }
    return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& root, const GlobalOptions& global) {
    auto a = std::make_shared<BenchArgs>();
    CLI::App* cmd = root.add_subcommand(
        "bench",
        "Measure speed. Prompt processing (pp: -p tokens in one batched call) and generation (tg: -n tokens one at\n"
        "a time), each -r times after a warm-up, excluding load and tokenisation (synthetic token ids), with the\n"
        "memory bandwidth measured in the same run (STREAM triad, and a read-only stream like a GEMV's) and\n"
        "generation given as a fraction of each bandwidth limit (bandwidth / weight bytes per token). --kernels instead times the ternary GEMV alone on\n"
        "real layer shapes for each number of bases, packing, instruction set and AVX2 design (maddubs on the\n"
        "rows arrangement; lookup tables on the tiles arrangement, the default). Kernels in use: BITTTT_ISA and\n"
        "BITTTT_TERNARY_KERNEL.");
    cmd->add_option("model", a->model, "A .btt file or Hugging Face folder (optional with --kernels: its layer shapes)");
    cmd->add_option("-p,--n-prompt", a->n_prompt, "Prompt tokens for pp; 0 skips pp (default 256)")
        ->check(CLI::Range(0, 1 << 20));
    cmd->add_option("-n,--n-gen", a->n_gen, "Tokens to generate for tg; 0 skips tg (default 64)")
        ->check(CLI::Range(0, 1 << 20));
    cmd->add_option("-r,--repetitions", a->reps, "Timed repetitions (default 5)")->check(CLI::Range(1, 1000));
    cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)")->check(CLI::Range(1, 1024));
    cmd->add_option("--bases", a->bases, "Use the first min(K, N) bases of each tensor (default: all)")
        ->check(CLI::Range(1, 8));
    cmd->add_option("--batch", a->batch,
                    "Prompt tokens per pass over the weights (default 32; 1 = one token at a time)")
        ->check(CLI::Range(1, 4096));
    add_kv_cache_option(*cmd, a->kv_cache);
    cmd->add_option("--bandwidth-mib", a->bandwidth_mib,
                    "Size of each of the three triad arrays in MiB (the read-only test reads three times as much); 0 "
                    "skips the bandwidth tests (default 256)")
        ->check(CLI::Range(0, 1 << 20));
    auto* js = cmd->add_flag("--json", a->json, "One JSON object on stdout (fields: isa, threads, pp_tokens_per_s and "
                                                 "tg_tokens_per_s {mean, sd, median, runs}, weight_bytes_per_token, "
                                                 "bandwidth_gb_s, fraction_of_bandwidth_limit, read_bandwidth_gb_s, "
                                                 "fraction_of_read_limit, ...)");
    auto* md = cmd->add_flag("--markdown", a->markdown, "A Markdown table row per test (like llama-bench -o md)");
    js->excludes(md);
    cmd->add_flag("--profile", a->profile,
                  "Also time each op of one extra pp and tg pass: ms per token and share, and for the ops that "
                  "read weights, MB per token and GB/s (and their share of the read-only stream)");
    cmd->add_flag("--kernels", a->kernels, "Time the ternary GEMV alone on real layer shapes (see --shapes)");
    cmd->add_option("--shapes", a->shapes,
                    "With --kernels and no MODEL: layer shapes of llama3-8b (default), llama3.2-1b, or ROWSxCOLS,...");
    cmd->add_option("--kernel-bases", a->kernel_bases, "With --kernels: the N values to time (default 1,2,3)")
        ->delimiter(',')
        ->check(CLI::Range(1, 8));
    cmd->add_option("--block-size", a->block_size, "With --kernels: block size (default 64)")->check(CLI::Range(4, 4096));
    cmd->add_option("--kernel-scales", a->kernel_scales,
                    "With --kernels: free (a scale per base per block, default), tied (one per block) or both")
        ->check(CLI::IsMember({"free", "tied", "both"}));
    cmd->add_option("--kernel-scale-bits", a->kernel_scale_bits,
                    "With --kernels: 16 (a binary16 scale per block and slot, default), 8 (two-level: 8-bit "
                    "sub-scales under a binary16 per row and slot) or both")
        ->check(CLI::IsMember({"16", "8", "both"}));

    return [a, &global]() {
        if (a->kernels) return run_kernel_bench(*a, global.quiet);
        return run_model_bench(*a, global.quiet);
    };
}

}  // namespace bitttt::cli
