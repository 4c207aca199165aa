// The AVX2 ternary GEMV against the scalar reference: bit-identical outputs for both
// packings, several block sizes, every N 1..4 and K <= N, shapes that are no multiple of
// any tile, row sub-ranges, extreme activations and corrupt 2bit codes, with binary16 and
// two-level scales, free and tied. Also the run-time
// ISA choice (BITTTT_ISA parsing) and the CPU feature detection.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "kernels/cpu.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"
#include "kernel_fixtures.h"

using namespace bitttt;
using namespace bitttt::kernels;

namespace {

// The AVX2 kernel through the dispatcher (no direct reference, so this file also builds
// where the AVX2 kernel is not compiled in).
void ternary_gemv_avx2_k(const TernaryLayout& l, const std::uint8_t* data, int k, const std::int8_t* q, float xs,
                         std::int64_t r0, std::int64_t r1, float* y) {
    ternary_gemv_kernel(Isa::Avx2)(l, data, k, q, xs, r0, r1, y);
}

bool skip_without_avx2() {
    if (avx2_available()) return false;
    WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 kernel is not tested");
    return true;
}

// A packed tensor with random trits (or, with `raw`, random bytes: corrupt 2bit codes)
// and random finite scales (normal, subnormal, negative, zero). Exactly the tensor's
// bytes, so ASan sees overreads.
std::vector<std::uint8_t> random_tensor(const TernaryLayout& l, std::mt19937& rng, bool raw = false) {
    return test::make_tensor(l, rng, raw ? test::Fill::Raw : test::Fill::Random);
}

// Activations: random int8 in [-127, 127] with many +-127, zero padded to whole blocks.
std::vector<std::int8_t> random_q(const TernaryLayout& l, std::mt19937& rng) {
    std::vector<std::int8_t> q(static_cast<std::size_t>(l.blocks_per_row() * l.block_size), 0);
    std::uniform_int_distribution<int> v(-127, 127), kind(0, 4);
    for (std::int64_t i = 0; i < l.cols; ++i) {
        const int kd = kind(rng);
        q[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(kd == 0 ? 127 : kd == 1 ? -127 : v(rng));
    }
    return q;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Compares the whole range, then the range split at random row boundaries.
void check_case(const TernaryLayout& l, int k, const std::vector<std::uint8_t>& data, const std::vector<std::int8_t>& q,
                float x_scale, std::mt19937& rng) {
    std::vector<float> ref(static_cast<std::size_t>(l.rows)), got(ref.size(), -1.0f);
    ternary_gemv_ref(l, data.data(), k, q.data(), x_scale, 0, l.rows, ref.data());
    ternary_gemv_avx2_k(l, data.data(), k, q.data(), x_scale, 0, l.rows, got.data());
    INFO("packing " << packing_name(l.packing) << " B " << l.block_size << " rows " << l.rows << " cols " << l.cols
                    << " N " << l.bases << " K " << k << " scales " << scale_mode_name(l.scales) << " "
                    << scale_bits_name(l.scale_bits));
    REQUIRE(same_bits(ref, got));
    std::fill(got.begin(), got.end(), -1.0f);
    std::uniform_int_distribution<int> step(1, 11);
    for (std::int64_t r0 = 0; r0 < l.rows;) {
        const std::int64_t r1 = std::min<std::int64_t>(l.rows, r0 + step(rng));
        ternary_gemv_avx2_k(l, data.data(), k, q.data(), x_scale, r0, r1, got.data() + r0);
        r0 = r1;
    }
    REQUIRE(same_bits(ref, got));
}

}  // namespace

TEST_CASE("AVX2 ternary GEMV is bit-identical to the scalar reference", "[kernels][avx2]") {
    if (skip_without_avx2()) return;
    std::mt19937 rng(20240611);
    const std::int64_t all_cols[] = {1, 3, 7, 33, 255, 257, 4097};
    const std::int64_t all_rows[] = {1, 3, 17, 33};
    struct Pb {
        Packing p;
        int bs;
    };
    const Pb pbs[] = {{Packing::TwoBit, 64}, {Packing::TwoBit, 128}, {Packing::TwoBit, 36},
                      {Packing::Dense, 64},  {Packing::Dense, 128},  {Packing::Dense, 20}};
    int cases = 0;
    for (const int bits : {16, 8})
    for (const ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
    for (const Pb& pb : pbs) {
        for (std::int64_t cols : all_cols) {
            for (std::int64_t rows : all_rows) {
                // The biggest shapes only at a few N to keep the test quick.
                for (int n = 1; n <= 4; ++n) {
                    if (cols > 300 && rows > 17 && n != 1 && n != 4) continue;
                    TernaryLayout l;
                    l.rows = rows;
                    l.cols = cols;
                    l.bases = n;
                    l.block_size = pb.bs;
                    l.packing = pb.p;
                    l.scales = mode;
                    l.scale_bits = bits;
                    l.validate();
                    const auto data = random_tensor(l, rng);
                    const auto q = random_q(l, rng);
                    for (int k = 1; k <= n; ++k) {
                        check_case(l, k, data, q, 0.0123f, rng);
                        ++cases;
                    }
                }
            }
        }
    }
    }
    CHECK(cases > 2000);
}

TEST_CASE("AVX2 ternary GEMV: large blocks, extremes, corrupt codes, K = 0", "[kernels][avx2]") {
    if (skip_without_avx2()) return;
    std::mt19937 rng(7);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        // Large blocks exercise the int16 -> int32 flushing (many chunks per group); also
        // with two-level scales (the row header shifts every block).
        for (int bs : {256, 1000, 4096}) {
            for (int bits : {16, 8}) {
                TernaryLayout l;
                l.rows = 19;
                l.cols = 2 * bs + 5;
                l.bases = 2;
                l.block_size = bs;
                l.packing = p;
                l.scale_bits = bits;
                const auto data = random_tensor(l, rng);
                check_case(l, 2, data, random_q(l, rng), 1.0f, rng);
            }
        }
        // Every trit +1 (then -1) against every activation +127 (then -127): the largest
        // int16 partial sums the kernel forms.
        for (int bs : {64, 128, 4096}) {
            TernaryLayout l;
            l.rows = 9;
            l.cols = bs * 2;
            l.bases = 3;
            l.block_size = bs;
            l.packing = p;
            std::vector<std::uint8_t> data(l.total_bytes());
            std::vector<std::int8_t> t(static_cast<std::size_t>(bs));
            for (std::int64_t r = 0; r < l.rows; ++r) {
                for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
                    std::uint8_t* blk = data.data() + r * l.row_bytes() + l.block_offset(b);
                    for (int k = 0; k < l.bases; ++k) {
                        const std::uint16_t h = f32_to_f16(0.5f + static_cast<float>(r));
                        blk[2 * k] = static_cast<std::uint8_t>(h & 0xFF);
                        blk[2 * k + 1] = static_cast<std::uint8_t>(h >> 8);
                        std::fill(t.begin(), t.end(), static_cast<std::int8_t>(r % 2 ? -1 : 1));
                        pack_trits(p, t.data(), bs, blk + l.block_scale_bytes() + k * l.group_bytes());
                    }
                }
            }
            for (int qv : {127, -127}) {
                std::vector<std::int8_t> q(static_cast<std::size_t>(l.cols), static_cast<std::int8_t>(qv));
                check_case(l, 3, data, q, 0.5f, rng);
                std::vector<float> y(static_cast<std::size_t>(l.rows));
                ternary_gemv_avx2_k(l, data.data(), 3, q.data(), 1.0f, 0, l.rows, y.data());
                const float expect = 3.0f * 0.5f * static_cast<float>(qv) * static_cast<float>(l.cols);
                CHECK(y[0] == expect);
            }
        }
        // Random bytes: 2bit code 3 (never written) must count as the reference counts it.
        for (int bits : {16, 8}) {
            TernaryLayout l;
            l.rows = 21;
            l.cols = 300;
            l.bases = 3;
            l.block_size = 64;
            l.packing = p;
            l.scale_bits = bits;
            const auto raw = random_tensor(l, rng, /*raw=*/true);
            const auto q = random_q(l, rng);
            check_case(l, 3, raw, q, 0.25f, rng);
            check_case(l, 1, raw, q, 0.25f, rng);
            // K = 0 and an all-zero activation vector.
            check_case(l, 0, raw, q, 0.25f, rng);
            check_case(l, 2, raw, std::vector<std::int8_t>(q.size(), 0), 0.0f, rng);
        }
    }
}

TEST_CASE("AVX2 batched ternary GEMM is bit-identical to the reference per input", "[kernels][avx2]") {
    if (skip_without_avx2()) return;
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> val(-3.0f, 3.0f);
    // Block sizes with one chunk, two, and more than the int16 flush interval (2bit B = 1024
    // has 16 chunks); 2bit also with corrupt codes (random bytes).
    for (int bits : {16, 8})
    for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
      for (int bsz : {64, 128, 1280}) {
        for (bool raw : {false, true}) {
          if (raw && p == Packing::Dense) continue;
          for (std::int64_t cols : {1, 7, 64, 257}) {
            for (std::int64_t rows : {1, 9, 33}) {
                const TernaryLayout l{rows, cols, 3, bsz, p, mode, bits};
                const auto data = random_tensor(l, rng, raw);
                for (int m : {1, 2, 5}) {
                    CAPTURE(packing_name(p), bsz, raw, cols, rows, m, scale_mode_name(mode), bits);
                    std::vector<TernaryInput> in(static_cast<std::size_t>(m));
                    std::vector<const TernaryInput*> ptrs;
                    for (auto& x : in) {
                        std::vector<float> v(static_cast<std::size_t>(cols));
                        for (auto& e : v) e = val(rng);
                        prepare_ternary_input(Isa::Avx2, v.data(), cols, bsz, p, x);
                        ptrs.push_back(&x);
                    }
                    for (int k = 1; k <= 3; ++k) {
                        // Rows [r0, r1) with outputs of input j at y[j * ldy].
                        const std::int64_t r0 = rows > 2 ? 1 : 0, r1 = rows, ldy = rows + 3;
                        std::vector<float> got(static_cast<std::size_t>(m * ldy), -7.0f), want = got;
                        ternary_gemm_kernel(Isa::Avx2)(l, data.data(), k, ptrs.data(), m, r0, r1, got.data(), ldy);
                        ternary_gemm_ref(l, data.data(), k, ptrs.data(), m, r0, r1, want.data(), ldy);
                        CHECK(got == want);
                        for (int j = 0; j < m; ++j) {
                            std::vector<float> one(static_cast<std::size_t>(r1 - r0));
                            ternary_gemv_ref(l, data.data(), k, in[static_cast<std::size_t>(j)].q.data(),
                                             in[static_cast<std::size_t>(j)].scale, r0, r1, one.data());
                            CHECK(std::equal(one.begin(), one.end(), got.begin() + j * ldy));
                        }
                    }
                }
            }
          }
        }
      }
    }
}
}

TEST_CASE("AVX2 dense decoding matches the reference for every byte value", "[kernels][avx2]") {
    if (skip_without_avx2()) return;
    std::mt19937 rng(11);
    // Row r: every group byte is r (B = 20: G = 4 bytes, 5 digits each, all positions used).
    TernaryLayout l;
    l.rows = 256;
    l.cols = 40;
    l.bases = 2;
    l.block_size = 20;
    l.packing = Packing::Dense;
    auto data = random_tensor(l, rng);
    for (std::int64_t r = 0; r < l.rows; ++r) {
        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
            std::uint8_t* grp = data.data() + r * l.row_bytes() + l.block_offset(b) + l.block_scale_bytes();
            std::fill(grp, grp + l.bases * l.group_bytes(), static_cast<std::uint8_t>(r));
        }
    }
    for (int rep = 0; rep < 4; ++rep) check_case(l, 2, data, random_q(l, rng), 0.5f, rng);
}

TEST_CASE("BITTTT_ISA parsing and the dispatched kernel", "[kernels][avx2]") {
    CHECK(choose_design(nullptr, Isa::Avx2) == TernaryDesign::Lut);
    CHECK(choose_design("", Isa::Generic) == TernaryDesign::Maddubs);
    CHECK(choose_design("maddubs", Isa::Avx2) == TernaryDesign::Maddubs);
    CHECK(choose_design("lut", Isa::Avx2) == TernaryDesign::Lut);
    CHECK_THROWS_WITH(choose_design("lut", Isa::Generic), Catch::Contains("needs the AVX2"));
    CHECK_THROWS_WITH(choose_design("tmac", Isa::Avx2), Catch::Contains("BITTTT_TERNARY_KERNEL='tmac'"));
    CHECK(choose_isa(nullptr, true) == Isa::Avx2);
    CHECK(choose_isa(nullptr, false) == Isa::Generic);
    CHECK(choose_isa("", true) == Isa::Avx2);
    CHECK(choose_isa("", false) == Isa::Generic);
    CHECK(choose_isa("generic", true) == Isa::Generic);
    CHECK(choose_isa("generic", false) == Isa::Generic);
    CHECK(choose_isa("avx2", true) == Isa::Avx2);
    CHECK_THROWS_AS(choose_isa("avx2", false), UsageError);
    CHECK_THROWS_WITH(choose_isa("avx2", false), Catch::Contains("BITTTT_ISA=avx2 but this CPU lacks AVX2"));
    CHECK_THROWS_AS(choose_isa("avx512", true), UsageError);
    CHECK_THROWS_WITH(choose_isa("sse9", false), Catch::Contains("BITTTT_ISA='sse9'") && Catch::Contains("generic, avx2"));
    CHECK_THROWS_AS(choose_isa("AVX2", true), UsageError);
    CHECK_THROWS_AS(choose_isa(" avx2", true), UsageError);
    CHECK(std::string(isa_name(Isa::Generic)) == "generic");
    CHECK(std::string(isa_name(Isa::Avx2)) == "avx2");
    CHECK(std::string(isa_name(Isa::Neon)) == "neon");
    // NEON: picked when there is no AVX2 (the two never coexist; AVX2 would win).
    CHECK(choose_isa(nullptr, false, true) == Isa::Neon);
    CHECK(choose_isa("neon", false, true) == Isa::Neon);
    CHECK(choose_isa("generic", false, true) == Isa::Generic);
    CHECK_THROWS_WITH(choose_isa("neon", true, false), Catch::Contains("BITTTT_ISA=neon but this CPU lacks Advanced SIMD"));
    CHECK_THROWS_WITH(choose_isa("avx2", false, true), Catch::Contains("BITTTT_ISA=avx2 but"));
    CHECK_THROWS_WITH(choose_isa("sve", false, true), Catch::Contains("generic, avx2, neon"));

    CHECK(ternary_gemv_kernel(Isa::Generic) == &ternary_gemv_ref);
    if (avx2_available()) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
        CHECK(ternary_gemv_kernel(Isa::Avx2) == &ternary_gemv_avx2);
#endif
    } else {
        CHECK_THROWS_AS(ternary_gemv_kernel(Isa::Avx2), UsageError);
    }

    // Whatever the environment chose, the dispatched kernel matches the reference.
    const char* env = std::getenv("BITTTT_ISA");
    const bool env_ok = env == nullptr || std::string(env).empty() || std::string(env) == "generic" ||
                        (std::string(env) == "avx2" && avx2_available()) ||
                        (std::string(env) == "neon" && neon_available());
    if (!env_ok) {
        CHECK_THROWS_AS(active_isa(), UsageError);
        return;
    }
    INFO("active ISA " << isa_name(active_isa()));
    if (env == nullptr || std::string(env).empty()) {
        CHECK(active_isa() == (avx2_available() ? Isa::Avx2 : neon_available() ? Isa::Neon : Isa::Generic));
    }
    std::mt19937 rng(3);
    TernaryLayout l;
    l.rows = 37;
    l.cols = 1000;
    l.bases = 2;
    l.block_size = 64;
    const auto data = random_tensor(l, rng);
    const auto q = random_q(l, rng);
    std::vector<float> ref(37), got(37);
    ternary_gemv_ref(l, data.data(), 2, q.data(), 0.03f, 0, 37, ref.data());
    ternary_gemv(l, data.data(), 2, q.data(), 0.03f, 0, 37, got.data());
    CHECK(same_bits(ref, got));
}

TEST_CASE("CPU feature detection agrees with the compiler's", "[kernels][avx2]") {
    const CpuFeatures& f = cpu_features();
    CHECK(&f == &cpu_features());  // detected once
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    CHECK(f.avx2_usable() == (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f.f16c));
    if (f.avx2_usable()) CHECK(f.os_ymm);
#endif
}
