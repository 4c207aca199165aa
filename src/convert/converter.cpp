#include "bitttt/converter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <set>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/file_io.h"
#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"
#include "convert/budget.h"
#include "convert/calibrated_fit.h"
#include "util/progress.h"
#include "util/sysinfo.h"
#include "util/thread_pool.h"

namespace bitttt {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Output is produced and written in slabs of rows of about this many bytes, so memory
// stays bounded whatever the tensor's size.
constexpr std::size_t kSlabBytes = std::size_t{32} << 20;
// Rows handed to a thread at a time: about this many weights.
constexpr std::int64_t kChunkWeights = std::int64_t{1} << 16;
// --target-bpw estimates each tensor's error per N from this many rows.
constexpr std::int64_t kBudgetSampleRows = 64;
// Rows quantised together with error feedback (fixed, so results do not depend on threads).
constexpr std::int64_t kFeedbackRows = 64;

// One tensor to write, and how.
struct Plan {
    const Checkpoint::Entry* entry;
    Encoding encoding;
    bool linear = false;  // a linear layer (what --target-bpw budgets)
    int bases = 0;        // ternary: N of this tensor
};

std::int64_t rows_of(const TensorInfo& t) { return t.shape.size() >= 2 ? t.shape[0] : 1; }
std::int64_t cols_of(const TensorInfo& t) {
    std::int64_t rows = rows_of(t);
    return rows ? t.numel() / rows : 0;
}

// Checks that the checkpoint has every tensor config.json implies, with that shape and a
// dtype we can read, and decides how each is stored.
std::vector<Plan> plan_model(const Checkpoint& ckpt, const LlamaConfig& cfg, const std::string& config_path,
                             const OutputEncodings& out, std::vector<std::string>& skipped) {
    validate_checkpoint(cfg, ckpt, config_path);
    std::vector<Plan> plans;
    for (const auto& e : ckpt.tensors()) {
        const std::string& name = e.info->name;
        switch (tensor_role(name)) {
            case TensorRole::Linear: plans.push_back({&e, Encoding::Ternary, true}); break;
            case TensorRole::Norm: plans.push_back({&e, Encoding::F32}); break;
            case TensorRole::Embedding:
                plans.push_back({&e, out.embeddings});
                break;
            case TensorRole::LmHead:
                if (cfg.tie_word_embeddings) {
                    skipped.push_back(name + ": tie_word_embeddings is true, the embedding is used instead");
                } else {
                    plans.push_back({&e, out.lm_head});
                }
                break;
            case TensorRole::Other:
                skipped.push_back(name + ": not part of the Llama model bitttt runs");
                break;
        }
    }
    // Layers whose index is past num_hidden_layers have a Linear/Norm role but are not
    // required: drop them too.
    std::set<std::string> required;
    for (const auto& [name, shape] : cfg.required_tensors()) required.insert(name);
    std::vector<Plan> kept;
    for (const auto& p : plans) {
        if (required.count(p.entry->info->name)) {
            kept.push_back(p);
        } else {
            skipped.push_back(p.entry->info->name + ": not needed by config.json's model");
        }
    }
    return kept;
}

// No config.json: every 2-D float tensor is decomposed, other float tensors kept as F32.
std::vector<Plan> plan_weights_only(const Checkpoint& ckpt, std::vector<std::string>& skipped) {
    std::vector<Plan> plans;
    for (const auto& e : ckpt.tensors()) {
        if (!dtype_is_float_convertible(e.info->dtype)) {
            skipped.push_back(e.info->name + ": dtype " + std::string(dtype_name(e.info->dtype)) + " is not converted");
        } else if (e.info->shape.size() == 2 && e.info->numel() > 0) {
            plans.push_back({&e, Encoding::Ternary, true});
        } else {
            plans.push_back({&e, Encoding::F32});
        }
    }
    return plans;
}

[[noreturn]] void non_finite(const Checkpoint::Entry& e, std::int64_t row, std::int64_t col, float v) {
    throw FormatError(e.file->path() + ": tensor '" + e.info->name + "': weight [" + std::to_string(row) + ", " +
                      std::to_string(col) + "] is " + (std::isnan(v) ? "NaN" : "infinite") +
                      "; the checkpoint is damaged and cannot be converted");
}

// Converts one tensor, streaming it into the writer slab by slab.
class TensorConverter {
public:
    TensorConverter(const Checkpoint& ckpt, ThreadPool& pool, Progress& progress, const ConvertOptions& opt,
                    CalibrationSource* calibration)
        : ckpt_(ckpt), pool_(pool), progress_(progress), opt_(opt), calibration_(calibration) {}

    void run(const Plan& plan, BttWriter& writer) {
        const Checkpoint::Entry& e = *plan.entry;
        BttTensor t;
        t.name = e.info->name;
        t.shape = e.info->shape;
        t.encoding = plan.encoding;
        const std::int64_t rows = rows_of(*e.info), cols = cols_of(*e.info);
        int n_stats = 0;
        std::size_t row_bytes = 0;
        if (plan.encoding == Encoding::Ternary) {
            t.layout = TernaryLayout{rows, cols, plan.bases, opt_.block_size, opt_.packing, opt_.scales};
            t.method = method_name(opt_.method);
            n_stats = plan.bases;
            row_bytes = t.layout.row_bytes();
        } else if (plan.encoding == Encoding::F16) {
            n_stats = 1;
            row_bytes = static_cast<std::size_t>(cols) * 2;
        } else if (plan.encoding == Encoding::Int8) {
            t.int8 = Int8Layout{rows, cols};
            if (cols > kInt8MaxCols) {
                throw UnsupportedError(e.file->path() + ": tensor '" + t.name + "': rows of " + std::to_string(cols) +
                                       " values are too long for int8 (at most " + std::to_string(kInt8MaxCols) +
                                       "); store it as f16 or ternary");
            }
            n_stats = 1;
            row_bytes = static_cast<std::size_t>(cols);  // the values; the scales follow at the end
        } else {
            row_bytes = static_cast<std::size_t>(cols) * 4;
        }

        std::vector<float> tensor_scales;
        if (plan.encoding == Encoding::Ternary && opt_.method == Method::AbsmeanTensor) {
            tensor_scales = absmean_tensor_scales(e, t.layout);
        }
        // Calibration: column weights for the fits, and error feedback over columns.
        CalibratedFit cal;
        if (plan.encoding == Encoding::Ternary && plan.linear && calibration_) {
            cal = calibration_->for_tensor(t.name, cols);
        }
        fit_.method = opt_.method;
        fit_.refine_rounds = opt_.method == Method::Greedy ? opt_.refine_rounds : 0;
        fit_.col_weights = cal.col_weights.empty() ? nullptr : cal.col_weights.data();
        feedback_ = cal.feedback.get();

        // Per-row statistics, reduced in row order at the end (thread-count independent).
        std::vector<double> row_sq_err(static_cast<std::size_t>(rows) * std::max(n_stats, 1), 0.0);
        std::vector<double> row_sq_norm(static_cast<std::size_t>(rows), 0.0);
        // int8: the per-row scales, written after all the values (4 bytes a row, like the
        // statistics above, so memory stays bounded by the slab).
        std::vector<float> row_scale(plan.encoding == Encoding::Int8 ? static_cast<std::size_t>(rows) : 0);

        writer.begin_tensor(t);
        const std::int64_t slab_rows =
            std::max<std::int64_t>(1, static_cast<std::int64_t>(kSlabBytes / std::max<std::size_t>(row_bytes, 1)));
        // Error feedback quantises a chunk of rows with matrix products: larger chunks. Either
        // way the chunks depend on the shape only, never on the thread count.
        const std::int64_t grain =
            feedback_ ? kFeedbackRows : std::max<std::int64_t>(1, kChunkWeights / std::max<std::int64_t>(cols, 1));
        std::vector<std::uint8_t> slab;
        for (std::int64_t r0 = 0; r0 < rows; r0 += slab_rows) {
            const std::int64_t r1 = std::min(rows, r0 + slab_rows);
            slab.resize(static_cast<std::size_t>(r1 - r0) * row_bytes);
            pool_.parallel_for(r1 - r0, grain, [&](std::int64_t b, std::int64_t end) {
                convert_rows(e, t, tensor_scales.data(), r0 + b, r0 + end, slab.data() + b * row_bytes,
                             row_sq_err.data(), row_sq_norm.data(), row_scale.data());
                progress_.advance(static_cast<std::uint64_t>((end - b) * cols));
            });
            writer.append(slab.data(), slab.size());
            release_rows(e, r0, r1);
        }
        if (plan.encoding == Encoding::Int8) {
            std::vector<std::uint8_t> tail(t.int8.scales_offset() - t.int8.values_bytes() + 4 * row_scale.size(), 0);
            std::uint8_t* p = tail.data() + (t.int8.scales_offset() - t.int8.values_bytes());
            for (float s : row_scale) {
                std::uint32_t u;
                std::memcpy(&u, &s, 4);
                for (int i = 0; i < 4; ++i) *p++ = static_cast<std::uint8_t>(u >> (8 * i));
            }
            writer.append(tail.data(), tail.size());
        }
        BttTensor& done = writer.end_tensor();

        // Reduce the statistics.
        double sq_norm = 0.0;
        for (double v : row_sq_norm) sq_norm += v;
        std::vector<double> sq_err(static_cast<std::size_t>(n_stats), 0.0);
        for (std::int64_t r = 0; r < rows; ++r) {
            for (int k = 0; k < n_stats; ++k) sq_err[k] += row_sq_err[static_cast<std::size_t>(r) * n_stats + k];
        }
        const double numel = static_cast<double>(std::max<std::int64_t>(1, e.info->numel()));
        done.norm = std::sqrt(sq_norm);
        for (int k = 0; k < n_stats; ++k) {
            done.relative_error_by_base.push_back(sq_norm > 0 ? std::sqrt(sq_err[k] / sq_norm) : 0.0);
            done.rmse_by_base.push_back(std::sqrt(sq_err[k] / numel));
        }
        sq_norm_ = sq_norm;
        sq_err_ = sq_err;
    }

    // Statistics of the last tensor run(), for the overall figures.
    double last_sq_norm() const { return sq_norm_; }
    const std::vector<double>& last_sq_err() const { return sq_err_; }

private:
    // Reads rows [b, e) as float into a per-thread buffer and checks they are finite.
    const float* load_rows(const Checkpoint::Entry& e, std::int64_t b, std::int64_t end, std::int64_t cols) {
        thread_local std::vector<float> buf;
        buf.resize(static_cast<std::size_t>((end - b) * cols));
        ckpt_.read_rows_f32(e, b, end, buf.data());
        for (std::size_t i = 0; i < buf.size(); ++i) {
            if (!std::isfinite(buf[i])) {
                non_finite(e, b + static_cast<std::int64_t>(i) / cols, static_cast<std::int64_t>(i) % cols, buf[i]);
            }
        }
        return buf.data();
    }

    void convert_rows(const Checkpoint::Entry& e, const BttTensor& t, const float* tensor_scales, std::int64_t b,
                      std::int64_t end, std::uint8_t* out, double* row_sq_err, double* row_sq_norm,
                      float* row_scale) {
        const std::int64_t cols = cols_of(*e.info);
        const float* w = load_rows(e, b, end, cols);
        thread_local RowScratch scratch;
        if (t.encoding == Encoding::Ternary && feedback_) {
            // All rows of the chunk at once; `work` receives the error-updated values.
            thread_local std::vector<float> work;
            work.assign(w, w + (end - b) * cols);
            for (std::int64_t r = b; r < end; ++r) {
                double norm = 0.0;
                for (std::int64_t c = 0; c < cols; ++c) norm += static_cast<double>(w[(r - b) * cols + c]) * w[(r - b) * cols + c];
                row_sq_norm[r] = norm;
            }
            feedback_->quantize_rows(t.layout, fit_, work.data(), w, end - b, out, row_sq_err + b * t.layout.bases);
            return;
        }
        for (std::int64_t r = b; r < end; ++r, w += cols) {
            double norm = 0.0;
            for (std::int64_t c = 0; c < cols; ++c) norm += static_cast<double>(w[c]) * w[c];
            row_sq_norm[r] = norm;
            switch (t.encoding) {
                case Encoding::Ternary: {
                    decompose_row(w, t.layout, fit_, tensor_scales, out, row_sq_err + r * t.layout.bases, scratch);
                    out += t.layout.row_bytes();
                    break;
                }
                case Encoding::F16: {
                    double err = 0.0;
                    for (std::int64_t c = 0; c < cols; ++c) {
                        std::uint16_t h = f32_to_f16(w[c]);
                        float back = f16_to_f32(h);
                        if (!std::isfinite(back)) {
                            throw FormatError(e.file->path() + ": tensor '" + e.info->name + "': weight [" +
                                              std::to_string(r) + ", " + std::to_string(c) + "] = " +
                                              std::to_string(w[c]) +
                                              " is outside the F16 range; store it as int8 or ternary "
                                              "(--embeddings / --lm-head int8)");
                        }
                        double d = static_cast<double>(w[c]) - back;
                        err += d * d;
                        out[2 * c] = static_cast<std::uint8_t>(h & 0xFF);
                        out[2 * c + 1] = static_cast<std::uint8_t>(h >> 8);
                    }
                    row_sq_err[r] = err;
                    out += cols * 2;
                    break;
                }
                case Encoding::Int8: {
                    // load_rows has rejected non-finite weights, naming the tensor.
                    auto* q = reinterpret_cast<std::int8_t*>(out);
                    const float s = quantize_row_int8(w, cols, q);
                    double err = 0.0;
                    for (std::int64_t c = 0; c < cols; ++c) {
                        // Exactly what a reader reconstructs (dequantize_row_int8).
                        const double d = static_cast<double>(w[c]) - static_cast<double>(static_cast<float>(q[c]) * s);
                        err += d * d;
                    }
                    row_sq_err[r] = err;
                    row_scale[r] = s;
                    out += cols;
                    break;
                }
                case Encoding::F32: {
                    for (std::int64_t c = 0; c < cols; ++c) {
                        std::uint32_t u;
                        std::memcpy(&u, &w[c], 4);
                        for (int i = 0; i < 4; ++i) out[4 * c + i] = static_cast<std::uint8_t>(u >> (8 * i));
                    }
                    out += cols * 4;
                    break;
                }
            }
        }
    }

    // absmean-tensor: the scale of stage k is mean |residual| over the whole tensor after
    // stages 0..k-1, found by one pass over the rows per stage.
    std::vector<float> absmean_tensor_scales(const Checkpoint::Entry& e, const TernaryLayout& layout) {
        const std::int64_t rows = layout.rows, cols = layout.cols;
        const std::int64_t grain = std::max<std::int64_t>(1, kChunkWeights / std::max<std::int64_t>(cols, 1));
        std::vector<float> scales;
        std::vector<double> row_abs(static_cast<std::size_t>(rows));
        for (int k = 0; k < layout.bases; ++k) {
            std::fill(row_abs.begin(), row_abs.end(), 0.0);
            pool_.parallel_for(rows, grain, [&](std::int64_t b, std::int64_t end) {
                const float* w = load_rows(e, b, end, cols);
                thread_local RowScratch scratch;
                for (std::int64_t r = b; r < end; ++r, w += cols) {
                    accumulate_abs_residual(w, layout, scales.data(), k, &row_abs[r], scratch);
                }
            });
            double sum = 0.0;
            for (double v : row_abs) sum += v;
            scales.push_back(round_scale(static_cast<float>(sum / static_cast<double>(rows * cols))));
        }
        return scales;
    }

    void release_rows(const Checkpoint::Entry& e, std::int64_t r0, std::int64_t r1) {
        const std::uint64_t row_bytes = static_cast<std::uint64_t>(cols_of(*e.info)) * dtype_size(e.info->dtype);
        e.file->mapped().release(e.file->data_offset() + e.info->begin + r0 * row_bytes,
                                 static_cast<std::size_t>((r1 - r0) * row_bytes));
    }

    const Checkpoint& ckpt_;
    ThreadPool& pool_;
    Progress& progress_;
    const ConvertOptions& opt_;
    CalibrationSource* calibration_;
    FitOptions fit_;                          // the current tensor's
    const ErrorFeedback* feedback_ = nullptr;  // the current tensor's, if any
    double sq_norm_ = 0.0;
    std::vector<double> sq_err_;
};

// --target-bpw: each linear tensor's error with N = 1..opt.bases, estimated on sampled rows
// (calibration-weighted when there is a calibration file), then allocate_bases picks N.
void choose_bases(const Checkpoint& ckpt, const ConvertOptions& opt, ThreadPool& pool, CalibrationSource* calibration,
                  std::vector<Plan>& plans) {
    std::vector<BudgetTensor> budget;
    std::vector<Plan*> budgeted;
    for (auto& p : plans) {
        if (p.encoding != Encoding::Ternary || !p.linear) continue;
        const TensorInfo& info = *p.entry->info;
        const std::int64_t rows = rows_of(info), cols = cols_of(info);
        BudgetTensor bt;
        bt.name = info.name;
        bt.weights = rows * cols;
        for (int n = 1; n <= opt.bases; ++n) {
            const TernaryLayout layout{rows, cols, n, opt.block_size, opt.packing, opt.scales};
            bt.bytes.push_back(static_cast<double>(layout.total_bytes()));
        }
        CalibratedFit cal;
        if (calibration) cal = calibration->for_tensor(info.name, cols);
        FitOptions fit;
        fit.method = opt.method;
        fit.refine_rounds = opt.method == Method::Greedy ? opt.refine_rounds : 0;
        fit.col_weights = cal.col_weights.empty() ? nullptr : cal.col_weights.data();
        bt.error = estimate_errors(ckpt, *p.entry, rows, cols, opt.bases,
                                   TernaryLayout{rows, cols, 1, opt.block_size, opt.packing, opt.scales}, fit,
                                   kBudgetSampleRows, pool);
        budget.push_back(std::move(bt));
        budgeted.push_back(&p);
    }
    if (budget.empty()) return;
    const std::vector<int> n = allocate_bases(budget, *opt.target_bpw);
    for (std::size_t i = 0; i < n.size(); ++i) budgeted[i]->bases = n[i];
    spdlog::info("--target-bpw {}: linear layers at {:.4f} bits per weight", *opt.target_bpw,
                 budget_bits_per_weight(budget, n));
}

}  // namespace

OutputEncodings resolve_output_encodings(const ConvertOptions& opt, bool tied) {
    for (const auto* choice : {&opt.embeddings, &opt.lm_head}) {
        if (*choice && **choice != Encoding::F16 && **choice != Encoding::Int8 && **choice != Encoding::Ternary) {
            throw UsageError(std::string("the ") + (choice == &opt.embeddings ? "embeddings" : "lm_head") +
                             " can be stored as f16, int8 or ternary, not " + encoding_name(**choice));
        }
    }
    OutputEncodings out;
    if (!tied) {
        out.embeddings = opt.embeddings.value_or(kDefaultEmbeddingEncoding);
        out.lm_head = opt.lm_head.value_or(kDefaultLmHeadEncoding);
        return out;
    }
    if (opt.embeddings && opt.lm_head && *opt.embeddings != *opt.lm_head) {
        throw UsageError(std::string("tie_word_embeddings is true: the embedding table is the output layer and is "
                                     "stored once, so embeddings ") +
                         encoding_name(*opt.embeddings) + " and lm_head " + encoding_name(*opt.lm_head) +
                         " cannot both hold; give one (--lm-head sets the tied table)");
    }
    out.lm_head = opt.lm_head ? *opt.lm_head : opt.embeddings.value_or(kDefaultLmHeadEncoding);
    out.embeddings = out.lm_head;
    return out;
}

std::string default_output_path(const std::string& input, int bases) {
    fs::path p(input);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "folder/" -> "folder"
    std::string name;
    std::string fname = p.filename().string();
    bool generic = fname == "model.safetensors" || fname == "model.safetensors.index.json";
    if (fs::is_directory(p)) {
        name = fname;
    } else if (generic) {
        name = fs::absolute(p).parent_path().filename().string();
    } else {
        name = p.stem().string();
        if (name.size() > 6 && name.ends_with(".index")) name = fs::path(name).stem().string();
    }
    if (name.empty() || name == "." || name == "..") name = "model";
    return name + "-n" + std::to_string(bases) + ".btt";
}

ConvertReport convert(const ConvertOptions& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    if (opt.bases < 1 || opt.bases > 8) {
        throw UsageError("--bases must be between 1 and 8, got " + std::to_string(opt.bases));
    }
    TernaryLayout probe{1, opt.block_size, opt.bases, opt.block_size, opt.packing, opt.scales};
    probe.validate();
    if (opt.refine_rounds < 0) throw UsageError("--refine must be >= 0");
    if (opt.feedback_group < 0) throw UsageError("--feedback-group must be >= 0");
    if (opt.target_bpw && !(*opt.target_bpw > 0.0 && *opt.target_bpw < 64.0)) {
        throw UsageError("--target-bpw must be a number of bits per weight above 0");
    }
    // Refinement applies to the greedy fit only (the absmean rules ignore it); tied scales
    // and calibration need the greedy fit.
    if (opt.method != Method::Greedy && (opt.scales == ScaleMode::Tied || !opt.calibration.empty())) {
        throw UsageError(std::string("--method ") + method_name(opt.method) +
                         " fits one base at a time with its own scales; tied scales and calibration need --method "
                         "greedy (use --scales free with --method " + method_name(opt.method) + ")");
    }

    Checkpoint ckpt = Checkpoint::open(opt.input);
    ConvertReport rep;
    rep.input = opt.input;
    rep.output = opt.output.empty() ? default_output_path(opt.input, opt.bases) : opt.output;
    rep.bases = opt.bases;
    rep.block_size = opt.block_size;
    rep.packing = opt.packing;
    rep.method = opt.method;
    rep.scales = opt.scales;
    rep.refine_rounds = opt.scales == ScaleMode::Free && opt.method == Method::Greedy ? opt.refine_rounds : 0;
    rep.threads = opt.threads > 0 ? opt.threads : physical_cores();
    rep.input_size_bytes = ckpt.total_bytes();

    // Never write over the input.
    std::error_code ec;
    for (const auto& f : ckpt.files()) {
        if (fs::equivalent(f, rep.output, ec)) {
            throw UsageError("output '" + rep.output + "' is the input file '" + f + "'; choose another -o");
        }
    }
    if (fs::is_directory(rep.output, ec)) {
        throw UsageError("output '" + rep.output + "' is a folder; give a file name with -o");
    }

    json header = {
        {"format", "bitttt"},
        {"format_version", kBttVersion},
        {"created_by", "bitttt " + opt.tool_version},
    };
    std::vector<Plan> plans;
    if (ckpt.config_path()) {
        LlamaConfig cfg = LlamaConfig::load(*ckpt.config_path());
        header["model"] = cfg.to_json();
        rep.encodings = resolve_output_encodings(opt, cfg.tie_word_embeddings);
        plans = plan_model(ckpt, cfg, *ckpt.config_path(), rep.encodings, rep.skipped);
        if (ckpt.tokenizer_path()) {
            header["tokenizer"] = read_json_file(*ckpt.tokenizer_path());
        } else {
            header["tokenizer"] = nullptr;
            spdlog::warn("no tokenizer.json next to {}: the .btt will need one to run", *ckpt.config_path());
        }
    } else {
        rep.weights_only = true;
        header["model"] = nullptr;
        header["tokenizer"] = nullptr;
        plans = plan_weights_only(ckpt, rep.skipped);
        spdlog::info("no config.json next to the weights: writing a weights-only .btt (inspectable, not runnable)");
    }
    for (const auto& s : rep.skipped) spdlog::info("skipping {}", s);
    if (plans.empty()) throw FormatError(ckpt.source() + ": no tensors to convert");

    json sources = json::array();
    for (const auto& f : ckpt.files()) sources.push_back(fs::path(f).filename().string());
    header["conversion"] = {
        {"method", method_name(opt.method)},
        {"bases", opt.bases},
        {"block_size", opt.block_size},
        {"packing", packing_name(opt.packing)},
        {"scales", scale_mode_name(opt.scales)},
        {"refine_rounds", rep.refine_rounds},
        // Null for a weights-only file (no embedding or output layer is known there).
        {"embeddings", rep.weights_only ? json(nullptr) : json(encoding_name(rep.encodings.embeddings))},
        {"lm_head", rep.weights_only ? json(nullptr) : json(encoding_name(rep.encodings.lm_head))},
        {"source_files", sources},
    };

    std::uint64_t total_weights = 0;
    for (auto& p : plans) {
        total_weights += static_cast<std::uint64_t>(p.entry->info->numel());
        p.bases = opt.bases;
    }

    ThreadPool pool(rep.threads);
    std::unique_ptr<CalibrationSource> calibration;
    if (!opt.calibration.empty()) {
        // Groups hold whole blocks: rounded up to a multiple of the block size.
        const std::int64_t group = (opt.feedback_group + opt.block_size - 1) / opt.block_size * opt.block_size;
        calibration = std::make_unique<CalibrationSource>(opt.calibration, opt.damp, opt.error_feedback, group);
        rep.calibration = opt.calibration;
        rep.error_feedback = opt.error_feedback;
        header["conversion"]["calibration"] = {{"file", fs::path(opt.calibration).filename().string()},
                                               {"tokens", calibration->tokens()},
                                               {"error_feedback", opt.error_feedback},
                                               {"feedback_group", (opt.feedback_group + opt.block_size - 1) /
                                                                      opt.block_size * opt.block_size},
                                               {"damp", opt.damp}};
    }
    if (opt.target_bpw) {
        rep.target_bpw = *opt.target_bpw;
        choose_bases(ckpt, opt, pool, calibration.get(), plans);
        header["conversion"]["target_bpw"] = *opt.target_bpw;
    }

    BttWriter writer(rep.output, header, plans.size());
    Progress progress(opt.progress, total_weights, "weights");
    TensorConverter conv(ckpt, pool, progress, opt, calibration.get());

    double sq_norm_all = 0.0;
    std::vector<double> sq_err_all(static_cast<std::size_t>(opt.bases), 0.0);
    for (const auto& p : plans) {
        progress.set_item(p.entry->info->name);
        conv.run(p, writer);
        const std::int64_t n = p.entry->info->numel();
        rep.parameters += n;
        if (p.encoding == Encoding::Ternary) {
            rep.ternary_parameters += n;
            rep.ternary_bytes += writer.tensors().back().size;
            if (p.linear) {
                rep.linear_parameters += n;
                rep.linear_bytes += writer.tensors().back().size;
            }
            sq_norm_all += conv.last_sq_norm();
            // With mixed N, a tensor's error after k > N_t bases is its error with all N_t.
            const auto& e = conv.last_sq_err();
            for (int k = 0; k < opt.bases; ++k) sq_err_all[k] += e[static_cast<std::size_t>(std::min<int>(k, static_cast<int>(e.size()) - 1))];
        }
    }
    progress.finish();
    rep.size_bytes = writer.finish();
    rep.tensors = writer.tensors();
    rep.f16_size_bytes = static_cast<std::uint64_t>(rep.parameters) * 2;
    rep.file_bits_per_weight =
        rep.parameters ? 8.0 * static_cast<double>(rep.size_bytes) / static_cast<double>(rep.parameters) : 0;
    rep.linear_bits_per_weight =
        rep.linear_parameters ? 8.0 * static_cast<double>(rep.linear_bytes) / static_cast<double>(rep.linear_parameters) : 0;
    rep.bits_per_weight = rep.ternary_parameters ? 8.0 * static_cast<double>(rep.ternary_bytes) /
                                                       static_cast<double>(rep.ternary_parameters)
                                                 : 0;
    for (int k = 0; k < opt.bases; ++k) {
        rep.relative_error_by_base.push_back(sq_norm_all > 0 ? std::sqrt(sq_err_all[k] / sq_norm_all) : 0.0);
    }
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.weights_per_second = rep.seconds > 0 ? static_cast<double>(total_weights) / rep.seconds : 0;
    rep.peak_rss_bytes = peak_rss_bytes();
    return rep;
}

json report_to_json(const ConvertReport& r) {
    json tensors = json::array();
    for (const auto& t : r.tensors) {
        json j = {
            {"name", t.name},
            {"shape", t.shape},
            {"encoding", encoding_name(t.encoding)},
            {"bases", t.encoding == Encoding::Ternary ? t.layout.bases : 0},
            {"scales", t.encoding == Encoding::Ternary ? json(scale_mode_name(t.layout.scales)) : json(nullptr)},
            {"size_bytes", t.size},
            {"relative_error_by_base", t.relative_error_by_base},
            {"rmse_by_base", t.rmse_by_base},
        };
        if (t.encoding == Encoding::Ternary) j["bits_per_weight"] = t.layout.bits_per_weight();
        if (t.encoding == Encoding::Int8) j["bits_per_weight"] = t.int8.bits_per_weight();
        tensors.push_back(j);
    }
    return {
        {"input", r.input},
        {"output", r.output},
        {"weights_only", r.weights_only},
        {"bases", r.bases},
        {"block_size", r.block_size},
        {"packing", packing_name(r.packing)},
        {"method", method_name(r.method)},
        {"scales", scale_mode_name(r.scales)},
        {"refine_rounds", r.refine_rounds},
        {"threads", r.threads},
        {"embeddings", r.weights_only ? json(nullptr) : json(encoding_name(r.encodings.embeddings))},
        {"lm_head", r.weights_only ? json(nullptr) : json(encoding_name(r.encodings.lm_head))},
        {"size_bytes", r.size_bytes},
        {"f16_size_bytes", r.f16_size_bytes},
        {"input_size_bytes", r.input_size_bytes},
        {"parameters", r.parameters},
        {"ternary_parameters", r.ternary_parameters},
        {"bits_per_weight", r.bits_per_weight},
        {"linear_bits_per_weight", r.linear_bits_per_weight},
        {"target_bpw", r.target_bpw > 0 ? json(r.target_bpw) : json(nullptr)},
        {"calibration", r.calibration.empty() ? json(nullptr) : json(r.calibration)},
        {"error_feedback", r.error_feedback},
        {"file_bits_per_weight", r.file_bits_per_weight},
        {"relative_error_by_base", r.relative_error_by_base},
        {"seconds", r.seconds},
        {"weights_per_second", r.weights_per_second},
        {"peak_rss_bytes", r.peak_rss_bytes},
        {"skipped", r.skipped},
        {"tensors", tensors},
    };
}

}  // namespace bitttt
