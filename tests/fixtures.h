// Small synthetic checkpoints built inside the tests.
#pragma once

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/dtype.h"
#include "bitttt/safetensors.h"

namespace bitttt::test {

inline std::vector<std::uint8_t> f32_bytes(const std::vector<float>& v) {
    std::vector<std::uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

inline std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float std = 0.02f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, std);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

// A tiny Llama: hidden 32, intermediate 44 (not a multiple of any block size),
// 2 layers, 4 heads / 2 kv heads, vocab 64, untied lm_head unless `tied`.
struct TinyModel {
    std::int64_t hidden = 32, inter = 44, layers = 2, heads = 4, kv_heads = 2, vocab = 64;
    bool tied = false;

    nlohmann::json config() const {
        return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", hidden},
                {"intermediate_size", inter}, {"num_hidden_layers", layers}, {"num_attention_heads", heads},
                {"num_key_value_heads", kv_heads}, {"vocab_size", vocab}, {"rms_norm_eps", 1e-5},
                {"rope_theta", 10000.0}, {"tie_word_embeddings", tied}, {"bos_token_id", 1}, {"eos_token_id", 2}};
    }

    // Every tensor (name, shape) of the model, in HF order.
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> tensors() const {
        const std::int64_t hd = hidden / heads;
        std::vector<std::pair<std::string, std::vector<std::int64_t>>> t;
        t.push_back({"model.embed_tokens.weight", {vocab, hidden}});
        for (std::int64_t l = 0; l < layers; ++l) {
            std::string p = "model.layers." + std::to_string(l) + ".";
            t.push_back({p + "input_layernorm.weight", {hidden}});
            t.push_back({p + "self_attn.q_proj.weight", {heads * hd, hidden}});
            t.push_back({p + "self_attn.k_proj.weight", {kv_heads * hd, hidden}});
            t.push_back({p + "self_attn.v_proj.weight", {kv_heads * hd, hidden}});
            t.push_back({p + "self_attn.o_proj.weight", {hidden, heads * hd}});
            t.push_back({p + "post_attention_layernorm.weight", {hidden}});
            t.push_back({p + "mlp.gate_proj.weight", {inter, hidden}});
            t.push_back({p + "mlp.up_proj.weight", {inter, hidden}});
            t.push_back({p + "mlp.down_proj.weight", {hidden, inter}});
        }
        t.push_back({"model.norm.weight", {hidden}});
        if (!tied) t.push_back({"lm_head.weight", {vocab, hidden}});
        return t;
    }

    // Writes config.json + model.safetensors into `dir`. `mutate` may edit any tensor's
    // values before writing (e.g. plant a NaN).
    template <class Mutate>
    void write(const std::filesystem::path& dir, Mutate mutate, bool with_config = true) const {
        std::filesystem::create_directories(dir);
        if (with_config) std::ofstream(dir / "config.json") << config().dump(2);
        SafetensorsWriter w;
        std::uint32_t seed = 7;
        for (const auto& [name, shape] : tensors()) {
            std::int64_t n = 1;
            for (auto d : shape) n *= d;
            std::vector<float> v = gaussian(static_cast<std::size_t>(n), seed++);
            if (shape.size() == 1) {
                for (auto& x : v) x += 1.0f;
            }
            mutate(name, v);
            w.add(name, DType::F32, shape, f32_bytes(v));
        }
        w.write((dir / "model.safetensors").string());
    }
    void write(const std::filesystem::path& dir) const {
        write(dir, [](const std::string&, std::vector<float>&) {});
    }
};

// Names of files in `dir` (to check that nothing, e.g. a temporary file, is left over).
inline std::vector<std::string> list_dir(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace bitttt::test
