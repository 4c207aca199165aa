// The dense arithmetic of `bitttt calibrate` and of error feedback (Eigen GEMMs), compiled twice: for baseline
// x86-64 and with AVX2 + FMA (calibrate_gemm_avx2.cpp), chosen at run time like the
// engine's kernels (kernels::active_isa(), BITTTT_ISA=generic|avx2). Each build puts
// Eigen in a namespace of its own (calibrate_gemm.inc), so the two sets of Eigen's
// template instances never merge at link time.
#pragma once

#include <cstdint>

namespace bitttt::calib {

struct GemmOps {
    const char* isa;
    // y[rows, len] (row stride ldy) = x[rows, in] * w[len, in]^T.
    void (*matmul_wt)(const float* x, std::int64_t rows, std::int64_t in, const float* w, std::int64_t len, float* y,
                      std::int64_t ldy);
    // acc[pr, n - r0] (row-major, double) += x[:, r0 : r0 + pr]^T * x[:, r0 : n], x = [rows, n] row-major.
    void (*xtx_panel)(const float* x, std::int64_t rows, std::int64_t n, std::int64_t r0, std::int64_t pr,
                      double* acc);
    // Causal softmax attention of one head over one chunk of C tokens: out[C, hd] (row stride
    // ldo) = softmax(scale * q k^T, masked to j <= i) v, q with row stride ldq, k and v with
    // ldkv. scores: room for C * C floats.
    void (*attention)(const float* q, std::int64_t ldq, const float* k, const float* v, std::int64_t ldkv,
                      std::int64_t C, std::int64_t hd, float scale, float* out, std::int64_t ldo, float* scores);
    // y[rows, n] (row stride ldy) -= a[rows, k] (row stride lda) * b[k, n] (row stride ldb):
    // error feedback's update of the columns not yet quantised (error_feedback.cpp).
    void (*sub_matmul)(float* y, std::int64_t ldy, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                       std::int64_t rows, std::int64_t k, std::int64_t n);
};

namespace generic {
extern const GemmOps ops;
}
namespace avx2 {
extern const GemmOps ops;  // defined only in builds with the AVX2 kernels
}

// The set for the ISA in use (decided once).
const GemmOps& gemm_ops();
// Both builds, for tests: generic always, avx2 nullptr unless built and usable.
const GemmOps& gemm_ops_generic();
const GemmOps* gemm_ops_avx2();

}  // namespace bitttt::calib
