// bitttt-synth: writes synthetic safetensors checkpoints with real Llama shapes, for
// measuring speed and memory at sizes that cannot be downloaded here. The values are
// Gaussian noise: they measure speed, never quality.
//
//   bitttt-synth gaussian --rows 4096 --cols 4096 -o gauss.safetensors
//   bitttt-synth model --preset llama3-8b --layers 1 -o synth-8b-1layer/
//   bitttt-synth model --preset llama3.2-1b -o synth-1b/
//       --tokenizer ../shared/models/llama3-tokenizer/tokenizer.json   (one command)
//   bitttt-synth gguf synth-1b/ -o synth-1b-f16.gguf    (the same weights for llama.cpp)
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <algorithm>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/gguf.h"
#include "bitttt/safetensors.h"

namespace {

using bitttt::DType;
using json = nlohmann::json;

// splitmix64: small, fast, and the same stream on every platform.
struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
};

// Fills `dst` with `n` N(mean, std) values encoded as `dtype` (Box-Muller).
void fill_gaussian(std::uint8_t* dst, std::size_t n, DType dtype, double mean, double std, std::uint64_t seed) {
    Rng rng{seed};
    const double two_pi = 6.283185307179586;
    for (std::size_t i = 0; i < n; i += 2) {
        double u1 = rng.uniform(), u2 = rng.uniform();
        double r = std::sqrt(-2.0 * std::log(u1));
        float v[2] = {static_cast<float>(mean + std * r * std::cos(two_pi * u2)),
                      static_cast<float>(mean + std * r * std::sin(two_pi * u2))};
        for (std::size_t k = 0; k < 2 && i + k < n; ++k) {
            std::size_t idx = i + k;
            if (dtype == DType::F32) {
                std::memcpy(dst + 4 * idx, &v[k], 4);  // little-endian hosts only (x86-64)
            } else {
                std::uint16_t h = dtype == DType::F16 ? bitttt::f32_to_f16(v[k]) : bitttt::f32_to_bf16(v[k]);
                dst[2 * idx] = static_cast<std::uint8_t>(h & 0xFF);
                dst[2 * idx + 1] = static_cast<std::uint8_t>(h >> 8);
            }
        }
    }
}

struct Preset {
    std::int64_t hidden, intermediate, layers, heads, kv_heads, vocab;
    bool tied;
    double rope_theta;
    bool llama3_rope;
};

const std::map<std::string, Preset>& presets() {
    static const std::map<std::string, Preset> p = {
        // Llama-3-8B: 4096x4096 q/o, 1024x4096 k/v, 14336x4096 gate/up, 4096x14336 down.
        {"llama3-8b", {4096, 14336, 32, 32, 8, 128256, false, 500000.0, true}},
        // Llama-3.2-1B: hidden 2048, intermediate 8192, 16 layers, tied, vocab 128256.
        {"llama3.2-1b", {2048, 8192, 16, 32, 8, 128256, true, 500000.0, true}},
        // "1B body": the Llama-3.2-1B body with a 32000 vocab and an untied output (~1.04B).
        {"1b-body", {2048, 8192, 16, 32, 8, 32000, false, 10000.0, false}},
        // A small model for quick tests.
        {"tiny", {256, 688, 2, 8, 4, 1024, false, 10000.0, false}},
    };
    return p;
}

DType parse_dtype(const std::string& s) {
    if (s == "f32") return DType::F32;
    if (s == "f16") return DType::F16;
    if (s == "bf16") return DType::BF16;
    throw bitttt::UsageError("--dtype must be f32, f16 or bf16");
}

std::uint64_t seed_for(std::uint64_t base, const std::string& name) {
    std::uint64_t h = base ^ 0xcbf29ce484222325ull;
    for (char c : name) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ull;
    return h;
}

void add_gaussian(bitttt::SafetensorsWriter& w, const std::string& name, std::vector<std::int64_t> shape, DType dtype,
                  double mean, double std, std::uint64_t seed) {
    w.add_generated(name, dtype, shape, [=](std::uint8_t* dst, std::size_t nbytes) {
        fill_gaussian(dst, nbytes / bitttt::dtype_size(dtype), dtype, mean, std, seed_for(seed, name));
    });
}

// The highest token id a tokenizer.json defines (its model vocab and added tokens).
std::int64_t max_token_id(const json& tok) {
    std::int64_t top = -1;
    if (tok.contains("model") && tok["model"].contains("vocab")) {
        for (const auto& [piece, id] : tok["model"]["vocab"].items()) top = std::max<std::int64_t>(top, id.get<std::int64_t>());
    }
    for (const auto& a : tok.value("added_tokens", json::array())) top = std::max<std::int64_t>(top, a.value("id", -1));
    return top;
}

// The id of the first of `names` among the tokenizer's added tokens, or -1.
std::int64_t special_id(const json& tok, std::initializer_list<const char*> names) {
    for (const char* n : names) {
        for (const auto& a : tok.value("added_tokens", json::array())) {
            if (a.value("content", std::string()) == n) return a.value("id", -1);
        }
    }
    return -1;
}

void export_gguf(const std::string& in, const std::string& out) {
    std::size_t last = 0;
    bitttt::export_llama_gguf(in, out, [&](std::size_t done, std::size_t total) {
        if (done == total || done >= last + total / 10) {
            std::fprintf(stderr, "\rbitttt-synth: %zu / %zu tensors", done, total);
            last = done;
        }
    });
    std::fprintf(stderr, "\n");
    std::printf("wrote %s\n", out.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bitttt-synth: synthetic safetensors checkpoints with real Llama shapes (Gaussian values; "
                 "for speed and memory measurements, never quality)"};
    app.require_subcommand(1);
    std::string out, dtype_s = "bf16", preset = "llama3-8b";
    std::int64_t rows = 4096, cols = 4096, layers = -1, vocab = -1;
    double std_dev = 0.02;
    std::uint64_t seed = 1;

    auto* g = app.add_subcommand("gaussian", "One 2-D tensor named 'weight' of N(0, std) values, no config.json "
                                             "(converts to a weights-only .btt)");
    g->add_option("--rows", rows, "Rows (output features)")->check(CLI::PositiveNumber);
    g->add_option("--cols", cols, "Columns (input features)")->check(CLI::PositiveNumber);
    g->add_option("--std", std_dev, "Standard deviation (default 0.02)");
    g->add_option("--dtype", dtype_s, "f32, f16 or bf16 (default bf16)");
    g->add_option("--seed", seed, "Random seed (default 1)");
    g->add_option("-o,--output", out, "Output .safetensors file")->required();

    auto* m = app.add_subcommand("model", "A model folder: model.safetensors + config.json with a preset's shapes");
    std::string preset_help = "Shapes to use:";
    for (const auto& [name, p] : presets()) preset_help += " " + name;
    m->add_option("--preset", preset, preset_help + " (default llama3-8b)");
    m->add_option("--layers", layers, "Override the number of layers (e.g. 1 for one 8B layer)");
    m->add_option("--vocab", vocab, "Override the vocabulary size");
    m->add_option("--dtype", dtype_s, "f32, f16 or bf16 (default bf16)");
    m->add_option("--seed", seed, "Random seed (default 1)");
    std::string tokenizer;
    m->add_option("--tokenizer", tokenizer,
                  "Copy this tokenizer.json into the folder (its ids must fit the vocabulary; e.g. "
                  "../shared/models/llama3-tokenizer/tokenizer.json with llama3.2-1b or llama3-8b), so the "
                  "converted model can take text prompts")
        ->check(CLI::ExistingFile);
    m->add_option("-o,--output", out, "Output folder (created)")->required();

    std::string gguf_in;
    auto* gg = app.add_subcommand(
        "gguf", "Writes a Llama model folder (or .safetensors with its config.json) as a GGUF file for llama.cpp: "
                "binary16 weights, F32 norms, q/k rows in llama.cpp's rotary order, a placeholder vocabulary "
                "(docs/FORMAT.md, \"GGUF export\")");
    gg->add_option("model", gguf_in, "Model folder or .safetensors file")->required();
    gg->add_option("-o,--output", out, "Output .gguf file")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        if (gg->parsed()) {
            export_gguf(gguf_in, out);
            return 0;
        }
        const DType dtype = parse_dtype(dtype_s);
        if (g->parsed()) {
            bitttt::SafetensorsWriter w;
            add_gaussian(w, "weight", {rows, cols}, dtype, 0.0, std_dev, seed);
            w.write(out);
            std::printf("wrote %s: weight [%lld, %lld] %s\n", out.c_str(), static_cast<long long>(rows),
                        static_cast<long long>(cols), dtype_s.c_str());
            return 0;
        }
        auto it = presets().find(preset);
        if (it == presets().end()) throw bitttt::UsageError("unknown preset '" + preset + "'; " + preset_help);
        Preset p = it->second;
        if (layers >= 0) p.layers = layers;
        if (vocab > 0) p.vocab = vocab;
        const std::int64_t hd = p.hidden / p.heads;
        json tok;
        std::int64_t bos = 1, eos = 2;
        if (!tokenizer.empty()) {
            std::ifstream in(tokenizer);
            tok = json::parse(in, nullptr, false);
            if (tok.is_discarded() || !tok.is_object()) throw bitttt::FormatError(tokenizer + ": not a JSON object");
            const std::int64_t top = max_token_id(tok);
            if (top >= p.vocab) {
                throw bitttt::UsageError(tokenizer + " has token ids up to " + std::to_string(top) +
                                         " but the model's vocabulary is " + std::to_string(p.vocab) +
                                         "; pass --vocab " + std::to_string(top + 1) + " or another preset");
            }
            if (std::int64_t id = special_id(tok, {"<|begin_of_text|>", "<s>"}); id >= 0) bos = id;
            if (std::int64_t id = special_id(tok, {"<|end_of_text|>", "</s>"}); id >= 0) eos = id;
        }
        std::filesystem::create_directories(out);

        json cfg = {
            {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
            {"hidden_size", p.hidden}, {"intermediate_size", p.intermediate},
            {"num_hidden_layers", p.layers}, {"num_attention_heads", p.heads},
            {"num_key_value_heads", p.kv_heads}, {"head_dim", hd},
            {"vocab_size", p.vocab}, {"max_position_embeddings", 8192},
            {"rms_norm_eps", 1e-5}, {"rope_theta", p.rope_theta},
            {"hidden_act", "silu"}, {"tie_word_embeddings", p.tied},
            {"bos_token_id", bos}, {"eos_token_id", eos},
            {"torch_dtype", dtype_s == "f32" ? "float32" : dtype_s == "f16" ? "float16" : "bfloat16"},
        };
        cfg["rope_scaling"] = p.llama3_rope ? json{{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                                   {"high_freq_factor", 4.0},
                                                   {"original_max_position_embeddings", 8192}}
                                            : json(nullptr);
        {
            std::ofstream f(std::filesystem::path(out) / "config.json");
            f << cfg.dump(2) << "\n";
            if (!f) throw bitttt::IoError("cannot write " + out + "/config.json");
        }
        if (!tok.is_null()) {
            std::ofstream f(std::filesystem::path(out) / "tokenizer.json");
            f << tok.dump() << "\n";
            if (!f) throw bitttt::IoError("cannot write " + out + "/tokenizer.json");
        }
        bitttt::SafetensorsWriter w;
        add_gaussian(w, "model.embed_tokens.weight", {p.vocab, p.hidden}, dtype, 0.0, std_dev, seed);
        for (std::int64_t l = 0; l < p.layers; ++l) {
            const std::string pre = "model.layers." + std::to_string(l) + ".";
            add_gaussian(w, pre + "input_layernorm.weight", {p.hidden}, dtype, 1.0, 0.05, seed);
            add_gaussian(w, pre + "self_attn.q_proj.weight", {p.heads * hd, p.hidden}, dtype, 0.0, std_dev, seed);
            add_gaussian(w, pre + "self_attn.k_proj.weight", {p.kv_heads * hd, p.hidden}, dtype, 0.0, std_dev, seed);
            add_gaussian(w, pre + "self_attn.v_proj.weight", {p.kv_heads * hd, p.hidden}, dtype, 0.0, std_dev, seed);
            add_gaussian(w, pre + "self_attn.o_proj.weight", {p.hidden, p.heads * hd}, dtype, 0.0, std_dev, seed);
            add_gaussian(w, pre + "post_attention_layernorm.weight", {p.hidden}, dtype, 1.0, 0.05, seed);
            add_gaussian(w, pre + "mlp.gate_proj.weight", {p.intermediate, p.hidden}, dtype, 0.0, std_dev, seed);
            add_gaussian(w, pre + "mlp.up_proj.weight", {p.intermediate, p.hidden}, dtype, 0.0, std_dev, seed);
            add_gaussian(w, pre + "mlp.down_proj.weight", {p.hidden, p.intermediate}, dtype, 0.0, std_dev, seed);
        }
        add_gaussian(w, "model.norm.weight", {p.hidden}, dtype, 1.0, 0.05, seed);
        if (!p.tied) add_gaussian(w, "lm_head.weight", {p.vocab, p.hidden}, dtype, 0.0, std_dev, seed);
        const std::string st = (std::filesystem::path(out) / "model.safetensors").string();
        w.write(st);
        std::printf("wrote %s (preset %s, %lld layers, vocab %lld, %s)\n", out.c_str(), preset.c_str(),
                    static_cast<long long>(p.layers), static_cast<long long>(p.vocab), dtype_s.c_str());
        return 0;
    } catch (const bitttt::UsageError& e) {
        std::fprintf(stderr, "bitttt-synth: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitttt-synth: error: %s\n", e.what());
        return 1;
    }
}
