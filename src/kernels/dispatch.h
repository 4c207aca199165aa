// Run-time kernel selection: the best instruction set this CPU supports, chosen once,
// overridable with the environment variable BITTTT_ISA=generic|avx2.
//
// Every ternary GEMV kernel computes the same integer block sums as the scalar reference
// and combines them in the same float order, so its outputs are bit-identical whichever
// ISA runs. The other ops (ops.h, ops_table()) are dispatched the same way but the vector
// versions differ from the scalar ones by rounding (summation order, FMA, polynomial exp).
#pragma once

#include <cstdint>

#include "bitttt/ternary.h"

namespace bitttt::kernels {

enum class Isa { Generic, Avx2 };

// "generic" / "avx2".
const char* isa_name(Isa isa);

// The ISA for a BITTTT_ISA value: nullptr or "" picks the best available; "generic" or
// "avx2" forces one. Throws UsageError for an unknown value, or for "avx2" when
// `avx2_available` is false. (Pure function, so it is testable without setenv.)
Isa choose_isa(const char* override_value, bool avx2_available);

// True when this build has the AVX2 kernels and this CPU and OS can run them.
bool avx2_available();

// The ISA in use: choose_isa(getenv("BITTTT_ISA"), avx2_available()), decided on the
// first call (thread-safe). Throws UsageError as choose_isa does.
Isa active_isa();

using TernaryGemvFn = void (*)(const TernaryLayout& layout, const std::uint8_t* data, int k_bases,
                               const std::int8_t* q, float x_scale, std::int64_t r0, std::int64_t r1, float* y);

// The ternary GEMV kernel for an ISA (ternary_gemv_ref for Generic). Throws UsageError
// for Avx2 when avx2_available() is false.
TernaryGemvFn ternary_gemv_kernel(Isa isa);

// ternary_gemv_ref's contract, run by the kernel of active_isa().
void ternary_gemv(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                  float x_scale, std::int64_t r0, std::int64_t r1, float* y);

#ifdef BITTTT_HAVE_AVX2_KERNEL
// The AVX2 kernel (ternary_gemv_avx2.cpp, compiled with -mavx2 -mfma -mf16c). Call it only
// when avx2_available().
void ternary_gemv_avx2(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                       float x_scale, std::int64_t r0, std::int64_t r1, float* y);
#endif

}  // namespace bitttt::kernels
