// GgufWriter (include/bitttt/gguf.h): key/values encoded as they are added, tensor infos
// and data written by write() through AtomicOutputFile, one tensor's bytes in memory at a
// time.
#include <algorithm>
#include <cstring>
#include <limits>

#include "bitttt/error.h"
#include "bitttt/gguf.h"
#include "format/le.h"
#include "util/atomic_file.h"

namespace bitttt {

namespace {

void put_u32(std::vector<std::uint8_t>& b, std::uint32_t v) {
    std::uint8_t t[4];
    le::put_u32(t, v);
    b.insert(b.end(), t, t + 4);
}

void put_u64(std::vector<std::uint8_t>& b, std::uint64_t v) {
    std::uint8_t t[8];
    le::put_u64(t, v);
    b.insert(b.end(), t, t + 8);
}

void put_string(std::vector<std::uint8_t>& b, const std::string& s) {
    put_u64(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
}

void put_f32(std::vector<std::uint8_t>& b, float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    put_u32(b, u);
}

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

void GgufWriter::add_kv(const std::string& key, GgufValueType type, std::vector<std::uint8_t> value) {
    if (std::find(keys_.begin(), keys_.end(), key) != keys_.end())
        throw UsageError("GgufWriter: key '" + key + "' added twice");
    keys_.push_back(key);
    put_string(kv_bytes_, key);
    put_u32(kv_bytes_, static_cast<std::uint32_t>(type));
    kv_bytes_.insert(kv_bytes_.end(), value.begin(), value.end());
}

void GgufWriter::add_u32(const std::string& key, std::uint32_t v) {
    std::vector<std::uint8_t> b;
    put_u32(b, v);
    add_kv(key, GgufValueType::U32, std::move(b));
}

void GgufWriter::add_f32(const std::string& key, float v) {
    std::vector<std::uint8_t> b;
    put_f32(b, v);
    add_kv(key, GgufValueType::F32, std::move(b));
}

void GgufWriter::add_string(const std::string& key, const std::string& v) {
    std::vector<std::uint8_t> b;
    put_string(b, v);
    add_kv(key, GgufValueType::String, std::move(b));
}

// Arrays: element type u32, count u64, the elements.
void GgufWriter::add_strings(const std::string& key, const std::vector<std::string>& v) {
    std::vector<std::uint8_t> b;
    put_u32(b, static_cast<std::uint32_t>(GgufValueType::String));
    put_u64(b, v.size());
    for (const auto& s : v) put_string(b, s);
    add_kv(key, GgufValueType::Array, std::move(b));
}

void GgufWriter::add_f32s(const std::string& key, const std::vector<float>& v) {
    std::vector<std::uint8_t> b;
    put_u32(b, static_cast<std::uint32_t>(GgufValueType::F32));
    put_u64(b, v.size());
    for (float f : v) put_f32(b, f);
    add_kv(key, GgufValueType::Array, std::move(b));
}

void GgufWriter::add_i32s(const std::string& key, const std::vector<std::int32_t>& v) {
    std::vector<std::uint8_t> b;
    put_u32(b, static_cast<std::uint32_t>(GgufValueType::I32));
    put_u64(b, v.size());
    for (std::int32_t i : v) put_u32(b, static_cast<std::uint32_t>(i));
    add_kv(key, GgufValueType::Array, std::move(b));
}

void GgufWriter::add_tensor(const std::string& name, GgufTensorType type, std::vector<std::int64_t> ne,
                            std::function<void(std::uint8_t*, std::size_t)> fill) {
    for (const auto& t : tensors_)
        if (t.name == name) throw UsageError("GgufWriter: tensor '" + name + "' added twice");
    if (ne.empty() || ne.size() > 4)
        throw UsageError("GgufWriter: tensor '" + name + "' needs 1 to 4 dimensions, not " + std::to_string(ne.size()));
    if (!fill) throw UsageError("GgufWriter: tensor '" + name + "': empty fill function");
    std::uint64_t n = type == GgufTensorType::F32 ? 4 : 2;
    for (std::int64_t d : ne) {
        if (d <= 0 || static_cast<std::uint64_t>(d) > std::numeric_limits<std::uint64_t>::max() / 2 / n)
            throw UsageError("GgufWriter: tensor '" + name + "': bad dimension " + std::to_string(d));
        n *= static_cast<std::uint64_t>(d);
    }
    tensors_.push_back(Tensor{name, type, std::move(ne), static_cast<std::size_t>(n), std::move(fill)});
}

void GgufWriter::write(const std::string& path, const std::function<void(std::size_t, std::size_t)>& on_tensor) const {
    // Header, key/values and tensor infos; data offsets back to back, each aligned.
    std::vector<std::uint8_t> head;
    head.insert(head.end(), {'G', 'G', 'U', 'F'});
    put_u32(head, kVersion);
    put_u64(head, tensors_.size());
    put_u64(head, keys_.size());
    head.insert(head.end(), kv_bytes_.begin(), kv_bytes_.end());
    std::vector<std::uint64_t> offsets;
    std::uint64_t data_size = 0;
    for (const auto& t : tensors_) {
        data_size = align_up(data_size, kAlignment);
        offsets.push_back(data_size);
        put_string(head, t.name);
        put_u32(head, static_cast<std::uint32_t>(t.ne.size()));
        for (std::int64_t d : t.ne) put_u64(head, static_cast<std::uint64_t>(d));
        put_u32(head, static_cast<std::uint32_t>(t.type));
        put_u64(head, data_size);
        data_size += t.nbytes;
    }
    head.resize(align_up(head.size(), kAlignment), 0);
    AtomicOutputFile out(path);
    out.write_at(head.data(), head.size(), 0);
    std::vector<std::uint8_t> buf;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        const Tensor& t = tensors_[i];
        // The tensor, then zeros up to the next one's aligned start.
        const std::uint64_t end = i + 1 < tensors_.size() ? offsets[i + 1] : offsets[i] + t.nbytes;
        buf.assign(static_cast<std::size_t>(end - offsets[i]), 0);
        t.fill(buf.data(), t.nbytes);
        out.write_at(buf.data(), buf.size(), head.size() + offsets[i]);
        if (on_tensor) on_tensor(i + 1, tensors_.size());
    }
    out.commit();
}

}  // namespace bitttt
