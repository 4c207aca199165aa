// The `run` command's options and body, shared by `bitttt run` and the stand-alone
// `bitttt-run` binary (which links only the engine).
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "bitttt/model.h"
#include "bitttt/tokenizer.h"
#include "cli/common.h"

namespace bitttt::cli {

struct RunArgs {
    std::string model;
    std::string prompt;
    std::string prompt_file;
    bool batch = false;
    int n = 128;
    float temp = 0.8f;
    int top_k = 40;
    float top_p = 0.95f;
    std::int64_t seed = -1;
    int threads = 0;
    int bases = 0;
    int ctx = 0;
    bool json = false;
    bool special = false;
    bool verify = false;
    KvCacheType kv_cache = KvCacheType::F16;
};

// Registers the run flags on `cmd` (a subcommand, or bitttt-run's root).
void add_run_options(CLI::App& cmd, RunArgs& args);
// Loads the model and generates; returns the exit code.
int run_generate(const RunArgs& args, bool quiet);
// Registers `run` as a subcommand of the bitttt tool.
Runner add_run_command(CLI::App& root, const GlobalOptions& global);
// The tokenizer of a model's tokenizer.json, or a FormatError naming the file when it has
// none or when its ids do not all fit the model's vocabulary (embedding rows).
Tokenizer tokenizer_for(const LlamaConfig& config, const nlohmann::json& tokenizer, const std::string& model_path);
Tokenizer tokenizer_for(const Model& model, const std::string& model_path);

}  // namespace bitttt::cli
