// The lookup-table ternary GEMV (design (b), src/kernels/ternary_lut.h) against the scalar
// reference ternary_gemv_ref: bit-identical outputs for both packings, block sizes 32..256
// (plus block sizes that are no multiple of 4 or need int16 widening), every N 1..4 and
// K <= N, shapes that are no multiple of the 32-row tile, row sub-ranges, extreme
// activations and trits, and every byte value of a packed group; binary16 and two-level
// scales. The table build's AVX2 version must produce the reference's bytes.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "bitttt/dtype.h"
#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"
#include "kernels/ternary_lut.h"
#include "kernel_fixtures.h"
#include "test_util.h"
#include "util/thread_pool.h"

using namespace bitttt;
using namespace bitttt::kernels;
using bitttt::test::Fill;
using bitttt::test::make_tensor;

namespace {

enum class Act { Random, Plus127, Minus127, Alternating };

// Activations in [-127, 127], zero padded to whole blocks.
std::vector<std::int8_t> make_q(const TernaryLayout& l, std::mt19937& rng, Act act) {
    std::vector<std::int8_t> q(static_cast<std::size_t>(l.blocks_per_row() * l.block_size), 0);
    std::uniform_int_distribution<int> v(-127, 127), kind(0, 4);
    for (std::int64_t i = 0; i < l.cols; ++i) {
        int x = 0;
        switch (act) {
            case Act::Plus127: x = 127; break;
            case Act::Minus127: x = -127; break;
            case Act::Alternating: x = (i % 2) ? -127 : 127; break;
            case Act::Random: {
                const int kd = kind(rng);
                x = kd == 0 ? 127 : kd == 1 ? -127 : v(rng);
            }
        }
        q[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(x);
    }
    return q;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

using LutGemvFn = void (*)(const LutWeights&, int, const std::uint8_t*, float, std::int64_t, std::int64_t, float*);

// Compares `fn` over the whole range, then over the range split at random row boundaries
// (no multiples of the tile), with ternary_gemv_ref.
void check_case(const TernaryLayout& l, int k, const std::vector<std::uint8_t>& data, const LutWeights& w,
                const std::vector<std::int8_t>& q, const std::vector<std::uint8_t>& tables, LutGemvFn fn,
                std::mt19937& rng) {
    const float x_scale = 0.0123f;
    std::vector<float> ref(static_cast<std::size_t>(l.rows)), got(ref.size(), -1.0f);
    ternary_gemv_ref(l, data.data(), k, q.data(), x_scale, 0, l.rows, ref.data());
    fn(w, k, tables.data(), x_scale, 0, l.rows, got.data());
    INFO("packing " << packing_name(l.packing) << " B " << l.block_size << " rows " << l.rows << " cols " << l.cols
                    << " N " << l.bases << " K " << k << " scales " << scale_mode_name(l.scales) << " "
                    << scale_bits_name(l.scale_bits));
    REQUIRE(same_bits(ref, got));
    std::fill(got.begin(), got.end(), -1.0f);
    std::uniform_int_distribution<int> step(1, 45);
    for (std::int64_t r0 = 0; r0 < l.rows;) {
        const std::int64_t r1 = std::min<std::int64_t>(l.rows, r0 + step(rng));
        fn(w, k, tables.data(), x_scale, r0, r1, got.data() + r0);
        r0 = r1;
    }
    REQUIRE(same_bits(ref, got));
}

struct Pb {
    Packing p;
    int bs;
};

// Runs every (N, K) on one shape and fill; `avx2` picks the kernel under test.
int run_shape(const TernaryLayout& base, Fill fill, Act act, bool avx2, std::mt19937& rng, int n_max = 4) {
    int cases = 0;
    for (int n = 1; n <= n_max; ++n) {
        TernaryLayout l = base;
        l.bases = n;
        l.validate();
        const auto data = make_tensor(l, rng, fill);
        const auto q = make_q(l, rng, act);
        const LutWeights w = lut_repack(l, data.data());
        CHECK(w.data.size() == static_cast<std::size_t>(w.tiles * l.blocks_per_row()) * w.tblock_bytes);
        CHECK(w.row_super.size() == (l.two_level() ? static_cast<std::size_t>(w.tiles * 32 * l.scale_count()) : 0u));
        std::vector<std::uint8_t> tables(lut_table_bytes(l));
        lut_prepare_ref(l, q.data(), tables.data());
        LutGemvFn fn = lut_gemv_ref;
#ifdef BITTTT_HAVE_AVX2_KERNEL
        if (avx2) {
            std::vector<std::uint8_t> t2(tables.size(), 0xAA);
            lut_prepare_avx2(l, q.data(), t2.data());
            REQUIRE(t2 == tables);
            fn = lut_gemv_avx2;
        }
#else
        (void)avx2;
#endif
        for (int k = 1; k <= n; ++k) {
            check_case(l, k, data, w, q, tables, fn, rng);
            ++cases;
        }
    }
    return cases;
}

TernaryLayout layout(Pb pb, std::int64_t rows, std::int64_t cols, ScaleMode mode = ScaleMode::Free, int scale_bits = 16) {
    TernaryLayout l;
    l.rows = rows;
    l.cols = cols;
    l.block_size = pb.bs;
    l.packing = pb.p;
    l.scales = mode;
    l.scale_bits = scale_bits;
    return l;
}

void run_all(bool avx2, ScaleMode mode, int scale_bits = 16) {
    std::mt19937 rng((avx2 ? 20261123 : 7) + (mode == ScaleMode::Tied ? 1 : 0) + (scale_bits == 8 ? 2 : 0));
    const std::int64_t all_cols[] = {1, 3, 7, 33, 64, 255, 257, 4096};
    const std::int64_t all_rows[] = {1, 3, 7, 9, 33, 257};
    // Block sizes 32..256 in both packings, plus blocks that are no multiple of 4 (dense
    // only) or of 16, and 1024 (int16 sums widened more than once per block).
    const Pb pbs[] = {{Packing::TwoBit, 32},  {Packing::TwoBit, 64},  {Packing::TwoBit, 128}, {Packing::TwoBit, 256},
                      {Packing::Dense, 32},   {Packing::Dense, 64},   {Packing::Dense, 128},  {Packing::Dense, 256},
                      {Packing::TwoBit, 36},  {Packing::Dense, 22},   {Packing::Dense, 1022}, {Packing::TwoBit, 1024}};
    int cases = 0;
    for (const Pb& pb : pbs) {
        for (std::int64_t cols : all_cols) {
            for (std::int64_t rows : all_rows) {
                // The scalar reference over the biggest shapes is slow: N = 1..2 there.
                const int n_max = cols * rows > 200000 ? 2 : 4;
                // (Under the sanitizers both up to one 4096-column row.)
                const std::int64_t max_elems = bitttt::test::kSanitized ? 4096 : avx2 ? cols * rows : 20000;
                if (cols * rows > max_elems) continue;
                cases += run_shape(layout(pb, rows, cols, mode, scale_bits), Fill::Random, Act::Random, avx2, rng, n_max);
            }
        }
        // Extremes: full-range activations with all-equal trits reach the byte-sum bounds
        // (8 lookups of h = -16 make -128); every group byte value, corrupt ones included.
        for (const std::int64_t cols : {std::int64_t{255}, std::int64_t{1100}}) {
            for (Fill f : {Fill::AllPlus, Fill::AllMinus}) {
                for (Act a : {Act::Plus127, Act::Minus127, Act::Alternating})
                    cases += run_shape(layout(pb, 35, cols, mode, scale_bits), f, a, avx2, rng, 2);
            }
            cases += run_shape(layout(pb, 70, cols, mode, scale_bits), Fill::EveryByte, Act::Random, avx2, rng, 3);
            cases += run_shape(layout(pb, 70, cols, mode, scale_bits), Fill::Raw, Act::Plus127, avx2, rng, 3);
        }
    }
    CHECK(cases > 1000);
}

}  // namespace

TEST_CASE("LUT reference GEMV over repacked weights is bit-identical to ternary_gemv_ref", "[kernels][lut]") {
    run_all(false, ScaleMode::Free);
}

TEST_CASE("LUT reference GEMV, tied scales: bit-identical to ternary_gemv_ref", "[kernels][lut][tied]") {
    run_all(false, ScaleMode::Tied);
}

TEST_CASE("AVX2 LUT GEMV and table build are bit-identical to the references", "[kernels][lut]") {
    if (!avx2_available()) {
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 LUT kernel is not tested");
        return;
    }
    run_all(true, ScaleMode::Free);
}

TEST_CASE("AVX2 LUT GEMV, tied scales: bit-identical to the references", "[kernels][lut][tied]") {
    if (!avx2_available()) {
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 LUT kernel is not tested");
        return;
    }
    run_all(true, ScaleMode::Tied);
}

TEST_CASE("LUT reference GEMV, two-level scales: bit-identical to ternary_gemv_ref", "[kernels][lut][two-level]") {
    run_all(false, ScaleMode::Free, 8);
    run_all(false, ScaleMode::Tied, 8);
}

TEST_CASE("AVX2 LUT GEMV, two-level scales: bit-identical to the references", "[kernels][lut][two-level]") {
    if (!avx2_available()) {
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 LUT kernel is not tested");
        return;
    }
    run_all(true, ScaleMode::Free, 8);
    run_all(true, ScaleMode::Tied, 8);
}

TEST_CASE("LUT repack stores the .btt size for 2bit and 5/4 of the trit bytes for dense", "[kernels][lut]") {
    std::mt19937 rng(3);
    TernaryLayout l = layout({Packing::TwoBit, 64}, 64, 256);
    l.bases = 3;
    auto data = make_tensor(l, rng, Fill::Random);
    CHECK(lut_repack(l, data.data()).data.size() == l.total_bytes());
    l.packing = Packing::Dense;
    data = make_tensor(l, rng, Fill::Random);
    // 13 trit bytes per 64 weights become 16: (2 + 16) / (2 + 13) of the size.
    CHECK(lut_repack(l, data.data()).data.size() == l.total_bytes() / 15 * 18);
    // Tied: one scale per block, so 2 + 3 * 13 bytes per block become 2 + 3 * 16.
    l.scales = ScaleMode::Tied;
    data = make_tensor(l, rng, Fill::Random);
    CHECK(lut_repack(l, data.data()).data.size() == l.total_bytes() / 41 * 50);
    l.packing = Packing::TwoBit;
    data = make_tensor(l, rng, Fill::Random);
    CHECK(lut_repack(l, data.data()).data.size() == l.total_bytes());
    // Two-level: the tile blocks hold the .btt blocks' bytes (u8 sub-scales and codes, for
    // 2bit), the row headers' super-scales become 32-bit floats beside them.
    for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
        l.scales = mode;
        l.scale_bits = 8;
        data = make_tensor(l, rng, Fill::Random);
        const LutWeights w = lut_repack(l, data.data());
        const std::size_t headers = static_cast<std::size_t>(l.rows) * l.row_header_bytes();
        CHECK(w.codes_offset() == 32 * static_cast<std::size_t>(l.scale_count()));
        CHECK(w.data.size() == l.total_bytes() - headers);
        CHECK(w.row_super.size() * sizeof(float) == 2 * headers);
        for (std::int64_t r = 0; r < l.rows; ++r) {
            for (int m = 0; m < l.scale_count(); ++m) {
                const std::uint8_t* h = data.data() + r * l.row_bytes() + 2 * m;
                CHECK(w.supers(r / 32)[32 * m + r % 32] == f16_to_f32(static_cast<std::uint16_t>(h[0] | h[1] << 8)));
            }
        }
    }
}

TEST_CASE("LUT tables depend only on the activations when the block size is a multiple of 4", "[kernels][lut]") {
    // One table build can serve every matrix that multiplies the same vector (q/k/v,
    // gate/up), whatever their block size or packing, as long as the padded length is equal.
    std::mt19937 rng(11);
    const TernaryLayout a = layout({Packing::TwoBit, 64}, 1, 4096);
    const TernaryLayout b = layout({Packing::Dense, 128}, 1, 4096);
    const TernaryLayout c = layout({Packing::TwoBit, 256}, 1, 4096);
    const auto q = make_q(a, rng, Act::Random);
    std::vector<std::uint8_t> ta(lut_table_bytes(a)), tb(lut_table_bytes(b)), tc(lut_table_bytes(c));
    lut_prepare(a, q.data(), ta.data());
    lut_prepare(b, q.data(), tb.data());
    lut_prepare(c, q.data(), tc.data());
    CHECK(ta == tb);
    CHECK(ta == tc);
}

TEST_CASE("LUT repack gives the same bytes on a thread pool", "[kernels][lut]") {
    std::mt19937 rng(5);
    TernaryLayout l = layout({Packing::Dense, 64}, 1000, 300);
    l.bases = 2;
    const auto data = make_tensor(l, rng, Fill::Raw);
    ThreadPool pool(2);
    CHECK(lut_repack(l, data.data(), &pool).data == lut_repack(l, data.data()).data);
    l.scale_bits = 8;
    const auto two = make_tensor(l, rng, Fill::Raw);
    const LutWeights a = lut_repack(l, two.data(), &pool), b = lut_repack(l, two.data());
    CHECK(a.data == b.data);
    CHECK(a.row_super == b.row_super);
}

TEST_CASE("AVX2 batched LUT GEMM equals the reference GEMV per input", "[kernels][lut]") {
    if (!avx2_available()) {
        WARN("SKIPPED: no usable AVX2; the AVX2 LUT GEMM is not tested");
        return;
    }
    std::mt19937 rng(4242);
    for (int bits : {16, 8})
    for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bs : {64, 128, 36}) {
            for (std::int64_t rows : {1, 33, 70}) {
                for (std::int64_t cols : {7, 257}) {
                    const TernaryLayout l{rows, cols, 3, bs, p, mode, bits};
                    const auto data = make_tensor(l, rng, Fill::Random);
                    const LutWeights w = lut_repack(l, data.data());
                    const int m = 5;
                    std::vector<std::vector<std::uint8_t>> tables;
                    std::vector<const std::uint8_t*> ptrs;
                    std::vector<float> scales;
                    for (int j = 0; j < m; ++j) {
                        const auto q = make_q(l, rng, j == 0 ? Act::Plus127 : Act::Random);
                        tables.emplace_back(lut_table_bytes(l));
                        lut_prepare_ref(l, q.data(), tables.back().data());
                        ptrs.push_back(tables.back().data());
                        scales.push_back(0.01f * static_cast<float>(j + 1));
                    }
                    const std::int64_t r0 = rows > 3 ? 3 : 0, ldy = rows + 2;
                    for (int k = 1; k <= 3; ++k) {
                        CAPTURE(packing_name(p), bs, rows, cols, k, scale_mode_name(mode), bits);
                        std::vector<float> got(static_cast<std::size_t>(m * ldy), -1.0f);
                        lut_gemm_avx2(w, k, ptrs.data(), scales.data(), m, r0, rows, got.data(), ldy);
                        for (int j = 0; j < m; ++j) {
                            std::vector<float> want(static_cast<std::size_t>(rows - r0));
                            lut_gemv_ref(w, k, ptrs[static_cast<std::size_t>(j)], scales[static_cast<std::size_t>(j)], r0,
                                         rows, want.data());
                            CHECK(std::equal(want.begin(), want.end(), got.begin() + j * ldy));
                        }
                    }
                }
            }
        }
    }
}
}
