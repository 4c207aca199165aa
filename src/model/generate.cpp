#include "bitttt/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "bitttt/error.h"
#include "model/sampler.h"

namespace bitttt {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Logits with a NaN or an infinity mean the model's arithmetic overflowed (weights far out
// of range, e.g. a corrupt file that still passed the load checks): an error, not text.
void check_finite(const float* logits, std::int64_t n, int pos, const char* whose = "the model's") {
    for (std::int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(logits[i])) {
            throw FormatError(std::string(whose) + " output at position " + std::to_string(pos) +
                              " is not finite (its weights overflow float arithmetic: a corrupt file? "
                              "`bitttt inspect --verify` checks every tensor)");
        }
    }
}

// log-softmax of logits[0..n) into out (double, for stable sums over many tokens).
void log_softmax(const float* logits, std::int64_t n, std::vector<double>& out) {
    out.resize(static_cast<std::size_t>(n));
    const double mx = *std::max_element(logits, logits + n);
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - mx);
    const double lse = mx + std::log(sum);
    for (std::int64_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

}  // namespace

GenerateResult generate(Model& model, const std::vector<std::int32_t>& prompt, const GenerateOptions& opt,
                        const std::function<void(std::int32_t)>& on_token) {
    if (prompt.empty()) throw UsageError("the prompt has no tokens (and the tokenizer adds no BOS)");
    if (static_cast<int>(prompt.size()) > model.ctx()) {
        throw UsageError("the prompt is " + std::to_string(prompt.size()) + " tokens, longer than the context of " +
                         std::to_string(model.ctx()) + " (raise --ctx or shorten the prompt)");
    }
    Sampler sampler(SamplerOptions{opt.temperature, opt.top_k, opt.top_p, opt.seed});
    const std::int64_t vocab = model.config().vocab_size;
    GenerateResult res;
    res.prompt_tokens = static_cast<int>(prompt.size());

    auto t0 = std::chrono::steady_clock::now();
    // The prompt in batches: each weight is read once per batch, not once per token.
    const float* logits = model.forward_batch(prompt.data(), static_cast<int>(prompt.size()), 0, nullptr);
    int pos = static_cast<int>(prompt.size());
    res.prompt_seconds = seconds_since(t0);

    t0 = std::chrono::steady_clock::now();
    res.stop_reason = "length";
    for (int i = 0; i < opt.max_new_tokens; ++i) {
        check_finite(logits, vocab, pos - 1);
        const std::int32_t next = sampler.sample(logits, vocab);
        res.ids.push_back(next);
        if (on_token) on_token(next);
        if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), next) != opt.stop_ids.end()) {
            res.stop_reason = "eos";
            break;
        }
        if (i + 1 == opt.max_new_tokens) break;
        if (pos >= model.ctx()) {
            res.stop_reason = "context";
            break;
        }
        logits = model.forward(next, pos++);
    }
    res.gen_seconds = seconds_since(t0);
    return res;
}

PerplexityResult perplexity(Model& model, const std::vector<std::int32_t>& tokens, const PerplexityOptions& opt,
                            Model* reference, const std::function<void(int, int)>& on_chunk) {
    if (opt.ctx < 4) throw UsageError("--ctx must be at least 4 for perplexity");
    if (opt.ctx > model.ctx()) {
        throw UsageError("--ctx " + std::to_string(opt.ctx) + " is more than the model's context (" +
                         std::to_string(model.ctx()) + ")");
    }
    if (reference && opt.ctx > reference->ctx()) throw UsageError("--ctx is more than the reference model's context");
    const int available = static_cast<int>(tokens.size() / static_cast<std::size_t>(opt.ctx));
    if (available < 1) {
        throw UsageError("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                         std::to_string(opt.ctx) + " (lower --ctx or give more text)");
    }
    const int n_chunks = opt.chunks > 0 ? std::min(opt.chunks, available) : available;
    const std::int64_t vocab = model.config().vocab_size;
    if (reference && reference->config().vocab_size != vocab) {
        throw UsageError("the reference model's vocabulary differs from the model's");
    }
    const int first = opt.ctx / 2;

    double nll = 0.0, nll2 = 0.0, kl = 0.0, kl2 = 0.0, ref_nll = 0.0;
    std::int64_t count = 0, agree = 0;
    std::vector<double> lp, lq;
    std::vector<std::int32_t> chunk;
    std::vector<float> all(static_cast<std::size_t>(opt.ctx - first) * static_cast<std::size_t>(vocab));
    std::vector<float> ref_all(reference ? all.size() : 0);
    for (int c = 0; c < n_chunks; ++c) {
        const std::size_t start = static_cast<std::size_t>(c) * static_cast<std::size_t>(opt.ctx);
        // The chunk in batched passes: the unscored first half, then the scored half with
        // every position's logits.
        const int n = opt.ctx - 1;
        chunk.assign(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                     tokens.begin() + static_cast<std::ptrdiff_t>(start) + n);
        if (opt.bos_id >= 0) chunk[0] = opt.bos_id;
        for (Model* m : {&model, reference}) {
            if (!m) continue;
            m->forward_batch(chunk.data(), first, 0, nullptr);
            m->forward_batch(chunk.data() + first, n - first, first, m == &model ? all.data() : ref_all.data());
        }
        for (int j = first; j < n; ++j) {
            const std::size_t row = static_cast<std::size_t>(j - first) * static_cast<std::size_t>(vocab);
            const float* logits = all.data() + row;
            const float* rlogits = reference ? ref_all.data() + row : nullptr;
            const std::int32_t target = tokens[start + static_cast<std::size_t>(j) + 1];
            check_finite(logits, vocab, j);
            if (rlogits) check_finite(rlogits, vocab, j, "the reference model's");
            log_softmax(logits, vocab, lq);
            const double v = -lq[static_cast<std::size_t>(target)];
            nll += v;
            nll2 += v * v;
            ++count;
            if (rlogits) {
                log_softmax(rlogits, vocab, lp);
                double d = 0.0;
                for (std::int64_t i = 0; i < vocab; ++i) d += std::exp(lp[i]) * (lp[i] - lq[i]);
                kl += d;
                kl2 += d * d;
                ref_nll += -lp[static_cast<std::size_t>(target)];
                const auto am = std::max_element(lq.begin(), lq.end()) - lq.begin();
                const auto ar = std::max_element(lp.begin(), lp.end()) - lp.begin();
                agree += am == ar ? 1 : 0;
            }
        }
        if (on_chunk) on_chunk(c + 1, n_chunks);
    }

    PerplexityResult res;
    res.ctx = opt.ctx;
    res.chunks = n_chunks;
    res.tokens = count;
    const double mean = nll / static_cast<double>(count);
    res.perplexity = std::exp(mean);
    // llama.cpp: standard error of the mean NLL, scaled by the perplexity.
    double var = nll2 / static_cast<double>(count) - mean * mean;
    res.stderr_ = (var > 0 && count > 1) ? std::sqrt(var / static_cast<double>(count - 1)) * res.perplexity : 0.0;
    if (reference) {
        const double km = kl / static_cast<double>(count);
        const double kv = kl2 / static_cast<double>(count) - km * km;
        res.kld = km;
        res.kld_stderr = (kv > 0 && count > 1) ? std::sqrt(kv / static_cast<double>(count - 1)) : 0.0;
        res.top1_agreement = static_cast<double>(agree) / static_cast<double>(count);
        res.reference_perplexity = std::exp(ref_nll / static_cast<double>(count));
    }
    return res;
}

}  // namespace bitttt
