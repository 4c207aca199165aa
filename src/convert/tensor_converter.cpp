// One tensor of a conversion: read slab by slab, fitted, written (see tensor_converter.h).
#include "convert/tensor_converter.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/int8.h"
#include "util/progress.h"
#include "util/thread_pool.h"

namespace bitttt {

namespace {

// Output is produced and written in slabs of rows of about this many bytes, so memory
// stays bounded whatever the tensor's size.
constexpr std::size_t kSlabBytes = std::size_t{32} << 20;
// Rows handed to a thread at a time: about this many weights.
constexpr std::int64_t kChunkWeights = std::int64_t{1} << 16;
// Rows quantised together with error feedback (fixed, so results do not depend on threads).
constexpr std::int64_t kFeedbackRows = 64;

[[noreturn]] void non_finite(const Checkpoint::Entry& e, std::int64_t row, std::int64_t col, float v) {
    throw FormatError(e.file->path() + ": tensor '" + e.info->name + "': weight [" + std::to_string(row) + ", " +
                      std::to_string(col) + "] is " + (std::isnan(v) ? "NaN" : "infinite") +
                      "; the checkpoint is damaged and cannot be converted");
}

}  // namespace

std::int64_t rows_of(const TensorInfo& t) { return t.shape.size() >= 2 ? t.shape[0] : 1; }
std::int64_t cols_of(const TensorInfo& t) {
    std::int64_t rows = rows_of(t);
    return rows ? t.numel() / rows : 0;
}

class TensorConverter::Impl {
public:
    Impl(const Checkpoint& ckpt, ThreadPool& pool, Progress& progress, const ConvertOptions& opt,
         CalibrationSource* calibration)
        : ckpt_(ckpt), pool_(pool), progress_(progress), opt_(opt), calibration_(calibration) {}

    void run(const Plan& plan, BttWriter& writer) {
        const Checkpoint::Entry& e = *plan.entry;
        BttTensor t;
        t.name = e.info->name;
        t.shape = e.info->shape;
        t.encoding = plan.encoding;
        const std::int64_t rows = rows_of(*e.info), cols = cols_of(*e.info);
        int n_stats = 0;
        std::size_t row_bytes = 0;
        if (plan.encoding == Encoding::Ternary) {
            t.layout = TernaryLayout{rows, cols, plan.bases, opt_.block_size, opt_.packing, opt_.scales, opt_.scale_bits};
            t.method = method_name(opt_.method);
            n_stats = plan.bases;
            row_bytes = t.layout.row_bytes();
        } else if (plan.encoding == Encoding::F16) {
            n_stats = 1;
            row_bytes = static_cast<std::size_t>(cols) * 2;
        } else if (plan.encoding == Encoding::Int8) {
            t.int8 = Int8Layout{rows, cols};
            if (cols > kInt8MaxCols) {
                throw UnsupportedError(e.file->path() + ": tensor '" + t.name + "': rows of " + std::to_string(cols) +
                                       " values are too long for int8 (at most " + std::to_string(kInt8MaxCols) +
                                       "); store it as f16 or ternary");
            }
            n_stats = 1;
            row_bytes = static_cast<std::size_t>(cols);  // the values; the scales follow at the end
        } else {
            row_bytes = static_cast<std::size_t>(cols) * 4;
        }

        std::vector<float> tensor_scales;
        if (plan.encoding == Encoding::Ternary && opt_.method == Method::AbsmeanTensor) {
            tensor_scales = absmean_tensor_scales(e, t.layout);
        }
        // Calibration: column weights for the fits, and error feedback over columns.
        CalibratedFit cal;
        if (plan.encoding == Encoding::Ternary && plan.linear && calibration_) {
            cal = calibration_->for_tensor(t.name, cols);
        }
        fit_.method = opt_.method;
        fit_.refine_rounds = opt_.method == Method::Greedy ? opt_.refine_rounds : 0;
        fit_.col_weights = cal.col_weights.empty() ? nullptr : cal.col_weights.data();
        feedback_ = cal.feedback.get();

        // Per-row statistics, reduced in row order at the end (thread-count independent).
        std::vector<double> row_sq_err(static_cast<std::size_t>(rows) * std::max(n_stats, 1), 0.0);
        std::vector<double> row_sq_norm(static_cast<std::size_t>(rows), 0.0);
        // int8: the per-row scales, written after all the values (4 bytes a row, like the
        // statistics above, so memory stays bounded by the slab).
        std::vector<float> row_scale(plan.encoding == Encoding::Int8 ? static_cast<std::size_t>(rows) : 0);

        // The tiles arrangement has whole-tensor sections: the rows are collected, then
        // rearranged and written in one piece (at most one tensor's bytes twice).
        const bool tiles = plan.encoding == Encoding::Ternary && plan.arrangement == Arrangement::Tiles;
        std::vector<std::uint8_t> whole;
        if (tiles) {
            BttTensor stored = t;
            stored.layout.arrangement = Arrangement::Tiles;
            writer.begin_tensor(stored);
            whole.reserve(t.layout.total_bytes());
        } else {
            writer.begin_tensor(t);
        }
        const std::int64_t slab_rows =
            std::max<std::int64_t>(1, static_cast<std::int64_t>(kSlabBytes / std::max<std::size_t>(row_bytes, 1)));
        // Error feedback quantises a chunk of rows with matrix products: larger chunks. Either
        // way the chunks depend on the shape only, never on the thread count.
        const std::int64_t grain =
            feedback_ ? kFeedbackRows : std::max<std::int64_t>(1, kChunkWeights / std::max<std::int64_t>(cols, 1));
        std::vector<std::uint8_t> slab;
        for (std::int64_t r0 = 0; r0 < rows; r0 += slab_rows) {
            const std::int64_t r1 = std::min(rows, r0 + slab_rows);
            slab.resize(static_cast<std::size_t>(r1 - r0) * row_bytes);
            pool_.parallel_for(r1 - r0, grain, [&](std::int64_t b, std::int64_t end) {
                convert_rows(e, t, tensor_scales.data(), r0 + b, r0 + end, slab.data() + b * row_bytes,
                             row_sq_err.data(), row_sq_norm.data(), row_scale.data());
                progress_.advance(static_cast<std::uint64_t>((end - b) * cols));
            });
            if (tiles) {
                whole.insert(whole.end(), slab.begin(), slab.end());
            } else {
                writer.append(slab.data(), slab.size());
            }
            release_rows(e, r0, r1);
        }
        if (tiles) {
            const TernaryLayout to = with_arrangement(t.layout, Arrangement::Tiles);
            std::vector<std::uint8_t> tiled(to.total_bytes());
            pool_.parallel_for(to.tiles(), 8, [&](std::int64_t t0, std::int64_t t1) {
                rearrange_ternary(t.layout, whole.data(), to, tiled.data(), t0, t1);
            });
            writer.append(tiled.data(), tiled.size());
        }
        if (plan.encoding == Encoding::Int8) {
            std::vector<std::uint8_t> tail(t.int8.scales_offset() - t.int8.values_bytes() + 4 * row_scale.size(), 0);
            std::uint8_t* p = tail.data() + (t.int8.scales_offset() - t.int8.values_bytes());
            for (float s : row_scale) {
                std::uint32_t u;
                std::memcpy(&u, &s, 4);
                for (int i = 0; i < 4; ++i) *p++ = static_cast<std::uint8_t>(u >> (8 * i));
            }
            writer.append(tail.data(), tail.size());
        }
        BttTensor& done = writer.end_tensor();

        // Reduce the statistics.
        double sq_norm = 0.0;
        for (double v : row_sq_norm) sq_norm += v;
        std::vector<double> sq_err(static_cast<std::size_t>(n_stats), 0.0);
        for (std::int64_t r = 0; r < rows; ++r) {
            for (int k = 0; k < n_stats; ++k) sq_err[k] += row_sq_err[static_cast<std::size_t>(r) * n_stats + k];
        }
        const double numel = static_cast<double>(std::max<std::int64_t>(1, e.info->numel()));
        done.norm = std::sqrt(sq_norm);
        for (int k = 0; k < n_stats; ++k) {
            done.relative_error_by_base.push_back(sq_norm > 0 ? std::sqrt(sq_err[k] / sq_norm) : 0.0);
            done.rmse_by_base.push_back(std::sqrt(sq_err[k] / numel));
        }
        sq_norm_ = sq_norm;
        sq_err_ = sq_err;
    }

    // Statistics of the last tensor run(), for the overall figures.
    double last_sq_norm() const { return sq_norm_; }
    const std::vector<double>& last_sq_err() const { return sq_err_; }

private:
    // Reads rows [b, e) as float into a per-thread buffer and checks they are finite.
    const float* load_rows(const Checkpoint::Entry& e, std::int64_t b, std::int64_t end, std::int64_t cols) {
        thread_local std::vector<float> buf;
        buf.resize(static_cast<std::size_t>((end - b) * cols));
        ckpt_.read_rows_f32(e, b, end, buf.data());
        for (std::size_t i = 0; i < buf.size(); ++i) {
            if (!std::isfinite(buf[i])) {
                non_finite(e, b + static_cast<std::int64_t>(i) / cols, static_cast<std::int64_t>(i) % cols, buf[i]);
            }
        }
        return buf.data();
    }

    void convert_rows(const Checkpoint::Entry& e, const BttTensor& t, const float* tensor_scales, std::int64_t b,
                      std::int64_t end, std::uint8_t* out, double* row_sq_err, double* row_sq_norm,
                      float* row_scale) {
        const std::int64_t cols = cols_of(*e.info);
        const float* w = load_rows(e, b, end, cols);
        thread_local RowScratch scratch;
        if (t.encoding == Encoding::Ternary && feedback_) {
            // All rows of the chunk at once; `work` receives the error-updated values.
            thread_local std::vector<float> work;
            work.assign(w, w + (end - b) * cols);
            for (std::int64_t r = b; r < end; ++r) {
                double norm = 0.0;
                for (std::int64_t c = 0; c < cols; ++c) norm += static_cast<double>(w[(r - b) * cols + c]) * w[(r - b) * cols + c];
                row_sq_norm[r] = norm;
            }
            feedback_->quantize_rows(t.layout, fit_, work.data(), w, end - b, out, row_sq_err + b * t.layout.bases);
            return;
        }
        for (std::int64_t r = b; r < end; ++r, w += cols) {
            double norm = 0.0;
            for (std::int64_t c = 0; c < cols; ++c) norm += static_cast<double>(w[c]) * w[c];
            row_sq_norm[r] = norm;
            switch (t.encoding) {
                case Encoding::Ternary: {
                    decompose_row(w, t.layout, fit_, tensor_scales, out, row_sq_err + r * t.layout.bases, scratch);
                    out += t.layout.row_bytes();
                    break;
                }
                case Encoding::F16: {
                    double err = 0.0;
                    for (std::int64_t c = 0; c < cols; ++c) {
                        std::uint16_t h = f32_to_f16(w[c]);
                        float back = f16_to_f32(h);
                        if (!std::isfinite(back)) {
                            throw FormatError(e.file->path() + ": tensor '" + e.info->name + "': weight [" +
                                              std::to_string(r) + ", " + std::to_string(c) + "] = " +
                                              std::to_string(w[c]) +
                                              " is outside the F16 range; store it as int8 or ternary "
                                              "(--embeddings / --lm-head int8)");
                        }
                        double d = static_cast<double>(w[c]) - back;
                        err += d * d;
                        out[2 * c] = static_cast<std::uint8_t>(h & 0xFF);
                        out[2 * c + 1] = static_cast<std::uint8_t>(h >> 8);
                    }
                    row_sq_err[r] = err;
                    out += cols * 2;
                    break;
                }
                case Encoding::Int8: {
                    // load_rows has rejected non-finite weights, naming the tensor.
                    auto* q = reinterpret_cast<std::int8_t*>(out);
                    const float s = quantize_row_int8(w, cols, q);
                    double err = 0.0;
                    for (std::int64_t c = 0; c < cols; ++c) {
                        // Exactly what a reader reconstructs (dequantize_row_int8).
                        const double d = static_cast<double>(w[c]) - static_cast<double>(static_cast<float>(q[c]) * s);
                        err += d * d;
                    }
                    row_sq_err[r] = err;
                    row_scale[r] = s;
                    out += cols;
                    break;
                }
                case Encoding::F32: {
                    for (std::int64_t c = 0; c < cols; ++c) {
                        std::uint32_t u;
                        std::memcpy(&u, &w[c], 4);
                        for (int i = 0; i < 4; ++i) out[4 * c + i] = static_cast<std::uint8_t>(u >> (8 * i));
                    }
                    out += cols * 4;
                    break;
                }
            }
        }
    }

    // absmean-tensor: the scale of stage k is mean |residual| over the whole tensor after
    // stages 0..k-1, found by one pass over the rows per stage.
    std::vector<float> absmean_tensor_scales(const Checkpoint::Entry& e, const TernaryLayout& layout) {
        const std::int64_t rows = layout.rows, cols = layout.cols;
        const std::int64_t grain = std::max<std::int64_t>(1, kChunkWeights / std::max<std::int64_t>(cols, 1));
        std::vector<float> scales;
        std::vector<double> row_abs(static_cast<std::size_t>(rows));
        for (int k = 0; k < layout.bases; ++k) {
            std::fill(row_abs.begin(), row_abs.end(), 0.0);
            pool_.parallel_for(rows, grain, [&](std::int64_t b, std::int64_t end) {
                const float* w = load_rows(e, b, end, cols);
                thread_local RowScratch scratch;
                for (std::int64_t r = b; r < end; ++r, w += cols) {
                    accumulate_abs_residual(w, layout, scales.data(), k, &row_abs[r], scratch);
                }
            });
            double sum = 0.0;
            for (double v : row_abs) sum += v;
            scales.push_back(round_scale(static_cast<float>(sum / static_cast<double>(rows * cols))));
        }
        return scales;
    }

    void release_rows(const Checkpoint::Entry& e, std::int64_t r0, std::int64_t r1) {
        const std::uint64_t row_bytes = static_cast<std::uint64_t>(cols_of(*e.info)) * dtype_size(e.info->dtype);
        e.file->mapped().release(e.file->data_offset() + e.info->begin + r0 * row_bytes,
                                 static_cast<std::size_t>((r1 - r0) * row_bytes));
    }

    const Checkpoint& ckpt_;
    ThreadPool& pool_;
    Progress& progress_;
    const ConvertOptions& opt_;
    CalibrationSource* calibration_;
    FitOptions fit_;                          // the current tensor's
    const ErrorFeedback* feedback_ = nullptr;  // the current tensor's, if any
    double sq_norm_ = 0.0;
    std::vector<double> sq_err_;
};


TensorConverter::TensorConverter(const Checkpoint& ckpt, ThreadPool& pool, Progress& progress,
                                 const ConvertOptions& opt, CalibrationSource* calibration)
    : impl_(std::make_unique<Impl>(ckpt, pool, progress, opt, calibration)) {}
TensorConverter::~TensorConverter() = default;
void TensorConverter::run(const Plan& plan, BttWriter& writer) { impl_->run(plan, writer); }
double TensorConverter::last_sq_norm() const { return impl_->last_sq_norm(); }
const std::vector<double>& TensorConverter::last_sq_err() const { return impl_->last_sq_err(); }

}  // namespace bitttt
