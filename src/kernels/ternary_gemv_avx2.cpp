// AVX2 ternary GEMV over the .btt block layout (compiled with -mavx2 -mfma -mf16c for this
// file, its batched form ternary_gemv_avx2_batch.cpp and their shared helpers
// ternary_gemv_avx2_tile.h only; called only when kernels::avx2_available()).
//
// Bit-identical to ternary_gemv_ref: every (row, block, base) integer sum is exact, and the
// float part does, per row, acc += f16(scale) * float(dot) for b = 0.., k = 0.. in order, then
// y = acc * x_scale, with separate multiplies and adds (no FMA; built with -ffp-contract=off).
// Tied scales: per block the K int32 sums are combined as level = sum_k 3^(K-1-k) * dot_k
// (Horner in the int32 accumulators, exact), then acc += (f16(s) * tied_multiplier(K)) *
// float(level), as in the reference.
// Two-level scales (8-bit sub-scales u under a binary16 super-scale d per row and slot):
// the block's scale is d * float(u), formed as its own multiply (exact in binary32, so it is
// the reference's value) before it meets the dot or the tied multiplier. The eight rows'
// super-scales are converted once per tile, the sub-scales loaded per block; the choice is
// a template parameter, so the 16-bit path carries no two-level work or branches.
//
// Integer part. Trit position p = j + G*d lives in digit d of group byte j, so digit d of
// the group's bytes [16c, 16c+16) lines up with activation positions G*d + 16c + [0, 16).
// The activations are re-laid once per call in exactly that order ("digit-major": one
// 16-byte slice per (block, digit, chunk), zero where the byte index is >= G or the
// position is >= B) and summed per block. A 256-bit register holds the same 16 group bytes
// of two rows (row i in the low half, row i+4 in the high half), the activation slice is
// broadcast to both halves, and per digit one maddubs gives int16 pair sums:
//   2bit : c_d = min((byte >> 2d) & 3, 2) (the min makes a corrupt code 3 count as +1, as in
//          the reference); maddubs(c_d, q_d) = sum(c * q), and sum(t * q) = sum(c * q) -
//          sum(q over the block) since t = c - 1.
//   dense: c_d = (3 x_d) >> 8, x_{d+1} = 3 x_d mod 256, x_0 = byte (docs/FORMAT.md). With
//          xs = x ^ 0x80 as a signed byte, xs_{d+1} = 3 xs_d (wrapping adds) and
//          t_d = (xs_d < -42) ? -1 : (xs_d > 42) ? +1 : 0 (two compares and a subtract, no
//          multiplies); maddubs(1, sign(q_d, t_d)) = sum(t * q).
// Lanes past the group read neighbouring bytes (other bases, the next block), harmless
// since their activations are zero; rows whose reads would pass the end of the tensor are
// read from a zero-padded copy. Eight rows are done at once (four registers of two rows);
// three hadds reduce the four int32 accumulators to the eight rows' block sums in lane
// order, and eight float lanes carry the eight rows' accumulators.
//
// Measured alternatives (AMD Zen 5, 4096 x 4096, one thread): dense via c = |m1 + m2| and
// maddubs(c, q) was 13% slower (GCC turned one compare into min + compare); a compile-time
// chunk count gives +15% at B = 64; the software prefetch costs <= 8% from cache and gains
// 40-70% at N = 1 from DRAM; dropping the 2bit min would gain ~10% but break equality with
// the reference on corrupt files; 32-byte pre-broadcast activation slices were no faster
// than broadcasting loads of 16-byte ones (which halve the L1 footprint).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ternary_gemv.h"
#include "kernels/ternary_gemv_avx2_tile.h"

namespace bitttt::kernels {

namespace {

using namespace maddubs;

struct Scratch {
    TernaryInput input;               // ternary_gemv_avx2's own preparation
    std::vector<std::uint8_t> tail;   // rows near the end of the tensor, padded
};

thread_local Scratch t_scratch;

// sum over digits of maddubs(code_d(g), q_d): int16 lanes, each <= 4 * 508 (2bit).
inline __m256i dot_2bit(__m256i g, const Slice* q, int chunks) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i two = _mm256_set1_epi8(2);
    const __m256i c0 = _mm256_min_epu8(_mm256_and_si256(g, m3), two);
    const __m256i c1 = _mm256_min_epu8(_mm256_and_si256(_mm256_srli_epi16(g, 2), m3), two);
    const __m256i c2 = _mm256_min_epu8(_mm256_and_si256(_mm256_srli_epi16(g, 4), m3), two);
    const __m256i c3 = _mm256_min_epu8(_mm256_and_si256(_mm256_srli_epi16(g, 6), m3), two);
    const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(c0, qload(q)), _mm256_maddubs_epi16(c1, qload(q + chunks)));
    const __m256i s23 =
        _mm256_add_epi16(_mm256_maddubs_epi16(c2, qload(q + 2 * chunks)), _mm256_maddubs_epi16(c3, qload(q + 3 * chunks)));
    return _mm256_add_epi16(s01, s23);
}

// sum over digits of maddubs(1, sign(q_d, t_d)): int16 lanes, each <= 5 * 254 (dense).
inline __m256i dot_dense(__m256i g, const Slice* q, int chunks) {
    const __m256i lo = _mm256_set1_epi8(-42);
    const __m256i hi = _mm256_set1_epi8(42);
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i xs = _mm256_xor_si256(g, _mm256_set1_epi8(static_cast<char>(0x80)));
    __m256i sum = _mm256_setzero_si256();
    for (int d = 0; d < 5; ++d) {
        const __m256i t = _mm256_sub_epi8(_mm256_cmpgt_epi8(lo, xs), _mm256_cmpgt_epi8(xs, hi));
        sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(ones, _mm256_sign_epi8(qload(q + d * chunks), t)));
        if (d < 4) xs = _mm256_add_epi8(xs, _mm256_add_epi8(xs, xs));
    }
    return sum;
}

// Up to eight rows: NP pairs (lo[p], hi[p]). out[lane] = that row's acc * x_scale.
// CT: the chunk count if known at compile time, else 0.
// T: tied scales, L: two-level scales (compile-time choices, so the free-scale 16-bit code
// has no tied or two-level branches).
template <Packing P, int NP, int CT, bool T, bool L>
void tile(const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi, float x_scale, float* out) {
    const int C = CT ? CT : cx.chunks;
    const TileScales<NP, L> sc(cx, lo, hi);
    const std::size_t scales_bytes = sc.groups(cx);
    __m256 acc = _mm256_setzero_ps();
    for (std::int64_t b = 0; b < cx.nblocks; ++b) {
        const std::size_t boff = sc.block(cx, b);
        const Slice* qb = cx.q + b * cx.digits * C;
        // 2bit: sum(t * q) = sum(c * q) - sum(q); tied: the bases' sums of q weigh tied_sum.
        const __m256i sumq = _mm256_set1_epi32(T ? cx.sums[b] * cx.tied_sum : cx.sums[b]);
        prefetch_block<NP>(lo, hi, boff, cx.block_bytes);
        __m256i a32[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256()};
        for (int k = 0; k < cx.k_bases; ++k) {
            const std::size_t goff = boff + scales_bytes + static_cast<std::size_t>(k) * static_cast<std::size_t>(cx.g);
            if constexpr (T) {
                // Horner over the bases in the int32 accumulators: reduced once per block.
                for (int p = 0; p < NP; ++p) a32[p] = _mm256_add_epi32(a32[p], _mm256_add_epi32(a32[p], a32[p]));
            } else {
                for (int p = 0; p < 4; ++p) a32[p] = _mm256_setzero_si256();
            }
            __m256i a16[NP];
            for (int p = 0; p < NP; ++p) a16[p] = _mm256_setzero_si256();
            int pending = 0;
            for (int c = 0; c < C; ++c) {
                const std::size_t off = goff + static_cast<std::size_t>(c) * kChunk;
                for (int p = 0; p < NP; ++p) {
                    const __m256i g = load_pair(lo[p] + off, hi[p] + off);
                    const __m256i s = P == Packing::TwoBit ? dot_2bit(g, qb + c, C) : dot_dense(g, qb + c, C);
                    a16[p] = _mm256_add_epi16(a16[p], s);
                }
                if (++pending == kMaxChunksInt16 || c == C - 1) {
                    widen<NP>(a16, a32);
                    pending = 0;
                }
            }
            if constexpr (!T) {
                // Lanes [p0.lo p1.lo p2.lo p3.lo | p0.hi p1.hi p2.hi p3.hi]: the rows' sum(c * q)
                // (2bit) or sum(t * q) (dense).
                const __m256i h = reduce_pairs(a32);
                const __m256i dot = P == Packing::TwoBit ? _mm256_sub_epi32(h, sumq) : h;
                const __m256 scale = sc.at(lo, hi, boff, k);
                acc = _mm256_add_ps(acc, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(dot)));
            }
        }
        if (T && cx.k_bases > 0) {
            // level = sum_k 3^(K-1-k) * dot_k. The 2bit lanes (sums of codes c = t + 1) may
            // wrap in int32 on the way, but wrapping adds are exact modulo 2^32 and the level
            // itself fits (|level| <= 3280 * 127 * 4096 < 2^31), so it comes out exact.
            const __m256i h = reduce_pairs(a32);
            const __m256i level = P == Packing::TwoBit ? _mm256_sub_epi32(h, sumq) : h;
            const __m256 scale = _mm256_mul_ps(sc.at(lo, hi, boff, 0), _mm256_set1_ps(cx.tied_mult));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(level)));
        }
    }
    _mm256_storeu_ps(out, _mm256_mul_ps(acc, _mm256_set1_ps(x_scale)));
}

template <Packing P, int CT, bool T, bool L>
void run_tile_c(int np, const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi, float x_scale,
                float* out) {
    switch (np) {
        case 1: tile<P, 1, CT, T, L>(cx, lo, hi, x_scale, out); break;
        case 2: tile<P, 2, CT, T, L>(cx, lo, hi, x_scale, out); break;
        case 3: tile<P, 3, CT, T, L>(cx, lo, hi, x_scale, out); break;
        default: tile<P, 4, CT, T, L>(cx, lo, hi, x_scale, out); break;
    }
}

// The chunk count is a compile-time constant for the common groups (1 chunk: 2bit B = 64,
// dense B <= 80; 2 chunks: 2bit B = 128, dense B <= 160).
template <Packing P, bool T, bool L>
void run_tile(int np, const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi, float x_scale,
              float* out) {
    if (cx.chunks == 1) run_tile_c<P, 1, T, L>(np, cx, lo, hi, x_scale, out);
    else if (cx.chunks == 2) run_tile_c<P, 2, T, L>(np, cx, lo, hi, x_scale, out);
    else run_tile_c<P, 0, T, L>(np, cx, lo, hi, x_scale, out);
}

// The single-input instance for a packing, tied scales and two-level scales.
using TileFn = void (*)(int, const Ctx&, const std::uint8_t* const*, const std::uint8_t* const*, float, float*);

template <Packing P, bool T>
TileFn tile_fn(bool two_level) {
    return two_level ? &run_tile<P, T, true> : &run_tile<P, T, false>;
}

TileFn tile_fn(Packing p, bool tied, bool two_level) {
    if (p == Packing::TwoBit) {
        return tied ? tile_fn<Packing::TwoBit, true>(two_level) : tile_fn<Packing::TwoBit, false>(two_level);
    }
    return tied ? tile_fn<Packing::Dense, true>(two_level) : tile_fn<Packing::Dense, false>(two_level);
}

// Re-lays in.q (blocks * B values) digit-major into in.slices and computes the block sums.
// Vectorised: ~1 us for 4096 columns.
void relay_activations(TernaryInput& in) {
    const int bs = in.block_size;
    const int digits = digits_of(in.packing);
    const int g = static_cast<int>(group_bytes(in.packing, bs));
    const int chunks = chunks_of(g);
    const std::int64_t q_len = static_cast<std::int64_t>(in.q.size());
    const std::int64_t nb = q_len / bs;
    const std::int8_t* q = in.q.data();
    in.slices.resize(static_cast<std::size_t>(nb * digits * chunks));
    in.block_sums.resize(static_cast<std::size_t>(nb));
    alignas(16) static constexpr std::int8_t kOnes[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                          0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0};
    for (std::int64_t b = 0; b < nb; ++b) {
        const std::int8_t* qb = q + b * bs;
        std::int32_t sum = 0;
        for (int i = 0; i < bs; ++i) sum += qb[i];
        in.block_sums[static_cast<std::size_t>(b)] = sum;
        Slice* dst = &in.slices[static_cast<std::size_t>(b * digits * chunks)];
        for (int d = 0; d < digits; ++d) {
            const int len = std::min(g, bs - g * d);  // activations of this digit (may be <= 0)
            for (int c = 0; c < chunks; ++c, ++dst) {
                const int n = std::clamp(len - c * kChunk, 0, kChunk);  // valid lanes of this slice
                const std::int64_t start = b * bs + g * d + c * kChunk;
                __m128i v = _mm_setzero_si128();
                if (n > 0 && start + kChunk <= q_len) {
                    // Lanes >= n belong to other positions: masked to zero.
                    const __m128i keep = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kOnes + kChunk - n));
                    v = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + start)), keep);
                } else if (n > 0) {  // the last slices of the vector: never read past q's end
                    alignas(16) std::int8_t tmp[kChunk] = {};
                    std::memcpy(tmp, q + start, static_cast<std::size_t>(n));
                    v = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
                }
                _mm_store_si128(reinterpret_cast<__m128i*>(dst), v);
            }
        }
    }
}

}  // namespace

void prepare_ternary_input_avx2(TernaryInput& in) { relay_activations(in); }

void ternary_gemm_avx2(const TernaryLayout& layout, const std::uint8_t* data, int k_bases,
                       const TernaryInput* const* in, int m, std::int64_t r0, std::int64_t r1, float* y,
                       std::int64_t ldy) {
    if (r1 <= r0 || m <= 0) return;
    Scratch& s = t_scratch;
    const int digits = digits_of(layout.packing);
    const int g = static_cast<int>(layout.group_bytes());
    const int chunks = chunks_of(g);

    const std::size_t row_bytes = layout.row_bytes();
    // Chunk loads may run up to `overread` bytes past a row's last group: rows that close to
    // the end of the tensor are read from a zero-padded copy instead.
    const std::size_t overread = static_cast<std::size_t>(chunks * kChunk - g);
    std::int64_t r_safe = layout.rows;
    while (r_safe > 0 && static_cast<std::size_t>(layout.rows - r_safe) * row_bytes < overread) --r_safe;
    if (r1 > r_safe) {
        const std::size_t n = static_cast<std::size_t>(layout.rows - r_safe) * row_bytes;
        s.tail.assign(n + 2 * kChunk, 0);
        std::memcpy(s.tail.data(), data + static_cast<std::size_t>(r_safe) * row_bytes, n);
    }
    auto row_ptr = [&](std::int64_t r) -> const std::uint8_t* {
        return r < r_safe ? data + static_cast<std::size_t>(r) * row_bytes
                          : s.tail.data() + static_cast<std::size_t>(r - r_safe) * row_bytes;
    };

    // Tied with K = 1 is the free computation (s * 1.0f is exact; the one scale and the
    // groups sit where a free layout's first scale and groups are), so it takes the free path.
    const bool tied = layout.tied() && k_bases > 1;
    std::int32_t tied_sum = 0;
    for (int k = 0; k < k_bases; ++k) tied_sum += tied_weight(k_bases, k);
    Ctx cx{layout.blocks_per_row(), layout.scale_count(), k_bases, tied, tied_multiplier(k_bases), tied_sum, g, chunks,
           digits, layout.block_bytes(), layout.row_header_bytes(), nullptr, nullptr};
    const TileFn one = tile_fn(layout.packing, tied, layout.two_level());
    const TileBatchFn batch = tile_batch_fn(layout.packing, tied, layout.two_level());
    for (std::int64_t r = r0; r < r1; r += 8) {
        const int n = static_cast<int>(std::min<std::int64_t>(8, r1 - r));
        const int np = (n + 1) / 2;
        // Row i of the tile is pair i % np, half i / np (lane (i / np) * 4 + i % np); a
        // missing last row repeats row n - 1 and is not stored.
        const std::uint8_t* lo[4];
        const std::uint8_t* hi[4];
        for (int p = 0; p < np; ++p) {
            lo[p] = row_ptr(r + p);
            hi[p] = row_ptr(r + std::min(np + p, n - 1));
        }
        if (m > 1 && k_bases <= 8) {
            // Decoded once per block, applied to all m inputs: the matrix is streamed and
            // decoded once per batch.
            thread_local std::vector<float> outs;
            outs.resize(static_cast<std::size_t>(8 * m));
            batch(np, cx, lo, hi, in, m, outs.data());
            for (int j = 0; j < m; ++j) {
                float* yj = y + j * ldy + (r - r0);
                for (int i = 0; i < n; ++i) yj[i] = outs[static_cast<std::size_t>(8 * j + (i / np) * 4 + i % np)];
            }
            continue;
        }
        for (int j = 0; j < m; ++j) {
            cx.q = in[j]->slices.data();
            cx.sums = in[j]->block_sums.data();
            alignas(32) float out[8];
            one(np, cx, lo, hi, in[j]->scale, out);
            float* yj = y + j * ldy + (r - r0);
            for (int i = 0; i < n; ++i) yj[i] = out[(i / np) * 4 + i % np];
        }
    }
}

void ternary_gemv_avx2(const TernaryLayout& layout, const std::uint8_t* data, int k_bases, const std::int8_t* q,
                       float x_scale, std::int64_t r0, std::int64_t r1, float* y) {
    if (r1 <= r0) return;
    TernaryInput& in = t_scratch.input;
    in.cols = layout.cols;
    in.block_size = layout.block_size;
    in.packing = layout.packing;
    in.scale = x_scale;
    in.q.assign(q, q + layout.blocks_per_row() * layout.block_size);
    relay_activations(in);
    const TernaryInput* one = &in;
    ternary_gemm_avx2(layout, data, k_bases, &one, 1, r0, r1, y, 0);
}

}  // namespace bitttt::kernels
