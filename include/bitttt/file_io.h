// Reading whole small files (config.json, tokenizer.json, prompts, text) with errors
// that name the file.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace bitttt {

// The whole file as bytes. IoError naming the path (and the OS reason) on failure.
std::string read_file(const std::string& path);
// The file parsed as JSON. IoError as above; FormatError naming the path when it is not
// valid JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace bitttt
