// CPU feature detection. x86: CPUID / XGETBV, compiled for baseline x86-64 (no -mavx):
// XGETBV is issued through inline assembly, and only after CPUID reports OSXSAVE.
// aarch64 (Linux): the kernel's hardware capability bits, getauxval(AT_HWCAP).
#include "kernels/cpu.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BITTTT_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#define BITTTT_ARM64_LINUX 1
#endif

namespace bitttt::kernels {

namespace {

#ifdef BITTTT_X86
std::uint64_t xgetbv0() {
    std::uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u));
    return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
    CpuFeatures f;
#ifdef BITTTT_X86
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        f.fma = (ecx >> 12) & 1u;
        f.osxsave = (ecx >> 27) & 1u;
        f.avx = (ecx >> 28) & 1u;
        f.f16c = (ecx >> 29) & 1u;
    }
    if (f.osxsave) f.os_ymm = (xgetbv0() & 0x6u) == 0x6u;  // XCR0.SSE and XCR0.AVX
    // __get_cpuid_count returns 0 when leaf 7 is above the maximum supported leaf.
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) f.avx2 = (ebx >> 5) & 1u;
#endif
#ifdef BITTTT_ARM64_LINUX
    const unsigned long hw = getauxval(AT_HWCAP);
    f.neon = (hw & HWCAP_ASIMD) != 0;
    f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
#endif
    return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

}  // namespace bitttt::kernels
