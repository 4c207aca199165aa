// bitttt run MODEL --prompt TEXT | --prompt-file FILE [...]
// Also the whole command line of the lean `bitttt-run` binary (run_main.cpp).
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "bitttt/error.h"
#include "bitttt/file_io.h"
#include "bitttt/generate.h"
#include "bitttt/model.h"
#include "bitttt/tokenizer.h"
#include "cli/common.h"
#include "cli/run_command.h"
#include "kernels/dispatch.h"
#include "util/sysinfo.h"

namespace bitttt::cli {

namespace {

using json = nlohmann::json;

std::string read_all(const std::string& path) {
    if (path == "-") {
        std::stringstream ss;
        ss << std::cin.rdbuf();
        return ss.str();
    }
    return read_file(path);
}

double per_s(double n, double s) { return s > 0 ? n / s : 0.0; }

}  // namespace

Tokenizer tokenizer_for(const LlamaConfig& config, const nlohmann::json& tokenizer, const std::string& model_path) {
    if (!tokenizer.is_object()) {
        throw FormatError(model_path + ": the model has no tokenizer (no tokenizer.json was found when it was "
                                       "converted); reconvert from a folder that has tokenizer.json");
    }
    Tokenizer tok = Tokenizer::from_json(tokenizer, model_path + " (tokenizer)");
    // Every id the tokenizer can produce indexes the embedding table and the logits.
    if (tok.vocab_size() > config.vocab_size) {
        throw FormatError(model_path + ": the tokenizer has ids up to " + std::to_string(tok.vocab_size() - 1) +
                          " but the model's vocabulary has " + std::to_string(config.vocab_size) +
                          " entries (vocab_size); the tokenizer does not belong to this model");
    }
    return tok;
}

Tokenizer tokenizer_for(const Model& model, const std::string& model_path) {
    return tokenizer_for(model.config(), model.tokenizer_json(), model_path);
}

void add_run_options(CLI::App& cmd, RunArgs& a) {
    cmd.add_option("model", a.model, "A .btt file, or a Hugging Face folder / safetensors file (runs the "
                                     "unquantised F32 reference)")
        ->required();
    auto* p = cmd.add_option("-p,--prompt", a.prompt, "Prompt text");
    auto* pf = cmd.add_option("-f,--prompt-file", a.prompt_file, "Read the prompt from a file ('-' for stdin)");
    p->excludes(pf);
    cmd.add_flag("--batch", a.batch,
                 "With --prompt-file: one prompt per line, one JSON line out per prompt (implies --json)");
    cmd.add_option("-n,--n-predict", a.n, "Tokens to generate at most (default 128)")->check(CLI::Range(0, 1 << 30));
    cmd.add_option("--temp", a.temp, "Sampling temperature; 0 = greedy (default 0.8)")->check(CLI::Range(0.0, 100.0));
    cmd.add_option("--top-k", a.top_k, "Sample from the K most likely tokens; 0 = all (default 40)")
        ->check(CLI::Range(0, 1 << 30));
    cmd.add_option("--top-p", a.top_p, "Nucleus sampling threshold in (0, 1] (default 0.95)");
    cmd.add_option("--seed", a.seed, "Random seed (default: random, printed in the stats); the same seed gives the "
                                     "same text on every run and thread count");
    cmd.add_option("-t,--threads", a.threads, "Threads (default: physical cores)")->check(CLI::Range(1, 1024));
    cmd.add_option("--bases", a.bases, "Use the first min(K, N) bases of each tensor (default: all)")
        ->check(CLI::Range(1, 8));
    cmd.add_option("--ctx", a.ctx, "Context length in tokens (default: the model maximum, at most 4096 and at most what keeps the KV "
                   "cache within 256 MiB: 2048 for Llama-3-8B with the f16 cache). run prints the cache's size")
        ->check(CLI::Range(1, 1 << 24));
    add_kv_cache_option(cmd, a.kv_cache);
    cmd.add_flag("--json", a.json, "Print one JSON object (text, ids, stats) instead of streaming text");
    cmd.add_flag("--special", a.special, "Match special tokens such as <|eot_id|> written in the prompt");
    cmd.add_flag("--verify", a.verify,
                 "Check every tensor against its checksum before the first token (reads the whole file once; "
                 "a corrupt file is an error naming the tensor instead of garbage output)");
}

int run_generate(const RunArgs& a, bool quiet) {
    const auto t0 = std::chrono::steady_clock::now();
    // Everything that can be wrong with the request is found before the weights load:
    // the kernel ISA (BITTTT_ISA), the sampling flags, the prompt file, then (once the
    // header is read) the tokenizer against the vocabulary and each prompt against --ctx.
    const std::string kernels_used = kernels::kernels_in_use();
    if (!std::isfinite(a.temp) || a.temp < 0.0f) throw UsageError("--temp must be a number >= 0");
    if (!(a.top_p > 0.0f && a.top_p <= 1.0f)) throw UsageError("--top-p must be in (0, 1]");
    if (a.batch && a.prompt_file.empty()) throw UsageError("--batch needs --prompt-file (one prompt per line)");
    std::vector<std::string> prompts;
    if (a.batch) {
        std::istringstream in(read_all(a.prompt_file));
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            prompts.push_back(line);
        }
    } else {
        prompts.push_back(a.prompt_file.empty() ? a.prompt : read_all(a.prompt_file));
    }
    std::optional<Tokenizer> tok;
    std::vector<std::vector<std::int32_t>> prompt_ids;
    LoadOptions lo{a.bases, a.threads, a.ctx};
    lo.kv_cache = a.kv_cache;
    lo.verify = a.verify;
    lo.before_weights = [&](const LlamaConfig& cfg, const nlohmann::json& tokenizer, int ctx) {
        tok.emplace(tokenizer_for(cfg, tokenizer, a.model));
        for (std::size_t i = 0; i < prompts.size(); ++i) {
            prompt_ids.push_back(tok->encode(prompts[i], true, a.special));
            const std::size_t n = prompt_ids.back().size();
            if (n > static_cast<std::size_t>(ctx)) {
                throw UsageError((a.batch ? "prompt " + std::to_string(i + 1) + " is " : std::string("the prompt is ")) +
                                 std::to_string(n) + " tokens, longer than the context of " + std::to_string(ctx) +
                                 " (raise --ctx or shorten the prompt)");
            }
        }
    };
    auto model = Model::load(a.model, lo);
    note_rearranged(*model, a.model);
    const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    GenerateOptions g;
    g.max_new_tokens = a.n;
    g.temperature = a.temp;
    g.top_k = a.top_k;
    g.top_p = a.top_p;
    g.seed = a.seed >= 0 ? static_cast<std::uint64_t>(a.seed) : (static_cast<std::uint64_t>(std::random_device{}()) << 32 |
                                                                   std::random_device{}());
    for (std::int64_t id : model->config().eos_token_ids) g.stop_ids.push_back(static_cast<std::int32_t>(id));
    if (!quiet) spdlog::info("{}, {} threads, {}, context {} ({} KV cache, {:.1f} MiB)", model->description(),
                             model->threads(), kernels_used, model->ctx(), kv_cache_type_name(model->kv_cache_type()),
                             static_cast<double>(model->kv_cache_bytes()) / (1024.0 * 1024.0));

    const bool as_json = a.json || a.batch;

    for (std::size_t pi = 0; pi < prompts.size(); ++pi) {
        const std::string& text = prompts[pi];
        const std::vector<std::int32_t>& ids = prompt_ids[pi];
        if (!as_json) {
            // Stream the prompt first so the output reads as one text (as llama.cpp does).
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        }
        // Prefilled with the prompt, so the first generated piece keeps its leading space.
        Tokenizer::StreamDecoder dec(*tok);
        dec.prefill(ids);
        std::string generated;
        auto on_token = [&](std::int32_t id) {
            if (tok->is_special(id)) return;
            std::string piece = dec.push(id);
            generated += piece;
            if (!as_json) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            }
        };
        GenerateResult r;
        try {
            r = generate(*model, ids, g, on_token);
        } catch (const FormatError& e) {
            throw FormatError(a.model + ": " + e.what());  // the model's output is not finite
        }
        std::string tail = dec.flush();
        generated += tail;
        const double pp = per_s(r.prompt_tokens, r.prompt_seconds), tg = per_s(static_cast<double>(r.ids.size()), r.gen_seconds);
        if (as_json) {
            json j = {
                {"text", generated},
                {"prompt_ids", ids},
                {"ids", r.ids},
                {"stop_reason", r.stop_reason},
                {"stats",
                 {{"load_seconds", load_seconds},
                  {"prompt_tokens", r.prompt_tokens},
                  {"prompt_tokens_per_s", pp},
                  {"gen_tokens", r.ids.size()},
                  {"gen_tokens_per_s", tg},
                  {"peak_rss_bytes", peak_rss_bytes()},
                  {"seed", g.seed},
                  {"threads", model->threads()},
                  {"bases", model->bases()},
                  {"ctx", model->ctx()},
                  {"kv_cache", kv_cache_type_name(model->kv_cache_type())},
                  {"kv_cache_bytes", model->kv_cache_bytes()}}},
            };
            std::printf("%s\n", a.batch ? json_text(j).c_str() : json_text(j, 2).c_str());
        } else {
            std::fwrite(tail.data(), 1, tail.size(), stdout);
            std::printf("\n");
        }
        std::fflush(stdout);
        if (!quiet && !as_json) {
            std::fprintf(stderr,
                         "\nload %.2f s | prompt %d tokens, %.1f tokens/s | generation %zu tokens, %.1f tokens/s | "
                         "peak memory %.1f MB | seed %llu | stop: %s\n",
                         load_seconds, r.prompt_tokens, pp, r.ids.size(), tg, static_cast<double>(peak_rss_bytes()) / 1e6,
                         static_cast<unsigned long long>(g.seed), r.stop_reason.c_str());
        }
    }
    return 0;
}

Runner add_run_command(CLI::App& root, const GlobalOptions& global) {
    auto args = std::make_shared<RunArgs>();
    CLI::App* cmd = root.add_subcommand(
        "run",
        "Generate text with a converted model (.btt) or, as the exact reference, the original Hugging Face folder.\n"
        "Streams the text to stdout; statistics (load time, tokens/s, memory) go to stderr.");
    add_run_options(*cmd, *args);
    return [args, &global]() { return run_generate(*args, global.quiet); };
}

}  // namespace bitttt::cli
