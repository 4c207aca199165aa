// The Llama-family model description read from a Hugging Face config.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace bitttt {

struct RopeScaling {
    // "none", "linear" or "llama3" (others are refused when parsing).
    std::string type = "none";
    double factor = 1.0;
    // llama3 only:
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    std::int64_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
    std::string architecture = "LlamaForCausalLM";
    std::int64_t hidden_size = 0;
    std::int64_t intermediate_size = 0;
    std::int64_t num_hidden_layers = 0;
    std::int64_t num_attention_heads = 0;
    std::int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
    std::int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
    std::int64_t vocab_size = 0;
    std::int64_t max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    RopeScaling rope_scaling;
    bool tie_word_embeddings = false;
    std::optional<std::int64_t> bos_token_id;
    std::vector<std::int64_t> eos_token_ids;  // config.json may give one id or a list

    // Parses and validates a config.json object. `source` names the file in errors
    // (FormatError for missing/mistyped/inconsistent fields, UnsupportedError for a
    // model bitttt cannot run: other architectures, activations, biases, rope types).
    static LlamaConfig from_json(const nlohmann::json& j, const std::string& source);
    // Reads and parses a config.json file.
    static LlamaConfig load(const std::string& path);
    // The normalised form stored in .btt headers (from_json(to_json()) round-trips).
    nlohmann::json to_json() const;

    // Every tensor the model needs, with its [rows, cols] or [n] shape.
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> required_tensors() const;
    // Parameters of the model (as required_tensors counts them).
    std::int64_t parameter_count() const;
};

class Checkpoint;

// Checks that `ckpt` holds every tensor `config` needs, with that shape and a float dtype
// (F32/F16/BF16). Throws FormatError naming the first problem (file, tensor, shapes) and
// how many more there are; `config_path` names the config in messages.
void validate_checkpoint(const LlamaConfig& config, const Checkpoint& ckpt, const std::string& config_path);

// The rotary inverse frequencies [head_dim / 2] Hugging Face computes for a config,
// rope_scaling applied (none, linear, llama3).
std::vector<float> rope_inv_freq(const LlamaConfig& config);

// The kind of role a tensor name has in a HF Llama checkpoint.
enum class TensorRole { Linear, Embedding, LmHead, Norm, Other };
TensorRole tensor_role(const std::string& name);

}  // namespace bitttt
