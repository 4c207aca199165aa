#include "bitttt/json_fields.h"

#include <cmath>
#include <set>
#include <vector>

#include "bitttt/error.h"
#include "bitttt/limits.h"

namespace bitttt {

using json = nlohmann::json;

std::string escape_control(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\r') {
            out += "\\r";
        } else if (u < 0x20 || u == 0x7F) {
            static const char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        } else {
            out += c;
        }
    }
    return out;
}

std::string quote_name(std::string_view s) { return "'" + escape_control(s) + "'"; }

std::string json_kind(const json& v) {
    switch (v.type()) {
        case json::value_t::object: return "an object";
        case json::value_t::array: return "an array";
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::null: return "null";
        case json::value_t::number_float: return "a non-integer number";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        default: return "an unexpected value";
    }
}

std::string json_excerpt(const json& v) {
    // dump() recurses, but values reaching here passed the depth limit of parse_json_text.
    std::string s = escape_control(v.dump(-1, ' ', false, json::error_handler_t::replace));
    constexpr std::size_t kMax = 80;
    if (s.size() > kMax) s = s.substr(0, kMax) + "...";
    return s;
}

namespace {

// The deepest nesting of [ and { outside strings, stopping once past `limit` (a plain
// scan: no recursion, whatever the input).
int nesting_depth(const char* p, const char* end, int limit) {
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (; p < end; ++p) {
        const char c = *p;
        if (in_string) {
            if (c == '\\') ++p;  // skip the escaped character
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest) deepest = depth;
            if (deepest > limit) return deepest;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

}  // namespace

json parse_json_text(const char* first, const char* last, const std::string& source, const char* what,
                     bool reject_duplicates) {
    if (nesting_depth(first, last, limits::kMaxJsonDepth) > limits::kMaxJsonDepth) {
        throw FormatError(source + ": " + what + " nests arrays or objects deeper than " +
                          std::to_string(limits::kMaxJsonDepth) + " levels (the limit); the file is malformed");
    }
    std::string duplicate;
    std::vector<std::set<std::string>> open_objects;  // keys seen so far, per nesting level
    const json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start: open_objects.emplace_back(); break;
            case json::parse_event_t::object_end:
                if (!open_objects.empty()) open_objects.pop_back();
                break;
            case json::parse_event_t::key:
                if (!open_objects.empty() && duplicate.empty() &&
                    !open_objects.back().insert(parsed.get<std::string>()).second) {
                    duplicate = parsed.get<std::string>();
                }
                break;
            default: break;
        }
        return true;
    };
    json j;
    try {
        j = reject_duplicates ? json::parse(first, last, cb) : json::parse(first, last);
    } catch (const json::exception& e) {
        // parse_error, and out_of_range for numbers such as 1e999.
        throw FormatError(source + ": " + what + " is not valid JSON: " + escape_control(e.what()));
    }
    if (!duplicate.empty()) throw FormatError(source + ": " + what + " has the key " + quote_name(duplicate) + " twice");
    return j;
}

// ---- JsonFields ----------------------------------------------------------------------------

JsonFields::JsonFields(const json& j, std::string source, std::string path)
    : j_(j), source_(std::move(source)), path_(std::move(path)) {
    if (!j_.is_object()) {
        throw FormatError(source_ + ": " + (path_.empty() ? std::string("the JSON") : "field '" + path_ + "'") +
                          " is " + json_kind(j_) + ", expected an object");
    }
}

std::string JsonFields::field_name(const std::string& key) const {
    return "'" + escape_control(path_.empty() ? key : path_ + "." + key) + "'";
}

void JsonFields::fail(const std::string& key, const std::string& what) const {
    throw FormatError(source_ + ": field " + field_name(key) + " " + what);
}

void JsonFields::fail(const std::string& what) const {
    throw FormatError(source_ + ": " + (path_.empty() ? std::string() : "'" + path_ + "': ") + what);
}

bool JsonFields::has(const char* key) const {
    const auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
}

const json& JsonFields::at(const char* key) const {
    const auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) fail(key, "is missing");
    return *it;
}

std::string JsonFields::str(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(key, "must be a string, got " + json_kind(v));
    return v.get<std::string>();
}

std::string JsonFields::str_or(const char* key, const std::string& dflt) const {
    return has(key) ? str(key) : dflt;
}

std::int64_t JsonFields::integer_value(const json& v, const std::string& name, std::int64_t lo,
                                       std::int64_t hi) const {
    std::int64_t x = 0;
    if (v.is_number_unsigned()) {
        const std::uint64_t u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(hi)) {
            fail(name, "is " + std::to_string(u) + ", above the limit " + std::to_string(hi));
        }
        x = static_cast<std::int64_t>(u);
    } else if (v.is_number_integer()) {
        x = v.get<std::int64_t>();
    } else if (v.is_number_float()) {
        const double d = v.get<double>();
        if (!(d >= -9.2e18 && d <= 9.2e18) || d != std::floor(d)) {
            fail(name, "must be an integer, got " + json_excerpt(v));
        }
        x = static_cast<std::int64_t>(d);
    } else {
        fail(name, "must be an integer, got " + json_kind(v));
    }
    if (x < lo || x > hi) {
        fail(name, "is " + std::to_string(x) + ", outside the allowed range " + std::to_string(lo) + ".." +
                       std::to_string(hi));
    }
    return x;
}

std::int64_t JsonFields::integer(const char* key, std::int64_t lo, std::int64_t hi) const {
    return integer_value(at(key), key, lo, hi);
}

std::int64_t JsonFields::integer_or(const char* key, std::int64_t dflt, std::int64_t lo, std::int64_t hi) const {
    return has(key) ? integer(key, lo, hi) : dflt;
}

std::uint64_t JsonFields::u64(const char* key, std::uint64_t hi) const {
    const json& v = at(key);
    if (!v.is_number_unsigned()) {
        fail(key, "must be a non-negative integer, got " + (v.is_number() ? json_excerpt(v) : json_kind(v)));
    }
    const std::uint64_t u = v.get<std::uint64_t>();
    if (u > hi) fail(key, "is " + std::to_string(u) + ", above the limit " + std::to_string(hi));
    return u;
}

double JsonFields::number(const char* key) const {
    const json& v = at(key);
    if (!v.is_number()) fail(key, "must be a number, got " + json_kind(v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(key, "must be finite");
    return d;
}

double JsonFields::number_or(const char* key, double dflt) const { return has(key) ? number(key) : dflt; }

bool JsonFields::boolean_or(const char* key, bool dflt) const {
    if (!has(key)) return dflt;
    const json& v = at(key);
    if (!v.is_boolean()) fail(key, "must be true or false, got " + json_kind(v));
    return v.get<bool>();
}

JsonFields JsonFields::object(const char* key) const {
    const json& v = at(key);
    if (!v.is_object()) fail(key, "must be an object, got " + json_kind(v));
    return JsonFields(v, source_, path_.empty() ? std::string(key) : path_ + "." + key);
}

std::optional<JsonFields> JsonFields::object_or_null(const char* key) const {
    if (!has(key)) return std::nullopt;
    return object(key);
}

const json& JsonFields::array(const char* key) const {
    const json& v = at(key);
    if (!v.is_array()) fail(key, "must be an array, got " + json_kind(v));
    return v;
}

}  // namespace bitttt
