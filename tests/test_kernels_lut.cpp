// The lookup-table ternary GEMV (design (b), src/kernels/ternary_lut.h) against the scalar
// reference ternary_gemv_ref: bit-identical outputs for both packings (2bit tiles through
// lut_prepare_ref / lut_gemv_ref, dense tiles through lut_prepare_dense_ref /
// lut_gemv_dense_ref, and their AVX2 and NEON versions), block sizes 32..256 (plus block sizes that
// are no multiple of 4 or need int16 widening), every N 1..4 and K <= N, shapes that are
// no multiple of the 32-row tile, row sub-ranges, extreme activations and trits, and every
// byte value of a packed group; binary16 and two-level scales. The table builds' AVX2
// versions must produce the references' bytes. Also: the tiles' sizes, lut_view in place,
// lut_repack on a thread pool, the dispatching entry points, the batched GEMM and the
// levels path (AVX2; NEON plain and sdot).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
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

bool same_bytes(const LutWeights& a, const LutWeights& b) {
    const std::size_t n = a.layout.total_bytes();
    return n == b.layout.total_bytes() && std::memcmp(a.data, b.data, n) == 0;
}

using LutPrepareFn = void (*)(const TernaryLayout&, const std::int8_t*, std::uint8_t*);
using LutGemvFn = void (*)(const LutWeights&, int, const std::uint8_t*, float, std::int64_t, std::int64_t, float*);
using LutGemmFn = void (*)(const LutWeights&, int, const std::uint8_t* const*, const float*, int, std::int64_t,
                           std::int64_t, float*, std::int64_t);

struct LutKernel {
    LutPrepareFn prepare;
    LutGemvFn gemv;
    const char* name;
};

// The scalar references of a packing.
LutKernel ref_kernel(Packing p) {
    if (p == Packing::Dense) return {lut_prepare_dense_ref, lut_gemv_dense_ref, "dense reference"};
    return {lut_prepare_ref, lut_gemv_ref, "2bit reference"};
}

// The AVX2 kernels of a packing. Dense ones only when they are built
// (BITTTT_HAVE_LUT_DENSE_AVX2); until then the dispatching entry points, which run what
// the engine runs.
LutKernel avx2_kernel(Packing p) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (p == Packing::TwoBit) return {lut_prepare_avx2, lut_gemv_avx2, "2bit avx2"};
#ifdef BITTTT_HAVE_LUT_DENSE_AVX2
    return {lut_prepare_dense_avx2, lut_gemv_dense_avx2, "dense avx2"};
#endif
#endif
    (void)p;
    return {lut_prepare, lut_gemv, "dispatch (lut_prepare / lut_gemv)"};
}

// The NEON kernels of a packing (aarch64 builds), or the dispatching entry points.
LutKernel neon_kernel(Packing p) {
#ifdef BITTTT_HAVE_NEON_KERNEL
    if (p == Packing::TwoBit) return {lut_prepare_neon, lut_gemv_neon, "2bit neon"};
    return {lut_prepare_dense_neon, lut_gemv_dense_neon, "dense neon"};
#else
    (void)p;
    return {lut_prepare, lut_gemv, "dispatch (lut_prepare / lut_gemv)"};
#endif
}

#ifdef BITTTT_HAVE_NEON_KERNEL
// The batched NEON kernel of a packing.
LutGemmFn neon_gemm(Packing p) { return p == Packing::TwoBit ? lut_gemm_neon : lut_gemm_dense_neon; }
#endif

// The kernels a sweep tests: the references, or a vector ISA's (whose table builds must
// give the references' bytes).
enum class Impl { Ref, Avx2, Neon };

LutKernel kernel_for(Impl impl, Packing p) {
    return impl == Impl::Avx2 ? avx2_kernel(p) : impl == Impl::Neon ? neon_kernel(p) : ref_kernel(p);
}

// The batched AVX2 kernel of a packing, or the dispatching lut_gemm.
LutGemmFn avx2_gemm(Packing p) {
#ifdef BITTTT_HAVE_AVX2_KERNEL
    if (p == Packing::TwoBit) return lut_gemm_avx2;
#ifdef BITTTT_HAVE_LUT_DENSE_AVX2
    return lut_gemm_dense_avx2;
#endif
#endif
    (void)p;
    return lut_gemm;
}

// The rows layout's tiles twin as lut_repack must have made it.
void check_repacked(const TernaryLayout& l, const LutWeights& w) {
    const TernaryLayout t = with_arrangement(l, Arrangement::Tiles);
    CHECK(w.layout.tiled());
    CHECK(w.layout.packing == l.packing);
    CHECK(w.layout.rows == l.rows);
    CHECK(w.layout.cols == l.cols);
    CHECK(w.layout.bases == l.bases);
    CHECK(w.layout.block_size == l.block_size);
    CHECK(w.layout.scales == l.scales);
    CHECK(w.layout.scale_bits == l.scale_bits);
    CHECK(w.owned.size() == t.total_bytes());
    CHECK(w.data == w.owned.data());
    CHECK(w.tiles() == (l.rows + 31) / 32);
    CHECK(w.code_bytes() == static_cast<int>(t.tile_code_bytes()));
}

// Compares `fn` over the whole range, then over the range split at random row boundaries
// (no multiples of the tile), with ternary_gemv_ref.
void check_case(const TernaryLayout& l, int k, const std::vector<std::uint8_t>& data, const LutWeights& w,
                const std::vector<std::int8_t>& q, const std::vector<std::uint8_t>& tables, const LutKernel& kern,
                std::mt19937& rng) {
    const float x_scale = 0.0123f;
    std::vector<float> ref(static_cast<std::size_t>(l.rows)), got(ref.size(), -1.0f);
    ternary_gemv_ref(l, data.data(), k, q.data(), x_scale, 0, l.rows, ref.data());
    kern.gemv(w, k, tables.data(), x_scale, 0, l.rows, got.data());
    INFO(kern.name << ": packing " << packing_name(l.packing) << " B " << l.block_size << " rows " << l.rows
                   << " cols " << l.cols << " N " << l.bases << " K " << k << " scales " << scale_mode_name(l.scales)
                   << " " << scale_bits_name(l.scale_bits));
    REQUIRE(same_bits(ref, got));
    std::fill(got.begin(), got.end(), -1.0f);
    std::uniform_int_distribution<int> step(1, 45);
    for (std::int64_t r0 = 0; r0 < l.rows;) {
        const std::int64_t r1 = std::min<std::int64_t>(l.rows, r0 + step(rng));
        kern.gemv(w, k, tables.data(), x_scale, r0, r1, got.data() + r0);
        r0 = r1;
    }
    REQUIRE(same_bits(ref, got));
}

struct Pb {
    Packing p;
    int bs;
    bool wide = true;  // false: the sweep's shapes up to 1100 columns only (time)
};

// Runs every (N, K) on one shape and fill; `impl` picks the kernel under test.
int run_shape(const TernaryLayout& base, Fill fill, Act act, Impl impl, std::mt19937& rng, int n_max = 4) {
    int cases = 0;
    const LutKernel ref = ref_kernel(base.packing);
    const LutKernel kern = kernel_for(impl, base.packing);
    for (int n = 1; n <= n_max; ++n) {
        TernaryLayout l = base;
        l.bases = n;
        l.validate();
        const auto data = make_tensor(l, rng, fill);
        const auto q = make_q(l, rng, act);
        const LutWeights w = lut_repack(l, data.data());
        check_repacked(l, w);
        std::vector<std::uint8_t> tables(lut_table_bytes(l), 0x55);
        ref.prepare(l, q.data(), tables.data());
        if (impl != Impl::Ref) {
            std::vector<std::uint8_t> t2(tables.size(), 0xAA);
            kern.prepare(l, q.data(), t2.data());
            INFO(kern.name << " table build: packing " << packing_name(l.packing) << " B " << l.block_size << " cols "
                           << l.cols);
            REQUIRE(t2 == tables);
        }
        for (int k = 1; k <= n; ++k) {
            check_case(l, k, data, w, q, tables, kern, rng);
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

void run_all(Impl impl, ScaleMode mode, int scale_bits = 16) {
    const bool fast = impl != Impl::Ref;
    std::mt19937 rng((fast ? 20261123 : 7) + (mode == ScaleMode::Tied ? 1 : 0) + (scale_bits == 8 ? 2 : 0));
    const std::int64_t all_cols[] = {1, 3, 7, 33, 64, 255, 257, 4096};
    const std::int64_t all_rows[] = {1, 3, 7, 9, 33, 257};
    // Block sizes 32..256 in both packings, plus blocks that are no multiple of 4 (dense
    // only), of 3 or of 16, a dense block whose triple count is odd (B = 32: T = 11) or
    // whole (B = 48, 96: T even, no partial triple), and 1022 / 1024 (int16 sums widened
    // more than once per block).
    const Pb pbs[] = {{Packing::TwoBit, 32},  {Packing::TwoBit, 64},  {Packing::TwoBit, 128}, {Packing::TwoBit, 256},
                      {Packing::Dense, 32},   {Packing::Dense, 64},   {Packing::Dense, 128},  {Packing::Dense, 256},
                      {Packing::Dense, 48, false}, {Packing::Dense, 96, false}, {Packing::TwoBit, 36}, {Packing::Dense, 22},
                      {Packing::Dense, 1022}, {Packing::TwoBit, 1024}};
    int cases = 0;
    for (const Pb& pb : pbs) {
        for (std::int64_t cols : all_cols) {
            if (!pb.wide && cols > 1100) continue;
            for (std::int64_t rows : all_rows) {
                // The scalar reference over the biggest shapes is slow: N = 1..2 there.
                const int n_max = cols * rows > 200000 ? 2 : 4;
                // (Under the sanitizers and in quick runs both up to one 4096-column row.)
                const std::int64_t max_elems = bitttt::test::quick_sweeps() ? 4096 : fast ? cols * rows : 20000;
                if (cols * rows > max_elems) continue;
                cases += run_shape(layout(pb, rows, cols, mode, scale_bits), Fill::Random, Act::Random, impl, rng, n_max);
            }
        }
        // Extremes: full-range activations with all-equal trits reach the byte-sum bounds
        // (2bit: 8 lookups of h = -16 make -128; dense: 6 lookups of h = +-20 or -19 and l =
        // -+19); every group byte value, corrupt ones included.
        for (const std::int64_t cols : {std::int64_t{255}, std::int64_t{1100}}) {
            for (Fill f : {Fill::AllPlus, Fill::AllMinus}) {
                for (Act a : {Act::Plus127, Act::Minus127, Act::Alternating})
                    cases += run_shape(layout(pb, 35, cols, mode, scale_bits), f, a, impl, rng, 2);
            }
            cases += run_shape(layout(pb, 70, cols, mode, scale_bits), Fill::EveryByte, Act::Random, impl, rng, 3);
            cases += run_shape(layout(pb, 70, cols, mode, scale_bits), Fill::Raw, Act::Plus127, impl, rng, 3);
        }
    }
    CHECK(cases > 1000);
}

}  // namespace

TEST_CASE("LUT reference GEMV over repacked weights is bit-identical to ternary_gemv_ref", "[kernels][lut]") {
    run_all(Impl::Ref, ScaleMode::Free);
}

TEST_CASE("LUT reference GEMV, tied scales: bit-identical to ternary_gemv_ref", "[kernels][lut][tied]") {
    run_all(Impl::Ref, ScaleMode::Tied);
}

TEST_CASE("AVX2 LUT GEMV and table build are bit-identical to the references", "[kernels][lut]") {
    if (!avx2_available()) {
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 LUT kernel is not tested");
        return;
    }
    run_all(Impl::Avx2, ScaleMode::Free);
}

TEST_CASE("AVX2 LUT GEMV, tied scales: bit-identical to the references", "[kernels][lut][tied]") {
    if (!avx2_available()) {
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 LUT kernel is not tested");
        return;
    }
    run_all(Impl::Avx2, ScaleMode::Tied);
}

TEST_CASE("LUT reference GEMV, two-level scales: bit-identical to ternary_gemv_ref", "[kernels][lut][two-level]") {
    run_all(Impl::Ref, ScaleMode::Free, 8);
    run_all(Impl::Ref, ScaleMode::Tied, 8);
}

TEST_CASE("AVX2 LUT GEMV, two-level scales: bit-identical to the references", "[kernels][lut][two-level]") {
    if (!avx2_available()) {
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 LUT kernel is not tested");
        return;
    }
    run_all(Impl::Avx2, ScaleMode::Free, 8);
    run_all(Impl::Avx2, ScaleMode::Tied, 8);
}

#ifdef BITTTT_HAVE_NEON_KERNEL
TEST_CASE("NEON LUT GEMV is bit-identical to the references", "[kernels][lut][neon]") {
    if (!neon_available()) {
        WARN("SKIPPED: this CPU has no Advanced SIMD; the NEON LUT kernel is not tested");
        return;
    }
    run_all(Impl::Neon, ScaleMode::Free);
}

TEST_CASE("NEON LUT GEMV, tied scales: bit-identical to the references", "[kernels][lut][tied][neon]") {
    if (!neon_available()) {
        WARN("SKIPPED: this CPU has no Advanced SIMD; the NEON LUT kernel is not tested");
        return;
    }
    run_all(Impl::Neon, ScaleMode::Tied);
}

TEST_CASE("NEON LUT GEMV, two-level scales: bit-identical to the references", "[kernels][lut][two-level][neon]") {
    if (!neon_available()) {
        WARN("SKIPPED: this CPU has no Advanced SIMD; the NEON LUT kernel is not tested");
        return;
    }
    run_all(Impl::Neon, ScaleMode::Free, 8);
    run_all(Impl::Neon, ScaleMode::Tied, 8);
}
#endif

TEST_CASE("LUT dense tables: every entry value splits exactly as l + 20 h", "[kernels][lut]") {
    // Entry 13 (digits 1, 1, 1) of a triple is q0 + q1 + q2: every v in [-381, 381] once,
    // through both table builds (one 48-weight block: 16 triples, records 0..15).
    TernaryLayout l;
    l.rows = 32, l.cols = 48, l.bases = 1, l.block_size = 48, l.packing = Packing::Dense;
    l.arrangement = Arrangement::Tiles;
    l.validate();
    std::vector<std::uint8_t> ref(lut_table_bytes(l)), fast(lut_table_bytes(l));
    int checked = 0;
    for (int v = -381; v <= 381; ++v) {
        std::vector<std::int8_t> q(48, 0);
        int rest = v;
        for (int i = 0; i < 3; ++i) {  // v = q0 + q1 + q2, each in [-127, 127]
            const int qi = std::clamp(rest, -127, 127);
            q[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(qi);
            rest -= qi;
        }
        REQUIRE(rest == 0);
        lut_prepare_dense_ref(l, q.data(), ref.data());
        const int lo = ref[13], hi = static_cast<std::int8_t>(ref[16 + 13]);
        INFO("v = " << v);
        CHECK(lo >= 0);
        CHECK(lo < kDenseSplit);
        CHECK(lo + kDenseSplit * hi == v);
#ifdef BITTTT_HAVE_LUT_DENSE_AVX2
        if (avx2_available()) {
            lut_prepare_dense_avx2(l, q.data(), fast.data());
            CHECK(std::memcmp(ref.data(), fast.data(), ref.size()) == 0);
        }
#endif
#ifdef BITTTT_HAVE_NEON_KERNEL
        if (neon_available()) {
            std::fill(fast.begin(), fast.end(), std::uint8_t{0x5A});
            lut_prepare_dense_neon(l, q.data(), fast.data());
            CHECK(std::memcmp(ref.data(), fast.data(), ref.size()) == 0);
        }
#endif
        ++checked;
    }
    CHECK(checked == 763);
}

TEST_CASE("LUT repack: 2bit tiles have the rows size, dense tiles 5 bits per 3 trits", "[kernels][lut]") {
    std::mt19937 rng(3);
    for (int bits : {16, 8}) {
        for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
            CAPTURE(bits, scale_mode_name(mode));
            // 2bit, rows a multiple of 32: the tiles hold exactly the rows' bytes (C = G = B / 4;
            // the two-level super-scales are 2 bytes per row and slot in either arrangement).
            TernaryLayout l = layout({Packing::TwoBit, 64}, 64, 256, mode, bits);
            l.bases = 3;
            auto data = make_tensor(l, rng, Fill::Random);
            LutWeights w = lut_repack(l, data.data());
            CHECK(w.owned.size() == l.total_bytes());
            CHECK(w.layout.total_bytes() == l.total_bytes());
            // Rows no multiple of 32: the last tile is padded to 32 rows.
            l.rows = 33;
            data = make_tensor(l, rng, Fill::Random);
            w = lut_repack(l, data.data());
            CHECK(w.owned.size() == 64 * l.row_bytes());
            // Dense: per row, block and base C bytes of codes, by hand from the spec:
            // B = 64: T = 22 triples, 11 index + 3 sign bytes = 14 (rows: 13 bytes);
            // B = 96: T = 32 triples, 16 + 4 = 20 (rows: 20 bytes).
            const std::size_t scale_bytes = (bits == 8 ? 1u : 2u) * (mode == ScaleMode::Tied ? 1u : 3u);
            const std::size_t header = bits == 8 ? 2 * (mode == ScaleMode::Tied ? 1u : 3u) : 0u;
            for (const auto& [bs, c] : {std::pair<int, std::size_t>{64, 14}, std::pair<int, std::size_t>{96, 20}}) {
                CAPTURE(bs);
                for (std::int64_t rows : {64, 33}) {
                    l = layout({Packing::Dense, bs}, rows, 256, mode, bits);
                    l.bases = 3;
                    data = make_tensor(l, rng, Fill::Random);
                    w = lut_repack(l, data.data());
                    const std::size_t nb = (256 + static_cast<std::size_t>(bs) - 1) / static_cast<std::size_t>(bs);
                    const std::size_t padded_rows = 64;  // 33 rows fill two tiles too
                    const std::size_t want = padded_rows * (header + nb * (scale_bytes + 3 * c));
                    CHECK(w.layout.tile_code_bytes() == c);
                    CHECK(w.owned.size() == want);
                    CHECK(w.owned.size() == with_arrangement(l, Arrangement::Tiles).total_bytes());
                }
            }
        }
    }
}

TEST_CASE("LUT repack: scales and two-level super-scales land in their sections", "[kernels][lut][two-level]") {
    std::mt19937 rng(13);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
            for (int bits : {16, 8}) {
                CAPTURE(packing_name(p), scale_mode_name(mode), bits);
                TernaryLayout l = layout({p, 64}, 45, 200, mode, bits);
                l.bases = 3;
                const auto data = make_tensor(l, rng, Fill::Random);
                const LutWeights w = lut_repack(l, data.data());
                const std::size_t sb = bits == 8 ? 1 : 2;
                for (std::int64_t r = 0; r < 64; ++r) {
                    const std::int64_t tile = r / 32;
                    const std::size_t lane = static_cast<std::size_t>(r % 32);
                    const std::uint8_t* row = data.data() + r * l.row_bytes();
                    for (int m = 0; m < l.scale_count(); ++m) {
                        if (l.two_level()) {
                            const std::uint8_t* s = w.supers(m, tile) + 2 * lane;
                            if (r < l.rows) {
                                CHECK(s[0] == row[2 * m]);
                                CHECK(s[1] == row[2 * m + 1]);
                            } else {
                                CHECK((s[0] | s[1]) == 0);
                            }
                        }
                        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
                            const std::uint8_t* s = w.scales(m, tile, b) + sb * lane;
                            if (r < l.rows) {
                                const std::uint8_t* blk = row + l.block_offset(b);
                                CHECK(std::memcmp(s, blk + sb * static_cast<std::size_t>(m), sb) == 0);
                                CHECK(lut_scale_ref(w, m, tile, b, lane) == l.block_scale(row, blk, m));
                            } else {
                                CHECK(lut_scale_ref(w, m, tile, b, lane) == 0.0f);
                            }
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("LUT tables depend only on the activations when the block size is a multiple of 4", "[kernels][lut]") {
    // One table build can serve every matrix that multiplies the same vector (q/k/v,
    // gate/up), whatever their 2bit block size, as long as the padded length is equal.
    std::mt19937 rng(11);
    const TernaryLayout a = layout({Packing::TwoBit, 64}, 1, 4096);
    const TernaryLayout b = layout({Packing::TwoBit, 128}, 1, 4096);
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
    ThreadPool pool(2);
    for (Packing p : {Packing::Dense, Packing::TwoBit}) {
        for (int bits : {16, 8}) {
            CAPTURE(packing_name(p), bits);
            TernaryLayout l = layout({p, 64}, 1000, 300, ScaleMode::Free, bits);
            l.bases = 2;
            const auto data = make_tensor(l, rng, Fill::Raw);
            const LutWeights a = lut_repack(l, data.data(), &pool), b = lut_repack(l, data.data());
            CHECK(same_bytes(a, b));
        }
    }
}

TEST_CASE("LUT view of a tiles tensor: the repacked bytes, used in place", "[kernels][lut]") {
    // A tensor stored in tiles (as convert writes it) is viewed without a copy; it holds
    // the bytes lut_repack makes from the rows tensor, and the kernels give the same results.
    std::mt19937 rng(17);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
            for (int bits : {16, 8}) {
                CAPTURE(packing_name(p), scale_mode_name(mode), bits);
                TernaryLayout l = layout({p, 64}, 45, 257, mode, bits);
                l.bases = 3;
                const auto data = make_tensor(l, rng, Fill::Random);
                const TernaryLayout tl = with_arrangement(l, Arrangement::Tiles);
                std::vector<std::uint8_t> tiles(tl.total_bytes(), 0xCD);
                rearrange_ternary(l, data.data(), tl, tiles.data(), 0, tl.tiles());
                const LutWeights view = lut_view(tl, tiles.data());
                CHECK(view.data == tiles.data());
                CHECK(view.owned.empty());
                const LutWeights rep = lut_repack(l, data.data());
                CHECK(same_bytes(view, rep));
                // lut_repack of a tiled tensor copies it as it is.
                const LutWeights copy = lut_repack(tl, tiles.data());
                CHECK(copy.data != tiles.data());
                CHECK(same_bytes(copy, view));
                // A moved LutWeights keeps pointing at its bytes.
                LutWeights moved = lut_repack(l, data.data());
                const std::uint8_t* before = moved.data;
                LutWeights moved2 = std::move(moved);
                CHECK(moved2.data == before);
                CHECK(moved2.data == moved2.owned.data());
                const LutKernel ref = ref_kernel(p);
                const auto q = make_q(l, rng, Act::Random);
                std::vector<std::uint8_t> tables(lut_table_bytes(l));
                ref.prepare(l, q.data(), tables.data());
                for (int k = 1; k <= 3; ++k) {
                    std::vector<float> want(45), a(45), b(45);
                    ternary_gemv_ref(l, data.data(), k, q.data(), 0.5f, 0, 45, want.data());
                    ref.gemv(view, k, tables.data(), 0.5f, 0, 45, a.data());
                    lut_gemv(view, k, tables.data(), 0.5f, 0, 45, b.data());
                    CHECK(same_bits(want, a));
                    // The dispatching gemv may run AVX2 (the same bits) or the references.
                    CHECK(same_bits(want, b));
                }
            }
        }
    }
}

TEST_CASE("LUT dispatch: lut_prepare, lut_gemv and lut_gemm pick the packing's kernels", "[kernels][lut]") {
    std::mt19937 rng(21);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bs : {64, 36, 22}) {
            if (p == Packing::TwoBit && bs % 4 != 0) continue;
            for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
                CAPTURE(packing_name(p), bs, scale_mode_name(mode));
                TernaryLayout l = layout({p, bs}, 70, 257, mode);
                l.bases = 3;
                const auto data = make_tensor(l, rng, Fill::Random);
                const LutWeights w = lut_repack(l, data.data());
                const LutKernel ref = ref_kernel(p);
                const int m = 3;
                std::vector<std::vector<std::uint8_t>> tables;
                std::vector<const std::uint8_t*> ptrs;
                std::vector<float> scales;
                std::vector<std::vector<std::int8_t>> qs;
                for (int j = 0; j < m; ++j) {
                    qs.push_back(make_q(l, rng, Act::Random));
                    std::vector<std::uint8_t> want(lut_table_bytes(l));
                    ref.prepare(l, qs.back().data(), want.data());
                    tables.emplace_back(lut_table_bytes(l), 0x77);
                    lut_prepare(l, qs.back().data(), tables.back().data());
                    CHECK(tables.back() == want);
                    ptrs.push_back(tables.back().data());
                    scales.push_back(0.02f * static_cast<float>(j + 1));
                }
                const std::int64_t ldy = l.rows + 1;
                for (int k = 1; k <= 3; ++k) {
                    CAPTURE(k);
                    std::vector<float> got(static_cast<std::size_t>(m * ldy), -1.0f);
                    lut_gemm(w, k, ptrs.data(), scales.data(), m, 5, l.rows, got.data(), ldy);
                    for (int j = 0; j < m; ++j) {
                        std::vector<float> want(static_cast<std::size_t>(l.rows - 5)), one(want.size());
                        ternary_gemv_ref(l, data.data(), k, qs[static_cast<std::size_t>(j)].data(),
                                         scales[static_cast<std::size_t>(j)], 5, l.rows, want.data());
                        CHECK(std::equal(want.begin(), want.end(), got.begin() + j * ldy));
                        lut_gemv(w, k, ptrs[static_cast<std::size_t>(j)], scales[static_cast<std::size_t>(j)], 5, l.rows,
                                 one.data());
                        CHECK(same_bits(want, one));
                    }
                }
            }
        }
    }
}

namespace {

// The batched GEMM of a packing (`gemm_of`) against the reference GEMV per input.
void check_batched_gemm(LutGemmFn (*gemm_of)(Packing)) {
    std::mt19937 rng(4242);
    for (int bits : {16, 8}) {
        for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
            for (Packing p : {Packing::TwoBit, Packing::Dense}) {
                const LutKernel ref = ref_kernel(p);
                const LutGemmFn gemm = gemm_of(p);
                for (int bs : {64, 128, 36, 96, 32}) {
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
                                ref.prepare(l, q.data(), tables.back().data());
                                ptrs.push_back(tables.back().data());
                                scales.push_back(0.01f * static_cast<float>(j + 1));
                            }
                            const std::int64_t r0 = rows > 3 ? 3 : 0, ldy = rows + 2;
                            for (int k = 1; k <= 3; ++k) {
                                CAPTURE(packing_name(p), bs, rows, cols, k, scale_mode_name(mode), bits);
                                std::vector<float> got(static_cast<std::size_t>(m * ldy), -1.0f);
                                gemm(w, k, ptrs.data(), scales.data(), m, r0, rows, got.data(), ldy);
                                for (int j = 0; j < m; ++j) {
                                    std::vector<float> want(static_cast<std::size_t>(rows - r0));
                                    ref.gemv(w, k, ptrs[static_cast<std::size_t>(j)], scales[static_cast<std::size_t>(j)],
                                             r0, rows, want.data());
                                    CHECK(std::equal(want.begin(), want.end(), got.begin() + j * ldy));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

}  // namespace

TEST_CASE("AVX2 batched LUT GEMM equals the reference GEMV per input", "[kernels][lut]") {
    if (!avx2_available()) {
        WARN("SKIPPED: no usable AVX2; the AVX2 LUT GEMM is not tested");
        return;
    }
    check_batched_gemm(avx2_gemm);
}

#ifdef BITTTT_HAVE_NEON_KERNEL
TEST_CASE("NEON batched LUT GEMM equals the reference GEMV per input", "[kernels][lut][neon]") {
    if (!neon_available()) {
        WARN("SKIPPED: no Advanced SIMD; the NEON LUT GEMM is not tested");
        return;
    }
    check_batched_gemm(neon_gemm);
}
#endif

#if defined(BITTTT_HAVE_AVX2_KERNEL) || defined(BITTTT_HAVE_NEON_KERNEL)
namespace {

// The prompt path's GEMM `gemm_levels` (lut_gemm_levels_avx2 / _neon / _neon_dot): K = 1, or
// tied scales with K <= 4, against lut_gemv_ref per input, for batches of 1, 5 and 33
// inputs. Half the cases overwrite the tiles' code bytes with random bytes, as a tiles file
// read in place may hold: 2bit code 3 and dense magnitudes 14, 15 must read as the
// reference reads them.
void check_levels_gemm(LutGemmFn gemm_levels) {
    std::mt19937 rng(2026);
    std::uniform_int_distribution<int> byte(0, 255);
    int cases = 0;
    for (int bits : {16, 8}) {
        for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
            for (Packing p : {Packing::TwoBit, Packing::Dense}) {
                const LutKernel ref = ref_kernel(p);
                for (int bs : {64, 36, 96, 32, 4}) {
                    for (std::int64_t rows : {1, 33, 70}) {
                        for (std::int64_t cols : {7, 257}) {
                            for (bool raw : {false, true}) {
                                const TernaryLayout l{rows, cols, 4, bs, p, mode, bits};
                                const auto data = make_tensor(l, rng, Fill::Random);
                                LutWeights w = lut_repack(l, data.data());
                                if (raw) {
                                    for (std::int64_t t = 0; t < w.tiles(); ++t) {
                                        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
                                            for (int k = 0; k < l.bases; ++k) {
                                                std::uint8_t* c = w.owned.data() + w.layout.tile_code_offset(k, t, b);
                                                for (std::size_t i = 0; i < w.layout.tile_code_record(); ++i) {
                                                    c[i] = static_cast<std::uint8_t>(byte(rng));
                                                }
                                            }
                                        }
                                    }
                                }
                                for (int m : {1, 5, 33}) {
                                    std::vector<std::vector<std::uint8_t>> tables, levels;
                                    std::vector<const std::uint8_t*> tabs, lvs;
                                    std::vector<float> scales;
                                    for (int j = 0; j < m; ++j) {
                                        const auto q = make_q(l, rng, j == 0 ? Act::Plus127 : j == 1 ? Act::Minus127 : Act::Random);
                                        tables.emplace_back(lut_table_bytes(l));
                                        ref.prepare(l, q.data(), tables.back().data());
                                        levels.emplace_back(lut_levels_bytes(l), 0xAA);
                                        lut_levels_prepare(l, q.data(), levels.back().data());
                                        scales.push_back(0.01f * static_cast<float>(j + 1));
                                    }
                                    for (int j = 0; j < m; ++j) {
                                        tabs.push_back(tables[static_cast<std::size_t>(j)].data());
                                        lvs.push_back(levels[static_cast<std::size_t>(j)].data());
                                    }
                                    const std::int64_t r0 = rows > 3 ? 3 : 0, ldy = rows + 2;
                                    for (int k = 1; k <= 4; ++k) {
                                        if (!lut_levels_apply(l, k)) continue;
                                        CAPTURE(packing_name(p), bs, rows, cols, k, m, raw, scale_mode_name(mode), bits);
                                        std::vector<float> got(static_cast<std::size_t>(m * ldy), -1.0f);
                                        gemm_levels(w, k, lvs.data(), scales.data(), m, r0, rows, got.data(), ldy);
                                        for (int j = 0; j < m; ++j) {
                                            std::vector<float> want(static_cast<std::size_t>(rows - r0));
                                            ref.gemv(w, k, tabs[static_cast<std::size_t>(j)], scales[static_cast<std::size_t>(j)],
                                                     r0, rows, want.data());
                                            REQUIRE(std::memcmp(want.data(), got.data() + j * ldy, want.size() * sizeof(float)) == 0);
                                        }
                                        ++cases;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    CHECK(cases > 400);
}

}  // namespace
#endif

#ifdef BITTTT_HAVE_AVX2_KERNEL
TEST_CASE("AVX2 levels GEMM equals the reference GEMV per input, corrupt tile codes included", "[kernels][lut]") {
    if (!avx2_available()) {
        WARN("SKIPPED: no usable AVX2; the AVX2 levels GEMM is not tested");
        return;
    }
    check_levels_gemm(lut_gemm_levels_avx2);
}
#endif

#ifdef BITTTT_HAVE_NEON_KERNEL
TEST_CASE("NEON levels GEMM (plain NEON) equals the reference GEMV per input, corrupt tile codes included",
          "[kernels][lut][neon]") {
    if (!neon_available()) {
        WARN("SKIPPED: no Advanced SIMD; the NEON levels GEMM is not tested");
        return;
    }
    check_levels_gemm(lut_gemm_levels_neon);
}

TEST_CASE("NEON levels GEMM (sdot) equals the reference GEMV per input, corrupt tile codes included",
          "[kernels][lut][neon]") {
    if (!neon_dotprod_available()) {
        WARN("SKIPPED: this CPU has no dot-product extension (asimddp); the sdot levels GEMM is not tested");
        return;
    }
    check_levels_gemm(lut_gemm_levels_neon_dot);
}

TEST_CASE("NEON dispatch: the lut design, NEON levels path and kernel names", "[kernels][lut][neon]") {
    CHECK(choose_design(nullptr, Isa::Neon) == TernaryDesign::Lut);
    CHECK(choose_design("lut", Isa::Neon) == TernaryDesign::Lut);
    CHECK(choose_design("maddubs", Isa::Neon) == TernaryDesign::Maddubs);
    if (active_isa() != Isa::Neon) return;  // BITTTT_ISA=generic
    const TernaryLayout l{64, 256, 2, 64, Packing::TwoBit, ScaleMode::Tied, 16};
    CHECK(lut_levels_available(l, 2) == lut_levels_enabled());
    const std::string names = kernels_in_use();
    INFO(names);
    CHECK(names.rfind(neon_dotprod_available() ? "neon+dotprod (ternary: " : "neon (ternary: ", 0) == 0);
    if (std::getenv("BITTTT_TERNARY_KERNEL") == nullptr) CHECK(names.find("(ternary: lut)") != std::string::npos);
}
#endif

TEST_CASE("levels path: which layouts and base counts it serves", "[kernels][lut]") {
    TernaryLayout l{32, 64, 6, 64, Packing::TwoBit, ScaleMode::Free, 16};
    CHECK(lut_levels_apply(l, 1));
    CHECK_FALSE(lut_levels_apply(l, 2));
    l.scales = ScaleMode::Tied;
    for (int k = 1; k <= kLevelsMaxBases; ++k) CHECK(lut_levels_apply(l, k));
    CHECK_FALSE(lut_levels_apply(l, kLevelsMaxBases + 1));
    // Positions: whole code bytes (2bit) or index bytes (dense), at least B, a multiple of 4.
    CHECK(lut_levels_positions(l) == 64);
    CHECK(lut_levels_record_bytes(l) == 68);
    l.packing = Packing::Dense;
    CHECK(lut_levels_positions(l) == 68);  // T = 22 triples, 11 index bytes: 66 positions
    l.block_size = 4;
    CHECK(lut_levels_positions(l) == 8);
}
