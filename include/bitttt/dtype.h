// Element types found in safetensors files, and exact conversions between the
// floating-point ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bitttt {

enum class DType {
    BOOL, U8, I8, I16, U16, I32, U32, I64, U64,
    F8_E4M3, F8_E5M2, F16, BF16, F32, F64,
};

// Parses a safetensors dtype string ("F32", "BF16", ...). nullopt if unknown.
std::optional<DType> dtype_from_string(std::string_view s);
// The safetensors spelling of a dtype.
const char* dtype_name(DType t);
// Bytes per element.
std::size_t dtype_size(DType t);
// True for the dtypes convert_to_f32 accepts: F32, F16, BF16.
bool dtype_is_float_convertible(DType t);

// IEEE binary16 -> binary32. Exact for every input (NaN payloads kept, subnormals exact).
float f16_to_f32(std::uint16_t h);
// binary32 -> binary16, round to nearest even. Overflow gives +-Inf, NaN stays a
// (quiet) NaN, values below the smallest subnormal round to +-0.
std::uint16_t f32_to_f16(float f);
// bfloat16 -> binary32. Exact.
float bf16_to_f32(std::uint16_t h);
// binary32 -> bfloat16, round to nearest even; NaN stays a quiet NaN.
std::uint16_t f32_to_bf16(float f);

// Converts `count` little-endian elements of type `src` at `data` (any alignment) to
// float. Throws UnsupportedError for dtypes other than F32, F16, BF16.
void convert_to_f32(DType src, const void* data, std::size_t count, float* out);

}  // namespace bitttt
