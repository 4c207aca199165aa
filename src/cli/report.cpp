// Human-readable summaries for convert and inspect, and inspect's JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "bitttt/json_fields.h"
#include "bitttt/model_config.h"
#include "cli/commands.h"
#include "util/progress.h"

namespace bitttt::cli {

using json = nlohmann::json;

namespace {

std::string shape_str(const std::vector<std::int64_t>& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
    return out.empty() ? "scalar" : out;
}

std::string errors_str(const std::vector<double>& e) {
    std::string out;
    char buf[32];
    for (double v : e) {
        std::snprintf(buf, sizeof buf, "%s%.4f", out.empty() ? "" : " ", v);
        out += buf;
    }
    return out.empty() ? "-" : out;
}

double pct(double a, double b) { return b > 0 ? 100.0 * a / b : 0.0; }

// Overall ||W - W^|| / ||W|| across ternary tensors, from their norms and relative errors.
std::vector<double> overall_error(const std::vector<BttTensor>& tensors) {
    std::vector<double> num;
    double den = 0.0;
    for (const auto& t : tensors) {
        if (t.encoding != Encoding::Ternary) continue;
        const double n2 = t.norm * t.norm;
        den += n2;
        if (num.size() < t.relative_error_by_base.size()) num.resize(t.relative_error_by_base.size(), 0.0);
        for (std::size_t k = 0; k < t.relative_error_by_base.size(); ++k) {
            num[k] += t.relative_error_by_base[k] * t.relative_error_by_base[k] * n2;
        }
    }
    for (auto& v : num) v = den > 0 ? std::sqrt(v / den) : 0.0;
    return num;
}

void print_worst(const std::vector<BttTensor>& tensors, std::size_t how_many, std::FILE* out) {
    std::vector<const BttTensor*> tern;
    for (const auto& t : tensors) {
        if (t.encoding == Encoding::Ternary && !t.relative_error_by_base.empty()) tern.push_back(&t);
    }
    if (tern.empty()) return;
    std::sort(tern.begin(), tern.end(), [](const BttTensor* a, const BttTensor* b) {
        return a->relative_error_by_base.back() > b->relative_error_by_base.back();
    });
    std::fprintf(out, "  worst tensors (relative error after 1..N bases):\n");
    for (std::size_t i = 0; i < std::min(how_many, tern.size()); ++i) {
        std::fprintf(out, "    %-44s %-11s %s\n", escape_control(tern[i]->name).c_str(), shape_str(tern[i]->shape).c_str(),
                     errors_str(tern[i]->relative_error_by_base).c_str());
    }
}

}  // namespace

void print_convert_summary(const ConvertReport& r, std::FILE* out) {
    std::fprintf(out, "converted %s -> %s%s\n", r.input.c_str(), r.output.c_str(),
                 r.weights_only ? "  (weights only: no config.json, not runnable)" : "");
    const std::string fit = std::string(method_name(r.method)) +
                            (r.refine_rounds > 0 ? " + " + std::to_string(r.refine_rounds) + " refinement rounds" : "");
    const std::string bases = (r.target_bpw > 0 ? "up to " : "") + std::to_string(r.bases) + " bases";
    std::fprintf(out, "  settings     %s, %s, %s%s scales, block %d, %s packing in %s, %d threads\n", bases.c_str(),
                 fit.c_str(), scale_mode_name(r.scales), r.scale_bits == 8 ? " two-level (8-bit)" : "", r.block_size,
                 packing_name(r.packing), arrangement_name(r.arrangement), r.threads);
    if (!r.calibration.empty()) {
        std::fprintf(out, "  calibration  %s: column weights%s\n", r.calibration.c_str(),
                     r.error_feedback ? " and error feedback" : "");
    }
    if (!r.weights_only) {
        std::fprintf(out, "  output       lm_head %s, embeddings %s\n", encoding_name(r.encodings.lm_head),
                     encoding_name(r.encodings.embeddings));
    }
    std::fprintf(out, "  tensors      %zu written (%lld ternary weights of %lld)%s\n", r.tensors.size(),
                 static_cast<long long>(r.ternary_parameters), static_cast<long long>(r.parameters),
                 r.skipped.empty() ? "" : (", " + std::to_string(r.skipped.size()) + " skipped").c_str());
    std::fprintf(out, "  size         %s = %.1f%% of F16 (%s), %.1f%% of the input (%s)\n",
                 human_bytes(static_cast<double>(r.size_bytes)).c_str(),
                 pct(static_cast<double>(r.size_bytes), static_cast<double>(r.f16_size_bytes)),
                 human_bytes(static_cast<double>(r.f16_size_bytes)).c_str(),
                 pct(static_cast<double>(r.size_bytes), static_cast<double>(r.input_size_bytes)),
                 human_bytes(static_cast<double>(r.input_size_bytes)).c_str());
    std::fprintf(out, "  bits/weight  %.3f in ternary tensors (scales included), %.3f in the linear layers, %.3f for "
                      "the whole file\n",
                 r.bits_per_weight, r.linear_bits_per_weight, r.file_bits_per_weight);
    if (r.target_bpw > 0) {
        std::map<int, int> count;
        for (const auto& t : r.tensors) {
            if (t.encoding == Encoding::Ternary) ++count[t.layout.bases];
        }
        std::string mix;
        for (const auto& [n, c] : count) mix += (mix.empty() ? "" : ", ") + std::to_string(c) + " with N=" + std::to_string(n);
        std::fprintf(out, "  budget       --target-bpw %.3f: %s (inspect lists each tensor's N)\n", r.target_bpw,
                     mix.c_str());
    }
    std::fprintf(out, "  time         %s, %s weights/s; peak memory %s\n", human_seconds(r.seconds).c_str(),
                 human_count(r.weights_per_second).c_str(), human_bytes(static_cast<double>(r.peak_rss_bytes)).c_str());
    std::fprintf(out, "  error        ||W - W^|| / ||W|| after 1..%d bases: %s\n", r.bases,
                 errors_str(r.relative_error_by_base).c_str());
    print_worst(r.tensors, 5, out);
}

json inspect_json(const BttFile& f) {
    json tensors = json::array();
    std::uint64_t tern_bytes = 0;
    std::int64_t tern_weights = 0, weights = 0;
    for (const auto& t : f.tensors()) {
        json j = {
            {"name", t.name},
            {"shape", t.shape},
            {"encoding", encoding_name(t.encoding)},
            {"bases", t.encoding == Encoding::Ternary ? t.layout.bases : 0},
            {"offset", t.offset},
            {"size_bytes", t.size},
            {"xxh64", checksum_hex(t.xxh64)},
            {"norm", t.norm},
            {"relative_error_by_base", t.relative_error_by_base},
            {"rmse_by_base", t.rmse_by_base},
        };
        if (t.encoding == Encoding::Ternary) {
            j["block_size"] = t.layout.block_size;
            j["packing"] = packing_name(t.layout.packing);
            j["arrangement"] = arrangement_name(t.layout.arrangement);
            j["scales"] = scale_mode_name(t.layout.scales);
            j["scale_bits"] = t.layout.scale_bits;
            j["method"] = t.method;
            j["bits_per_weight"] = t.layout.bits_per_weight();
            tern_bytes += t.size;
            tern_weights += t.numel();
        } else if (t.encoding == Encoding::Int8) {
            j["bits_per_weight"] = t.int8.bits_per_weight();
        }
        weights += t.numel();
        tensors.push_back(j);
    }
    // The header's sections through typed reads: a missing or ill-typed field is a
    // FormatError naming the file and the field, never a crash or garbage.
    const JsonFields h(f.header(), f.path());
    json model = nullptr;
    if (h.has("model")) model = LlamaConfig::from_json(h.at("model"), f.path() + ": header 'model'").to_json();
    json tok = nullptr;
    if (auto t = h.object_or_null("tokenizer")) {
        std::string type = "?";
        std::size_t vocab = 0, added = 0;
        if (auto m = t->object_or_null("model")) {
            type = m->str_or("type", "?");
            if (m->has("vocab") && (m->at("vocab").is_object() || m->at("vocab").is_array())) vocab = m->at("vocab").size();
        }
        if (t->has("added_tokens")) added = t->array("added_tokens").size();
        tok = {{"type", type}, {"vocab_size", vocab}, {"added_tokens", added}};
    }
    json conversion = nullptr;
    if (auto c = h.object_or_null("conversion")) conversion = c->raw();
    return {
        {"file", f.path()},
        {"size_bytes", f.file_size()},
        {"format_version", f.version()},
        {"created_by", h.str_or("created_by", "")},
        {"weights_only", f.weights_only()},
        {"model", model},
        {"tokenizer", tok},
        {"conversion", conversion},
        {"parameters", weights},
        {"bits_per_weight", tern_weights ? 8.0 * static_cast<double>(tern_bytes) / static_cast<double>(tern_weights) : 0.0},
        {"file_bits_per_weight", weights ? 8.0 * static_cast<double>(f.file_size()) / static_cast<double>(weights) : 0.0},
        {"relative_error_by_base", overall_error(f.tensors())},
        {"tensors", tensors},
    };
}

void print_inspect(const BttFile& f, bool all_tensors, std::FILE* out) {
    const json j = inspect_json(f);
    const JsonFields h(f.header(), f.path());
    std::fprintf(out, "file         %s (%s, .btt format v%u, %s)\n", escape_control(f.path()).c_str(),
                 human_bytes(static_cast<double>(f.file_size())).c_str(), f.version(),
                 escape_control(h.str_or("created_by", "unknown")).c_str());
    if (h.has("model")) {
        const LlamaConfig m = LlamaConfig::from_json(h.at("model"), f.path() + ": header 'model'");
        std::fprintf(out,
                     "model        %s: %lld layers, hidden %lld, intermediate %lld, heads %lld/%lld kv, head_dim %lld,\n"
                     "             vocab %lld, rope_theta %g (scaling %s), %s embeddings, context %lld\n",
                     escape_control(m.architecture).c_str(), static_cast<long long>(m.num_hidden_layers),
                     static_cast<long long>(m.hidden_size), static_cast<long long>(m.intermediate_size),
                     static_cast<long long>(m.num_attention_heads), static_cast<long long>(m.num_key_value_heads),
                     static_cast<long long>(m.head_dim), static_cast<long long>(m.vocab_size), m.rope_theta,
                     m.rope_scaling.type.c_str(), m.tie_word_embeddings ? "tied" : "untied",
                     static_cast<long long>(m.max_position_embeddings));
    } else {
        std::fprintf(out, "model        none: weights-only file (converted without config.json); it cannot be run\n");
    }
    if (j["tokenizer"].is_object()) {
        std::fprintf(out, "tokenizer    %s, %zu vocabulary entries, %zu added tokens\n",
                     escape_control(j["tokenizer"]["type"].get<std::string>()).c_str(),
                     j["tokenizer"]["vocab_size"].get<std::size_t>(), j["tokenizer"]["added_tokens"].get<std::size_t>());
    } else {
        std::fprintf(out, "tokenizer    none\n");
    }
    if (auto c = h.object_or_null("conversion")) {
        // Fields added later are optional: files from before them have free scales.
        std::string extra = ", " + escape_control(c->str_or("scales", "free")) +
                            (c->integer_or("scale_bits", 16, 0, 64) == 8 ? " two-level (8-bit)" : "") + " scales";
        const std::int64_t rounds = c->integer_or("refine_rounds", 0, 0, 1 << 20);
        if (rounds > 0) extra += ", " + std::to_string(rounds) + " refinement rounds";
        const bool budget = c->has("target_bpw");
        if (budget) {
            char buf[64];
            std::snprintf(buf, sizeof buf, ", --target-bpw %.3f", c->number("target_bpw"));
            extra += buf;
        }
        if (auto cal = c->object_or_null("calibration")) {
            extra += std::string(", calibrated") + (cal->boolean_or("error_feedback", false) ? " with error feedback" : "");
        }
        std::fprintf(out, "conversion   %s, %s%lld bases%s, block %lld, %s packing in %s; embeddings %s, lm_head %s\n",
                     escape_control(c->str_or("method", "?")).c_str(), budget ? "up to " : "",
                     static_cast<long long>(c->integer_or("bases", 0, 0, 8)), extra.c_str(),
                     static_cast<long long>(c->integer_or("block_size", 0, 0, 4096)),
                     escape_control(c->str_or("packing", "?")).c_str(),
                     escape_control(c->str_or("arrangement", "rows")).c_str(),
                     escape_control(c->str_or("embeddings", "?")).c_str(),
                     escape_control(c->str_or("lm_head", "?")).c_str());
    }
    std::fprintf(out, "weights      %lld; %.3f bits/weight in ternary tensors, %.3f for the whole file\n",
                 j["parameters"].get<long long>(), j["bits_per_weight"].get<double>(),
                 j["file_bits_per_weight"].get<double>());
    std::fprintf(out, "error        ||W - W^|| / ||W|| over ternary tensors after 1..N bases: %s\n",
                 errors_str(j["relative_error_by_base"].get<std::vector<double>>()).c_str());
    std::fprintf(out, "\n%-48s %-11s %-8s %5s %6s %6s %6s %10s  %s\n", "tensor", "shape", "encoding", "bases", "scales",
                 "block", "bits/w", "bytes", "rel. error by base");
    std::size_t hidden = 0;
    for (const auto& t : f.tensors()) {
        if (!all_tensors && t.encoding != Encoding::Ternary) {
            ++hidden;
            continue;
        }
        const bool tern = t.encoding == Encoding::Ternary;
        std::fprintf(out, "%-48s %-11s %-8s %5s %6s %6s %6s %10llu  %s\n", escape_control(t.name).c_str(),
                     shape_str(t.shape).c_str(),
                     tern ? (std::string("ternary") + (t.layout.packing == Packing::Dense ? "/d" : "")).c_str()
                          : encoding_name(t.encoding),
                     tern ? std::to_string(t.layout.bases).c_str() : "-",
                     tern ? (std::string(scale_mode_name(t.layout.scales)) + (t.layout.two_level() ? "/8" : "")).c_str()
                          : "-",
                     tern ? std::to_string(t.layout.block_size).c_str() : "-",
                     tern ? std::to_string(t.layout.bits_per_weight()).substr(0, 5).c_str() : "-",
                     static_cast<unsigned long long>(t.size), errors_str(t.relative_error_by_base).c_str());
    }
    if (hidden) std::fprintf(out, "(%zu non-ternary tensors not listed; --all lists them)\n", hidden);
    print_worst(f.tensors(), 5, out);
}

}  // namespace bitttt::cli
