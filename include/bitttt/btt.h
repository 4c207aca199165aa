// The .btt file: one self-contained, memory-mappable file holding a converted model.
//
//   offset 0   "BTTT"                     magic (4 bytes)
//          4   u32 format version         (1; 2 with two-level scales; 3 with tiles)
//          8   u64 header_bytes           length of the JSON header
//         16   u64 data_offset            absolute offset of the data section (multiple of 64)
//         24   u64 header_xxh64           XXH64 (seed 0) of the JSON header bytes
//         32   JSON header (UTF-8), then padding up to data_offset
//   data_offset  tensor data; each tensor starts at a multiple of 64 bytes from data_offset
//
// All integers little-endian. docs/FORMAT.md has the full description, including the JSON
// fields and the ternary block layout (include/bitttt/ternary.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/int8.h"
#include "bitttt/mapped_file.h"
#include "bitttt/ternary.h"

namespace bitttt {

// Version 2 is version 1 plus two-level scales ("scale_bits": 8); version 3 adds the tiles
// arrangement of ternary tensors ("arrangement": "tiles"). A file is written with the
// oldest version that has every feature it uses (btt_version_needed), so that older
// readers read what they can and refuse the rest by its version. Readers read all three.
inline constexpr std::uint32_t kBttVersion = 3;
inline constexpr std::uint32_t kBttMinVersion = 1;
inline constexpr std::size_t kBttPreambleBytes = 32;
inline constexpr std::size_t kBttAlignment = 64;

enum class Encoding { Ternary, F32, F16, Int8 };
const char* encoding_name(Encoding e);  // "ternary", "f32", "f16", "int8"
// The encoding named `s` ("ternary", "f32", "f16", "int8"), or nullopt.
std::optional<Encoding> encoding_from_string(std::string_view s);

struct BttTensor {
    std::string name;
    std::vector<std::int64_t> shape;
    Encoding encoding = Encoding::F32;
    TernaryLayout layout;  // ternary only; rows/cols = the 2-D view of shape
    Int8Layout int8;       // int8 only; rows/cols = shape
    std::string method;    // ternary only: "greedy", "absmean", "absmean-tensor"
    std::uint64_t offset = 0;  // relative to the data section
    std::uint64_t size = 0;
    std::uint64_t xxh64 = 0;
    // Error statistics of the stored tensor against the source, ||W - W^|| / ||W||:
    // for ternary after 1..N bases; for f16 one entry (rounding error); empty for f32.
    std::vector<double> relative_error_by_base;
    std::vector<double> rmse_by_base;
    double norm = 0.0;  // ||W|| (Frobenius) of the source

    std::int64_t numel() const;
    nlohmann::json to_json() const;
    static BttTensor from_json(const nlohmann::json& j, const std::string& source);
};

// The format version a file with these tensors is written as (1, 2 or 3; see above).
std::uint32_t btt_version_needed(const std::vector<BttTensor>& tensors);

// XXH64 (seed 0) of a byte range.
std::uint64_t checksum64(const void* data, std::size_t n);
std::string checksum_hex(std::uint64_t h);

// A .btt file opened for reading (memory-mapped). The constructor validates the
// preamble, the header checksum, the JSON schema, every tensor's byte range (in bounds,
// aligned, not overlapping) and that every size matches its shape and encoding; it throws
// FormatError naming the file and tensor. Tensor checksums are verified on request.
class BttFile {
public:
    explicit BttFile(const std::string& path);

    const std::string& path() const { return file_.path(); }
    std::uint64_t file_size() const { return file_.size(); }
    std::uint32_t version() const { return version_; }
    const nlohmann::json& header() const { return header_; }
    const std::vector<BttTensor>& tensors() const { return tensors_; }
    const BttTensor* find(const std::string& name) const;
    // True when the file has no model config (a bare-safetensors conversion): it can be
    // inspected but not run.
    bool weights_only() const;

    const std::uint8_t* data(const BttTensor& t) const { return file_.data() + data_offset_ + t.offset; }
    std::uint64_t data_offset() const { return data_offset_; }
    // Drops a tensor's pages from this process's memory (they are read again from the
    // file if touched later): for weights the engine has copied into another layout.
    void release(const BttTensor& t) const { file_.release(data_offset_ + t.offset, t.size); }
    // Recomputes a tensor's XXH64; throws FormatError naming it on mismatch.
    void verify(const BttTensor& t) const;

private:
    MappedFile file_;
    std::uint32_t version_ = 0;
    std::uint64_t data_offset_ = 0;
    nlohmann::json header_;
    std::vector<BttTensor> tensors_;
    std::unordered_map<std::string, std::size_t> by_name_;  // name -> index in tensors_
};

// Writes a .btt file tensor by tensor, never holding more than the tensor being
// written. The output appears under its final name only after finish(); an exception,
// a signal or destruction before finish() leaves nothing behind.
class BttWriter {
public:
    // `header` holds everything but "tensors" (model, tokenizer, conversion...).
    // `expected_tensors` sizes the space reserved for the header in front of the data;
    // if the final header is larger, finish() moves the data (correct, just slower).
    BttWriter(const std::string& path, nlohmann::json header, std::size_t expected_tensors);
    ~BttWriter();
    BttWriter(const BttWriter&) = delete;
    BttWriter& operator=(const BttWriter&) = delete;

    // Appends a tensor whose bytes are all at hand. offset, size and xxh64 of `t` are
    // filled in here.
    void add(BttTensor t, const void* data, std::size_t nbytes);
    // Streams a tensor in pieces: begin_tensor, any number of append calls (in order),
    // end_tensor. Only one tensor may be open at a time.
    void begin_tensor(BttTensor t);
    void append(const void* data, std::size_t nbytes);
    // Closes the open tensor and returns its entry (offset, size, checksum set); the
    // caller may still fill in its statistics, which are written by finish().
    BttTensor& end_tensor();
    // Updates top-level header fields known only at the end (e.g. statistics).
    nlohmann::json& header() { return header_; }
    // Writes the header and renames the file into place. Returns the file size.
    std::uint64_t finish();

    const std::vector<BttTensor>& tensors() const { return tensors_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    nlohmann::json header_;
    std::vector<BttTensor> tensors_;
};

}  // namespace bitttt
