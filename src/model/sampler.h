// Picking the next token from logits: greedy at temperature 0, otherwise temperature,
// top-k and top-p (nucleus) sampling with a seeded generator, so a fixed seed gives
// the same tokens on every run and every thread count.
#pragma once

#include <cstdint>
#include <vector>

namespace bitttt {

struct SamplerOptions {
    float temperature = 0.8f;  // 0 = greedy
    int top_k = 40;            // 0 = no limit
    float top_p = 0.95f;       // 1 = no limit
    std::uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplerOptions& options);
    // Chooses a token from logits[0..n). Greedy ties go to the lowest id.
    std::int32_t sample(const float* logits, std::int64_t n);

private:
    double uniform();  // [0, 1)

    SamplerOptions opt_;
    std::uint64_t state_[4];  // xoshiro256**
    std::vector<std::pair<float, std::int32_t>> cand_;
};

// Index of the largest logit (lowest index on ties).
std::int32_t argmax(const float* logits, std::int64_t n);

}  // namespace bitttt
