// `bitttt calibrate`: the unquantised model run over calibration text one decoder layer
// at a time, gathering E[x^2] and X^T X / tokens of every linear-layer input.
//
// Memory stays bounded whatever the model's size: the hidden states of all calibration
// tokens ([tokens, hidden] F32), one layer's weights as F32 (converted from the mapped
// checkpoint, whose pages are released after reading), and that layer's accumulators.
// Each layer's statistics are streamed to the output file as soon as the layer is done.
#include "bitttt/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bitttt/calibration.h"
#include "bitttt/error.h"
#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"
#include "convert/calibrate_gemm.h"
#include "convert/calibrate_internal.h"
#include "kernels/ops.h"
#include "model/rope.h"
#include "util/sysinfo.h"

namespace bitttt {

namespace calib {

namespace {

// Output features per piece of a projection: fixed, so results do not depend on threads.
constexpr std::int64_t kOutPiece = 128;
// Tokens per block of the MLP (and the least per block of attention, in whole chunks).
constexpr std::int64_t kBlockTokens = 256;

std::size_t sz(std::int64_t v) { return static_cast<std::size_t>(v); }

// As the engine's RMSNorm: sum of squares in double, the scale rounded to float.
void rmsnorm_rows(const float* x, std::int64_t rows, std::int64_t n, const float* w, float eps, float* out) {
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* o = out + r * n;
        double ss = 0.0;
        for (std::int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        for (std::int64_t i = 0; i < n; ++i) o[i] = xr[i] * inv * w[i];
    }
}

}  // namespace

void matmul_wt(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t out, float* y,
               ThreadPool& pool) {
    const GemmOps& ops = gemm_ops();
    const std::int64_t pieces = (out + kOutPiece - 1) / kOutPiece;
    pool.parallel_for(pieces, 1, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p) {
            const std::int64_t o0 = p * kOutPiece, len = std::min(kOutPiece, out - o0);
            ops.matmul_wt(x, rows, in, w + o0 * in, len, y + o0, out);
        }
    });
}

// ---- statistics -------------------------------------------------------------------------------

InputStats::InputStats(std::int64_t n, bool full) : n_(n), full_(full), sum_sq_(sz(n), 0.0) {
    if (!full_) return;
    for (std::int64_t r0 = 0; r0 < n_; r0 += kPanel) {
        const std::int64_t rows = std::min(kPanel, n_ - r0);
        panels_.emplace_back(sz(rows * (n_ - r0)), 0.0);
    }
}

void InputStats::add(const float* x, std::int64_t rows, ThreadPool& pool) {
    if (rows <= 0) return;
    constexpr std::int64_t kChannels = 256;
    pool.parallel_for((n_ + kChannels - 1) / kChannels, 1, [&](std::int64_t c0, std::int64_t c1) {
        for (std::int64_t c = c0; c < c1; ++c) {
            const std::int64_t i0 = c * kChannels, i1 = std::min(n_, i0 + kChannels);
            for (std::int64_t r = 0; r < rows; ++r) {
                const float* xr = x + r * n_;
                for (std::int64_t i = i0; i < i1; ++i) sum_sq_[sz(i)] += static_cast<double>(xr[i]) * xr[i];
            }
        }
    });
    if (full_) {
        const GemmOps& ops = gemm_ops();
        pool.parallel_for(static_cast<std::int64_t>(panels_.size()), 1, [&](std::int64_t p0, std::int64_t p1) {
            for (std::int64_t p = p0; p < p1; ++p) {
                const std::int64_t r0 = p * kPanel;
                ops.xtx_panel(x, rows, n_, r0, std::min(kPanel, n_ - r0), panels_[sz(p)].data());
            }
        });
    }
    count_ += rows;
}

std::vector<float> InputStats::mean_sq() const {
    std::vector<float> out(sz(n_), 0.0f);
    if (count_ == 0) return out;
    for (std::int64_t i = 0; i < n_; ++i) out[sz(i)] = static_cast<float>(sum_sq_[sz(i)] / static_cast<double>(count_));
    return out;
}

void InputStats::packed_xtx(const std::function<void(const float*, std::size_t)>& sink) const {
    if (!full_) return;
    const double inv = count_ > 0 ? 1.0 / static_cast<double>(count_) : 0.0;
    std::vector<float> buf;
    for (std::size_t p = 0; p < panels_.size(); ++p) {
        const std::int64_t r0 = static_cast<std::int64_t>(p) * kPanel, pr = std::min(kPanel, n_ - r0), cols = n_ - r0;
        buf.clear();
        for (std::int64_t r = 0; r < pr; ++r) {
            const std::int64_t i = r0 + r;
            const double* row = panels_[p].data() + r * cols;
            buf.push_back(static_cast<float>(sum_sq_[sz(i)] * inv));  // the diagonal, summed in double
            for (std::int64_t j = i + 1; j < n_; ++j) buf.push_back(static_cast<float>(row[j - r0] * inv));
        }
        sink(buf.data(), buf.size());
    }
}

// ---- the layer-by-layer forward pass ------------------------------------------------------------

LayerRunner::LayerRunner(const Checkpoint& ckpt, const LlamaConfig& config, std::vector<std::int32_t> tokens, int ctx,
                         ThreadPool& pool)
    : ckpt_(ckpt), cfg_(config), tokens_(std::move(tokens)), ctx_(ctx), pool_(pool) {
    if (ctx_ <= 0 || tokens_.empty() || tokens_.size() % sz(ctx_) != 0)
        throw UsageError("calibration needs whole chunks of ctx tokens");
    const std::int64_t h = cfg_.hidden_size;
    const Checkpoint::Entry* emb = ckpt_.find("model.embed_tokens.weight");
    if (!emb) throw FormatError(ckpt_.source() + ": tensor 'model.embed_tokens.weight' is missing");
    x_.resize(tokens_.size() * sz(h));
    for (std::size_t t = 0; t < tokens_.size(); ++t) {
        const std::int32_t id = tokens_[t];
        if (id < 0 || id >= cfg_.vocab_size)
            throw UsageError("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                             std::to_string(cfg_.vocab_size - 1) + ")");
        ckpt_.read_rows_f32(*emb, id, id + 1, x_.data() + t * sz(h));
    }
    ckpt_.release(*emb);

    // RoPE angles per position within a chunk, in float as HF (and the engine) compute them.
    const std::vector<float> inv_freq = rope_inv_freq(cfg_);
    const std::size_t half = inv_freq.size();
    cos_.resize(sz(ctx_) * half);
    sin_.resize(sz(ctx_) * half);
    for (int pos = 0; pos < ctx_; ++pos) {
        for (std::size_t i = 0; i < half; ++i) {
            const float angle = static_cast<float>(pos) * inv_freq[i];
            cos_[sz(pos) * half + i] = std::cos(angle);
            sin_[sz(pos) * half + i] = std::sin(angle);
        }
    }
}

void LayerRunner::run_layer(std::int64_t layer, InputStats* stats) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    auto load = [&](const std::string& name) {
        const Checkpoint::Entry* e = ckpt_.find(p + name);
        if (!e) throw FormatError(ckpt_.source() + ": tensor '" + p + name + "' is missing");
        std::vector<float> v = ckpt_.read_f32(*e);
        ckpt_.release(*e);
        return v;
    };
    const std::int64_t T = tokens();
    // Attention, a few whole chunks at a time; its weights are freed before the MLP's are read.
    {
        const std::vector<float> norm = load("input_layernorm.weight");
        const std::vector<float> wq = load("self_attn.q_proj.weight"), wk = load("self_attn.k_proj.weight"),
                                 wv = load("self_attn.v_proj.weight"), wo = load("self_attn.o_proj.weight");
        const std::int64_t per = std::max<std::int64_t>(1, kBlockTokens / ctx_) * ctx_;
        for (std::int64_t t0 = 0; t0 < T; t0 += per)
            attention_block(t0, std::min(per, T - t0), norm.data(), wq.data(), wk.data(), wv.data(), wo.data(), stats);
    }
    {
        const std::vector<float> norm = load("post_attention_layernorm.weight");
        const std::vector<float> wg = load("mlp.gate_proj.weight"), wu = load("mlp.up_proj.weight"),
                                 wd = load("mlp.down_proj.weight");
        for (std::int64_t t0 = 0; t0 < T; t0 += kBlockTokens)
            mlp_block(t0, std::min(kBlockTokens, T - t0), norm.data(), wg.data(), wu.data(), wd.data(),
                      stats ? stats + 2 : nullptr);
    }
}

void LayerRunner::attention_block(std::int64_t t0, std::int64_t nt, const float* norm, const float* wq,
                                  const float* wk, const float* wv, const float* wo, InputStats* stats) {
    const std::int64_t h = cfg_.hidden_size, hd = cfg_.head_dim, n_heads = cfg_.num_attention_heads,
                       n_kv = cfg_.num_key_value_heads;
    const std::int64_t qd = n_heads * hd, kvd = n_kv * hd, group = n_heads / n_kv, half = hd / 2;
    float* x = x_.data() + t0 * h;

    std::vector<float> xn(sz(nt * h));
    rmsnorm_rows(x, nt, h, norm, static_cast<float>(cfg_.rms_norm_eps), xn.data());
    if (stats) stats[0].add(xn.data(), nt, pool_);
    std::vector<float> q(sz(nt * qd)), k(sz(nt * kvd)), v(sz(nt * kvd));
    matmul_wt(xn.data(), nt, h, wq, qd, q.data(), pool_);
    matmul_wt(xn.data(), nt, h, wk, kvd, k.data(), pool_);
    matmul_wt(xn.data(), nt, h, wv, kvd, v.data(), pool_);

    // RoPE ("rotate_half" pairs i and i + head_dim/2), position = index within the chunk:
    // the engine's scalar reference rotation.
    auto rotate = [&](float* vec, std::int64_t heads, std::int64_t pos) {
        kernels::scalar::rope(vec, heads, hd, cos_.data() + pos * half, sin_.data() + pos * half);
    };
    for (std::int64_t t = 0; t < nt; ++t) {
        const std::int64_t pos = (t0 + t) % ctx_;
        rotate(q.data() + t * qd, n_heads, pos);
        rotate(k.data() + t * kvd, n_kv, pos);
    }

    // Causal attention within each chunk, one (chunk, head) pair per piece of work.
    std::vector<float> att(sz(nt * qd));
    const std::int64_t chunks = nt / ctx_, C = ctx_;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const GemmOps& ops = gemm_ops();
    pool_.parallel_for(chunks * n_heads, 1, [&](std::int64_t w0, std::int64_t w1) {
        std::vector<float> scores(sz(C * C));
        for (std::int64_t w = w0; w < w1; ++w) {
            const std::int64_t c = w / n_heads, head = w % n_heads, kvh = head / group;  // grouped-query attention
            ops.attention(q.data() + c * C * qd + head * hd, qd, k.data() + c * C * kvd + kvh * hd,
                          v.data() + c * C * kvd + kvh * hd, kvd, C, hd, scale, att.data() + c * C * qd + head * hd,
                          qd, scores.data());
        }
    });
    if (stats) stats[1].add(att.data(), nt, pool_);
    std::vector<float> y(sz(nt * h));
    matmul_wt(att.data(), nt, qd, wo, h, y.data(), pool_);
    for (std::int64_t i = 0; i < nt * h; ++i) x[i] += y[sz(i)];
}

void LayerRunner::mlp_block(std::int64_t t0, std::int64_t nt, const float* norm, const float* wg, const float* wu,
                            const float* wd, InputStats* stats) {
    const std::int64_t h = cfg_.hidden_size, ff = cfg_.intermediate_size;
    float* x = x_.data() + t0 * h;
    std::vector<float> xn(sz(nt * h));
    rmsnorm_rows(x, nt, h, norm, static_cast<float>(cfg_.rms_norm_eps), xn.data());
    if (stats) stats[0].add(xn.data(), nt, pool_);
    std::vector<float> g(sz(nt * ff)), u(sz(nt * ff));
    matmul_wt(xn.data(), nt, h, wg, ff, g.data(), pool_);
    matmul_wt(xn.data(), nt, h, wu, ff, u.data(), pool_);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];  // SwiGLU
    u = {};
    if (stats) stats[1].add(g.data(), nt, pool_);
    std::vector<float> y(sz(nt * h));
    matmul_wt(g.data(), nt, ff, wd, h, y.data(), pool_);
    for (std::int64_t i = 0; i < nt * h; ++i) x[i] += y[sz(i)];
}

}  // namespace calib

// ---- the command's driver -------------------------------------------------------------------

std::vector<std::int32_t> calibration_tokens(const std::vector<std::int32_t>& text_tokens, int ctx, int chunks,
                                             std::int32_t bos) {
    if (ctx < 2) throw UsageError("--ctx must be at least 2 for calibration");
    if (chunks < 1) throw UsageError("--chunks must be at least 1");
    const std::size_t need = static_cast<std::size_t>(ctx) * static_cast<std::size_t>(chunks);
    if (text_tokens.size() < need) {
        throw UsageError("the text has " + std::to_string(text_tokens.size()) + " tokens, " +
                         std::to_string(text_tokens.size() / static_cast<std::size_t>(ctx)) + " chunks of " +
                         std::to_string(ctx) + "; --chunks " + std::to_string(chunks) + " needs " +
                         std::to_string(need) + " tokens (give more text, or lower --chunks or --ctx)");
    }
    std::vector<std::int32_t> out(text_tokens.begin(), text_tokens.begin() + static_cast<std::ptrdiff_t>(need));
    if (bos >= 0) {
        for (std::size_t c = 0; c < static_cast<std::size_t>(chunks); ++c) out[c * static_cast<std::size_t>(ctx)] = bos;
    }
    return out;
}

namespace {
std::size_t idx(int v) { return static_cast<std::size_t>(v); }
}  // namespace

CalibrateReport calibrate(const std::string& model_path, const std::vector<std::int32_t>& tokens,
                          const std::string& output, const CalibrateOptions& o) {
    const auto start = std::chrono::steady_clock::now();
    if (o.ctx < 2) throw UsageError("--ctx must be at least 2 for calibration");
    if (o.chunks < 1) throw UsageError("--chunks must be at least 1");
    if (tokens.size() != static_cast<std::size_t>(o.ctx) * static_cast<std::size_t>(o.chunks))
        throw UsageError("calibrate: " + std::to_string(tokens.size()) + " tokens given for " +
                         std::to_string(o.chunks) + " chunks of " + std::to_string(o.ctx));
    const Checkpoint ckpt = Checkpoint::open(model_path);
    if (!ckpt.config_path())
        throw UsageError(model_path + ": no config.json next to the weights; calibration needs the model folder");
    const LlamaConfig cfg = LlamaConfig::load(*ckpt.config_path());
    validate_checkpoint(cfg, ckpt, *ckpt.config_path());
    if (o.ctx > cfg.max_position_embeddings)
        throw UsageError("--ctx " + std::to_string(o.ctx) + " is more than the model's max_position_embeddings (" +
                         std::to_string(cfg.max_position_embeddings) + ")");

    const std::int64_t h = cfg.hidden_size, ff = cfg.intermediate_size,
                       qd = cfg.num_attention_heads * cfg.head_dim;
    const std::int64_t widths[4] = {h, qd, h, ff};  // qkv, o_proj, gate_up, down_proj

    CalibrateReport r;
    r.output = output;
    r.model = model_path;
    r.tokens = static_cast<std::int64_t>(tokens.size());
    r.chunks = o.chunks;
    r.ctx = o.ctx;
    r.layers = static_cast<int>(cfg.num_hidden_layers);
    r.full = o.full;

    std::vector<SafetensorsStreamWriter::Spec> specs;
    for (std::int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        const std::vector<std::string> keys = calibration_layer_keys(l);
        for (int k = 0; k < 4; ++k) {
            r.keys.push_back(keys[idx(k)]);
            specs.push_back(SafetensorsStreamWriter::Spec{keys[idx(k)] + ".mean_sq", DType::F32, {widths[k]}});
            if (o.full)
                specs.push_back(SafetensorsStreamWriter::Spec{keys[idx(k)] + ".xtx", DType::F32,
                                                              {widths[k] * (widths[k] + 1) / 2}});
        }
    }
    const std::map<std::string, std::string> metadata = {
        {"format", kCalibrationFormat},
        {"version", kCalibrationVersion},
        {"tokens", std::to_string(r.tokens)},
        {"chunks", std::to_string(o.chunks)},
        {"ctx", std::to_string(o.ctx)},
        {"text", o.text},
        {"model", model_path},
        {"stats", o.full ? "full" : "diag"},
    };
    SafetensorsStreamWriter writer(output, std::move(specs), metadata);
    ThreadPool pool(o.threads > 0 ? o.threads : physical_cores());
    calib::LayerRunner runner(ckpt, cfg, tokens, o.ctx, pool);
    auto since = [](std::chrono::steady_clock::time_point t) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    r.setup_seconds = since(start);
    for (std::int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
        const auto layer_start = std::chrono::steady_clock::now();
        std::vector<calib::InputStats> stats;
        stats.reserve(4);
        for (int k = 0; k < 4; ++k) stats.emplace_back(widths[k], o.full);
        runner.run_layer(l, stats.data());
        const std::vector<std::string> keys = calibration_layer_keys(l);
        for (int k = 0; k < 4; ++k) {
            const calib::InputStats& s = stats[idx(k)];
            const std::vector<float> m = s.mean_sq();
            for (const float v : m) {
                if (!std::isfinite(v))
                    throw FormatError(model_path + ": the input of " + keys[idx(k)] +
                                      " is not finite (the model's activations overflow float32 on this text)");
            }
            writer.append(keys[idx(k)] + ".mean_sq", m.data(), m.size() * sizeof(float));
            s.packed_xtx([&](const float* v, std::size_t n) {
                writer.append(keys[idx(k)] + ".xtx", v, n * sizeof(float));
            });
        }
        r.layer_seconds.push_back(since(layer_start));
        if (o.on_layer) o.on_layer(static_cast<int>(l + 1), r.layers);
    }
    writer.finish();
    r.size_bytes = writer.file_size();
    r.seconds = since(start);
    r.peak_rss_bytes = peak_rss_bytes();
    return r;
}

}  // namespace bitttt
