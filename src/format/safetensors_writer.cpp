// Writing safetensors files: header JSON ("__metadata__" first, then the tensors in the
// order added, data offsets back to back), padded with spaces so the data section starts
// on an 8-byte boundary. The file is written through AtomicOutputFile (a temporary file
// renamed over PATH once complete), so PATH is never seen half-written.
#include <limits>
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

void SafetensorsWriter::write(const std::string& path) const {
    // Header. ordered_json keeps insertion order: metadata first, then tensors as added.
    ordered_json header = ordered_json::object();
    if (!metadata_.empty()) {
        ordered_json md = ordered_json::object();
        for (const auto& [k, v] : metadata_) md[k] = v;
        header["__metadata__"] = std::move(md);
    }
    std::vector<std::size_t> sizes;
    sizes.reserve(pending_.size());
    std::uint64_t offset = 0;
    for (const Pending& p : pending_) {
        const std::size_t n = tensor_bytes(p.name, p.dtype, p.shape);
        sizes.push_back(n);
        header[p.name] = ordered_json{{"dtype", dtype_name(p.dtype)},
                                      {"shape", p.shape},
                                      {"data_offsets", {offset, offset + n}}};
        offset += n;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        throw UsageError(std::string("SafetensorsWriter: tensor names and metadata must be "
                                     "valid UTF-8: ") + e.what());
    }
    // Pad with spaces (valid JSON whitespace) so that 8 + header length is a multiple of 8.
    text.append((8 - text.size() % 8) % 8, ' ');

    std::uint8_t len_le[8];
    for (int i = 0; i < 8; ++i) len_le[i] = static_cast<std::uint8_t>(text.size() >> (8 * i));

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

}  // namespace bitttt
