// What every subcommand shares: global flags and the shape of a command's body.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bitttt/model.h"

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

}  // namespace bitttt::cli
