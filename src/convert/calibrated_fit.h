// What the fits of each ternary tensor take from a calibration file: per-column weights
// E[x_c^2] (dampened) and, with full statistics, the error feedback of the tensor's input.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bitttt/calibration.h"
#include "convert/error_feedback.h"

namespace bitttt {

struct CalibratedFit {
    std::vector<float> col_weights;                 // [cols]: E[x_c^2] + damp * mean
    std::shared_ptr<const ErrorFeedback> feedback;  // null without error feedback
};

class CalibrationSource {
public:
    // Opens and validates `path`. With `feedback`, the file must hold full statistics;
    // `group` is the error feedback's column group (ErrorFeedback).
    CalibrationSource(const std::string& path, double damp, bool feedback, std::int64_t group);

    // The statistics of the input weight `name` (cols columns) reads. Throws UsageError
    // naming the file and tensor when the file has none for it (made for another model),
    // FormatError when their size differs. The error feedback of an input is built once
    // and shared by the matrices that read it (q/k/v, gate/up), whatever their order.
    CalibratedFit for_tensor(const std::string& name, std::int64_t cols);

    const std::string& path() const { return file_.path(); }
    std::int64_t tokens() const { return file_.tokens(); }

private:
    CalibrationFile file_;
    double damp_;
    bool feedback_;
    std::int64_t group_;
    // The last few inputs' error feedback (a layer's tensors come in any order).
    std::vector<std::pair<std::string, std::shared_ptr<const ErrorFeedback>>> cache_;
};

}  // namespace bitttt
