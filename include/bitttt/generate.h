// Text generation and perplexity over a Model (token ids in, token ids / scores out).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bitttt/model.h"

namespace bitttt {

struct GenerateOptions {
    int max_new_tokens = 128;
    float temperature = 0.8f;  // 0 = greedy
    int top_k = 40;
    float top_p = 0.95f;
    std::uint64_t seed = 0;
    std::vector<std::int32_t> stop_ids;  // end-of-sequence ids
};

struct GenerateResult {
    std::vector<std::int32_t> ids;  // generated ids only (a stop id is included if hit)
    std::string stop_reason;        // "eos", "length" or "context"
    int prompt_tokens = 0;
    double prompt_seconds = 0;
    double gen_seconds = 0;
};

// Feeds `prompt` (at least one token) from position 0, then samples up to
// max_new_tokens, calling on_token for each generated id as soon as it is chosen.
// Throws UsageError if the prompt does not fit in the model's context.
GenerateResult generate(Model& model, const std::vector<std::int32_t>& prompt, const GenerateOptions& options,
                        const std::function<void(std::int32_t)>& on_token = {});

struct PerplexityOptions {
    int ctx = 512;             // tokens per chunk
    int chunks = 0;            // 0 = as many as the text holds
    std::int32_t bos_id = -1;  // replaces the first token of every chunk when >= 0
};

struct PerplexityResult {
    double perplexity = 0;
    double stderr_ = 0;  // of the perplexity (llama.cpp's estimate)
    std::int64_t tokens = 0;  // tokens scored
    int chunks = 0;
    int ctx = 0;
    // Against a reference model over the same tokens:
    std::optional<double> kld;             // mean KL(P_ref || P_model) per scored token, nats
    std::optional<double> kld_stderr;
    std::optional<double> top1_agreement;  // fraction where the argmax agrees
    std::optional<double> reference_perplexity;
};

// llama.cpp's perplexity method: the tokens are cut into consecutive chunks of ctx; in
// each, the first token is replaced by BOS, all positions are evaluated, and the second
// half (positions ctx/2 .. ctx-2 predicting the next token) is scored. With `reference`,
// the same positions are also scored by the reference to give KL divergence and top-1
// agreement. on_chunk(done, total) reports progress.
PerplexityResult perplexity(Model& model, const std::vector<std::int32_t>& tokens, const PerplexityOptions& options,
                            Model* reference = nullptr, const std::function<void(int, int)>& on_chunk = {});

}  // namespace bitttt
