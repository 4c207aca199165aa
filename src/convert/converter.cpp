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
#include "bitttt/tokenizer.h"
#include "bitttt/file_io.h"
#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"
#include "convert/budget.h"
#include "convert/calibrated_fit.h"
#include "convert/tensor_converter.h"
#include "util/progress.h"
#include "util/sysinfo.h"
#include "util/thread_pool.h"

namespace bitttt {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// --target-bpw estimates each tensor's error per N from this many rows.
constexpr std::int64_t kBudgetSampleRows = 64;

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
            const TernaryLayout layout{rows, cols, n, opt.block_size, opt.packing, opt.scales, opt.scale_bits,
                                       p.arrangement};
            bt.bytes.push_back(static_cast<double>(layout.total_bytes()));
        }
        CalibratedFit cal;
        if (calibration) cal = calibration->for_tensor(info.name, cols);
        FitOptions fit;
        fit.method = opt.method;
        fit.refine_rounds = opt.method == Method::Greedy ? opt.refine_rounds : 0;
        fit.col_weights = cal.col_weights.empty() ? nullptr : cal.col_weights.data();
        bt.error = estimate_errors(ckpt, *p.entry, rows, cols, opt.bases,
                                   TernaryLayout{rows, cols, 1, opt.block_size, opt.packing, opt.scales, opt.scale_bits}, fit,
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
    TernaryLayout probe{1, opt.block_size, opt.bases, opt.block_size, opt.packing, opt.scales, opt.scale_bits};
    probe.validate();
    if (opt.refine_rounds < 0) throw UsageError("--refine must be >= 0");
    if (opt.feedback_group < 0) throw UsageError("--feedback-group must be >= 0");
    if (opt.target_bpw && !(*opt.target_bpw > 0.0 && *opt.target_bpw < 64.0)) {
        throw UsageError("--target-bpw must be a number of bits per weight above 0");
    }
    // Refinement applies to the greedy fit only (the absmean rules ignore it); tied scales
    // and calibration need the greedy fit.
    if (opt.method != Method::Greedy &&
        (opt.scales == ScaleMode::Tied || !opt.calibration.empty() || opt.scale_bits != 16)) {
        throw UsageError(std::string("--method ") + method_name(opt.method) +
                         " fits one base at a time with its own scales; tied scales, 8-bit scales and calibration "
                         "need --method greedy (use --scales free --scale-bits 16 with --method " +
                         method_name(opt.method) + ")");
    }

    Checkpoint ckpt = Checkpoint::open(opt.input);
    ConvertReport rep;
    rep.input = opt.input;
    rep.output = opt.output.empty() ? default_output_path(opt.input, opt.bases) : opt.output;
    rep.bases = opt.bases;
    rep.block_size = opt.block_size;
    rep.packing = opt.packing;
    rep.arrangement = opt.arrangement;
    rep.method = opt.method;
    rep.scales = opt.scales;
    rep.scale_bits = opt.scale_bits;
    rep.refine_rounds = opt.scales == ScaleMode::Free && opt.method == Method::Greedy ? opt.refine_rounds : 0;
    rep.threads = opt.threads > 0 ? opt.threads : physical_cores();
    rep.input_size_bytes = ckpt.total_bytes();

    // Never write over an input: any shard, the index, config.json, tokenizer.json or the
    // calibration file (fs::equivalent follows links and tells hard links apart).
    std::error_code ec;
    std::vector<std::string> inputs = ckpt.files();
    inputs.push_back(ckpt.source());
    if (ckpt.config_path()) inputs.push_back(*ckpt.config_path());
    if (ckpt.tokenizer_path()) inputs.push_back(*ckpt.tokenizer_path());
    if (!opt.calibration.empty()) inputs.push_back(opt.calibration);
    for (const auto& f : inputs) {
        if (fs::equivalent(f, rep.output, ec)) {
            throw UsageError("output '" + rep.output + "' is the input file '" + f + "'; choose another -o");
        }
    }
    if (fs::is_directory(rep.output, ec)) {
        throw UsageError("output '" + rep.output + "' is a folder; give a file name with -o");
    }

    json header = {
        {"format", "bitttt"},
        // Set by BttWriter::finish to the version the tensors need (the preamble's).
        {"format_version", kBttMinVersion},
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
            // Built once here so that a malformed tokenizer.json is refused now, naming the
            // file, rather than written into a .btt that cannot run. One bitttt cannot run
            // yet (an UnsupportedError) still converts, with a warning.
            try {
                const Tokenizer tok = Tokenizer::from_json(header["tokenizer"], *ckpt.tokenizer_path());
                if (tok.vocab_size() > cfg.vocab_size) {
                    throw FormatError(*ckpt.tokenizer_path() + ": the tokenizer has ids up to " +
                                      std::to_string(tok.vocab_size() - 1) + " but " + *ckpt.config_path() +
                                      " has vocab_size " + std::to_string(cfg.vocab_size));
                }
            } catch (const UnsupportedError& e) {
                spdlog::warn("{} (the .btt will not run until bitttt supports it)", e.what());
            }
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
        {"arrangement", arrangement_name(opt.arrangement)},
        {"scales", scale_mode_name(opt.scales)},
        {"scale_bits", opt.scale_bits},
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
        // The kernel's tiles for the matrices it multiplies; the embedding table is read a
        // row at a time, so it keeps rows.
        if (p.encoding == Encoding::Ternary && tensor_role(p.entry->info->name) != TensorRole::Embedding) {
            p.arrangement = opt.arrangement;
        }
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
            {"scale_bits", t.encoding == Encoding::Ternary ? json(t.layout.scale_bits) : json(nullptr)},
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
        {"arrangement", arrangement_name(r.arrangement)},
        {"method", method_name(r.method)},
        {"scales", scale_mode_name(r.scales)},
        {"scale_bits", r.scale_bits},
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
