// Reading (memory-mapped, fully validated) and writing safetensors checkpoints:
// one file, a sharded set (model.safetensors.index.json + shards), or a model folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bitttt/dtype.h"
#include "bitttt/mapped_file.h"

namespace bitttt {

// "[4096, 14336]": a shape as error messages print it.
std::string format_shape(const std::vector<std::int64_t>& shape);

struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;  // empty for a scalar
    std::uint64_t begin = 0;          // data_offsets, relative to the start of the data section
    std::uint64_t end = 0;

    std::int64_t numel() const;       // product of shape (1 for a scalar)
    std::uint64_t nbytes() const { return end - begin; }
};

// One .safetensors file. The constructor validates everything and throws
// FormatError naming the file (and the tensor) on any problem:
//   - file shorter than 8 bytes, header length past the end of the file or absurdly large;
//   - header not valid JSON, not an object, entries missing dtype/shape/data_offsets
//     or with the wrong JSON types, negative dims;
//   - unknown dtype;
//   - data_offsets with begin > end, end past the end of the data section;
//   - byte size != numel * dtype size (overflow-checked);
//   - two tensors whose byte ranges overlap.
// A "__metadata__" entry is read as string -> string metadata.
class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path);

    const std::string& path() const { return file_.path(); }
    // Tensors in the order of their data offsets.
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find(const std::string& name) const;  // nullptr if absent
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // Absolute file offset of the data section (8 + header length).
    std::uint64_t data_offset() const { return data_offset_; }
    // Pointer to a tensor's raw bytes (little-endian, possibly unaligned).
    const std::uint8_t* data(const TensorInfo& t) const { return file_.data() + data_offset_ + t.begin; }
    std::uint64_t file_size() const { return file_.size(); }
    const MappedFile& mapped() const { return file_; }

private:
    MappedFile file_;
    std::uint64_t data_offset_ = 0;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
    std::map<std::string, std::size_t> by_name_;  // name -> position in tensors_
};

// A checkpoint: a single safetensors file, an index (model.safetensors.index.json)
// with its shards, or a folder containing either (model.safetensors preferred if both).
// In a folder, config.json and tokenizer.json are picked up when present.
class Checkpoint {
public:
    // Throws FormatError / IoError naming the path on failure. For an index: every
    // shard in the weight_map must open, and every tensor it names must be in that shard;
    // a tensor name present in two shards is an error.
    static Checkpoint open(const std::string& path);

    struct Entry {
        const SafetensorsFile* file;
        const TensorInfo* info;
    };

    // All tensors, sorted by (shard, data offset): reading them in this order streams each file.
    const std::vector<Entry>& tensors() const { return entries_; }
    const Entry* find(const std::string& name) const;  // nullptr if absent
    // Paths of config.json / tokenizer.json next to the weights, if found.
    const std::optional<std::string>& config_path() const { return config_path_; }
    const std::optional<std::string>& tokenizer_path() const { return tokenizer_path_; }
    // What the user pointed at, and the weight files it resolved to.
    const std::string& source() const { return source_; }
    std::vector<std::string> files() const;
    std::uint64_t total_bytes() const;  // sum of the weight files' sizes

    // Converts rows [row_begin, row_end) of a tensor to float. The tensor is viewed as
    // 2-D [rows, cols] with rows = shape[0] for 2+-D tensors and rows = 1 for 0-D/1-D
    // ones, cols = numel / rows. Throws UnsupportedError for non-float dtypes, naming
    // the tensor; UsageError if the row range is out of bounds.
    void read_rows_f32(const Entry& e, std::int64_t row_begin, std::int64_t row_end, float* out) const;
    // Reads a whole tensor as float.
    std::vector<float> read_f32(const Entry& e) const;
    // Drops the tensor's pages from resident memory (see MappedFile::release).
    void release(const Entry& e) const;

private:
    std::string source_;
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::vector<Entry> entries_;
    std::map<std::string, std::size_t> index_;  // name -> position in entries_
    std::optional<std::string> config_path_;
    std::optional<std::string> tokenizer_path_;
};

// Writes a safetensors file (tools and tests). Tensors are laid out in the order added,
// header padded with spaces to an 8-byte boundary, "__metadata__" {"format":"pt"} unless
// other metadata is given. Writes to a temporary file and renames on success.
class SafetensorsWriter {
public:
    void add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
             std::vector<std::uint8_t> bytes);
    // Adds a tensor whose bytes are produced later by `fill(dst, nbytes)`, so that
    // multi-GB synthetic checkpoints never sit in RAM; fill is called once, in order,
    // while write() streams the file.
    void add_generated(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                       std::function<void(std::uint8_t* dst, std::size_t nbytes)> fill);
    void set_metadata(std::map<std::string, std::string> md) { metadata_ = std::move(md); }
    void write(const std::string& path) const;

private:
    struct Pending {
        std::string name;
        DType dtype;
        std::vector<std::int64_t> shape;
        std::vector<std::uint8_t> bytes;
        std::function<void(std::uint8_t*, std::size_t)> fill;
    };
    std::vector<Pending> pending_;
    std::map<std::string, std::string> metadata_{{"format", "pt"}};
};

class AtomicOutputFile;

// Writes a safetensors file whose tensor list (names, dtypes, shapes) is known up front
// while the data is produced piece by piece, so that no tensor has to be held whole: the
// constructor writes the header (same layout as SafetensorsWriter), append() adds the
// next bytes of the tensors in their listed order, finish() checks that every byte was
// written and renames the temporary file into place. Destroyed without finish() (an
// exception), it leaves nothing behind.
class SafetensorsStreamWriter {
public:
    struct Spec {
        std::string name;
        DType dtype = DType::F32;
        std::vector<std::int64_t> shape;
    };
    // Throws UsageError for bad names / shapes, IoError if the file cannot be created.
    SafetensorsStreamWriter(const std::string& path, std::vector<Spec> tensors,
                            std::map<std::string, std::string> metadata);
    ~SafetensorsStreamWriter();
    SafetensorsStreamWriter(const SafetensorsStreamWriter&) = delete;
    SafetensorsStreamWriter& operator=(const SafetensorsStreamWriter&) = delete;

    // Appends n bytes of tensor `name`, which must be the tensor currently being written
    // (the first one not yet complete); a piece may not run past its end. UsageError otherwise.
    void append(const std::string& name, const void* data, std::size_t n);
    // UsageError if some tensor is incomplete; then fsync + rename.
    void finish();
    // Size of the complete file.
    std::uint64_t file_size() const { return data_start_ + total_; }

private:
    std::unique_ptr<AtomicOutputFile> out_;
    std::vector<Spec> specs_;
    std::vector<std::uint64_t> ends_;  // end offset of each tensor in the data section
    std::uint64_t data_start_ = 0;
    std::uint64_t total_ = 0;
    std::uint64_t written_ = 0;  // bytes of the data section written so far
    std::size_t current_ = 0;    // index of the tensor being written
};

}  // namespace bitttt
