// calibrate_gemm.inc for baseline x86-64 (or any other CPU), plus the run-time choice.
#define BITTTT_CALIB_EIGEN_NS EigenCalibGeneric
#define BITTTT_CALIB_NS generic
#define BITTTT_CALIB_ISA_NAME "generic"
#include "convert/calibrate_gemm.inc"

#include "kernels/dispatch.h"

namespace bitttt::calib {

const GemmOps& gemm_ops_generic() { return generic::ops; }

const GemmOps* gemm_ops_avx2() {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (kernels::avx2_available()) return &avx2::ops;
#endif
    return nullptr;
}

const GemmOps& gemm_ops() {
    static const GemmOps& chosen =
        kernels::active_isa() == kernels::Isa::Avx2 && gemm_ops_avx2() ? *gemm_ops_avx2() : gemm_ops_generic();
    return chosen;
}

}  // namespace bitttt::calib
