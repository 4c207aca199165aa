// libFuzzer target: a sharded checkpoint's model.safetensors.index.json.
//
// Input: the index.json text. At start-up the target writes a model folder of its own
// with a few small shards (valid ones, a corrupt one, an empty one, one in a subfolder)
// and a config.json naming a tiny Llama; each input becomes the folder's index. Then
// Checkpoint::open on the folder and on the index file, every tensor read as float, and
// the checkpoint checked against the config (what `bitttt convert` does first).
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"
#include "fuzz_common.h"

namespace {

using namespace bitttt;
namespace fs = std::filesystem;

std::vector<std::uint8_t> f32_bytes(std::size_t n) {
    std::vector<std::uint8_t> b(4 * n);
    for (std::size_t i = 0; i < n; ++i) {
        const float v = 0.25f * static_cast<float>(i + 1);
        std::memcpy(b.data() + 4 * i, &v, 4);
    }
    return b;
}

// The model folder, written once per process.
const fs::path& model_dir() {
    static const fs::path dir = [] {
        const fs::path d = fuzz::scratch_dir() / "ckpt";
        fs::create_directories(d / "sub");
        // A Llama with hidden 2, 1 layer, 1 head, intermediate 2, vocab 4.
        SafetensorsWriter a;
        a.add("model.embed_tokens.weight", DType::F32, {4, 2}, f32_bytes(8));
        a.add("model.layers.0.input_layernorm.weight", DType::F32, {2}, f32_bytes(2));
        a.add("model.layers.0.self_attn.q_proj.weight", DType::F32, {2, 2}, f32_bytes(4));
        a.add("model.layers.0.self_attn.k_proj.weight", DType::F32, {2, 2}, f32_bytes(4));
        a.add("model.layers.0.self_attn.v_proj.weight", DType::F32, {2, 2}, f32_bytes(4));
        a.add("model.layers.0.self_attn.o_proj.weight", DType::F32, {2, 2}, f32_bytes(4));
        a.add("empty", DType::F16, {0, 3}, {});
        a.write((d / "model-00001-of-00002.safetensors").string());
        SafetensorsWriter b;
        b.add("model.layers.0.post_attention_layernorm.weight", DType::F32, {2}, f32_bytes(2));
        b.add("model.layers.0.mlp.gate_proj.weight", DType::BF16, {2, 2}, std::vector<std::uint8_t>(8, 0x3f));
        b.add("model.layers.0.mlp.up_proj.weight", DType::F16, {2, 2}, std::vector<std::uint8_t>(8, 0x3c));
        b.add("model.layers.0.mlp.down_proj.weight", DType::F32, {2, 2}, f32_bytes(4));
        b.add("model.norm.weight", DType::F32, {2}, f32_bytes(2));
        b.add("lm_head.weight", DType::F32, {4, 2}, f32_bytes(8));
        b.add("ints", DType::I32, {2}, std::vector<std::uint8_t>(8, 1));
        b.write((d / "model-00002-of-00002.safetensors").string());
        SafetensorsWriter c;
        c.add("model.layers.1.input_layernorm.weight", DType::F32, {2}, f32_bytes(2));
        c.write((d / "sub" / "extra.safetensors").string());
        fuzz::write_bytes(d / "corrupt.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\":", 13));
        fuzz::write_bytes(d / "empty.safetensors", "");
        fuzz::write_bytes(d / "config.json",
                          R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2,
                              "intermediate_size": 2, "num_hidden_layers": 1, "num_attention_heads": 1,
                              "vocab_size": 4, "tie_word_embeddings": false})");
        return d;
    }();
    return dir;
}

volatile float g_sink;

void open_and_read(const std::string& path) {
    const Checkpoint ck = Checkpoint::open(path);
    for (const Checkpoint::Entry& e : ck.tensors()) {
        if (ck.find(e.info->name) == nullptr) __builtin_trap();
        fuzz::expect_ok_or_error([&] {
            const std::vector<float> v = ck.read_f32(e);
            if (!v.empty()) g_sink = v.front() + v.back();
        });
    }
    (void)ck.total_bytes();
    if (ck.config_path()) {
        const LlamaConfig cfg = LlamaConfig::load(*ck.config_path());
        validate_checkpoint(cfg, ck, *ck.config_path());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fs::path index = model_dir() / "model.safetensors.index.json";
    fuzz::write_bytes(index, fuzz::as_view(data, size));
    fuzz::expect_ok_or_error([&] { open_and_read(model_dir().string()); });
    fuzz::expect_ok_or_error([&] { open_and_read(index.string()); });
    return 0;
}
