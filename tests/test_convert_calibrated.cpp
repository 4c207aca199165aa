// Conversion with a calibration file: column weights, error feedback, errors that name
// the file and tensor, and results independent of the thread count.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/calibrate.h"
#include "bitttt/calibration.h"
#include "bitttt/converter.h"
#include "bitttt/error.h"
#include "bitttt/safetensors.h"
#include "fixtures.h"
#include "test_util.h"

using namespace bitttt;
using bitttt::test::TempDir;
using bitttt::test::TinyModel;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Calibrates `model` on random token ids (the statistics only need to be real ones).
std::string calibrate_random(const std::string& model, const std::string& out, std::int64_t vocab, bool full) {
    std::mt19937 rng(4);
    std::uniform_int_distribution<std::int32_t> id(3, static_cast<std::int32_t>(vocab) - 1);
    CalibrateOptions co;
    co.ctx = 16;
    co.chunks = 8;
    co.full = full;
    co.threads = 1;
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(co.ctx * co.chunks));
    for (auto& t : tokens) t = id(rng);
    calibrate(model, tokens, out, co);
    return out;
}

// sum over rows of (w - w^)^T H (w - w^) for one tensor of a .btt, with H from the
// calibration statistics' mean squares only (diagonal): the weighted error.
double weighted_error(const BttFile& f, const BttTensor& t, const std::vector<float>& w, const float* ms) {
    std::vector<float> row(static_cast<std::size_t>(t.layout.cols));
    double e = 0;
    for (std::int64_t r = 0; r < t.layout.rows; ++r) {
        dequantize_row(t.layout, f.data(t), r, t.layout.bases, row.data());
        for (std::int64_t c = 0; c < t.layout.cols; ++c) {
            const double d = static_cast<double>(w[static_cast<std::size_t>(r * t.layout.cols + c)]) - row[static_cast<std::size_t>(c)];
            e += ms[c] * d * d;
        }
    }
    return e;
}

}  // namespace

TEST_CASE("convert --calibration: every fit, reported errors, thread-count independence", "[convert][calibrate]") {
    TempDir dir;
    TinyModel tm;
    tm.write(dir.path() / "m");
    const std::string model = (dir.path() / "m").string();
    const std::string cal = calibrate_random(model, dir.file("cal.safetensors"), tm.vocab, true);
    Checkpoint ckpt = Checkpoint::open(model);
    for (ScaleMode scales : {ScaleMode::Tied, ScaleMode::Free}) {
        for (bool feedback : {true, false}) {
            for (int bases : {1, 3}) {
              for (int scale_bits : {16, 8}) {
                if (scale_bits == 8 && bases == 1 && !feedback) continue;  // nothing the others do not cover
                INFO(scale_mode_name(scales) << (feedback ? " + error feedback" : " + column weights") << " N = "
                                             << bases << " scale bits " << scale_bits);
                ConvertOptions o;
                o.input = model;
                o.bases = bases;
                o.scales = scales;
                o.scale_bits = scale_bits;
                o.calibration = cal;
                o.error_feedback = feedback;
                o.threads = 1;
                o.output = dir.file("one.btt");
                const ConvertReport rep = convert(o);
                CHECK(rep.error_feedback == feedback);
                o.threads = 2;
                o.output = dir.file("two.btt");
                convert(o);
                // Byte-identical for any thread count.
                CHECK(slurp(dir.file("one.btt")) == slurp(dir.file("two.btt")));
                BttFile f(dir.file("one.btt"));
                CHECK(f.header()["conversion"]["calibration"]["error_feedback"] == feedback);
                for (const auto& t : f.tensors()) {
                    if (t.encoding != Encoding::Ternary) continue;
                    // The stored statistics are those of what a reader reconstructs.
                    const std::vector<float> w = ckpt.read_f32(*ckpt.find(t.name));
                    std::vector<float> row(static_cast<std::size_t>(t.layout.cols));
                    double err = 0, norm = 0;
                    for (std::int64_t r = 0; r < t.layout.rows; ++r) {
                        dequantize_row(t.layout, f.data(t), r, bases, row.data());
                        for (std::int64_t c = 0; c < t.layout.cols; ++c) {
                            const double x = w[static_cast<std::size_t>(r * t.layout.cols + c)];
                            err += (x - row[static_cast<std::size_t>(c)]) * (x - row[static_cast<std::size_t>(c)]);
                            norm += x * x;
                        }
                    }
                    CHECK(t.layout.scale_bits == scale_bits);
                    CHECK(std::sqrt(err / norm) ==
                          Approx(t.relative_error_by_base[static_cast<std::size_t>(bases - 1)]).epsilon(1e-6));
                }
              }
            }
        }
    }
}

TEST_CASE("convert --calibration: column weights lower the weighted error", "[convert][calibrate]") {
    TempDir dir;
    TinyModel tm;
    tm.write(dir.path() / "m");
    const std::string model = (dir.path() / "m").string();
    const std::string cal = calibrate_random(model, dir.file("cal.safetensors"), tm.vocab, false);
    CalibrationFile cf(cal);
    Checkpoint ckpt = Checkpoint::open(model);
    ConvertOptions o;
    o.input = model;
    o.bases = 2;
    o.threads = 1;
    o.output = dir.file("plain.btt");
    convert(o);
    o.calibration = cal;
    o.error_feedback = false;
    o.output = dir.file("cal.btt");
    convert(o);
    BttFile plain(dir.file("plain.btt")), weighted(dir.file("cal.btt"));
    double e_plain = 0, e_weighted = 0;
    for (const auto& t : plain.tensors()) {
        if (t.encoding != Encoding::Ternary) continue;
        const std::vector<float> w = ckpt.read_f32(*ckpt.find(t.name));
        const float* ms = cf.mean_sq(t.name, t.layout.cols);
        REQUIRE(ms != nullptr);
        e_plain += weighted_error(plain, t, w, ms);
        e_weighted += weighted_error(weighted, *weighted.find(t.name), w, ms);
    }
    CHECK(e_weighted < e_plain);
}

TEST_CASE("convert --calibration: unusable calibration files are refused clearly", "[convert][calibrate]") {
    TempDir dir;
    TinyModel tm;
    tm.write(dir.path() / "m");
    TinyModel other;
    other.inter = 40;  // another model: down_proj reads 40 channels, not 44
    other.write(dir.path() / "other");
    const std::string model = (dir.path() / "m").string();
    ConvertOptions o;
    o.input = model;
    o.bases = 2;
    o.output = dir.file("x.btt");
    // Diagonal statistics only, with error feedback asked for.
    o.calibration = calibrate_random(model, dir.file("diag.safetensors"), tm.vocab, false);
    CHECK_THROWS_WITH(convert(o), Catch::Contains("diag.safetensors") && Catch::Contains("--no-error-feedback"));
    // Statistics of another model.
    o.calibration = calibrate_random((dir.path() / "other").string(), dir.file("other.safetensors"), other.vocab, true);
    CHECK_THROWS_WITH(convert(o), Catch::Contains("other.safetensors") && Catch::Contains("down_proj"));
    // Nothing is left behind.
    CHECK_FALSE(std::filesystem::exists(o.output));
    // Refinement-free methods cannot use it.
    o.calibration = dir.file("diag.safetensors");
    o.error_feedback = false;
    o.method = Method::Absmean;
    o.scales = ScaleMode::Free;
    CHECK_THROWS_AS(convert(o), UsageError);
}
