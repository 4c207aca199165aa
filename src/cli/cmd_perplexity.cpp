// bitttt perplexity MODEL --file TEXT [--ctx C] [--chunks K] [--bases K] [--kld-base REF] [--json]
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/common.h"
#include "bitttt/error.h"
#include "bitttt/file_io.h"
#include "bitttt/generate.h"
#include "cli/commands.h"
#include "cli/run_command.h"
#include "util/progress.h"
#include "util/sysinfo.h"

namespace bitttt::cli {

namespace {

struct PerplexityArgs {
    std::string model;
    std::string file;
    std::string reference;
    int ctx = 512;
    int chunks = 0;
    int bases = 0;
    int threads = 0;
    bool json = false;
    KvCacheType kv_cache = KvCacheType::F16;
};

}  // namespace

Runner add_perplexity_command(CLI::App& root, const GlobalOptions& global) {
    auto a = std::make_shared<PerplexityArgs>();
    CLI::App* cmd = root.add_subcommand(
        "perplexity",
        "Perplexity of a model on a text file, by llama.cpp's method (so the numbers compare): the tokens are cut\n"
        "into chunks of --ctx, each starts with BOS, and the second half of each chunk is scored. With --kld-base,\n"
        "also the KL divergence and top-1 agreement against a reference model (e.g. the original HF folder).");
    cmd->add_option("model", a->model, "A .btt file or a Hugging Face folder (F32 reference)")->required();
    cmd->add_option("-f,--file", a->file, "UTF-8 text file to score")->required();
    cmd->add_option("-c,--ctx", a->ctx, "Tokens per chunk (default 512)")->check(CLI::Range(4, 1 << 20));
    cmd->add_option("--chunks", a->chunks, "Score only the first K chunks (default: all)")->check(CLI::Range(1, 1 << 30));
    cmd->add_option("--bases", a->bases, "Use the first min(K, N) bases of each tensor")->check(CLI::Range(1, 8));
    cmd->add_option("--kld-base", a->reference,
                    "Reference model (e.g. the HF folder) to compare against: KL divergence and top-1 agreement");
    cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)")->check(CLI::Range(1, 1024));
    add_kv_cache_option(*cmd, a->kv_cache);
    cmd->add_flag("--json", a->json, "Print one JSON object on stdout");

    return [a, &global]() {
        // The text is read and the tokenizer checked against the vocabulary before any weight loads.
        const std::string text = read_file(a->file);
        std::optional<Tokenizer> tok;
        LoadOptions lo{a->bases, a->threads, a->ctx};
        lo.kv_cache = a->kv_cache;
        lo.before_weights = [&](const LlamaConfig& cfg, const nlohmann::json& tokenizer, int) {
            tok.emplace(tokenizer_for(cfg, tokenizer, a->model));
        };
        auto model = Model::load(a->model, lo);
        note_rearranged(*model, a->model);
        std::unique_ptr<Model> ref;
        if (!a->reference.empty()) {
            // The same cache as the model's, so that the comparison measures the weights alone.
            LoadOptions rlo{0, a->threads, a->ctx};
            rlo.kv_cache = a->kv_cache;
            ref = Model::load(a->reference, rlo);
        }
        if (ref && ref->config().vocab_size != model->config().vocab_size) {
            throw UsageError("--kld-base " + a->reference + " has a vocabulary of " +
                             std::to_string(ref->config().vocab_size) + " entries, the model " +
                             std::to_string(model->config().vocab_size) + "; they cannot be compared");
        }
        const std::vector<std::int32_t> tokens = tok->encode(text, true, false);

        PerplexityOptions o;
        o.ctx = a->ctx;
        o.chunks = a->chunks;
        if (tok->adds_bos() && tok->bos_id()) o.bos_id = *tok->bos_id();
        std::unique_ptr<Progress> progress;
        PerplexityResult r;
        try {
            r = perplexity(*model, tokens, o, ref.get(), [&](int /*done*/, int total) {
                if (!progress) {
                    progress = std::make_unique<Progress>(!global.quiet && is_terminal(2),
                                                          static_cast<std::uint64_t>(total), "chunks");
                }
                progress->advance(1);
            });
        } catch (const FormatError& e) {
            // Non-finite output: name the file (the reference's, when it is the reference's).
            const bool from_ref = std::string(e.what()).rfind("the reference", 0) == 0;
            throw FormatError((from_ref ? a->reference : a->model) + ": " + e.what());
        }
        if (progress) progress->finish();
        if (a->json) {
            nlohmann::json j = {{"model", a->model},   {"file", a->file},         {"perplexity", r.perplexity},
                                {"stderr", r.stderr_}, {"tokens", r.tokens},      {"chunks", r.chunks},
                                {"ctx", r.ctx},        {"bases", model->bases()}, {"text_tokens", tokens.size()},
                                {"kv_cache", kv_cache_type_name(model->kv_cache_type())}};
            if (r.kld) {
                j["reference"] = a->reference;
                j["kld"] = *r.kld;
                j["kld_stderr"] = *r.kld_stderr;
                j["top1_agreement"] = *r.top1_agreement;
                j["reference_perplexity"] = *r.reference_perplexity;
            }
            std::printf("%s\n", json_text(j, 2).c_str());
        } else {
            std::printf("%s\n", model->description().c_str());
            std::printf("perplexity %.4f +/- %.4f over %lld tokens (%d chunks of %d, second halves scored)\n",
                        r.perplexity, r.stderr_, static_cast<long long>(r.tokens), r.chunks, r.ctx);
            if (r.kld) {
                std::printf("vs %s: perplexity %.4f, KL divergence %.5f +/- %.5f nats/token, top-1 agreement %.2f%%\n",
                            a->reference.c_str(), *r.reference_perplexity, *r.kld, *r.kld_stderr,
                            100.0 * *r.top1_agreement);
            }
        }
        return 0;
    };
}

}  // namespace bitttt::cli
