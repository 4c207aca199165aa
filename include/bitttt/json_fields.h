// Reading JSON that comes from a file: parsing with a depth limit and every parser
// exception turned into a FormatError naming the file, and one typed accessor for the
// fields, which turns a missing or ill-typed field into a FormatError naming the file and
// the field. Library code never reaches into file JSON with operator[] or get<T>().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace bitttt {

// 'name' with control characters escaped (\n, \t, \x1b ...), so that a name from a file
// cannot break a one-line message or drive the terminal.
std::string quote_name(std::string_view s);
// The same without the quotes.
std::string escape_control(std::string_view s);
// "an object", "a string", ... for messages.
std::string json_kind(const nlohmann::json& v);
// A value for a message, cut to about 80 characters.
std::string json_excerpt(const nlohmann::json& v);

// Parses [first, last) as JSON. FormatError "SOURCE: WHAT is not valid JSON: ..." on a
// syntax error, a number out of range (1e999), nesting deeper than limits::kMaxJsonDepth
// or any other parser exception; with reject_duplicates, also on a key repeated in one
// object.
nlohmann::json parse_json_text(const char* first, const char* last, const std::string& source, const char* what,
                               bool reject_duplicates = false);

// Typed fields of one JSON object from `source` (a file name), at `path` within it
// ("" for the top level, e.g. "conversion" or "model.rope_scaling") for messages.
class JsonFields {
public:
    // FormatError unless `j` is an object.
    JsonFields(const nlohmann::json& j, std::string source, std::string path = "");

    const nlohmann::json& raw() const { return j_; }
    // Present and not null.
    bool has(const char* key) const;
    // The raw value (required).
    const nlohmann::json& at(const char* key) const;

    std::string str(const char* key) const;
    std::string str_or(const char* key, const std::string& dflt) const;
    // Integers within [lo, hi] (a float with an integral value is accepted).
    std::int64_t integer(const char* key, std::int64_t lo, std::int64_t hi) const;
    std::int64_t integer_or(const char* key, std::int64_t dflt, std::int64_t lo, std::int64_t hi) const;
    std::uint64_t u64(const char* key, std::uint64_t hi = UINT64_MAX) const;
    // Finite numbers.
    double number(const char* key) const;
    double number_or(const char* key, double dflt) const;
    bool boolean_or(const char* key, bool dflt) const;
    // A nested object (required / optional: nullopt when absent or null).
    JsonFields object(const char* key) const;
    std::optional<JsonFields> object_or_null(const char* key) const;
    // An array (required).
    const nlohmann::json& array(const char* key) const;

    // Checks of an element value, e.g. of an array, named "key[i]" in messages.
    std::int64_t integer_value(const nlohmann::json& v, const std::string& name, std::int64_t lo,
                               std::int64_t hi) const;

    // "SOURCE: field 'PATH.KEY' WHAT"
    [[noreturn]] void fail(const std::string& key, const std::string& what) const;
    [[noreturn]] void fail(const std::string& what) const;
    std::string field_name(const std::string& key) const;

private:
    const nlohmann::json& j_;
    std::string source_;
    std::string path_;
};

}  // namespace bitttt
