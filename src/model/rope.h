// Rotary position embeddings as Hugging Face Llama applies them ("rotate_half": element
// i of a head pairs with element i + head_dim/2), with rope_theta and rope_scaling
// (none, linear, llama3).
#pragma once

#include <cstdint>
#include <vector>

#include "bitttt/model_config.h"

namespace bitttt {

class Rope {
public:
    explicit Rope(const LlamaConfig& config);

    // Inverse frequencies [head_dim / 2] after scaling.
    const std::vector<float>& inv_freq() const { return inv_freq_; }
    // Rotates each of `n_heads` heads of `vec` ([n_heads * head_dim]) for position `pos`
    // (kernels::rope; the cosines and sines are cached per thread for the last position,
    // half a head of floats each, so repeated calls at one position compute them once).
    // Safe to call from several threads.
    void apply(float* vec, std::int64_t n_heads, std::int64_t pos) const;

private:
    std::int64_t head_dim_;
    std::vector<float> inv_freq_;
    std::uint64_t id_;  // identifies this Rope in the per-thread angle cache
};

}  // namespace bitttt
