// A .btt file whose ternary tensors differ in N, in scales (tied / free, 16-bit / two-level)
// and in packing, as a per-tensor bits budget would make them: --bases K uses min(K, N) bases of each tensor,
// logits are identical for any thread count, batch and ternary kernel design, and they
// match an F32 model built from the dequantised weights (dequantize_row).
#include <catch2/catch.hpp>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/dtype.h"
#include "bitttt/model.h"
#include "bitttt/safetensors.h"
#include "convert/two_level.h"
#include "fixtures.h"
#include "kernels/dispatch.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using bitttt::test::TinyModel;

namespace {

constexpr int kMaxN = 4;

// Balanced-ternary digits of `level` (|level| <= (3^n - 1) / 2), most significant first.
void balanced_digits(int level, int n, std::int8_t* digits) {
    for (int i = n - 1; i >= 0; --i) {
        int r = level % 3;  // -2..2
        if (r == 2) r = -1;
        if (r == -2) r = 1;
        digits[i] = static_cast<std::int8_t>(r);
        level = (level - r) / 3;
    }
}

// Two-level copy of a 16-bit-scale tensor: per row and slot d = the smallest binary16 with
// 255 d >= the largest |scale|, u = round(|scale| / d) (the sign of a random test scale is
// dropped; the reference is built from the result, so only consistency matters).
std::vector<std::uint8_t> to_two_level(const TernaryLayout& l16, const std::vector<std::uint8_t>& in,
                                       const TernaryLayout& l8) {
    std::vector<std::uint8_t> out(l8.total_bytes());
    const int m = l16.scale_count();
    for (std::int64_t r = 0; r < l16.rows; ++r) {
        const std::uint8_t* row = in.data() + r * l16.row_bytes();
        std::uint8_t* orow = out.data() + r * l8.row_bytes();
        for (int k = 0; k < m; ++k) {
            float mx = 0;
            for (std::int64_t b = 0; b < l16.blocks_per_row(); ++b) {
                mx = std::max(mx, std::fabs(l16.block_scale(row, row + l16.block_offset(b), k)));
            }
            const float d = fit::super_scale(mx);
            const std::uint16_t h = f32_to_f16(d);
            orow[2 * k] = static_cast<std::uint8_t>(h & 0xFF);
            orow[2 * k + 1] = static_cast<std::uint8_t>(h >> 8);
            for (std::int64_t b = 0; b < l16.blocks_per_row(); ++b) {
                const float s = std::fabs(l16.block_scale(row, row + l16.block_offset(b), k));
                orow[l8.block_offset(b) + static_cast<std::size_t>(k)] =
                    static_cast<std::uint8_t>(d > 0 ? std::min(255L, std::lround(s / d)) : 0L);
            }
        }
        for (std::int64_t b = 0; b < l16.blocks_per_row(); ++b) {
            std::memcpy(orow + l8.block_offset(b) + l8.block_scale_bytes(),
                        row + l16.block_offset(b) + l16.block_scale_bytes(),
                        static_cast<std::size_t>(l16.bases) * l16.group_bytes());
        }
    }
    return out;
}

// Re-encodes ternary tensor `t` of `src` (N = 4, free scales) with `n` bases, `mode` and
// `packing` (two-level scales through to_two_level). Free: the first n bases as they are. Tied: the 4-base reconstruction rounded to
// the uniform grid of step s / 3^(n-1) per block, s = max|w| / ((3^n - 1) / 2) * 3^(n-1).
std::vector<std::uint8_t> reencode(const BttFile& src, const BttTensor& t, const TernaryLayout& target) {
    TernaryLayout nl = target;
    nl.scale_bits = 16;
    const TernaryLayout& ol = t.layout;
    const std::uint8_t* od = src.data(t);
    std::vector<std::uint8_t> out(nl.total_bytes());
    const int bs = ol.block_size;
    std::vector<std::int8_t> trits(static_cast<std::size_t>(bs));
    std::vector<float> w(static_cast<std::size_t>(ol.cols));
    for (std::int64_t r = 0; r < ol.rows; ++r) {
        dequantize_row(ol, od, r, ol.bases, w.data());
        for (std::int64_t b = 0; b < ol.blocks_per_row(); ++b) {
            const std::uint8_t* ob = od + r * ol.row_bytes() + b * ol.block_bytes();
            std::uint8_t* nb = out.data() + r * nl.row_bytes() + b * nl.block_bytes();
            std::uint8_t* groups = nb + 2 * nl.scale_count();
            if (!nl.tied()) {
                for (int k = 0; k < nl.bases; ++k) {
                    nb[2 * k] = ob[2 * k];
                    nb[2 * k + 1] = ob[2 * k + 1];
                    unpack_trits(ol.packing, ob + 2 * ol.scale_count() + k * ol.group_bytes(), bs, trits.data());
                    pack_trits(nl.packing, trits.data(), bs, groups + k * nl.group_bytes());
                }
                continue;
            }
            const std::int64_t first = b * bs, valid = std::min<std::int64_t>(bs, ol.cols - first);
            float amax = 0;
            for (std::int64_t j = 0; j < valid; ++j) amax = std::max(amax, std::fabs(w[static_cast<std::size_t>(first + j)]));
            int top = 0, pow = 1;  // (3^n - 1) / 2 and 3^(n-1)
            for (int k = 0; k < nl.bases; ++k) top = 3 * top + 1;
            for (int k = 1; k < nl.bases; ++k) pow *= 3;
            const std::uint16_t s = f32_to_f16(amax / static_cast<float>(top) * static_cast<float>(pow));
            nb[0] = static_cast<std::uint8_t>(s & 0xFF);
            nb[1] = static_cast<std::uint8_t>(s >> 8);
            const double step = static_cast<double>(f16_to_f32(s)) / pow;
            std::vector<std::vector<std::int8_t>> digits(static_cast<std::size_t>(nl.bases),
                                                         std::vector<std::int8_t>(static_cast<std::size_t>(bs), 0));
            for (std::int64_t j = 0; j < valid; ++j) {
                const double v = step > 0 ? w[static_cast<std::size_t>(first + j)] / step : 0.0;
                const int level = static_cast<int>(std::clamp<long>(std::lround(v), -top, top));
                std::int8_t d[8];
                balanced_digits(level, nl.bases, d);
                for (int k = 0; k < nl.bases; ++k) digits[static_cast<std::size_t>(k)][static_cast<std::size_t>(j)] = d[k];
            }
            for (int k = 0; k < nl.bases; ++k) {
                pack_trits(nl.packing, digits[static_cast<std::size_t>(k)].data(), bs, groups + k * nl.group_bytes());
            }
        }
    }
    return target.two_level() ? to_two_level(nl, out, target) : out;
}

// The tiny model converted with 4 bases (ternary embeddings and lm_head too), then every
// ternary tensor re-encoded with its own N (1..4), scales, packing and arrangement.
// Returns the path.
std::string write_mixed(const TempDir& dir) {
    TinyModel().write(dir.path() / "m");
    ConvertOptions o;
    o.input = (dir.path() / "m").string();
    o.output = dir.file("n4.btt");
    o.bases = kMaxN;
    o.block_size = 16;
    o.scales = ScaleMode::Free;  // reencode reads the source's per-base scales
    o.arrangement = Arrangement::Rows;  // and the rows arrangement (tiles are made below)
    o.refine_rounds = 0;
    o.threads = 1;
    o.embeddings = Encoding::Ternary;
    o.lm_head = Encoding::Ternary;
    convert(o);
    const BttFile src(o.output);
    nlohmann::json header = src.header();
    header.erase("tensors");
    const std::string path = dir.file("mixed.btt");
    BttWriter w(path, header, src.tensors().size());
    int i = 0;
    for (const BttTensor& t : src.tensors()) {
        if (t.encoding != Encoding::Ternary) {
            w.add(t, src.data(t), t.size);
            continue;
        }
        BttTensor nt = t;
        nt.layout.bases = 1 + (i * 3 + 1) % kMaxN;  // 2, 1, 4, 3, 2, ...
        nt.layout.scales = i % 3 == 0 ? ScaleMode::Tied : ScaleMode::Free;
        nt.layout.packing = i % 4 == 1 ? Packing::Dense : Packing::TwoBit;
        nt.layout.scale_bits = i % 5 == 2 ? 8 : 16;
        nt.relative_error_by_base.resize(static_cast<std::size_t>(nt.layout.bases));
        nt.rmse_by_base.resize(static_cast<std::size_t>(nt.layout.bases));
        auto bytes = reencode(src, t, nt.layout);
        // Every other linear layer in the tiles arrangement (the embedding table stays rows).
        if (i % 2 == 0 && tensor_role(t.name) != TensorRole::Embedding) {
            const TernaryLayout rows = nt.layout;
            nt.layout.arrangement = Arrangement::Tiles;
            std::vector<std::uint8_t> tiled(nt.layout.total_bytes());
            rearrange_ternary(rows, bytes.data(), nt.layout, tiled.data(), 0, nt.layout.tiles());
            bytes = std::move(tiled);
        }
        w.add(nt, bytes.data(), bytes.size());
        ++i;
    }
    w.finish();
    return path;
}

// An F32 checkpoint folder whose weights are exactly what the engine reconstructs from
// `btt` with --bases `bases` (min(K, N) bases of each ternary tensor).
std::string write_reference(const TempDir& dir, const std::string& btt, int bases) {
    const BttFile f(btt);
    const auto folder = dir.path() / ("ref" + std::to_string(bases));
    std::filesystem::create_directories(folder);
    std::ofstream(folder / "config.json") << TinyModel().config().dump(2);
    SafetensorsWriter w;
    for (const BttTensor& t : f.tensors()) {
        std::vector<float> v(static_cast<std::size_t>(t.numel()));
        if (t.encoding == Encoding::Ternary) {
            const int k = bases > 0 ? std::min(bases, t.layout.bases) : t.layout.bases;
            for (std::int64_t r = 0; r < t.layout.rows; ++r) {
                dequantize_row(t.layout, f.data(t), r, k, v.data() + r * t.layout.cols);
            }
        } else {
            REQUIRE(t.encoding == Encoding::F32);
            std::memcpy(v.data(), f.data(t), v.size() * 4);
        }
        w.add(t.name, DType::F32, t.shape, bitttt::test::f32_bytes(v));
    }
    w.write((folder / "model.safetensors").string());
    return folder.string();
}

constexpr int kVocab = 64;
constexpr int kTokens = 40;  // more than one 32-token micro-batch

std::vector<std::int32_t> tokens() {
    std::vector<std::int32_t> t(kTokens);
    for (int i = 0; i < kTokens; ++i) t[static_cast<std::size_t>(i)] = (i * 29 + 3) % kVocab;
    return t;
}

// Every token's logits, one token at a time.
std::vector<float> logits_seq(const std::string& path, int bases, int threads) {
    auto m = Model::load(path, LoadOptions{bases, threads, kTokens, 0});
    std::vector<float> out;
    const auto t = tokens();
    for (int pos = 0; pos < kTokens; ++pos) {
        const float* l = m->forward(t[static_cast<std::size_t>(pos)], pos);
        out.insert(out.end(), l, l + kVocab);
    }
    return out;
}

// Every token's logits from forward_batch.
std::vector<float> logits_batch(const std::string& path, int bases, int threads) {
    auto m = Model::load(path, LoadOptions{bases, threads, kTokens, 0});
    std::vector<float> out(static_cast<std::size_t>(kTokens * kVocab));
    m->forward_batch(tokens().data(), kTokens, 0, out.data());
    return out;
}

std::vector<float> read_floats(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> b((std::istreambuf_iterator<char>(in)), {});
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), v.size() * 4);
    return v;
}

}  // namespace

TEST_CASE("engine: a file mixing N, tied/free scales and packings runs, and --bases K uses min(K, N)",
          "[engine][mixed]") {
    TempDir dir;
    const std::string path = write_mixed(dir);
    const BttFile f(path);
    int tied = 0, free_ = 0, dense = 0, two_level = 0, counts[kMaxN + 1] = {};
    for (const auto& t : f.tensors()) {
        if (t.encoding != Encoding::Ternary) continue;
        ++counts[t.layout.bases];
        (t.layout.tied() ? tied : free_) += 1;
        dense += t.layout.packing == Packing::Dense;
        two_level += t.layout.two_level();
    }
    int tiled = 0;
    for (const auto& t : f.tensors()) tiled += t.encoding == Encoding::Ternary && t.layout.tiled();
    REQUIRE(two_level > 0);
    REQUIRE(tiled > 0);
    REQUIRE(f.version() == 3);
    REQUIRE(tied > 0);
    REQUIRE(free_ > 0);
    REQUIRE(dense > 0);
    for (int n = 1; n <= kMaxN; ++n) REQUIRE(counts[n] > 0);

    auto m = Model::load(path, LoadOptions{0, 1, 8, 0});
    CHECK(m->bases() == kMaxN);
    CHECK_THAT(m->description(), Catch::Contains("1-4 bases (mixed; all used)") &&
                                     Catch::Contains("2bit and dense") && Catch::Contains("tied and free scales") &&
                                     Catch::Contains("some two-level (8-bit)"));
    auto m2 = Model::load(path, LoadOptions{2, 1, 8, 0});
    CHECK_THAT(m2->description(), Catch::Contains("first 2 used"));
    // Above the largest N of the file: an error naming the file and that N.
    CHECK_THROWS_WITH(Model::load(path, LoadOptions{5, 1, 8, 0}),
                      Catch::Contains("--bases 5") && Catch::Contains("(4)") && Catch::Contains(path));
    // K = the largest N is the same as all bases.
    CHECK(logits_seq(path, kMaxN, 1) == logits_seq(path, 0, 1));

    for (int bases : {0, 2, 1}) {
        CAPTURE(bases);
        const std::vector<float> want = logits_seq(path, bases, 1);
        // Bit-identical for any thread count and for the batched prompt path.
        CHECK(logits_seq(path, bases, 2) == want);
        CHECK(logits_batch(path, bases, 1) == want);
        CHECK(logits_batch(path, bases, 2) == want);
        // Close to the F32 model of the dequantised weights. The engine quantises each
        // linear layer's input to int8 (absmax, step max|x| / 127), so every logit differs
        // from the float one by a sum of such rounding errors; 3% of the largest logit
        // (measured: at most 1.2%) bounds that without hiding a wrong scale or base, which
        // moves logits by tens of percent.
        const std::vector<float> ref = logits_seq(write_reference(dir, path, bases), 0, 1);
        REQUIRE(ref.size() == want.size());
        for (int pos = 0; pos < kTokens; ++pos) {
            float mag = 0, worst = 0;
            for (int v = 0; v < kVocab; ++v) {
                const std::size_t i = static_cast<std::size_t>(pos * kVocab + v);
                mag = std::max(mag, std::fabs(ref[i]));
                worst = std::max(worst, std::fabs(ref[i] - want[i]));
            }
            INFO("position " << pos << " max |logit| " << mag << " max difference " << worst);
            CHECK(worst <= 0.03f * mag);
        }
    }
}

TEST_CASE("engine: inspect shows each tensor's N and scales in a mixed file", "[engine][mixed][cli]") {
    TempDir dir;
    const std::string path = write_mixed(dir);
    const std::string out = dir.file("inspect.json");
    REQUIRE(std::system(("'" + std::string(BITTTT_CLI_PATH) + "' inspect '" + path + "' --json >'" + out + "'").c_str()) ==
            0);
    std::ifstream in(out);
    const nlohmann::json j = nlohmann::json::parse(in);
    const BttFile f(path);
    REQUIRE(j["tensors"].size() == f.tensors().size());
    for (std::size_t i = 0; i < f.tensors().size(); ++i) {
        const BttTensor& t = f.tensors()[i];
        if (t.encoding != Encoding::Ternary) continue;
        CHECK(j["tensors"][i]["bases"] == t.layout.bases);
        CHECK(j["tensors"][i]["scales"] == scale_mode_name(t.layout.scales));
        CHECK(j["tensors"][i]["packing"] == packing_name(t.layout.packing));
        CHECK(j["tensors"][i]["scale_bits"] == t.layout.scale_bits);
    }
    const std::string human = dir.file("inspect.txt");
    REQUIRE(std::system(("'" + std::string(BITTTT_CLI_PATH) + "' inspect '" + path + "' >'" + human + "'").c_str()) == 0);
    std::ifstream hin(human);
    const std::string text((std::istreambuf_iterator<char>(hin)), {});
    CHECK(text.find(" tied ") != std::string::npos);
    CHECK(text.find(" free ") != std::string::npos);
    CHECK(text.find("/8 ") != std::string::npos);
}

// Run by the next test in a child process (a kernel design is chosen once per process):
// writes the mixed file's logits to $BITTTT_MIXED_OUT.
TEST_CASE("engine: mixed file logits for another process", "[.][mixed-logits]") {
    const char* in = std::getenv("BITTTT_MIXED_BTT");
    const char* out = std::getenv("BITTTT_MIXED_OUT");
    REQUIRE(in != nullptr);
    REQUIRE(out != nullptr);
    std::vector<float> v = logits_seq(in, 0, 2), b = logits_batch(in, 2, 1);
    v.insert(v.end(), b.begin(), b.end());
    std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(v.data()),
                                               static_cast<std::streamsize>(v.size() * 4));
}

TEST_CASE("engine: mixed file logits are bit-identical with the maddubs and LUT kernels", "[engine][mixed][avx2]") {
    if (!kernels::avx2_available()) {
        WARN("SKIPPED: no usable AVX2; the two AVX2 ternary designs are not compared");
        return;
    }
    TempDir dir;
    const std::string path = write_mixed(dir);
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    auto run = [&](const char* design) {
        const std::string out = dir.file(std::string("logits-") + design);
        const std::string cmd = "BITTTT_ISA=avx2 BITTTT_TERNARY_KERNEL=" + std::string(design) + " BITTTT_MIXED_BTT='" +
                                path + "' BITTTT_MIXED_OUT='" + out + "' '" + exe + "' '[mixed-logits]' >'" +
                                dir.file("child.txt") + "' 2>&1";
        REQUIRE(std::system(cmd.c_str()) == 0);
        return read_floats(out);
    };
    const std::vector<float> maddubs = run("maddubs"), lut = run("lut");
    REQUIRE(maddubs.size() == static_cast<std::size_t>(2 * kTokens * kVocab));
    CHECK(maddubs == lut);
    // This process's own kernels, when they are AVX2 too (under BITTTT_ISA=generic the
    // float ops round differently, so only the two children are compared).
    if (kernels::active_isa() == kernels::Isa::Avx2) {
        std::vector<float> own = logits_seq(path, 0, 2), b = logits_batch(path, 2, 1);
        own.insert(own.end(), b.begin(), b.end());
        CHECK(own == lut);
    }
}
