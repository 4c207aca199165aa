// dtype names/sizes and the f16 / bf16 <-> f32 conversions, checked bit for bit against
// references computed here independently (double arithmetic, ldexp, nearbyint).
#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>

#include "bitttt/dtype.h"
#include "bitttt/error.h"

using namespace bitttt;

namespace {

std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }

bool f16_is_nan(std::uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0; }
bool bf16_is_nan(std::uint16_t h) { return (h & 0x7F80) == 0x7F80 && (h & 0x007F) != 0; }

// Value of an f16 bit pattern by the textbook formula, in double.
double ref_f16_value(std::uint16_t h) {
    const int sign = h >> 15;
    const int exp = (h >> 10) & 0x1F;
    const int mant = h & 0x3FF;
    double v;
    if (exp == 0)
        v = std::ldexp(static_cast<double>(mant), -24);
    else if (exp == 31)
        v = mant == 0 ? std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::quiet_NaN();
    else
        v = std::ldexp(static_cast<double>(1024 + mant), exp - 25);
    return sign ? -v : v;
}

// f32 -> f16 by arithmetic in double: scale into the integer range of the target's
// significand and round with nearbyint (round-to-nearest-even in the default mode).
// Non-NaN inputs only.
std::uint16_t ref_f32_to_f16(float f) {
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(static_cast<double>(f));
    if (std::isinf(a) || a >= 65520.0) return sign | 0x7C00;
    if (a < std::ldexp(1.0, -14)) {
        // Subnormal range: multiples of 2^-24. A result of 1024 is the smallest normal,
        // whose bit pattern is also 1024.
        return static_cast<std::uint16_t>(sign | static_cast<int>(std::nearbyint(a * 0x1p24)));
    }
    int ex;
    std::frexp(a, &ex);  // a = fr * 2^ex, fr in [0.5, 1)
    int e = ex - 1;      // a in [2^e, 2^(e+1))
    auto m = static_cast<int>(std::nearbyint(std::ldexp(a, 10 - e)));  // in [1024, 2048]
    if (m == 2048) {
        m = 1024;
        ++e;
    }
    if (e + 15 >= 31) return sign | 0x7C00;
    return static_cast<std::uint16_t>(sign | ((e + 15) << 10) | (m - 1024));
}

// f32 -> bf16 the same way: bf16 has an 8-bit significand and f32's exponent range.
std::uint16_t ref_f32_to_bf16(float f) {
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    const double a = std::fabs(static_cast<double>(f));
    if (std::isinf(a)) return sign | 0x7F80;
    if (a < std::ldexp(1.0, -126)) {
        // Subnormal range: multiples of 2^-133.
        return static_cast<std::uint16_t>(sign | static_cast<int>(std::nearbyint(std::ldexp(a, 133))));
    }
    int ex;
    std::frexp(a, &ex);
    int e = ex - 1;
    auto m = static_cast<int>(std::nearbyint(std::ldexp(a, 7 - e)));  // in [128, 256]
    if (m == 256) {
        m = 128;
        ++e;
    }
    if (e + 127 >= 255) return sign | 0x7F80;
    return static_cast<std::uint16_t>(sign | ((e + 127) << 7) | (m - 128));
}

}  // namespace

TEST_CASE("dtype names, sizes and parsing", "[dtype]") {
    const std::vector<std::pair<const char*, std::size_t>> all{
        {"BOOL", 1}, {"U8", 1},      {"I8", 1},      {"I16", 2}, {"U16", 2},
        {"I32", 4},  {"U32", 4},     {"I64", 8},     {"U64", 8}, {"F8_E4M3", 1},
        {"F8_E5M2", 1}, {"F16", 2},  {"BF16", 2},    {"F32", 4}, {"F64", 8}};
    for (const auto& [name, size] : all) {
        INFO(name);
        const auto t = dtype_from_string(name);
        REQUIRE(t.has_value());
        CHECK(std::string(dtype_name(*t)) == name);
        CHECK(dtype_size(*t) == size);
    }
    CHECK_FALSE(dtype_from_string("f32").has_value());  // case-sensitive, as in safetensors
    CHECK_FALSE(dtype_from_string("").has_value());
    CHECK_FALSE(dtype_from_string("F32 ").has_value());
    CHECK_FALSE(dtype_from_string("Q4_0").has_value());

    CHECK(dtype_is_float_convertible(DType::F32));
    CHECK(dtype_is_float_convertible(DType::F16));
    CHECK(dtype_is_float_convertible(DType::BF16));
    CHECK_FALSE(dtype_is_float_convertible(DType::F64));
    CHECK_FALSE(dtype_is_float_convertible(DType::F8_E4M3));
    CHECK_FALSE(dtype_is_float_convertible(DType::I32));
}

TEST_CASE("f16 -> f32 is exact for all 65536 inputs", "[dtype][f16]") {
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = static_cast<std::uint16_t>(i);
        const float got = f16_to_f32(h);
        const std::uint32_t sign = static_cast<std::uint32_t>(h >> 15) << 31;
        if (f16_is_nan(h)) {
            // NaN: sign and the 10 payload bits (incl. the quiet bit) move to the top.
            REQUIRE(std::isnan(got));
            REQUIRE(bits(got) == (sign | 0x7F800000u | (static_cast<std::uint32_t>(h & 0x3FF) << 13)));
            continue;
        }
        const float want = static_cast<float>(ref_f16_value(h));  // exact: f16 is a subset of f32
        if (bits(got) != bits(want)) {
            INFO("h = 0x" << std::hex << i);
            REQUIRE(bits(got) == bits(want));  // bit compare: also checks the sign of zero
        }
    }
}

TEST_CASE("f16 known bit patterns", "[dtype][f16]") {
    CHECK(f16_to_f32(0x3C00) == 1.0f);
    CHECK(f16_to_f32(0xBC00) == -1.0f);
    CHECK(f16_to_f32(0x4000) == 2.0f);
    CHECK(f16_to_f32(0x3800) == 0.5f);
    CHECK(f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
    CHECK(f16_to_f32(0x03FF) == std::ldexp(1023.0f, -24));
    CHECK(f16_to_f32(0x0400) == std::ldexp(1.0f, -14));
    CHECK(bits(f16_to_f32(0x0000)) == 0x00000000u);
    CHECK(bits(f16_to_f32(0x8000)) == 0x80000000u);
    CHECK(f16_to_f32(0x7C00) == std::numeric_limits<float>::infinity());
    CHECK(f16_to_f32(0xFC00) == -std::numeric_limits<float>::infinity());
    CHECK(bits(f16_to_f32(0x7E00)) == 0x7FC00000u);
    CHECK(bits(f16_to_f32(0xFE00)) == 0xFFC00000u);
    CHECK(bits(f16_to_f32(0x7C01)) == 0x7F802000u);  // signalling NaN payload kept

    CHECK(f32_to_f16(1.0f) == 0x3C00);
    CHECK(f32_to_f16(-1.0f) == 0xBC00);
    CHECK(f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(f32_to_f16(0.0f) == 0x0000);
    CHECK(f32_to_f16(-0.0f) == 0x8000);
    CHECK(f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7C00);
    CHECK(f32_to_f16(-std::numeric_limits<float>::infinity()) == 0xFC00);
    CHECK(f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(f32_to_f16(std::ldexp(1.0f, -14)) == 0x0400);
    CHECK(f32_to_f16(0.1f) == 0x2E66);
    CHECK(f32_to_f16(1.0f / 3.0f) == 0x3555);
}

TEST_CASE("f32 -> f16 rounding edges", "[dtype][f16]") {
    const float inf = std::numeric_limits<float>::infinity();
    // Overflow: 65520 is exactly halfway between 65504 (0x7BFF, odd) and 65536 (Inf).
    CHECK(f32_to_f16(65519.996f) == 0x7BFF);
    CHECK(f32_to_f16(std::nextafter(65520.0f, 0.0f)) == 0x7BFF);
    CHECK(f32_to_f16(65520.0f) == 0x7C00);
    CHECK(f32_to_f16(-65520.0f) == 0xFC00);
    CHECK(f32_to_f16(1e6f) == 0x7C00);
    CHECK(f32_to_f16(std::numeric_limits<float>::max()) == 0x7C00);
    CHECK(f32_to_f16(-std::numeric_limits<float>::max()) == 0xFC00);
    CHECK(f32_to_f16(inf) == 0x7C00);

    // Underflow around the smallest subnormal 2^-24.
    const float tiny = std::ldexp(1.0f, -25);  // half of 2^-24: tie, 0 is even
    CHECK(f32_to_f16(tiny) == 0x0000);
    CHECK(f32_to_f16(-tiny) == 0x8000);
    CHECK(f32_to_f16(std::nextafter(tiny, 1.0f)) == 0x0001);
    CHECK(f32_to_f16(-std::nextafter(tiny, 1.0f)) == 0x8001);
    CHECK(f32_to_f16(std::nextafter(tiny, 0.0f)) == 0x0000);
    CHECK(f32_to_f16(std::ldexp(1.0f, -26)) == 0x0000);
    CHECK(f32_to_f16(std::ldexp(1.0f, -40)) == 0x0000);
    CHECK(f32_to_f16(std::numeric_limits<float>::denorm_min()) == 0x0000);
    CHECK(f32_to_f16(-std::numeric_limits<float>::denorm_min()) == 0x8000);
    CHECK(f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);  // 1.5 ulps: tie to even (2)
    CHECK(f32_to_f16(std::ldexp(5.0f, -25)) == 0x0002);  // 2.5 ulps: tie to even (2)
    // Largest subnormal + half an ulp rounds up into the smallest normal.
    CHECK(f32_to_f16(std::ldexp(2047.0f, -25)) == 0x0400);
    CHECK(f32_to_f16(std::ldexp(2045.0f, -25)) == 0x03FE);  // 1022.5 -> 1022 (even)

    // Normal range ties: 1 + 2^-11 is halfway between 1 (even) and 1 + 2^-10.
    CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
    CHECK(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
    CHECK(f32_to_f16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)) == 0x3C01);
    // Mantissa carry into the exponent: 2 - 2^-11 is halfway between 0x3BFF (odd) and 2.
    CHECK(f32_to_f16(2.0f - std::ldexp(1.0f, -11)) == 0x4000);
}

TEST_CASE("f32 -> f16: every halfway point and its neighbours", "[dtype][f16]") {
    // For each pair of adjacent finite f16 values, the midpoint (exact in f32) must go to
    // the even one, and one f32 ulp either side to the nearer one.
    for (std::uint32_t h = 0; h < 0x7BFF; ++h) {
        const double lo = ref_f16_value(static_cast<std::uint16_t>(h));
        const double hi = ref_f16_value(static_cast<std::uint16_t>(h + 1));
        const auto mid = static_cast<float>((lo + hi) / 2);
        REQUIRE(static_cast<double>(mid) == (lo + hi) / 2);
        const std::uint16_t even = (h & 1) ? static_cast<std::uint16_t>(h + 1) : static_cast<std::uint16_t>(h);
        INFO("h = 0x" << std::hex << h);
        REQUIRE(f32_to_f16(mid) == even);
        REQUIRE(f32_to_f16(-mid) == (even | 0x8000));
        REQUIRE(f32_to_f16(std::nextafter(mid, 0.0f)) == h);
        REQUIRE(f32_to_f16(std::nextafter(mid, 1e9f)) == h + 1);
    }
}

TEST_CASE("f16 -> f32 -> f16 round trips every non-NaN pattern", "[dtype][f16]") {
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const auto h = static_cast<std::uint16_t>(i);
        const std::uint16_t back = f32_to_f16(f16_to_f32(h));
        if (f16_is_nan(h)) {
            REQUIRE(f16_is_nan(back));
            REQUIRE((back & 0x0200) != 0);  // quiet
            REQUIRE((back & 0x8000) == (h & 0x8000));
            REQUIRE((back & 0x01FF) == (h & 0x01FF));  // payload below the quiet bit kept
        } else {
            REQUIRE(back == h);
        }
    }
}

TEST_CASE("f32 -> f16 agrees with a double-arithmetic reference", "[dtype][f16]") {
    REQUIRE(std::fegetround() == FE_TONEAREST);
    // A strided sweep over all 2^32 patterns (every exponent, sign and many mantissas),
    // plus every pattern in the range where f16 subnormals and small normals live.
    auto check = [](std::uint32_t u) {
        const float f = from_bits(u);
        if (std::isnan(f)) return;
        const std::uint16_t got = f32_to_f16(f);
        const std::uint16_t want = ref_f32_to_f16(f);
        if (got != want) {
            INFO("f32 bits 0x" << std::hex << u << " got 0x" << got << " want 0x" << want);
            REQUIRE(got == want);
        }
    };
    for (std::uint64_t u = 0; u <= 0xFFFFFFFFu; u += 977) check(static_cast<std::uint32_t>(u));
    // |f| in [2^-26, 2^-13): every 8th pattern (covers all rounding positions of the
    // shifts 14..24, since the discarded bits vary).
    for (std::uint32_t u = 0x32800000u; u < 0x39000000u; u += 7) {
        check(u);
        check(u | 0x80000000u);
    }
}

TEST_CASE("f32 -> f16 NaN handling", "[dtype][f16]") {
    const std::uint32_t nans[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7FBFFFFFu,
                                  0x7FFFFFFFu, 0xFF800001u, 0x7F802000u, 0x7FE00000u};
    for (const std::uint32_t n : nans) {
        INFO("f32 bits 0x" << std::hex << n);
        const std::uint16_t h = f32_to_f16(from_bits(n));
        CHECK(f16_is_nan(h));
        CHECK((h & 0x0200) != 0);  // quiet
        CHECK((h >> 15) == (n >> 31));
        CHECK((h & 0x03FF) == (((n >> 13) & 0x3FF) | 0x200));  // top payload bits kept
    }
    CHECK(f32_to_f16(std::numeric_limits<float>::quiet_NaN()) == 0x7E00);
    CHECK(f32_to_f16(from_bits(0x7F800001u)) == 0x7E00);  // signalling, payload only in low bits
}

TEST_CASE("bf16 <-> f32", "[dtype][bf16]") {
    // bf16 -> f32 is the upper half of the f32 pattern, for every input.
    for (std::uint32_t i = 0; i < 0x10000; ++i) {
        const float f = bf16_to_f32(static_cast<std::uint16_t>(i));
        REQUIRE(bits(f) == i << 16);
        if (!bf16_is_nan(static_cast<std::uint16_t>(i))) REQUIRE(f32_to_bf16(f) == i);
    }
    CHECK(bf16_to_f32(0x3F80) == 1.0f);
    CHECK(bf16_to_f32(0xC000) == -2.0f);
    CHECK(bf16_to_f32(0x7F80) == std::numeric_limits<float>::infinity());
    CHECK(bf16_to_f32(0x7F7F) == from_bits(0x7F7F0000u));
    CHECK(f32_to_bf16(1.0f) == 0x3F80);
    CHECK(f32_to_bf16(-0.0f) == 0x8000);
    CHECK(f32_to_bf16(3.14159265f) == 0x4049);

    // Ties to even: 0x3F808000 is halfway between 0x3F80 (even) and 0x3F81.
    CHECK(f32_to_bf16(from_bits(0x3F808000u)) == 0x3F80);
    CHECK(f32_to_bf16(from_bits(0x3F818000u)) == 0x3F82);
    CHECK(f32_to_bf16(from_bits(0x3F808001u)) == 0x3F81);
    CHECK(f32_to_bf16(from_bits(0x3F807FFFu)) == 0x3F80);
    // Overflow: halfway between the largest finite (0x7F7F, odd) and Inf goes to Inf.
    CHECK(f32_to_bf16(from_bits(0x7F7F7FFFu)) == 0x7F7F);
    CHECK(f32_to_bf16(from_bits(0x7F7F8000u)) == 0x7F80);
    CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
    CHECK(f32_to_bf16(-std::numeric_limits<float>::max()) == 0xFF80);
    CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
    // Subnormals round like everything else.
    CHECK(f32_to_bf16(from_bits(0x00008000u)) == 0x0000);
    CHECK(f32_to_bf16(from_bits(0x00018000u)) == 0x0002);
    CHECK(f32_to_bf16(from_bits(0x00008001u)) == 0x0001);

    // NaN stays NaN, quiet, with the sign and top payload bits.
    for (const std::uint32_t n : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0x7FFFFFFFu, 0xFF810000u}) {
        INFO("f32 bits 0x" << std::hex << n);
        const std::uint16_t h = f32_to_bf16(from_bits(n));
        CHECK(bf16_is_nan(h));
        CHECK(h == ((n >> 16) | 0x0040));
    }

    // Against the double reference, strided over all patterns.
    for (std::uint64_t u = 0; u <= 0xFFFFFFFFu; u += 991) {
        const float f = from_bits(static_cast<std::uint32_t>(u));
        if (std::isnan(f)) continue;
        const std::uint16_t got = f32_to_bf16(f);
        const std::uint16_t want = ref_f32_to_bf16(f);
        if (got != want) {
            INFO("f32 bits 0x" << std::hex << u);
            REQUIRE(got == want);
        }
    }
}

TEST_CASE("convert_to_f32 reads unaligned little-endian data", "[dtype]") {
    const std::vector<float> values{1.0f, -2.5f, 0.0f, 65504.0f, std::ldexp(1.0f, -24), -0.125f};
    const std::size_t n = values.size();
    // One spare byte in front so that the data is deliberately misaligned.
    std::vector<std::uint8_t> buf(1 + 4 * n);
    std::vector<float> out(n, 42.0f);

    SECTION("F32") {
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t u = bits(values[i]);
            for (int b = 0; b < 4; ++b) buf[1 + 4 * i + b] = static_cast<std::uint8_t>(u >> (8 * b));
        }
        convert_to_f32(DType::F32, buf.data() + 1, n, out.data());
        for (std::size_t i = 0; i < n; ++i) CHECK(bits(out[i]) == bits(values[i]));
    }
    SECTION("F16") {
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint16_t h = f32_to_f16(values[i]);
            buf[1 + 2 * i] = static_cast<std::uint8_t>(h);
            buf[2 + 2 * i] = static_cast<std::uint8_t>(h >> 8);
        }
        convert_to_f32(DType::F16, buf.data() + 1, n, out.data());
        for (std::size_t i = 0; i < n; ++i) CHECK(bits(out[i]) == bits(values[i]));  // all exact in f16
    }
    SECTION("BF16") {
        const std::vector<std::uint16_t> in{0x3F80, 0xC020, 0x0000, 0x8000, 0x7F80, 0x4049};
        for (std::size_t i = 0; i < in.size(); ++i) {
            buf[1 + 2 * i] = static_cast<std::uint8_t>(in[i]);
            buf[2 + 2 * i] = static_cast<std::uint8_t>(in[i] >> 8);
        }
        convert_to_f32(DType::BF16, buf.data() + 1, in.size(), out.data());
        for (std::size_t i = 0; i < in.size(); ++i) CHECK(bits(out[i]) == static_cast<std::uint32_t>(in[i]) << 16);
    }
    SECTION("zero elements touch nothing") {
        convert_to_f32(DType::F16, nullptr, 0, nullptr);
        convert_to_f32(DType::F32, nullptr, 0, nullptr);
    }
    SECTION("other dtypes are unsupported") {
        CHECK_THROWS_AS(convert_to_f32(DType::I32, buf.data(), 1, out.data()), UnsupportedError);
        CHECK_THROWS_WITH(convert_to_f32(DType::F64, buf.data(), 1, out.data()),
                          Catch::Contains("F64"));
    }
}
