// export_llama_gguf (include/bitttt/gguf.h): a Hugging Face Llama checkpoint as a GGUF file
// of llama.cpp's "llama" architecture. What is written is listed in docs/FORMAT.md
// ("GGUF export").
#include <algorithm>
#include <cstring>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/gguf.h"
#include "bitttt/model_config.h"
#include "bitttt/safetensors.h"

namespace bitttt {

namespace {

// llama.cpp rotates element pairs (2i, 2i+1) of a head, Hugging Face pairs (i, i + d/2):
// row 2i + s of a head in the file is row s * d/2 + i of the checkpoint's head.
std::int64_t rotary_source_row(std::int64_t r, std::int64_t head_dim) {
    const std::int64_t h = r / head_dim, j = r % head_dim;
    return h * head_dim + (j % 2) * (head_dim / 2) + j / 2;
}

// GGUF token types (llama.cpp's numbering).
constexpr std::int32_t kTokenNormal = 1, kTokenUnknown = 2, kTokenControl = 3, kTokenByte = 6;

struct Vocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<std::int32_t> types;
};

// The placeholder vocabulary: <unk>, <s>, </s>, <0x00>..<0xFF>, then tok<i>.
Vocab placeholder_vocab(std::int64_t n) {
    Vocab v;
    auto add = [&](std::string t, std::int32_t type) {
        v.scores.push_back(-static_cast<float>(v.tokens.size()));
        v.tokens.push_back(std::move(t));
        v.types.push_back(type);
    };
    add("<unk>", kTokenUnknown);
    add("<s>", kTokenControl);
    add("</s>", kTokenControl);
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", kTokenByte);
    while (static_cast<std::int64_t>(v.tokens.size()) < n) add("tok" + std::to_string(v.tokens.size()), kTokenNormal);
    return v;
}

}  // namespace

void export_llama_gguf(const std::string& model_path, const std::string& out_path,
                       const std::function<void(std::size_t, std::size_t)>& progress) {
    const Checkpoint ckpt = Checkpoint::open(model_path);
    if (!ckpt.config_path()) {
        throw FormatError(model_path + ": no config.json next to the weights (the GGUF export needs the model's shape)");
    }
    const LlamaConfig c = LlamaConfig::load(*ckpt.config_path());
    validate_checkpoint(c, ckpt, *ckpt.config_path());
    if (c.vocab_size < 259) {
        throw UnsupportedError(model_path + ": vocabulary of " + std::to_string(c.vocab_size) +
                               " tokens; the GGUF export's placeholder vocabulary needs at least 259 (3 specials and "
                               "256 byte tokens)");
    }
    auto u32 = [&](std::int64_t v, const char* what) {
        if (v < 0 || v > 0xFFFFFFFFll) throw UnsupportedError(model_path + ": " + what + " does not fit GGUF's u32");
        return static_cast<std::uint32_t>(v);
    };

    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", "bitttt export");
    w.add_u32("general.file_type", 1);  // mostly F16
    w.add_u32("general.alignment", static_cast<std::uint32_t>(GgufWriter::kAlignment));
    w.add_u32("llama.vocab_size", u32(c.vocab_size, "vocab_size"));
    w.add_u32("llama.context_length", u32(c.max_position_embeddings, "max_position_embeddings"));
    w.add_u32("llama.embedding_length", u32(c.hidden_size, "hidden_size"));
    w.add_u32("llama.block_count", u32(c.num_hidden_layers, "num_hidden_layers"));
    w.add_u32("llama.feed_forward_length", u32(c.intermediate_size, "intermediate_size"));
    w.add_u32("llama.attention.head_count", u32(c.num_attention_heads, "num_attention_heads"));
    w.add_u32("llama.attention.head_count_kv", u32(c.num_key_value_heads, "num_key_value_heads"));
    w.add_u32("llama.rope.dimension_count", u32(c.head_dim, "head_dim"));
    if (c.head_dim * c.num_attention_heads != c.hidden_size) {
        w.add_u32("llama.attention.key_length", u32(c.head_dim, "head_dim"));
        w.add_u32("llama.attention.value_length", u32(c.head_dim, "head_dim"));
    }
    w.add_f32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
    w.add_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
    if (c.rope_scaling.type == "linear") {
        w.add_string("llama.rope.scaling.type", "linear");
        w.add_f32("llama.rope.scaling.factor", static_cast<float>(c.rope_scaling.factor));
    }
    const Vocab v = placeholder_vocab(c.vocab_size);
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_strings("tokenizer.ggml.tokens", v.tokens);
    w.add_f32s("tokenizer.ggml.scores", v.scores);
    w.add_i32s("tokenizer.ggml.token_type", v.types);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);

    // A 2-D tensor in binary16, rows optionally reordered (q, k: rotary pairing with
    // heads of head_dim rows).
    auto matrix = [&](const std::string& gguf_name, const std::string& hf_name, std::int64_t rotary_head_dim) {
        const Checkpoint::Entry* e = ckpt.find(hf_name);
        const std::int64_t rows = e->info->shape[0], cols = e->info->shape[1];
        w.add_tensor(gguf_name, GgufTensorType::F16, {cols, rows}, [&ckpt, e, rows, cols, rotary_head_dim](
                                                                        std::uint8_t* dst, std::size_t) {
            constexpr std::int64_t kChunk = 256;
            std::vector<float> row(static_cast<std::size_t>(cols * kChunk));
            for (std::int64_t r0 = 0; r0 < rows; r0 += kChunk) {
                const std::int64_t n = std::min(kChunk, rows - r0);
                if (rotary_head_dim == 0) ckpt.read_rows_f32(*e, r0, r0 + n, row.data());
                for (std::int64_t i = 0; i < n; ++i) {
                    const float* src = row.data() + i * cols;
                    if (rotary_head_dim != 0) {
                        const std::int64_t s = rotary_source_row(r0 + i, rotary_head_dim);
                        ckpt.read_rows_f32(*e, s, s + 1, row.data());
                        src = row.data();
                    }
                    for (std::int64_t j = 0; j < cols; ++j) {
                        const std::uint16_t h = f32_to_f16(src[j]);
                        std::memcpy(dst + 2 * ((r0 + i) * cols + j), &h, 2);
                    }
                }
            }
            ckpt.release(*e);
        });
    };
    auto vector_f32 = [&](const std::string& gguf_name, const std::string& hf_name) {
        const Checkpoint::Entry* e = ckpt.find(hf_name);
        w.add_tensor(gguf_name, GgufTensorType::F32, {e->info->numel()}, [&ckpt, e](std::uint8_t* dst, std::size_t n) {
            const std::vector<float> f = ckpt.read_f32(*e);
            std::memcpy(dst, f.data(), n);
        });
    };

    matrix("token_embd.weight", "model.embed_tokens.weight", 0);
    if (c.rope_scaling.type == "llama3") {
        // llama.cpp divides each rotary frequency by rope_freqs[i]: the unscaled frequency
        // over the scaled one.
        LlamaConfig plain = c;
        plain.rope_scaling = RopeScaling{};
        const std::vector<float> base = rope_inv_freq(plain), scaled = rope_inv_freq(c);
        std::vector<float> factors(base.size());
        for (std::size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / scaled[i];
        w.add_tensor("rope_freqs.weight", GgufTensorType::F32, {static_cast<std::int64_t>(factors.size())},
                     [factors](std::uint8_t* dst, std::size_t n) { std::memcpy(dst, factors.data(), n); });
    }
    for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string hf = "model.layers." + std::to_string(l) + ".", g = "blk." + std::to_string(l) + ".";
        vector_f32(g + "attn_norm.weight", hf + "input_layernorm.weight");
        matrix(g + "attn_q.weight", hf + "self_attn.q_proj.weight", c.head_dim);
        matrix(g + "attn_k.weight", hf + "self_attn.k_proj.weight", c.head_dim);
        matrix(g + "attn_v.weight", hf + "self_attn.v_proj.weight", 0);
        matrix(g + "attn_output.weight", hf + "self_attn.o_proj.weight", 0);
        vector_f32(g + "ffn_norm.weight", hf + "post_attention_layernorm.weight");
        matrix(g + "ffn_gate.weight", hf + "mlp.gate_proj.weight", 0);
        matrix(g + "ffn_up.weight", hf + "mlp.up_proj.weight", 0);
        matrix(g + "ffn_down.weight", hf + "mlp.down_proj.weight", 0);
    }
    vector_f32("output_norm.weight", "model.norm.weight");
    if (!c.tie_word_embeddings) matrix("output.weight", "lm_head.weight", 0);
    w.write(out_path, progress);
}

}  // namespace bitttt
