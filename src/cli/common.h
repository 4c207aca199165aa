// What every subcommand shares: global flags and the shape of a command's body.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

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

}  // namespace bitttt::cli
