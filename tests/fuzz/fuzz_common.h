// Shared helpers of the libFuzzer targets in tests/fuzz.
//
// The contract under test: whatever bytes a file holds, the readers either succeed or
// throw bitttt::Error (or a subclass). Every target therefore catches bitttt::Error and
// nothing else; any other exception escapes to libFuzzer and is reported as a crash,
// like sanitizer reports, timeouts and running out of memory.
//
// Readers that only take a path get the input through a file in a folder of their own:
// $BITTTT_FUZZ_TMP (default /dev/shm) / bitttt-fuzz-<pid>/. With BITTTT_FUZZ_KEEP=PATH
// the file a target builds from its input (e.g. a .btt with its checksum fixed) is also
// copied to PATH, so that a reproducer can be fed to the `bitttt` command itself.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "bitttt/error.h"

namespace bitttt::fuzz {

// This process's scratch folder, created on first use and removed at exit.
inline const std::filesystem::path& scratch_dir() {
    static const std::filesystem::path dir = [] {
        const char* base = std::getenv("BITTTT_FUZZ_TMP");
        std::filesystem::path d = std::filesystem::path(base && *base ? base : "/dev/shm") /
                                  ("bitttt-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_dir(), ec);
        });
        return d;
    }();
    return dir;
}

// Writes `bytes` to `path` (replacing it). Aborts if that fails: a broken harness must
// not look like a clean rejection.
inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr || (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) ||
        std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
    if (const char* keep = std::getenv("BITTTT_FUZZ_KEEP"); keep && *keep) {
        std::error_code ec;
        std::filesystem::copy_file(path, keep, std::filesystem::copy_options::overwrite_existing, ec);
    }
}

// Writes `bytes` to a file named `name` in the scratch folder and returns its path.
inline std::string input_file(std::string_view bytes, const std::string& name) {
    const std::filesystem::path p = scratch_dir() / name;
    write_bytes(p, bytes);
    return p.string();
}

// Inputs of the form "JSON text, NUL byte, anything" (JSON text never holds a raw NUL):
// the part before the first NUL and the rest (empty when there is no NUL).
struct Split {
    std::string_view json;
    std::string_view rest;
    bool has_rest = false;
};
inline Split split_at_nul(std::string_view in) {
    const std::size_t z = in.find('\0');
    if (z == std::string_view::npos) return {in, {}, false};
    return {in.substr(0, z), in.substr(z + 1), true};
}

// Runs `body`, treating bitttt::Error as the expected clean rejection. Anything else
// propagates (libFuzzer reports an uncaught exception as a crash).
template <class F>
bool expect_ok_or_error(F&& body) {
    try {
        body();
        return true;
    } catch (const bitttt::Error&) {
        return false;
    }
}

// A sink for text reports (print_inspect and the like).
inline std::FILE* devnull() {
    static std::FILE* f = std::fopen("/dev/null", "w");
    return f;
}

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

}  // namespace bitttt::fuzz
