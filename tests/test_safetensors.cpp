// MappedFile, SafetensorsFile (incl. every malformed-header case, built byte by byte),
// SafetensorsWriter round trips, and Checkpoint resolution (file, index + shards, folder).
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "bitttt/mapped_file.h"
#include "bitttt/safetensors.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
namespace fs = std::filesystem;

namespace {

// Matches an exception whose message contains every one of the given strings.
class MessageContains : public Catch::MatcherBase<std::exception> {
public:
    MessageContains(std::initializer_list<std::string> parts) : parts_(parts) {}
    bool match(const std::exception& e) const override {
        const std::string what = e.what();
        for (const auto& p : parts_)
            if (what.find(p) == std::string::npos) return false;
        return true;
    }
    std::string describe() const override {
        std::string s = "has a message containing";
        for (const auto& p : parts_) s += " \"" + p + "\"";
        return s;
    }

private:
    std::vector<std::string> parts_;
};

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string le64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
    return s;
}

// A safetensors file from header text and a data section of `data_size` bytes (0, 1, 2, ...).
std::string st_bytes(const std::string& header, std::size_t data_size) {
    std::string data(data_size, '\0');
    for (std::size_t i = 0; i < data_size; ++i) data[i] = static_cast<char>(i);
    return le64(header.size()) + header + data;
}

// Writes a hand-made file and returns its path.
std::string make_st(const TempDir& dir, const std::string& header, std::size_t data_size,
                    const std::string& name = "model.safetensors") {
    const std::string path = dir.file(name);
    write_file(path, st_bytes(header, data_size));
    return path;
}

SafetensorsFile open_st(const std::string& path) { return SafetensorsFile(path); }

template <class T>
std::vector<std::uint8_t> to_bytes(const std::vector<T>& v) {
    std::vector<std::uint8_t> out(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());  // tests run on little-endian hosts
    return out;
}

std::vector<std::uint8_t> f32_bytes(const std::vector<float>& v) { return to_bytes(v); }
std::vector<std::uint8_t> f16_bytes(const std::vector<float>& v) {
    std::vector<std::uint16_t> h;
    for (float f : v) h.push_back(f32_to_f16(f));
    return to_bytes(h);
}
std::vector<std::uint8_t> bf16_bytes(const std::vector<float>& v) {
    std::vector<std::uint16_t> h;
    for (float f : v) h.push_back(f32_to_bf16(f));
    return to_bytes(h);
}

// 0, 0.5, 1, ... : exact in f16 and bf16.
std::vector<float> ramp(std::size_t n, float scale = 0.5f) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * scale - 2.0f;
    return v;
}

bool no_tmp_files(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos) return false;
    return true;
}

}  // namespace

// ---- MappedFile -----------------------------------------------------------------------

TEST_CASE("MappedFile maps, moves and advises", "[mapped_file]") {
    TempDir dir;
    std::string content(3 * 4096 + 17, '\0');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7);
    write_file(dir.file("a.bin"), content);

    MappedFile m(dir.file("a.bin"));
    REQUIRE(m.size() == content.size());
    REQUIRE(m.path() == dir.file("a.bin"));
    REQUIRE(std::memcmp(m.data(), content.data(), content.size()) == 0);

    // Hints with odd, empty and out-of-range arguments are harmless, and released pages
    // come back with the same contents.
    m.will_need(0, m.size());
    m.will_need(5000, 3);
    m.will_need(m.size(), 10);
    m.will_need(100, ~std::size_t{0});
    m.release(4095, 2);
    m.release(1, 0);
    m.release(m.size() + 100, 5);
    m.release(4097, ~std::size_t{0});
    m.release(0, m.size());
    REQUIRE(std::memcmp(m.data(), content.data(), content.size()) == 0);

    MappedFile moved(std::move(m));
    REQUIRE(moved.size() == content.size());
    REQUIRE(m.data() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    REQUIRE(m.size() == 0);
    MappedFile assigned;
    assigned = std::move(moved);
    REQUIRE(assigned.size() == content.size());
    REQUIRE(std::memcmp(assigned.data(), content.data(), content.size()) == 0);
    assigned = MappedFile(dir.file("a.bin"));  // replaces (and unmaps) the old mapping
    REQUIRE(assigned.data()[1] == static_cast<std::uint8_t>(7));
}

TEST_CASE("MappedFile edge cases and errors", "[mapped_file]") {
    TempDir dir;
    write_file(dir.file("empty"), "");
    MappedFile e(dir.file("empty"));
    CHECK(e.data() == nullptr);
    CHECK(e.size() == 0);
    e.release(0, 100);
    e.will_need(0, 100);

    const std::string missing = dir.file("missing.bin");
    CHECK_THROWS_MATCHES(MappedFile(missing), IoError,
                         MessageContains({missing, "No such file or directory"}));
    CHECK_THROWS_MATCHES(MappedFile(dir.path().string()), IoError,
                         MessageContains({dir.path().string(), "not a regular file"}));
}

// ---- SafetensorsWriter -> SafetensorsFile round trips ---------------------------------

TEST_CASE("writer and reader round trip", "[safetensors]") {
    TempDir dir;
    const std::string path = dir.file("rt.safetensors");

    struct Spec {
        std::string name;
        DType dtype;
        std::vector<std::int64_t> shape;
    };
    // Deliberately not in name order: the file keeps the order of add().
    const std::vector<Spec> specs{
        {"scalar", DType::F32, {}},
        {"vec.f16", DType::F16, {5}},
        {"mat.bf16", DType::BF16, {3, 4}},
        {"cube.i32", DType::I32, {2, 3, 4}},
        {"empty.u8", DType::U8, {0, 7}},
        {"also_empty", DType::F32, {3, 0, 2}},
        {"f64", DType::F64, {2}},
        {"bool", DType::BOOL, {3}},
        {"i64.111", DType::I64, {1, 1, 1}},
        {"e4m3", DType::F8_E4M3, {9}},
        {"a.first.by.name", DType::U16, {1}},
    };
    std::vector<std::vector<std::uint8_t>> payloads;
    SafetensorsWriter w;
    std::uint8_t seed = 1;
    for (const auto& s : specs) {
        std::int64_t numel = 1;
        for (auto d : s.shape) numel *= d;
        std::vector<std::uint8_t> bytes(static_cast<std::size_t>(numel) * dtype_size(s.dtype));
        for (auto& b : bytes) b = seed++;
        payloads.push_back(bytes);
        w.add(s.name, s.dtype, s.shape, bytes);
    }
    w.write(path);
    REQUIRE(no_tmp_files(dir.path()));

    const SafetensorsFile f(path);
    CHECK(f.path() == path);
    CHECK(f.data_offset() % 8 == 0);
    CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}});
    REQUIRE(f.tensors().size() == specs.size());

    // Raw header: metadata first, then tensors in add order, padded with spaces.
    const std::string raw = read_file(path);
    const std::string header = raw.substr(8, f.data_offset() - 8);
    CHECK(header.rfind(R"({"__metadata__":{"format":"pt"},"scalar":)", 0) == 0);
    CHECK(header.find("\"vec.f16\"") < header.find("\"a.first.by.name\""));
    CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
    CHECK(f.file_size() == raw.size());

    std::uint64_t expect_begin = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        INFO(specs[i].name);
        const TensorInfo* t = f.find(specs[i].name);
        REQUIRE(t != nullptr);
        CHECK(t->name == specs[i].name);
        CHECK(t->dtype == specs[i].dtype);
        CHECK(t->shape == specs[i].shape);
        CHECK(t->begin == expect_begin);  // back to back in add order
        CHECK(t->nbytes() == payloads[i].size());
        CHECK(static_cast<std::uint64_t>(t->numel()) * dtype_size(t->dtype) == t->nbytes());
        CHECK(std::vector<std::uint8_t>(f.data(*t), f.data(*t) + t->nbytes()) == payloads[i]);
        expect_begin = t->end;
    }
    CHECK(f.data_offset() + expect_begin == f.file_size());
    CHECK(f.find("scalar")->numel() == 1);
    CHECK(f.find("empty.u8")->numel() == 0);
    CHECK(f.find("nope") == nullptr);

    // tensors() is in data-offset order.
    for (std::size_t i = 1; i < f.tensors().size(); ++i)
        CHECK(f.tensors()[i - 1].begin <= f.tensors()[i].begin);
}

TEST_CASE("writer metadata, generated tensors and overwrite", "[safetensors]") {
    TempDir dir;
    const std::string path = dir.file("gen.safetensors");
    write_file(path, "old contents");

    SafetensorsWriter w;
    w.set_metadata({{"b", "2"}, {"a", "x y"}});
    std::vector<std::string> calls;
    w.add_generated("g1", DType::F32, {2, 3}, [&](std::uint8_t* dst, std::size_t n) {
        calls.push_back("g1:" + std::to_string(n));
        const auto v = ramp(6);
        std::memcpy(dst, v.data(), n);
    });
    w.add("plain", DType::U8, {2}, {7, 8});
    w.add_generated("g2", DType::BF16, {4}, [&](std::uint8_t* dst, std::size_t n) {
        calls.push_back("g2:" + std::to_string(n));
        const auto b = bf16_bytes({1, 2, 3, 4});
        std::memcpy(dst, b.data(), n);
    });
    w.add_generated("g0", DType::F16, {0}, [&](std::uint8_t*, std::size_t n) {
        calls.push_back("g0:" + std::to_string(n));
    });
    w.write(path);
    CHECK(calls == std::vector<std::string>{"g1:24", "g2:8", "g0:0"});
    CHECK(no_tmp_files(dir.path()));

    const SafetensorsFile f(path);
    CHECK(f.metadata() == std::map<std::string, std::string>{{"a", "x y"}, {"b", "2"}});
    const auto* g1 = f.find("g1");
    REQUIRE(g1 != nullptr);
    std::vector<float> back(6);
    convert_to_f32(DType::F32, f.data(*g1), 6, back.data());
    CHECK(back == ramp(6));
    CHECK(f.data(*f.find("plain"))[1] == 8);

    // No metadata at all.
    SafetensorsWriter bare;
    bare.set_metadata({});
    bare.add("x", DType::F32, {1}, f32_bytes({1.0f}));
    bare.write(path);
    CHECK(read_file(path).substr(8, 5) == R"({"x":)");
    CHECK(SafetensorsFile(path).metadata().empty());

    // Empty file: header only.
    SafetensorsWriter none;
    none.write(dir.file("none.safetensors"));
    const SafetensorsFile nf(dir.file("none.safetensors"));
    CHECK(nf.tensors().empty());
    CHECK(nf.data_offset() == nf.file_size());
}

TEST_CASE("writer rejects bad input and cleans up", "[safetensors]") {
    TempDir dir;
    SafetensorsWriter w;
    CHECK_THROWS_MATCHES(w.add("t", DType::F32, {2, 2}, std::vector<std::uint8_t>(15)), UsageError,
                         MessageContains({"'t'", "15 bytes", "[2, 2]", "F32", "16"}));
    CHECK_THROWS_AS(w.add("t", DType::F32, {-1}, {}), UsageError);
    CHECK_THROWS_AS(w.add("__metadata__", DType::U8, {}, {1}), UsageError);
    CHECK_THROWS_AS(w.add_generated("t", DType::F32, {1}, nullptr), UsageError);
    CHECK_THROWS_AS(w.add("big", DType::F64, {1LL << 40, 1LL << 40}, {}), UsageError);
    w.add("t", DType::U8, {1}, {1});
    CHECK_THROWS_MATCHES(w.add("t", DType::U8, {1}, {1}), UsageError, MessageContains({"'t'", "twice"}));

    // A fill that throws leaves neither the target nor the temporary file.
    const std::string path = dir.file("fail.safetensors");
    w.add_generated("boom", DType::F32, {4}, [](std::uint8_t*, std::size_t) {
        throw std::runtime_error("generator failed");
    });
    CHECK_THROWS_WITH(w.write(path), "generator failed");
    CHECK_FALSE(fs::exists(path));
    CHECK(no_tmp_files(dir.path()));

    SafetensorsWriter ok;
    ok.add("t", DType::U8, {1}, {1});
    CHECK_THROWS_MATCHES(ok.write(dir.file("no/such/dir/x.safetensors")), IoError,
                         MessageContains({"no/such/dir"}));
}

// ---- malformed files ------------------------------------------------------------------

TEST_CASE("malformed: too short, bad header length", "[safetensors][malformed]") {
    TempDir dir;
    const std::string p = dir.file("model.safetensors");

    write_file(p, "");
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({p + ": ", "0 bytes", "too short"}));
    write_file(p, "1234567");
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"7 bytes", "too short"}));

    write_file(p, le64(1000) + "{}");
    CHECK_THROWS_MATCHES(open_st(p), FormatError,
                         MessageContains({p + ": header length 1000 bytes", "past the end of the file",
                                          "10 bytes"}));
    write_file(p, le64(~std::uint64_t{0}) + "{}");
    CHECK_THROWS_MATCHES(open_st(p), FormatError,
                         MessageContains({"18446744073709551615", "past the end"}));
    write_file(p, "{\"a\":1}  ");  // JSON without the length prefix
    CHECK_THROWS_AS(open_st(p), FormatError);

    // Longer than 100 MB (sparse file: no real disk use).
    write_file(p, le64(100'000'001) + "{}");
    fs::resize_file(p, 100'000'100);
    CHECK_THROWS_MATCHES(open_st(p), FormatError,
                         MessageContains({"header length 100000001 bytes", "100000000-byte limit"}));
}

TEST_CASE("malformed: header JSON", "[safetensors][malformed]") {
    TempDir dir;
    std::string p = make_st(dir, R"({"w": {"dtype": "F32", )", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError,
                         MessageContains({p + ": header is not valid JSON", "parse_error"}));
    p = make_st(dir, "", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"not valid JSON"}));
    p = make_st(dir, "{\"w\xff\": 1}", 0);  // invalid UTF-8
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"not valid JSON"}));
    p = make_st(dir, R"({} trailing)", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"not valid JSON"}));

    p = make_st(dir, "[1, 2]", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({p + ": header is an array, expected a JSON object"}));
    p = make_st(dir, R"("text")", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"header is a string"}));

    p = make_st(dir, R"({"w": {"dtype":"U8","shape":[1],"data_offsets":[0,1]},
                         "w": {"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"'w'", "twice"}));
    p = make_st(dir, R"({"w": {"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", 1);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"'dtype'", "twice"}));

    p = make_st(dir, R"({"__metadata__": [1]})", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"__metadata__", "is an array"}));
    p = make_st(dir, R"({"__metadata__": {"format": "pt", "n": 3}})", 0);
    CHECK_THROWS_MATCHES(open_st(p), FormatError,
                         MessageContains({"__metadata__", "'n'", "an integer", "expected a string"}));
}

TEST_CASE("malformed: tensor entries", "[safetensors][malformed]") {
    TempDir dir;
    struct Case {
        const char* entry;  // the value of tensor "model.w"
        std::size_t data;
        std::vector<std::string> expect;
    };
    const std::vector<Case> cases{
        {R"(5)", 0, {"entry is an integer", "expected an object"}},
        {R"([0, 1])", 0, {"entry is an array", "expected an object"}},
        {R"({"shape":[1],"data_offsets":[0,4]})", 4, {"missing \"dtype\""}},
        {R"({"dtype":"F32","data_offsets":[0,4]})", 4, {"missing \"shape\""}},
        {R"({"dtype":"F32","shape":[1]})", 4, {"missing \"data_offsets\""}},
        {R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})", 4, {"\"dtype\" is an integer"}},
        {R"({"dtype":"F12","shape":[1],"data_offsets":[0,4]})", 4, {"unknown dtype 'F12'"}},
        {R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", 4, {"unknown dtype 'f32'"}},
        {R"({"dtype":"F32","shape":"[1]","data_offsets":[0,4]})", 4, {"\"shape\" is a string"}},
        {R"({"dtype":"F32","shape":{"a":1},"data_offsets":[0,4]})", 4, {"\"shape\" is an object"}},
        {R"({"dtype":"F32","shape":[1,"2"],"data_offsets":[0,4]})", 4, {"shape element 1 is a string"}},
        {R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,4]})", 4, {"shape element 0 is a non-integer"}},
        {R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})", 4, {"shape element 0 is a non-integer"}},
        {R"({"dtype":"F32","shape":[null],"data_offsets":[0,4]})", 4, {"shape element 0 is null"}},
        {R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,4]})", 4, {"negative dimension -3", "[2,-3]"}},
        {R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]})", 4,
         {"dimension 18446744073709551615", "too large"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":"0,4"})", 4, {"\"data_offsets\" is \"0,4\"", "two integers"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 8, {"\"data_offsets\" is [0,4,8]"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[4]})", 8, {"\"data_offsets\" is [4]"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 8, {"data_offsets begin is negative (-4)"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[0,"4"]})", 8, {"data_offsets end is a string"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4e0]})", 8, {"data_offsets end is a non-integer"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[0,1e30]})", 8, {"data_offsets end is a non-integer"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[0,100000000000000000000000]})", 8,
         {"data_offsets end is a non-integer"}},
        {R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})", 8, {"data_offsets [8, 4) has begin > end"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[6,10]})", 8,
         {"data [6, 10) lies past end of data section (8 bytes)"}},
        {R"({"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]})", 8,
         {"data [0, 18446744073709551615) lies past end of data section (8 bytes)"}},
        {R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", 16,
         {"data [0, 12) is 12 bytes but shape [2, 2] of F32 needs 16 bytes"}},
        {R"({"dtype":"BF16","shape":[],"data_offsets":[0,0]})", 16,
         {"data [0, 0) is 0 bytes but shape [] of BF16 needs 2 bytes"}},
        {R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,16]})", 16,
         {"shape [4294967296, 4294967296] has more elements than fit in 64 bits"}},
        // A zero dim does not excuse the others overflowing (found by fuzz_safetensors).
        {R"({"dtype":"F32","shape":[0,9223372036854775807,9223372036854775807],"data_offsets":[0,0]})", 16,
         {"has more elements than fit in 64 bits"}},
        {R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,16]})", 16,
         {"shape [4611686018427387904] of F64 needs more than 2^64 bytes"}},
        {R"({"dtype":"I32","shape":[4611686018427387904],"data_offsets":[0,16]})", 16,
         {"of I32 needs more than 2^64 bytes"}},
    };
    for (const auto& c : cases) {
        const std::string header = std::string(R"({"__metadata__":{"format":"pt"},"model.w":)") + c.entry + "}";
        INFO(header);
        const std::string p = make_st(dir, header, c.data);
        std::initializer_list<std::string> parts{p + ": tensor 'model.w': "};
        CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains(parts));
        for (const auto& e : c.expect) CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({e}));
    }

    // The message style promised in the docs, in full.
    const std::string p = make_st(dir,
        R"({"model.layers.3.mlp.up_proj.weight":{"dtype":"F32","shape":[24644],"data_offsets":[1024,99600]}})",
        65536);
    CHECK_THROWS_WITH(open_st(p), p + ": tensor 'model.layers.3.mlp.up_proj.weight': data [1024, 99600) "
                                      "lies past end of data section (65536 bytes)");

    // Control characters in a hostile name are escaped in messages.
    const std::string q = make_st(dir, R"({"a\nb\u0001":{"dtype":"F99","shape":[],"data_offsets":[0,4]}})", 4);
    CHECK_THROWS_MATCHES(open_st(q), FormatError, MessageContains({"tensor 'a\\nb\\x01'"}));
}

TEST_CASE("malformed: overlapping tensors", "[safetensors][malformed]") {
    TempDir dir;
    std::string p = make_st(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
                                    "b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24);
    CHECK_THROWS_MATCHES(open_st(p), FormatError,
                         MessageContains({p + ": tensor 'b': data [8, 24) overlaps tensor 'a' at [0, 16)"}));

    // Identical ranges.
    p = make_st(dir, R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},
                        "y":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", 8);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"'x'", "'y'", "overlaps"}));

    // Found whatever the order of the entries in the header.
    p = make_st(dir, R"({"big":{"dtype":"U8","shape":[100],"data_offsets":[0,100]},
                        "s1":{"dtype":"U8","shape":[10],"data_offsets":[100,110]},
                        "s2":{"dtype":"U8","shape":[10],"data_offsets":[20,30]}})", 110);
    CHECK_THROWS_MATCHES(open_st(p), FormatError, MessageContains({"'s2'", "overlaps tensor 'big'"}));

    // Touching ranges, gaps, and empty tensors anywhere are fine.
    p = make_st(dir, R"({"a":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},
                        "gap_then_b":{"dtype":"U8","shape":[5],"data_offsets":[20,25]},
                        "inside":{"dtype":"F32","shape":[0,3],"data_offsets":[5,5]},
                        "at_end":{"dtype":"U8","shape":[0],"data_offsets":[25,25]},
                        "c":{"dtype":"U8","shape":[5],"data_offsets":[10,15]}})", 25);
    const SafetensorsFile f(p);
    std::vector<std::string> order;
    for (const auto& t : f.tensors()) order.push_back(t.name);
    CHECK(order == std::vector<std::string>{"a", "inside", "c", "gap_then_b", "at_end"});
}

TEST_CASE("unusual but valid headers", "[safetensors]") {
    TempDir dir;
    // No metadata, null metadata, extra keys in an entry, whitespace padding, empty header.
    std::string p = make_st(dir, R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":1}}       )", 2);
    CHECK(SafetensorsFile(p).tensors().size() == 1);
    p = make_st(dir, R"({"__metadata__":null})", 0);
    CHECK(SafetensorsFile(p).metadata().empty());
    p = make_st(dir, R"({})", 0);
    CHECK(SafetensorsFile(p).tensors().empty());
    p = make_st(dir, R"({"": {"dtype":"U8","shape":[],"data_offsets":[0,1]}})", 1);
    CHECK(SafetensorsFile(p).find("") != nullptr);
}

TEST_CASE("hostile bytes give FormatError, never a crash", "[safetensors][malformed]") {
    TempDir dir;
    const std::string good_path = dir.file("good.safetensors");
    SafetensorsWriter w;
    w.add("model.a", DType::F32, {2, 3}, f32_bytes(ramp(6)));
    w.add("model.b", DType::F16, {4}, f16_bytes(ramp(4)));
    w.add("model.c", DType::BF16, {1, 2, 2}, bf16_bytes(ramp(4)));
    w.write(good_path);
    const std::string good = read_file(good_path);
    const std::string p = dir.file("bad.safetensors");

    auto try_open = [&](const std::string& bytes) {
        write_file(p, bytes);
        try {
            const SafetensorsFile f(p);
            // Whatever was accepted must be self-consistent.
            for (const auto& t : f.tensors()) {
                REQUIRE(t.begin <= t.end);
                REQUIRE(f.data_offset() + t.end <= f.file_size());
                REQUIRE(static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype) == t.nbytes());
            }
        } catch (const FormatError&) {
        }
    };

    // Every truncation.
    for (std::size_t n = 0; n < good.size(); ++n) {
        write_file(p, good.substr(0, n));
        CHECK_THROWS_AS(open_st(p), FormatError);
    }
    // Random byte corruption, concentrated on the header.
    std::mt19937 rng(12345);
    const std::size_t header_end = SafetensorsFile(good_path).data_offset();
    const std::string alphabet = "{}[]\":,0123456789-eE.FBU \\x";
    for (int iter = 0; iter < 2000; ++iter) {
        std::string bad = good;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits; ++k) {
            const std::size_t pos = rng() % std::min(bad.size(), header_end + 8);
            bad[pos] = (rng() & 1) ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
        }
        try_open(bad);
    }
}

// ---- Checkpoint -----------------------------------------------------------------------

namespace {

// Shard 1: a (F32 [2,3]), b (F16 [4]); shard 2: c (BF16 [3]), d (U8 [2]), extra (not in the map).
void write_sharded(const TempDir& dir, bool with_extra = true) {
    SafetensorsWriter s1;
    s1.add("a", DType::F32, {2, 3}, f32_bytes(ramp(6)));
    s1.add("b", DType::F16, {4}, f16_bytes(ramp(4)));
    s1.write(dir.file("model-00001-of-00002.safetensors"));
    SafetensorsWriter s2;
    s2.add("d", DType::U8, {2}, {1, 2});
    s2.add("c", DType::BF16, {3}, bf16_bytes(ramp(3)));
    if (with_extra) s2.add("extra", DType::F32, {1}, f32_bytes({9.0f}));
    s2.write(dir.file("model-00002-of-00002.safetensors"));
}

const std::string kIndex = R"({
  "metadata": {"total_size": 1234},
  "weight_map": {
    "a": "model-00001-of-00002.safetensors",
    "b": "model-00001-of-00002.safetensors",
    "c": "model-00002-of-00002.safetensors",
    "d": "./model-00002-of-00002.safetensors"
  }
})";

std::vector<std::string> names(const Checkpoint& ck) {
    std::vector<std::string> out;
    for (const auto& e : ck.tensors()) out.push_back(e.info->name);
    return out;
}

}  // namespace

TEST_CASE("Checkpoint: single file and folder", "[checkpoint]") {
    TempDir dir;
    SafetensorsWriter w;
    w.add("z", DType::F32, {2}, f32_bytes({1, 2}));
    w.add("y", DType::F32, {1}, f32_bytes({3}));
    w.write(dir.file("model.safetensors"));

    const Checkpoint ck = Checkpoint::open(dir.file("model.safetensors"));
    CHECK(ck.source() == dir.file("model.safetensors"));
    CHECK(ck.files() == std::vector<std::string>{dir.file("model.safetensors")});
    CHECK(names(ck) == std::vector<std::string>{"z", "y"});  // by offset, not by name
    CHECK(ck.total_bytes() == fs::file_size(dir.file("model.safetensors")));
    CHECK_FALSE(ck.config_path().has_value());
    CHECK_FALSE(ck.tokenizer_path().has_value());
    REQUIRE(ck.find("y") != nullptr);
    CHECK(ck.read_f32(*ck.find("y")) == std::vector<float>{3});
    CHECK(ck.find("x") == nullptr);

    write_file(dir.file("config.json"), "{}");
    write_file(dir.file("tokenizer.json"), "{}");
    for (const std::string& src : {dir.path().string(), dir.path().string() + "/"}) {
        const Checkpoint f = Checkpoint::open(src);
        CHECK(f.source() == src);
        REQUIRE(f.files().size() == 1);
        CHECK(fs::equivalent(f.files()[0], dir.file("model.safetensors")));
        REQUIRE(f.config_path().has_value());
        CHECK(fs::equivalent(*f.config_path(), dir.file("config.json")));
        REQUIRE(f.tokenizer_path().has_value());
        CHECK(fs::equivalent(*f.tokenizer_path(), dir.file("tokenizer.json")));
    }

    // Moving a Checkpoint keeps its entries valid.
    Checkpoint moved = Checkpoint::open(dir.path().string());
    Checkpoint other = std::move(moved);
    CHECK(other.read_f32(*other.find("z")) == std::vector<float>{1, 2});
}

TEST_CASE("Checkpoint: sharded index", "[checkpoint]") {
    TempDir dir;
    write_sharded(dir);
    write_file(dir.file("model.safetensors.index.json"), kIndex);
    write_file(dir.file("config.json"), "{}");

    for (const std::string& src : {dir.file("model.safetensors.index.json"), dir.path().string()}) {
        INFO(src);
        const Checkpoint ck = Checkpoint::open(src);
        REQUIRE(ck.files().size() == 2);
        CHECK(fs::path(ck.files()[0]).filename() == "model-00001-of-00002.safetensors");
        CHECK(fs::path(ck.files()[1]).filename() == "model-00002-of-00002.safetensors");
        // (shard, offset) order; "extra" is in shard 2 but not in the map: included.
        CHECK(names(ck) == std::vector<std::string>{"a", "b", "d", "c", "extra"});
        CHECK(ck.find("c")->file->path() == ck.files()[1]);
        CHECK(ck.find("a")->file->path() == ck.files()[0]);
        CHECK(ck.total_bytes() == fs::file_size(ck.files()[0]) + fs::file_size(ck.files()[1]));
        CHECK(ck.config_path().has_value());
        CHECK_FALSE(ck.tokenizer_path().has_value());
        CHECK(ck.read_f32(*ck.find("c")) == ramp(3));
        CHECK(ck.read_f32(*ck.find("extra")) == std::vector<float>{9});
    }

    // With both a model.safetensors and an index, the folder means model.safetensors.
    SafetensorsWriter single;
    single.add("only", DType::U8, {1}, {5});
    single.write(dir.file("model.safetensors"));
    CHECK(names(Checkpoint::open(dir.path().string())) == std::vector<std::string>{"only"});
    // ... but the index can still be opened explicitly.
    CHECK(Checkpoint::open(dir.file("model.safetensors.index.json")).tensors().size() == 5);
}

TEST_CASE("Checkpoint: index errors", "[checkpoint][malformed]") {
    TempDir dir;
    write_sharded(dir);
    const std::string idx = dir.file("model.safetensors.index.json");

    SECTION("shard missing") {
        write_file(idx, R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                           "q": "model-00003-of-00003.safetensors"}})");
        CHECK_THROWS_MATCHES(Checkpoint::open(idx), FormatError,
                             MessageContains({idx + ": ", "shard 'model-00003-of-00003.safetensors'",
                                              "'q'", "not found"}));
    }
    SECTION("tensor missing from its shard") {
        write_file(idx, R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                           "c": "model-00001-of-00002.safetensors"}})");
        CHECK_THROWS_MATCHES(Checkpoint::open(idx), FormatError,
                             MessageContains({idx + ": tensor 'c' is mapped to shard "
                                                    "'model-00001-of-00002.safetensors'",
                                              "does not contain it"}));
    }
    SECTION("tensor in two shards") {
        SafetensorsWriter s2;
        s2.add("x", DType::U8, {1}, {1});
        s2.add("a", DType::U8, {1}, {1});
        s2.write(dir.file("model-00002-of-00002.safetensors"));
        write_file(idx, R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                           "b": "model-00001-of-00002.safetensors",
                                           "x": "model-00002-of-00002.safetensors"}})");
        CHECK_THROWS_MATCHES(Checkpoint::open(idx), FormatError,
                             MessageContains({"tensor 'a' is in two shards", "model-00001-of-00002",
                                              "model-00002-of-00002"}));
    }
    SECTION("bad index documents") {
        const std::vector<std::pair<std::string, std::string>> cases{
            {"not json", "index is not valid JSON"},
            {"[]", "index is an array"},
            {R"({"metadata": {}})", "no \"weight_map\""},
            {R"({"weight_map": []})", "\"weight_map\" is an array"},
            {R"({"weight_map": {}})", "\"weight_map\" is empty"},
            {R"({"weight_map": {"a": 1}})", "entry for tensor 'a' is an integer"},
            {R"({"weight_map": {"a": "/etc/model.safetensors"}})", "not a relative path"},
            {R"({"weight_map": {"a": "../model-00001-of-00002.safetensors"}})", "not a relative path"},
            {R"({"weight_map": {"a": ""}})", "not a relative path"},
            {R"({"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}})", "'a' twice"},
        };
        for (const auto& [text, expect] : cases) {
            INFO(text);
            write_file(idx, text);
            CHECK_THROWS_MATCHES(Checkpoint::open(idx), FormatError, MessageContains({idx + ": ", expect}));
        }
    }
    SECTION("malformed shard names the shard") {
        write_file(dir.file("model-00002-of-00002.safetensors"), "garbage");
        write_file(idx, kIndex);
        CHECK_THROWS_MATCHES(Checkpoint::open(idx), FormatError,
                             MessageContains({dir.file("model-00002-of-00002.safetensors") + ": "}));
    }
}

TEST_CASE("Checkpoint: folder resolution and missing paths", "[checkpoint]") {
    TempDir dir;
    const std::string missing = dir.file("nope");
    CHECK_THROWS_MATCHES(Checkpoint::open(missing), IoError, MessageContains({"no such file or folder: " + missing}));
    CHECK_THROWS_WITH(Checkpoint::open(missing + "/model.safetensors"),
                      "no such file or folder: " + missing + "/model.safetensors");

    // Empty folder: says what it looked for.
    CHECK_THROWS_MATCHES(Checkpoint::open(dir.path().string()), FormatError,
                         MessageContains({dir.path().string(), "model.safetensors or model.safetensors.index.json",
                                          "no other *.safetensors"}));

    // A single, differently named .safetensors file is accepted...
    SafetensorsWriter w;
    w.add("t", DType::U8, {1}, {1});
    w.write(dir.file("weights.safetensors"));
    write_file(dir.file("notes.txt"), "hi");
    const Checkpoint ck = Checkpoint::open(dir.path().string());
    REQUIRE(ck.files().size() == 1);
    CHECK(fs::path(ck.files()[0]).filename() == "weights.safetensors");

    // ... two are ambiguous.
    w.write(dir.file("other.safetensors"));
    CHECK_THROWS_MATCHES(Checkpoint::open(dir.path().string()), FormatError,
                         MessageContains({"model.safetensors.index.json", "2 other *.safetensors files",
                                          "other.safetensors", "weights.safetensors"}));

    // A non-safetensors file is a FormatError naming it.
    CHECK_THROWS_MATCHES(Checkpoint::open(dir.file("notes.txt")), FormatError,
                         MessageContains({dir.file("notes.txt") + ": "}));
}

TEST_CASE("Checkpoint: read_rows_f32 and release", "[checkpoint]") {
    TempDir dir;
    const auto v12 = ramp(12, 0.25f);
    SafetensorsWriter w;
    w.add("f32", DType::F32, {3, 4}, f32_bytes(v12));
    w.add("f16", DType::F16, {3, 4}, f16_bytes(v12));
    w.add("odd", DType::U8, {1}, {0});  // misaligns everything after it
    w.add("bf16", DType::BF16, {3, 4}, bf16_bytes(v12));
    w.add("cube", DType::F16, {2, 2, 3}, f16_bytes(v12));
    w.add("vec", DType::BF16, {12}, bf16_bytes(v12));
    w.add("scalar", DType::F32, {}, f32_bytes({7.5f}));
    w.add("norows", DType::F32, {0, 4}, {});
    w.add("ints", DType::I32, {2}, to_bytes(std::vector<std::int32_t>{1, 2}));
    w.write(dir.file("model.safetensors"));
    const Checkpoint ck = Checkpoint::open(dir.path().string());

    for (const char* name : {"f32", "f16", "bf16"}) {
        INFO(name);
        const auto& e = *ck.find(name);
        std::vector<float> rows(8, -1.0f);
        ck.read_rows_f32(e, 1, 3, rows.data());
        CHECK(rows == std::vector<float>(v12.begin() + 4, v12.end()));
        CHECK(ck.read_f32(e) == v12);
        ck.read_rows_f32(e, 2, 2, nullptr);  // empty range
        CHECK_THROWS_MATCHES(ck.read_rows_f32(e, 2, 4, rows.data()), UsageError,
                             MessageContains({std::string("'") + name + "'", "[2, 4)", "3 rows"}));
        CHECK_THROWS_AS(ck.read_rows_f32(e, -1, 1, rows.data()), UsageError);
        CHECK_THROWS_AS(ck.read_rows_f32(e, 2, 1, rows.data()), UsageError);
        ck.release(e);
        CHECK(ck.read_f32(e) == v12);  // pages come back after release
    }

    std::vector<float> out(12);
    ck.read_rows_f32(*ck.find("cube"), 1, 2, out.data());  // rows over dim 0: 6 values each
    CHECK(std::vector<float>(out.begin(), out.begin() + 6) == std::vector<float>(v12.begin() + 6, v12.end()));
    CHECK(ck.read_f32(*ck.find("vec")) == v12);
    CHECK_THROWS_AS(ck.read_rows_f32(*ck.find("vec"), 0, 2, out.data()), UsageError);  // 1-D: one row
    CHECK(ck.read_f32(*ck.find("scalar")) == std::vector<float>{7.5f});
    CHECK(ck.read_f32(*ck.find("norows")).empty());
    CHECK_THROWS_MATCHES(ck.read_f32(*ck.find("ints")), UnsupportedError,
                         MessageContains({"tensor 'ints'", "I32"}));
    CHECK_THROWS_AS(ck.read_rows_f32(*ck.find("ints"), 0, 1, out.data()), UnsupportedError);
    ck.release(*ck.find("norows"));
    ck.release(*ck.find("scalar"));
}

TEST_CASE("Checkpoint: the shared stories260K-hf folder", "[checkpoint][shared]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf/model.safetensors");
    const std::string folder = bitttt::test::shared_dir() + "/models/stories260K-hf";
    const Checkpoint ck = Checkpoint::open(folder);
    CHECK(ck.tensors().size() == 47);
    CHECK(ck.files().size() == 1);
    CHECK(ck.total_bytes() == 1044984);

    const auto* embed = ck.find("model.embed_tokens.weight");
    REQUIRE(embed != nullptr);
    CHECK(embed->info->dtype == DType::F32);
    CHECK(embed->info->shape == std::vector<std::int64_t>{512, 64});
    CHECK(embed->info->begin == 0);
    CHECK(ck.tensors().front().info == embed->info);
    CHECK(ck.find("lm_head.weight") == nullptr);  // tied to the embedding
    CHECK(ck.find("model.norm.weight") != nullptr);
    CHECK(ck.find("model.layers.4.mlp.down_proj.weight")->info->shape == std::vector<std::int64_t>{64, 172});

    REQUIRE(ck.config_path().has_value());
    CHECK(fs::equivalent(*ck.config_path(), folder + "/config.json"));
    REQUIRE(ck.tokenizer_path().has_value());
    CHECK(fs::equivalent(*ck.tokenizer_path(), folder + "/tokenizer.json"));

    // Tensors back to back, all F32, all finite.
    std::uint64_t bytes = 0;
    for (const auto& e : ck.tensors()) {
        CHECK(e.info->dtype == DType::F32);
        CHECK(e.info->begin == bytes);
        bytes = e.info->end;
        for (float x : ck.read_f32(e)) REQUIRE(std::isfinite(x));
        ck.release(e);
    }
    CHECK(bytes == 1040128);
    CHECK(ck.tensors().front().file->metadata().at("format") == "pt");
}
