// The bits-per-weight budget: allocation of bases per tensor, and --target-bpw end to end.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/converter.h"
#include "bitttt/error.h"
#include "convert/budget.h"
#include "test_util.h"

using namespace bitttt;

namespace {

// Tensors with decreasing error curves of random steepness and the byte counts of a model's
// few shapes (like q/k/v/o/gate/up/down over some layers).
std::vector<BudgetTensor> random_tensors(std::mt19937& rng, int count, int max_bases) {
    std::uniform_real_distribution<double> u(0.2, 0.7);
    const std::int64_t shapes[4][2] = {{64, 64}, {32, 64}, {172, 64}, {64, 172}};
    std::vector<BudgetTensor> ts;
    for (int i = 0; i < count; ++i) {
        BudgetTensor t;
        t.name = "t" + std::to_string(i);
        const TernaryLayout base{shapes[i % 4][0], shapes[i % 4][1], 1, 64, Packing::TwoBit, ScaleMode::Tied};
        t.weights = base.rows * base.cols;
        double e = static_cast<double>(t.weights) * u(rng) * 10.0;
        for (int n = 1; n <= max_bases; ++n) {
            TernaryLayout l = base;
            l.bases = n;
            t.bytes.push_back(static_cast<double>(l.total_bytes()));
            t.error.push_back(e);
            e *= u(rng);
        }
        ts.push_back(t);
    }
    return ts;
}

double total_error(const std::vector<BudgetTensor>& ts, const std::vector<int>& n) {
    double e = 0;
    for (std::size_t i = 0; i < ts.size(); ++i) e += ts[i].error[static_cast<std::size_t>(n[i] - 1)];
    return e;
}

}  // namespace

TEST_CASE("allocate_bases meets the budget and spends it well", "[budget]") {
    std::mt19937 rng(9);
    for (int trial = 0; trial < 6; ++trial) {
        const auto ts = random_tensors(rng, 12, 3);
        const double one = budget_bits_per_weight(ts, std::vector<int>(ts.size(), 1));
        const double all = budget_bits_per_weight(ts, std::vector<int>(ts.size(), 3));
        for (double target : {one, one + 0.3, (one + all) / 2, all - 0.2, all, all + 1}) {
            const auto n = allocate_bases(ts, target);
            const double bpw = budget_bits_per_weight(ts, n);
            CHECK(bpw <= target + 1e-12);
            // Exhaustive optimum over the 3^12 choices within the budget.
            double best = std::numeric_limits<double>::infinity();
            std::vector<int> c(ts.size());
            for (int code = 0; code < 531441; ++code) {
                int rest = code;
                for (auto& x : c) x = rest % 3 + 1, rest /= 3;
                if (budget_bits_per_weight(ts, c) <= target) best = std::min(best, total_error(ts, c));
            }
            const double got = total_error(ts, n);
            CHECK(got >= best * (1 - 1e-12));
            // Close to the knapsack optimum.
            CHECK(got <= best * 1.05);
            if (target >= all) CHECK(n == std::vector<int>(ts.size(), 3));
        }
    }
    const auto ts = random_tensors(rng, 3, 3);
    CHECK_THROWS_AS(allocate_bases(ts, 1.0), UsageError);
}

TEST_CASE("convert --target-bpw: mixed N within the budget, reported and round-tripped", "[budget][convert]") {
    BITTTT_REQUIRE_SHARED("models/stories260K-hf");
    const std::string model = bitttt::test::shared_dir() + "/models/stories260K-hf";
    bitttt::test::TempDir dir;
    for (double target : {3.0, 4.0}) {
        ConvertOptions opt;
        opt.input = model;
        opt.output = dir.file("t.btt");
        opt.bases = 4;
        opt.scales = ScaleMode::Tied;
        opt.target_bpw = target;
        opt.threads = 2;
        const ConvertReport rep = convert(opt);
        CHECK(rep.linear_bits_per_weight <= target);
        CHECK(rep.linear_bits_per_weight > target - 0.5);
        BttFile f(opt.output);
        std::uint64_t bytes = 0;
        std::int64_t weights = 0;
        std::map<int, int> count;
        for (const auto& t : f.tensors()) {
            if (t.encoding != Encoding::Ternary) continue;
            bytes += t.size;
            weights += t.numel();
            ++count[t.layout.bases];
            CHECK(t.layout.tied());
            CHECK(t.relative_error_by_base.size() == static_cast<std::size_t>(t.layout.bases));
        }
        // The budget is met exactly as reported, from the file's own tensor table.
        CHECK(8.0 * static_cast<double>(bytes) / static_cast<double>(weights) == Approx(rep.linear_bits_per_weight));
        CHECK(count.size() >= 2);  // a real mix
        CHECK(f.header()["conversion"]["target_bpw"].get<double>() == target);
    }
}
