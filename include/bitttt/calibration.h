// Calibration files: activation statistics of a model's linear-layer inputs, gathered
// by `bitttt calibrate` over calibration text, for the converter's fitting.
//
// A calibration file is a safetensors file (docs/FORMAT.md, "Calibration files") with
// __metadata__ {"format": "bitttt-calibration", "version": "1", "tokens", "chunks", "ctx",
// "text", "model", "stats": "full"|"diag"} and, per linear input key (calibration_key):
//   <key>.mean_sq  F32 [n]             E[x_i^2] over all calibration tokens
//   <key>.xtx      F32 [n(n+1)/2]      X^T X / tokens, packed upper triangle, row-major
//                                      (row i holds columns i..n-1); "full" stats only
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bitttt {

class SafetensorsFile;
struct TensorInfo;

inline constexpr const char* kCalibrationFormat = "bitttt-calibration";
inline constexpr const char* kCalibrationVersion = "1";

// Key of the linear input a weight reads ("model.layers.3.mlp.up_proj.weight" ->
// "model.layers.3.mlp.gate_up"): q/k/v_proj -> self_attn.qkv, o_proj -> self_attn.o_proj,
// gate/up_proj -> mlp.gate_up, down_proj -> mlp.down_proj. The ".weight" suffix may be
// left out. nullopt for anything else (norms, embeddings, lm_head).
std::optional<std::string> calibration_key(const std::string& weight_name);

// The four keys of layer `layer`, in the order a calibration file stores them.
std::vector<std::string> calibration_layer_keys(std::int64_t layer);

// Index of packed-upper element (i, j), i <= j, of an n x n matrix.
inline std::int64_t packed_upper_index(std::int64_t n, std::int64_t i, std::int64_t j) {
    return i * n - i * (i - 1) / 2 + (j - i);
}

class CalibrationFile {
public:
    // Memory-maps and validates `path`: the safetensors structure, the metadata (format,
    // version, a positive token count), every tensor named <key>.mean_sq / <key>.xtx with
    // a known key, F32, 1-D, the xtx length n(n+1)/2 for its mean_sq's n, each xtx with
    // its mean_sq, mean_sq values finite and >= 0, and with "stats": "full" an xtx for
    // every key. Throws FormatError naming the file (and the tensor) on any problem.
    explicit CalibrationFile(const std::string& path);
    ~CalibrationFile();
    CalibrationFile(CalibrationFile&&) noexcept;
    CalibrationFile& operator=(CalibrationFile&&) noexcept;

    const std::string& path() const;
    std::int64_t tokens() const { return tokens_; }
    bool has_full() const { return full_; }  // xtx present
    const std::map<std::string, std::string>& metadata() const;
    // Keys present, in file order.
    const std::vector<std::string>& keys() const { return keys_; }

    // Mean square per input channel of the input `weight_name` reads ([cols] floats in
    // the mapped file), nullptr if the file has no statistics for it. Throws FormatError
    // if the stored length differs from `cols`.
    const float* mean_sq(const std::string& weight_name, std::int64_t cols) const;
    // The full symmetric X^T X / tokens [cols, cols], row-major, unpacked into `out`;
    // false if absent. FormatError on a length mismatch or a non-finite value.
    bool xtx(const std::string& weight_name, std::int64_t cols, std::vector<double>& out) const;
    // The diagonal block [c0, c1) x [c0, c1) of X^T X / tokens, row-major float, into `out`
    // (what error feedback within column groups needs, without the whole matrix in memory);
    // false if absent.
    bool xtx_block(const std::string& weight_name, std::int64_t cols, std::int64_t c0, std::int64_t c1,
                   std::vector<float>& out) const;
    // Drops the mapped pages of the input's X^T X from memory (read again if touched): an
    // 8B model's are 16 GB, read once each.
    void release(const std::string& weight_name, std::int64_t cols) const;

private:
    struct Stats {
        const TensorInfo* mean_sq = nullptr;
        const TensorInfo* xtx = nullptr;
        std::int64_t n = 0;
    };
    const Stats* find(const std::string& weight_name, std::int64_t cols, const char* what) const;

    std::unique_ptr<SafetensorsFile> file_;
    std::int64_t tokens_ = 0;
    bool full_ = false;
    std::vector<std::string> keys_;
    std::map<std::string, Stats> stats_;
};

}  // namespace bitttt
