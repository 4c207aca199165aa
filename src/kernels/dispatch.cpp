#include "kernels/dispatch.h"

#include <cstdlib>
#include <string>
#include <string_view>

#include "bitttt/error.h"
#include "kernels/cpu.h"
#include "kernels/int8_gemv.h"
#include "kernels/int8_gemv_neon.h"
#include "kernels/ops.h"
#include "kernels/ternary_gemv.h"

namespace bitttt::kernels {

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Generic: return "generic";
        case Isa::Avx2: return "avx2";
        case Isa::Neon: return "neon";
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

bool neon_available() {
#ifdef BITTTT_HAVE_NEON_KERNEL
    return cpu_features().neon;
#else
    return false;
#endif
}

bool neon_dotprod_available() { return neon_available() && cpu_features().dotprod; }

Isa choose_isa(const char* override_value, bool avx2_ok, bool neon_ok) {
    const std::string_view v = override_value ? std::string_view(override_value) : std::string_view();
    if (v.empty()) return avx2_ok ? Isa::Avx2 : neon_ok ? Isa::Neon : Isa::Generic;
    if (v == "neon") {
        if (!neon_ok) {
            throw UsageError("BITTTT_ISA=neon but this CPU lacks Advanced SIMD (or this build has no NEON "
                             "kernels: they exist in aarch64 builds); use BITTTT_ISA=generic or unset it");
        }
        return Isa::Neon;
    }
    if (v == "generic") return Isa::Generic;
    if (v == "avx2") {
        if (!avx2_ok) {
            throw UsageError("BITTTT_ISA=avx2 but this CPU lacks AVX2 (or the OS does not enable it, "
                             "or this build has no AVX2 kernels); use BITTTT_ISA=generic or unset it");
        }
        return Isa::Avx2;
    }
    throw UsageError("BITTTT_ISA='" + std::string(v) + "' is not a known instruction set (allowed: generic, avx2, neon)");
}

Isa active_isa() {
    // If choose_isa throws, the static stays uninitialised and the next call throws again.
    static const Isa isa = choose_isa(std::getenv("BITTTT_ISA"), avx2_available(), neon_available());
    return isa;
}

const char* design_name(TernaryDesign d) { return d == TernaryDesign::Lut ? "lut" : "maddubs"; }

TernaryDesign choose_design(const char* override_value, Isa isa) {
    const std::string_view v = override_value ? std::string_view(override_value) : std::string_view();
    const bool lut_kernels = isa == Isa::Avx2 || isa == Isa::Neon;
    if (v.empty()) return lut_kernels ? TernaryDesign::Lut : TernaryDesign::Maddubs;
    if (v == "maddubs") return TernaryDesign::Maddubs;
    if (v == "lut") {
        if (!lut_kernels) {
            throw UsageError("BITTTT_TERNARY_KERNEL=lut needs the AVX2 or NEON kernels (the ISA in use is " +
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
    const Isa isa = active_isa();
    const bool dot = isa == Isa::Neon && neon_dotprod_available();
    return std::string(isa_name(isa)) + (dot ? "+dotprod" : "") + " (ternary: " + design_name(active_design()) + ")";
}

TernaryGemvFn ternary_gemv_kernel(Isa isa) {
    switch (isa) {
        case Isa::Generic:
        case Isa::Neon: return &ternary_gemv_ref;  // no NEON ternary kernel yet
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
        case Isa::Generic:
        case Isa::Neon: return &ternary_gemm_ref;  // no NEON ternary kernel yet
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
        case Isa::Neon:
#ifdef BITTTT_HAVE_NEON_KERNEL
            if (neon_available()) return neon_dotprod_available() ? &int8_gemv_neon_dot : &int8_gemv_neon;
#endif
            throw UsageError("the NEON int8 kernel is not available on this CPU or in this build");
    }
    return &int8_gemv_ref;
}

void int8_gemv(const Int8Layout& layout, const std::uint8_t* data, const std::int8_t* q, float x_scale,
               std::int64_t r0, std::int64_t r1, float* y) {
    static const Int8GemvFn fn = int8_gemv_kernel(active_isa());
    fn(layout, data, q, x_scale, r0, r1, y);
}

// ---- the other ops (ops.h) -------------------------------------------------------------

namespace {

constexpr OpsTable kScalarOps{&scalar::rmsnorm, &scalar::softmax,  &scalar::swiglu,    &scalar::dot,
                              &scalar::axpy,    &scalar::gemv_f32, &scalar::gemv_f16,  &scalar::f16_row,
                              &scalar::attention, &scalar::attention_f16, &scalar::f32_to_f16_row,
                              &scalar::rope};
#ifdef BITTTT_HAVE_AVX2_KERNEL
constexpr OpsTable kAvx2Ops{&avx2::rmsnorm, &avx2::softmax,  &avx2::swiglu,   &avx2::dot,
                            &avx2::axpy,    &avx2::gemv_f32, &avx2::gemv_f16, &avx2::f16_row,
                            &avx2::attention, &avx2::attention_f16, &avx2::f32_to_f16_row,
                            &avx2::rope};
#endif
#ifdef BITTTT_HAVE_NEON_KERNEL
constexpr OpsTable kNeonOps{&neon::rmsnorm, &neon::softmax,  &neon::swiglu,   &neon::dot,
                            &neon::axpy,    &neon::gemv_f32, &neon::gemv_f16, &neon::f16_row,
                            &neon::attention, &neon::attention_f16, &neon::f32_to_f16_row,
                            &neon::rope};
#endif

// The table of active_isa(), decided on the first op call (never per call).
const OpsTable& active_ops() {
    static const OpsTable& table = ops_table(active_isa());
    return table;
}

}  // namespace

const OpsTable& ops_table(Isa isa) {
    switch (isa) {
        case Isa::Generic: return kScalarOps;
        case Isa::Avx2:
#ifdef BITTTT_HAVE_AVX2_KERNEL
            if (avx2_available()) return kAvx2Ops;
#endif
            throw UsageError("the AVX2 ops are not available on this CPU or in this build");
        case Isa::Neon:
#ifdef BITTTT_HAVE_NEON_KERNEL
            if (neon_available()) return kNeonOps;
#endif
            throw UsageError("the NEON ops are not available on this CPU or in this build");
    }
    return kScalarOps;
}

void rmsnorm(const float* x, const float* w, std::int64_t n, float eps, float* out) {
    active_ops().rmsnorm(x, w, n, eps, out);
}
void softmax(float* x, std::int64_t n) { active_ops().softmax(x, n); }
void swiglu(const float* gate, const float* up, std::int64_t n, float* out) { active_ops().swiglu(gate, up, n, out); }
float dot(const float* a, const float* b, std::int64_t n) { return active_ops().dot(a, b, n); }
void axpy(float a, const float* x, std::int64_t n, float* y) { active_ops().axpy(a, x, n, y); }
void gemv_f32(const float* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    active_ops().gemv_f32(w, cols, x, r0, r1, y);
}
void gemv_f16(const std::uint8_t* w, std::int64_t cols, const float* x, std::int64_t r0, std::int64_t r1, float* y) {
    active_ops().gemv_f16(w, cols, x, r0, r1, y);
}
void f16_row(const std::uint8_t* src, std::int64_t n, float* out) { active_ops().f16_row(src, n, out); }
void attention(const float* q, const float* k, const float* v, std::int64_t n, std::int64_t stride, std::int64_t hd,
               float scale, float* scores, float* out) {
    active_ops().attention(q, k, v, n, stride, hd, scale, scores, out);
}
void attention_f16(const float* q, const std::uint16_t* k, const std::uint16_t* v, std::int64_t n,
                   std::int64_t stride, std::int64_t hd, float scale, float* scores, float* out) {
    active_ops().attention_f16(q, k, v, n, stride, hd, scale, scores, out);
}
void f32_to_f16_row(const float* x, std::int64_t n, std::uint16_t* out) { active_ops().f32_to_f16_row(x, n, out); }
void rope(float* vec, std::int64_t n_heads, std::int64_t hd, const float* cos, const float* sin) {
    active_ops().rope(vec, n_heads, hd, cos, sin);
}

}  // namespace bitttt::kernels
