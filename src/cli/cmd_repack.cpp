// bitttt repack IN.btt -o OUT.btt [--arrangement tiles|rows] [--packing 2bit|dense]
#include <cstdio>
#include <filesystem>
#include <memory>

#include "bitttt/error.h"
#include "bitttt/repack.h"
#include "cli/commands.h"

namespace bitttt::cli {

namespace {

struct RepackArgs {
    std::string input;
    std::string output;
    std::string arrangement = "tiles";
    std::string packing;  // "" = keep
    int threads = 0;
    bool json = false;
    bool force = false;
};

}  // namespace

Runner add_repack_command(CLI::App& root, const GlobalOptions& global) {
    auto args = std::make_shared<RepackArgs>();
    CLI::App* cmd = root.add_subcommand(
        "repack",
        "Rewrite a .btt file's ternary tensors in another arrangement or packing, without refitting: the\n"
        "same trits and scales, so the same model bit for bit. Files converted before the tiles arrangement\n"
        "(format version 1 or 2) are rearranged at every load, into private memory; repacked to tiles they\n"
        "are mapped in place: loaded in a fraction of a second and shared between processes. --packing dense\n"
        "stores 3 trits in 5 bits (less memory and disk). The output is written to a temporary file and\n"
        "renamed when complete.");
    cmd->add_option("input", args->input, "The .btt file to read")->required()->check(CLI::ExistingFile);
    cmd->add_option("-o,--output", args->output, "Output .btt path")->required();
    cmd->add_option("--arrangement", args->arrangement,
                    "tiles (default: what the lookup-table kernel maps in place) or rows (the older layout, "
                    "read in place by the maddubs kernel and by bitttt before format version 3). The "
                    "embedding table always stays rows")
        ->check(CLI::IsMember({"tiles", "rows"}));
    cmd->add_option("--packing", args->packing, "2bit or dense (default: keep each tensor's)")
        ->check(CLI::IsMember({"2bit", "dense"}));
    cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)")->check(CLI::Range(0, 1024));
    cmd->add_flag("--json", args->json, "Print the result as JSON on stdout");
    cmd->add_flag("-f,--force", args->force, "Overwrite the output if it exists");

    return [args, &global]() {
        std::error_code ec;
        if (!args->force && std::filesystem::exists(args->output, ec)) {
            throw UsageError("output '" + args->output + "' exists; pass --force to overwrite it, or choose another -o");
        }
        RepackOptions opt;
        opt.input = args->input;
        opt.output = args->output;
        opt.arrangement = *arrangement_from_string(args->arrangement);
        if (!args->packing.empty()) opt.packing = packing_from_string(args->packing);
        opt.threads = args->threads;
        opt.tool_version = BITTTT_VERSION;
        const RepackReport r = repack(opt);
        if (args->json) {
            const nlohmann::json j = {{"input", r.input},         {"output", r.output},
                                      {"input_bytes", r.input_bytes}, {"output_bytes", r.output_bytes},
                                      {"tensors", r.tensors},     {"rewritten", r.rewritten},
                                      {"format_version", r.version}, {"seconds", r.seconds}};
            std::printf("%s\n", json_text(j, 2).c_str());
        } else if (!global.quiet) {
            std::printf("%s -> %s: %d of %d tensors rewritten, %.1f MB -> %.1f MB, format v%u, %.1f s\n",
                        r.input.c_str(), r.output.c_str(), r.rewritten, r.tensors, static_cast<double>(r.input_bytes) / 1e6,
                        static_cast<double>(r.output_bytes) / 1e6, r.version, r.seconds);
        }
        return 0;
    };
}

}  // namespace bitttt::cli
