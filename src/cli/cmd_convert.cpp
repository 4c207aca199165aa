// bitttt convert INPUT --bases N [-o OUT] [...]
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "bitttt/error.h"
#include "cli/commands.h"
#include "util/sysinfo.h"

namespace bitttt::cli {

namespace {

struct ConvertArgs {
    std::string input;
    std::string output;
    int bases = 0;
    int block_size = 64;
    std::string packing = "2bit";
    std::string arrangement = "tiles";
    std::string method = "greedy";
    std::string scales = "tied";
    int scale_bits = 16;
    int refine = 8;
    double target_bpw = 0;
    std::string calibration;
    bool no_error_feedback = false;
    double damp = 0.01;
    std::int64_t feedback_group = kDefaultFeedbackGroup;
    int threads = 0;
    std::string embeddings;  // "" = default
    std::string lm_head;
    bool ternary_embeddings = false;  // old spelling of --embeddings ternary
    bool ternary_lm_head = false;     // old spelling of --lm-head ternary
    bool json = false;
    bool force = false;
};

}  // namespace

Runner add_convert_command(CLI::App& root, const GlobalOptions& global) {
    auto args = std::make_shared<ConvertArgs>();
    CLI::App* cmd = root.add_subcommand(
        "convert",
        "Convert a Hugging Face Llama checkpoint (folder, model.safetensors, sharded index) into a .btt file.\n"
        "Each linear weight W becomes N ternary bases, W ~= s1*T1 + ... + sN*TN, fitted greedily to the\n"
        "residual with one scale per block of B weights along each row. Norms stay F32; the embedding table\n"
        "and the output layer are int8 with one scale per row unless --embeddings / --lm-head say otherwise.\n"
        "A bare .safetensors without config.json gives a weights-only .btt: every 2-D tensor decomposed,\n"
        "inspectable but not runnable. The output is written to a temporary file and renamed when complete.");
    cmd->add_option("input", args->input, "HF model folder, model.safetensors, model.safetensors.index.json, "
                                          "or any .safetensors file")
        ->required();
    cmd->add_option("--bases", args->bases, "Number of ternary bases N (1-8): more is closer to the original, "
                                            "fewer is smaller and faster")
        ->required()
        ->check(CLI::Range(1, 8));
    cmd->add_option("-o,--output", args->output,
                    "Output .btt path (default: <model name>-n<N>.btt in the current folder)");
    cmd->add_option("--block-size", args->block_size,
                    "Weights per scale along a row (default 64; 2bit needs a multiple of 4)")
        ->check(CLI::Range(4, 4096));
    CLI::Option* packing_opt = cmd->add_option("--packing", args->packing,
                    "Trit packing: 2bit (default; 4 trits/byte) or dense (base 3: 3 trits in 5 bits in the tiles "
                    "arrangement, 1.67 bits/trit when the block size is a multiple of 24, 1.75 at 64; 5 trits/byte "
                    "in rows). Dense saves memory as well as disk: the engine reads it as it is. With --target-bpw "
                    "the default is dense: more bases for the same stored bits")
        ->check(CLI::IsMember({"2bit", "dense"}));
    cmd->add_option("--arrangement", args->arrangement,
                    "Byte order of the linear layers' trits: tiles (default: the lookup-table kernel's own layout, "
                    "which `run` maps in place, shared between processes, no load-time copy) or rows (the layout "
                    "of files from before tiles; the maddubs kernel's)")
        ->check(CLI::IsMember({"tiles", "rows"}));
    cmd->add_option("--method", args->method,
                    "Fit per base: greedy (error-optimal ternary fit per block), absmean (BitNet b1.58 rule, "
                    "scale mean|W| per block) or absmean-tensor (BitNet rule, one scale per tensor)")
        ->check(CLI::IsMember({"greedy", "absmean", "absmean-tensor"}));
    CLI::Option* scales_opt = cmd->add_option("--scales", args->scales,
                    "Scales per block: tied (default: one binary16 scale per block, base k has s/3^(k-1), so the N "
                    "trits of a weight are the balanced-ternary digits of one level on a uniform grid of 3^N "
                    "levels; fewer bits, same add-only kernels) or free (one scale per base and block, fitted "
                    "greedily and refined jointly, see --refine)")
        ->check(CLI::IsMember({"free", "tied"}));
    cmd->add_option("--scale-bits", args->scale_bits,
                    "Bits per stored scale: 16 (default: a binary16 scale per block) or 8 (two-level: per row one "
                    "binary16 super-scale, per block an 8-bit multiple of it; half the scale bits, e.g. 0.125 "
                    "instead of 0.25 bits per weight with tied scales at block 64)")
        ->check(CLI::IsMember({16, 8}));
    cmd->add_option("--refine", args->refine,
                    "With --scales free: rounds of joint refinement after the greedy fit (least squares for the N "
                    "scales, then the best of the 3^N trit combinations per weight; a round is kept only if it "
                    "lowers the block's error). Default 8; 0 = plain greedy residual fitting")
        ->check(CLI::Range(0, 1000));
    cmd->add_option("--target-bpw", args->target_bpw,
                    "Bits-per-weight budget for the linear layers: each gets between 1 and --bases bases, "
                    "chosen so that together they store at most this many bits per weight (scales included), "
                    "giving each extra base to the tensor where it removes the most relative error per bit "
                    "(measured on a sample of rows; weighted by the calibration statistics with --calibration). "
                    "Packs dense unless --packing says otherwise. `inspect` lists the N each tensor got")
        ->check(CLI::Range(0.5, 64.0));
    cmd->add_option("--calibration", args->calibration,
                    "Calibration file from `bitttt calibrate` (made on this model, from text other than what you "
                    "evaluate on). The fits weight each input column by its mean square E[x^2], and quantise "
                    "columns in order pushing each one's error onto the columns not yet quantised through the "
                    "inverse of X^T X (error feedback, GPTQ-style)")
        ->check(CLI::ExistingFile);
    cmd->add_flag("--no-error-feedback", args->no_error_feedback,
                  "With --calibration: only weight the columns by E[x^2], no error feedback (needs only "
                  "`calibrate --stats diag`; faster)");
    cmd->add_option("--damp", args->damp,
                    "Dampening added to the diagonal of X^T X, relative to its mean (default 0.01)")
        ->check(CLI::Range(0.0, 10.0));
    cmd->add_option("--feedback-group", args->feedback_group,
                    "With error feedback: push each column's error only onto the later columns of its group of "
                    "this many (rounded up to a multiple of --block-size; X^T X taken as block-diagonal), which bounds the work "
                    "and memory by cols x group instead of cols^2. 0 = whole rows (exact GPTQ, far slower on "
                    "wide layers). Default " + std::to_string(kDefaultFeedbackGroup))
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 20));
    cmd->add_option("-t,--threads", args->threads, "Worker threads (default: physical cores)")
        ->check(CLI::Range(1, 1024));
    cmd->add_option("--lm-head", args->lm_head,
                    "Output layer (lm_head): int8 (default: per-row scale, half of F16's bytes), f16, or ternary "
                    "(decomposed like the linear layers). With tie_word_embeddings the embedding table is the "
                    "output layer, and this sets it")
        ->check(CLI::IsMember({"f16", "int8", "ternary"}));
    cmd->add_option("--embeddings", args->embeddings,
                    "Token embedding table: int8 (default), f16 or ternary. With tie_word_embeddings the table "
                    "follows --lm-head; giving both with different values is an error")
        ->check(CLI::IsMember({"f16", "int8", "ternary"}));
    cmd->add_flag("--ternary-embeddings", args->ternary_embeddings, "Deprecated: the same as --embeddings ternary");
    cmd->add_flag("--ternary-lm-head", args->ternary_lm_head, "Deprecated: the same as --lm-head ternary");
    cmd->add_flag("--json", args->json, "Print the summary as one JSON object on stdout (for scripts)");
    cmd->add_flag("--force", args->force, "Overwrite the output file if it exists (without it, an existing file is "
                                             "an error and is left as it is)");

    return [args, &global, scales_opt, packing_opt]() {
        ConvertOptions opt;
        opt.input = args->input;
        opt.output = args->output;
        opt.bases = args->bases;
        opt.block_size = args->block_size;
        opt.packing = *packing_from_string(args->packing);
        opt.arrangement = *arrangement_from_string(args->arrangement);
        opt.method = *method_from_string(args->method);
        opt.scales = *scale_mode_from_string(args->scales);
        opt.refine_rounds = args->refine;
        opt.scale_bits = args->scale_bits;
        // The absmean rules fit one base at a time with their own scales: free scales, no
        // refinement, unless tied scales were asked for (which the converter refuses).
        if (opt.method != Method::Greedy) {
            if (scales_opt->count() == 0) opt.scales = ScaleMode::Free;
            opt.refine_rounds = 0;
        }
        if (args->target_bpw > 0) {
            opt.target_bpw = args->target_bpw;
            // A budget of stored bits: dense packing stores the most bases per bit.
            if (packing_opt->count() == 0) opt.packing = Packing::Dense;
        }
        opt.calibration = args->calibration;
        opt.error_feedback = !args->no_error_feedback;
        opt.damp = args->damp;
        opt.feedback_group = args->feedback_group;
        opt.threads = args->threads;
        // The old flags are spellings of "ternary"; contradicting the new option is an error.
        auto choice = [](const std::string& value, bool old_flag, const char* flag,
                         const char* option) -> std::optional<Encoding> {
            if (old_flag && !value.empty() && value != "ternary") {
                throw UsageError(std::string(flag) + " contradicts " + option + " " + value);
            }
            if (old_flag) return Encoding::Ternary;
            if (value.empty()) return std::nullopt;
            return encoding_from_string(value);
        };
        opt.embeddings = choice(args->embeddings, args->ternary_embeddings, "--ternary-embeddings", "--embeddings");
        opt.lm_head = choice(args->lm_head, args->ternary_lm_head, "--ternary-lm-head", "--lm-head");
        opt.progress = !global.quiet && is_terminal(2);
        opt.tool_version = BITTTT_VERSION;
        const std::string out = opt.output.empty() ? default_output_path(opt.input, opt.bases) : opt.output;
        std::error_code ec;
        if (!args->force && std::filesystem::exists(out, ec)) {
            throw UsageError("output '" + out + "' exists; pass --force to overwrite it, or choose another -o");
        }
        ConvertReport rep = convert(opt);
        if (args->json) {
            std::printf("%s\n", json_text(report_to_json(rep), 2).c_str());
        } else {
            print_convert_summary(rep, stdout);
        }
        return 0;
    };
}

}  // namespace bitttt::cli
