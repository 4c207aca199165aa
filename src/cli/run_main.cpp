// bitttt-run: the lean stand-alone generator for small devices. It links only the engine
// (no converter) and takes exactly the flags of `bitttt run`.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "bitttt/error.h"
#include "cli/run_command.h"

int main(int argc, char** argv) {
    CLI::App app{"bitttt-run " BITTTT_VERSION
                 " - generate text with a converted .btt model (or the original Hugging Face folder as the F32 "
                 "reference).\nStreams text to stdout; statistics go to stderr. Exit codes: 0 success, 1 failure, "
                 "2 bad usage.",
                 "bitttt-run"};
    app.set_version_flag("--version", "bitttt-run " BITTTT_VERSION " (.btt format v1)");
    bool quiet = false;
    app.add_flag("-q,--quiet", quiet, "No statistics and no informational messages");
    bitttt::cli::RunArgs args;
    bitttt::cli::add_run_options(app, args);
    if (argc <= 1) {
        std::fputs(app.help().c_str(), stderr);
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "bitttt-run: %s\nRun 'bitttt-run --help' for every flag.\n", e.what());
        return 2;
    }
    auto logger = spdlog::stderr_logger_mt("bitttt-run");
    logger->set_pattern("bitttt-run: %v");
    logger->set_level(quiet ? spdlog::level::warn : spdlog::level::info);
    spdlog::set_default_logger(logger);
    try {
        return bitttt::cli::run_generate(args, quiet);
    } catch (const bitttt::UsageError& e) {
        std::fprintf(stderr, "bitttt-run: %s\n", e.what());
        return 2;
    } catch (const bitttt::Error& e) {
        std::fprintf(stderr, "bitttt-run: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitttt-run: internal error: %s\n", e.what());
        return 1;
    }
}
