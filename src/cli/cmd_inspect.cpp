// bitttt inspect FILE.btt [--json] [--verify] [--all]   (also calibration files)
#include <cmath>
#include <cstdio>
#include <memory>

#include "bitttt/calibration.h"
#include "bitttt/error.h"
#include "bitttt/safetensors.h"
#include "cli/commands.h"
#include "util/progress.h"

namespace bitttt::cli {

namespace {

struct InspectArgs {
    std::string file;
    bool json = false;
    bool verify = false;
    bool all = false;
};

// True for a safetensors file whose metadata says it is a calibration file.
bool is_calibration_file(const std::string& path) {
    try {
        const SafetensorsFile f(path);
        const auto it = f.metadata().find("format");
        return it != f.metadata().end() && it->second == kCalibrationFormat;
    } catch (const Error&) {
        return false;
    }
}

int inspect_calibration(const InspectArgs& a) {
    const CalibrationFile f(a.file);
    nlohmann::json keys = nlohmann::json::array();
    const SafetensorsFile st(a.file);
    if (a.verify) {  // every stored value finite (reads the whole file)
        for (const TensorInfo& t : st.tensors()) {
            const float* v = reinterpret_cast<const float*>(st.data(t));
            for (std::int64_t i = 0; i < t.numel(); ++i) {
                if (!std::isfinite(v[i]))
                    throw FormatError(a.file + ": tensor '" + t.name + "': non-finite value at index " +
                                      std::to_string(i));
            }
            st.mapped().release(st.data_offset() + t.begin, t.nbytes());
        }
    }
    for (const std::string& key : f.keys()) {
        const TensorInfo* m = st.find(key + ".mean_sq");
        const std::int64_t n = m->shape[0];
        const float* v = reinterpret_cast<const float*>(st.data(*m));
        double sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += v[i];
        keys.push_back({{"key", key}, {"n", n}, {"rms", std::sqrt(sum / static_cast<double>(n))},
                        {"xtx", st.find(key + ".xtx") != nullptr}});
    }
    if (a.json) {
        nlohmann::json j = {{"file", a.file}, {"format", kCalibrationFormat}, {"metadata", f.metadata()},
                            {"tokens", f.tokens()}, {"full", f.has_full()}, {"size_bytes", st.file_size()},
                            {"keys", keys}};
        if (a.verify) j["verified"] = true;
        std::printf("%s\n", json_text(j, 2).c_str());
        return 0;
    }
    const auto& md = f.metadata();
    auto get = [&](const char* k) { return md.count(k) ? md.at(k) : std::string("?"); };
    std::printf("%s: calibration file (version %s), %s\n", a.file.c_str(), get("version").c_str(),
                human_bytes(static_cast<double>(st.file_size())).c_str());
    std::printf("model %s, text %s\n", get("model").c_str(), get("text").c_str());
    std::printf("%lld tokens (%s chunks of %s), %s statistics, %zu linear inputs\n",
                static_cast<long long>(f.tokens()), get("chunks").c_str(), get("ctx").c_str(),
                f.has_full() ? "full (mean squares and X^T X)" : "diagonal (mean squares)", f.keys().size());
    const std::size_t shown = a.all ? keys.size() : std::min<std::size_t>(keys.size(), 8);
    for (std::size_t i = 0; i < shown; ++i) {
        std::printf("  %-40s n=%-6lld rms %.4g\n", keys[i]["key"].get<std::string>().c_str(),
                    static_cast<long long>(keys[i]["n"].get<std::int64_t>()), keys[i]["rms"].get<double>());
    }
    if (shown < keys.size()) std::printf("  ... %zu more (--all lists every input)\n", keys.size() - shown);
    if (a.verify) std::printf("values: all %zu tensors finite\n", st.tensors().size());
    return 0;
}

}  // namespace

Runner add_inspect_command(CLI::App& root, const GlobalOptions& /*global*/) {
    auto args = std::make_shared<InspectArgs>();
    CLI::App* cmd = root.add_subcommand(
        "inspect",
        "Show what a .btt file holds: model config, conversion settings, every tensor with its shape,\n"
        "bases, block size, packing, bits per weight and stored error statistics. Given a calibration file\n"
        "(bitttt calibrate), shows its metadata and the inputs it describes.");
    cmd->add_option("file", args->file, "The .btt file (or calibration file)")->required();
    cmd->add_flag("--json", args->json, "Print one JSON object on stdout (for scripts)");
    cmd->add_flag("--verify", args->verify, "Recompute every tensor's XXH64 checksum (reads the whole file)");
    cmd->add_flag("--all", args->all, "List every tensor (default: the ternary ones and a summary of the rest)");

    return [args]() {
        if (is_calibration_file(args->file)) return inspect_calibration(*args);
        BttFile f(args->file);
        if (args->verify) {
            for (const auto& t : f.tensors()) f.verify(t);
        }
        if (args->json) {
            auto j = inspect_json(f);
            if (args->verify) j["verified"] = true;
            std::printf("%s\n", json_text(j, 2).c_str());
        } else {
            print_inspect(f, args->all, stdout);
            if (args->verify) std::printf("checksums: all %zu tensors verified\n", f.tensors().size());
        }
        return 0;
    };
}

}  // namespace bitttt::cli
