// Catch2 main. Library log messages are silenced below error level so test output
// stays readable; failures are reported by the assertions.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

int main(int argc, char* argv[]) {
    spdlog::set_level(spdlog::level::err);
    return Catch::Session().run(argc, argv);
}
