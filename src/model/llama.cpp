// The Llama forward pass (one token at a time), over weights from a .btt file or, as the
// F32 reference, from the original safetensors checkpoint. Sections read top to bottom:
// weights, loading from .btt, loading from safetensors, the forward pass.
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <filesystem>
#include <fstream>

#include "bitttt/btt.h"
#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/file_io.h"
#include "bitttt/model.h"
#include "bitttt/safetensors.h"
#include "kernels/ops.h"
#include "model/linear.h"
#include "model/rope.h"
#include "util/sysinfo.h"

namespace bitttt {

namespace {

using json = nlohmann::json;

// ---- weights ----------------------------------------------------------------------------

struct Layer {
    const float* attn_norm = nullptr;  // [hidden]
    std::unique_ptr<Linear> wq;        // [n_heads * head_dim, hidden]
    std::unique_ptr<Linear> wk;        // [n_kv_heads * head_dim, hidden]
    std::unique_ptr<Linear> wv;        // [n_kv_heads * head_dim, hidden]
    std::unique_ptr<Linear> wo;        // [hidden, n_heads * head_dim]
    const float* ffn_norm = nullptr;   // [hidden]
    std::unique_ptr<Linear> w_gate;    // [intermediate, hidden]
    std::unique_ptr<Linear> w_up;      // [intermediate, hidden]
    std::unique_ptr<Linear> w_down;    // [hidden, intermediate]
};

// The token embedding table [vocab, hidden], in whichever encoding the file has.
struct Embedding {
    Encoding encoding = Encoding::F32;
    const std::uint8_t* data = nullptr;
    TernaryLayout layout;  // ternary only
    int k_bases = 0;       // ternary only
    std::int64_t hidden = 0;

    void row(std::int32_t id, float* out) const {
        switch (encoding) {
            case Encoding::F32:
                std::memcpy(out, data + 4 * static_cast<std::size_t>(id) * hidden, 4 * static_cast<std::size_t>(hidden));
                break;
            case Encoding::F16: {
                const std::uint8_t* p = data + 2 * static_cast<std::size_t>(id) * hidden;
                for (std::int64_t i = 0; i < hidden; ++i) {
                    out[i] = f16_to_f32(static_cast<std::uint16_t>(p[2 * i] | p[2 * i + 1] << 8));
                }
                break;
            }
            case Encoding::Ternary: dequantize_row(layout, data, id, k_bases, out); break;
        }
    }
};

std::unique_ptr<Linear> linear_from(Encoding e, const std::uint8_t* data, const TernaryLayout& layout, int k,
                                    std::int64_t rows, std::int64_t cols) {
    switch (e) {
        case Encoding::Ternary: return make_ternary_linear(layout, data, k);
        case Encoding::F16: return make_f16_linear(data, rows, cols);
        case Encoding::F32: return make_f32_linear(reinterpret_cast<const float*>(data), rows, cols);
    }
    return nullptr;
}

class LlamaModel final : public Model {
public:
    const LlamaConfig& config() const override { return cfg_; }
    const json& tokenizer_json() const override { return tokenizer_; }
    int ctx() const override { return ctx_; }
    int bases() const override { return bases_; }
    int threads() const override { return pool_->size(); }
    std::string description() const override { return description_; }
    std::uint64_t weight_bytes_per_token() const override {
        std::uint64_t n = lm_head_->weight_bytes();
        for (const auto& l : layers_) {
            for (const Linear* w : {l.wq.get(), l.wk.get(), l.wv.get(), l.wo.get(), l.w_gate.get(), l.w_up.get(),
                                    l.w_down.get()}) {
                n += w->weight_bytes();
            }
        }
        return n;
    }
    const float* forward(std::int32_t token, int pos) override;

    void load_btt(const std::string& path, const LoadOptions& opt);
    void load_reference(const std::string& path, const LoadOptions& opt);

private:
    using NormFn = std::function<const float*(const std::string&)>;
    using LinearFn = std::function<std::unique_ptr<Linear>(const std::string&, std::int64_t, std::int64_t)>;
    // Wires every layer's weights by HF name, whatever they are stored as.
    void build_layers(const NormFn& norm, const LinearFn& linear);
    void finish_setup(const LoadOptions& opt);

    LlamaConfig cfg_;
    json tokenizer_;
    int ctx_ = 0;
    int bases_ = 0;
    std::string description_;

    // Weight storage: a mapped .btt, or F32 copies of the reference checkpoint.
    std::unique_ptr<BttFile> btt_;
    std::deque<std::vector<float>> owned_;

    Embedding embed_;
    std::vector<Layer> layers_;
    const float* final_norm_ = nullptr;  // [hidden]
    std::unique_ptr<Linear> lm_head_;    // [vocab, hidden]

    std::unique_ptr<Rope> rope_;
    std::unique_ptr<ThreadPool> pool_;

    // Activations of the current token.
    std::vector<float> x_;       // [hidden] residual stream
    std::vector<float> xb_;      // [hidden] normalised input of a sub-block
    std::vector<float> xb2_;     // [hidden] output of a sub-block
    std::vector<float> q_;       // [n_heads * head_dim]
    std::vector<float> k_;       // [n_kv_heads * head_dim]
    std::vector<float> v_;       // [n_kv_heads * head_dim]
    std::vector<float> att_;     // [n_heads, ctx] attention weights
    std::vector<float> att_out_; // [n_heads * head_dim]
    std::vector<float> hb_;      // [intermediate]
    std::vector<float> hb2_;     // [intermediate]
    std::vector<float> logits_;  // [vocab]
    std::vector<float> key_cache_;    // [layers, ctx, n_kv_heads * head_dim]
    std::vector<float> value_cache_;  // [layers, ctx, n_kv_heads * head_dim]
};

// ---- loading from a .btt file -----------------------------------------------------------

void LlamaModel::load_btt(const std::string& path, const LoadOptions& opt) {
    btt_ = std::make_unique<BttFile>(path);
    const BttFile& f = *btt_;
    if (f.weights_only()) {
        throw UsageError(path + " is a weights-only .btt (converted from a bare safetensors file without "
                                "config.json): it can be inspected but not run; convert the model folder instead");
    }
    cfg_ = LlamaConfig::from_json(f.header().at("model"), path + " (model config)");
    if (f.header().contains("tokenizer")) tokenizer_ = f.header().at("tokenizer");

    int max_bases = 0;
    for (const auto& t : f.tensors()) {
        if (t.encoding == Encoding::Ternary) max_bases = std::max(max_bases, t.layout.bases);
    }
    if (opt.bases < 0) throw UsageError("--bases must be positive");
    bases_ = opt.bases > 0 ? opt.bases : max_bases;

    auto need = [&](const std::string& name, const std::vector<std::int64_t>& shape) -> const BttTensor& {
        const BttTensor* t = f.find(name);
        if (!t) throw FormatError(path + ": tensor '" + name + "' is missing");
        if (t->shape != shape) {
            throw FormatError(path + ": tensor '" + name + "' has shape " + format_shape(t->shape) +
                              " but the model config implies " + format_shape(shape));
        }
        if (t->encoding == Encoding::Ternary && opt.bases > t->layout.bases) {
            throw UsageError("--bases " + std::to_string(opt.bases) + " is more than the " +
                             std::to_string(t->layout.bases) + " bases tensor '" + name + "' has in " + path);
        }
        return *t;
    };
    auto k_for = [&](const BttTensor& t) { return t.encoding == Encoding::Ternary ? std::min(bases_, t.layout.bases) : 0; };
    auto linear = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
        const BttTensor& t = need(name, {rows, cols});
        return linear_from(t.encoding, f.data(t), t.layout, k_for(t), rows, cols);
    };
    auto norm = [&](const std::string& name) {
        const BttTensor& t = need(name, {cfg_.hidden_size});
        if (t.encoding != Encoding::F32) throw FormatError(path + ": tensor '" + name + "' must be f32");
        return reinterpret_cast<const float*>(f.data(t));
    };

    const std::int64_t h = cfg_.hidden_size;
    const BttTensor& emb = need("model.embed_tokens.weight", {cfg_.vocab_size, h});
    embed_ = Embedding{emb.encoding, f.data(emb), emb.layout, k_for(emb), h};
    build_layers(norm, linear);
    final_norm_ = norm("model.norm.weight");
    lm_head_ = cfg_.tie_word_embeddings ? linear("model.embed_tokens.weight", cfg_.vocab_size, h)
                                        : linear("lm_head.weight", cfg_.vocab_size, h);

    const json& conv = f.header().value("conversion", json::object());
    description_ = std::filesystem::path(path).filename().string() + ": ternary, " + std::to_string(bases_) + " of " +
                   std::to_string(max_bases) + " bases, " + conv.value("packing", std::string("?")) + ", block " +
                   std::to_string(conv.value("block_size", 0));
    finish_setup(opt);
}

// ---- loading the F32 reference from safetensors -------------------------------------------

void LlamaModel::load_reference(const std::string& path, const LoadOptions& opt) {
    Checkpoint ckpt = Checkpoint::open(path);
    if (!ckpt.config_path()) {
        throw UsageError(path + ": no config.json next to the weights; the F32 reference needs the model folder");
    }
    if (opt.bases > 0) {
        throw UsageError("--bases applies to .btt files; " + path + " runs as the unquantised F32 reference");
    }
    cfg_ = LlamaConfig::load(*ckpt.config_path());
    validate_checkpoint(cfg_, ckpt, *ckpt.config_path());
    if (ckpt.tokenizer_path()) tokenizer_ = read_json_file(*ckpt.tokenizer_path());
    auto load = [&](const std::string& name) -> const float* {
        owned_.push_back(ckpt.read_f32(*ckpt.find(name)));
        ckpt.release(*ckpt.find(name));
        return owned_.back().data();
    };
    auto linear = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
        return make_f32_linear(load(name), rows, cols);
    };
    const std::int64_t h = cfg_.hidden_size;
    const float* emb = load("model.embed_tokens.weight");
    embed_ = Embedding{Encoding::F32, reinterpret_cast<const std::uint8_t*>(emb), {}, 0, h};
    build_layers(load, linear);
    final_norm_ = load("model.norm.weight");
    lm_head_ = cfg_.tie_word_embeddings ? make_f32_linear(emb, cfg_.vocab_size, h)
                                        : linear("lm_head.weight", cfg_.vocab_size, h);
    bases_ = 0;
    description_ = path + ": F32 reference (unquantised)";
    finish_setup(opt);
}

void LlamaModel::build_layers(const NormFn& norm, const LinearFn& linear) {
    const std::int64_t h = cfg_.hidden_size, hd = cfg_.head_dim, ff = cfg_.intermediate_size;
    const std::int64_t qd = cfg_.num_attention_heads * hd, kvd = cfg_.num_key_value_heads * hd;
    for (std::int64_t l = 0; l < cfg_.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        Layer L;
        L.attn_norm = norm(p + "input_layernorm.weight");
        L.wq = linear(p + "self_attn.q_proj.weight", qd, h);
        L.wk = linear(p + "self_attn.k_proj.weight", kvd, h);
        L.wv = linear(p + "self_attn.v_proj.weight", kvd, h);
        L.wo = linear(p + "self_attn.o_proj.weight", h, qd);
        L.ffn_norm = norm(p + "post_attention_layernorm.weight");
        L.w_gate = linear(p + "mlp.gate_proj.weight", ff, h);
        L.w_up = linear(p + "mlp.up_proj.weight", ff, h);
        L.w_down = linear(p + "mlp.down_proj.weight", h, ff);
        layers_.push_back(std::move(L));
    }
}

void LlamaModel::finish_setup(const LoadOptions& opt) {
    const std::int64_t max_ctx = std::min<std::int64_t>(cfg_.max_position_embeddings, 4096);
    if (opt.ctx < 0) throw UsageError("--ctx must be positive");
    if (opt.ctx > cfg_.max_position_embeddings) {
        throw UsageError("--ctx " + std::to_string(opt.ctx) + " is more than the model's max_position_embeddings (" +
                         std::to_string(cfg_.max_position_embeddings) + ")");
    }
    ctx_ = static_cast<int>(opt.ctx > 0 ? opt.ctx : max_ctx);
    rope_ = std::make_unique<Rope>(cfg_);
    pool_ = std::make_unique<ThreadPool>(opt.threads > 0 ? opt.threads : physical_cores());

    const std::size_t h = static_cast<std::size_t>(cfg_.hidden_size);
    const std::size_t hd = static_cast<std::size_t>(cfg_.head_dim);
    const std::size_t qd = static_cast<std::size_t>(cfg_.num_attention_heads) * hd;
    const std::size_t kvd = static_cast<std::size_t>(cfg_.num_key_value_heads) * hd;
    const std::size_t ff = static_cast<std::size_t>(cfg_.intermediate_size);
    x_.assign(h, 0.0f);
    xb_.assign(h, 0.0f);
    xb2_.assign(h, 0.0f);
    q_.assign(qd, 0.0f);
    k_.assign(kvd, 0.0f);
    v_.assign(kvd, 0.0f);
    att_.assign(static_cast<std::size_t>(cfg_.num_attention_heads) * static_cast<std::size_t>(ctx_), 0.0f);
    att_out_.assign(qd, 0.0f);
    hb_.assign(ff, 0.0f);
    hb2_.assign(ff, 0.0f);
    logits_.assign(static_cast<std::size_t>(cfg_.vocab_size), 0.0f);
    const std::size_t cache = static_cast<std::size_t>(cfg_.num_hidden_layers) * static_cast<std::size_t>(ctx_) * kvd;
    key_cache_.assign(cache, 0.0f);
    value_cache_.assign(cache, 0.0f);
}

// ---- the forward pass ----------------------------------------------------------------------

const float* LlamaModel::forward(std::int32_t token, int pos) {
    if (token < 0 || token >= cfg_.vocab_size) {
        throw UsageError("token id " + std::to_string(token) + " is outside the vocabulary (0.." +
                         std::to_string(cfg_.vocab_size - 1) + ")");
    }
    if (pos < 0 || pos >= ctx_) {
        throw UsageError("position " + std::to_string(pos) + " is outside the context of " + std::to_string(ctx_) +
                         " tokens (raise --ctx)");
    }
    const std::int64_t h = cfg_.hidden_size, hd = cfg_.head_dim, ff = cfg_.intermediate_size;
    const std::int64_t n_heads = cfg_.num_attention_heads, n_kv = cfg_.num_key_value_heads;
    const std::int64_t kvd = n_kv * hd, group = n_heads / n_kv;
    const float eps = static_cast<float>(cfg_.rms_norm_eps);
    const float att_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ThreadPool& pool = *pool_;

    embed_.row(token, x_.data());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const Layer& L = layers_[l];
        float* kc = key_cache_.data() + (l * static_cast<std::size_t>(ctx_)) * static_cast<std::size_t>(kvd);
        float* vc = value_cache_.data() + (l * static_cast<std::size_t>(ctx_)) * static_cast<std::size_t>(kvd);

        // Attention.
        kernels::rmsnorm(x_.data(), L.attn_norm, h, eps, xb_.data());
        L.wq->forward(xb_.data(), q_.data(), pool);
        L.wk->forward(xb_.data(), k_.data(), pool);
        L.wv->forward(xb_.data(), v_.data(), pool);
        rope_->apply(q_.data(), n_heads, pos);
        rope_->apply(k_.data(), n_kv, pos);
        std::copy(k_.begin(), k_.end(), kc + static_cast<std::size_t>(pos) * kvd);
        std::copy(v_.begin(), v_.end(), vc + static_cast<std::size_t>(pos) * kvd);
        // Heads in parallel once the cache is long enough to be worth a hand-off.
        const std::int64_t head_work = static_cast<std::int64_t>(pos + 1) * hd;
        const std::int64_t head_grain = head_work * n_heads < 16384 ? n_heads : 1;
        pool.parallel_for(n_heads, head_grain, [&](std::int64_t h0, std::int64_t h1) {
            for (std::int64_t head = h0; head < h1; ++head) {
                const std::int64_t kvh = head / group;  // grouped-query attention
                kernels::attention(q_.data() + head * hd, kc + kvh * hd, vc + kvh * hd, pos + 1, kvd, hd, att_scale,
                                   att_.data() + head * ctx_, att_out_.data() + head * hd);
            }
        });
        L.wo->forward(att_out_.data(), xb2_.data(), pool);
        for (std::int64_t i = 0; i < h; ++i) x_[i] += xb2_[i];

        // SwiGLU MLP.
        kernels::rmsnorm(x_.data(), L.ffn_norm, h, eps, xb_.data());
        L.w_gate->forward(xb_.data(), hb_.data(), pool);
        L.w_up->forward(xb_.data(), hb2_.data(), pool);
        kernels::swiglu(hb_.data(), hb2_.data(), ff, hb_.data());
        L.w_down->forward(hb_.data(), xb2_.data(), pool);
        for (std::int64_t i = 0; i < h; ++i) x_[i] += xb2_[i];
    }
    kernels::rmsnorm(x_.data(), final_norm_, h, eps, x_.data());
    lm_head_->forward(x_.data(), logits_.data(), pool);
    return logits_.data();
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& options) {
    auto m = std::make_unique<LlamaModel>();
    // A .btt file is recognised by its magic, whatever its name.
    bool is_btt = false;
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) {
        char magic[4] = {};
        std::ifstream(path, std::ios::binary).read(magic, 4);
        is_btt = std::memcmp(magic, "BTTT", 4) == 0;
    }
    if (is_btt) {
        m->load_btt(path, options);
    } else {
        m->load_reference(path, options);
    }
    return m;
}

}  // namespace bitttt
