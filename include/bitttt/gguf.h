// Writing GGUF files (version 3), the format llama.cpp reads: for side-by-side measurements
// on the same weights, and a first step to GGUF interop. bitttt does not read GGUF.
//
// Layout (all little-endian): "GGUF", version u32 = 3, tensor count u64, key/value count
// u64; the key/values (key: u64 length + UTF-8 bytes; value type u32; value); the tensor
// infos (name, dimension count u32, dimensions u64 innermost first, ggml type u32, data
// offset u64 relative to the data section); zero padding to the alignment (32); the data
// section, every tensor starting on a multiple of the alignment. docs/FORMAT.md, "GGUF
// export", lists what export_llama_gguf writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace bitttt {

// ggml tensor types this writer produces (ggml's numbering).
enum class GgufTensorType : std::uint32_t { F32 = 0, F16 = 1 };

// GGUF value types (the format's numbering).
enum class GgufValueType : std::uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
    U64 = 10, I64 = 11, F64 = 12,
};

class GgufWriter {
public:
    static constexpr std::uint32_t kVersion = 3;
    static constexpr std::uint64_t kAlignment = 32;

    // Key/values, written in the order added. UsageError if a key is added twice.
    void add_u32(const std::string& key, std::uint32_t v);
    void add_f32(const std::string& key, float v);
    void add_string(const std::string& key, const std::string& v);
    void add_strings(const std::string& key, const std::vector<std::string>& v);
    void add_f32s(const std::string& key, const std::vector<float>& v);
    void add_i32s(const std::string& key, const std::vector<std::int32_t>& v);

    // A tensor of dimensions `ne` (innermost first: a [rows, cols] matrix is {cols, rows})
    // whose bytes `fill(dst, nbytes)` writes when write() reaches it, so that multi-GB
    // files never sit in memory. UsageError on a repeated name or a bad shape.
    void add_tensor(const std::string& name, GgufTensorType type, std::vector<std::int64_t> ne,
                    std::function<void(std::uint8_t* dst, std::size_t nbytes)> fill);

    // Writes the file through a temporary file renamed over `path` when complete.
    // `on_tensor(i, n)` (optional) is called after each tensor's data is written.
    void write(const std::string& path, const std::function<void(std::size_t, std::size_t)>& on_tensor = {}) const;

private:
    struct Tensor {
        std::string name;
        GgufTensorType type;
        std::vector<std::int64_t> ne;
        std::size_t nbytes;
        std::function<void(std::uint8_t*, std::size_t)> fill;
    };
    void add_kv(const std::string& key, GgufValueType type, std::vector<std::uint8_t> value);
    std::vector<std::string> keys_;
    std::vector<std::uint8_t> kv_bytes_;  // the encoded key/values, back to back
    std::vector<Tensor> tensors_;
};

// Writes the Llama checkpoint at `model_path` (a Hugging Face folder or .safetensors with
// its config.json) as a GGUF file of llama.cpp's "llama" architecture: 2-D tensors in
// binary16 (general.file_type 1, "mostly F16"), norms in F32, q and k rows reordered to
// llama.cpp's rotary pairing, a llama3 rope scaling as rope_freqs.weight. The vocabulary
// is a placeholder of the model's size (SentencePiece type: <unk>, <s>, </s>, the 256 byte
// tokens, then "tok<i>"), enough to load and benchmark, not to tokenise text. Throws
// FormatError / UnsupportedError naming the checkpoint for a model bitttt cannot read.
// `progress(done, total)` (optional) counts tensors written.
void export_llama_gguf(const std::string& model_path, const std::string& out_path,
                       const std::function<void(std::size_t, std::size_t)>& progress = {});

}  // namespace bitttt
