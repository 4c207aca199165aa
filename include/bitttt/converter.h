// The conversion pipeline: a Hugging Face checkpoint in, a .btt file out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/btt.h"
#include "bitttt/decompose.h"
#include "bitttt/ternary.h"

namespace bitttt {

// Default column group of error feedback (ConvertOptions::feedback_group): what keeps an
// 8B conversion with feedback within minutes on 2 cores (docs/BENCHMARKS.md).
inline constexpr std::int64_t kDefaultFeedbackGroup = 1024;

struct ConvertOptions {
    std::string input;   // HF folder, model.safetensors, index.json, or a bare .safetensors
    std::string output;  // "" -> default_output_path(input, bases)
    int bases = 0;       // N, required (1..8)
    int block_size = 64;
    Packing packing = Packing::TwoBit;
    // How the linear layers' ternary tensors are laid out: tiles (what the default kernel
    // maps in place) or rows (the older layout; the embedding table is always rows).
    Arrangement arrangement = Arrangement::Tiles;
    Method method = Method::Greedy;
    // Tied scales by default: fewer bits than free scales at the same or lower error
    // (docs/BENCHMARKS.md, "Accuracy per bit").
    ScaleMode scales = ScaleMode::Tied;
    int refine_rounds = 8;            // free scales: joint refinement rounds (0 = greedy only)
    // 16: a binary16 scale per block and slot; 8: two-level (8-bit sub-scales under a
    // binary16 super-scale per row and slot, include/bitttt/ternary.h).
    int scale_bits = 16;
    // Bits-per-weight budget for the linear layers: each gets 1..bases bases, chosen so
    // that they average at most this many stored bits per weight (unset = all get `bases`).
    std::optional<double> target_bpw;
    // A calibration file (bitttt calibrate): the fits weight each input column by E[x_c^2],
    // and with error_feedback push each column's error onto the later columns through
    // the inverse of X^T X (GPTQ-style). damp: relative dampening of X^T X's diagonal.
    std::string calibration;
    bool error_feedback = true;
    double damp = 0.01;
    // Error feedback works within groups of this many consecutive input columns (X^T X
    // taken as block-diagonal), so its cost grows with cols * group, not cols^2; 0 = whole
    // rows (exact GPTQ). Rounded up to a multiple of block_size.
    std::int64_t feedback_group = kDefaultFeedbackGroup;
    int threads = 0;                  // 0 -> physical cores
    // How the token embedding table and the output layer (lm_head) are stored: F16, Int8
    // or Ternary (with the settings above); unset = the defaults below. See
    // resolve_output_encodings for tied models.
    std::optional<Encoding> embeddings;
    std::optional<Encoding> lm_head;
    bool progress = false;            // draw a progress bar on stderr
    std::string tool_version = "unknown";
};

// Defaults when ConvertOptions::embeddings / lm_head are unset. int8 because the output
// layer is read whole for every token: at F16 it was 30-50% of the bytes a 1-2 bit model
// reads per token, and int8 halves that at a quality cost far below the ternary layers'
// (docs/BENCHMARKS.md, "Output layer: f16 vs int8 vs ternary").
inline constexpr Encoding kDefaultLmHeadEncoding = Encoding::Int8;
inline constexpr Encoding kDefaultEmbeddingEncoding = Encoding::Int8;

// The encodings the embedding table and the output layer get.
struct OutputEncodings {
    Encoding embeddings = kDefaultEmbeddingEncoding;
    Encoding lm_head = kDefaultLmHeadEncoding;  // with tied embeddings: the same as `embeddings`
};

// Resolves the options for a model with (`tied`) or without tie_word_embeddings. Only F16,
// Int8 and Ternary are allowed (UsageError otherwise). Untied: each unset choice takes its
// default. Tied: the one table is both the embedding and the output layer, and as the
// output layer it is read whole for every token while as the embedding one row is, so it
// takes the lm_head choice; if only `embeddings` is set it takes that (so the older
// --ternary-embeddings keeps its meaning); both set and different is a UsageError.
OutputEncodings resolve_output_encodings(const ConvertOptions& options, bool tied);

struct ConvertReport {
    std::string input;
    std::string output;
    bool weights_only = false;  // no config.json: inspectable, not runnable
    int bases = 0;
    int block_size = 0;
    Packing packing = Packing::TwoBit;
    Arrangement arrangement = Arrangement::Tiles;
    Method method = Method::Greedy;
    ScaleMode scales = ScaleMode::Free;
    int scale_bits = 16;
    int refine_rounds = 0;
    int threads = 0;
    OutputEncodings encodings;  // as resolved (weights-only files: unused)

    std::uint64_t size_bytes = 0;        // the .btt file
    std::uint64_t f16_size_bytes = 0;    // the converted tensors stored as F16
    std::uint64_t input_size_bytes = 0;  // the weight files read
    std::int64_t parameters = 0;         // weights in the converted tensors
    std::int64_t ternary_parameters = 0;
    std::uint64_t ternary_bytes = 0;
    std::int64_t linear_parameters = 0;  // the linear layers (q/k/v/o/gate/up/down)
    std::uint64_t linear_bytes = 0;
    double linear_bits_per_weight = 0;   // their stored bits per weight (what --target-bpw bounds)
    double target_bpw = 0;               // 0 = no budget
    std::string calibration;             // "" = none
    bool error_feedback = false;
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
