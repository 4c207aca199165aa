// A Llama model ready to run: from a .btt file (ternary bases, memory-mapped) or, as
// the exact F32 reference, from the original Hugging Face folder / safetensors file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/model_config.h"

namespace bitttt {

// How the KV cache stores keys and values.
enum class KvCacheType {
    F16,  // IEEE binary16, rounded to nearest even: half the memory of F32 (the default)
    F32,
};
const char* kv_cache_type_name(KvCacheType t);  // "f16", "f32"

// The KV cache the default context may take: 256 MiB, so that an 8B model (32 layers, 8
// KV heads of 128) gets 2048 positions in F16 and fits 4 GiB with its weights at N = 2.
inline constexpr std::int64_t kDefaultKvCacheBytes = std::int64_t{256} << 20;

// The context length used when none is asked for: min(max_position_embeddings, 4096, the
// most positions, a multiple of 256 (at least 256), whose KV cache of this type fits
// kDefaultKvCacheBytes).
int default_ctx(const LlamaConfig& cfg, KvCacheType kv);

struct LoadOptions {
    int bases = 0;    // use the first min(K, N) bases of every ternary tensor (0 = all of each)
    int threads = 0;  // 0 = physical cores
    int ctx = 0;      // context length (KV cache size); 0 = default_ctx(config, kv_cache)
    int batch = 0;    // prompt micro-batch: tokens per pass over the weights (0 = 32; 1 = one at a time)
    KvCacheType kv_cache = KvCacheType::F16;
    // Verify every tensor's checksum before use (a FormatError naming the first corrupt one).
    bool verify = false;
    // Called once the config, the tokenizer JSON (null if none) and the context length are
    // known, before any weight is read: a caller checks its request there (the tokenizer
    // against the vocabulary, the prompt against the context) without waiting for the load.
    std::function<void(const LlamaConfig& config, const nlohmann::json& tokenizer, int ctx)> before_weights = nullptr;
};

// The weights one token reads, split as a bits-per-weight comparison needs them.
struct WeightStats {
    std::uint64_t linear_params = 0;  // q/k/v/o/gate/up/down of every layer
    std::uint64_t linear_bytes = 0;
    std::uint64_t output_params = 0;  // lm_head (or the tied embedding used as one)
    std::uint64_t output_bytes = 0;
};

// One op's share of the profiled passes (Model::profile).
struct OpProfile {
    std::string op;                // "q/k/v", "gate/up proj", "attention", ...
    double seconds = 0;            // wall time spent in it
    std::uint64_t weight_bytes = 0;  // weight bytes it read: its matrices' bytes x passes over the weights
};

class Model {
public:
    // Opens `path`: a .btt file, or a HF folder / model.safetensors / index.json with a
    // config.json beside it. Throws FormatError / UsageError / IoError naming the file
    // and what is wrong (e.g. a weights-only .btt, --bases above the largest N in the file).
    static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& options);
    virtual ~Model() = default;

    // Ternary tensors that were not in the arrangement the active kernel reads, and were
    // copied into it at load (a file from before the tiles arrangement: `bitttt repack`
    // rewrites it); 0 when every tensor is used in place.
    virtual int rearranged_tensors() const { return 0; }
    virtual const LlamaConfig& config() const = 0;
    // The tokenizer.json object the model came with (null if none).
    virtual const nlohmann::json& tokenizer_json() const = 0;
    // Context length (KV cache positions).
    virtual int ctx() const = 0;
    // The KV cache: its element type, and its size in bytes (keys and values of every
    // layer and position; reserved at load, resident as positions are first written).
    virtual KvCacheType kv_cache_type() const = 0;
    virtual std::uint64_t kv_cache_bytes() const = 0;
    // Bases in use (0 for the F32 reference).
    virtual int bases() const = 0;
    virtual int threads() const = 0;
    // One line describing what runs ("model.btt: ternary, 3 of 3 bases, 2bit, block 64").
    virtual std::string description() const = 0;
    // Weight bytes read to compute one token (linear layers + output layer).
    virtual std::uint64_t weight_bytes_per_token() const = 0;
    virtual WeightStats weight_stats() const = 0;
    // Tokens per pass over the weights in forward_batch.
    virtual int batch() const = 0;

    // Processes `token` at position `pos` (0 <= pos < ctx(); positions must be fed in
    // order from 0, or from any earlier position to rewind) and returns the logits
    // [vocab_size], valid until the next call.
    virtual const float* forward(std::int32_t token, int pos) = 0;
    // Processes tokens[0..n) at positions pos..pos+n-1 in micro-batches (prompt processing:
    // each weight is read once per batch rather than once per token) and returns the last
    // token's logits, valid until the next call. With `all_logits` (room for [n, vocab])
    // it also receives every token's logits. Results are exactly those of n forward() calls.
    virtual const float* forward_batch(const std::int32_t* tokens, int n, int pos, float* all_logits) = 0;

    // Per-op timing of forward passes: set_profiling(true) starts (and zeroes) it; profile()
    // gives each op's totals since then, in the order a step runs them.
    virtual void set_profiling(bool on) = 0;
    virtual std::vector<OpProfile> profile() const = 0;
};

}  // namespace bitttt
