#include "bitttt/file_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "bitttt/error.h"
#include "bitttt/json_fields.h"

namespace bitttt {

std::string read_file(const std::string& path, std::uint64_t max_bytes) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (!ec && fs::is_directory(st)) throw IoError("'" + path + "' is a folder, not a file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError("cannot open '" + path + "': " + std::strerror(errno));
    if (!ec && fs::is_regular_file(st)) {
        const std::uintmax_t size = fs::file_size(path, ec);
        if (!ec && size > max_bytes) {
            throw IoError("'" + path + "' is " + std::to_string(size) + " bytes, more than the " +
                          std::to_string(max_bytes) + " bytes this file may have");
        }
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw IoError("reading '" + path + "' failed");
    return ss.str();
}

nlohmann::json read_json_file(const std::string& path) {
    const std::string text = read_file(path);
    return parse_json_text(text.data(), text.data() + text.size(), path, "the file");
}

}  // namespace bitttt
