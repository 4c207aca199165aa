#include "kernels/dispatch.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include "bitttt/error.h"
#include "kernels/cpu.h"
#include "kernels/int8_gemv.h"
#include "kernels/ternary_gemv.h"

namespace bitttt::kernels {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Generic: return "generic";
        case Isa::Avx2: return "avx2";
    }
    return "?";
}

bool avx2_available() {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    return cpu_features().avx2_usable();
#else
    return false;
#endif
}

Isa choose_isa(const char* override_value, bool avx2_ok) {
    const std::string_view v = override_value ? std::string_view(override_value) : std::string_view();
    if (v.empty()) return avx2_ok ? Isa::Avx2 : Isa::Generic;
    if (v == "generic") return Isa::Generic;
    if (v == "avx2") {
        if (!avx2_ok) {
            throw UsageError("BITTTT_ISA=avx2 but this CPU lacks AVX2 (or the OS does not enable it, "
                             "or this build has no AVX2 kernels); use BITTTT_ISA=generic or unset it");
        }
        return Isa::Avx2;
    }
    throw UsageError("BITTTT_ISA='" + std::string(v) + "' is not a known instruction set (allowed: generic, avx2)");
}

Isa active_isa() {
    // If choose_isa throws, the static stays uninitialised and the next call throws again.
    static const Isa isa = choose_isa(std::getenv("BITTTT_ISA"), avx2_available());
    return isa;
}

const char* design_name(TernaryDesign d) { return d == TernaryDesign::Lut ? "lut" : "maddubs"; }

TernaryDesign choose_design(const char* override_value, Isa isa) {
    const std::string_view v = override_value ? std::string_view(override_value) : std::string_view();
    if (v.empty()) return isa == Isa::Avx2 ? TernaryDesign::Lut : TernaryDesign::Maddubs;
    if (v == "maddubs") return TernaryDesign::Maddubs;
    if (v == "lut") {
        if (isa != Isa::Avx2) {
            throw UsageError("BITTTT_TERNARY_KERNEL=lut needs the AVX2 kernels (the ISA in use is " +
                             std::string(isa_name(isa)) + "); unset it or use maddubs");
        }
        return TernaryDesign::Lut;
    }
    throw UsageError("BITTTT_TERNARY_KERNEL='" + std::string(v) + "' is not a known kernel design (allowed: lut, maddubs)");
}

TernaryDesign active_design() {
    static const TernaryDesign d = choose_design(std::getenv("BITTTT_TERNARY_KERNEL"), active_isa());
    return d;
}

std::string kernels_in_use() {
    return std::string(isa_name(active_isa())) + " (ternary: " + design_name(active_design()) + ")";
}

TernaryGemvFn ternary_gemv_kernel(Isa isa) {
    switch (isa) {
        case Isa::Generic: return &ternary_gemv_ref;
        case Isa::Avx2:
#ifdef BITTTT_HAVE_AVX2_KERNEL
            if (avx2_available()) return &ternary_gemv_avx2;
#endif
            throw UsageError("the AVX2 ternary kernel is not available on this CPU or in this build");
    }
    return &ternary_gemv_ref;
}

void ternary_gemv(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                  float x_scale, std::int64_t r0, std::int64_t r1, float* y) {
    static const TernaryGemvFn fn = ternary_gemv_kernel(active_isa());
    fn(layout, data, k_bases, q, x_scale, r0, r1, y);
}

void prepare_ternary_input(Isa isa, const float* x, std::int64_t cols, int block_size, Packing packing,
                           TernaryInput& in) {
    const std::int64_t padded = (cols + block_size - 1) / block_size * block_size;
    in.cols = cols;
    in.block_size = block_size;
    in.packing = packing;
    in.q.resize(static_cast<std::size_t>(padded));
    in.scale = quantize_int8(x, cols, in.q.data(), padded);
    in.slices.clear();
    in.block_sums.clear();
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (isa == Isa::Avx2) prepare_ternary_input_avx2(in);
#else
    (void)isa;
#endif
}

TernaryGemmFn ternary_gemm_kernel(Isa isa) {
    switch (isa) {
        case Isa::Generic: return &ternary_gemm_ref;
        case Isa::Avx2:
#ifdef BITTTT_HAVE_AVX2_KERNEL
            if (avx2_available()) return &ternary_gemm_avx2;
#endif
            throw UsageError("the AVX2 ternary kernel is not available on this CPU or in this build");
    }
    return &ternary_gemm_ref;
}

void ternary_gemm(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const TernaryInput* const* in,
                  int m, std::int64_t r0, std::int64_t r1, float* y, std::int64_t ldy) {
    static const TernaryGemmFn fn = ternary_gemm_kernel(active_isa());
    fn(layout, data, k_bases, in, m, r0, r1, y, ldy);
}

Int8GemvFn int8_gemv_kernel(Isa isa) {
    switch (isa) {
        case Isa::Generic: return &int8_gemv_ref;
        case Isa::Avx2:
#ifdef BITTTT_HAVE_AVX2_KERNEL
            if (avx2_available()) return &int8_gemv_avx2;
#endif
            throw UsageError("the AVX2 int8 kernel is not available on this CPU or in this build");
    }
    return &int8_gemv_ref;
}

void int8_gemv(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
               std::int64_t r0, std::int64_t r1, float* y) {
    static const Int8GemvFn fn = int8_gemv_kernel(active_isa());
    fn(layout, data, q, x_scale, r0, r1, y);
}

}  // namespace bitttt::kernels
