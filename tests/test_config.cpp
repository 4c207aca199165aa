// config.json parsing for the Llama family.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "bitttt/error.h"
#include "bitttt/limits.h"
#include "bitttt/model_config.h"
#include "fixtures.h"
#include "test_util.h"

using namespace bitttt;
using nlohmann::json;

namespace {

json llama3_8b() {
    return json::parse(R"({
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
      "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
      "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
      "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false,
      "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
      "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"}
    })");
}

}  // namespace

TEST_CASE("config: Llama-3.1-8B style config.json", "[config]") {
    LlamaConfig c = LlamaConfig::from_json(llama3_8b(), "config.json");
    CHECK(c.hidden_size == 4096);
    CHECK(c.head_dim == 128);  // derived: 4096 / 32
    CHECK(c.num_key_value_heads == 8);
    CHECK(c.rope_scaling.type == "llama3");
    CHECK(c.rope_scaling.factor == 8.0);
    CHECK(c.rope_scaling.original_max_position_embeddings == 8192);
    CHECK(c.eos_token_ids == std::vector<std::int64_t>{128001, 128008, 128009});
    CHECK(c.bos_token_id == 128000);
    CHECK_FALSE(c.tie_word_embeddings);
    // 8.03B parameters, as published.
    CHECK(c.parameter_count() == 8030261248);
    auto req = c.required_tensors();
    CHECK(req.size() == 1 + 32 * 9 + 1 + 1);
    CHECK(req[2].first == "model.layers.0.self_attn.q_proj.weight");
    CHECK(req[3].second == std::vector<std::int64_t>{1024, 4096});  // k_proj
    // Round trip through the normalised form stored in .btt headers.
    LlamaConfig back = LlamaConfig::from_json(c.to_json(), "header");
    CHECK(back.to_json() == c.to_json());
}

TEST_CASE("config: the real stories260K config.json", "[config][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/config.json");
    LlamaConfig c = LlamaConfig::load(bitttt::test::shared_dir() + "/models/stories260K-hf/config.json");
    CHECK(c.hidden_size == 64);
    CHECK(c.intermediate_size == 172);
    CHECK(c.num_hidden_layers == 5);
    CHECK(c.num_attention_heads == 8);
    CHECK(c.num_key_value_heads == 4);
    CHECK(c.head_dim == 8);
    CHECK(c.vocab_size == 512);
    CHECK(c.tie_word_embeddings);
    CHECK(c.rope_scaling.type == "none");
    CHECK(c.rms_norm_eps == Approx(1e-5));
    CHECK(c.bos_token_id == 1);
    CHECK(c.eos_token_ids == std::vector<std::int64_t>{2});
}

TEST_CASE("config: errors name the file and the field", "[config]") {
    json j = llama3_8b();
    SECTION("missing field") {
        j.erase("hidden_size");
        REQUIRE_THROWS_WITH(LlamaConfig::from_json(j, "cfg.json"),
                            Catch::Contains("cfg.json") && Catch::Contains("'hidden_size'"));
    }
    SECTION("mistyped field") {
        j["num_hidden_layers"] = "32";
        REQUIRE_THROWS_WITH(LlamaConfig::from_json(j, "cfg.json"), Catch::Contains("'num_hidden_layers'"));
    }
    SECTION("heads not a multiple of kv heads") {
        j["num_key_value_heads"] = 5;
        REQUIRE_THROWS_AS(LlamaConfig::from_json(j, "cfg.json"), FormatError);
    }
    SECTION("other architectures are refused clearly") {
        j["model_type"] = "gpt2";
        REQUIRE_THROWS_AS(LlamaConfig::from_json(j, "cfg.json"), UnsupportedError);
    }
    SECTION("unsupported rope scaling") {
        j["rope_scaling"]["rope_type"] = "yarn";
        REQUIRE_THROWS_WITH(LlamaConfig::from_json(j, "cfg.json"), Catch::Contains("yarn"));
    }
    SECTION("linear rope scaling is accepted") {
        j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
        CHECK(LlamaConfig::from_json(j, "cfg.json").rope_scaling.type == "linear");
    }
    SECTION("explicit head_dim wins") {
        j["head_dim"] = 64;
        CHECK(LlamaConfig::from_json(j, "cfg.json").head_dim == 64);
    }
}

TEST_CASE("config: tensor roles", "[config]") {
    CHECK(tensor_role("model.layers.12.self_attn.k_proj.weight") == TensorRole::Linear);
    CHECK(tensor_role("model.layers.0.mlp.down_proj.weight") == TensorRole::Linear);
    CHECK(tensor_role("model.layers.3.post_attention_layernorm.weight") == TensorRole::Norm);
    CHECK(tensor_role("model.norm.weight") == TensorRole::Norm);
    CHECK(tensor_role("model.embed_tokens.weight") == TensorRole::Embedding);
    CHECK(tensor_role("lm_head.weight") == TensorRole::LmHead);
    CHECK(tensor_role("model.layers.0.self_attn.rotary_emb.inv_freq") == TensorRole::Other);
}

TEST_CASE("config: every count at its limit passes, one past it is refused naming the field and the limit", "[config][hostile]") {
    struct Case {
        const char* label;
        std::function<void(json&)> at;    // at the limit: accepted
        std::function<void(json&)> past;  // one past: refused
        std::vector<std::string> what;    // in the refusal
    };
    const auto set = [](const char* key, json v) { return [key, v](json& j) { j[key] = v; }; };
    const std::vector<Case> cases = {
        {"num_hidden_layers", set("num_hidden_layers", limits::kMaxLayers), set("num_hidden_layers", limits::kMaxLayers + 1),
         {"'num_hidden_layers'", std::to_string(limits::kMaxLayers)}},
        {"hidden_size", set("hidden_size", limits::kMaxHidden), set("hidden_size", limits::kMaxHidden + 1),
         {"'hidden_size'", std::to_string(limits::kMaxHidden)}},
        {"intermediate_size", set("intermediate_size", limits::kMaxIntermediate),
         set("intermediate_size", limits::kMaxIntermediate + 1), {"'intermediate_size'", std::to_string(limits::kMaxIntermediate)}},
        {"num_attention_heads",
         [](json& j) { j["hidden_size"] = limits::kMaxHidden; j["num_attention_heads"] = limits::kMaxHeads; },
         [](json& j) { j["hidden_size"] = limits::kMaxHidden; j["num_attention_heads"] = limits::kMaxHeads + 1; },
         {"'num_attention_heads'", std::to_string(limits::kMaxHeads)}},
        {"num_key_value_heads", set("num_key_value_heads", 32), set("num_key_value_heads", 33),
         {"'num_key_value_heads'", "32"}},
        {"vocab_size", set("vocab_size", limits::kMaxVocab), set("vocab_size", limits::kMaxVocab + 1),
         {"'vocab_size'", std::to_string(limits::kMaxVocab)}},
        {"head_dim", set("head_dim", limits::kMaxHeadDim), set("head_dim", limits::kMaxHeadDim + 2),
         {"'head_dim'", std::to_string(limits::kMaxHeadDim)}},
        {"heads x head_dim",
         [](json& j) { j["num_key_value_heads"] = 1; j["num_attention_heads"] = 32; j["head_dim"] = 4096; },
         [](json& j) { j["num_key_value_heads"] = 1; j["num_attention_heads"] = 33; j["head_dim"] = 3972; },
         {"num_attention_heads x head_dim", std::to_string(limits::kMaxHidden)}},
        {"max_position_embeddings", set("max_position_embeddings", limits::kMaxContext),
         set("max_position_embeddings", limits::kMaxContext + 1),
         {"'max_position_embeddings'", std::to_string(limits::kMaxContext)}},
        {"original_max_position_embeddings",
         [](json& j) { j["rope_scaling"]["original_max_position_embeddings"] = limits::kMaxContext; },
         [](json& j) { j["rope_scaling"]["original_max_position_embeddings"] = limits::kMaxContext + 1; },
         {"original_max_position_embeddings", std::to_string(limits::kMaxContext)}},
        {"bos_token_id", set("bos_token_id", 128255), set("bos_token_id", 128256), {"'bos_token_id'", "128255"}},
        {"eos_token_id", set("eos_token_id", 128255), set("eos_token_id", 128256), {"'eos_token_id'", "128255"}},
        {"eos_token_id list length",
         [](json& j) { j["eos_token_id"] = std::vector<int>(64, 2); },
         [](json& j) { j["eos_token_id"] = std::vector<int>(65, 2); }, {"'eos_token_id'", "64"}},
        {"an eos_token_id in a list", [](json& j) { j["eos_token_id"] = {1, 128255}; },
         [](json& j) { j["eos_token_id"] = {1, 128256}; }, {"'eos_token_id[1]'", "128255"}},
    };
    for (const auto& c : cases) {
        INFO(c.label);
        json at = llama3_8b();
        c.at(at);
        CHECK_NOTHROW(LlamaConfig::from_json(at, "/m/config.json"));
        json past = llama3_8b();
        c.past(past);
        try {
            LlamaConfig::from_json(past, "/m/config.json");
            FAIL("one past the limit was accepted");
        } catch (const FormatError& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK(msg.find("/m/config.json") != std::string::npos);
            for (const auto& w : c.what) CHECK(msg.find(w) != std::string::npos);
        }
    }
}
