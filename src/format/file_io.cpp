#include "bitttt/file_io.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bitttt/error.h"

namespace bitttt {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("cannot open '" + path + "': " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw IoError("reading '" + path + "' failed");
    return ss.str();
}

nlohmann::json read_json_file(const std::string& path) {
    const std::string text = read_file(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        throw FormatError(path + ": not valid JSON: " + e.what());
    }
}

}  // namespace bitttt
