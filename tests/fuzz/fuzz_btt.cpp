// libFuzzer target: the .btt file, as `bitttt inspect` and `bitttt run` read it.
//
// Input, two forms:
//  - the file itself (anything not starting with '{'). The preamble's header checksum is
//    set to the header's XXH64 when the header range is in the file, so that mutations
//    reach the JSON instead of stopping at the checksum;
//  - "JSON header NUL data section" (starting with '{'): the target writes the preamble
//    (the newest version, header length, data offset rounded up to 64, checksum) itself, so that
//    the header text can grow and shrink freely.
// BITTTT_FUZZ_KEEP=PATH saves the file built from an input (fuzz_common.h), for
// reproducing with `bitttt inspect PATH`.
//
// Per input: BttFile (preamble, JSON header, tensor table), every tensor's checksum,
// inspect's JSON and text reports (src/cli/report.cpp), the model config and the
// tokenizer of the header, and Model::load with a short forward pass.
#include <algorithm>
#include <string>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/model.h"
#include "bitttt/model_config.h"
#include "bitttt/tokenizer.h"
#include "cli/commands.h"
#include "format/le.h"
#include "fuzz_common.h"

namespace {

using namespace bitttt;

std::string build_file(std::string_view in) {
    std::string out;
    if (!in.empty() && in[0] == '{') {
        const fuzz::Split s = fuzz::split_at_nul(in);
        const std::size_t data_offset = (kBttPreambleBytes + s.json.size() + kBttAlignment - 1) / kBttAlignment * kBttAlignment;
        out.assign(data_offset, ' ');
        auto* p = reinterpret_cast<std::uint8_t*>(out.data());
        std::memcpy(p, "BTTT", 4);
        le::put_u32(p + 4, kBttVersion);
        le::put_u64(p + 8, s.json.size());
        le::put_u64(p + 16, data_offset);
        le::put_u64(p + 24, checksum64(s.json.data(), s.json.size()));
        std::memcpy(p + kBttPreambleBytes, s.json.data(), s.json.size());
        out += s.rest;
        return out;
    }
    out.assign(in);
    if (out.size() >= kBttPreambleBytes) {
        auto* p = reinterpret_cast<std::uint8_t*>(out.data());
        const std::uint64_t header_bytes = le::u64(p + 8);
        if (header_bytes <= out.size() - kBttPreambleBytes)
            le::put_u64(p + 24, checksum64(p + kBttPreambleBytes, header_bytes));
    }
    return out;
}

volatile std::size_t g_sink;

void inspect(const std::string& path) {
    const BttFile f(path);
    for (const BttTensor& t : f.tensors()) {
        fuzz::expect_ok_or_error([&] { f.verify(t); });
        if (f.find(t.name) == nullptr) __builtin_trap();
        (void)t.numel();
    }
    g_sink = f.weights_only();
    g_sink = cli::inspect_json(f).dump(2).size();
    cli::print_inspect(f, /*all_tensors=*/true, fuzz::devnull());
    cli::print_inspect(f, /*all_tensors=*/false, fuzz::devnull());
}

// The pieces of the header the engine reads, each on its own. Returns the context length
// for the engine (0: no model config).
int model_config(const std::string& path) {
    const BttFile f(path);
    if (f.weights_only()) return 0;
    const LlamaConfig cfg = LlamaConfig::from_json(f.header().at("model"), path + " (model config)");
    return static_cast<int>(std::min<std::int64_t>(cfg.max_position_embeddings, 4));
}

void tokenizer(const std::string& path) {
    const BttFile f(path);
    if (!f.header().contains("tokenizer") || f.header().at("tokenizer").is_null()) return;
    const Tokenizer tok = Tokenizer::from_json(f.header().at("tokenizer"), path + " (tokenizer)");
    const std::vector<std::int32_t> ids = tok.encode("Once upon a time", true, true);
    g_sink = tok.decode(ids).size();
}

void run(const std::string& path, int ctx) {
    LoadOptions opt;
    opt.threads = 1;
    opt.ctx = ctx;
    opt.batch = 2;
    const std::unique_ptr<Model> m = Model::load(path, opt);
    const std::int32_t vocab = static_cast<std::int32_t>(m->config().vocab_size);
    g_sink = m->description().size() + m->weight_bytes_per_token();
    const float* logits = m->forward(vocab - 1, 0);
    g_sink = logits[0] > 0;
    if (m->ctx() >= 4) {
        const std::int32_t tokens[3] = {0, vocab / 2, vocab - 1};
        logits = m->forward_batch(tokens, 3, 1, nullptr);
        g_sink = logits[vocab - 1] > 0;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = fuzz::input_file(build_file(fuzz::as_view(data, size)), "model.btt");
    fuzz::expect_ok_or_error([&] { inspect(path); });
    int ctx = 0;
    fuzz::expect_ok_or_error([&] { ctx = model_config(path); });
    fuzz::expect_ok_or_error([&] { tokenizer(path); });
    if (ctx > 0) fuzz::expect_ok_or_error([&] { run(path, ctx); });
    return 0;
}
