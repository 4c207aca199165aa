// The Llama forward pass (one token at a time), over weights from a .btt file or, as the
// F32 reference, from the original safetensors checkpoint. Sections read top to bottom:
// weights, loading from .btt, loading from safetensors, the forward pass.
#include <chrono>
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
#include "bitttt/json_fields.h"
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
    Int8Layout int8;       // int8 only

    void row(std::int32_t id, float* out) const {
        switch (encoding) {
            case Encoding::F32:
                std::memcpy(out, data + 4 * static_cast<std::size_t>(id) * hidden, 4 * static_cast<std::size_t>(hidden));
                break;
            case Encoding::F16: kernels::f16_row(data + 2 * static_cast<std::size_t>(id) * hidden, hidden, out); break;
            case Encoding::Ternary: dequantize_row(layout, data, id, k_bases, out); break;
            case Encoding::Int8: dequantize_row_int8(int8, data, id, out); break;
        }
    }
};

// Where a step's time goes (bench --profile).
enum Op { kOpEmbed, kOpNorm, kOpQkv, kOpRope, kOpAttention, kOpWo, kOpGateUp, kOpSwiglu, kOpDown, kOpLmHead, kOpCount };
constexpr const char* kOpNames[kOpCount] = {"embedding", "rmsnorm",     "q/k/v",  "rope+kv store", "attention",
                                            "o_proj",    "gate/up proj", "swiglu", "down_proj",     "lm_head"};

// Adds the wall time since the previous lap to an op's total (no-op unless profiling).
class OpTimer {
public:
    OpTimer(bool on, std::vector<double>& totals) : on_(on), totals_(totals) {
        if (on_) last_ = std::chrono::steady_clock::now();
    }
    void lap(Op op) {
        if (!on_) return;
        const auto now = std::chrono::steady_clock::now();
        totals_[op] += std::chrono::duration<double>(now - last_).count();
        last_ = now;
    }

private:
    bool on_;
    std::vector<double>& totals_;
    std::chrono::steady_clock::time_point last_;
};

// What runs of a .btt file's ternary tensors, e.g. "ternary, 3 of 3 bases, 2bit, block 64" or,
// when the tensors differ, "ternary, 2-4 bases (mixed; first 3 used), 2bit, block 64, tied
// and free scales". `bases` is the K in use (every tensor uses min(K, its N)).
std::string describe_ternary(const std::vector<BttTensor>& tensors, int bases) {
    int min_n = 0, max_n = 0, min_b = 0, max_b = 0;
    bool two_bit = false, dense = false, any_tied = false, any_free = false, any_8 = false, any_16 = false;
    for (const auto& t : tensors) {
        if (t.encoding != Encoding::Ternary) continue;
        const TernaryLayout& l = t.layout;
        min_n = min_n ? std::min(min_n, l.bases) : l.bases;
        max_n = std::max(max_n, l.bases);
        min_b = min_b ? std::min(min_b, l.block_size) : l.block_size;
        max_b = std::max(max_b, l.block_size);
        (l.packing == Packing::Dense ? dense : two_bit) = true;
        (l.tied() ? any_tied : any_free) = true;
        (l.two_level() ? any_8 : any_16) = true;
    }
    if (max_n == 0) return "no ternary tensors";
    std::string d = "ternary, ";
    if (min_n == max_n) {
        d += std::to_string(bases) + " of " + std::to_string(max_n) + " bases";
    } else {
        d += std::to_string(min_n) + "-" + std::to_string(max_n) + " bases (mixed; " +
             (bases >= max_n ? std::string("all used") : "first " + std::to_string(bases) + " used") + ")";
    }
    d += two_bit && dense ? ", 2bit and dense" : two_bit ? ", 2bit" : ", dense";
    d += min_b == max_b ? ", block " + std::to_string(min_b)
                        : ", blocks " + std::to_string(min_b) + "-" + std::to_string(max_b);
    if (any_tied) d += any_free ? ", tied and free scales" : ", tied scales";
    if (any_8) d += any_16 ? ", some two-level (8-bit)" : ", two-level (8-bit) scales";
    return d;
}

std::unique_ptr<Linear> linear_from(Encoding e, const std::uint8_t* data, const TernaryLayout& layout, int k,
                                    std::int64_t rows, std::int64_t cols, ThreadPool& pool) {
    switch (e) {
        case Encoding::Ternary: return make_ternary_linear(layout, data, k, pool);
        case Encoding::F16: return make_f16_linear(data, rows, cols);
        case Encoding::F32: return make_f32_linear(reinterpret_cast<const float*>(data), rows, cols);
        case Encoding::Int8: return make_int8_linear(Int8Layout{rows, cols}, data);
    }
    return nullptr;
}

class LlamaModel final : public Model {
public:
    const LlamaConfig& config() const override { return cfg_; }
    const json& tokenizer_json() const override { return tokenizer_; }
    int ctx() const override { return ctx_; }
    KvCacheType kv_cache_type() const override { return kv_type_; }
    std::uint64_t kv_cache_bytes() const override {
        return 2 * kv_cache_elements() * (kv_type_ == KvCacheType::F16 ? 2 : 4);  // keys and values
    }
    int bases() const override { return bases_; }
    int threads() const override { return pool_->size(); }
    std::string description() const override { return description_; }
    int rearranged_tensors() const override { return rearranged_; }
    std::uint64_t weight_bytes_per_token() const override {
        const WeightStats w = weight_stats();
        return w.linear_bytes + w.output_bytes;
    }
    WeightStats weight_stats() const override {
        WeightStats w;
        w.output_params = static_cast<std::uint64_t>(lm_head_->rows() * lm_head_->cols());
        w.output_bytes = lm_head_->weight_bytes();
        for (const auto& l : layers_) {
            for (const Linear* m : {l.wq.get(), l.wk.get(), l.wv.get(), l.wo.get(), l.w_gate.get(), l.w_up.get(),
                                    l.w_down.get()}) {
                w.linear_params += static_cast<std::uint64_t>(m->rows() * m->cols());
                w.linear_bytes += m->weight_bytes();
            }
        }
        return w;
    }
    int batch() const override { return batch_; }
    const float* forward(std::int32_t token, int pos) override { return forward_batch(&token, 1, pos, nullptr); }
    const float* forward_batch(const std::int32_t* tokens, int n, int pos, float* all_logits) override;
    void set_profiling(bool on) override {
        profiling_ = on;
        profiled_steps_ = 0;
        std::fill(op_seconds_.begin(), op_seconds_.end(), 0.0);
    }
    std::vector<OpProfile> profile() const override {
        // Each step reads every matrix once, whatever its number of tokens.
        std::vector<std::uint64_t> bytes(kOpCount, 0);
        for (const auto& l : layers_) {
            bytes[kOpQkv] += l.wq->weight_bytes() + l.wk->weight_bytes() + l.wv->weight_bytes();
            bytes[kOpWo] += l.wo->weight_bytes();
            bytes[kOpGateUp] += l.w_gate->weight_bytes() + l.w_up->weight_bytes();
            bytes[kOpDown] += l.w_down->weight_bytes();
        }
        bytes[kOpLmHead] = lm_head_->weight_bytes();
        std::vector<OpProfile> out;
        for (int i = 0; i < kOpCount; ++i) {
            const auto u = static_cast<std::size_t>(i);
            out.push_back({kOpNames[i], op_seconds_[u], bytes[u] * profiled_steps_});
        }
        return out;
    }

    void load_btt(const std::string& path, const LoadOptions& opt);
    void load_reference(const std::string& path, const LoadOptions& opt);

private:
    using NormFn = std::function<const float*(const std::string&)>;
    using LinearFn = std::function<std::unique_ptr<Linear>(const std::string&, std::int64_t, std::int64_t)>;
    // Wires every layer's weights by HF name, whatever they are stored as.
    void build_layers(const NormFn& norm, const LinearFn& linear);
    void resolve_ctx(const LoadOptions& opt);  // validates opt.ctx and sets ctx_
    // Elements of the key (or the value) cache: layers x ctx x kv heads x head_dim.
    std::size_t kv_cache_elements() const {
        return static_cast<std::size_t>(cfg_.num_hidden_layers) * static_cast<std::size_t>(ctx_) *
               static_cast<std::size_t>(cfg_.num_key_value_heads * cfg_.head_dim);
    }
    void finish_setup(const LoadOptions& opt);
    // One micro-batch of m <= batch_ tokens at positions pos..pos+m-1.
    void step(const std::int32_t* tokens, int m, int pos, float* all_logits);

    LlamaConfig cfg_;
    json tokenizer_;
    int ctx_ = 0;
    int bases_ = 0;
    std::string description_;
    int rearranged_ = 0;  // ternary tensors copied into the kernel's arrangement at load

    // Weight storage: a mapped .btt, or F32 copies of the reference checkpoint.
    std::unique_ptr<BttFile> btt_;
    std::deque<std::vector<float>> owned_;

    Embedding embed_;
    std::vector<Layer> layers_;
    const float* final_norm_ = nullptr;  // [hidden]
    std::unique_ptr<Linear> lm_head_;    // [vocab, hidden]

    std::unique_ptr<Rope> rope_;
    std::unique_ptr<ThreadPool> pool_;

    // Activations of the current micro-batch of m <= batch_ tokens (row-major [m, dim]).
    int batch_ = 32;             // micro-batch size (LoadOptions::batch)
    std::vector<float> x_;       // [m, hidden] residual stream
    std::vector<float> xb_;      // [m, hidden] normalised input of a sub-block
    std::vector<float> xb2_;     // [m, hidden] output of a sub-block
    std::vector<float> q_;       // [m, n_heads * head_dim]
    std::vector<float> k_;       // [m, n_kv_heads * head_dim]
    std::vector<float> v_;       // [m, n_kv_heads * head_dim]
    std::vector<float> att_out_; // [m, n_heads * head_dim]
    std::vector<float> hb_;      // [m, intermediate]
    std::vector<float> hb2_;     // [m, intermediate]
    std::vector<float> logits_;  // [vocab] of the last token
    // [layers, ctx, n_kv_heads * head_dim], of F32 or of binary16 (kv_type_; the other pair
    // stays empty). Left uninitialised: a position is written before it is read, and
    // untouched pages cost neither time at load nor resident memory.
    KvCacheType kv_type_ = KvCacheType::F16;
    std::unique_ptr<float[]> key_cache_;
    std::unique_ptr<float[]> value_cache_;
    std::unique_ptr<std::uint16_t[]> key_cache16_;
    std::unique_ptr<std::uint16_t[]> value_cache16_;
    LinearInput in_;             // the input of the linear layers, prepared once per use

    // Per-op wall time, when profiling.
    bool profiling_ = false;
    std::vector<double> op_seconds_ = std::vector<double>(kOpCount, 0.0);
    std::uint64_t profiled_steps_ = 0;  // passes over the weights since set_profiling(true)
};

// ---- loading from a .btt file -----------------------------------------------------------

void LlamaModel::load_btt(const std::string& path, const LoadOptions& opt) {
    btt_ = std::make_unique<BttFile>(path);
    // Threads first: rearranging weights at load (files in the other arrangement) uses them.
    pool_ = std::make_unique<ThreadPool>(opt.threads > 0 ? opt.threads : physical_cores());
    const BttFile& f = *btt_;
    if (f.weights_only()) {
        throw UsageError(path + " is a weights-only .btt (converted from a bare safetensors file without "
                                "config.json): it can be inspected but not run; convert the model folder instead");
    }
    cfg_ = LlamaConfig::from_json(f.header().at("model"), path + " (model config)");
    if (f.header().contains("tokenizer")) tokenizer_ = f.header().at("tokenizer");
    resolve_ctx(opt);
    if (opt.before_weights) opt.before_weights(cfg_, tokenizer_, ctx_);
    if (opt.verify) {
        for (const auto& t : f.tensors()) f.verify(t);
    }

    int max_bases = 0;
    for (const auto& t : f.tensors()) {
        if (t.encoding == Encoding::Ternary) max_bases = std::max(max_bases, t.layout.bases);
    }
    if (opt.bases < 0) throw UsageError("--bases must be positive");
    // Tensors may have different N (e.g. chosen per tensor by a bits budget): --bases K uses
    // min(K, N) bases of each, and is an error only above the largest N.
    if (max_bases > 0 && opt.bases > max_bases) {
        throw UsageError("--bases " + std::to_string(opt.bases) + " is more than the largest number of bases (" +
                         std::to_string(max_bases) + ") of any ternary tensor in " + path);
    }
    bases_ = opt.bases > 0 ? opt.bases : max_bases;

    auto need = [&](const std::string& name, const std::vector<std::int64_t>& shape) -> const BttTensor& {
        const BttTensor* t = f.find(name);
        if (!t) throw FormatError(path + ": tensor '" + name + "' is missing");
        if (t->shape != shape) {
            throw FormatError(path + ": tensor '" + name + "' has shape " + format_shape(t->shape) +
                              " but the model config implies " + format_shape(shape));
        }
        return *t;
    };
    auto k_for = [&](const BttTensor& t) { return t.encoding == Encoding::Ternary ? std::min(bases_, t.layout.bases) : 0; };
    auto linear = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
        const BttTensor& t = need(name, {rows, cols});
        auto lin = linear_from(t.encoding, f.data(t), t.layout, k_for(t), rows, cols, *pool_);
        // A rearranged copy replaces the mapped bytes: drop them so they are not held twice.
        if (t.encoding == Encoding::Ternary && ternary_linear_copies_weights(t.layout)) {
            f.release(t);
            // A ternary tied table is stored in rows on purpose (the embedding reads rows):
            // its copy is not something `bitttt repack` would change.
            if (name != "model.embed_tokens.weight") ++rearranged_;
        }
        return lin;
    };
    // Cheap checks of what is small: norms and the int8 tensors' per-row scales must be
    // finite (a corrupt file otherwise runs and prints garbage; run --verify checks every
    // byte against the checksums).
    auto finite = [&](const BttTensor& t, const float* v, std::size_t n, const char* what) {
        for (std::size_t i = 0; i < n; ++i) {
            if (!std::isfinite(v[i])) {
                throw FormatError(path + ": tensor " + quote_name(t.name) + ": " + what + " " + std::to_string(i) +
                                  " is not finite; the file is corrupt (bitttt inspect --verify checks it)");
            }
        }
    };
    auto norm = [&](const std::string& name) {
        const BttTensor& t = need(name, {cfg_.hidden_size});
        if (t.encoding != Encoding::F32) throw FormatError(path + ": tensor '" + name + "' must be f32");
        const auto* v = reinterpret_cast<const float*>(f.data(t));
        finite(t, v, static_cast<std::size_t>(cfg_.hidden_size), "value");
        return v;
    };
    for (const auto& t : f.tensors()) {
        if (t.encoding == Encoding::Ternary) {
            // Every block's scale bytes, once (tiles: the scale section alone, not the codes).
            if (const std::int64_t r = find_nonfinite_scale(t.layout, f.data(t)); r >= 0) {
                throw FormatError(path + ": tensor " + quote_name(t.name) + ": row " + std::to_string(r) +
                                  " has a scale that is not finite; the file is corrupt (bitttt inspect --verify "
                                  "checks it)");
            }
        }
        if (t.encoding != Encoding::Int8) continue;
        // The per-row binary32 scales follow the values (docs/FORMAT.md); the data may not be 4-aligned.
        const std::uint8_t* s = f.data(t) + static_cast<std::size_t>(t.int8.rows) * static_cast<std::size_t>(t.int8.cols);
        std::vector<float> scales(static_cast<std::size_t>(t.int8.rows));
        std::memcpy(scales.data(), s, scales.size() * sizeof(float));
        finite(t, scales.data(), scales.size(), "row scale");
    }

    const std::int64_t h = cfg_.hidden_size;
    const BttTensor& emb = need("model.embed_tokens.weight", {cfg_.vocab_size, h});
    embed_ = Embedding{emb.encoding, f.data(emb), emb.layout, k_for(emb), h, emb.int8};
    build_layers(norm, linear);
    final_norm_ = norm("model.norm.weight");
    lm_head_ = cfg_.tie_word_embeddings ? linear("model.embed_tokens.weight", cfg_.vocab_size, h)
                                        : linear("lm_head.weight", cfg_.vocab_size, h);

    description_ = std::filesystem::path(path).filename().string() + ": " + describe_ternary(f.tensors(), bases_);
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
    resolve_ctx(opt);
    if (opt.before_weights) opt.before_weights(cfg_, tokenizer_, ctx_);
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
    embed_ = Embedding{Encoding::F32, reinterpret_cast<const std::uint8_t*>(emb), {}, 0, h, {}};
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

void LlamaModel::resolve_ctx(const LoadOptions& opt) {
    const std::int64_t max_ctx = default_ctx(cfg_, opt.kv_cache);
    if (opt.ctx < 0) throw UsageError("--ctx must be positive");
    if (opt.ctx > cfg_.max_position_embeddings) {
        throw UsageError("--ctx " + std::to_string(opt.ctx) + " is more than the model's max_position_embeddings (" +
                         std::to_string(cfg_.max_position_embeddings) + ")");
    }
    ctx_ = static_cast<int>(opt.ctx > 0 ? opt.ctx : max_ctx);
}

void LlamaModel::finish_setup(const LoadOptions& opt) {
    if (opt.batch < 0) throw UsageError("--batch must be positive");
    batch_ = opt.batch > 0 ? opt.batch : 32;
    kv_type_ = opt.kv_cache;
    rope_ = std::make_unique<Rope>(cfg_);
    if (!pool_) pool_ = std::make_unique<ThreadPool>(opt.threads > 0 ? opt.threads : physical_cores());

    const std::size_t h = static_cast<std::size_t>(cfg_.hidden_size);
    const std::size_t hd = static_cast<std::size_t>(cfg_.head_dim);
    const std::size_t qd = static_cast<std::size_t>(cfg_.num_attention_heads) * hd;
    const std::size_t kvd = static_cast<std::size_t>(cfg_.num_key_value_heads) * hd;
    const std::size_t ff = static_cast<std::size_t>(cfg_.intermediate_size);
    const std::size_t mb = static_cast<std::size_t>(batch_);
    x_.assign(mb * h, 0.0f);
    xb_.assign(mb * h, 0.0f);
    xb2_.assign(mb * h, 0.0f);
    q_.assign(mb * qd, 0.0f);
    k_.assign(mb * kvd, 0.0f);
    v_.assign(mb * kvd, 0.0f);
    att_out_.assign(mb * qd, 0.0f);
    hb_.assign(mb * ff, 0.0f);
    hb2_.assign(mb * ff, 0.0f);
    logits_.assign(static_cast<std::size_t>(cfg_.vocab_size), 0.0f);
    const std::size_t cache = kv_cache_elements();
    if (kv_type_ == KvCacheType::F16) {
        key_cache16_.reset(new std::uint16_t[cache]);
        value_cache16_.reset(new std::uint16_t[cache]);
    } else {
        key_cache_.reset(new float[cache]);
        value_cache_.reset(new float[cache]);
    }
}

// ---- the forward pass ----------------------------------------------------------------------

const float* LlamaModel::forward_batch(const std::int32_t* tokens, int n, int pos, float* all_logits) {
    if (n <= 0) throw UsageError("forward_batch needs at least one token");
    for (int i = 0; i < n; ++i) {
        if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size) {
            throw UsageError("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                             std::to_string(cfg_.vocab_size - 1) + ")");
        }
    }
    if (pos < 0 || pos + static_cast<std::int64_t>(n) > ctx_) {
        throw UsageError("position " + std::to_string(pos + n - 1) + " is outside the context of " +
                         std::to_string(ctx_) + " tokens (raise --ctx)");
    }
    const std::size_t vocab = static_cast<std::size_t>(cfg_.vocab_size);
    for (int i0 = 0; i0 < n; i0 += batch_) {
        const int m = std::min(batch_, n - i0);
        step(tokens + i0, m, pos + i0, all_logits ? all_logits + static_cast<std::size_t>(i0) * vocab : nullptr);
    }
    return logits_.data();
}

void LlamaModel::step(const std::int32_t* tokens, int m, int pos, float* all_logits) {
    const std::int64_t h = cfg_.hidden_size, hd = cfg_.head_dim, ff = cfg_.intermediate_size;
    const std::int64_t n_heads = cfg_.num_attention_heads, n_kv = cfg_.num_key_value_heads;
    const std::int64_t qd = n_heads * hd, kvd = n_kv * hd, group = n_heads / n_kv;
    const float eps = static_cast<float>(cfg_.rms_norm_eps);
    const float att_scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ThreadPool& pool = *pool_;
    OpTimer timer(profiling_, op_seconds_);
    if (profiling_) ++profiled_steps_;

    for (int i = 0; i < m; ++i) embed_.row(tokens[i], x_.data() + i * h);
    timer.lap(kOpEmbed);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const Layer& L = layers_[l];
        // This layer's cache rows: [ctx, kvd] from offset layer_at.
        const std::size_t layer_at = (l * static_cast<std::size_t>(ctx_)) * static_cast<std::size_t>(kvd);
        const bool f16 = kv_type_ == KvCacheType::F16;

        // Attention. q/k/v share one prepared input.
        for (int i = 0; i < m; ++i) kernels::rmsnorm(x_.data() + i * h, L.attn_norm, h, eps, xb_.data() + i * h);
        timer.lap(kOpNorm);
        in_.set(xb_.data(), m, h);
        forward_group({{L.wq.get(), q_.data()}, {L.wk.get(), k_.data()}, {L.wv.get(), v_.data()}}, in_, pool);
        timer.lap(kOpQkv);
        for (int i = 0; i < m; ++i) {
            rope_->apply(q_.data() + i * qd, n_heads, pos + i);
            rope_->apply(k_.data() + i * kvd, n_kv, pos + i);
        }
        const std::size_t at = layer_at + static_cast<std::size_t>(pos) * static_cast<std::size_t>(kvd);
        if (f16) {
            kernels::f32_to_f16_row(k_.data(), m * kvd, key_cache16_.get() + at);
            kernels::f32_to_f16_row(v_.data(), m * kvd, value_cache16_.get() + at);
        } else {
            std::copy(k_.begin(), k_.begin() + m * kvd, key_cache_.get() + at);
            std::copy(v_.begin(), v_.begin() + m * kvd, value_cache_.get() + at);
        }
        timer.lap(kOpRope);
        // (token, head) pairs in parallel once the cache is long enough to be worth a hand-off.
        const std::int64_t items = m * n_heads;
        const std::int64_t work = static_cast<std::int64_t>(pos + m) * hd * items;
        pool.parallel_for(items, work < 16384 ? items : 1, [&](std::int64_t w0, std::int64_t w1) {
            thread_local std::vector<float> scores;
            scores.resize(static_cast<std::size_t>(ctx_));
            for (std::int64_t w = w0; w < w1; ++w) {
                const std::int64_t i = w / n_heads, head = w % n_heads;
                const int p = pos + static_cast<int>(i);  // this token attends to [0, p]
                const float* qh = q_.data() + i * qd + head * hd;
                const std::int64_t kvh = head / group;  // grouped-query attention
                const std::size_t kv_at = layer_at + static_cast<std::size_t>(kvh * hd);
                float* out = att_out_.data() + i * qd + head * hd;
                if (f16) {
                    kernels::attention_f16(qh, key_cache16_.get() + kv_at, value_cache16_.get() + kv_at, p + 1, kvd, hd,
                                           att_scale, scores.data(), out);
                } else {
                    kernels::attention(qh, key_cache_.get() + kv_at, value_cache_.get() + kv_at, p + 1, kvd, hd,
                                       att_scale, scores.data(), out);
                }
            }
        });
        timer.lap(kOpAttention);
        in_.set(att_out_.data(), m, qd);
        L.wo->forward(in_, xb2_.data(), pool);
        for (std::int64_t i = 0; i < m * h; ++i) x_[i] += xb2_[i];
        timer.lap(kOpWo);

        // SwiGLU MLP. gate/up share one prepared input.
        for (int i = 0; i < m; ++i) kernels::rmsnorm(x_.data() + i * h, L.ffn_norm, h, eps, xb_.data() + i * h);
        timer.lap(kOpNorm);
        in_.set(xb_.data(), m, h);
        forward_group({{L.w_gate.get(), hb_.data()}, {L.w_up.get(), hb2_.data()}}, in_, pool);
        timer.lap(kOpGateUp);
        for (int i = 0; i < m; ++i) kernels::swiglu(hb_.data() + i * ff, hb2_.data() + i * ff, ff, hb_.data() + i * ff);
        timer.lap(kOpSwiglu);
        in_.set(hb_.data(), m, ff);
        L.w_down->forward(in_, xb2_.data(), pool);
        for (std::int64_t i = 0; i < m * h; ++i) x_[i] += xb2_[i];
        timer.lap(kOpDown);
    }
    // The output layer: every token's logits when asked for, else only the last one's.
    const int first = all_logits ? 0 : m - 1;
    for (int i = first; i < m; ++i) kernels::rmsnorm(x_.data() + i * h, final_norm_, h, eps, x_.data() + i * h);
    timer.lap(kOpNorm);
    const std::size_t vocab = static_cast<std::size_t>(cfg_.vocab_size);
    if (all_logits) {
        in_.set(x_.data(), m, h);
        lm_head_->forward(in_, all_logits, pool);
        std::copy(all_logits + (m - 1) * vocab, all_logits + m * vocab, logits_.begin());
    } else {
        in_.set(x_.data() + (m - 1) * h, 1, h);
        lm_head_->forward(in_, logits_.data(), pool);
    }
    timer.lap(kOpLmHead);
}

}  // namespace

const char* kv_cache_type_name(KvCacheType t) { return t == KvCacheType::F16 ? "f16" : "f32"; }

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

int default_ctx(const LlamaConfig& cfg, KvCacheType kv) {
    // Bytes of keys and values per position, every layer.
    const std::int64_t per_pos = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim *
                                 (kv == KvCacheType::F16 ? 2 : 4);
    const std::int64_t fits = kDefaultKvCacheBytes / std::max<std::int64_t>(per_pos, 1) / 256 * 256;
    return static_cast<int>(std::min<std::int64_t>({cfg.max_position_embeddings, 4096, std::max<std::int64_t>(fits, 256)}));
}

}  // namespace bitttt
