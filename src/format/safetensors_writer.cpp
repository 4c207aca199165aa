// Writing safetensors files: header JSON ("__metadata__" first, then the tensors in the
// order added, data offsets back to back), padded with spaces so the data section starts
// on an 8-byte boundary. The file is written through AtomicOutputFile (a temporary file
// renamed over PATH once complete), so PATH is never seen half-written.
#include <limits>
#include <map>
#include <tuple>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitttt/error.h"
#include "bitttt/safetensors.h"
#include "util/atomic_file.h"

namespace bitttt {

namespace {

using ordered_json = nlohmann::ordered_json;

// Bytes a tensor of this dtype and shape occupies; UsageError on negative dims or overflow.
std::size_t tensor_bytes(const std::string& name, DType dtype,
                         const std::vector<std::int64_t>& shape) {
    std::uint64_t n = 1;
    bool zero = false;
    for (const std::int64_t d : shape) {
        if (d < 0)
            throw UsageError("SafetensorsWriter: tensor '" + name + "': negative dimension in shape " +
                             format_shape(shape));
        if (d == 0) zero = true;
    }
    if (zero) return 0;
    for (const std::int64_t d : shape) {
        if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) /
                    static_cast<std::uint64_t>(d))
            throw UsageError("SafetensorsWriter: tensor '" + name + "': shape " + format_shape(shape) +
                             " has too many elements");
        n *= static_cast<std::uint64_t>(d);
    }
    const std::uint64_t elem = dtype_size(dtype);
    if (n > std::numeric_limits<std::size_t>::max() / elem)
        throw UsageError("SafetensorsWriter: tensor '" + name + "': shape " + format_shape(shape) +
                         " is too large");
    return static_cast<std::size_t>(n * elem);
}

void check_new_name(const std::string& name, const auto& pending) {
    if (name == "__metadata__")
        throw UsageError("SafetensorsWriter: '__metadata__' cannot be a tensor name");
    for (const auto& p : pending)
        if (p.name == name) throw UsageError("SafetensorsWriter: tensor '" + name + "' added twice");
}

}  // namespace

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
                            std::vector<std::uint8_t> bytes) {
    check_new_name(name, pending_);
    const std::size_t need = tensor_bytes(name, dtype, shape);
    if (bytes.size() != need)
        throw UsageError("SafetensorsWriter: tensor '" + name + "': " + std::to_string(bytes.size()) +
                         " bytes given but shape " + format_shape(shape) + " of " + dtype_name(dtype) +
                         " needs " + std::to_string(need));
    pending_.push_back(Pending{name, dtype, std::move(shape), std::move(bytes), {}});
}

void SafetensorsWriter::add_generated(const std::string& name, DType dtype,
                                      std::vector<std::int64_t> shape,
                                      std::function<void(std::uint8_t*, std::size_t)> fill) {
    check_new_name(name, pending_);
    if (!fill) throw UsageError("SafetensorsWriter: tensor '" + name + "': empty fill function");
    tensor_bytes(name, dtype, shape);  // validates the shape
    pending_.push_back(Pending{name, dtype, std::move(shape), {}, std::move(fill)});
}

namespace {

// The header text (metadata first, then the tensors in order, offsets back to back),
// padded with spaces (valid JSON whitespace) so that 8 + its length is a multiple of 8.
std::string header_text(const std::map<std::string, std::string>& metadata,
                        const std::vector<std::tuple<std::string, DType, std::vector<std::int64_t>>>& tensors,
                        std::vector<std::size_t>& sizes) {
    // ordered_json keeps insertion order: metadata first, then tensors as added.
    ordered_json header = ordered_json::object();
    if (!metadata.empty()) {
        ordered_json md = ordered_json::object();
        for (const auto& [k, v] : metadata) md[k] = v;
        header["__metadata__"] = std::move(md);
    }
    sizes.clear();
    sizes.reserve(tensors.size());
    std::uint64_t offset = 0;
    for (const auto& [name, dtype, shape] : tensors) {
        const std::size_t n = tensor_bytes(name, dtype, shape);
        sizes.push_back(n);
        header[name] = ordered_json{{"dtype", dtype_name(dtype)}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
        offset += n;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        throw UsageError(std::string("SafetensorsWriter: tensor names and metadata must be "
                                     "valid UTF-8: ") + e.what());
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
}

void put_le64(std::uint8_t* dst, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) dst[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

void SafetensorsWriter::write(const std::string& path) const {
    std::vector<std::tuple<std::string, DType, std::vector<std::int64_t>>> list;
    list.reserve(pending_.size());
    for (const Pending& p : pending_) list.emplace_back(p.name, p.dtype, p.shape);
    std::vector<std::size_t> sizes;
    const std::string text = header_text(metadata_, list, sizes);
    std::uint8_t len_le[8];
    put_le64(len_le, text.size());

    AtomicOutputFile out(path);
    std::uint64_t pos = 0;
    auto put = [&](const void* data, std::size_t n) {
        out.write_at(data, n, pos);
        pos += n;
    };
    put(len_le, sizeof len_le);
    put(text.data(), text.size());
    for (std::size_t i = 0; i < pending_.size(); ++i) {
        const Pending& p = pending_[i];
        if (!p.fill) {
            put(p.bytes.data(), p.bytes.size());
            continue;
        }
        // One buffer of exactly this tensor's size, zeroed so that a fill that leaves bytes
        // untouched still gives a deterministic file; freed before the next tensor.
        std::vector<std::uint8_t> buf(sizes[i]);
        p.fill(buf.data(), buf.size());
        put(buf.data(), buf.size());
    }
    out.commit();
}

// ---- streaming writer ---------------------------------------------------------------------

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path, std::vector<Spec> tensors,
                                                 std::map<std::string, std::string> metadata)
    : specs_(std::move(tensors)) {
    std::vector<std::tuple<std::string, DType, std::vector<std::int64_t>>> list;
    list.reserve(specs_.size());
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const Spec& s = specs_[i];
        if (s.name == "__metadata__")
            throw UsageError("SafetensorsStreamWriter: '__metadata__' cannot be a tensor name");
        for (std::size_t j = 0; j < i; ++j)
            if (specs_[j].name == s.name)
                throw UsageError("SafetensorsStreamWriter: tensor '" + s.name + "' listed twice");
        list.emplace_back(s.name, s.dtype, s.shape);
    }
    std::vector<std::size_t> sizes;
    const std::string text = header_text(metadata, list, sizes);
    for (const std::size_t n : sizes) {
        total_ += n;
        ends_.push_back(total_);
    }
    std::uint8_t len_le[8];
    put_le64(len_le, text.size());
    out_ = std::make_unique<AtomicOutputFile>(path);
    out_->write_at(len_le, sizeof len_le, 0);
    out_->write_at(text.data(), text.size(), sizeof len_le);
    data_start_ = sizeof len_le + text.size();
    while (current_ < specs_.size() && ends_[current_] == 0) ++current_;  // empty tensors first
}

SafetensorsStreamWriter::~SafetensorsStreamWriter() = default;

void SafetensorsStreamWriter::append(const std::string& name, const void* data, std::size_t n) {
    if (!out_) throw UsageError("SafetensorsStreamWriter: append after finish");
    if (current_ >= specs_.size() || specs_[current_].name != name)
        throw UsageError("SafetensorsStreamWriter: bytes for tensor '" + name + "' arrived while " +
                         (current_ < specs_.size() ? "'" + specs_[current_].name + "'" : std::string("no tensor")) +
                         " is being written (tensors must be written whole, in order)");
    if (n > ends_[current_] - written_)
        throw UsageError("SafetensorsStreamWriter: tensor '" + name + "': " + std::to_string(n) +
                         " bytes run past its end (" + std::to_string(ends_[current_] - written_) + " left)");
    if (n > 0) out_->write_at(data, n, data_start_ + written_);
    written_ += n;
    while (current_ < specs_.size() && written_ == ends_[current_]) ++current_;
}

void SafetensorsStreamWriter::finish() {
    if (!out_) throw UsageError("SafetensorsStreamWriter: finish called twice");
    if (written_ != total_)
        throw UsageError("SafetensorsStreamWriter: tensor '" + specs_[current_].name + "' is incomplete (" +
                         std::to_string(total_ - written_) + " bytes of the file missing)");
    out_->commit();
    out_.reset();
}

}  // namespace bitttt
