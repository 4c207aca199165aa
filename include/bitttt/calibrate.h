// `bitttt calibrate`: runs the unquantised model over calibration text, one layer at a
// time, and writes the statistics of every linear-layer input to a calibration file
// (include/bitttt/calibration.h, docs/FORMAT.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bitttt {

struct CalibrateOptions {
    int ctx = 256;       // tokens per chunk (each starts with BOS)
    int chunks = 64;     // chunks used
    bool full = true;    // also X^T X (else mean squares only)
    int threads = 0;     // 0 = physical cores
    std::string text;    // name of the text, stored in the metadata
    // Called after each layer (done, total).
    std::function<void(int, int)> on_layer;
};

struct CalibrateReport {
    std::string output;
    std::string model;
    std::int64_t tokens = 0;
    int chunks = 0;
    int ctx = 0;
    int layers = 0;
    bool full = true;
    std::vector<std::string> keys;
    std::uint64_t size_bytes = 0;
    double seconds = 0;
    double setup_seconds = 0;           // opening, validation, embedding rows (before layer 0)
    std::vector<double> layer_seconds;  // each layer: F32 weights, forward, statistics, writing
    std::uint64_t peak_rss_bytes = 0;
};

// The calibration tokens: the first `chunks` consecutive chunks of `ctx` tokens of
// `text_tokens`, the first token of each replaced by `bos` when bos >= 0 (as the
// perplexity method does). UsageError naming the counts when the text is too short.
std::vector<std::int32_t> calibration_tokens(const std::vector<std::int32_t>& text_tokens, int ctx, int chunks,
                                             std::int32_t bos);

// Runs the model at `model_path` (HF folder / model.safetensors / index.json with
// config.json beside it) over `tokens` (options.chunks * options.ctx ids, e.g. from
// calibration_tokens) and writes the statistics to `output` (temp file + rename).
// Memory: the hidden states of all tokens, one layer's weights as F32 and that layer's
// accumulators; the output is streamed to disk layer by layer.
CalibrateReport calibrate(const std::string& model_path, const std::vector<std::int32_t>& tokens,
                          const std::string& output, const CalibrateOptions& options);

}  // namespace bitttt
