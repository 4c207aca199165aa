// The subcommands of the `bitttt` tool. Each add_* registers its flags on the root app
// and returns the function to run when that subcommand was chosen (exit code).
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "cli/common.h"

namespace bitttt::cli {

Runner add_convert_command(CLI::App& root, const GlobalOptions& global);
Runner add_calibrate_command(CLI::App& root, const GlobalOptions& global);
Runner add_inspect_command(CLI::App& root, const GlobalOptions& global);
Runner add_run_command(CLI::App& root, const GlobalOptions& global);
Runner add_perplexity_command(CLI::App& root, const GlobalOptions& global);
Runner add_tokenize_command(CLI::App& root, const GlobalOptions& global);
Runner add_bench_command(CLI::App& root, const GlobalOptions& global);
Runner add_repack_command(CLI::App& root, const GlobalOptions& global);

// Human-readable output (report.cpp).
void print_convert_summary(const ConvertReport& r, std::FILE* out);
void print_inspect(const BttFile& f, bool all_tensors, std::FILE* out);
nlohmann::json inspect_json(const BttFile& f);

}  // namespace bitttt::cli
