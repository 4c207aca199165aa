// calibrate_gemm.inc compiled with -mavx2 -mfma (CMakeLists.txt); run only when
// kernels::avx2_available() (calibrate_gemm_generic.cpp chooses).
#define BITTTT_CALIB_EIGEN_NS EigenCalibAvx2
#define BITTTT_CALIB_NS avx2
#define BITTTT_CALIB_ISA_NAME "avx2"
#include "convert/calibrate_gemm.inc"
