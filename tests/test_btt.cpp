// .btt writer/reader: round trip, header relocation, checksums, malformed files,
// and that an unfinished write leaves nothing behind.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <random>

#include "bitttt/btt.h"
#include "bitttt/error.h"
#include "fixtures.h"
#include "format/le.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using nlohmann::json;

namespace {

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    return b;
}

BttTensor ternary_entry(const std::string& name, std::int64_t rows, std::int64_t cols, int bases, Packing p) {
    BttTensor t;
    t.name = name;
    t.shape = {rows, cols};
    t.encoding = Encoding::Ternary;
    t.layout = TernaryLayout{rows, cols, bases, 64, p};
    t.method = "greedy";
    t.norm = 3.5;
    for (int k = 0; k < bases; ++k) t.relative_error_by_base.push_back(0.5 / (k + 1));
    t.rmse_by_base = t.relative_error_by_base;
    return t;
}

BttTensor plain_entry(const std::string& name, std::vector<std::int64_t> shape, Encoding e) {
    BttTensor t;
    t.name = name;
    t.shape = std::move(shape);
    t.encoding = e;
    return t;
}

// Writes preamble + header JSON + zero data by hand (for malformed-file tests).
void write_raw_btt(const std::string& path, const json& header, std::size_t data_bytes,
                   std::uint32_t version = kBttVersion, bool good_checksum = true) {
    std::string text = header.dump();
    std::uint64_t data_offset = (kBttPreambleBytes + text.size() + 63) / 64 * 64;
    std::vector<std::uint8_t> buf(data_offset + data_bytes, 0);
    std::memcpy(buf.data(), "BTTT", 4);
    le::put_u32(buf.data() + 4, version);
    le::put_u64(buf.data() + 8, text.size());
    le::put_u64(buf.data() + 16, data_offset);
    le::put_u64(buf.data() + 24, checksum64(text.data(), text.size()) ^ (good_checksum ? 0 : 1));
    std::memcpy(buf.data() + kBttPreambleBytes, text.data(), text.size());
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(buf.data()), buf.size());
}

json one_f32_header(std::uint64_t offset, std::uint64_t size, std::vector<std::int64_t> shape) {
    std::vector<std::uint8_t> zeros(size, 0);
    return {{"format", "bitttt"},
            {"model", nullptr},
            {"tensors",
             {{{"name", "w"}, {"shape", shape}, {"encoding", "f32"}, {"offset", offset}, {"size", size},
               {"xxh64", checksum_hex(checksum64(zeros.data(), zeros.size()))}}}}};
}

}  // namespace

TEST_CASE("btt: write and read back tensors of every encoding", "[btt]") {
    TempDir dir;
    const std::string path = dir.file("m.btt");
    BttTensor a = ternary_entry("a", 7, 172, 3, Packing::TwoBit);
    BttTensor b = ternary_entry("b", 3, 64, 2, Packing::Dense);
    BttTensor c = plain_entry("c.norm", {33}, Encoding::F32);
    BttTensor d = plain_entry("d.embed", {5, 9}, Encoding::F16);
    auto da = random_bytes(a.layout.total_bytes(), 1), db = random_bytes(b.layout.total_bytes(), 2),
         dc = random_bytes(33 * 4, 3), dd = random_bytes(45 * 2, 4);
    {
        BttWriter w(path, {{"format", "bitttt"}, {"model", {{"hidden_size", 64}}}, {"tokenizer", nullptr}}, 4);
        w.add(a, da.data(), da.size());
        // Streamed in pieces: must equal add().
        w.begin_tensor(b);
        w.append(db.data(), 10);
        w.append(db.data() + 10, db.size() - 10);
        w.end_tensor();
        w.add(c, dc.data(), dc.size());
        w.add(d, dd.data(), dd.size());
        w.finish();
    }
    BttFile f(path);
    // No two-level scales: written as version 1, which every reader reads.
    REQUIRE(f.version() == kBttMinVersion);
    REQUIRE(f.data_offset() % 64 == 0);
    REQUIRE_FALSE(f.weights_only());
    REQUIRE(f.tensors().size() == 4);
    const std::vector<std::pair<const BttTensor*, const std::vector<std::uint8_t>*>> want = {
        {f.find("a"), &da}, {f.find("b"), &db}, {f.find("c.norm"), &dc}, {f.find("d.embed"), &dd}};
    for (const auto& [t, bytes] : want) {
        REQUIRE(t != nullptr);
        CHECK(t->offset % 64 == 0);
        REQUIRE(t->size == bytes->size());
        CHECK(std::memcmp(f.data(*t), bytes->data(), bytes->size()) == 0);
        CHECK_NOTHROW(f.verify(*t));
    }
    const BttTensor& ra = *f.find("a");
    CHECK(ra.encoding == Encoding::Ternary);
    CHECK(ra.layout.bases == 3);
    CHECK(ra.layout.cols == 172);
    CHECK(ra.layout.packing == Packing::TwoBit);
    CHECK(ra.relative_error_by_base == a.relative_error_by_base);
    CHECK(ra.norm == 3.5);
    CHECK(f.find("b")->layout.packing == Packing::Dense);
    CHECK(f.find("d.embed")->encoding == Encoding::F16);
    CHECK(f.header()["model"]["hidden_size"] == 64);
}

TEST_CASE("btt: a header larger than its reservation moves the data, intact", "[btt]") {
    TempDir dir;
    const std::string path = dir.file("big.btt");
    BttTensor a = ternary_entry("a", 4, 100, 1, Packing::TwoBit);
    auto da = random_bytes(a.layout.total_bytes(), 9);
    {
        BttWriter w(path, {{"format", "bitttt"}, {"model", nullptr}}, 0);
        w.add(a, da.data(), da.size());
        // Grows the header far past what was reserved.
        w.header()["tokenizer"] = {{"padding", std::string(200000, 'x')}};
        w.finish();
    }
    BttFile f(path);
    REQUIRE(f.header()["tokenizer"]["padding"].get<std::string>().size() == 200000);
    const BttTensor* t = f.find("a");
    REQUIRE(t);
    CHECK(std::memcmp(f.data(*t), da.data(), da.size()) == 0);
    CHECK_NOTHROW(f.verify(*t));
    CHECK(f.weights_only());
}

TEST_CASE("btt: an unfinished writer leaves no file behind", "[btt]") {
    TempDir dir;
    const std::string path = dir.file("never.btt");
    {
        BttWriter w(path, {{"format", "bitttt"}}, 1);
        auto bytes = random_bytes(1000, 1);
        w.add(plain_entry("x", {250}, Encoding::F32), bytes.data(), bytes.size());
        // No finish(): as if an exception unwound the conversion.
    }
    CHECK(bitttt::test::list_dir(dir.path()).empty());
}

TEST_CASE("btt: corruption and malformed files are reported with the file and tensor", "[btt]") {
    TempDir dir;
    const std::string path = dir.file("m.btt");
    BttTensor a = plain_entry("model.layers.0.mlp.up_proj.weight", {16}, Encoding::F32);
    auto da = random_bytes(64, 5);
    {
        BttWriter w(path, {{"format", "bitttt"}}, 1);
        w.add(a, da.data(), da.size());
        w.finish();
    }
    std::vector<char> bytes;
    {
        std::ifstream in(path, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto rewrite = [&](const std::vector<char>& b) {
        std::ofstream(path, std::ios::binary | std::ios::trunc).write(b.data(), static_cast<std::streamsize>(b.size()));
    };

    SECTION("flipped data byte fails verify, naming the tensor") {
        auto b = bytes;
        if (!b.empty()) b.back() ^= 1;
        rewrite(b);
        BttFile f(path);
        REQUIRE_THROWS_WITH(f.verify(f.tensors()[0]),
                            Catch::Contains("model.layers.0.mlp.up_proj.weight") && Catch::Contains("checksum"));
    }
    SECTION("flipped header byte fails the header checksum") {
        auto b = bytes;
        b[kBttPreambleBytes + 3] ^= 1;
        rewrite(b);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("header checksum"));
    }
    SECTION("truncated file") {
        auto b = bytes;
        b.resize(b.size() - 10);
        rewrite(b);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("past end of data section") &&
                                                Catch::Contains("model.layers.0.mlp.up_proj.weight"));
    }
    SECTION("shorter than the preamble") {
        rewrite(std::vector<char>(bytes.begin(), bytes.begin() + 10));
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("not a .btt file"));
    }
    SECTION("bad magic") {
        auto b = bytes;
        b[0] = 'X';
        rewrite(b);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("bad magic"));
    }
    SECTION("future version") {
        write_raw_btt(path, one_f32_header(0, 64, {16}), 64, kBttVersion + 1);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("version"));
    }
    SECTION("size that does not match shape and encoding") {
        write_raw_btt(path, one_f32_header(0, 64, {17}), 64);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("'w'") && Catch::Contains("need 68"));
    }
    SECTION("misaligned offset") {
        write_raw_btt(path, one_f32_header(4, 60, {15}), 64);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("not a multiple of 64"));
    }
    SECTION("overlapping tensors") {
        json h = one_f32_header(0, 128, {32});
        json second = h["tensors"][0];
        second["name"] = "w2";
        second["offset"] = 64;
        second["size"] = 128;
        h["tensors"].push_back(second);
        write_raw_btt(path, h, 256);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("overlap"));
    }
    SECTION("unknown encoding / packing") {
        json h = one_f32_header(0, 64, {16});
        h["tensors"][0]["encoding"] = "q4";
        write_raw_btt(path, h, 64);
        REQUIRE_THROWS_WITH(BttFile(path), Catch::Contains("unknown encoding 'q4'"));
    }
    SECTION("bad header checksum in a hand-made file") {
        write_raw_btt(path, one_f32_header(0, 64, {16}), 64, kBttVersion, false);
        REQUIRE_THROWS_AS(BttFile(path), FormatError);
    }
}

TEST_CASE("btt: two-level scales make a version-2 file and round trip", "[btt][two-level]") {
    TempDir dir;
    const std::string path = dir.file("m.btt");
    BttTensor a = ternary_entry("a", 5, 200, 3, Packing::Dense);
    a.layout.scales = ScaleMode::Tied;
    a.layout.scale_bits = 8;
    BttTensor b = ternary_entry("b", 3, 64, 2, Packing::TwoBit);
    auto da = random_bytes(a.layout.total_bytes(), 7), db = random_bytes(b.layout.total_bytes(), 8);
    {
        BttWriter w(path, {{"format", "bitttt"}, {"model", nullptr}, {"tokenizer", nullptr}}, 2);
        w.add(a, da.data(), da.size());
        w.add(b, db.data(), db.size());
        w.finish();
    }
    BttFile f(path);
    CHECK(f.version() == 2);
    REQUIRE(f.tensors().size() == 2);
    CHECK(f.tensors()[0].layout.scale_bits == 8);
    CHECK(f.tensors()[0].layout.tied());
    CHECK(f.tensors()[0].size == a.layout.total_bytes());
    CHECK(f.tensors()[1].layout.scale_bits == 16);
    CHECK(std::equal(da.begin(), da.end(), f.data(f.tensors()[0])));
    CHECK_NOTHROW(f.verify(f.tensors()[0]));

    // A version-1 file cannot hold two-level scales, and only 16 or 8 bits exist.
    json h = f.header();
    write_raw_btt(dir.file("v1.btt"), h, f.tensors()[1].offset + f.tensors()[1].size, 1);
    CHECK_THROWS_WITH(BttFile(dir.file("v1.btt")), Catch::Contains("'a'") && Catch::Contains("version-1"));
    h["tensors"][0]["scale_bits"] = 4;
    write_raw_btt(dir.file("bits.btt"), h, f.tensors()[1].offset + f.tensors()[1].size, 2);
    CHECK_THROWS_WITH(BttFile(dir.file("bits.btt")), Catch::Contains("'a'") && Catch::Contains("scale_bits"));
}
