// What every subcommand shares: global flags and the shape of a command's body.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bitttt/model.h"
#include "kernels/dispatch.h"

namespace bitttt::cli {

// A registered command's body; returns the exit code.
using Runner = std::function<int()>;

// Flags of the root command.
struct GlobalOptions {
    bool quiet = false;
    bool verbose = false;
};

// JSON for stdout. Strings that are not valid UTF-8 (a token piece that is part of a
// character, a name from a file) are printed with U+FFFD instead of failing the dump.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// --kv-cache f16|f32, for the commands that run a model.
inline void add_kv_cache_option(CLI::App& cmd, KvCacheType& t) {
    const std::map<std::string, KvCacheType> names = {{"f16", KvCacheType::F16}, {"f32", KvCacheType::F32}};
    cmd.add_option("--kv-cache", t,
                   "KV cache element type: f16 (default; half the memory) or f32. The cache takes\n"
                   "2 x layers x ctx x kv_heads x head_dim elements; run prints its size")
        ->transform(CLI::CheckedTransformer(names, CLI::ignore_case));
}

// After a load: says when ternary tensors had to be copied into the active kernel's
// arrangement (slower load, private memory) and how to avoid it.
inline void note_rearranged(const Model& model, const std::string& path) {
    const int n = model.rearranged_tensors();
    if (n == 0) return;
    spdlog::warn("{}: {} ternary tensor{} rearranged at load for the {} kernel (private memory, slower load); {}", path,
                 n, n == 1 ? " was" : "s were", kernels::kernels_in_use(),
                 kernels::active_design() == kernels::TernaryDesign::Lut ? "`bitttt repack " + path + " -o NEW.btt` writes the tiles arrangement it maps in place"
                                     : std::string("the lookup-table kernel (the default on AVX2) maps the file in place"));
}

}  // namespace bitttt::cli
