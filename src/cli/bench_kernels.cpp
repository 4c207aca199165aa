// bitttt bench --kernels: the ternary GEMV alone, on real layer shapes, for each number of
// bases, packing, scale mode (free / tied), scale width (binary16, or two-level 8-bit
// sub-scales), instruction set and AVX2 design (maddubs on the
// rows arrangement; lookup tables on the tiles arrangement): time per call, GB/s of .btt bytes
// streamed, weights per second, the share of the measured memory bandwidth, and the
// speed-up over the scalar reference. The weights are random valid codes (the kernels' speed does not
// depend on the values), made in memory: no model file is needed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/model_config.h"
#include "bitttt/ternary.h"
#include "cli/bench.h"
#include "cli/common.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_lut.h"
#include "util/stats.h"
#include "util/sysinfo.h"

namespace bitttt::cli {

namespace {

using json = nlohmann::json;

struct Shape {
    std::string name;
    std::int64_t rows, cols;
};

// The distinct linear-layer shapes of a config, named by the tensors that have them.
std::vector<Shape> shapes_of(const LlamaConfig& c) {
    const std::int64_t h = c.hidden_size, hd = c.head_dim, ff = c.intermediate_size;
    const std::vector<Shape> all = {{"q_proj", c.num_attention_heads * hd, h}, {"k_proj", c.num_key_value_heads * hd, h},
                                    {"v_proj", c.num_key_value_heads * hd, h}, {"o_proj", h, c.num_attention_heads * hd},
                                    {"gate_proj", ff, h}, {"up_proj", ff, h}, {"down_proj", h, ff}};
    std::vector<Shape> out;
    for (const Shape& s : all) {
        auto it = std::find_if(out.begin(), out.end(), [&](const Shape& o) { return o.rows == s.rows && o.cols == s.cols; });
        if (it == out.end()) out.push_back(s);
        else it->name += "/" + s.name;
    }
    return out;
}

LlamaConfig preset_config(std::int64_t hidden, std::int64_t inter, std::int64_t heads, std::int64_t kv) {
    return LlamaConfig::from_json({{"hidden_size", hidden}, {"intermediate_size", inter}, {"num_hidden_layers", 1},
                                   {"num_attention_heads", heads}, {"num_key_value_heads", kv}, {"vocab_size", 1}},
                                  "preset");
}

std::vector<Shape> resolve_shapes(const BenchArgs& a) {
    if (!a.model.empty()) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::is_directory(a.model, ec)) return shapes_of(LlamaConfig::load((fs::path(a.model) / "config.json").string()));
        BttFile f(a.model);
        if (!f.header().contains("model")) throw UsageError(a.model + " has no model config (weights-only .btt); use --shapes");
        return shapes_of(LlamaConfig::from_json(f.header().at("model"), a.model));
    }
    if (a.shapes == "llama3-8b") return shapes_of(preset_config(4096, 14336, 32, 8));
    if (a.shapes == "llama3.2-1b") return shapes_of(preset_config(2048, 8192, 32, 8));
    std::vector<Shape> out;
    std::stringstream ss(a.shapes);
    std::string item;
    while (std::getline(ss, item, ',')) {
        long long r = 0, c = 0;
        char x = 0;
        std::stringstream is(item);
        if (!(is >> r >> x >> c) || x != 'x' || r <= 0 || c <= 0 || !is.eof()) {
            throw UsageError("--shapes: '" + item + "' is not llama3-8b, llama3.2-1b or ROWSxCOLS (e.g. 4096x4096)");
        }
        out.push_back({item, r, c});
    }
    return out;
}

// A tensor of random valid codes and scales in [0.01, 0.02) (two-level: super-scales in
// [0.01, 0.02) / 128 times random 8-bit sub-scales).
std::vector<std::uint8_t> random_tensor(const TernaryLayout& l, std::mt19937_64& rng) {
    std::vector<std::uint8_t> valid;  // every byte value a group may hold
    if (l.packing == Packing::TwoBit) {
        for (int v = 0; v < 256; ++v) {
            if ((v & 3) != 3 && ((v >> 2) & 3) != 3 && ((v >> 4) & 3) != 3 && ((v >> 6) & 3) != 3) valid.push_back(static_cast<std::uint8_t>(v));
        }
    } else {
        for (int v = 0; v < 243; ++v) valid.push_back(static_cast<std::uint8_t>((v * 256 + 242) / 243));
    }
    std::vector<std::uint8_t> data(l.total_bytes());
    const std::size_t gb = l.group_bytes();
    std::uniform_real_distribution<float> sc(0.01f, 0.02f);
    auto put_f16 = [](std::uint8_t* p, float v) {
        const std::uint16_t h = f32_to_f16(v);
        p[0] = static_cast<std::uint8_t>(h & 0xFF);
        p[1] = static_cast<std::uint8_t>(h >> 8);
    };
    for (std::int64_t r = 0; r < l.rows; ++r) {
        std::uint8_t* row = data.data() + static_cast<std::size_t>(r) * l.row_bytes();
        if (l.two_level()) {
            for (int k = 0; k < l.scale_count(); ++k) put_f16(row + 2 * k, sc(rng) / 128.0f);
        }
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            std::uint8_t* blk = row + l.block_offset(b);
            for (int k = 0; k < l.scale_count(); ++k) {
                if (l.two_level()) blk[k] = static_cast<std::uint8_t>(rng());
                else put_f16(blk + 2 * k, sc(rng));
            }
            std::uint8_t* g = blk + l.block_scale_bytes();
            for (std::size_t j = 0; j < gb * static_cast<std::size_t>(l.bases); ++j) g[j] = valid[rng() % valid.size()];
        }
    }
    return data;
}


}  // namespace

int run_kernel_bench(const BenchArgs& a, bool quiet) {
    const std::vector<Shape> shapes = resolve_shapes(a);
    ThreadPool pool(a.threads > 0 ? a.threads : physical_cores());
    std::vector<kernels::Isa> isas = {kernels::Isa::Generic};
    if (kernels::avx2_available()) isas.push_back(kernels::Isa::Avx2);
    const kernels::Isa prep_isa = isas.back();  // an AVX2 preparation also serves the reference

    BandwidthResult bw;
    if (a.bandwidth_mib > 0) {
        if (!quiet) std::fprintf(stderr, "bitttt bench: measuring memory bandwidth (STREAM triad)...\n");
        bw = bench_bandwidth(pool, a);
    }
    std::mt19937_64 rng(7);
    json rows = json::array();
    if (!a.json) {
        std::printf("ternary GEMV, block %d, %d threads, one token; GB/s of packed weights; %% of the triad bandwidth "
                    "(best %.1f GB/s)\n",
                    a.block_size, pool.size(), bw.best);
        std::printf("%-22s %-12s %2s %-6s %-8s %6s %8s | %-12s %9s %7s %6s %6s | %s\n", "tensor", "shape", "N", "pack",
                    "scales", "bits/w", "MB", "isa", "ms", "GB/s", "Gw/s", "%bw", "speed-up");
    }
    std::vector<ScaleMode> modes;
    if (a.kernel_scales != "tied") modes.push_back(ScaleMode::Free);
    if (a.kernel_scales != "free") modes.push_back(ScaleMode::Tied);
    std::vector<int> widths;  // scale bits: 16 (binary16 per block) and/or 8 (two-level)
    if (a.kernel_scale_bits != "8") widths.push_back(16);
    if (a.kernel_scale_bits != "16") widths.push_back(8);
    for (const Shape& s : shapes) {
        for (int n : a.kernel_bases) {
          for (ScaleMode mode : modes) {
           for (int bits : widths) {
            for (Packing p : {Packing::TwoBit, Packing::Dense}) {
                TernaryLayout l{s.rows, s.cols, n, a.block_size, p, mode, bits};
                if (p == Packing::TwoBit && a.block_size % 4 != 0) continue;
                // "free" / "tied", with "/u8" for two-level scales.
                const std::string scales = std::string(scale_mode_name(mode)) + (l.two_level() ? "/u8" : "");
                if (!quiet) {
                    std::fprintf(stderr, "bitttt bench: %s %lldx%lld N=%d %s %s\n", s.name.c_str(),
                                 static_cast<long long>(s.rows), static_cast<long long>(s.cols), n, packing_name(p),
                                 scales.c_str());
                }
                const std::vector<std::uint8_t> data = random_tensor(l, rng);
                std::vector<float> x(static_cast<std::size_t>(s.cols));
                std::normal_distribution<float> nd(0.0f, 1.0f);
                for (auto& v : x) v = nd(rng);
                kernels::TernaryInput in;
                kernels::prepare_ternary_input(prep_isa, x.data(), s.cols, a.block_size, p, in);
                const kernels::TernaryInput* ptr = &in;
                std::vector<float> y(static_cast<std::size_t>(s.rows));
                // The same row split as the engine's linear layers.
                const std::int64_t grain = std::max<std::int64_t>(
                    {1, s.rows / (static_cast<std::int64_t>(pool.size()) * 8), (16384 + s.cols - 1) / s.cols});
                const double bytes = static_cast<double>(l.total_bytes());
                const double weights = static_cast<double>(s.rows * s.cols);
                const double bpw = 8.0 * bytes / weights;
                json r = {{"tensor", s.name}, {"rows", s.rows}, {"cols", s.cols}, {"bases", n},
                          {"packing", packing_name(p)}, {"scales", scale_mode_name(mode)}, {"scale_bits", bits},
                          {"block_size", a.block_size},
                          {"bytes", l.total_bytes()}, {"bits_per_weight", bpw}};
                std::map<kernels::Isa, double> secs;
                for (kernels::Isa isa : isas) {
                    const kernels::TernaryGemmFn fn = kernels::ternary_gemm_kernel(isa);
                    auto once = [&] {
                        const auto t0 = std::chrono::steady_clock::now();
                        pool.parallel_for(s.rows, grain, [&](std::int64_t r0, std::int64_t r1) {
                            fn(l, data.data(), n, &ptr, 1, r0, r1, y.data() + r0, s.rows);
                        });
                        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    };
                    once();  // warm-up
                    std::vector<double> t;
                    for (int i = 0; i < std::max(a.reps, 3); ++i) t.push_back(once());
                    const double m = median(t);
                    secs[isa] = m;
                    const double gbs = bytes / m / 1e9;
                    r[kernels::isa_name(isa)] = {{"ms", 1e3 * m},
                                                 {"gb_s", gbs},
                                                 {"weights_per_s", weights / m},
                                                 {"percent_of_bandwidth", bw.best > 0 ? 100.0 * gbs / bw.best : 0.0}};
                }
                // Design (b): lookup tables on the tiles arrangement (rearranged here from the
                // rows bytes, not timed; the per-input table build is).
                double lut_secs = 0;
                if (isas.size() > 1) {
                    const kernels::LutWeights lw = kernels::lut_repack(l, data.data(), &pool);
                    std::vector<std::uint8_t> tables(kernels::lut_table_bytes(l));
                    const std::int64_t t = kernels::kLutTileRows;
                    const std::int64_t lgrain = (grain + t - 1) / t * t;
                    auto once = [&] {
                        const auto t0 = std::chrono::steady_clock::now();
                        kernels::lut_prepare(l, in.q.data(), tables.data());
                        pool.parallel_for(s.rows, lgrain, [&](std::int64_t r0, std::int64_t r1) {
                            kernels::lut_gemv(lw, n, tables.data(), in.scale, r0, r1, y.data() + r0);
                        });
                        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    };
                    once();
                    std::vector<double> tl;
                    for (int i = 0; i < std::max(a.reps, 3); ++i) tl.push_back(once());
                    lut_secs = median(tl);
                    // GB/s of the tiles it streams (dense tiles: 5 bits per 3 trits).
                    const double gbs = static_cast<double>(lw.layout.total_bytes()) / lut_secs / 1e9;
                    r["avx2_lut"] = {{"ms", 1e3 * lut_secs},
                                     {"bytes", lw.layout.total_bytes()},
                                     {"gb_s", gbs},
                                     {"weights_per_s", weights / lut_secs},
                                     {"percent_of_bandwidth", bw.best > 0 ? 100.0 * gbs / bw.best : 0.0}};
                    r["avx2_lut_speedup"] = secs[kernels::Isa::Generic] / lut_secs;
                }
                const double speedup = secs.size() > 1 ? secs[kernels::Isa::Generic] / secs[kernels::Isa::Avx2] : 1.0;
                if (secs.size() > 1) r["avx2_speedup"] = speedup;
                if (!a.json) {
                    char shape[32];
                    std::snprintf(shape, sizeof shape, "%lldx%lld", static_cast<long long>(s.rows),
                                  static_cast<long long>(s.cols));
                    for (kernels::Isa isa : isas) {
                        const double m = secs[isa], gbs = bytes / m / 1e9;
                        std::printf("%-22s %-12s %2d %-6s %-8s %6.2f %8.1f | %-12s %9.3f %7.2f %6.2f %5.1f%% | %s\n",
                                    s.name.c_str(), shape, n, packing_name(p), scales.c_str(), bpw, bytes / 1e6,
                                    isa == kernels::Isa::Avx2 ? "avx2-maddubs" : "generic", 1e3 * m, gbs,
                                    weights / m / 1e9, bw.best > 0 ? 100.0 * gbs / bw.best : 0.0,
                                    isa == kernels::Isa::Avx2 ? (std::to_string(speedup).substr(0, 5) + "x").c_str() : "");
                    }
                    if (lut_secs > 0) {
                        const double gbs = bytes / lut_secs / 1e9;
                        std::printf("%-22s %-12s %2d %-6s %-8s %6.2f %8.1f | %-12s %9.3f %7.2f %6.2f %5.1f%% | %s\n",
                                    s.name.c_str(), shape, n, packing_name(p), scales.c_str(), bpw, bytes / 1e6,
                                    "avx2-lut", 1e3 * lut_secs, gbs, weights / lut_secs / 1e9,
                                    bw.best > 0 ? 100.0 * gbs / bw.best : 0.0,
                                    (std::to_string(secs[kernels::Isa::Generic] / lut_secs).substr(0, 5) + "x").c_str());
                    }
                    std::fflush(stdout);
                }
                rows.push_back(r);
            }
           }
          }
        }
    }
    if (a.json) {
        json isa_names = json::array();
        for (kernels::Isa isa : isas) isa_names.push_back(kernels::isa_name(isa));
        json j = {{"isa", kernels::isa_name(isas.back())}, {"isas", isa_names}, {"threads", pool.size()},
                  {"block_size", a.block_size}, {"kernels", rows}};
        if (a.bandwidth_mib > 0) {
            j["bandwidth_gb_s"] = bw.best;
            j["bandwidth_gb_s_median"] = bw.median;
        }
        std::printf("%s\n", json_text(j, 2).c_str());
    }
    return 0;
}

}  // namespace bitttt::cli
