// Helpers shared by the tests: the ../shared folder, temporary folders.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

namespace bitttt::test {

// True in the sanitizer builds (tools/test-sanitize.sh), where the widest kernel sweeps
// skip their largest shapes to keep the suite's time in bounds.
#ifdef BITTTT_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// True where the widest LUT kernel sweeps keep to shapes of at most 4,096 weights (every
// small, awkward shape stays): the sanitizer builds, and runs with BITTTT_TEST_QUICK=1 in
// the environment (tools/test-arm64.sh --quick sets it: under emulation the full sweeps of
// the three NEON LUT test cases took half the quick run; its full run keeps them).
inline bool quick_sweeps() {
    static const bool quick = [] {
        const char* v = std::getenv("BITTTT_TEST_QUICK");
        return kSanitized || (v != nullptr && std::string(v) == "1");
    }();
    return quick;
}

// ../shared (or $BITTTT_SHARED), "" when it is absent.
inline std::string shared_dir() {
    if (const char* env = std::getenv("BITTTT_SHARED")) return env;
    std::filesystem::path p = BITTTT_SHARED_DIR;
    return std::filesystem::is_directory(p) ? p.string() : std::string();
}

// Skips the current test with a clear message when ../shared is missing.
#define BITTTT_REQUIRE_SHARED(relpath)                                                         \
    do {                                                                                       \
        if (::bitttt::test::shared_dir().empty() ||                                            \
            !std::filesystem::exists(::bitttt::test::shared_dir() + "/" + (relpath))) {        \
            WARN("SKIPPED: test data ../shared/" << (relpath) << " not found "                 \
                 "(set BITTTT_SHARED to the shared folder to run this test)");                 \
            return;                                                                            \
        }                                                                                      \
    } while (0)

// A fresh temporary folder, removed when the object goes out of scope.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        auto base = std::filesystem::temp_directory_path();
        for (;;) {
            path_ = base / ("bitttt-test-" + std::to_string(rd()));
            if (std::filesystem::create_directory(path_)) break;
        }
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// What a `bitttt` run gave: exit code, stdout, stderr.
struct Result {
    int code;
    std::string out;
    std::string err;
};

// Runs `bitttt ARGS` (a shell command line) with stdout and stderr captured in `dir`.
template <class Dir>
Result run_cli(const std::string& args, const Dir& dir) {
    const std::string out = dir.file("stdout.txt"), err = dir.file("stderr.txt");
    const std::string cmd = std::string("'") + BITTTT_CLI_PATH + "' " + args + " >'" + out + "' 2>'" + err + "'";
    int status = std::system(cmd.c_str());
    auto slurp = [](const std::string& p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

}  // namespace bitttt::test
