// CPU feature detection for run-time kernel selection, done once at first use.
#pragma once

namespace bitttt::kernels {

struct CpuFeatures {
    bool avx = false;      // CPUID.1:ECX.AVX[bit 28]
    bool fma = false;      // CPUID.1:ECX.FMA[bit 12]
    bool f16c = false;     // CPUID.1:ECX.F16C[bit 29]
    bool osxsave = false;  // CPUID.1:ECX.OSXSAVE[bit 27]: XGETBV is usable
    bool os_ymm = false;   // XCR0 bits 1 and 2: the OS saves SSE and AVX (YMM) state
    bool avx2 = false;     // CPUID.(7,0):EBX.AVX2[bit 5]

    bool neon = false;     // aarch64: AT_HWCAP ASIMD (Advanced SIMD)
    bool dotprod = false;  // aarch64: AT_HWCAP ASIMDDP (sdot / udot, Armv8.2 dot product)

    // Everything the AVX2 kernels need (AVX2 + FMA + F16C, and YMM state enabled by the OS).
    bool avx2_usable() const { return avx && avx2 && fma && f16c && osxsave && os_ymm; }
};

// The features of the CPU this process runs on (detected once, thread-safe).
const CpuFeatures& cpu_features();

}  // namespace bitttt::kernels
