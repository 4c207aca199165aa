#include "bitttt/btt.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "bitttt/error.h"
#include "bitttt/json_fields.h"
#include "bitttt/limits.h"
#include "format/le.h"

namespace bitttt {

using json = nlohmann::json;

const char* encoding_name(Encoding e) {
    switch (e) {
        case Encoding::Ternary: return "ternary";
        case Encoding::F32: return "f32";
        case Encoding::F16: return "f16";
        case Encoding::Int8: return "int8";
    }
    return "?";
}

std::optional<Encoding> encoding_from_string(std::string_view s) {
    for (Encoding e : {Encoding::Ternary, Encoding::F32, Encoding::F16, Encoding::Int8}) {
        if (s == encoding_name(e)) return e;
    }
    return std::nullopt;
}

std::uint64_t checksum64(const void* data, std::size_t n) { return XXH64(data, n, 0); }

std::string checksum_hex(std::uint64_t h) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
    return buf;
}

std::int64_t BttTensor::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

json BttTensor::to_json() const {
    json j = {
        {"name", name},
        {"shape", shape},
        {"encoding", encoding_name(encoding)},
    };
    if (encoding == Encoding::Ternary) {
        j["bases"] = layout.bases;
        j["block_size"] = layout.block_size;
        j["packing"] = packing_name(layout.packing);
        j["scales"] = scale_mode_name(layout.scales);
        if (layout.two_level()) j["scale_bits"] = layout.scale_bits;
        if (layout.tiled()) j["arrangement"] = arrangement_name(layout.arrangement);
        j["method"] = method;
        j["bits_per_weight"] = layout.bits_per_weight();
    } else if (encoding == Encoding::Int8) {
        j["bits_per_weight"] = int8.bits_per_weight();
    }
    j["offset"] = offset;
    j["size"] = size;
    j["xxh64"] = checksum_hex(xxh64);
    j["norm"] = norm;
    j["relative_error_by_base"] = relative_error_by_base;
    j["rmse_by_base"] = rmse_by_base;
    return j;
}

namespace {

// "[4096, 4096]" of a JSON shape, cut short.
std::string format_shape_of(const json& shape) { return json_excerpt(shape); }

// An array of finite numbers (the per-base statistics); absent = empty.
std::vector<double> doubles_or_empty(const JsonFields& r, const char* key, std::size_t max_count) {
    if (!r.has(key)) return {};
    const json& v = r.array(key);
    if (v.size() > max_count) r.fail(key, "has " + std::to_string(v.size()) + " entries, more than " + std::to_string(max_count));
    std::vector<double> out;
    for (const auto& x : v) {
        if (!x.is_number() || !std::isfinite(x.get<double>())) r.fail(key, "must be an array of finite numbers");
        out.push_back(x.get<double>());
    }
    return out;
}

}  // namespace

BttTensor BttTensor::from_json(const json& j, const std::string& source) {
    if (!j.is_object()) throw FormatError(source + ": a tensor entry is " + json_kind(j) + ", expected an object");
    BttTensor t;
    t.name = JsonFields(j, source, "tensors[]").str("name");
    // Every message below names the file and the tensor.
    const JsonFields r(j, source + ": tensor " + quote_name(t.name));
    const json& shape = r.array("shape");
    if (shape.size() > 8) r.fail("shape", "has " + std::to_string(shape.size()) + " dimensions (at most 8)");
    std::uint64_t numel = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        const std::int64_t d = r.integer_value(shape[i], "shape[" + std::to_string(i) + "]", 0, limits::kMaxDimension);
        t.shape.push_back(d);
        const auto m = limits::checked_mul(numel, static_cast<std::uint64_t>(d));
        if (!m || *m > static_cast<std::uint64_t>(limits::kMaxElements)) {
            r.fail("shape", format_shape_of(shape) + " has more than " + std::to_string(limits::kMaxElements) +
                                " elements (the limit)");
        }
        numel = *m;
    }
    const std::string enc = r.str("encoding");
    if (auto e = encoding_from_string(enc)) {
        t.encoding = *e;
    } else {
        // A newer writer may add encodings: say so rather than misread the bytes.
        r.fail("unknown encoding " + quote_name(enc) + " (this build reads ternary, f32, f16 and int8; "
               "the file may need a newer bitttt)");
    }
    t.offset = r.u64("offset");
    t.size = r.u64("size");
    const std::string hex = r.str("xxh64");
    char* end = nullptr;
    t.xxh64 = std::strtoull(hex.c_str(), &end, 16);
    if (hex.size() != 16 || end != hex.c_str() + 16) r.fail("xxh64", "must be 16 hex digits");
    t.norm = r.number_or("norm", 0.0);
    t.relative_error_by_base = doubles_or_empty(r, "relative_error_by_base", 8);
    t.rmse_by_base = doubles_or_empty(r, "rmse_by_base", 8);

    if (t.encoding == Encoding::Ternary) {
        if (t.shape.size() != 2) r.fail("a ternary tensor must be 2-D, got shape " + format_shape_of(shape));
        t.layout.rows = t.shape[0];
        t.layout.cols = t.shape[1];
        t.layout.bases = static_cast<int>(r.integer("bases", 1, 8));
        t.layout.block_size = static_cast<int>(r.integer("block_size", 1, 4096));
        const std::string packing_text = r.str("packing");
        auto packing = packing_from_string(packing_text);
        if (!packing) r.fail("packing", "is " + quote_name(packing_text) + " (expected 2bit or dense)");
        t.layout.packing = *packing;
        // "scales" was added within version 1; files without it have free scales.
        const std::string scales = r.str_or("scales", "free");
        auto mode = scale_mode_from_string(scales);
        if (!mode) r.fail("scales", "is " + quote_name(scales) + " (expected free or tied); a newer bitttt may read it");
        t.layout.scales = *mode;
        // "scale_bits" (version 2): absent = 16-bit scales.
        const std::int64_t bits = r.integer_or("scale_bits", 16, 8, 16);
        if (bits != 16 && bits != 8) r.fail("scale_bits", "must be 16 or 8, got " + std::to_string(bits));
        t.layout.scale_bits = static_cast<int>(bits);
        // "arrangement" (version 3): absent = rows.
        const std::string arrangement = r.str_or("arrangement", "rows");
        auto arr = arrangement_from_string(arrangement);
        if (!arr) r.fail("arrangement", "is " + quote_name(arrangement) + " (expected rows or tiles); a newer bitttt may read it");
        t.layout.arrangement = *arr;
        try {
            t.layout.validate();
        } catch (const Error& e) {
            r.fail(e.what());
        }
        t.method = r.str_or("method", "greedy");
    } else if (t.encoding == Encoding::Int8) {
        if (t.shape.size() != 2) r.fail("an int8 tensor must be 2-D, got shape " + format_shape_of(shape));
        t.int8 = Int8Layout{t.shape[0], t.shape[1]};
        try {
            t.int8.validate();
        } catch (const Error& e) {
            r.fail(e.what());
        }
    }
    return t;
}

BttFile::BttFile(const std::string& path) : file_(path) {
    const std::uint8_t* p = file_.data();
    const std::uint64_t n = file_.size();
    if (n < kBttPreambleBytes) {
        throw FormatError(path + ": not a .btt file (" + std::to_string(n) + " bytes, shorter than the " +
                          std::to_string(kBttPreambleBytes) + "-byte preamble)");
    }
    if (std::memcmp(p, "BTTT", 4) != 0) throw FormatError(path + ": not a .btt file (bad magic)");
    version_ = le::u32(p + 4);
    if (version_ < kBttMinVersion || version_ > kBttVersion) {
        throw FormatError(path + ": .btt format version " + std::to_string(version_) +
                          " is not supported by this build (it reads versions " + std::to_string(kBttMinVersion) + " to " + std::to_string(kBttVersion) +
                          "); reconvert the model or update bitttt");
    }
    const std::uint64_t header_bytes = le::u64(p + 8);
    data_offset_ = le::u64(p + 16);
    const std::uint64_t header_hash = le::u64(p + 24);
    if (header_bytes > limits::kMaxBttHeaderBytes) {
        throw FormatError(path + ": header of " + std::to_string(header_bytes) + " bytes is larger than the limit (" +
                          std::to_string(limits::kMaxBttHeaderBytes) + " bytes)");
    }
    if (header_bytes > n - kBttPreambleBytes) {
        throw FormatError(path + ": header of " + std::to_string(header_bytes) + " bytes lies past end of file (" +
                          std::to_string(n) + " bytes)");
    }
    if (data_offset_ < kBttPreambleBytes + header_bytes || data_offset_ > n || data_offset_ % kBttAlignment != 0) {
        throw FormatError(path + ": data offset " + std::to_string(data_offset_) +
                          " is inconsistent (header ends at " + std::to_string(kBttPreambleBytes + header_bytes) +
                          ", file is " + std::to_string(n) + " bytes, alignment " + std::to_string(kBttAlignment) + ")");
    }
    const char* hdr = reinterpret_cast<const char*>(p + kBttPreambleBytes);
    if (checksum64(hdr, header_bytes) != header_hash) {
        throw FormatError(path + ": header checksum mismatch (the file is corrupt or was modified)");
    }
    header_ = parse_json_text(hdr, hdr + header_bytes, path, "the header");
    const JsonFields top(header_, path);
    const json& tensors = top.array("tensors");
    if (tensors.size() > limits::kMaxTensors) {
        top.fail("tensors", "lists " + std::to_string(tensors.size()) + " tensors, more than the limit " +
                                std::to_string(limits::kMaxTensors));
    }
    // The optional sections are objects or null (their contents are read where used).
    for (const char* key : {"model", "tokenizer", "conversion"}) {
        if (top.has(key) && !top.at(key).is_object()) top.fail(key, "must be an object or null, got " + json_kind(top.at(key)));
    }
    const std::uint64_t data_size = n - data_offset_;
    tensors_.reserve(tensors.size());
    for (const auto& tj : tensors) {
        tensors_.push_back(BttTensor::from_json(tj, path));
        if (version_ < 2 && tensors_.back().layout.two_level()) {
            throw FormatError(path + ": tensor " + quote_name(tensors_.back().name) +
                              ": two-level scales (scale_bits 8) in a version-1 file (the file is corrupt)");
        }
        if (version_ < 3 && tensors_.back().layout.tiled()) {
            throw FormatError(path + ": tensor " + quote_name(tensors_.back().name) + ": the tiles arrangement in a version-" +
                              std::to_string(version_) + " file (the file is corrupt)");
        }
    }

    by_name_.reserve(tensors_.size());
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        if (!by_name_.emplace(tensors_[i].name, i).second) {
            throw FormatError(path + ": tensor " + quote_name(tensors_[i].name) + " appears twice");
        }
    }

    std::vector<const BttTensor*> by_offset;
    for (const auto& t : tensors_) {
        auto where = [&] {
            return "data [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.size) + ")";
        };
        if (t.offset > data_size || t.size > data_size - t.offset) {
            throw FormatError(path + ": tensor " + quote_name(t.name) + ": " + where() + " lies past end of data section (" +
                              std::to_string(data_size) + " bytes)");
        }
        if (t.offset % kBttAlignment != 0) {
            throw FormatError(path + ": tensor " + quote_name(t.name) + ": offset " + std::to_string(t.offset) +
                              " is not a multiple of " + std::to_string(kBttAlignment));
        }
        std::uint64_t expect = 0;
        switch (t.encoding) {
            case Encoding::Ternary: expect = t.layout.total_bytes(); break;
            case Encoding::F32: expect = static_cast<std::uint64_t>(t.numel()) * 4; break;
            case Encoding::F16: expect = static_cast<std::uint64_t>(t.numel()) * 2; break;
            case Encoding::Int8: expect = t.int8.total_bytes(); break;
        }
        if (t.size != expect) {
            throw FormatError(path + ": tensor " + quote_name(t.name) + ": " + where() + " holds " + std::to_string(t.size) +
                              " bytes but its shape and encoding need " + std::to_string(expect));
        }
        if (t.size > 0) by_offset.push_back(&t);  // empty tensors own no bytes and overlap nothing
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const BttTensor* a, const BttTensor* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
        const BttTensor* a = by_offset[i - 1];
        const BttTensor* b = by_offset[i];
        if (a->offset + a->size > b->offset) {
            throw FormatError(path + ": tensors " + quote_name(a->name) + " and " + quote_name(b->name) + " overlap");
        }
    }
}

const BttTensor* BttFile::find(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

bool BttFile::weights_only() const { return !header_.contains("model") || header_.at("model").is_null(); }

void BttFile::verify(const BttTensor& t) const {
    std::uint64_t h = checksum64(data(t), t.size);
    if (h != t.xxh64) {
        throw FormatError(path() + ": tensor " + quote_name(t.name) + ": checksum mismatch (stored " + checksum_hex(t.xxh64) +
                          ", computed " + checksum_hex(h) + "); the file is corrupt");
    }
}

}  // namespace bitttt
