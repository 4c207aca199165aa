#include "model/sampler.h"

#include <algorithm>
#include <cmath>

#include "bitttt/error.h"

namespace bitttt {

namespace {

std::uint64_t splitmix64(std::uint64_t& s) {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

std::int32_t argmax(const float* logits, std::int64_t n) {
    std::int64_t best = 0;
    for (std::int64_t i = 1; i < n; ++i) {
        if (logits[i] > logits[best]) best = i;
    }
    return static_cast<std::int32_t>(best);
}

Sampler::Sampler(const SamplerOptions& options) : opt_(options) {
    if (!(opt_.temperature >= 0.0f)) throw UsageError("--temp must be >= 0");
    if (opt_.top_k < 0) throw UsageError("--top-k must be >= 0");
    if (!(opt_.top_p > 0.0f && opt_.top_p <= 1.0f)) throw UsageError("--top-p must be in (0, 1]");
    std::uint64_t s = opt_.seed;
    for (auto& w : state_) w = splitmix64(s);
}

double Sampler::uniform() {
    // xoshiro256**
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return static_cast<double>(result >> 11) * (1.0 / 9007199254740992.0);
}

std::int32_t Sampler::sample(const float* logits, std::int64_t n) {
    if (opt_.temperature == 0.0f) return argmax(logits, n);
    cand_.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) cand_[i] = {logits[i], static_cast<std::int32_t>(i)};
    // Highest logits first; ties by id so the order never depends on the sort.
    auto higher = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    std::size_t k = cand_.size();
    if (opt_.top_k > 0 && static_cast<std::size_t>(opt_.top_k) < k) {
        k = static_cast<std::size_t>(opt_.top_k);
        std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k), cand_.end(), higher);
    } else {
        std::sort(cand_.begin(), cand_.end(), higher);
    }
    // Softmax with temperature over the k best, in double.
    std::vector<double> p(k);
    const double mx = cand_[0].first;
    double sum = 0.0;
    for (std::size_t i = 0; i < k; ++i) {
        p[i] = std::exp((cand_[i].first - mx) / opt_.temperature);
        sum += p[i];
    }
    // Nucleus: the smallest prefix whose probability reaches top_p.
    std::size_t keep = k;
    if (opt_.top_p < 1.0f) {
        double cum = 0.0;
        for (std::size_t i = 0; i < k; ++i) {
            cum += p[i] / sum;
            if (cum >= opt_.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double kept = 0.0;
    for (std::size_t i = 0; i < keep; ++i) kept += p[i];
    double r = uniform() * kept;
    for (std::size_t i = 0; i < keep; ++i) {
        r -= p[i];
        if (r < 0.0) return cand_[i].second;
    }
    return cand_[keep - 1].second;
}

}  // namespace bitttt
