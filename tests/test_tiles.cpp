// The tiles arrangement of ternary tensors (include/bitttt/ternary.h, "Arrangements";
// format version 3): the dense tiles' triple code, rearrange_ternary between arrangements
// and packings (exact round trips, every target byte written, padding rows zero, any split
// into tile ranges), dequantize_row and find_nonfinite_scale on tiles, the section offsets
// and sizes by hand, the file version. The engine on tiles: test_tiles_engine.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/ternary.h"
#include "kernel_fixtures.h"
#include "kernels/dispatch.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::Fill;
using bitttt::test::make_tensor;

namespace {

using Bytes = std::vector<std::uint8_t>;

TernaryLayout make_layout(Packing p, int bs, std::int64_t rows, std::int64_t cols, int n, ScaleMode mode, int bits,
                          Arrangement a = Arrangement::Rows) {
    return TernaryLayout{rows, cols, n, bs, p, mode, bits, a};
}

TernaryLayout with_packing(TernaryLayout l, Packing p) {
    l.packing = p;
    return l;
}

std::string describe(const TernaryLayout& l) {
    return std::string(arrangement_name(l.arrangement)) + "/" + packing_name(l.packing) + " B " +
           std::to_string(l.block_size) + " rows " + std::to_string(l.rows) + " cols " + std::to_string(l.cols) +
           " N " + std::to_string(l.bases) + " " + scale_mode_name(l.scales) + " " + scale_bits_name(l.scale_bits);
}

// `src` (layout `from`) rearranged into `to` in one call over every tile. The target is
// filled twice, with 0x00 and with 0xFF first: the results must agree (every byte written).
Bytes rearranged(const TernaryLayout& from, const Bytes& src, const TernaryLayout& to) {
    REQUIRE(src.size() == from.total_bytes());
    Bytes a(to.total_bytes(), 0x00), b(to.total_bytes(), 0xFF);
    rearrange_ternary(from, src.data(), to, a.data(), 0, from.tiles());
    rearrange_ternary(from, src.data(), to, b.data(), 0, from.tiles());
    INFO(describe(from) << " -> " << describe(to) << ": every byte of the target is written");
    REQUIRE(a == b);
    return a;
}

// Every row and K = 0..N of two tensors dequantise to the same bits.
void check_same_dequantized(const TernaryLayout& la, const Bytes& a, const TernaryLayout& lb, const Bytes& b) {
    REQUIRE(la.rows == lb.rows);
    REQUIRE(la.cols == lb.cols);
    std::vector<float> x(static_cast<std::size_t>(la.cols)), y(x.size());
    for (int k = 0; k <= la.bases; ++k) {
        for (std::int64_t r = 0; r < la.rows; ++r) {
            std::fill(x.begin(), x.end(), -1.0f);
            std::fill(y.begin(), y.end(), -2.0f);
            dequantize_row(la, a.data(), r, k, x.data());
            dequantize_row(lb, b.data(), r, k, y.data());
            if (std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) {
                FAIL("dequantize_row differs: " << describe(la) << " vs " << describe(lb) << " row " << r << " K " << k);
            }
        }
    }
}

// A tiles tensor's canonical padding: rows past the end have zero scales (and super-scales)
// and zero trits (2bit code bytes 0x55, dense index and sign bytes 0); in real rows the
// dense positions past B (a partial last triple, an odd triple count's high nibble, the
// last sign byte's spare bits) are zero. Counts the bad bytes, reports the first.
void check_tiles_padding(const TernaryLayout& t, const Bytes& d) {
    REQUIRE(t.tiled());
    REQUIRE(d.size() == t.total_bytes());
    std::int64_t bad = 0;
    std::string first;
    auto expect = [&](bool ok, const char* what, std::int64_t r, int i, std::int64_t b) {
        if (ok) return;
        if (bad++ == 0) first = std::string(what) + " row " + std::to_string(r) + " slot/base " + std::to_string(i) +
                                " block " + std::to_string(b);
    };
    const std::size_t sb = t.two_level() ? 1 : 2;
    const std::size_t code_bytes = t.tile_code_bytes();
    const std::int64_t nb = t.blocks_per_row();
    for (std::int64_t r = t.rows; r < t.tiles() * kTileRows; ++r) {
        const std::int64_t tile = r / kTileRows;
        const std::size_t lane = static_cast<std::size_t>(r % kTileRows);
        for (int m = 0; m < t.scale_count(); ++m) {
            if (t.two_level()) {
                const std::uint8_t* s = d.data() + t.tile_super_offset(m, tile) + 2 * lane;
                expect((s[0] | s[1]) == 0, "padding super-scale", r, m, -1);
            }
            for (std::int64_t b = 0; b < nb; ++b) {
                const std::uint8_t* s = d.data() + t.tile_scale_offset(m, tile, b) + sb * lane;
                for (std::size_t i = 0; i < sb; ++i) expect(s[i] == 0, "padding scale", r, m, b);
            }
        }
        for (int k = 0; k < t.bases; ++k) {
            for (std::int64_t b = 0; b < nb; ++b) {
                const std::uint8_t* c = d.data() + t.tile_code_offset(k, tile, b) + lane;
                for (std::size_t i = 0; i < code_bytes; ++i) {
                    expect(c[i * kTileRows] == (t.packing == Packing::TwoBit ? 0x55 : 0x00), "padding code", r, k, b);
                }
            }
        }
    }
    if (t.packing == Packing::Dense) {
        const int n_triples = t.tile_triples();
        const std::size_t index_bytes = t.tile_index_bytes();
        for (std::int64_t r = 0; r < t.rows; ++r) {
            const std::int64_t tile = r / kTileRows;
            const std::size_t lane = static_cast<std::size_t>(r % kTileRows);
            for (int k = 0; k < t.bases; ++k) {
                for (std::int64_t b = 0; b < nb; ++b) {
                    const std::uint8_t* c = d.data() + t.tile_code_offset(k, tile, b) + lane;
                    const std::uint8_t* signs = c + index_bytes * kTileRows;
                    for (int g = 0; g < n_triples; ++g) {
                        expect(((c[(g / 2) * kTileRows] >> (4 * (g % 2))) & 15) <= 13, "index above 13", r, k, b);
                    }
                    const int g = n_triples - 1;
                    const int index = (c[(g / 2) * kTileRows] >> (4 * (g % 2))) & 15;
                    std::int8_t tri[3];
                    triple_decode(static_cast<std::uint8_t>(index), (signs[(g / 8) * kTileRows] >> (g % 8)) & 1, tri);
                    for (int i = 0; i < 3; ++i) {
                        if (3 * g + i >= t.block_size) expect(tri[i] == 0, "trit past the block", r, k, b);
                    }
                    if (n_triples % 2) expect((c[(index_bytes - 1) * kTileRows] >> 4) == 0, "spare nibble", r, k, b);
                    if (n_triples % 8) {
                        expect((signs[((n_triples - 1) / 8) * kTileRows] >> (n_triples % 8)) == 0, "spare sign bits", r,
                               k, b);
                    }
                }
            }
        }
    }
    INFO(describe(t) << ": " << bad << " non-canonical padding bytes, the first: " << first);
    CHECK(bad == 0);
}

}  // namespace

TEST_CASE("tiles: triple_encode and triple_decode over all 27 triples", "[tiles]") {
    std::vector<int> seen(32, 0);
    for (int a = -1; a <= 1; ++a) {
        for (int b = -1; b <= 1; ++b) {
            for (int c = -1; c <= 1; ++c) {
                const std::int8_t t[3] = {static_cast<std::int8_t>(a), static_cast<std::int8_t>(b),
                                          static_cast<std::int8_t>(c)};
                std::uint8_t index = 99;
                bool negative = true;
                triple_encode(t, index, negative);
                CAPTURE(a, b, c);
                const int v = 9 * a + 3 * b + c;
                CHECK(index <= 13);
                CHECK(static_cast<int>(index) == (v < 0 ? -v : v));
                CHECK(negative == (v < 0));
                ++seen[(negative ? 16 : 0) + index];
                std::int8_t back[3] = {7, 7, 7};
                triple_decode(index, negative, back);
                CHECK(back[0] == a);
                CHECK(back[1] == b);
                CHECK(back[2] == c);
            }
        }
    }
    // 27 distinct codes: 0..13 positive (index 0 = the zero triple) and 1..13 negative.
    for (int i = 0; i < 14; ++i) CHECK(seen[static_cast<std::size_t>(i)] == 1);
    CHECK(seen[16] == 0);
    for (int i = 17; i < 30; ++i) CHECK(seen[static_cast<std::size_t>(i)] == 1);
    // Indices 14 and 15 are never written and decode to zero, with either sign.
    for (int index : {14, 15}) {
        for (bool negative : {false, true}) {
            std::int8_t t[3] = {7, 7, 7};
            triple_decode(static_cast<std::uint8_t>(index), negative, t);
            CHECK(t[0] == 0);
            CHECK(t[1] == 0);
            CHECK(t[2] == 0);
        }
    }
    // Index 0 with the sign bit set is still the zero triple.
    std::int8_t z[3] = {7, 7, 7};
    triple_decode(0, true, z);
    CHECK((z[0] == 0 && z[1] == 0 && z[2] == 0));
}

TEST_CASE("tiles: rows -> tiles -> rows is exact for both packings, and across packings", "[tiles]") {
    // Both packings, free / tied, 16-bit / two-level scales, N = 1..4 (combinations cycled
    // over the shapes so that each block size sees all of them), rows around the 32-row
    // tile, awkward column counts and block sizes (no multiple of 3, of 4, of 16).
    std::mt19937 rng(2024);
    const int block_sizes[] = {4, 5, 7, 8, 12, 22, 32, 36, 48, 64, 96, 100, 128, 256};
    const std::int64_t all_rows[] = {1, 31, 33, 65};
    // Under the sanitizers (about 20x slower here) the two widest shapes are left to the
    // release run.
    const std::vector<std::int64_t> all_cols = bitttt::test::kSanitized ? std::vector<std::int64_t>{1, 3, 7, 33}
                                                                         : std::vector<std::int64_t>{1, 3, 7, 33, 255, 257};
    int cases = 0, cross = 0;
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bs : block_sizes) {
            if (p == Packing::TwoBit && bs % 4 != 0) continue;
            int i = 0;
            for (std::int64_t rows : all_rows) {
                for (std::int64_t cols : all_cols) {
                    const int n = 1 + i % 4;
                    const ScaleMode mode = (i / 4) % 2 ? ScaleMode::Tied : ScaleMode::Free;
                    const int bits = (i / 8) % 2 ? 8 : 16;
                    ++i;
                    const TernaryLayout l = make_layout(p, bs, rows, cols, n, mode, bits);
                    l.validate();
                    INFO(describe(l));
                    const Bytes data = make_tensor(l, rng, Fill::Random);
                    REQUIRE(find_nonfinite_scale(l, data.data()) == -1);
                    for (Packing to_p : {p, p == Packing::TwoBit ? Packing::Dense : Packing::TwoBit}) {
                        if (to_p == Packing::TwoBit && bs % 4 != 0) continue;
                        const TernaryLayout tl = with_arrangement(with_packing(l, to_p), Arrangement::Tiles);
                        const Bytes tiles = rearranged(l, data, tl);
                        check_tiles_padding(tl, tiles);
                        // Back to the source's rows: the same bytes.
                        const Bytes back = rearranged(tl, tiles, l);
                        {
                            INFO("round trip through " << describe(tl));
                            CHECK(back == data);
                        }
                        // The tiles dequantise to the source's values (every row and K), and
                        // say the same about non-finite scales.
                        check_same_dequantized(l, data, tl, tiles);
                        CHECK(find_nonfinite_scale(tl, tiles.data()) == -1);
                        if (to_p != p) {
                            // Rows of the other packing: the same values, and back.
                            const TernaryLayout rl = with_packing(l, to_p);
                            const Bytes other = rearranged(l, data, rl);
                            check_same_dequantized(l, data, rl, other);
                            CHECK(rearranged(rl, other, l) == data);
                            // Tiles of either packing from those rows: the tiles above.
                            CHECK(rearranged(rl, other, tl) == tiles);
                            CHECK(rearranged(tl, tiles, with_arrangement(l, Arrangement::Tiles)) ==
                                  rearranged(l, data, with_arrangement(l, Arrangement::Tiles)));
                            ++cross;
                        } else {
                            // Tiles -> tiles of the same layout is a copy.
                            CHECK(rearranged(tl, tiles, tl) == tiles);
                        }
                        ++cases;
                    }
                }
            }
        }
    }
    CHECK(cases > (bitttt::test::kSanitized ? 250 : 400));
    CHECK(cross > (bitttt::test::kSanitized ? 100 : 150));
}

TEST_CASE("tiles: corrupt 2bit codes read as +1, non-canonical dense bytes by value", "[tiles]") {
    // Random bytes: 2bit code 3 (never written) is read as +1 by the kernels, so a
    // rearranged tensor stores code 2 there (ternary.h, rearrange_ternary); dense bytes are
    // carried by their decoded trits, so the dequantised values are unchanged.
    std::mt19937 rng(77);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bits : {16, 8}) {
            for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
                const TernaryLayout l = make_layout(p, 64, 45, 200, 3, mode, bits);
                INFO(describe(l));
                const Bytes data = make_tensor(l, rng, Fill::Raw);
                const TernaryLayout tl = with_arrangement(l, Arrangement::Tiles);
                const Bytes tiles = rearranged(l, data, tl);
                check_tiles_padding(tl, tiles);
                const Bytes back = rearranged(tl, tiles, l);
                // What the kernels read: the source, with every 2bit code 3 turned into 2.
                Bytes want = data;
                if (p == Packing::TwoBit) {
                    for (std::int64_t r = 0; r < l.rows; ++r) {
                        for (std::int64_t b = 0; b < l.blocks_per_row(); ++b) {
                            std::uint8_t* g = want.data() + r * l.row_bytes() + l.block_offset(b) + l.block_scale_bytes();
                            for (std::size_t j = 0; j < static_cast<std::size_t>(l.bases) * l.group_bytes(); ++j) {
                                int v = g[j];
                                for (int d = 0; d < 4; ++d) {
                                    if (((v >> (2 * d)) & 3) == 3) v &= ~(1 << (2 * d));
                                }
                                g[j] = static_cast<std::uint8_t>(v);
                            }
                        }
                    }
                    // Scales untouched, codes canonical: exactly `want`.
                    CHECK(back == want);
                }
                check_same_dequantized(l, want, tl, tiles);
                check_same_dequantized(l, want, l, back);
                // Twice is the same as once (the result is canonical).
                CHECK(rearranged(l, back, tl) == tiles);
            }
        }
    }
}

TEST_CASE("tiles: rearrange_ternary refuses layouts that differ in more than arrangement and packing", "[tiles]") {
    const TernaryLayout l = make_layout(Packing::Dense, 22, 40, 50, 2, ScaleMode::Free, 16);
    std::mt19937 rng(1);
    const Bytes data = make_tensor(l, rng, Fill::Random);
    auto refused = [&](TernaryLayout to) {
        to.arrangement = Arrangement::Tiles;
        Bytes dst(to.total_bytes() + 64);
        CHECK_THROWS_AS(rearrange_ternary(l, data.data(), to, dst.data(), 0, l.tiles()), UsageError);
    };
    TernaryLayout o = l;
    o.bases = 3;
    refused(o);
    o = l;
    o.scales = ScaleMode::Tied;
    refused(o);
    o = l;
    o.scale_bits = 8;
    refused(o);
    o = l;
    o.block_size = 24;
    refused(o);
    o = l;
    o.rows = 41;
    refused(o);
    // 2bit needs a block size that is a multiple of 4.
    refused(with_packing(l, Packing::TwoBit));
}

TEST_CASE("tiles: dequantize_row and find_nonfinite_scale on tiles find planted inf / NaN scales", "[tiles]") {
    std::mt19937 rng(99);
    const std::uint16_t bad_bits[] = {0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFFFF};
    int cases = 0;
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bits : {16, 8}) {
            for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
                for (std::int64_t rows : {1, 33, 70}) {
                    for (int bs : {64, 36}) {
                        const TernaryLayout l = make_layout(p, bs, rows, 257, 3, mode, bits);
                        const TernaryLayout tl = with_arrangement(l, Arrangement::Tiles);
                        INFO(describe(l));
                        const Bytes data = make_tensor(l, rng, Fill::Random);
                        CHECK(find_nonfinite_scale(tl, rearranged(l, data, tl).data()) == -1);
                        std::uniform_int_distribution<std::int64_t> row(0, rows - 1), blk(0, l.blocks_per_row() - 1);
                        std::uniform_int_distribution<int> slot(0, l.scale_count() - 1), which(0, 4);
                        // Plants a non-finite binary16 scale (two-level: super-scale) at row r.
                        auto plant = [&](Bytes& d, std::int64_t r) {
                            const std::uint16_t h = bad_bits[which(rng)];
                            std::uint8_t* at = d.data() + r * l.row_bytes() +
                                               (l.two_level() ? 2 * static_cast<std::size_t>(slot(rng))
                                                              : l.block_offset(blk(rng)) + 2 * static_cast<std::size_t>(slot(rng)));
                            at[0] = static_cast<std::uint8_t>(h & 0xFF);
                            at[1] = static_cast<std::uint8_t>(h >> 8);
                        };
                        for (int trial = 0; trial < 4; ++trial) {
                            Bytes one = data;
                            const std::int64_t r = row(rng);
                            plant(one, r);
                            CHECK(find_nonfinite_scale(l, one.data()) == r);
                            CHECK(find_nonfinite_scale(tl, rearranged(l, one, tl).data()) == r);
                            ++cases;
                        }
                    }
                }
            }
        }
    }
    CHECK(cases == 2 * 2 * 2 * 3 * 2 * 4);
}

TEST_CASE("tiles: find_nonfinite_scale returns the first bad row, as in rows", "[tiles]") {
    // Two bad scales: the earlier row in a later slot or block. The contract (ternary.h) is
    // "the first row holding a scale that is infinite or NaN", whatever the scan order.
    for (int bits : {16, 8}) {
        const TernaryLayout l = make_layout(Packing::TwoBit, 32, 70, 100, 3, ScaleMode::Free, bits);
        const TernaryLayout tl = with_arrangement(l, Arrangement::Tiles);
        INFO(describe(l));
        std::mt19937 rng(5);
        Bytes data = make_tensor(l, rng, Fill::Random);
        auto plant = [&](std::int64_t r, int m, std::int64_t b) {
            std::uint8_t* at = data.data() + r * l.row_bytes() + (l.two_level() ? 2 * static_cast<std::size_t>(m)
                                                                                 : l.block_offset(b) + 2 * static_cast<std::size_t>(m));
            at[0] = 0x00;
            at[1] = 0x7C;
        };
        plant(50, 0, 0);  // tile 1, slot 0, block 0
        plant(40, 2, 0);  // tile 1, slot 2
        if (!l.two_level()) plant(37, 0, 3);  // tile 1, slot 0, block 3
        const std::int64_t first = l.two_level() ? 40 : 37;
        CHECK(find_nonfinite_scale(l, data.data()) == first);
        CHECK(find_nonfinite_scale(tl, rearranged(l, data, tl).data()) == first);
    }
}

TEST_CASE("tiles: rearranging tile ranges in any order gives the same bytes", "[tiles]") {
    // The engine and the converter split the work over threads by tile ranges: any split,
    // done in any order, must give the one-call bytes (rows targets: rows [32 t0, 32 t1)).
    std::mt19937 rng(123);
    for (Packing p : {Packing::TwoBit, Packing::Dense}) {
        for (int bits : {16, 8}) {
            for (ScaleMode mode : {ScaleMode::Free, ScaleMode::Tied}) {
                const TernaryLayout l = make_layout(p, 64, 300, 130, 2, mode, bits);  // 10 tiles, the last partial
                const TernaryLayout tl = with_arrangement(l, Arrangement::Tiles);
                const TernaryLayout other = with_arrangement(with_packing(l, Packing::Dense), Arrangement::Tiles);
                const Bytes data = make_tensor(l, rng, Fill::Random);
                const Bytes tiles = rearranged(l, data, tl);
                const std::pair<const TernaryLayout*, const Bytes*> sources[] = {{&l, &data}, {&tl, &tiles}, {&tl, &tiles}};
                const TernaryLayout* targets[] = {&tl, &l, &other};
                for (int s = 0; s < 3; ++s) {
                    const TernaryLayout& from = *sources[s].first;
                    const TernaryLayout& to = *targets[s];
                    INFO(describe(from) << " -> " << describe(to));
                    const Bytes whole = rearranged(from, *sources[s].second, to);
                    for (int trial = 0; trial < 5; ++trial) {
                        // Random cut points in [0, tiles), ranges done in a random order.
                        std::vector<std::int64_t> cuts = {0, l.tiles()};
                        std::uniform_int_distribution<std::int64_t> cut(1, l.tiles() - 1);
                        for (int c = 0; c < 1 + trial; ++c) cuts.push_back(cut(rng));
                        std::sort(cuts.begin(), cuts.end());
                        std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
                        for (std::size_t c = 0; c + 1 < cuts.size(); ++c) ranges.emplace_back(cuts[c], cuts[c + 1]);
                        std::shuffle(ranges.begin(), ranges.end(), rng);
                        Bytes split(to.total_bytes(), 0xEE);
                        for (const auto& [t0, t1] : ranges) {
                            rearrange_ternary(from, sources[s].second->data(), to, split.data(), t0, t1);
                        }
                        CHECK(split == whole);
                    }
                }
            }
        }
    }
}

TEST_CASE("tiles: section offsets and sizes by hand", "[tiles]") {
    SECTION("dense, two-level free scales") {
        // rows 40 (2 tiles), cols 100, B 32 (4 blocks), N 3: T = 11 triples, 6 index + 2 sign
        // bytes = C 8. Supers: 3 slots x 2 tiles x 32 x 2 = 384 bytes; scales: per slot
        // 2 tiles x 4 blocks x 32 x 1 = 256; codes: per base 2 x 4 x 32 x 8 = 2048.
        const TernaryLayout t = make_layout(Packing::Dense, 32, 40, 100, 3, ScaleMode::Free, 8, Arrangement::Tiles);
        CHECK(t.tiles() == 2);
        CHECK(t.tile_triples() == 11);
        CHECK(t.tile_index_bytes() == 6);
        CHECK(t.tile_code_bytes() == 8);
        CHECK(t.tile_scale_record() == 32);
        CHECK(t.tile_code_record() == 256);
        CHECK(t.tile_supers_bytes() == 384);
        CHECK(t.tile_scale_plane_bytes() == 256);
        CHECK(t.tile_plane_bytes() == 2048);
        CHECK(t.tile_scales_offset() == 384);
        CHECK(t.tile_codes_offset() == 384 + 3 * 256);
        CHECK(t.total_bytes() == 1152 + 3 * 2048);
        CHECK(t.tile_super_offset(0, 0) == 0);
        CHECK(t.tile_super_offset(2, 1) == (2 * 2 + 1) * 64);
        CHECK(t.tile_scale_offset(0, 0, 0) == 384);
        CHECK(t.tile_scale_offset(1, 1, 2) == 384 + 256 + (1 * 4 + 2) * 32);
        CHECK(t.tile_code_offset(0, 0, 0) == 1152);
        CHECK(t.tile_code_offset(2, 1, 3) == 1152 + 2 * 2048 + (1 * 4 + 3) * 256);
        CHECK(t.tile_code_offset(2, 1, 3) + t.tile_code_record() == t.total_bytes());
    }
    SECTION("2bit, binary16 tied scales") {
        // rows 70 (3 tiles), cols 130, B 64 (3 blocks), N 2: C = 16; one slot of
        // 3 x 3 x 32 x 2 = 576 bytes, then per base 3 x 3 x 32 x 16 = 4608.
        const TernaryLayout t = make_layout(Packing::TwoBit, 64, 70, 130, 2, ScaleMode::Tied, 16, Arrangement::Tiles);
        CHECK(t.tiles() == 3);
        CHECK(t.tile_code_bytes() == 16);
        CHECK(t.tile_supers_bytes() == 0);
        CHECK(t.tile_scale_plane_bytes() == 576);
        CHECK(t.tile_codes_offset() == 576);
        CHECK(t.tile_plane_bytes() == 4608);
        CHECK(t.total_bytes() == 576 + 2 * 4608);
        CHECK(t.tile_scale_offset(0, 2, 1) == (2 * 3 + 1) * 64);
        CHECK(t.tile_code_offset(1, 2, 2) == 576 + 4608 + (2 * 3 + 2) * 512);
        // The rows twin padded to 96 rows has the same size.
        CHECK(t.total_bytes() == 96 * with_arrangement(t, Arrangement::Rows).row_bytes());
    }
    SECTION("dense codes are exactly 5/3 bits per trit at B = 48 and 96, 1.75 at B = 64") {
        for (int bs : {48, 96, 64, 128}) {
            const TernaryLayout t = make_layout(Packing::Dense, bs, 64, 4 * bs, 1, ScaleMode::Free, 16, Arrangement::Tiles);
            CAPTURE(bs);
            const std::size_t trits = 64 * 4 * static_cast<std::size_t>(bs);
            if (bs % 24 == 0) {
                CHECK(3 * 8 * t.tile_plane_bytes() == 5 * trits);
            } else {
                CHECK(4 * 8 * t.tile_plane_bytes() == 7 * trits);
            }
        }
        CHECK(make_layout(Packing::Dense, 48, 1, 48, 1, ScaleMode::Free, 16).tile_code_bytes() == 10);
        CHECK(make_layout(Packing::Dense, 96, 1, 96, 1, ScaleMode::Free, 16).tile_code_bytes() == 20);
        CHECK(make_layout(Packing::Dense, 64, 1, 64, 1, ScaleMode::Free, 16).tile_code_bytes() == 14);
    }
    SECTION("the bytes are where the offsets say") {
        // A tiny tensor with known trits and scales: row r's scale of slot m, block b is
        // 16 r + 4 m + b (an integer below 2048: exact in binary16); its trits all +1 in base 0, all -1 in
        // base 1.
        const TernaryLayout l = make_layout(Packing::TwoBit, 8, 35, 16, 2, ScaleMode::Free, 16);
        Bytes data(l.total_bytes());
        const std::int8_t plus[8] = {1, 1, 1, 1, 1, 1, 1, 1}, minus[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
        for (std::int64_t r = 0; r < l.rows; ++r) {
            for (std::int64_t b = 0; b < 2; ++b) {
                std::uint8_t* blk = data.data() + r * l.row_bytes() + l.block_offset(b);
                for (int m = 0; m < 2; ++m) {
                    const std::uint16_t h = f32_to_f16(static_cast<float>(16 * r + 4 * m + b));
                    blk[2 * m] = static_cast<std::uint8_t>(h & 0xFF);
                    blk[2 * m + 1] = static_cast<std::uint8_t>(h >> 8);
                }
                pack_trits(l.packing, plus, 8, blk + 4);
                pack_trits(l.packing, minus, 8, blk + 4 + l.group_bytes());
            }
        }
        const TernaryLayout t = with_arrangement(l, Arrangement::Tiles);
        const Bytes tiles = rearranged(l, data, t);
        for (std::int64_t r = 0; r < l.rows; ++r) {
            for (std::int64_t b = 0; b < 2; ++b) {
                for (int m = 0; m < 2; ++m) {
                    const std::uint8_t* s = tiles.data() + t.tile_scale_offset(m, r / 32, b) + 2 * (r % 32);
                    CHECK(f16_to_f32(static_cast<std::uint16_t>(s[0] | s[1] << 8)) == static_cast<float>(16 * r + 4 * m + b));
                }
                for (int i = 0; i < 2; ++i) {
                    CHECK(tiles[t.tile_code_offset(0, r / 32, b) + 32 * static_cast<std::size_t>(i) + r % 32] == 0xAA);
                    CHECK(tiles[t.tile_code_offset(1, r / 32, b) + 32 * static_cast<std::size_t>(i) + r % 32] == 0x00);
                }
            }
        }
    }
}

TEST_CASE("tiles: the file version follows the features used", "[tiles][btt]") {
    BttTensor t;
    t.name = "w";
    t.shape = {4, 64};
    t.encoding = Encoding::Ternary;
    t.layout = make_layout(Packing::TwoBit, 64, 4, 64, 2, ScaleMode::Free, 16);
    BttTensor f;
    f.name = "f";
    f.shape = {4};
    f.encoding = Encoding::F32;
    CHECK(btt_version_needed({f}) == 1);
    CHECK(btt_version_needed({f, t}) == 1);
    BttTensor two = t;
    two.layout.scale_bits = 8;
    CHECK(btt_version_needed({f, t, two}) == 2);
    BttTensor tiled = t;
    tiled.layout.arrangement = Arrangement::Tiles;
    CHECK(btt_version_needed({t, tiled}) == 3);
    CHECK(btt_version_needed({two, tiled}) == 3);
}
