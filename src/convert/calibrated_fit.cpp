// Calibration statistics for the converter's fits (see calibrated_fit.h).
#include "convert/calibrated_fit.h"

#include "bitttt/error.h"

namespace bitttt {

namespace {
// Inputs whose error feedback is kept: a layer has four, and its tensors may come in any
// order, so four is enough for files that store a layer's tensors together.
constexpr std::size_t kFeedbackCache = 4;
}  // namespace

CalibrationSource::CalibrationSource(const std::string& path, double damp, bool feedback, std::int64_t group)
    : file_(path), damp_(damp), feedback_(feedback), group_(group) {
    if (feedback_ && !file_.has_full()) {
        throw UsageError(path + " holds only the diagonal statistics (calibrate --stats diag); error feedback needs "
                                "X^T X: recalibrate with --stats full, or convert with --no-error-feedback");
    }
}

CalibratedFit CalibrationSource::for_tensor(const std::string& name, std::int64_t cols) {
    const auto key = calibration_key(name);
    const float* ms = key ? file_.mean_sq(name, cols) : nullptr;
    if (ms == nullptr) {
        throw UsageError(file_.path() + " has no calibration statistics for tensor '" + name +
                         "'; it was made for another model (calibrate this one)");
    }
    CalibratedFit out;
    double mean = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) mean += ms[c];
    mean /= static_cast<double>(std::max<std::int64_t>(cols, 1));
    out.col_weights.resize(static_cast<std::size_t>(cols));
    for (std::int64_t c = 0; c < cols; ++c) out.col_weights[static_cast<std::size_t>(c)] = static_cast<float>(ms[c] + damp_ * mean);
    if (!feedback_) return out;
    for (const auto& [k, fb] : cache_) {
        if (k == *key) {
            out.feedback = fb;
            return out;
        }
    }
    std::vector<float> probe;
    if (!file_.xtx_block(name, cols, 0, 1, probe)) {
        throw UsageError(file_.path() + " has no X^T X for tensor '" + name + "' (input " + *key +
                         "); recalibrate with --stats full, or convert with --no-error-feedback");
    }
    auto read = [&](std::int64_t c0, std::int64_t c1, std::vector<float>& h) { file_.xtx_block(name, cols, c0, c1, h); };
    out.feedback = std::make_shared<ErrorFeedback>(cols, group_, ms, damp_, read, file_.path() + ": input " + *key);
    file_.release(name, cols);  // built once per input: its pages are not needed again
    cache_.emplace_back(*key, out.feedback);
    if (cache_.size() > kFeedbackCache) cache_.erase(cache_.begin());
    return out;
}

}  // namespace bitttt
