// tools/compare-llamacpp.sh, its plumbing: llama.cpp cannot be built in the test suite, so
// a stand-in build folder holds two small scripts named llama-quantize (copies its input)
// and llama-bench (prints llama-bench's JSON with fixed figures). The bitttt side is real:
// bitttt-synth writes the tiny preset and its GGUF, bitttt converts and benchmarks it. The
// test checks the steps run, the JSON lines carry every field with the stand-in's figures
// passed through, and the table mode prints one row per engine and type.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace {

void write_exec(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p) << text;
    std::filesystem::permissions(p, std::filesystem::perms::owner_all);
}

bitttt::test::Result run_harness(const std::string& args, const bitttt::test::TempDir& dir) {
    const std::string build = std::filesystem::path(BITTTT_CLI_PATH).parent_path().string();
    const std::string cmd = "cd '" + dir.path().string() + "' && BITTTT_BUILD='" + build +
                            "' PRESET=tiny TYPES='Q4_0 TQ2_0' BASES='1 2' ROUNDS=1 THREADS=1 PP=8 TG=4 REPS=1 "
                            "BANDWIDTH_MIB=8 bash '" BITTTT_SOURCE_DIR "/tools/compare-llamacpp.sh' " + args +
                            " >out.txt 2>err.txt";
    const int status = std::system(cmd.c_str());
    auto slurp = [&](const char* name) {
        std::ifstream in(dir.file(name));
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp("out.txt"), slurp("err.txt")};
}

}  // namespace

TEST_CASE("compare-llamacpp.sh: both engines' measurements as JSON lines and a table", "[cli][harness]") {
    if (bitttt::test::kSanitized) {
        WARN("SKIPPED under the sanitizers: the harness's bitttt bench runs are release-build work");
        return;
    }
    bitttt::test::TempDir dir;
    const auto fake = dir.path() / "llama-build" / "bin";
    std::filesystem::create_directories(fake);
    write_exec(fake / "llama-quantize", "#!/bin/sh\n# stand-in: IN OUT TYPE\ncp \"$1\" \"$2\"\n");
    write_exec(fake / "llama-bench",
               "#!/bin/sh\n# stand-in: prints llama-bench -o json's fields the harness reads\n"
               "echo '[{\"n_prompt\": 8, \"n_gen\": 0, \"avg_ts\": 123.456}, {\"n_prompt\": 0, \"n_gen\": 4, "
               "\"avg_ts\": 45.6}]'\n");

    SECTION("a missing llama.cpp build is refused with its name") {
        const auto r = run_harness("'" + (dir.path() / "nowhere").string() + "' work", dir);
        CHECK(r.code == 2);
        CHECK(r.err.find("no llama-bench in") != std::string::npos);
    }
    SECTION("JSON lines, then the table from the same work folder") {
        auto r = run_harness("--json llama-build work", dir);
        INFO(r.err);
        REQUIRE(r.code == 0);
        std::istringstream lines(r.out);
        std::string line;
        int llama = 0, bitttt_lines = 0;
        while (std::getline(lines, line)) {
            const auto j = nlohmann::json::parse(line);
            for (const char* k : {"engine", "type", "bits_per_weight", "threads", "round", "test", "tokens_per_s"})
                CHECK(j.contains(k));
            CHECK(j["threads"] == 1);
            CHECK(j["round"] == 1);
            CHECK(j["bits_per_weight"].get<double>() > 0);
            if (j["engine"] == "llama.cpp") {
                ++llama;
                CHECK(j["tokens_per_s"].get<double>() == (j["test"] == "pp" ? 123.46 : 45.6));
            } else {
                ++bitttt_lines;
                CHECK(j["engine"] == "bitttt");
                CHECK((j["type"] == "N1" || j["type"] == "N2"));
                CHECK(j["tokens_per_s"].get<double>() > 0);
                if (j["test"] == "tg") {
                    CHECK(j["bandwidth_limit_tokens_per_s"].get<double>() > 0);
                    CHECK(j["read_limit_tokens_per_s"].get<double>() > 0);
                }
            }
        }
        CHECK(llama == 4);         // 2 types x (pp, tg)
        CHECK(bitttt_lines == 4);  // N1, N2 x (pp, tg)
        for (const char* f : {"tiny-hf/model.safetensors", "tiny-f16.gguf", "tiny-Q4_0.gguf", "tiny-TQ2_0.gguf",
                              "tiny-N1.btt", "tiny-N2.btt"})
            CHECK(std::filesystem::exists(dir.path() / "work" / f));

        r = run_harness("llama-build work", dir);
        REQUIRE(r.code == 0);
        CHECK(r.err.find("writing the synthetic") == std::string::npos);  // reused
        CHECK(r.out.find("| engine, type |") != std::string::npos);
        CHECK(r.out.find("| llama.cpp Q4_0 |") != std::string::npos);
        CHECK(r.out.find("| 1.00 |") != std::string::npos);  // Q4_0 against itself
        CHECK(r.out.find("| bitttt N2 |") != std::string::npos);
        CHECK(r.out.find("| tg / triad limit | tg / read limit |") != std::string::npos);
    }
}
