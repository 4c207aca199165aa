// The int8 (per-row scale) encoding of the output layer and embeddings: the row quantiser
// (exhaustive small cases and edges), the layout and the .btt reader's checks, the AVX2
// kernel against the scalar reference (bit-identical), the converter's --lm-head /
// --embeddings choices (round trip error bounds, tied tables, conflicts, non-finite input),
// the engine with an int8 output layer, and the command line.
#include <catch2/catch.hpp>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/error.h"
#include "bitttt/int8.h"
#include "bitttt/model.h"
#include "bitttt/safetensors.h"
#include "fixtures.h"
#include "format/le.h"
#include "kernels/dispatch.h"
#include "kernels/int8_gemv.h"
#include "kernels/int8_gemv_neon.h"
#include "kernels/ternary_gemv.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using bitttt::test::TinyModel;
using nlohmann::json;

namespace {

// Checks q and the scale of one quantised row against the definition and the error bound.
void check_row(const std::vector<float>& w) {
    std::vector<std::int8_t> q(w.size(), 99);
    const float s = quantize_row_int8(w.data(), static_cast<std::int64_t>(w.size()), q.data());
    float amax = 0;
    for (float v : w) amax = std::max(amax, std::fabs(v));
    REQUIRE(s == amax / 127.0f);
    for (std::size_t i = 0; i < w.size(); ++i) {
        INFO("w = " << w[i] << ", max " << amax);
        REQUIRE(q[i] != -128);
        if (amax == 0) {
            REQUIRE(q[i] == 0);
            continue;
        }
        REQUIRE(q[i] == static_cast<std::int8_t>(std::nearbyint(static_cast<double>(w[i]) * 127.0 / amax)));
        if (amax >= 127.0f * FLT_MIN) {  // normal scale: the documented bound
            REQUIRE(std::fabs(static_cast<double>(q[i]) * s - w[i]) <= amax / 254.0 * (1 + 1e-6));
        }
    }
}

// An int8 tensor with random values (optionally including the corrupt -128) and scales of
// every kind (normal, zero, subnormal, negative), laid out exactly as in a file.
std::vector<std::uint8_t> random_int8(const Int8Layout& l, std::mt19937& rng, bool with_minus128 = false) {
    std::vector<std::uint8_t> d(l.total_bytes(), 0);
    std::uniform_int_distribution<int> v(with_minus128 ? -128 : -127, 127), kind(0, 9);
    std::uniform_real_distribution<float> mag(1e-4f, 2.0f);
    for (std::uint64_t i = 0; i < l.values_bytes(); ++i) {
        const int k = kind(rng);
        d[i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(k == 0 ? 127 : k == 1 ? -127 : v(rng)));
    }
    for (std::int64_t r = 0; r < l.rows; ++r) {
        const int k = kind(rng);
        float s = k == 0 ? 0.0f : k == 1 ? 1e-40f : k == 2 ? -mag(rng) : mag(rng);
        std::memcpy(d.data() + l.scales_offset() + 4 * static_cast<std::uint64_t>(r), &s, 4);
    }
    return d;
}

std::vector<std::int8_t> random_q(std::int64_t n, std::mt19937& rng) {
    std::uniform_int_distribution<int> v(-127, 127), kind(0, 4);
    std::vector<std::int8_t> q(static_cast<std::size_t>(n));
    for (auto& x : q) {
        const int k = kind(rng);
        x = static_cast<std::int8_t>(k == 0 ? 127 : k == 1 ? -127 : v(rng));
    }
    return q;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The reference over [0, rows), then `kern` over the whole range and over random
// sub-ranges; all bit-identical.
void check_kernel(kernels::Int8GemvFn kern, const Int8Layout& l, const std::vector<std::uint8_t>& d,
                  const std::vector<std::int8_t>& q, float xs, std::mt19937& rng) {
    std::vector<float> ref(static_cast<std::size_t>(l.rows)), got(ref.size(), -1.0f);
    kernels::int8_gemv_ref(l, d.data(), q.data(), xs, 0, l.rows, ref.data());
    // Exact integer dots against a 64-bit sum.
    for (std::int64_t r = 0; r < l.rows; ++r) {
        std::int64_t dot = 0;
        for (std::int64_t c = 0; c < l.cols; ++c) dot += static_cast<std::int8_t>(d[r * l.cols + c]) * q[c];
        const float want = static_cast<float>(dot) * int8_row_scale(l, d.data(), r) * xs;
        REQUIRE(std::memcmp(&want, &ref[static_cast<std::size_t>(r)], 4) == 0);
    }
    INFO("rows " << l.rows << " cols " << l.cols);
    kern(l, d.data(), q.data(), xs, 0, l.rows, got.data());
    REQUIRE(same_bits(ref, got));
    std::fill(got.begin(), got.end(), -1.0f);
    std::uniform_int_distribution<int> step(1, 9);
    for (std::int64_t r0 = 0; r0 < l.rows;) {
        const std::int64_t r1 = std::min<std::int64_t>(l.rows, r0 + step(rng));
        kern(l, d.data(), q.data(), xs, r0, r1, got.data() + r0);
        r0 = r1;
    }
    REQUIRE(same_bits(ref, got));
}

ConvertOptions options(const std::string& in, const std::string& out) {
    ConvertOptions o;
    o.input = in;
    o.output = out;
    o.bases = 2;
    o.threads = 2;
    return o;
}

// Row-wise max |W - W^| / (max|W_row| / 254) of a stored 2-D tensor against the source.
double worst_int8_error_ratio(const BttFile& f, const BttTensor& t, const std::vector<float>& w) {
    const std::int64_t rows = t.shape[0], cols = t.shape[1];
    std::vector<float> row(static_cast<std::size_t>(cols));
    double worst = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
        dequantize_row_int8(t.int8, f.data(t), r, row.data());
        float amax = 0;
        for (std::int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
        for (std::int64_t c = 0; c < cols; ++c) {
            worst = std::max(worst, std::fabs(static_cast<double>(row[c]) - w[r * cols + c]) / (amax / 254.0));
        }
    }
    return worst;
}

}  // namespace

TEST_CASE("int8: row quantiser, exhaustive small rows and edges", "[int8]") {
    // Every row of two values from a grid of 41 magnitudes (signs, zero, ties, extremes).
    std::vector<float> grid = {0.0f, 1.0f, 0.5f, 1.0f / 254, 3.0f / 254, 1e-3f, 0.25f, 127.0f, 63.5f, 1e30f, 3e38f,
                               1e-38f, 1e-40f, FLT_MIN, std::numeric_limits<float>::denorm_min(), 65504.0f,
                               126.5f, 0.7f, 2.0f, 1.5f, 100.0f};
    const std::size_t n = grid.size();
    for (std::size_t i = 0; i < n; ++i) grid.push_back(-grid[i]);
    int rows = 0;
    for (float a : grid) {
        for (float b : grid) {
            check_row({a, b});
            check_row({a, b, 1.0f});
            ++rows;
        }
    }
    CHECK(rows == 42 * 42);

    SECTION("all-zero row: scale 0, values 0, reconstructs exactly") {
        check_row(std::vector<float>(257, 0.0f));
        check_row({-0.0f, 0.0f});
    }
    SECTION("+-max map to +-127, the scale reconstructs them to float precision") {
        std::vector<float> w = {0.3f, -0.3f, 0.1f};
        std::vector<std::int8_t> q(3);
        const float s = quantize_row_int8(w.data(), 3, q.data());
        CHECK(q[0] == 127);
        CHECK(q[1] == -127);
        CHECK(q[2] == 42);  // 42.333...
        CHECK(static_cast<float>(q[0]) * s == Approx(0.3f).epsilon(1e-7));
    }
    SECTION("ties round to even") {
        // max 127: q = w exactly, and 0.5 / 1.5 / 2.5 are exact ties.
        std::vector<float> w = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f};
        std::vector<std::int8_t> q(w.size());
        quantize_row_int8(w.data(), static_cast<std::int64_t>(w.size()), q.data());
        CHECK(std::vector<int>(q.begin(), q.end()) == std::vector<int>{127, 0, 2, 2, 0, -2});
    }
    SECTION("random rows of many lengths and scales stay within max/254") {
        std::mt19937 rng(5);
        for (int len : {1, 3, 7, 33, 255, 257, 4096}) {
            for (float sd : {1e-6f, 0.02f, 3.0f, 1e20f}) {
                std::vector<float> w = bitttt::test::gaussian(static_cast<std::size_t>(len), rng(), sd);
                check_row(w);
            }
        }
    }
    SECTION("NaN and infinity are rejected") {
        for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
            std::vector<float> w = {1.0f, bad, 2.0f};
            std::vector<std::int8_t> q(3);
            CHECK_THROWS_AS(quantize_row_int8(w.data(), 3, q.data()), FormatError);
            CHECK_THROWS_WITH(quantize_row_int8(w.data(), 3, q.data()), Catch::Contains("value 1"));
        }
    }
}

TEST_CASE("int8: layout sizes and limits", "[int8]") {
    Int8Layout l{3, 5};
    CHECK(l.values_bytes() == 15);
    CHECK(l.scales_offset() == 64);
    CHECK(l.total_bytes() == 64 + 12);
    Int8Layout big{32000, 2048};
    CHECK(big.scales_offset() == 32000u * 2048u);  // rows of 2048 need no padding
    CHECK(big.total_bytes() == 32000u * 2048u + 4 * 32000u);
    CHECK(big.bits_per_weight() == Approx(8.0 + 32.0 / 2048));
    CHECK(Int8Layout{0, 7}.total_bytes() == 0);
    CHECK_NOTHROW(Int8Layout{2, kInt8MaxCols}.validate());
    const Int8Layout too_long{2, kInt8MaxCols + 1}, negative{-1, 4};
    CHECK_THROWS_AS(too_long.validate(), UsageError);
    CHECK_THROWS_AS(negative.validate(), UsageError);
    // The int32 bound the kernels rely on.
    CHECK(static_cast<double>(kInt8MaxCols) * 128 * 127 < 2147483647.0);

    std::vector<std::uint8_t> d(l.total_bytes(), 0);
    d[5] = static_cast<std::uint8_t>(-3);  // row 1, col 0
    const float s = 0.25f;
    std::memcpy(d.data() + 64 + 4, &s, 4);
    std::vector<float> row(5);
    dequantize_row_int8(l, d.data(), 1, row.data());
    CHECK(row[0] == -0.75f);
    CHECK(int8_row_scale(l, d.data(), 1) == 0.25f);
    CHECK_THROWS_AS(dequantize_row_int8(l, d.data(), 3, row.data()), UsageError);
}

TEST_CASE("int8: the .btt reader round trip and its checks", "[int8][btt]") {
    TempDir dir;
    const std::string path = dir.file("m.btt");
    std::mt19937 rng(3);
    BttTensor t;
    t.name = "lm_head.weight";
    t.shape = {7, 33};
    t.encoding = Encoding::Int8;
    t.int8 = Int8Layout{7, 33};
    const auto bytes = random_int8(t.int8, rng);
    {
        BttWriter w(path, {{"format", "bitttt"}, {"model", nullptr}}, 1);
        w.add(t, bytes.data(), bytes.size());
        w.finish();
    }
    {
        BttFile f(path);
        const BttTensor* r = f.find("lm_head.weight");
        REQUIRE(r);
        CHECK(r->encoding == Encoding::Int8);
        CHECK(r->int8.rows == 7);
        CHECK(r->int8.cols == 33);
        CHECK(r->size == 256 + 28);
        CHECK(std::memcmp(f.data(*r), bytes.data(), bytes.size()) == 0);
        CHECK_NOTHROW(f.verify(*r));
        CHECK(f.header()["tensors"][0]["encoding"] == "int8");
    }
    CHECK(std::string(encoding_name(Encoding::Int8)) == "int8");
    CHECK(encoding_from_string("int8") == Encoding::Int8);
    CHECK_FALSE(encoding_from_string("i8").has_value());

    // Hand-made headers around one int8 tensor.
    auto raw = [&](const json& entry, std::size_t data_bytes) {
        json h = {{"format", "bitttt"}, {"model", nullptr}, {"tensors", json::array({entry})}};
        std::string text = h.dump();
        const std::uint64_t off = (kBttPreambleBytes + text.size() + 63) / 64 * 64;
        std::vector<std::uint8_t> buf(off + data_bytes, 0);
        std::memcpy(buf.data(), "BTTT", 4);
        le::put_u32(buf.data() + 4, kBttVersion);
        le::put_u64(buf.data() + 8, text.size());
        le::put_u64(buf.data() + 16, off);
        le::put_u64(buf.data() + 24, checksum64(text.data(), text.size()));
        std::memcpy(buf.data() + kBttPreambleBytes, text.data(), text.size());
        std::ofstream(path, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    };
    auto entry = [](std::vector<std::int64_t> shape, std::uint64_t size) {
        return json{{"name", "lm_head.weight"}, {"shape", shape}, {"encoding", "int8"}, {"offset", 0},
                    {"size", size}, {"xxh64", "0000000000000000"}};
    };
    SECTION("the right size is accepted") {
        raw(entry({7, 33}, 284), 284);
        CHECK_NOTHROW(BttFile(path));
    }
    SECTION("scales missing: the size names the tensor, the byte range and the need") {
        raw(entry({7, 33}, 256), 256);
        CHECK_THROWS_WITH(BttFile(path), Catch::Contains("'lm_head.weight'") && Catch::Contains("data [0, 256)") &&
                                             Catch::Contains("need 284"));
    }
    SECTION("no padding before the scales") {
        raw(entry({7, 33}, 231 + 28), 512);
        CHECK_THROWS_WITH(BttFile(path), Catch::Contains("'lm_head.weight'") && Catch::Contains("need 284"));
    }
    SECTION("past the end of the file") {
        raw(entry({7, 33}, 284), 200);
        CHECK_THROWS_WITH(BttFile(path), Catch::Contains("'lm_head.weight'") && Catch::Contains("past end"));
    }
    SECTION("not 2-D") {
        raw(entry({231}, 231), 256);
        CHECK_THROWS_WITH(BttFile(path), Catch::Contains("'lm_head.weight'") && Catch::Contains("must be 2-D"));
    }
    SECTION("rows too long for exact int32 dots") {
        raw(entry({1, kInt8MaxCols + 1}, 0), 64);
        CHECK_THROWS_WITH(BttFile(path), Catch::Contains("'lm_head.weight'") && Catch::Contains("exact in int32"));
    }
    SECTION("an encoding this build does not know says a newer bitttt may be needed") {
        json e = entry({7, 33}, 284);
        e["encoding"] = "int4";
        raw(e, 284);
        CHECK_THROWS_WITH(BttFile(path), Catch::Contains("unknown encoding 'int4'") && Catch::Contains("newer bitttt"));
    }
}

namespace {

// Every shape and extreme against the reference for one kernel.
void check_int8_kernel(kernels::Int8GemvFn kern) {
    std::mt19937 rng(2024);
    int cases = 0;
    for (std::int64_t cols : {1, 3, 7, 15, 16, 17, 31, 32, 33, 64, 255, 257, 4096}) {
        for (std::int64_t rows : {1, 3, 4, 5, 7, 17, 33}) {
            const Int8Layout l{rows, cols};
            // Exactly the tensor's bytes, so a sanitizer would see an overread.
            const auto d = random_int8(l, rng, cases % 2 == 1);
            check_kernel(kern, l, d, random_q(cols, rng), 0.0371f, rng);
            ++cases;
        }
    }
    CHECK(cases == 91);

    // The largest partial sums: every weight +-127 or the corrupt -128, every activation +-127.
    for (int wv : {127, -127, -128}) {
        for (int qv : {127, -127}) {
            const Int8Layout l{9, 4096 + 5};
            std::vector<std::uint8_t> d(l.total_bytes(), 0);
            std::fill(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(l.values_bytes()),
                      static_cast<std::uint8_t>(static_cast<std::int8_t>(wv)));
            for (std::int64_t r = 0; r < l.rows; ++r) {
                const float s = 1.0f;
                std::memcpy(d.data() + l.scales_offset() + 4 * r, &s, 4);
            }
            const std::vector<std::int8_t> q(static_cast<std::size_t>(l.cols), static_cast<std::int8_t>(qv));
            check_kernel(kern, l, d, q, 1.0f, rng);
            std::vector<float> y(9);
            kern(l, d.data(), q.data(), 1.0f, 0, 9, y.data());
            CHECK(y[8] == static_cast<float>(static_cast<std::int64_t>(wv) * qv * l.cols));
        }
    }
    // All-zero activations, and the dispatched kernel whatever BITTTT_ISA chose.
    const Int8Layout l{13, 100};
    const auto d = random_int8(l, rng);
    check_kernel(kern, l, d, std::vector<std::int8_t>(100, 0), 0.0f, rng);
    const auto q = random_q(100, rng);
    std::vector<float> ref(13), got(13);
    kernels::int8_gemv_ref(l, d.data(), q.data(), 0.5f, 0, 13, ref.data());
    kernels::int8_gemv(l, d.data(), q.data(), 0.5f, 0, 13, got.data());
    CHECK(same_bits(ref, got));
}

}  // namespace

TEST_CASE("int8: AVX2 GEMV is bit-identical to the scalar reference", "[int8][kernels][avx2]") {
    CHECK(kernels::int8_gemv_kernel(kernels::Isa::Generic) == &kernels::int8_gemv_ref);
    if (!kernels::avx2_available()) {
        CHECK_THROWS_AS(kernels::int8_gemv_kernel(kernels::Isa::Avx2), UsageError);
        WARN("SKIPPED: this CPU (or build) has no usable AVX2; the AVX2 int8 kernel is not tested");
        return;
    }
    check_int8_kernel(kernels::int8_gemv_kernel(kernels::Isa::Avx2));
}

TEST_CASE("int8: NEON GEMVs (plain and sdot) are bit-identical to the scalar reference", "[int8][kernels][neon]") {
    if (!kernels::neon_available()) {
        CHECK_THROWS_AS(kernels::int8_gemv_kernel(kernels::Isa::Neon), UsageError);
        WARN("SKIPPED: this CPU (or build) has no NEON kernels; the NEON int8 kernels are not tested");
        return;
    }
#ifdef BITTTT_HAVE_NEON_KERNEL
    {
        INFO("plain NEON");
        check_int8_kernel(&kernels::int8_gemv_neon);
    }
    if (kernels::neon_dotprod_available()) {
        INFO("NEON sdot");
        CHECK(kernels::int8_gemv_kernel(kernels::Isa::Neon) == &kernels::int8_gemv_neon_dot);
        check_int8_kernel(&kernels::int8_gemv_neon_dot);
    } else {
        CHECK(kernels::int8_gemv_kernel(kernels::Isa::Neon) == &kernels::int8_gemv_neon);
        WARN("SKIPPED: no dot-product extension (asimddp); the sdot int8 kernel is not tested");
    }
#endif
}
TEST_CASE("int8: the converter's output-layer choices round trip within their bounds", "[int8][convert]") {
    TempDir dir;
    for (bool tied : {false, true}) {
        TinyModel tm;
        tm.tied = tied;
        const auto src = dir.path() / (tied ? "tied" : "untied");
        tm.write(src);
        Checkpoint ckpt = Checkpoint::open(src.string());
        const std::string head_name = tied ? "model.embed_tokens.weight" : "lm_head.weight";
        const std::vector<float> w = ckpt.read_f32(*ckpt.find(head_name));
        for (Encoding head : {Encoding::F16, Encoding::Int8, Encoding::Ternary}) {
            INFO((tied ? "tied" : "untied") << " lm_head " << encoding_name(head));
            auto o = options(src.string(), dir.file("h.btt"));
            o.lm_head = head;
            ConvertReport rep = convert(o);
            CHECK(rep.encodings.lm_head == head);
            BttFile f(o.output);
            CHECK(f.header()["conversion"]["lm_head"] == encoding_name(head));
            CHECK(f.header()["conversion"]["embeddings"] ==
                  encoding_name(tied ? head : kDefaultEmbeddingEncoding));
            CHECK((f.find("lm_head.weight") == nullptr) == tied);
            const BttTensor& t = *f.find(head_name);
            REQUIRE(t.encoding == head);
            CHECK_NOTHROW(f.verify(t));
            REQUIRE(t.relative_error_by_base.size() == (head == Encoding::Ternary ? 2u : 1u));
            if (head == Encoding::Int8) {
                CHECK(t.size == Int8Layout{64, 32}.total_bytes());
                const double ratio = worst_int8_error_ratio(f, t, w);
                CHECK(ratio <= 1.0 + 1e-5);
                CHECK(ratio > 0.5);  // the bound is nearly reached: the test sees real rounding
                // The stored statistic is what the file reconstructs.
                std::vector<float> row(32);
                double err = 0, norm = 0;
                for (std::int64_t r = 0; r < 64; ++r) {
                    dequantize_row_int8(t.int8, f.data(t), r, row.data());
                    for (int c = 0; c < 32; ++c) {
                        const double x = w[static_cast<std::size_t>(r * 32 + c)];
                        err += (x - row[c]) * (x - row[c]);
                        norm += x * x;
                    }
                }
                CHECK(t.relative_error_by_base[0] == Approx(std::sqrt(err / norm)).epsilon(1e-9));
                CHECK(t.relative_error_by_base[0] < 0.01);
            }
        }
    }

    SECTION("untied: the embedding choice is independent") {
        TinyModel().write(dir.path() / "u2");
        for (Encoding emb : {Encoding::F16, Encoding::Int8, Encoding::Ternary}) {
            auto o = options((dir.path() / "u2").string(), dir.file("e.btt"));
            o.embeddings = emb;
            o.lm_head = Encoding::F16;
            convert(o);
            BttFile f(o.output);
            CHECK(f.find("model.embed_tokens.weight")->encoding == emb);
            CHECK(f.find("lm_head.weight")->encoding == Encoding::F16);
            CHECK(f.header()["conversion"]["embeddings"] == encoding_name(emb));
        }
    }
    SECTION("tied: --embeddings alone sets the table, conflicting choices are refused") {
        ConvertOptions o;
        o.embeddings = Encoding::Ternary;
        CHECK(resolve_output_encodings(o, true).lm_head == Encoding::Ternary);
        CHECK(resolve_output_encodings(o, true).embeddings == Encoding::Ternary);
        CHECK(resolve_output_encodings(o, false).lm_head == kDefaultLmHeadEncoding);
        o.lm_head = Encoding::F16;
        CHECK_THROWS_AS(resolve_output_encodings(o, true), UsageError);
        CHECK_THROWS_WITH(resolve_output_encodings(o, true), Catch::Contains("tie_word_embeddings"));
        CHECK(resolve_output_encodings(o, false).embeddings == Encoding::Ternary);
        o.embeddings = Encoding::F16;
        CHECK(resolve_output_encodings(o, true).lm_head == Encoding::F16);
        ConvertOptions none;
        CHECK(resolve_output_encodings(none, true).lm_head == kDefaultLmHeadEncoding);
        CHECK(resolve_output_encodings(none, false).embeddings == kDefaultEmbeddingEncoding);
        ConvertOptions f32;
        f32.lm_head = Encoding::F32;
        CHECK_THROWS_AS(resolve_output_encodings(f32, false), UsageError);
    }
    SECTION("a non-finite lm_head weight is refused, naming the tensor; no output is left") {
        TinyModel().write(dir.path() / "bad", [](const std::string& name, std::vector<float>& v) {
            if (name == "lm_head.weight") v[70] = INFINITY;
        });
        auto o = options((dir.path() / "bad").string(), dir.file("bad.btt"));
        o.lm_head = Encoding::Int8;
        CHECK_THROWS_WITH(convert(o), Catch::Contains("'lm_head.weight'") && Catch::Contains("[2, 6]") &&
                                          Catch::Contains("infinite"));
        CHECK_FALSE(std::filesystem::exists(o.output));
    }
}

TEST_CASE("int8: files with int8 tables are identical for any thread count", "[int8][convert]") {
    TempDir dir;
    TinyModel tm;
    tm.vocab = 3000;  // several slabs' worth of parallel chunks
    tm.write(dir.path() / "m");
    std::vector<std::vector<char>> files;
    for (int threads : {1, 2, 5}) {
        auto o = options((dir.path() / "m").string(), dir.file("t" + std::to_string(threads) + ".btt"));
        o.threads = threads;
        o.embeddings = Encoding::Int8;
        o.lm_head = Encoding::Int8;
        convert(o);
        std::ifstream in(o.output, std::ios::binary);
        files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    CHECK(files[0] == files[1]);
    CHECK(files[0] == files[2]);
}

TEST_CASE("int8: a model with an int8 output layer runs, close to the F16-head model", "[int8][engine]") {
    TempDir dir;
    for (bool tied : {false, true}) {
        TinyModel tm;
        tm.tied = tied;
        const auto src = dir.path() / (tied ? "tied" : "untied");
        tm.write(src);
        auto conv = [&](Encoding head, const std::string& name) {
            auto o = options(src.string(), dir.file(name));
            o.bases = 3;
            o.lm_head = head;
            o.embeddings = tied ? head : Encoding::F16;  // isolate the output layer when untied
            convert(o);
            return o.output;
        };
        const std::string f16 = conv(Encoding::F16, "f16.btt"), i8 = conv(Encoding::Int8, "i8.btt");
        for (int threads : {1, 2}) {
            auto a = Model::load(f16, LoadOptions{0, threads, 16});
            auto b = Model::load(i8, LoadOptions{0, threads, 16});
            CHECK(b->weight_bytes_per_token() < a->weight_bytes_per_token());
            double max_diff = 0, max_abs = 0;
            for (int pos = 0; pos < 8; ++pos) {
                const std::int32_t tok = (pos * 11 + 3) % 64;
                const float* la = a->forward(tok, pos);
                std::vector<float> va(la, la + 64);
                const float* lb = b->forward(tok, pos);
                for (int i = 0; i < 64; ++i) {
                    REQUIRE(std::isfinite(lb[i]));
                    max_diff = std::max(max_diff, std::fabs(static_cast<double>(lb[i]) - va[static_cast<std::size_t>(i)]));
                    max_abs = std::max(max_abs, std::fabs(static_cast<double>(va[static_cast<std::size_t>(i)])));
                }
            }
            INFO((tied ? "tied" : "untied") << " threads " << threads << ": max |diff| " << max_diff << " of max |logit| "
                                            << max_abs);
            // Weights within 1/254 of their row's max and activations within 1/254 of theirs:
            // logits move by a few percent of their range at most (the tied table also feeds
            // the embedding, whose error propagates through the layers).
            CHECK(max_diff > 0);
            CHECK(max_diff < 0.05 * max_abs);
        }
    }
}
