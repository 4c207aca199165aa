// Golden outputs on the real stories260K model from ../shared: greedy generation of the
// F32 reference against llama2.c's expected tokens and text, and perplexity against
// llama.cpp's figure for the same text and settings.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "bitttt/converter.h"
#include "bitttt/generate.h"
#include "bitttt/model.h"
#include "bitttt/tokenizer.h"
#include "test_util.h"

using namespace bitttt;
using nlohmann::json;

namespace {

std::string shared(const std::string& rel) { return bitttt::test::shared_dir() + "/" + rel; }

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("golden: stories260K F32 greedy generation matches llama2.c", "[golden][shared]") {
    BITTTT_REQUIRE_SHARED("tests/stories260K-greedy.json");
    const json want = json::parse(slurp(shared("tests/stories260K-greedy.json")));
    auto model = Model::load(shared("models/stories260K-hf"), LoadOptions{0, 2, 0});
    Tokenizer tok = Tokenizer::from_json(model->tokenizer_json(), "stories260K tokenizer");
    std::vector<std::int32_t> prompt = tok.encode(want["prompt"].get<std::string>(), want["add_bos"].get<bool>());
    const auto expected = want["expected_ids"].get<std::vector<std::int32_t>>();
    REQUIRE(prompt == std::vector<std::int32_t>{expected[0]});
    GenerateOptions g;
    g.temperature = 0.0f;
    g.max_new_tokens = static_cast<int>(expected.size()) - 1;
    GenerateResult r = generate(*model, prompt, g);
    std::vector<std::int32_t> got = prompt;
    got.insert(got.end(), r.ids.begin(), r.ids.end());
    CHECK(got == expected);
    const std::string text = tok.decode(r.ids);
    const std::string expected_text = want["expected_text"].get<std::string>();
    CHECK(text.substr(0, expected_text.size()) == expected_text);
}

TEST_CASE("golden: stories260K F32 perplexity matches llama.cpp", "[golden][shared]") {
    BITTTT_REQUIRE_SHARED("text/tinystories/tinystories_eval.txt");
    // ../shared/text/README.md: llama.cpp's perplexity tool, stories260K F32, ctx 256,
    // first 100 chunks of this text: PPL 3.8867 +/- 0.063.
    // (llama.cpp's KV cache is binary16 by default, as bitttt's; both caches are checked.)
    double ppl[2] = {0, 0};
    for (const KvCacheType kv : {KvCacheType::F16, KvCacheType::F32}) {
        INFO("kv cache " << kv_cache_type_name(kv));
        LoadOptions lo{0, 2, 256};
        lo.kv_cache = kv;
        auto model = Model::load(shared("models/stories260K-hf"), lo);
        Tokenizer tok = Tokenizer::from_json(model->tokenizer_json(), "stories260K tokenizer");
        const auto tokens = tok.encode(slurp(shared("text/tinystories/tinystories_eval.txt")), true);
        PerplexityOptions o;
        o.ctx = 256;
        o.chunks = 100;
        o.bos_id = *tok.bos_id();
        PerplexityResult r = perplexity(*model, tokens, o);
        CHECK(r.chunks == 100);
        CHECK(r.tokens == 100 * 127);
        CHECK(r.perplexity == Approx(3.8867).margin(0.005));
        CHECK(r.stderr_ == Approx(0.063).margin(0.002));
        ppl[kv == KvCacheType::F32] = r.perplexity;
    }
    // The binary16 cache costs well under 0.5% of perplexity.
    CHECK(std::fabs(ppl[0] - ppl[1]) < 0.005 * ppl[1]);
}

TEST_CASE("golden: a 4-base stories260K file is close to the F32 model and improves with bases",
          "[golden][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    bitttt::test::TempDir dir;
    ConvertOptions c;
    c.input = shared("models/stories260K-hf");
    c.output = dir.file("s4.btt");
    c.bases = 4;
    convert(c);
    auto ref = Model::load(c.input, LoadOptions{0, 2, 128});
    Tokenizer tok = Tokenizer::from_json(ref->tokenizer_json(), "stories260K tokenizer");
    const auto text = slurp(shared("text/tinystories/tinystories_eval.txt")).substr(0, 20000);
    const auto tokens = tok.encode(text, true);
    PerplexityOptions o;
    o.ctx = 128;
    o.chunks = 8;
    o.bos_id = *tok.bos_id();
    std::vector<double> kld;
    for (int k = 1; k <= 4; ++k) {
        auto m = Model::load(c.output, LoadOptions{k, 2, 128});
        PerplexityResult r = perplexity(*m, tokens, o, ref.get());
        kld.push_back(*r.kld);
        INFO("bases " << k << " ppl " << r.perplexity << " kld " << *r.kld << " top1 " << *r.top1_agreement);
        CHECK(r.perplexity > *r.reference_perplexity * 0.9);
        if (k == 4) CHECK(*r.top1_agreement > 0.85);
    }
    for (int k = 1; k < 4; ++k) CHECK(kld[k] < kld[k - 1]);
}
