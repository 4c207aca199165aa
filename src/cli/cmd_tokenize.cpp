// bitttt tokenize (--model MODEL | --tokenizer tokenizer.json) TEXT [--json] [--special] [--no-bos]
#include <cstdio>
#include <memory>

#include "bitttt/btt.h"
#include "bitttt/error.h"
#include "bitttt/tokenizer.h"
#include "cli/commands.h"

namespace bitttt::cli {

namespace {

struct TokenizeArgs {
    std::string model;
    std::string tokenizer;
    std::string text;
    bool json = false;
    bool special = false;
    bool no_bos = false;
};

// The tokenizer of a .btt file, or of a HF folder (its tokenizer.json).
Tokenizer load_tokenizer(const TokenizeArgs& a) {
    if (!a.tokenizer.empty()) return Tokenizer::load(a.tokenizer);
    std::error_code ec;
    if (std::filesystem::is_directory(a.model, ec)) {
        return Tokenizer::load((std::filesystem::path(a.model) / "tokenizer.json").string());
    }
    BttFile f(a.model);
    const nlohmann::json& h = f.header();
    if (!h.contains("tokenizer") || !h.at("tokenizer").is_object()) {
        throw FormatError(a.model + ": the file has no tokenizer");
    }
    return Tokenizer::from_json(h.at("tokenizer"), a.model + " (tokenizer)");
}

}  // namespace

Runner add_tokenize_command(CLI::App& root, const GlobalOptions& /*global*/) {
    auto a = std::make_shared<TokenizeArgs>();
    CLI::App* cmd = root.add_subcommand("tokenize", "Print the token ids of a text (with --json also the pieces), "
                                                    "for scripting and for checking against other tools.");
    auto* m = cmd->add_option("-m,--model", a->model, "A .btt file or a Hugging Face folder");
    auto* t = cmd->add_option("--tokenizer", a->tokenizer, "A tokenizer.json file");
    m->excludes(t);
    cmd->add_option("text", a->text, "The text to tokenize")->required();
    cmd->add_flag("--json", a->json, "Print {\"ids\": [...], \"pieces\": [...]} on stdout");
    cmd->add_flag("--special", a->special, "Match special tokens written in the text");
    cmd->add_flag("--no-bos", a->no_bos, "Do not add the BOS token the tokenizer's post-processor adds");

    return [a]() {
        if (a->model.empty() && a->tokenizer.empty()) throw UsageError("give --model or --tokenizer");
        Tokenizer tok = load_tokenizer(*a);
        const std::vector<std::int32_t> ids = tok.encode(a->text, !a->no_bos, a->special);
        if (a->json) {
            std::vector<std::string> pieces;
            for (auto id : ids) pieces.push_back(tok.piece(id));
            std::printf("%s\n", json_text(nlohmann::json{{"ids", ids}, {"pieces", pieces}}).c_str());
        } else {
            for (std::size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
            std::printf("\n");
        }
        return 0;
    };
}

}  // namespace bitttt::cli
