// Human-readable summaries for convert and inspect, and inspect's JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

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
        std::fprintf(out, "    %-44s %-11s %s\n", tern[i]->name.c_str(), shape_str(tern[i]->shape).c_str(),
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
    std::fprintf(out, "  settings     %s, %s, %s%s scales, block %d, %s packing, %d threads\n", bases.c_str(),
                 fit.c_str(), scale_mode_name(r.scales), r.scale_bits == 8 ? " two-level (8-bit)" : "", r.block_size,
                 packing_name(r.packing), r.threads);
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
    const json& h = f.header();
    json tok = nullptr;
    if (h.contains("tokenizer") && h.at("tokenizer").is_object()) {
        const json& t = h.at("tokenizer");
        json model = t.value("model", json::object());
        tok = {{"type", model.value("type", std::string("?"))},
               {"vocab_size", model.contains("vocab") ? model.at("vocab").size() : 0},
               {"added_tokens", t.contains("added_tokens") ? t.at("added_tokens").size() : 0}};
    }
    return {
        {"file", f.path()},
        {"size_bytes", f.file_size()},
        {"format_version", f.version()},
        {"created_by", h.value("created_by", std::string())},
        {"weights_only", f.weights_only()},
        {"model", h.value("model", json())},
        {"tokenizer", tok},
        {"conversion", h.value("conversion", json())},
        {"parameters", weights},
        {"bits_per_weight", tern_weights ? 8.0 * static_cast<double>(tern_bytes) / static_cast<double>(tern_weights) : 0.0},
        {"file_bits_per_weight", weights ? 8.0 * static_cast<double>(f.file_size()) / static_cast<double>(weights) : 0.0},
        {"relative_error_by_base", overall_error(f.tensors())},
        {"tensors", tensors},
    };
}

void print_inspect(const BttFile& f, bool all_tensors, std::FILE* out) {
    const json j = inspect_json(f);
    std::fprintf(out, "file         %s (%s, .btt format v%u, %s)\n", f.path().c_str(),
                 human_bytes(static_cast<double>(f.file_size())).c_str(), f.version(),
                 j["created_by"].get<std::string>().c_str());
    const json& m = j["model"];
    if (m.is_object()) {
        std::string rope = m["rope_scaling"].is_object() ? m["rope_scaling"].value("rope_type", std::string("?")) : "none";
        std::fprintf(out,
                     "model        %s: %lld layers, hidden %lld, intermediate %lld, heads %lld/%lld kv, head_dim %lld,\n"
                     "             vocab %lld, rope_theta %g (scaling %s), %s embeddings, context %lld\n",
                     m["architectures"][0].get<std::string>().c_str(), m["num_hidden_layers"].get<long long>(),
                     m["hidden_size"].get<long long>(), m["intermediate_size"].get<long long>(),
                     m["num_attention_heads"].get<long long>(), m["num_key_value_heads"].get<long long>(),
                     m["head_dim"].get<long long>(), m["vocab_size"].get<long long>(), m["rope_theta"].get<double>(),
                     rope.c_str(), m["tie_word_embeddings"].get<bool>() ? "tied" : "untied",
                     m["max_position_embeddings"].get<long long>());
    } else {
        std::fprintf(out, "model        none: weights-only file (converted without config.json); it cannot be run\n");
    }
    if (j["tokenizer"].is_object()) {
        std::fprintf(out, "tokenizer    %s, %zu vocabulary entries, %zu added tokens\n",
                     j["tokenizer"]["type"].get<std::string>().c_str(), j["tokenizer"]["vocab_size"].get<std::size_t>(),
                     j["tokenizer"]["added_tokens"].get<std::size_t>());
    } else {
        std::fprintf(out, "tokenizer    none\n");
    }
    const json& c = j["conversion"];
    if (c.is_object()) {
        // Fields added later are optional: files from before them have free scales.
        std::string extra = ", " + c.value("scales", std::string("free")) +
                            (c.value("scale_bits", 16) == 8 ? " two-level (8-bit)" : "") + " scales";
        if (c.value("refine_rounds", 0) > 0) extra += ", " + std::to_string(c.value("refine_rounds", 0)) + " refinement rounds";
        const bool budget = c.contains("target_bpw") && c["target_bpw"].is_number();
        if (budget) {
            char buf[64];
            std::snprintf(buf, sizeof buf, ", --target-bpw %.3f", c["target_bpw"].get<double>());
            extra += buf;
        }
        if (c.contains("calibration") && c["calibration"].is_object()) {
            extra += std::string(", calibrated") + (c["calibration"].value("error_feedback", false) ? " with error feedback" : "");
        }
        std::fprintf(out, "conversion   %s, %s%d bases%s, block %d, %s packing; embeddings %s, lm_head %s\n",
                     c.value("method", std::string("?")).c_str(), budget ? "up to " : "", c.value("bases", 0),
                     extra.c_str(), c.value("block_size", 0), c.value("packing", std::string("?")).c_str(),
                     c.value("embeddings", std::string("?")).c_str(), c.value("lm_head", std::string("?")).c_str());
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
        std::fprintf(out, "%-48s %-11s %-8s %5s %6s %6s %6s %10llu  %s\n", t.name.c_str(), shape_str(t.shape).c_str(),
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
