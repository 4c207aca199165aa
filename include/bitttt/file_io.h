// Reading whole small files (config.json, tokenizer.json, prompts, text) with errors
// that name the file.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace bitttt {

// Default bound of read_file: these files are read whole into memory.
inline constexpr std::uint64_t kMaxReadFileBytes = std::uint64_t{1} << 30;

// The whole file as bytes. IoError naming the path (and the OS reason) on failure, for a
// folder, and for a file larger than max_bytes.
std::string read_file(const std::string& path, std::uint64_t max_bytes = kMaxReadFileBytes);
// The file parsed as JSON. IoError as above; FormatError naming the path when it is not
// valid JSON or nests deeper than limits::kMaxJsonDepth.
nlohmann::json read_json_file(const std::string& path);

}  // namespace bitttt
