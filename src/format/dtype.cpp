// Element types of safetensors files and exact float conversions.
//
// Everything here is plain integer bit manipulation: no F16C / AVX intrinsics (this
// file is built for baseline x86-64 and must give identical results everywhere), and
// no float arithmetic in the conversions, so the results do not depend on the FPU's
// rounding mode or on flush-to-zero / denormals-are-zero settings.
#include "bitttt/dtype.h"

#include <array>
#include <bit>
#include <cstring>

#include "bitttt/error.h"

namespace bitttt {

namespace {

struct DTypeDesc {
    DType type;
    const char* name;
    std::size_t size;
};

// Indexed by the enum's value (checked below).
constexpr std::array<DTypeDesc, 15> kDTypes{{
    {DType::BOOL, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
}};

constexpr bool table_matches_enum() {
    for (std::size_t i = 0; i < kDTypes.size(); ++i)
        if (static_cast<std::size_t>(kDTypes[i].type) != i) return false;
    return true;
}
static_assert(table_matches_enum(), "kDTypes must list the DType values in enum order");

const DTypeDesc& desc(DType t) {
    const auto i = static_cast<std::size_t>(t);
    if (i >= kDTypes.size()) throw UsageError("invalid DType value " + std::to_string(i));
    return kDTypes[i];
}

// ---- bit-level conversions (inline so convert_to_f32's loops can use them) -----------

inline float bits_to_float(std::uint32_t u) { return std::bit_cast<float>(u); }
inline std::uint32_t float_to_bits(float f) { return std::bit_cast<std::uint32_t>(f); }

inline std::uint32_t f16_bits_to_f32_bits(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;

    if (exp == 0x1F) {
        // Inf (mant == 0) or NaN: the 10 payload bits become the top of the f32 payload,
        // so the quiet bit and the payload survive unchanged.
        return sign | 0x7F800000u | (mant << 13);
    }
    if (exp != 0) {
        // Normal: rebias the exponent from 15 to 127.
        return sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    }
    if (mant == 0) return sign;  // +-0
    // Subnormal: value = mant * 2^-24. Shift the leading 1 up to bit 10 (the implicit bit
    // of a normal f16) and lower the exponent accordingly. Every f16 subnormal is a normal f32.
    const int shift = std::countl_zero(mant) - 21;  // mant has at most 10 bits: 21 = 32 - 11
    mant = (mant << shift) & 0x3FFu;
    const std::uint32_t e32 = static_cast<std::uint32_t>(127 - 15 + 1 - shift);
    return sign | (e32 << 23) | (mant << 13);
}

inline std::uint16_t f32_bits_to_f16_bits(std::uint32_t f) {
    const std::uint16_t sign = static_cast<std::uint16_t>((f >> 16) & 0x8000u);
    const std::uint32_t a = f & 0x7FFFFFFFu;  // magnitude bits

    if (a > 0x7F800000u) {
        // NaN: keep the top 10 payload bits and set the quiet bit, so that even a
        // signalling NaN whose payload lives in the low 13 bits stays a NaN.
        return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    }
    if (a >= 0x477FF000u) {
        // >= 65520 = 65504 + half an ulp: rounds (ties to even, 0x7BFF is odd) to Inf.
        // Also catches Inf itself.
        return static_cast<std::uint16_t>(sign | 0x7C00u);
    }
    if (a >= 0x38800000u) {
        // Result is a normal f16 (|f| >= 2^-14). Round the 23-bit mantissa to 10 bits,
        // nearest even: add 0xFFF plus the lowest kept bit, then truncate. A carry out of
        // the mantissa correctly bumps the exponent (and cannot reach Inf, see above).
        const std::uint32_t rounded = a + 0xFFFu + ((a >> 13) & 1u);
        return static_cast<std::uint16_t>(sign | ((rounded - ((127u - 15u) << 23)) >> 13));
    }
    // Result is subnormal or zero: m = round(|f| / 2^-24), with |f| = mant * 2^(e-150)
    // so m = mant * 2^(e-126), i.e. mant shifted right by 126 - e.
    const std::uint32_t e = a >> 23;
    if (e < 102) return sign;  // |f| < 2^-25: below half the smallest subnormal
    const std::uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126 - e;  // 14 .. 24
    std::uint32_t m = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (m & 1u))) ++m;  // may become 0x400: smallest normal
    return static_cast<std::uint16_t>(sign | m);
}

inline std::uint32_t bf16_bits_to_f32_bits(std::uint16_t h) {
    return static_cast<std::uint32_t>(h) << 16;
}

inline std::uint16_t f32_bits_to_bf16_bits(std::uint32_t f) {
    if ((f & 0x7FFFFFFFu) > 0x7F800000u) {
        // NaN: keep sign and top payload bits, force the quiet bit (bit 6 of bf16).
        return static_cast<std::uint16_t>((f >> 16) | 0x0040u);
    }
    // Round to nearest even on the low 16 bits. Overflow of the largest finite values
    // carries into the exponent and gives Inf, as it should.
    const std::uint32_t rounded = f + 0x7FFFu + ((f >> 16) & 1u);
    return static_cast<std::uint16_t>(rounded >> 16);
}

// Little-endian loads from possibly unaligned memory.
inline std::uint16_t load_le16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
[[maybe_unused]] inline std::uint32_t load_le32(const std::uint8_t* p) {
    if constexpr (std::endian::native == std::endian::little) {
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        return v;
    } else {
        return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
               (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
    }
}

}  // namespace

std::optional<DType> dtype_from_string(std::string_view s) {
    for (const auto& d : kDTypes)
        if (s == d.name) return d.type;
    return std::nullopt;
}

const char* dtype_name(DType t) { return desc(t).name; }

std::size_t dtype_size(DType t) { return desc(t).size; }

bool dtype_is_float_convertible(DType t) {
    return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

float f16_to_f32(std::uint16_t h) { return bits_to_float(f16_bits_to_f32_bits(h)); }

std::uint16_t f32_to_f16(float f) { return f32_bits_to_f16_bits(float_to_bits(f)); }

float bf16_to_f32(std::uint16_t h) { return bits_to_float(bf16_bits_to_f32_bits(h)); }

std::uint16_t f32_to_bf16(float f) { return f32_bits_to_bf16_bits(float_to_bits(f)); }

void convert_to_f32(DType src, const void* data, std::size_t count, float* out) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    switch (src) {
        case DType::F32:
            if constexpr (std::endian::native == std::endian::little) {
                if (count != 0) std::memcpy(out, p, count * sizeof(float));
            } else {
                for (std::size_t i = 0; i < count; ++i) out[i] = bits_to_float(load_le32(p + 4 * i));
            }
            return;
        case DType::F16:
            for (std::size_t i = 0; i < count; ++i)
                out[i] = bits_to_float(f16_bits_to_f32_bits(load_le16(p + 2 * i)));
            return;
        case DType::BF16:
            for (std::size_t i = 0; i < count; ++i)
                out[i] = bits_to_float(bf16_bits_to_f32_bits(load_le16(p + 2 * i)));
            return;
        default:
            throw UnsupportedError(std::string("cannot convert dtype ") + dtype_name(src) +
                                   " to float (only F32, F16 and BF16 are supported)");
    }
}

}  // namespace bitttt
