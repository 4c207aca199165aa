// The parts of `bitttt calibrate` (src/convert/calibrate.cpp) that the tests reach into:
// the statistics accumulator and the layer-by-layer forward pass.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"
#include "util/thread_pool.h"

namespace bitttt::calib {

// Statistics of one linear input with n channels over the rows added: the sum of x_i^2
// per channel (double) and, when `full`, the upper triangle of sum x x^T. Each block of
// rows passed to add() is multiplied in float (Eigen GEMM, <= a few hundred rows per
// block) and the block's result is added to a double accumulator, so thousands of
// tokens lose no precision. The triangle is kept in row panels of kPanel rows (panel p:
// rows [p*kPanel, ...), columns [p*kPanel, n), row-major), which costs n*kPanel/2
// doubles more than the packed triangle and lets each panel be one GEMM.
class InputStats {
public:
    static constexpr std::int64_t kPanel = 128;

    InputStats(std::int64_t n, bool full);

    // Adds the rows of x ([rows, n] row-major). Work is split into fixed pieces (channel
    // ranges, panels), so the sums are the same for any number of threads.
    void add(const float* x, std::int64_t rows, ThreadPool& pool);

    std::int64_t n() const { return n_; }
    std::int64_t count() const { return count_; }
    bool full() const { return full_; }
    // E[x_i^2] as F32 [n].
    std::vector<float> mean_sq() const;
    // Streams X^T X / count as F32 in packed-upper row-major order (row i: columns i..n-1),
    // in pieces of whole rows: sink(values, count). The diagonal is mean_sq() (the same
    // numbers, summed in double per element).
    void packed_xtx(const std::function<void(const float*, std::size_t)>& sink) const;

private:
    std::int64_t n_;
    bool full_;
    std::int64_t count_ = 0;
    std::vector<double> sum_sq_;
    std::vector<std::vector<double>> panels_;
};

// The forward pass of calibration: the hidden states of every token ([tokens, hidden]
// F32) advanced one decoder layer at a time, with only that layer's weights converted
// to F32 (and their mapped pages released after reading). Tokens form chunks of `ctx`
// (attention is causal within a chunk; positions restart at 0 in each chunk).
class LayerRunner {
public:
    // The embedding rows of `tokens` are read (only those rows). tokens.size() must be a
    // multiple of ctx. UsageError for token ids outside the vocabulary.
    LayerRunner(const Checkpoint& ckpt, const LlamaConfig& config, std::vector<std::int32_t> tokens, int ctx,
                ThreadPool& pool);

    // Runs layer `layer` over every token. When `stats` is given, it points to the layer's
    // four accumulators in calibration_layer_keys order (qkv, o_proj, gate_up, down_proj),
    // which receive that layer's linear inputs.
    void run_layer(std::int64_t layer, InputStats* stats);

    // [tokens, hidden] row-major: the residual stream after the layers run so far.
    const std::vector<float>& hidden() const { return x_; }
    std::int64_t tokens() const { return static_cast<std::int64_t>(tokens_.size()); }

private:
    void attention_block(std::int64_t t0, std::int64_t nt, const float* norm, const float* wq, const float* wk,
                         const float* wv, const float* wo, InputStats* stats);
    void mlp_block(std::int64_t t0, std::int64_t nt, const float* norm, const float* wg, const float* wu,
                   const float* wd, InputStats* stats);

    const Checkpoint& ckpt_;
    LlamaConfig cfg_;
    std::vector<std::int32_t> tokens_;
    int ctx_;
    ThreadPool& pool_;
    std::vector<float> x_;
    std::vector<float> cos_, sin_;  // [ctx, head_dim / 2]
};

// y[rows, out] = x[rows, in] * w[out, in]^T (Eigen, split over fixed ranges of output features).
void matmul_wt(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y,
               ThreadPool& pool);

}  // namespace bitttt::calib
