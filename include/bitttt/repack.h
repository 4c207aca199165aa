// Rewrites a .btt file's ternary tensors in another arrangement or packing, without
// refitting: the same trits and scales, so the same model bit for bit (`bitttt repack`).
// The main use: files from before the tiles arrangement, which the engine otherwise
// rearranges at every load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bitttt/ternary.h"

namespace bitttt {

struct RepackOptions {
    std::string input;
    std::string output;
    // The linear layers' arrangement (the embedding table always keeps rows).
    Arrangement arrangement = Arrangement::Tiles;
    std::optional<Packing> packing;  // unset: keep each tensor's packing
    int threads = 0;                 // 0 -> physical cores
    std::string tool_version = "unknown";
};

struct RepackReport {
    std::string input, output;
    std::uint64_t input_bytes = 0, output_bytes = 0;
    int tensors = 0;    // in the file
    int rewritten = 0;  // ternary tensors whose bytes changed layout
    std::uint32_t version = 0;  // of the output
    double seconds = 0.0;
};

// Reads `input`, writes `output` atomically (nothing appears on error). Throws
// UsageError (same path, a weights-only or unreadable request), FormatError (a corrupt
// input, naming the tensor) or IoError.
RepackReport repack(const RepackOptions& opt);

}  // namespace bitttt
