// What every subcommand shares: global flags and the shape of a command's body.
#pragma once

#include <functional>

namespace bitttt::cli {

// A registered command's body; returns the exit code.
using Runner = std::function<int()>;

// Flags of the root command.
struct GlobalOptions {
    bool quiet = false;
    bool verbose = false;
};

}  // namespace bitttt::cli
