// The one-scale ternary fits of one block (see include/bitttt/decompose.h): the
// error-optimal fit that greedy residual fitting runs at every stage, and the BitNet b1.58
// rule; with the scale rounding they share. The row-by-row decomposition that calls them
// is decompose.cpp.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "bitttt/decompose.h"
#include "bitttt/dtype.h"
#include "bitttt/error.h"
#include "convert/residual_sums.h"

namespace bitttt {

namespace {

// Largest block fit_ternary_optimal handles (TernaryLayout::validate allows up to 4096).
constexpr int kMaxFitN = 4096;
// 1/m for m = 0..kMaxFitN (entry 0 unused).
constexpr auto kInverse = [] {
    std::array<double, kMaxFitN + 1> inv{};
    for (int m = 1; m <= kMaxFitN; ++m) inv[static_cast<std::size_t>(m)] = 1.0 / m;
    return inv;
}();
// Largest finite binary16 value.
constexpr float kMaxF16 = 65504.0f;

inline std::uint32_t abs_bits(float x) {
    return std::bit_cast<std::uint32_t>(x) & 0x7fffffffu;
}

// Sorts n keys (bit patterns of non-negative floats, hence in [0, 2^31) and ordered like
// the floats) into out[0..n) in descending order. keys must have room for 8 more
// entries after n (used as padding).
//
// Small inputs use a rank sort: the rank of key i is the number of keys greater than
// it, so out[rank_i] = key_i places it directly. That is n^2 comparisons, but they are
// branch-free and 4-wide with SSE2, which beats a comparison sort's mispredicted
// branches up to a few hundred keys. Equal keys share one rank and write the same
// slot; the slots after it (as many as there are duplicates) stay unwritten and are
// filled by copying forward.
constexpr int kRankSortMax = 192;

void sort_keys_descending(std::int32_t* keys, int n, std::int32_t* out) {
    if (n > kRankSortMax) {
        std::copy(keys, keys + n, out);
        std::sort(out, out + n, std::greater<std::int32_t>());
        return;
    }
    const int padded = (n + 7) & ~7;
    for (int j = n; j < padded; ++j) keys[j] = -1;  // never greater than a key
    for (int p = 0; p < n; ++p) out[p] = -1;        // "unwritten" marker
    for (int i = 0; i < n; ++i) {
#if defined(__SSE2__)
        const __m128i ki = _mm_set1_epi32(keys[i]);
        __m128i c0 = _mm_setzero_si128();
        __m128i c1 = _mm_setzero_si128();
        for (int j = 0; j < padded; j += 8) {
            // cmpgt gives -1 where keys[j] > keys[i]; subtracting counts them.
            c0 = _mm_sub_epi32(c0, _mm_cmpgt_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(keys + j)), ki));
            c1 = _mm_sub_epi32(c1, _mm_cmpgt_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(keys + j + 4)), ki));
        }
        c0 = _mm_add_epi32(c0, c1);
        c0 = _mm_add_epi32(c0, _mm_shuffle_epi32(c0, 0x4e));
        c0 = _mm_add_epi32(c0, _mm_shuffle_epi32(c0, 0xb1));
        const int rank = _mm_cvtsi128_si32(c0);
#else
        std::int32_t c[8] = {};
        for (int j = 0; j < padded; j += 8) {
            for (int u = 0; u < 8; ++u) c[u] += keys[j + u] > keys[i] ? 1 : 0;
        }
        const int rank = c[0] + c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7];
#endif
        out[rank] = keys[i];
    }
    for (int p = 1; p < n; ++p) {
        if (out[p] < 0) out[p] = out[p - 1];
    }
}

}  // namespace

const char* method_name(Method m) {
    switch (m) {
        case Method::Greedy: return "greedy";
        case Method::Absmean: return "absmean";
        case Method::AbsmeanTensor: return "absmean-tensor";
    }
    return "?";
}

std::optional<Method> method_from_string(std::string_view s) {
    if (s == "greedy") return Method::Greedy;
    if (s == "absmean") return Method::Absmean;
    if (s == "absmean-tensor") return Method::AbsmeanTensor;
    return std::nullopt;
}

// ---- the error-optimal one-scale ternary fit -------------------------------------------
//
// Minimise E(s, t) = sum_i (r_i - s t_i)^2 over s >= 0, t in {-1,0,1}^n.
// For s > 0 and a non-zero t_i the best sign is sign(r_i), so only the support
// A = {i : t_i != 0} matters. With m = |A| and S = sum_{i in A} |r_i|:
//     E = ||r||^2 - 2 s S + s^2 m,  minimised by s = S/m,  giving  E = ||r||^2 - S^2/m.
// So the fit maximises S^2/m over supports; for a fixed m the best support is the m
// largest |r_i|. Sorting |r| descending and scanning the prefix sums S_m for the m
// maximising S_m^2/m gives the exact optimum. (S_m^2/m is not unimodal in m, e.g.
// |r| = 1, 0.41, 0.41 gives 1, 0.994, 1.104, so the scan covers every m.)
//
// Only the sorted *values* are needed: once m is known, the support is every i with
// |r_i| above the m-th largest value a_(m), plus the lowest-index entries equal to it
// (tie-break by index), so the sort works on plain 32-bit keys (the bit patterns of
// non-negative floats order like unsigned integers) instead of (value, index) pairs.
// In exact arithmetic the optimum never takes part of a group of equal |r|: along a
// group of value a, (G + x a)^2 / (R + x) is decreasing then increasing in x, so its
// maximum is at an end of the group. The index tie-break is there for rounding only.
//
// Pruning. Every member a of an optimal support (m*, S*, s* = S*/m*) satisfies a > s*/2:
// dropping it must not help, S*^2/m* >= (S*-a)^2/(m*-1), which rearranges to
// a (2s* - a/m*) >= s*^2, hence a >= s*^2 / (2s* - a/m*) > s*/2. So any lower bound L on s*
// lets us discard every |r_i| <= L/2 before sorting:
//   - L = mu = mean |r| over all n: s*^2 m* = f* >= f(all) = n mu^2 and m* <= n.
//   - If every member is known to lie in a set K (all |r_i| above the current cut), then
//     m* <= |K| and f* >= f(K) = S_K^2/|K|, so s*^2 = f*/m* >= S_K^2/|K|^2: L = mean over K.
// The first bound keeps ~69% of a Gaussian block, one round of the second ~59% (the
// optimum itself is ~54%); the sort below is quadratic for small blocks, so this pays
// off (measured: more rounds do not). Bounds are computed in float; a 1e-3 relative
// margin keeps their rounding (< n * 2^-24 relative) on the safe side.

namespace {

constexpr int kRefinePasses = 1;
constexpr float kCutMargin = 0.5f * (1.0f - 1e-3f);

// Bit pattern of the cut for a lower bound `sum / count` on s*; 0 (no pruning) when the
// bound is not finite (overflow or NaN input).
inline std::int32_t cut_for(float sum, int count) {
    const float cut = sum / static_cast<float>(count) * kCutMargin;
    return std::isfinite(cut) ? static_cast<std::int32_t>(abs_bits(cut)) : 0;
}

// Sum and number of the |r_i| whose bit pattern is above `cut` (cut = -1 takes all).
// Eight independent lanes instead of one serial chain of float additions.
void sum_above(const float* r, int n, std::int32_t cut, float* sum, int* count) {
    int i = 0;
#if defined(__SSE2__)
    const __m128i abs_mask = _mm_set1_epi32(0x7fffffff);
    const __m128i vcut = _mm_set1_epi32(cut);
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    __m128i c0 = _mm_setzero_si128(), c1 = _mm_setzero_si128();
    for (; i + 8 <= n; i += 8) {
        const __m128i a0 = _mm_and_si128(_mm_castps_si128(_mm_loadu_ps(r + i)), abs_mask);
        const __m128i a1 = _mm_and_si128(_mm_castps_si128(_mm_loadu_ps(r + i + 4)), abs_mask);
        const __m128i m0 = _mm_cmpgt_epi32(a0, vcut);
        const __m128i m1 = _mm_cmpgt_epi32(a1, vcut);
        s0 = _mm_add_ps(s0, _mm_castsi128_ps(_mm_and_si128(a0, m0)));
        s1 = _mm_add_ps(s1, _mm_castsi128_ps(_mm_and_si128(a1, m1)));
        c0 = _mm_sub_epi32(c0, m0);
        c1 = _mm_sub_epi32(c1, m1);
    }
    alignas(16) float sl[4];
    alignas(16) std::int32_t cl[4];
    _mm_store_ps(sl, _mm_add_ps(s0, s1));
    _mm_store_si128(reinterpret_cast<__m128i*>(cl), _mm_add_epi32(c0, c1));
    float acc = (sl[0] + sl[1]) + (sl[2] + sl[3]);
    int cnt = (cl[0] + cl[1]) + (cl[2] + cl[3]);
#else
    float acc = 0.0f;
    int cnt = 0;
#endif
    for (; i < n; ++i) {
        const auto a = static_cast<std::int32_t>(abs_bits(r[i]));
        if (a > cut) {
            acc += std::bit_cast<float>(a);
            ++cnt;
        }
    }
    *sum = acc;
    *count = cnt;
}

}  // namespace

float fit_ternary_optimal(const float* r, int n, std::int8_t* t) {
    if (n <= 0) return 0.0f;
    if (n > kMaxFitN) {
        throw UsageError("ternary fit of " + std::to_string(n) + " values is out of range (allowed 1.." +
                         std::to_string(kMaxFitN) + ")");
    }

    // Lower bounds on s*: first the mean |r| over all n, then the mean over the entries
    // above that cut.
    float bound_sum = 0.0f;
    int count = 0;
    sum_above(r, n, -1, &bound_sum, &count);
    std::int32_t cut = cut_for(bound_sum, n);
    for (int pass = 0; pass < kRefinePasses; ++pass) {
        sum_above(r, n, cut, &bound_sum, &count);
        if (count == 0) break;
        cut = std::max(cut, cut_for(bound_sum, count));
    }

    // Candidate keys: bit patterns of |r_i| strictly above the cut. (NaN inputs are kept
    // as keys above every number; they make the prefix sums NaN, every comparison in the
    // scan fails and the fit degrades to all zeros rather than crashing.)
    alignas(16) std::int32_t keys[kMaxFitN + 8];
    alignas(16) std::int32_t sorted[kMaxFitN];
    int nk = 0;
    for (int i = 0; i < n; ++i) {
        const auto a = static_cast<std::int32_t>(abs_bits(r[i]));
        keys[nk] = a;
        nk += a > cut ? 1 : 0;
    }
    sort_keys_descending(keys, nk, sorted);

    // Scan the prefix sums (in double) for argmax S_m^2 / m. The running maximum is the
    // only loop-carried dependency besides the sum (one max per step, no branch), which
    // makes this several times faster than comparing cross-products against the best
    // (S, m) pair. 1/m comes from a table. Strict '>' keeps the smaller m on ties, and
    // m = 0 when everything is zero (or NaN).
    double sum = 0.0;
    double best_f = 0.0;
    double best_sum = 0.0;
    int best_m = 0;
    for (int j = 0; j < nk; ++j) {
        sum += static_cast<double>(std::bit_cast<float>(sorted[j]));
        const double f = sum * sum * kInverse[j + 1];
        const bool better = f > best_f;
        best_f = better ? f : best_f;
        best_sum = better ? sum : best_sum;
        best_m = better ? j + 1 : best_m;
    }

    if (best_m == 0) {
        std::memset(t, 0, static_cast<std::size_t>(n));
        return 0.0f;
    }

    // Threshold value and how many entries equal to it belong to the support.
    const std::int32_t thr = sorted[best_m - 1];
    int first_eq = best_m - 1;
    while (first_eq > 0 && sorted[first_eq - 1] == thr) --first_eq;
    int last_eq = best_m;  // one past the last key equal to thr
    while (last_eq < nk && sorted[last_eq] == thr) ++last_eq;
    const int ties_taken = best_m - first_eq;

    if (ties_taken == last_eq - first_eq) {
        // Every entry equal to the threshold is in: a branch-free, vectorisable pass.
        for (int i = 0; i < n; ++i) {
            const bool in = static_cast<std::int32_t>(abs_bits(r[i])) >= thr;
            const std::int8_t sgn = r[i] < 0.0f ? std::int8_t{-1} : std::int8_t{1};
            t[i] = in ? sgn : std::int8_t{0};
        }
    } else {
        // Only the lowest-index `ties_taken` entries equal to the threshold are in.
        int ties_left = ties_taken;
        for (int i = 0; i < n; ++i) {
            const auto a = static_cast<std::int32_t>(abs_bits(r[i]));
            bool in = a > thr;
            if (a == thr && ties_left > 0) {
                in = true;
                --ties_left;
            }
            t[i] = in ? (r[i] < 0.0f ? std::int8_t{-1} : std::int8_t{1}) : std::int8_t{0};
        }
    }
    return static_cast<float>(best_sum / static_cast<double>(best_m));
}

// ---- the BitNet b1.58 rule ---------------------------------------------------------------
//
// t_i = clamp(round(r_i / scale), -1, 1) with round half away from zero, i.e.
// t_i = sign(r_i) when |r_i / scale| >= 1/2 and 0 otherwise.

void fit_ternary_absmean(const float* r, int n, float scale, std::int8_t* t) {
    if (n <= 0) return;
    if (!(scale > 0.0f)) {
        std::memset(t, 0, static_cast<std::size_t>(n));
        return;
    }
    for (int i = 0; i < n; ++i) {
        const float x = r[i] / scale;
        t[i] = static_cast<std::int8_t>((x >= 0.5f ? 1 : 0) - (x <= -0.5f ? 1 : 0));
    }
}

float mean_abs(const float* r, int n) {
    if (n <= 0) return 0.0f;
    return static_cast<float>(residual_sums::abs_sum(r, n) / n);
}

float round_scale(float s) {
    if (!(s > 0.0f)) return 0.0f;  // negatives, zero and NaN
    if (s >= kMaxF16) return kMaxF16;
    return f16_to_f32(f32_to_f16(s));
}

}  // namespace bitttt
