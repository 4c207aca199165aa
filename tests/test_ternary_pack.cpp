// Trit packing (2bit and dense), the layout arithmetic and the reference dequantisation.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/ternary.h"

using namespace bitttt;

namespace {

// Independent reading of the documented layout: code of trit position p in a group.
int documented_code(Packing p, const std::uint8_t* group, int block_size, int pos) {
    const int g = static_cast<int>(group_bytes(p, block_size));
    const std::uint32_t byte = group[pos % g];
    const int d = pos / g;
    if (p == Packing::TwoBit) return static_cast<int>((byte >> (2 * d)) & 3u);
    std::uint32_t pow3 = 1;
    for (int i = 0; i < d; ++i) pow3 *= 3;
    return static_cast<int>((((byte * pow3) % 256u) * 3u) >> 8);
}

std::vector<std::int8_t> random_trits(std::mt19937& rng, int n) {
    std::uniform_int_distribution<int> dist(-1, 1);
    std::vector<std::int8_t> t(static_cast<std::size_t>(n));
    for (auto& x : t) x = static_cast<std::int8_t>(dist(rng));
    return t;
}

}  // namespace

TEST_CASE("dense code: all 243 five-trit combinations round-trip", "[ternary][pack]") {
    std::vector<int> seen(256, 0);
    for (int v = 0; v < 243; ++v) {
        std::uint8_t codes[5];
        int rest = v;
        for (int d = 4; d >= 0; --d) {  // c_0 is the most significant base-3 digit
            codes[d] = static_cast<std::uint8_t>(rest % 3);
            rest /= 3;
        }
        const std::uint8_t q = dense_encode5(codes);
        // The documented encoding: q = ceil(v * 256 / 243).
        CHECK(static_cast<int>(q) == (v * 256 + 242) / 243);
        ++seen[q];

        // The documented decoding formula, evaluated directly ...
        for (int d = 0; d < 5; ++d) {
            int pow3 = 1;
            for (int i = 0; i < d; ++i) pow3 *= 3;
            CHECK((((q * pow3) % 256) * 3) >> 8 == codes[d]);
        }
        // ... and through the library.
        std::uint8_t back[5];
        dense_decode5(q, back);
        for (int d = 0; d < 5; ++d) CHECK(back[d] == codes[d]);
    }
    for (int q = 0; q < 256; ++q) CHECK(seen[q] <= 1);  // injective

    // Bytes the encoder never writes still decode to valid codes.
    for (int q = 0; q < 256; ++q) {
        std::uint8_t c[5];
        dense_decode5(static_cast<std::uint8_t>(q), c);
        for (int d = 0; d < 5; ++d) CHECK(c[d] <= 2);
    }
}

TEST_CASE("2bit: all 81 four-trit patterns of a byte round-trip", "[ternary][pack]") {
    for (int gsize : {1, 3}) {  // block of 4 (one byte) and of 12 (three bytes, test byte 1)
        const int block = 4 * gsize;
        const int byte_index = gsize == 1 ? 0 : 1;
        for (int v = 0; v < 81; ++v) {
            std::vector<std::int8_t> t(static_cast<std::size_t>(block), 0);
            int rest = v;
            std::uint32_t expected = 0;
            for (int d = 0; d < 4; ++d) {
                const int c = rest % 3;
                rest /= 3;
                t[static_cast<std::size_t>(byte_index + d * gsize)] = static_cast<std::int8_t>(c - 1);
                expected |= static_cast<std::uint32_t>(c) << (2 * d);
            }
            std::vector<std::uint8_t> packed(static_cast<std::size_t>(gsize));
            pack_trits(Packing::TwoBit, t.data(), block, packed.data());
            CHECK(packed[static_cast<std::size_t>(byte_index)] == expected);
            std::vector<std::int8_t> back(static_cast<std::size_t>(block), 7);
            unpack_trits(Packing::TwoBit, packed.data(), block, back.data());
            CHECK(back == t);
        }
    }
}

TEST_CASE("group_bytes", "[ternary][pack]") {
    for (int b : {4, 8, 60, 64, 100, 128, 172, 256, 4096}) {
        CHECK(group_bytes(Packing::TwoBit, b) == static_cast<std::size_t>(b / 4));
        CHECK(group_bytes(Packing::Dense, b) == static_cast<std::size_t>((b + 4) / 5));
    }
    CHECK(group_bytes(Packing::Dense, 5) == 1);
    CHECK(group_bytes(Packing::Dense, 6) == 2);
    CHECK(group_bytes(Packing::Dense, 64) == 13);
    CHECK(group_bytes(Packing::Dense, 128) == 26);
    CHECK(group_bytes(Packing::TwoBit, 64) == 16);
}

TEST_CASE("random trits round-trip for many block sizes", "[ternary][pack]") {
    std::mt19937 rng(1234);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int b : {4, 8, 60, 64, 100, 128, 172, 256}) {
            INFO("packing " << packing_name(p) << " block " << b);
            const std::size_t g = group_bytes(p, b);
            for (int rep = 0; rep < 50; ++rep) {
                const auto t = random_trits(rng, b);
                std::vector<std::uint8_t> packed(g + 1, 0xAB);  // sentinel after the group
                pack_trits(p, t.data(), b, packed.data());
                CHECK(packed[g] == 0xAB);

                std::vector<std::int8_t> back(static_cast<std::size_t>(b) + 1, 7);
                unpack_trits(p, packed.data(), b, back.data());
                CHECK(back[static_cast<std::size_t>(b)] == 7);  // nothing written past the block
                back.pop_back();
                CHECK(back == t);

                // The bytes follow the documented position rule ...
                for (int pos = 0; pos < b; ++pos) {
                    CHECK(documented_code(p, packed.data(), b, pos) == t[static_cast<std::size_t>(pos)] + 1);
                }
                // ... and dense slots past the block hold code 1.
                const int slots = static_cast<int>(g) * (p == Packing::TwoBit ? 4 : 5);
                for (int pos = b; pos < slots; ++pos) CHECK(documented_code(p, packed.data(), b, pos) == 1);
            }
        }
    }
}

TEST_CASE("packing names", "[ternary]") {
    CHECK(std::string(packing_name(Packing::TwoBit)) == "2bit");
    CHECK(std::string(packing_name(Packing::Dense)) == "dense");
    CHECK(packing_from_string("2bit") == Packing::TwoBit);
    CHECK(packing_from_string("dense") == Packing::Dense);
    CHECK_FALSE(packing_from_string("3bit").has_value());
    CHECK_FALSE(packing_from_string("").has_value());
}

TEST_CASE("layout sizes and bits per weight", "[ternary][layout]") {
    for (int n = 1; n <= 4; ++n) {
        TernaryLayout l;
        l.rows = 10;
        l.cols = 4096;
        l.bases = n;

        l.block_size = 64;
        l.packing = Packing::TwoBit;
        CHECK(l.block_bytes() == static_cast<std::size_t>(n) * 18);
        CHECK(l.bits_per_weight() == Approx(2.25 * n));
        l.packing = Packing::Dense;
        CHECK(l.block_bytes() == static_cast<std::size_t>(n) * 15);
        CHECK(l.bits_per_weight() == Approx((13.0 * 8 + 16) / 64 * n));

        l.block_size = 128;
        l.packing = Packing::TwoBit;
        CHECK(l.bits_per_weight() == Approx((32.0 * 8 + 16) / 128 * n));
        l.packing = Packing::Dense;
        CHECK(l.bits_per_weight() == Approx((26.0 * 8 + 16) / 128 * n));

        CHECK(l.blocks_per_row() == 32);
        CHECK(l.row_bytes() == 32 * l.block_bytes());
        CHECK(l.total_bytes() == 10 * l.row_bytes());
    }

    // Padding counts: 172 columns with B = 64 is 3 blocks.
    TernaryLayout l;
    l.rows = 3;
    l.cols = 172;
    l.bases = 2;
    l.block_size = 64;
    l.packing = Packing::TwoBit;
    CHECK(l.blocks_per_row() == 3);
    CHECK(l.row_bytes() == 3 * 2 * 18);
    CHECK(l.total_bytes() == 3 * 3 * 2 * 18);
    CHECK(l.bits_per_weight() == Approx(3.0 * 3 * 2 * 18 * 8 / (3 * 172)));
}

TEST_CASE("layout validation", "[ternary][layout]") {
    TernaryLayout l;
    l.rows = 4;
    l.cols = 64;
    CHECK_NOTHROW(l.validate());

    auto message_of = [](const TernaryLayout& bad) -> std::string {
        try {
            bad.validate();
        } catch (const UsageError& e) {
            return e.what();
        }
        return "";
    };

    TernaryLayout bad = l;
    bad.block_size = 2;
    CHECK_THROWS_AS(bad.validate(), UsageError);
    CHECK_THAT(message_of(bad), Catch::Contains("2") && Catch::Contains("4..4096"));
    bad.block_size = 4097;
    CHECK_THAT(message_of(bad), Catch::Contains("4097") && Catch::Contains("4..4096"));
    bad.block_size = 66;  // not a multiple of 4: fine for dense only
    CHECK_THAT(message_of(bad), Catch::Contains("66") && Catch::Contains("multiple of 4"));
    bad.packing = Packing::Dense;
    CHECK_NOTHROW(bad.validate());

    bad = l;
    bad.bases = 0;
    CHECK_THAT(message_of(bad), Catch::Contains("0") && Catch::Contains("1..8"));
    bad.bases = 9;
    CHECK_THAT(message_of(bad), Catch::Contains("9") && Catch::Contains("1..8"));
    bad.bases = 8;
    CHECK_NOTHROW(bad.validate());
    bad.block_size = 4096;
    CHECK_NOTHROW(bad.validate());
    bad.block_size = 4;
    CHECK_NOTHROW(bad.validate());

    bad = l;
    bad.rows = -1;
    CHECK_THAT(message_of(bad), Catch::Contains("-1"));
}

TEST_CASE("dequantize_row on hand-built bytes", "[ternary][dequantize]") {
    // 2 rows, 6 columns, B = 4 (two blocks per row, the second padded), N = 2, 2bit.
    TernaryLayout l;
    l.rows = 2;
    l.cols = 6;
    l.bases = 2;
    l.block_size = 4;
    l.packing = Packing::TwoBit;
    REQUIRE(l.block_bytes() == 2 * (2 + 1));
    std::vector<std::uint8_t> data(l.total_bytes(), 0);

    struct Base {
        float scale;
        std::int8_t t[4];
    };
    // Row 1 (row 0 stays all zero bytes: scale 0, codes 0).
    const Base blocks[2][2] = {
        {{0.5f, {1, -1, 0, 1}}, {0.125f, {0, 1, 1, -1}}},
        {{2.0f, {-1, 1, 0, 0}}, {0.25f, {1, 1, 0, 0}}},
    };
    for (int b = 0; b < 2; ++b) {
        std::uint8_t* blk = data.data() + l.row_bytes() + static_cast<std::size_t>(b) * l.block_bytes();
        for (int k = 0; k < 2; ++k) {
            const std::uint16_t h = f32_to_f16(blocks[b][k].scale);
            blk[2 * k] = static_cast<std::uint8_t>(h & 0xff);
            blk[2 * k + 1] = static_cast<std::uint8_t>(h >> 8);
            pack_trits(l.packing, blocks[b][k].t, 4, blk + 4 + k);
        }
    }

    std::vector<float> out(6, 99.0f);
    dequantize_row(l, data.data(), 1, 1, out.data());
    CHECK(out == std::vector<float>{0.5f, -0.5f, 0.0f, 0.5f, -2.0f, 2.0f});
    dequantize_row(l, data.data(), 1, 2, out.data());
    CHECK(out == std::vector<float>{0.5f, -0.375f, 0.125f, 0.375f, -1.75f, 2.25f});
    dequantize_row(l, data.data(), 1, 0, out.data());
    CHECK(out == std::vector<float>(6, 0.0f));

    // Row 0: scale bits 0 and code 0 (trit -1) everywhere -> zeros.
    dequantize_row(l, data.data(), 0, 2, out.data());
    CHECK(out == std::vector<float>(6, 0.0f));

    CHECK_THROWS_AS(dequantize_row(l, data.data(), 2, 1, out.data()), UsageError);
    CHECK_THROWS_AS(dequantize_row(l, data.data(), 0, 3, out.data()), UsageError);
}

TEST_CASE("two-level scales: layout sizes", "[ternary][layout][two-level]") {
    // Tied, N = 3, B = 64, 2bit, 4096 columns: a row is one binary16 super-scale and 64
    // blocks of one 8-bit sub-scale and 3 x 16 trit bytes.
    TernaryLayout l{10, 4096, 3, 64, Packing::TwoBit, ScaleMode::Tied, 8};
    CHECK(l.two_level());
    CHECK(l.row_header_bytes() == 2);
    CHECK(l.block_scale_bytes() == 1);
    CHECK(l.block_bytes() == 1 + 48);
    CHECK(l.row_bytes() == 2 + 64 * 49);
    CHECK(l.block_offset(0) == 2);
    CHECK(l.block_offset(5) == 2 + 5 * 49);
    CHECK(l.total_bytes() == 10 * l.row_bytes());
    CHECK(l.bits_per_weight() == Approx((2.0 + 64 * 49) * 8 / 4096));
    // Free: N super-scales per row, N sub-scales per block.
    TernaryLayout f{10, 4096, 3, 64, Packing::Dense, ScaleMode::Free, 8};
    CHECK(f.row_header_bytes() == 6);
    CHECK(f.block_bytes() == 3 + 3 * 13);
    CHECK(f.row_bytes() == 6 + 64 * 42);
    // 16-bit scales have no row header.
    TernaryLayout s{10, 4096, 3, 64, Packing::TwoBit, ScaleMode::Tied, 16};
    CHECK(s.row_header_bytes() == 0);
    CHECK(s.block_offset(5) == 5 * 50);
    // Only 16 and 8 bits exist.
    s.scale_bits = 12;
    CHECK_THROWS_AS(s.validate(), UsageError);
    CHECK(scale_bits_from_string("u8") == 8);
    CHECK(scale_bits_from_string("f16") == 16);
    CHECK_FALSE(scale_bits_from_string("4").has_value());
}

TEST_CASE("two-level scales: dequantize_row on hand-built bytes", "[ternary][dequantize][two-level]") {
    // 1 row, 6 columns, B = 4, N = 2, free, 2bit: super-scales d0 = 0.5, d1 = 0.25 in front
    // of the row; block b has sub-scales u[b][k], so its scale k is d_k * u[b][k].
    TernaryLayout l{1, 6, 2, 4, Packing::TwoBit, ScaleMode::Free, 8};
    REQUIRE(l.row_bytes() == 4 + 2 * (2 + 2));
    std::vector<std::uint8_t> data(l.total_bytes(), 0);
    const std::uint16_t d0 = f32_to_f16(0.5f), d1 = f32_to_f16(0.25f);
    data[0] = static_cast<std::uint8_t>(d0 & 0xff);
    data[1] = static_cast<std::uint8_t>(d0 >> 8);
    data[2] = static_cast<std::uint8_t>(d1 & 0xff);
    data[3] = static_cast<std::uint8_t>(d1 >> 8);
    const std::uint8_t u[2][2] = {{3, 255}, {0, 1}};
    const std::int8_t t[2][2][4] = {{{1, -1, 0, 1}, {0, 1, 1, -1}}, {{-1, 1, 0, 0}, {1, 1, 0, 0}}};
    for (int b = 0; b < 2; ++b) {
        std::uint8_t* blk = data.data() + l.block_offset(b);
        for (int k = 0; k < 2; ++k) {
            blk[k] = u[b][k];
            pack_trits(l.packing, t[b][k], 4, blk + 2 + k);
        }
        for (int k = 0; k < 2; ++k) CHECK(l.block_scale(data.data(), blk, k) == (k == 0 ? 0.5f : 0.25f) * u[b][k]);
    }
    std::vector<float> out(6, 99.0f);
    dequantize_row(l, data.data(), 0, 1, out.data());
    CHECK(out == std::vector<float>{1.5f, -1.5f, 0.0f, 1.5f, -0.0f, 0.0f});
    dequantize_row(l, data.data(), 0, 2, out.data());
    CHECK(out == std::vector<float>{1.5f, -1.5f + 63.75f, 63.75f, 1.5f - 63.75f, 0.25f, 0.25f});
    // Tied with the first K bases: (d * u * 3^-(K-1)) * level.
    TernaryLayout tl{1, 4, 2, 4, Packing::TwoBit, ScaleMode::Tied, 8};
    std::vector<std::uint8_t> td(tl.total_bytes(), 0);
    const std::uint16_t d = f32_to_f16(0.75f);
    td[0] = static_cast<std::uint8_t>(d & 0xff);
    td[1] = static_cast<std::uint8_t>(d >> 8);
    td[2] = 4;  // scale 3.0
    pack_trits(tl.packing, t[0][0], 4, td.data() + 3);
    pack_trits(tl.packing, t[0][1], 4, td.data() + 4);
    std::vector<float> o(4);
    dequantize_row(tl, td.data(), 0, 2, o.data());
    const float step = 3.0f * tied_multiplier(2);
    CHECK(o == std::vector<float>{step * 3, step * -2, step * 1, step * 2});
}

TEST_CASE("two-level layout: sizes, offsets and dequantize_row on hand-built bytes", "[ternary][dequantize][two-level]") {
    // 2 rows, 6 columns, B = 4 (two blocks per row, the second padded), N = 2, 2bit,
    // free scales: each row starts with 2 binary16 super-scales, each block has 2 u8 sub-scales.
    TernaryLayout l;
    l.rows = 2;
    l.cols = 6;
    l.bases = 2;
    l.block_size = 4;
    l.packing = Packing::TwoBit;
    l.scale_bits = 8;
    l.validate();
    CHECK(l.two_level());
    CHECK(l.row_header_bytes() == 4);
    CHECK(l.block_scale_bytes() == 2);
    CHECK(l.block_bytes() == 2 + 2 * 1);
    CHECK(l.row_bytes() == 4 + 2 * 4);
    CHECK(l.block_offset(0) == 4);
    CHECK(l.block_offset(1) == 8);
    CHECK(l.total_bytes() == 2 * 12);
    std::vector<std::uint8_t> data(l.total_bytes(), 0);

    // Row 1: supers d = (0.25, -2); block 0 subs (2, 3), block 1 subs (255, 0).
    std::uint8_t* row = data.data() + l.row_bytes();
    const float supers[2] = {0.25f, -2.0f};
    for (int m = 0; m < 2; ++m) {
        const std::uint16_t h = f32_to_f16(supers[m]);
        row[2 * m] = static_cast<std::uint8_t>(h & 0xff);
        row[2 * m + 1] = static_cast<std::uint8_t>(h >> 8);
    }
    const std::uint8_t subs[2][2] = {{2, 3}, {255, 0}};
    const std::int8_t trits[2][2][4] = {{{1, -1, 0, 1}, {0, 1, 1, -1}}, {{-1, 1, 0, 0}, {1, 1, 0, 0}}};
    for (int b = 0; b < 2; ++b) {
        std::uint8_t* blk = row + l.block_offset(b);
        for (int k = 0; k < 2; ++k) {
            blk[k] = subs[b][k];
            pack_trits(l.packing, trits[b][k], 4, blk + l.block_scale_bytes() + k);
        }
    }
    CHECK(l.block_scale(row, row + l.block_offset(0), 0) == 0.5f);
    CHECK(l.block_scale(row, row + l.block_offset(0), 1) == -6.0f);
    CHECK(l.block_scale(row, row + l.block_offset(1), 0) == 63.75f);
    CHECK(l.block_scale(row, row + l.block_offset(1), 1) == -0.0f);

    std::vector<float> out(6, 99.0f);
    dequantize_row(l, data.data(), 1, 1, out.data());
    CHECK(out == std::vector<float>{0.5f, -0.5f, 0.0f, 0.5f, -63.75f, 63.75f});
    dequantize_row(l, data.data(), 1, 2, out.data());
    CHECK(out == std::vector<float>{0.5f, -6.5f, -6.0f, 6.5f, -63.75f, 63.75f});
    // Row 0: all bytes zero (super 0, codes 0 = trit -1) -> zeros.
    dequantize_row(l, data.data(), 0, 2, out.data());
    CHECK(out == std::vector<float>(6, 0.0f));

    // Tied: one super-scale per row and one sub-scale per block.
    l.scales = ScaleMode::Tied;
    CHECK(l.row_header_bytes() == 2);
    CHECK(l.block_bytes() == 1 + 2 * 1);
    CHECK(l.row_bytes() == 2 + 2 * 3);
}
