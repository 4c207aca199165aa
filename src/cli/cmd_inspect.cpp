// bitttt inspect FILE.btt [--json] [--verify] [--all]
#include <cstdio>
#include <memory>

#include "cli/commands.h"

namespace bitttt::cli {

namespace {

struct InspectArgs {
    std::string file;
    bool json = false;
    bool verify = false;
    bool all = false;
};

}  // namespace

Runner add_inspect_command(CLI::App& root, const GlobalOptions& /*global*/) {
    auto args = std::make_shared<InspectArgs>();
    CLI::App* cmd = root.add_subcommand(
        "inspect",
        "Show what a .btt file holds: model config, conversion settings, every tensor with its shape,\n"
        "bases, block size, packing, bits per weight and stored error statistics.");
    cmd->add_option("file", args->file, "The .btt file")->required();
    cmd->add_flag("--json", args->json, "Print one JSON object on stdout (for scripts)");
    cmd->add_flag("--verify", args->verify, "Recompute every tensor's XXH64 checksum (reads the whole file)");
    cmd->add_flag("--all", args->all, "List every tensor (default: the ternary ones and a summary of the rest)");

    return [args]() {
        BttFile f(args->file);
        if (args->verify) {
            for (const auto& t : f.tensors()) f.verify(t);
        }
        if (args->json) {
            auto j = inspect_json(f);
            if (args->verify) j["verified"] = true;
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            print_inspect(f, args->all, stdout);
            if (args->verify) std::printf("checksums: all %zu tensors verified\n", f.tensors().size());
        }
        return 0;
    };
}

}  // namespace bitttt::cli
