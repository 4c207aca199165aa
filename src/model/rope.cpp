#include "model/rope.h"

#include <atomic>
#include <cmath>

#include "kernels/ops.h"

namespace bitttt {

namespace {

// Each Rope's identity for the per-thread angle cache (an address could be reused by a
// later Rope with other frequencies).
std::atomic<std::uint64_t> g_next_rope_id{1};

// cos / sin of the last (Rope, position) this thread rotated for: q and k of every layer
// share one position, so the 2 * layers calls per token compute them once.
struct AngleCache {
    std::uint64_t rope_id = 0;
    std::int64_t pos = -1;
    std::vector<float> cos, sin;
};
thread_local AngleCache t_angles;

}  // namespace

Rope::Rope(const LlamaConfig& config)
    : head_dim_(config.head_dim), inv_freq_(rope_inv_freq(config)), id_(g_next_rope_id.fetch_add(1)) {}

void Rope::apply(float* vec, std::int64_t n_heads, std::int64_t pos) const {
    AngleCache& a = t_angles;
    if (a.rope_id != id_ || a.pos != pos) {
        const std::size_t half = inv_freq_.size();
        a.cos.resize(half);
        a.sin.resize(half);
        for (std::size_t i = 0; i < half; ++i) {
            // float32 angle, as HF computes position * inv_freq.
            const float angle = static_cast<float>(pos) * inv_freq_[i];
            a.cos[i] = std::cos(angle);
            a.sin[i] = std::sin(angle);
        }
        a.rope_id = id_;
        a.pos = pos;
    }
    kernels::rope(vec, n_heads, head_dim_, a.cos.data(), a.sin.data());
}

}  // namespace bitttt
