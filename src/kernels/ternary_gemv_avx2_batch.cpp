// The batched path of the maddubs AVX2 ternary kernel (m > 1 inputs): decode once, use for
// every input. Compiled with -mavx2 -mfma -mf16c -ffp-contract=off, as ternary_gemv_avx2.cpp.
//
// For a prompt the same weights meet m activation vectors. Decoding the trits costs more
// than the multiply-adds (2bit: and/shift/min per digit; dense: three compares and two
// adds per digit), so each block of the tile is decoded once into codes c in {0, 1, 2}
// (dense too: c = t + 1), kept in L1, and every input then needs only
// maddubs(c, q) per digit, minus its block sum of q. Integer sums and float order per
// input are those of the reference, so outputs stay bit-identical.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/ternary_gemv_avx2_tile.h"

namespace bitttt::kernels::maddubs {

namespace {

// Codes c_d of the digits of 32 group bytes (two rows' 16-byte chunks).
// 32-byte registers held in std::vector (vector<__m256i> drops the type's attributes).
struct alignas(32) Codes {
    __m256i v;
};
struct alignas(32) Accum {
    __m256 v;
};

template <Packing P>
inline void decode_codes(__m256i g, Codes* c) {
    if constexpr (P == Packing::TwoBit) {
        const __m256i m3 = _mm256_set1_epi8(3);
        const __m256i two = _mm256_set1_epi8(2);
        c[0].v = _mm256_min_epu8(_mm256_and_si256(g, m3), two);
        c[1].v = _mm256_min_epu8(_mm256_and_si256(_mm256_srli_epi16(g, 2), m3), two);
        c[2].v = _mm256_min_epu8(_mm256_and_si256(_mm256_srli_epi16(g, 4), m3), two);
        c[3].v = _mm256_min_epu8(_mm256_and_si256(_mm256_srli_epi16(g, 6), m3), two);
    } else {
        const __m256i lo = _mm256_set1_epi8(-42);
        const __m256i hi = _mm256_set1_epi8(42);
        const __m256i ones = _mm256_set1_epi8(1);
        __m256i xs = _mm256_xor_si256(g, _mm256_set1_epi8(static_cast<char>(0x80)));
        for (int d = 0; d < 5; ++d) {
            const __m256i t = _mm256_sub_epi8(_mm256_cmpgt_epi8(lo, xs), _mm256_cmpgt_epi8(xs, hi));
            c[d].v = _mm256_add_epi8(t, ones);
            if (d < 4) xs = _mm256_add_epi8(xs, _mm256_add_epi8(xs, xs));
        }
    }
}

struct BatchScratch {
    std::vector<Codes> codes;  // [k][c][p][d] of the current block
    std::vector<Accum> acc;    // [j] the tile's eight float accumulators per input
};

thread_local BatchScratch t_batch;

// Up to eight rows (NP pairs, as in tile()) for m inputs: out[j * 8 + lane].
template <Packing P, int NP, int CT, bool T, bool L>
void tile_batch(const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi,
                const TernaryInput* const* in, int m, float* out) {
    constexpr int D = P == Packing::TwoBit ? 4 : 5;
    const int C = CT ? CT : cx.chunks;
    const int K = cx.k_bases;
    const TileScales<NP, L> sc(cx, lo, hi);
    const std::size_t scales_bytes = sc.groups(cx);
    BatchScratch& bs = t_batch;
    bs.codes.resize(static_cast<std::size_t>(K) * static_cast<std::size_t>(C) * NP * D);
    bs.acc.assign(static_cast<std::size_t>(m), Accum{_mm256_setzero_ps()});
    Codes* codes = bs.codes.data();
    __m256 scale[8];  // per base (K <= 8 is checked by the caller); tied: scale[0] * tied_mult
    for (std::int64_t b = 0; b < cx.nblocks; ++b) {
        const std::size_t boff = sc.block(cx, b);
        prefetch_block<NP>(lo, hi, boff, cx.block_bytes);
        for (int k = 0; k < K; ++k) {
            const std::size_t goff = boff + scales_bytes + static_cast<std::size_t>(k) * static_cast<std::size_t>(cx.g);
            for (int c = 0; c < C; ++c) {
                const std::size_t off = goff + static_cast<std::size_t>(c) * kChunk;
                for (int p = 0; p < NP; ++p) {
                    decode_codes<P>(load_pair(lo[p] + off, hi[p] + off), codes + ((k * C + c) * NP + p) * D);
                }
            }
            if constexpr (!T) scale[k] = sc.at(lo, hi, boff, k);
        }
        if constexpr (T) scale[0] = _mm256_mul_ps(sc.at(lo, hi, boff, 0), _mm256_set1_ps(cx.tied_mult));
        for (int j = 0; j < m; ++j) {
            const Slice* qb = in[j]->slices.data() + b * D * C;
            const std::int32_t bsum = in[j]->block_sums[static_cast<std::size_t>(b)];
            const __m256i sumq = _mm256_set1_epi32(T ? bsum * cx.tied_sum : bsum);
            __m256 acc = bs.acc[static_cast<std::size_t>(j)].v;
            __m256i a32[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                              _mm256_setzero_si256()};
            for (int k = 0; k < K; ++k) {
                if constexpr (T) {  // Horner in the int32 accumulators, as in tile()
                    for (int p = 0; p < NP; ++p) a32[p] = _mm256_add_epi32(a32[p], _mm256_add_epi32(a32[p], a32[p]));
                } else {
                    for (int p = 0; p < 4; ++p) a32[p] = _mm256_setzero_si256();
                }
                __m256i a16[NP];
                for (int p = 0; p < NP; ++p) a16[p] = _mm256_setzero_si256();
                int pending = 0;
                for (int c = 0; c < C; ++c) {
                    __m256i q[D];
                    for (int d = 0; d < D; ++d) q[d] = qload(qb + d * C + c);
                    for (int p = 0; p < NP; ++p) {
                        const Codes* cd = codes + ((k * C + c) * NP + p) * D;
                        __m256i s = _mm256_maddubs_epi16(cd[0].v, q[0]);
                        for (int d = 1; d < D; ++d) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(cd[d].v, q[d]));
                        a16[p] = _mm256_add_epi16(a16[p], s);
                    }
                    // int16 lanes: <= D * 508 per chunk (codes <= 2, |q| <= 127).
                    if (++pending == kMaxChunksInt16 || c == C - 1) {
                        widen<NP>(a16, a32);
                        pending = 0;
                    }
                }
                if constexpr (!T) {
                    const __m256i dot = _mm256_sub_epi32(reduce_pairs(a32), sumq);
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(scale[k], _mm256_cvtepi32_ps(dot)));
                }
            }
            if (T && K > 0) {
                const __m256i level = _mm256_sub_epi32(reduce_pairs(a32), sumq);  // exact modulo 2^32
                acc = _mm256_add_ps(acc, _mm256_mul_ps(scale[0], _mm256_cvtepi32_ps(level)));
            }
            bs.acc[static_cast<std::size_t>(j)].v = acc;
        }
    }
    for (int j = 0; j < m; ++j) {
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(bs.acc[static_cast<std::size_t>(j)].v, _mm256_set1_ps(in[j]->scale)));
    }
}

template <Packing P, int CT, bool T, bool L>
void run_tile_batch_c(int np, const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi,
                      const TernaryInput* const* in, int m, float* out) {
    switch (np) {
        case 1: tile_batch<P, 1, CT, T, L>(cx, lo, hi, in, m, out); break;
        case 2: tile_batch<P, 2, CT, T, L>(cx, lo, hi, in, m, out); break;
        case 3: tile_batch<P, 3, CT, T, L>(cx, lo, hi, in, m, out); break;
        default: tile_batch<P, 4, CT, T, L>(cx, lo, hi, in, m, out); break;
    }
}

template <Packing P, bool T, bool L>
void run_tile_batch(int np, const Ctx& cx, const std::uint8_t* const* lo, const std::uint8_t* const* hi,
                    const TernaryInput* const* in, int m, float* out) {
    if (cx.chunks == 1) run_tile_batch_c<P, 1, T, L>(np, cx, lo, hi, in, m, out);
    else if (cx.chunks == 2) run_tile_batch_c<P, 2, T, L>(np, cx, lo, hi, in, m, out);
    else run_tile_batch_c<P, 0, T, L>(np, cx, lo, hi, in, m, out);
}

template <Packing P, bool T>
TileBatchFn pick(bool two_level) {
    return two_level ? &run_tile_batch<P, T, true> : &run_tile_batch<P, T, false>;
}

}  // namespace

TileBatchFn tile_batch_fn(Packing p, bool tied, bool two_level) {
    if (p == Packing::TwoBit) {
        return tied ? pick<Packing::TwoBit, true>(two_level) : pick<Packing::TwoBit, false>(two_level);
    }
    return tied ? pick<Packing::Dense, true>(two_level) : pick<Packing::Dense, false>(two_level);
}

}  // namespace bitttt::kernels::maddubs
