// Run-time kernel selection: the best instruction set this CPU supports, chosen once,
// overridable with the environment variable BITTTT_ISA=generic|avx2|neon.
//
// Every ternary GEMV kernel computes the same integer block sums as the scalar reference
// and combines them in the same float order, so its outputs are bit-identical whichever
// ISA runs. The other ops (ops.h, ops_table()) are dispatched the same way but the vector
// versions differ from the scalar ones by rounding (summation order, FMA, polynomial exp).
#pragma once

#include <cstdint>
#include <string>

#include "bitttt/int8.h"
#include "bitttt/ternary.h"
#include "kernels/ternary_gemv.h"

namespace bitttt::kernels {

// Neon: aarch64's Advanced SIMD. Where the CPU also has the dot-product extension, the
// NEON kernels that have an sdot form use it (neon_dotprod_available()); Neon covers both.
// Kernels without a NEON version yet run the scalar reference under Neon.
enum class Isa { Generic, Avx2, Neon };

// "generic" / "avx2" / "neon".
const char* isa_name(Isa isa);

// The ISA for a BITTTT_ISA value: nullptr or "" picks the best available; "generic",
// "avx2" or "neon" forces one. Throws UsageError for an unknown value, or for an ISA
// whose *_available flag is false. (Pure function, so it is testable without setenv.)
Isa choose_isa(const char* override_value, bool avx2_available, bool neon_available = false);

// True when this build has the AVX2 kernels and this CPU and OS can run them.
bool avx2_available();
// True when this build has the NEON kernels (aarch64) and the CPU reports Advanced SIMD;
// neon_dotprod_available() when it also reports the dot-product extension (asimddp).
bool neon_available();
bool neon_dotprod_available();

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

// The two AVX2 ternary GEMV designs (docs/BENCHMARKS.md, "Kernel designs"): (a) unpack
// trits and multiply-add bytes (maddubs) on the rows arrangement; (b) lookup tables over
// activation pairs or triples on the tiles arrangement (ternary_lut.h). Both give the
// reference's bit-exact results.
enum class TernaryDesign { Maddubs, Lut };
const char* design_name(TernaryDesign d);  // "maddubs" / "lut"
// The design for BITTTT_TERNARY_KERNEL=maddubs|lut (nullptr or "": lut when the ISA is
// AVX2 or NEON, else the scalar reference, reported as maddubs; maddubs under NEON runs the
// scalar reference on the rows arrangement). Throws UsageError for other values, or lut
// without AVX2 or NEON. Pure, for tests.
TernaryDesign choose_design(const char* override_value, Isa isa);
// choose_design(getenv("BITTTT_TERNARY_KERNEL"), active_isa()), decided once.
TernaryDesign active_design();
// "avx2 (ternary: lut)": what run, bench and --version print.
std::string kernels_in_use();

// Quantises x[0..cols) into `in` for tensors with this block size and packing, laid out
// for `isa`'s kernel (for Isa::Avx2 also usable by the reference, which reads only q).
void prepare_ternary_input(Isa isa, const float* x, std::int64_t cols, int block_size, Packing packing,
                           TernaryInput& in);

// The batched kernel (ternary_gemm_ref's contract); inputs prepared for the same ISA.
using TernaryGemmFn = void (*)(const TernaryLayout& layout, const std::uint8_t* data, int k_bases,
                               const TernaryInput* const* in, int m, std::int64_t r0, std::int64_t r1, float* y,
                               std::int64_t ldy);
TernaryGemmFn ternary_gemm_kernel(Isa isa);
// ternary_gemm_ref's contract, run by the kernel of active_isa() (inputs prepared for it).
void ternary_gemm(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const TernaryInput* const* in,
                  int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy);

using Int8GemvFn = void (*)(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                            std::int64_t r0, std::int64_t r1, float* y);

// The int8 GEMV kernel for an ISA (int8_gemv_ref for Generic; int8_gemv.h). Throws
// UsageError for Avx2 when avx2_available() is false.
Int8GemvFn int8_gemv_kernel(Isa isa);

// int8_gemv_ref's contract, run by the kernel of active_isa().
void int8_gemv(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
               std::int64_t r0, std::int64_t r1, float* y);

#ifdef BITTTT_HAVE_AVX2_KERNEL
// The AVX2 int8 kernel (int8_gemv_avx2.cpp). Call it only when avx2_available().
void int8_gemv_avx2(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
                    std::int64_t r0, std::int64_t r1, float* y);
#endif

#ifdef BITTTT_HAVE_AVX2_KERNEL
// The AVX2 kernel (ternary_gemv_avx2.cpp, compiled with -mavx2 -mfma -mf16c). Call it only
// when avx2_available().
void ternary_gemv_avx2(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                       float x_scale, std::int64_t r0, std::int64_t r1, float* y);
void ternary_gemm_avx2(const TernaryLayout& layout, const std::uint8_t* data, int k_bases,
                       const TernaryInput* const* in, int m, std::int64_t r0, std::int64_t r1, float* y,
                       std::int64_t ldy);
// Fills in.slices and in.block_sums from in.q (and its layout fields).
void prepare_ternary_input_avx2(TernaryInput& in);
#endif

}  // namespace bitttt::kernels
