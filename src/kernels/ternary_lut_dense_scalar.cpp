// The lookup-table GEMV over dense tiles (3 trits in 5 bits; ternary_lut.h, "Dense"):
// the reference table build and the scalar GEMV the AVX2 kernel is tested against.
#include "bitttt/dtype.h"
#include "kernels/ternary_lut.h"

namespace bitttt::kernels {

namespace {

// The balanced-ternary digits (t0, t1, t2) of every table entry e = 9 t0 + 3 t1 + t2 in
// 0..13 (entries 14 and 15 are never written: all zero).
struct TripleDigits {
    std::int8_t t[16][3];
    constexpr TripleDigits() : t() {
        for (int e = 0; e < 14; ++e) {
            int v = e;
            for (int i = 2; i >= 0; --i) {
                int d = v % 3;
                if (d == 2) d = -1;
                t[e][i] = static_cast<std::int8_t>(d);
                v = (v - d) / 3;
            }
        }
    }
};
constexpr TripleDigits kDigits;

}  // namespace

void lut_prepare_dense_ref(const TernaryLayout& layout, const std::int8_t* q, std::uint8_t* tables) {
    const int bs = layout.block_size;
    // One record per triple, their count rounded up to even (a whole index byte's worth;
    // the extra record is all zero): index byte j's high nibble always has a table.
    const int n_records = 2 * static_cast<int>(layout.tile_index_bytes());
    for (std::int64_t b = 0; b < layout.blocks_per_row(); ++b) {
        for (int g = 0; g < n_records; ++g) {
            int qs[3];
            for (int i = 0; i < 3; ++i) qs[i] = 3 * g + i < bs ? q[b * bs + 3 * g + i] : 0;
            std::uint8_t* rec = tables + (static_cast<std::size_t>(b) * static_cast<std::size_t>(n_records) +
                                          static_cast<std::size_t>(g)) * 32;
            for (int e = 0; e < 16; ++e) {
                const int v = kDigits.t[e][0] * qs[0] + kDigits.t[e][1] * qs[1] + kDigits.t[e][2] * qs[2];
                const int h = (v + 20 * kDenseSplit) / kDenseSplit - 20;  // floor(v / kDenseSplit) (v + 400 > 0)
                rec[e] = static_cast<std::uint8_t>(v - kDenseSplit * h);
                rec[16 + e] = static_cast<std::uint8_t>(static_cast<std::int8_t>(h));
            }
        }
    }
}

void lut_gemv_dense_ref(const LutWeights& w, int k_bases, const std::uint8_t* tables, float x_scale, std::int64_t r0,
                        std::int64_t r1, float* y) {
    const int n_triples = w.layout.tile_triples();
    const std::size_t index_bytes = w.layout.tile_index_bytes();
    lut_gemv_ref_frame(w, k_bases, tables, index_bytes * 64, x_scale, r0, r1, y,
                       [&](const std::uint8_t* idx, const std::uint8_t* tab) {
                           const std::uint8_t* sgn = idx + index_bytes * kLutTileRows;
                           std::int32_t dot = 0;
                           for (int g = 0; g < n_triples; ++g) {
                               const int e = (idx[(g / 2) * kLutTileRows] >> (4 * (g % 2))) & 15;
                               const std::uint8_t* rec = tab + 32 * static_cast<std::size_t>(g);
                               const int v = kDenseSplit * static_cast<std::int8_t>(rec[16 + e]) + rec[e];
                               dot += ((sgn[(g / 8) * kLutTileRows] >> (g % 8)) & 1) ? -v : v;
                           }
                           return dot;
                       });
}

}  // namespace bitttt::kernels
