// Reading safetensors files and checkpoints (single file, sharded index, model folder).
//
// Layout of a .safetensors file:
//   u64 little-endian N | N bytes of JSON header | data section (to the end of the file)
// The header is an object: an optional "__metadata__" (string -> string) and, per tensor,
//   "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
// with offsets relative to the data section. Nothing in the file is trusted: every field
// is checked before use, so a hostile file gives a FormatError, never a crash.
#include "bitttt/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "bitttt/error.h"
#include "bitttt/json_fields.h"

namespace bitttt {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The same bound as the reference implementation (Rust safetensors' MAX_HEADER_SIZE).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

std::string range_str(std::uint64_t begin, std::uint64_t end) {
    return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

std::string kind_of(const json& v) { return json_kind(v); }

[[noreturn]] void file_error(const std::string& path, const std::string& what) {
    throw FormatError(path + ": " + what);
}

[[noreturn]] void tensor_error(const std::string& path, const std::string& name,
                               const std::string& what) {
    throw FormatError(path + ": tensor " + quote_name(name) + ": " + what);
}

// Product of non-negative dims; nullopt if it does not fit in int64. A zero dim makes
// the product 0 whatever the other dims are.
std::optional<std::int64_t> checked_numel(const std::vector<std::int64_t>& shape) {
    // The non-zero dims must multiply within int64 even when another dim is 0: readers
    // view a tensor as [rows, product of the rest] (a fuzzer found [0, 2^63-1, 2^63-1]).
    std::int64_t n = 1;
    bool zero = false;
    for (const std::int64_t d : shape) {
        if (d < 0) return std::nullopt;
        if (d == 0) {
            zero = true;
            continue;
        }
        if (n > std::numeric_limits<std::int64_t>::max() / d) return std::nullopt;
        n *= d;
    }
    return zero ? 0 : n;
}

std::uint64_t load_le64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Reads a JSON integer that must be >= 0. Returns nullopt (and sets `why`) otherwise.
std::optional<std::uint64_t> json_uint(const json& v, std::string& why) {
    if (!v.is_number_integer()) {
        why = "is " + kind_of(v) +
              " (" + json_excerpt(v) + "), expected a non-negative integer";
        return std::nullopt;
    }
    if (!v.is_number_unsigned()) {
        why = "is negative (" + std::to_string(v.get<std::int64_t>()) + ")";
        return std::nullopt;
    }
    return v.get<std::uint64_t>();
}

const json& required_field(const std::string& path, const std::string& name, const json& entry,
                           const char* key) {
    const auto it = entry.find(key);
    if (it == entry.end())
        tensor_error(path, name, std::string("missing \"") + key + "\" (entry is " +
                                     json_excerpt(entry) + ")");
    return *it;
}

TensorInfo parse_tensor(const std::string& path, const std::string& name, const json& entry,
                        std::uint64_t data_size) {
    if (!entry.is_object())
        tensor_error(path, name,
                     "entry is " + kind_of(entry) + " (" + json_excerpt(entry) +
                         "), expected an object with dtype, shape and data_offsets");
    TensorInfo t;
    t.name = name;

    // dtype
    const json& jd = required_field(path, name, entry, "dtype");
    if (!jd.is_string())
        tensor_error(path, name, "\"dtype\" is " + kind_of(jd) + " (" +
                                     json_excerpt(jd) + "), expected a string");
    const auto& ds = jd.get_ref<const std::string&>();
    const auto dtype = dtype_from_string(ds);
    if (!dtype) tensor_error(path, name, "unknown dtype " + quote_name(ds));
    t.dtype = *dtype;

    // shape
    const json& js = required_field(path, name, entry, "shape");
    if (!js.is_array())
        tensor_error(path, name, "\"shape\" is " + kind_of(js) + " (" +
                                     json_excerpt(js) + "), expected an array of integers");
    t.shape.reserve(js.size());
    for (std::size_t i = 0; i < js.size(); ++i) {
        const json& d = js[i];
        if (d.is_number_integer() && !d.is_number_unsigned())
            tensor_error(path, name, "negative dimension " + std::to_string(d.get<std::int64_t>()) +
                                         " in shape " + json_excerpt(js));
        std::string why;
        const auto v = json_uint(d, why);
        if (!v) tensor_error(path, name, "shape element " + std::to_string(i) + " " + why);
        if (*v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            tensor_error(path, name, "dimension " + std::to_string(*v) + " in shape " +
                                         json_excerpt(js) + " is too large");
        t.shape.push_back(static_cast<std::int64_t>(*v));
    }

    // data_offsets
    const json& jo = required_field(path, name, entry, "data_offsets");
    if (!jo.is_array() || jo.size() != 2)
        tensor_error(path, name, "\"data_offsets\" is " + json_excerpt(jo) +
                                     ", expected an array of two integers [begin, end]");
    std::string why;
    const auto b = json_uint(jo[0], why);
    if (!b) tensor_error(path, name, "data_offsets begin " + why);
    const auto e = json_uint(jo[1], why);
    if (!e) tensor_error(path, name, "data_offsets end " + why);
    t.begin = *b;
    t.end = *e;
    if (t.begin > t.end)
        tensor_error(path, name, "data_offsets " + range_str(t.begin, t.end) + " has begin > end");
    if (t.end > data_size)
        tensor_error(path, name, "data " + range_str(t.begin, t.end) +
                                     " lies past end of data section (" +
                                     std::to_string(data_size) + " bytes)");

    // size consistency: (end - begin) == numel * dtype size, both overflow-checked
    const auto numel = checked_numel(t.shape);
    if (!numel)
        tensor_error(path, name, "shape " + format_shape(t.shape) +
                                     " has more elements than fit in 64 bits");
    const std::uint64_t elem = dtype_size(t.dtype);
    const auto n = static_cast<std::uint64_t>(*numel);
    if (n > std::numeric_limits<std::uint64_t>::max() / elem)
        tensor_error(path, name, "shape " + format_shape(t.shape) + " of " + dtype_name(t.dtype) +
                                     " needs more than 2^64 bytes");
    if (t.nbytes() != n * elem)
        tensor_error(path, name, "data " + range_str(t.begin, t.end) + " is " +
                                     std::to_string(t.nbytes()) + " bytes but shape " +
                                     format_shape(t.shape) + " of " + dtype_name(t.dtype) +
                                     " needs " + std::to_string(n * elem) + " bytes");
    return t;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& v) {
    std::map<std::string, std::string> md;
    if (v.is_null()) return md;  // written as null by some tools: no metadata
    if (!v.is_object())
        file_error(path, "\"__metadata__\" is " + kind_of(v) +
                             ", expected an object of strings");
    for (const auto& [k, val] : v.items()) {
        if (!val.is_string())
            file_error(path, "\"__metadata__\" value for key " + quote_name(k) + " is " +
                                 kind_of(val) + ", expected a string");
        md.emplace(k, val.get<std::string>());
    }
    return md;
}

// Parses JSON text into an object (depth-limited, duplicate keys rejected).
json parse_json(const std::string& path, const std::uint8_t* begin, std::size_t size, const char* what) {
    const char* b = size ? reinterpret_cast<const char*>(begin) : "";
    json j = parse_json_text(b, b + size, path, what, /*reject_duplicates=*/true);
    if (!j.is_object())
        file_error(path, std::string(what) + " is " + kind_of(j) + ", expected a JSON object");
    return j;
}

}  // namespace

std::int64_t TensorInfo::numel() const {
    const auto n = checked_numel(shape);
    if (!n)
        throw UsageError("tensor " + quote_name(name) + ": shape " + format_shape(shape) +
                         " has a negative dim or more elements than fit in 64 bits");
    return *n;
}

// ---- SafetensorsFile ------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
    const std::uint64_t size = file_.size();
    if (size < 8)
        file_error(path, "file is " + std::to_string(size) +
                             " bytes, too short for a safetensors header (at least 8)");
    const std::uint64_t header_len = load_le64(file_.data());
    if (header_len > size - 8)
        file_error(path, "header length " + std::to_string(header_len) +
                             " bytes runs past the end of the file (8 + " +
                             std::to_string(header_len) + " > " + std::to_string(size) +
                             " bytes); not a safetensors file?");
    if (header_len > kMaxHeaderBytes)
        file_error(path, "header length " + std::to_string(header_len) + " bytes exceeds the " +
                             std::to_string(kMaxHeaderBytes) + "-byte limit");
    data_offset_ = 8 + header_len;
    const std::uint64_t data_size = size - data_offset_;

    const json header = parse_json(path, file_.data() + 8, header_len, "header");
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") {
            metadata_ = parse_metadata(path, value);
            continue;
        }
        tensors_.push_back(parse_tensor(path, key, value, data_size));
    }

    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
        if (a.begin != b.begin) return a.begin < b.begin;
        if (a.end != b.end) return a.end < b.end;
        return a.name < b.name;
    });

    // Overlaps: walk in begin order and remember the non-empty tensor reaching furthest.
    // Empty tensors own no bytes and cannot overlap anything.
    const TensorInfo* furthest = nullptr;
    for (const TensorInfo& t : tensors_) {
        if (t.begin == t.end) continue;
        if (furthest != nullptr && t.begin < furthest->end)
            tensor_error(path, t.name,
                         "data " + range_str(t.begin, t.end) + " overlaps tensor " +
                             quote_name(furthest->name) + " at " +
                             range_str(furthest->begin, furthest->end));
        if (furthest == nullptr || t.end > furthest->end) furthest = &t;
    }

    for (std::size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

// ---- Checkpoint -----------------------------------------------------------------------

namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

bool is_file(const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

// Resolves a model folder to the weight file (or index) inside it.
fs::path resolve_folder(const fs::path& dir) {
    if (is_file(dir / kSingleName)) return dir / kSingleName;
    if (is_file(dir / kIndexName)) return dir / kIndexName;

    // Fallback: a folder holding exactly one *.safetensors file.
    std::vector<std::string> found;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string fname = it->path().filename().string();
        if (fname.ends_with(".safetensors") && is_file(it->path())) found.push_back(fname);
    }
    if (ec) throw IoError("cannot list folder " + dir.string() + ": " + ec.message());
    if (found.size() == 1) return dir / found[0];

    std::sort(found.begin(), found.end());
    std::string msg = dir.string() + ": no " + kSingleName + " or " + kIndexName + " in this folder";
    if (found.empty()) {
        msg += ", and no other *.safetensors file";
    } else {
        msg += ", and " + std::to_string(found.size()) +
               " other *.safetensors files (ambiguous without an index):";
        for (std::size_t i = 0; i < found.size() && i < 8; ++i) msg += " " + found[i];
        if (found.size() > 8) msg += " ...";
    }
    throw FormatError(msg);
}

// A shard name from a weight_map must stay inside the index's folder.
bool is_safe_relative(const fs::path& p) {
    if (p.empty() || p.is_absolute() || p.has_root_name()) return false;
    for (const auto& part : p)
        if (part == "..") return false;
    return true;
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
    Checkpoint ck;
    ck.source_ = path;

    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) {
        if (!ec || ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory)
            throw IoError("no such file or folder: " + path);
        throw IoError("cannot access " + path + ": " + ec.message());
    }

    const fs::path weights = fs::is_directory(st) ? resolve_folder(path) : fs::path(path);
    const fs::path dir = weights.parent_path();
    const std::string wname = weights.filename().string();

    if (wname.ends_with(".json")) {
        // ---- sharded: model.safetensors.index.json ----
        const std::string ipath = weights.string();
        const MappedFile index_file(ipath);
        const json index = parse_json(ipath, index_file.data(), index_file.size(), "index");
        const auto wm = index.find("weight_map");
        if (wm == index.end())
            file_error(ipath, "no \"weight_map\" (is this a model.safetensors.index.json?)");
        if (!wm->is_object())
            file_error(ipath, "\"weight_map\" is " + kind_of(*wm) +
                                  ", expected an object tensor name -> shard file");
        if (wm->empty()) file_error(ipath, "\"weight_map\" is empty");

        // Distinct shards, in file-name order (model-00001-of-N, model-00002-of-N, ...),
        // with the tensor names the index maps to each.
        std::map<std::string, std::vector<std::string>> shard_names;
        for (const auto& [name, v] : wm->items()) {
            if (!v.is_string())
                file_error(ipath, "weight_map entry for tensor " + quote_name(name) + " is " +
                                      kind_of(v) + ", expected a shard file name");
            const fs::path rel = fs::path(v.get<std::string>()).lexically_normal();
            if (!is_safe_relative(rel))
                file_error(ipath, "weight_map entry for tensor " + quote_name(name) + " names shard " +
                                      quote_name(v.get<std::string>()) +
                                      ", which is not a relative path inside the index's folder");
            shard_names[rel.string()].push_back(name);
        }

        for (const auto& [rel, names] : shard_names) {
            const fs::path shard_path = dir / rel;
            if (!fs::exists(shard_path, ec))
                file_error(ipath, "shard " + quote_name(rel) + " (holding " +
                                      std::to_string(names.size()) + " tensors, e.g. " +
                                      quote_name(names.front()) + ") not found: " + shard_path.string());
            ck.files_.push_back(std::make_unique<SafetensorsFile>(shard_path.string()));
            const SafetensorsFile& shard = *ck.files_.back();
            for (const std::string& name : names)
                if (shard.find(name) == nullptr)
                    file_error(ipath, "tensor " + quote_name(name) + " is mapped to shard " +
                                          quote_name(rel) + ", but " + shard.path() +
                                          " does not contain it");
        }
    } else {
        // ---- a single .safetensors file ----
        ck.files_.push_back(std::make_unique<SafetensorsFile>(weights.string()));
    }

    // Entries in (shard, offset) order; a name in two shards is an error. Tensors present
    // in a shard but absent from the weight_map are included as they are.
    for (const auto& f : ck.files_) {
        for (const TensorInfo& t : f->tensors()) {
            const auto [it, inserted] = ck.index_.emplace(t.name, ck.entries_.size());
            if (!inserted)
                throw FormatError(weights.string() + ": tensor " + quote_name(t.name) + " is in two shards: " +
                                  ck.entries_[it->second].file->path() + " and " + f->path());
            ck.entries_.push_back(Entry{f.get(), &t});
        }
    }

    if (is_file(dir / "config.json")) ck.config_path_ = (dir / "config.json").string();
    if (is_file(dir / "tokenizer.json")) ck.tokenizer_path_ = (dir / "tokenizer.json").string();
    return ck;
}

const Checkpoint::Entry* Checkpoint::find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

std::vector<std::string> Checkpoint::files() const {
    std::vector<std::string> out;
    out.reserve(files_.size());
    for (const auto& f : files_) out.push_back(f->path());
    return out;
}

std::uint64_t Checkpoint::total_bytes() const {
    std::uint64_t n = 0;
    for (const auto& f : files_) n += f->file_size();
    return n;
}

namespace {

void require_float(const Checkpoint::Entry& e) {
    const TensorInfo& t = *e.info;
    if (!dtype_is_float_convertible(t.dtype))
        throw UnsupportedError(e.file->path() + ": tensor " + quote_name(t.name) + " has dtype " +
                               dtype_name(t.dtype) +
                               "; only F32, F16 and BF16 tensors can be read as float");
}

// Rows of the [rows, cols] view used by read_rows_f32.
std::int64_t row_count(const TensorInfo& t) { return t.shape.size() >= 2 ? t.shape[0] : 1; }

}  // namespace

void Checkpoint::read_rows_f32(const Entry& e, std::int64_t row_begin, std::int64_t row_end,
                               float* out) const {
    require_float(e);
    const TensorInfo& t = *e.info;
    // View as [rows, cols]; the shape was validated (numel fits in int64), so the products
    // below cannot overflow. cols is computed from the trailing dims so that it stays
    // right when rows == 0.
    const std::int64_t rows = row_count(t);
    std::int64_t cols = 1;
    for (std::size_t i = t.shape.size() >= 2 ? 1 : 0; i < t.shape.size(); ++i) cols *= t.shape[i];
    if (row_begin < 0 || row_begin > row_end || row_end > rows)
        throw UsageError("tensor " + quote_name(t.name) + ": rows [" + std::to_string(row_begin) +
                         ", " + std::to_string(row_end) + ") out of range (tensor has " +
                         std::to_string(rows) + " rows)");
    const std::size_t elem = dtype_size(t.dtype);
    const auto first = static_cast<std::size_t>(row_begin) * static_cast<std::size_t>(cols);
    const auto count = static_cast<std::size_t>(row_end - row_begin) * static_cast<std::size_t>(cols);
    convert_to_f32(t.dtype, e.file->data(t) + first * elem, count, out);
}

std::vector<float> Checkpoint::read_f32(const Entry& e) const {
    require_float(e);  // before allocating
    std::vector<float> out(static_cast<std::size_t>(e.info->numel()));
    read_rows_f32(e, 0, row_count(*e.info), out.data());
    return out;
}

void Checkpoint::release(const Entry& e) const {
    e.file->mapped().release(e.file->data_offset() + e.info->begin, e.info->nbytes());
}

std::string format_shape(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace bitttt
