// Reading calibration files (include/bitttt/calibration.h): a validated view of the
// statistics `bitttt calibrate` stores, keyed by the linear input a weight reads.
#include "bitttt/calibration.h"

#include <cmath>
#include <cstring>

#include "bitttt/error.h"
#include "bitttt/safetensors.h"

namespace bitttt {

namespace {

constexpr const char* kLayerPrefix = "model.layers.";

// The projections and the input each reads.
struct ProjectionKey {
    const char* projection;
    const char* key;
};
constexpr ProjectionKey kProjections[] = {
    {"self_attn.q_proj", "self_attn.qkv"},    {"self_attn.k_proj", "self_attn.qkv"},
    {"self_attn.v_proj", "self_attn.qkv"},    {"self_attn.o_proj", "self_attn.o_proj"},
    {"mlp.gate_proj", "mlp.gate_up"},         {"mlp.up_proj", "mlp.gate_up"},
    {"mlp.down_proj", "mlp.down_proj"},
};
constexpr const char* kKeySuffixes[] = {"self_attn.qkv", "self_attn.o_proj", "mlp.gate_up", "mlp.down_proj"};

// "model.layers.<digits>." prefix length of `name`, or 0.
std::size_t layer_prefix_length(const std::string& name) {
    const std::size_t p = std::strlen(kLayerPrefix);
    if (name.compare(0, p, kLayerPrefix) != 0) return 0;
    std::size_t i = p;
    while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
    if (i == p || i - p > 9 || i >= name.size() || name[i] != '.') return 0;
    return i + 1;
}

bool is_key(const std::string& key) {
    const std::size_t p = layer_prefix_length(key);
    if (p == 0) return false;
    const std::string rest = key.substr(p);
    for (const char* s : kKeySuffixes)
        if (rest == s) return true;
    return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<std::string> calibration_key(const std::string& weight_name) {
    const std::size_t p = layer_prefix_length(weight_name);
    if (p == 0) return std::nullopt;
    std::string rest = weight_name.substr(p);
    if (ends_with(rest, ".weight")) rest.resize(rest.size() - 7);
    for (const ProjectionKey& k : kProjections)
        if (rest == k.projection) return weight_name.substr(0, p) + k.key;
    return std::nullopt;
}

std::vector<std::string> calibration_layer_keys(std::int64_t layer) {
    std::vector<std::string> keys;
    for (const char* s : kKeySuffixes) keys.push_back(kLayerPrefix + std::to_string(layer) + "." + s);
    return keys;
}

CalibrationFile::CalibrationFile(const std::string& path) : file_(std::make_unique<SafetensorsFile>(path)) {
    const auto& md = file_->metadata();
    auto fail = [&](const std::string& what) -> void { throw FormatError(path + ": " + what); };
    auto meta = [&](const char* k) -> std::string {
        const auto it = md.find(k);
        if (it == md.end())
            fail(std::string("not a calibration file (no \"") + k + "\" in __metadata__; write one with bitttt calibrate)");
        return it->second;
    };
    if (meta("format") != kCalibrationFormat)
        fail("not a calibration file (__metadata__ format is '" + md.at("format") + "', expected '" +
             kCalibrationFormat + "')");
    if (meta("version") != kCalibrationVersion)
        fail("calibration format version '" + md.at("version") + "' is not supported (this build reads version " +
             kCalibrationVersion + ")");
    const std::string tok = meta("tokens");
    try {
        std::size_t used = 0;
        tokens_ = std::stoll(tok, &used);
        if (used != tok.size()) tokens_ = 0;
    } catch (const std::exception&) {
        tokens_ = 0;
    }
    if (tokens_ <= 0) fail("__metadata__ tokens '" + tok + "' is not a positive integer");
    const std::string stats = meta("stats");
    if (stats != "full" && stats != "diag") fail("__metadata__ stats '" + stats + "' must be 'full' or 'diag'");
    full_ = stats == "full";

    // Pair every tensor with its key.
    for (const TensorInfo& t : file_->tensors()) {
        auto tensor_fail = [&](const std::string& what) { fail("tensor '" + t.name + "': " + what); };
        const bool is_mean = ends_with(t.name, ".mean_sq"), is_xtx = ends_with(t.name, ".xtx");
        if (!is_mean && !is_xtx) tensor_fail("unexpected tensor (expected <key>.mean_sq or <key>.xtx)");
        const std::string key = t.name.substr(0, t.name.size() - (is_mean ? 8 : 4));
        if (!is_key(key))
            tensor_fail("'" + key + "' is not a linear-input key (model.layers.L.self_attn.qkv, .self_attn.o_proj, "
                        ".mlp.gate_up, .mlp.down_proj)");
        if (t.dtype != DType::F32) tensor_fail(std::string("dtype is ") + dtype_name(t.dtype) + ", expected F32");
        if (t.shape.size() != 1) tensor_fail("shape " + format_shape(t.shape) + " is not 1-D");
        if (reinterpret_cast<std::uintptr_t>(file_->data(t)) % alignof(float) != 0)
            tensor_fail("data is not 4-byte aligned");
        auto [it, inserted] = stats_.try_emplace(key);
        if (inserted) keys_.push_back(key);
        Stats& s = it->second;
        if (is_mean) {
            if (s.mean_sq) tensor_fail("present twice");
            s.mean_sq = &t;
        } else {
            if (!full_) tensor_fail("xtx in a file whose __metadata__ stats is 'diag'");
            s.xtx = &t;
        }
    }
    if (stats_.empty()) fail("no statistics (no <key>.mean_sq tensors)");
    for (auto& [key, s] : stats_) {
        if (!s.mean_sq) fail("tensor '" + key + ".xtx' has no '" + key + ".mean_sq'");
        s.n = s.mean_sq->shape[0];
        if (s.n <= 0) fail("tensor '" + key + ".mean_sq' is empty");
        if (full_ && !s.xtx) fail("tensor '" + key + ".xtx' is missing (__metadata__ stats is 'full')");
        if (s.xtx && s.xtx->shape[0] != s.n * (s.n + 1) / 2)
            fail("tensor '" + key + ".xtx' has " + std::to_string(s.xtx->shape[0]) + " values; n = " +
                 std::to_string(s.n) + " (from mean_sq) needs n(n+1)/2 = " + std::to_string(s.n * (s.n + 1) / 2));
        const float* m = reinterpret_cast<const float*>(file_->data(*s.mean_sq));
        for (std::int64_t i = 0; i < s.n; ++i) {
            if (!std::isfinite(m[i]) || m[i] < 0)
                fail("tensor '" + key + ".mean_sq': value " + std::to_string(m[i]) + " at channel " +
                     std::to_string(i) + " is not a finite mean square");
        }
    }
}

CalibrationFile::~CalibrationFile() = default;
CalibrationFile::CalibrationFile(CalibrationFile&&) noexcept = default;
CalibrationFile& CalibrationFile::operator=(CalibrationFile&&) noexcept = default;

const std::string& CalibrationFile::path() const { return file_->path(); }
const std::map<std::string, std::string>& CalibrationFile::metadata() const { return file_->metadata(); }

const CalibrationFile::Stats* CalibrationFile::find(const std::string& weight_name, std::int64_t cols,
                                                    const char* what) const {
    const auto key = calibration_key(weight_name);
    if (!key) return nullptr;
    const auto it = stats_.find(*key);
    if (it == stats_.end()) return nullptr;
    if (it->second.n != cols)
        throw FormatError(path() + ": tensor '" + *key + "." + what + "' is for " + std::to_string(it->second.n) +
                          " input channels but '" + weight_name + "' has " + std::to_string(cols) + " columns");
    return &it->second;
}

const float* CalibrationFile::mean_sq(const std::string& weight_name, std::int64_t cols) const {
    const Stats* s = find(weight_name, cols, "mean_sq");
    return s ? reinterpret_cast<const float*>(file_->data(*s->mean_sq)) : nullptr;
}

bool CalibrationFile::xtx(const std::string& weight_name, std::int64_t cols, std::vector<double>& out) const {
    const Stats* s = find(weight_name, cols, "xtx");
    if (!s || !s->xtx) return false;
    const float* p = reinterpret_cast<const float*>(file_->data(*s->xtx));
    const auto n = static_cast<std::size_t>(cols);
    out.assign(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = i; j < n; ++j, ++p) {
            const float v = *p;
            if (!std::isfinite(v))
                throw FormatError(path() + ": tensor '" + s->xtx->name + "': non-finite value at (" +
                                  std::to_string(i) + ", " + std::to_string(j) + ")");
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
    }
    return true;
}

void CalibrationFile::release(const std::string& weight_name, std::int64_t cols) const {
    const Stats* st = find(weight_name, cols, "xtx");
    if (!st || !st->xtx) return;
    file_->mapped().release(file_->data_offset() + st->xtx->begin, st->xtx->nbytes());
}

bool CalibrationFile::xtx_block(const std::string& weight_name, std::int64_t cols, std::int64_t c0, std::int64_t c1,
                                std::vector<float>& out) const {
    const Stats* st = find(weight_name, cols, "xtx");
    if (!st || !st->xtx) return false;
    if (c0 < 0 || c1 > cols || c0 >= c1) {
        throw UsageError("xtx block [" + std::to_string(c0) + ", " + std::to_string(c1) + ") is out of range for " +
                         std::to_string(cols) + " columns");
    }
    const float* p = reinterpret_cast<const float*>(file_->data(*st->xtx));
    const auto m = static_cast<std::size_t>(c1 - c0);
    out.resize(m * m);
    for (std::int64_t i = c0; i < c1; ++i) {
        const float* row = p + packed_upper_index(cols, i, i);  // (i, i), (i, i + 1), ...
        for (std::int64_t j = i; j < c1; ++j) {
            const float v = row[j - i];
            if (!std::isfinite(v)) {
                throw FormatError(path() + ": tensor '" + st->xtx->name + "': non-finite value at (" +
                                  std::to_string(i) + ", " + std::to_string(j) + ")");
            }
            out[static_cast<std::size_t>(i - c0) * m + static_cast<std::size_t>(j - c0)] = v;
            out[static_cast<std::size_t>(j - c0) * m + static_cast<std::size_t>(i - c0)] = v;
        }
    }
    return true;
}

}  // namespace bitttt
