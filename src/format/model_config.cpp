#include "bitttt/model_config.h"

#include <cmath>
#include <regex>

#include "bitttt/error.h"
#include "bitttt/json_fields.h"
#include "bitttt/limits.h"
#include "bitttt/file_io.h"
#include "bitttt/safetensors.h"

namespace bitttt {

using json = nlohmann::json;

LlamaConfig LlamaConfig::from_json(const json& j, const std::string& source) {
    // Every field through one typed reader; every count bounded (bitttt/limits.h) before
    // anything is sized from it, each refusal naming the file, the field and the limit.
    const JsonFields r(j, source);
    LlamaConfig c;

    std::string model_type = r.str_or("model_type", "llama");
    if (model_type != "llama") {
        throw UnsupportedError(source + ": model_type " + quote_name(model_type) +
                               " is not supported (bitttt converts Llama-family checkpoints, model_type 'llama')");
    }
    if (r.has("architectures")) {
        const json& a = r.array("architectures");
        if (!a.empty()) {
            if (!a[0].is_string()) r.fail("architectures", "must be an array of strings");
            c.architecture = a[0].get<std::string>();
        }
    }
    std::string act = r.str_or("hidden_act", "silu");
    if (act != "silu") {
        throw UnsupportedError(source + ": hidden_act " + quote_name(act) + " is not supported (only 'silu')");
    }
    if (r.boolean_or("attention_bias", false)) throw UnsupportedError(source + ": attention_bias true is not supported");
    if (r.boolean_or("mlp_bias", false)) throw UnsupportedError(source + ": mlp_bias true is not supported");

    c.hidden_size = r.integer("hidden_size", 1, limits::kMaxHidden);
    c.intermediate_size = r.integer("intermediate_size", 1, limits::kMaxIntermediate);
    c.num_hidden_layers = r.integer("num_hidden_layers", 1, limits::kMaxLayers);
    c.num_attention_heads = r.integer("num_attention_heads", 1, limits::kMaxHeads);
    c.vocab_size = r.integer("vocab_size", 1, limits::kMaxVocab);
    c.num_key_value_heads = r.integer_or("num_key_value_heads", c.num_attention_heads, 1, c.num_attention_heads);
    if (c.num_attention_heads % c.num_key_value_heads != 0) {
        r.fail("num_attention_heads (" + std::to_string(c.num_attention_heads) +
               ") is not a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
    }
    if (r.has("head_dim")) {
        c.head_dim = r.integer("head_dim", 1, limits::kMaxHeadDim);
    } else {
        if (c.hidden_size % c.num_attention_heads != 0) {
            r.fail("hidden_size (" + std::to_string(c.hidden_size) + ") is not a multiple of num_attention_heads (" +
                   std::to_string(c.num_attention_heads) + ") and no head_dim is given");
        }
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    if (c.head_dim % 2 != 0) r.fail("head_dim", "must be even for rotary embeddings, got " + std::to_string(c.head_dim));
    // The attention width (heads x head_dim) is a layer dimension too.
    if (c.num_attention_heads * c.head_dim > limits::kMaxHidden) {
        r.fail("num_attention_heads x head_dim = " + std::to_string(c.num_attention_heads * c.head_dim) +
               " is above the limit " + std::to_string(limits::kMaxHidden));
    }
    c.max_position_embeddings = r.integer_or("max_position_embeddings", 2048, 1, limits::kMaxContext);
    c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6);
    if (!(c.rms_norm_eps > 0)) r.fail("rms_norm_eps", "must be positive");
    c.rope_theta = r.number_or("rope_theta", 10000.0);
    if (!(c.rope_theta > 0)) r.fail("rope_theta", "must be positive");
    c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);

    if (auto rs = r.object_or_null("rope_scaling")) {
        const std::string type = rs->str_or("rope_type", rs->str_or("type", "default"));
        if (type == "default") {
            c.rope_scaling.type = "none";
        } else if (type == "linear" || type == "llama3") {
            c.rope_scaling.type = type;
            c.rope_scaling.factor = rs->number_or("factor", 1.0);
            if (!(c.rope_scaling.factor > 0)) rs->fail("factor", "must be positive");
            if (type == "llama3") {
                c.rope_scaling.low_freq_factor = rs->number_or("low_freq_factor", 1.0);
                c.rope_scaling.high_freq_factor = rs->number_or("high_freq_factor", 4.0);
                c.rope_scaling.original_max_position_embeddings =
                    rs->integer_or("original_max_position_embeddings", 8192, 1, limits::kMaxContext);
                if (!(c.rope_scaling.low_freq_factor > 0) ||
                    !(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor)) {
                    rs->fail("high_freq_factor must be greater than low_freq_factor, both positive");
                }
            }
        } else {
            throw UnsupportedError(source + ": rope_scaling type " + quote_name(type) +
                                   " is not supported (supported: default, linear, llama3)");
        }
    }

    // Special token ids index the vocabulary.
    const std::int64_t max_id = c.vocab_size - 1;
    if (r.has("bos_token_id")) c.bos_token_id = r.integer("bos_token_id", 0, max_id);
    if (r.has("eos_token_id")) {
        const json& e = r.at("eos_token_id");
        if (e.is_array()) {
            if (e.size() > 64) r.fail("eos_token_id", "lists " + std::to_string(e.size()) + " ids (at most 64)");
            for (std::size_t i = 0; i < e.size(); ++i) {
                c.eos_token_ids.push_back(r.integer_value(e[i], "eos_token_id[" + std::to_string(i) + "]", 0, max_id));
            }
        } else {
            c.eos_token_ids.push_back(r.integer("eos_token_id", 0, max_id));
        }
    }
    return c;
}

LlamaConfig LlamaConfig::load(const std::string& path) {
    return from_json(read_json_file(path), path);
}

json LlamaConfig::to_json() const {
    json j = {
        {"architectures", json::array({architecture})},
        {"model_type", "llama"},
        {"hidden_size", hidden_size},
        {"intermediate_size", intermediate_size},
        {"num_hidden_layers", num_hidden_layers},
        {"num_attention_heads", num_attention_heads},
        {"num_key_value_heads", num_key_value_heads},
        {"head_dim", head_dim},
        {"vocab_size", vocab_size},
        {"max_position_embeddings", max_position_embeddings},
        {"rms_norm_eps", rms_norm_eps},
        {"rope_theta", rope_theta},
        {"tie_word_embeddings", tie_word_embeddings},
        {"hidden_act", "silu"},
    };
    if (rope_scaling.type == "none") {
        j["rope_scaling"] = nullptr;
    } else {
        json rs = {{"rope_type", rope_scaling.type}, {"factor", rope_scaling.factor}};
        if (rope_scaling.type == "llama3") {
            rs["low_freq_factor"] = rope_scaling.low_freq_factor;
            rs["high_freq_factor"] = rope_scaling.high_freq_factor;
            rs["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
        }
        j["rope_scaling"] = rs;
    }
    j["bos_token_id"] = bos_token_id ? json(*bos_token_id) : json(nullptr);
    if (eos_token_ids.size() == 1) {
        j["eos_token_id"] = eos_token_ids[0];
    } else if (eos_token_ids.empty()) {
        j["eos_token_id"] = nullptr;
    } else {
        j["eos_token_id"] = eos_token_ids;
    }
    return j;
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> LlamaConfig::required_tensors() const {
    const std::int64_t h = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim,
                       ff = intermediate_size;
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> t;
    t.push_back({"model.embed_tokens.weight", {vocab_size, h}});
    for (std::int64_t l = 0; l < num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        t.push_back({p + "input_layernorm.weight", {h}});
        t.push_back({p + "self_attn.q_proj.weight", {q, h}});   // [n_heads*head_dim, hidden]
        t.push_back({p + "self_attn.k_proj.weight", {kv, h}});  // [n_kv_heads*head_dim, hidden]
        t.push_back({p + "self_attn.v_proj.weight", {kv, h}});  // [n_kv_heads*head_dim, hidden]
        t.push_back({p + "self_attn.o_proj.weight", {h, q}});   // [hidden, n_heads*head_dim]
        t.push_back({p + "post_attention_layernorm.weight", {h}});
        t.push_back({p + "mlp.gate_proj.weight", {ff, h}});     // [intermediate, hidden]
        t.push_back({p + "mlp.up_proj.weight", {ff, h}});       // [intermediate, hidden]
        t.push_back({p + "mlp.down_proj.weight", {h, ff}});     // [hidden, intermediate]
    }
    t.push_back({"model.norm.weight", {h}});
    if (!tie_word_embeddings) t.push_back({"lm_head.weight", {vocab_size, h}});
    return t;
}

std::int64_t LlamaConfig::parameter_count() const {
    std::int64_t n = 0;
    for (const auto& [name, shape] : required_tensors()) {
        std::int64_t e = 1;
        for (auto d : shape) e *= d;
        n += e;
    }
    return n;
}

void validate_checkpoint(const LlamaConfig& config, const Checkpoint& ckpt, const std::string& config_path) {
    std::vector<std::string> problems;
    for (const auto& [name, shape] : config.required_tensors()) {
        const Checkpoint::Entry* e = ckpt.find(name);
        if (!e) {
            problems.push_back("tensor '" + name + "' is missing (" + config_path + " implies shape " +
                               format_shape(shape) + ")");
        } else if (e->info->shape != shape) {
            problems.push_back(e->file->path() + ": tensor '" + name + "' has shape " + format_shape(e->info->shape) +
                               " but " + config_path + " implies " + format_shape(shape));
        } else if (!dtype_is_float_convertible(e->info->dtype)) {
            problems.push_back(e->file->path() + ": tensor '" + name + "' has dtype " + dtype_name(e->info->dtype) +
                               " (supported: F32, F16, BF16)");
        }
    }
    if (!problems.empty()) {
        std::string msg = problems.front();
        if (problems.size() > 1) msg += " (and " + std::to_string(problems.size() - 1) + " more problems)";
        throw FormatError(ckpt.source() + ": " + msg);
    }
}

TensorRole tensor_role(const std::string& name) {
    static const std::regex linear(
        R"(model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight)");
    static const std::regex norm(R"(model\.(layers\.\d+\.(input_layernorm|post_attention_layernorm)|norm)\.weight)");
    if (name == "model.embed_tokens.weight") return TensorRole::Embedding;
    if (name == "lm_head.weight") return TensorRole::LmHead;
    if (std::regex_match(name, linear)) return TensorRole::Linear;
    if (std::regex_match(name, norm)) return TensorRole::Norm;
    return TensorRole::Other;
}

std::vector<float> rope_inv_freq(const LlamaConfig& c) {
    const std::int64_t half = c.head_dim / 2;
    std::vector<float> inv(static_cast<std::size_t>(half));
    for (std::int64_t i = 0; i < half; ++i) {
        // As HF: 1 / theta^(2i / head_dim), computed in float32.
        inv[i] = static_cast<float>(1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / c.head_dim));
    }
    const RopeScaling& s = c.rope_scaling;
    if (s.type == "linear") {
        for (auto& f : inv) f = f / static_cast<float>(s.factor);
    } else if (s.type == "llama3") {
        // transformers' _compute_llama3_parameters: long wavelengths are slowed down by
        // `factor`, short ones kept, the band in between interpolated smoothly.
        const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
        const double low_wavelen = old_ctx / s.low_freq_factor;
        const double high_wavelen = old_ctx / s.high_freq_factor;
        const double pi = 3.14159265358979323846;
        for (auto& f : inv) {
            const double wavelen = 2 * pi / f;
            if (wavelen < high_wavelen) continue;
            if (wavelen > low_wavelen) {
                f = static_cast<float>(f / s.factor);
            } else {
                const double smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                f = static_cast<float>((1 - smooth) * f / s.factor + smooth * f);
            }
        }
    }
    return inv;
}

}  // namespace bitttt
