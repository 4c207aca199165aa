// One tensor of a conversion: read from the checkpoint slab by slab (bounded memory),
// decomposed, quantised or copied as planned, and streamed into the .btt writer with its
// error statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/safetensors.h"
#include "convert/calibrated_fit.h"

namespace bitttt {

class Progress;
class ThreadPool;

// One tensor to write, and how.
struct Plan {
    const Checkpoint::Entry* entry;
    Encoding encoding;
    bool linear = false;  // a linear layer (what --target-bpw budgets)
    int bases = 0;        // ternary: N of this tensor
    Arrangement arrangement = Arrangement::Rows;  // ternary: how it is stored
};

// Rows and columns of the 2-D view of a tensor (a 1-D tensor is one row).
std::int64_t rows_of(const TensorInfo& t);
std::int64_t cols_of(const TensorInfo& t);

class TensorConverter {
public:
    // `calibration` may be null (no calibration file).
    TensorConverter(const Checkpoint& ckpt, ThreadPool& pool, Progress& progress, const ConvertOptions& opt,
                    CalibrationSource* calibration);
    ~TensorConverter();
    // Converts one tensor into the writer (one begin_tensor ... end_tensor).
    void run(const Plan& plan, BttWriter& writer);
    // Statistics of the last tensor run(), for the overall figures: ||W||^2 and the
    // squared error after 1..N bases.
    double last_sq_norm() const;
    const std::vector<double>& last_sq_err() const;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace bitttt
