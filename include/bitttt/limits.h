// What a file may ask for. Every count, size and dimension read from a file (or a config
// that comes with one) is checked against these before anything is allocated, with
// overflow-safe arithmetic, and a refusal names the file, the field and the limit.
// The limits are far above any real Llama-family model (Llama-3.1-405B: 126 layers,
// 16384 hidden, 53248 intermediate, 128 heads, 128,256-token vocabulary) and far below
// what would exhaust memory or overflow 64-bit sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bitttt::limits {

inline constexpr std::int64_t kMaxLayers = 1024;
inline constexpr std::int64_t kMaxHidden = 1 << 17;         // hidden_size
inline constexpr std::int64_t kMaxIntermediate = 1 << 20;   // intermediate_size
inline constexpr std::int64_t kMaxHeads = 4096;             // attention and key/value heads
inline constexpr std::int64_t kMaxHeadDim = 4096;
inline constexpr std::int64_t kMaxVocab = 1 << 24;          // vocabulary entries / embedding rows
inline constexpr std::int64_t kMaxContext = 1 << 24;        // positions (max_position_embeddings, --ctx)
inline constexpr std::int64_t kMaxTokenId = kMaxVocab - 1;

inline constexpr std::uint64_t kMaxTensors = 1 << 16;            // tensors in one file (405B: ~1,100)
inline constexpr std::int64_t kMaxDimension = std::int64_t{1} << 40;  // one dimension
inline constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;   // one tensor's elements
inline constexpr std::uint64_t kMaxBttHeaderBytes = std::uint64_t{1} << 30;  // .btt JSON header
inline constexpr int kMaxJsonDepth = 128;        // nesting of any JSON a file holds
inline constexpr int kMaxTokenizerNesting = 32;  // normalizer / pre-tokenizer Sequence nesting

// a * b, or nullopt when it overflows (a, b >= 0).
inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}
inline std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) {
    std::uint64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
    return r;
}

}  // namespace bitttt::limits
