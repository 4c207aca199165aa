// bitttt: convert Hugging Face Llama checkpoints into multi-base ternary models.
// main only parses the command line, dispatches, and turns errors into exit codes:
// 0 success, 1 failure, 2 bad usage.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>

#include "bitttt/error.h"
#include "cli/commands.h"
#include "cli/run_command.h"
#include "kernels/dispatch.h"

namespace {

void print_exit_codes(std::FILE* out) {
    std::fputs(
        "\nExit codes: 0 success, 1 failure (the message on stderr names the file, tensor and fix),\n"
        "2 bad usage. With --json, results go to stdout as one JSON object; errors stay on stderr.\n",
        out);
}

void print_full_help(const CLI::App& app, std::FILE* out) {
    std::fputs(app.help().c_str(), out);
    for (const CLI::App* sub : app.get_subcommands({})) {
        std::fputs("\n", out);
        std::fputs(sub->help().c_str(), out);
    }
    print_exit_codes(out);
}

// `bitttt COMMAND --help`: that command's help only; `bitttt --help`: everything.
void print_help(const CLI::App& app, std::FILE* out) {
    for (const CLI::App* sub : app.get_subcommands({})) {
        if (sub->parsed()) {
            std::fputs(sub->help().c_str(), out);
            print_exit_codes(out);
            return;
        }
    }
    print_full_help(app, out);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "bitttt " BITTTT_VERSION
        " - run existing LLMs as sums of ternary bases on small machines.\n"
        "Converts a Hugging Face Llama checkpoint so that each weight matrix W ~= s1*T1 + ... + sN*TN\n"
        "with Tk in {-1, 0, +1} (greedy residual fitting, no retraining), and runs it with add-only kernels.",
        "bitttt"};
    app.require_subcommand(0, 1);
    app.fallthrough();  // global flags (-q, -v) may follow the subcommand
    // The version line also names the kernels this CPU will run (BITTTT_ISA applied).
    app.set_version_flag("--version", [] {
        std::string isa;
        try {
            isa = bitttt::kernels::kernels_in_use();
        } catch (const bitttt::Error& e) {
            isa = std::string("none (") + e.what() + ")";
        }
        namespace k = bitttt::kernels;
        const char* available = k::avx2_available()           ? " (avx2 available)"
                                : k::neon_dotprod_available() ? " (neon+dotprod available)"
                                : k::neon_available()         ? " (neon available, no dotprod)"
                                                              : " (avx2 not available)";
        return std::string("bitttt " BITTTT_VERSION " (reads .btt format v1 to v3), kernels: ") + isa + available;
    });
    bitttt::cli::GlobalOptions global;
    app.add_flag("-q,--quiet", global.quiet, "No progress bar and no informational messages")->configurable(false);
    app.add_flag("-v,--verbose", global.verbose, "Debug messages on stderr");

    std::map<const CLI::App*, bitttt::cli::Runner> runners;
    auto add = [&](bitttt::cli::Runner r) { runners[app.get_subcommands({}).back()] = std::move(r); };
    add(bitttt::cli::add_convert_command(app, global));
    add(bitttt::cli::add_inspect_command(app, global));
    add(bitttt::cli::add_calibrate_command(app, global));
    add(bitttt::cli::add_run_command(app, global));
    add(bitttt::cli::add_perplexity_command(app, global));
    add(bitttt::cli::add_tokenize_command(app, global));
    add(bitttt::cli::add_bench_command(app, global));
    add(bitttt::cli::add_repack_command(app, global));

    if (argc <= 1) {
        print_full_help(app, stderr);
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        print_help(app, stdout);
        return 0;
    } catch (const CLI::CallForAllHelp&) {
        print_full_help(app, stdout);
        return 0;
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --version
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "bitttt: %s\nRun 'bitttt --help' for every command and flag.\n", e.what());
        return 2;
    }

    // Logs go to stderr so stdout stays clean for results and JSON.
    auto logger = spdlog::stderr_logger_mt("bitttt");
    logger->set_pattern("bitttt: %l: %v");
    logger->set_level(global.verbose ? spdlog::level::debug
                                     : global.quiet ? spdlog::level::warn : spdlog::level::info);
    spdlog::set_default_logger(logger);

    const CLI::App* chosen = nullptr;
    for (const CLI::App* sub : app.get_subcommands()) chosen = sub;
    if (!chosen) {
        std::fprintf(stderr, "bitttt: no command given. Run 'bitttt --help' for every command and flag.\n");
        return 2;
    }
    try {
        return runners.at(chosen)();
    } catch (const bitttt::UsageError& e) {
        std::fprintf(stderr, "bitttt %s: %s\n", chosen->get_name().c_str(), e.what());
        return 2;
    } catch (const bitttt::Error& e) {
        std::fprintf(stderr, "bitttt %s: error: %s\n", chosen->get_name().c_str(), e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "bitttt %s: error: out of memory\n", chosen->get_name().c_str());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitttt %s: internal error: %s\n", chosen->get_name().c_str(), e.what());
        return 1;
    }
}
