// bitttt calibrate MODEL --file TEXT -o FILE [--ctx C] [--chunks K] [--stats full|diag] [--threads T] [--json]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <spdlog/spdlog.h>

#include "bitttt/calibrate.h"
#include "bitttt/error.h"
#include "bitttt/file_io.h"
#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"
#include "bitttt/tokenizer.h"
#include "cli/commands.h"
#include "util/progress.h"
#include "util/sysinfo.h"

namespace bitttt::cli {

namespace {

struct CalibrateArgs {
    std::string model;
    std::string file;
    std::string output;
    int ctx = 256;
    int chunks = 64;
    std::string stats = "full";
    int threads = 0;
    bool json = false;
};

}  // namespace

Runner add_calibrate_command(CLI::App& root, const GlobalOptions& global) {
    auto a = std::make_shared<CalibrateArgs>();
    CLI::App* cmd = root.add_subcommand(
        "calibrate",
        "Run the unquantised model (HF folder) over calibration text and store, for every linear-layer input,\n"
        "the mean square per channel and (--stats full) X^T X / tokens, for the converter's fitting. The text\n"
        "is cut into --chunks chunks of --ctx tokens, each starting with BOS. Works one layer at a time, so\n"
        "memory holds the hidden states of all tokens and one layer's weights, never the whole model.");
    cmd->add_option("model", a->model, "Hugging Face folder, model.safetensors or index.json (config.json and "
                                       "tokenizer.json beside it)")
        ->required();
    cmd->add_option("-f,--file", a->file, "UTF-8 calibration text")->required();
    cmd->add_option("-o,--output", a->output, "Output calibration file (safetensors)")->required();
    cmd->add_option("-c,--ctx", a->ctx, "Tokens per chunk (default 256)")->check(CLI::Range(2, 1 << 20));
    cmd->add_option("--chunks", a->chunks, "Chunks of text to use (default 64)")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--stats", a->stats,
                    "full: mean squares and X^T X (default; n(n+1)/2 floats per input), diag: mean squares only")
        ->check(CLI::IsMember({"full", "diag"}));
    cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)")->check(CLI::Range(1, 1024));
    cmd->add_flag("--json", a->json, "Print one JSON summary on stdout");

    return [a, &global]() {
        const auto t0 = std::chrono::steady_clock::now();
        std::int32_t bos = -1;
        std::vector<std::int32_t> text_tokens;
        {
            const Checkpoint ckpt = Checkpoint::open(a->model);
            if (!ckpt.config_path())
                throw UsageError(a->model + ": no config.json next to the weights; calibration needs the model folder");
            if (!ckpt.tokenizer_path())
                throw UsageError(a->model + ": no tokenizer.json next to the weights; calibration tokenizes the text "
                                            "with the model's tokenizer");
            const LlamaConfig cfg = LlamaConfig::load(*ckpt.config_path());
            if (a->ctx > cfg.max_position_embeddings)
                throw UsageError("--ctx " + std::to_string(a->ctx) + " is more than the model's max_position_embeddings (" +
                                 std::to_string(cfg.max_position_embeddings) + ")");
            const Tokenizer tok = Tokenizer::load(*ckpt.tokenizer_path());
            if (tok.adds_bos() && tok.bos_id()) {
                bos = *tok.bos_id();
            } else if (cfg.bos_token_id) {
                bos = static_cast<std::int32_t>(*cfg.bos_token_id);
            }
            text_tokens = tok.encode(read_file(a->file), true, false);
        }
        const std::vector<std::int32_t> tokens = calibration_tokens(text_tokens, a->ctx, a->chunks, bos);
        const double tokenize_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

        CalibrateOptions o;
        o.ctx = a->ctx;
        o.chunks = a->chunks;
        o.full = a->stats == "full";
        o.threads = a->threads;
        o.text = std::filesystem::path(a->file).filename().string();
        std::unique_ptr<Progress> progress;
        const bool bar = !global.quiet && !a->json && is_terminal(2);
        o.on_layer = [&](int done, int total) {
            if (!progress) progress = std::make_unique<Progress>(bar, static_cast<std::uint64_t>(total), "layers");
            progress->advance(1);
            if (!bar) spdlog::debug("layer {}/{} done", done, total);
        };
        if (!global.quiet && !a->json)
            spdlog::info("calibrating {} on {} chunks of {} tokens from {} ({} stats)", a->model, a->chunks, a->ctx,
                         a->file, a->stats);
        const CalibrateReport r = calibrate(a->model, tokens, a->output, o);
        if (progress) progress->finish();
        if (a->json) {
            const nlohmann::json j = {{"output", r.output},     {"model", r.model},
                                      {"text", a->file},        {"text_tokens", text_tokens.size()},
                                      {"tokens", r.tokens},     {"chunks", r.chunks},
                                      {"ctx", r.ctx},           {"stats", r.full ? "full" : "diag"},
                                      {"layers", r.layers},     {"keys", r.keys},
                                      {"size_bytes", r.size_bytes}, {"seconds", r.seconds},
                                      {"setup_seconds", r.setup_seconds},
                                      {"tokenize_seconds", tokenize_seconds}, {"layer_seconds", r.layer_seconds},
                                      {"peak_rss_bytes", r.peak_rss_bytes}};
            std::printf("%s\n", json_text(j, 2).c_str());
        } else {
            std::printf("wrote %s: %s statistics of %zu linear inputs (%d layers) over %lld tokens (%d chunks of %d), "
                        "%s, %s, peak RSS %s\n",
                        r.output.c_str(), r.full ? "full" : "diagonal", r.keys.size(), r.layers,
                        static_cast<long long>(r.tokens), r.chunks, r.ctx, human_bytes(static_cast<double>(r.size_bytes)).c_str(),
                        human_seconds(r.seconds).c_str(), human_bytes(static_cast<double>(r.peak_rss_bytes)).c_str());
        }
        return 0;
    };
}

}  // namespace bitttt::cli
