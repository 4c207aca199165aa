// The conversion pipeline: a Hugging Face checkpoint in, a .btt file out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/btt.h"
#include "bitttt/decompose.h"
#include "bitttt/ternary.h"

namespace bitttt {

struct ConvertOptions {
    std::string input;   // HF folder, model.safetensors, index.json, or a bare .safetensors
    std::string output;  // "" -> default_output_path(input, bases)
    int bases = 0;       // N, required (1..8)
    int block_size = 64;
    Packing packing = Packing::TwoBit;
    Method method = Method::Greedy;
    int threads = 0;                  // 0 -> physical cores
    bool ternary_embeddings = false;  // embed_tokens (and a tied lm_head) as ternary instead of F16
    bool ternary_lm_head = false;     // an untied lm_head as ternary instead of F16
    bool progress = false;            // draw a progress bar on stderr
    std::string tool_version = "unknown";
};

struct ConvertReport {
    std::string input;
    std::string output;
    bool weights_only = false;  // no config.json: inspectable, not runnable
    int bases = 0;
    int block_size = 0;
    Packing packing = Packing::TwoBit;
    Method method = Method::Greedy;
    int threads = 0;

    std::uint64_t size_bytes = 0;        // the .btt file
    std::uint64_t f16_size_bytes = 0;    // the converted tensors stored as F16
    std::uint64_t input_size_bytes = 0;  // the weight files read
    std::int64_t parameters = 0;         // weights in the converted tensors
    std::int64_t ternary_parameters = 0;
    std::uint64_t ternary_bytes = 0;
    double bits_per_weight = 0;       // ternary tensors' bytes * 8 / their weights (scales included)
    double file_bits_per_weight = 0;  // whole file * 8 / all parameters (F16 embeddings etc. included)
    // ||W - W^|| / ||W|| over all ternary tensors together, after 1..N bases.
    std::vector<double> relative_error_by_base;
    double seconds = 0;
    double weights_per_second = 0;
    std::uint64_t peak_rss_bytes = 0;
    std::vector<BttTensor> tensors;
    std::vector<std::string> skipped;  // "name: reason"
};

// The file name used without -o: "<name>-n<N>.btt" in the current folder, where <name>
// is the model folder's name (or the file's stem for other .safetensors files).
std::string default_output_path(const std::string& input, int bases);

// Runs a conversion. Throws bitttt errors (FormatError, IoError, UsageError,
// UnsupportedError) with messages naming the file and tensor; on any failure no output
// file is left behind and the input is never modified.
ConvertReport convert(const ConvertOptions& options);

// The report as the stable JSON object printed by `bitttt convert --json`.
nlohmann::json report_to_json(const ConvertReport& r);

}  // namespace bitttt
