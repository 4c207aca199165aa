// Loading tokenizer.json into a TokenizerImpl, and the small accessors of Tokenizer.
// Encoding is in tokenizer_encode.cpp, decoding in tokenizer_decode.cpp, the merge map, the
// added-token matcher and the byte-level table in tokenizer_tables.cpp.
#include "bitttt/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bitttt/error.h"
#include "bitttt/limits.h"
#include "bitttt/file_io.h"
#include "model/tokenizer_internal.h"
#include "model/tokenizer_utf8.h"

namespace bitttt {
namespace detail {

// ---- JSON reading --------------------------------------------------------------------

namespace {

using json = nlohmann::json;

constexpr std::int64_t kMaxId = std::int64_t{1} << 24;  // 16.7M ids: far above any real vocabulary

// Reads fields of one JSON object; every error names the file and the field path.
class Field {
public:
    Field(const std::string& source, const json& j, std::string path) : source_(source), j_(j), path_(std::move(path)) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw FormatError(source_ + ": " + (path_.empty() ? "" : "'" + path_ + "' ") + what);
    }
    [[noreturn]] void unsupported(const std::string& what) const { throw UnsupportedError(source_ + ": " + what); }

    const json& value() const { return j_; }
    const std::string& path() const { return path_; }
    std::string sub(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

    void require_object() const {
        if (!j_.is_object()) fail("must be an object, got " + type_name(j_));
    }
    bool has(const char* key) const { return j_.is_object() && j_.contains(key) && !j_.at(key).is_null(); }
    Field at(const char* key) const {
        require_object();
        if (!has(key)) Field(source_, j_, sub(key)).fail("is missing");
        return Field(source_, j_.at(key), sub(key));
    }
    Field opt(const char* key) const {  // null json when absent
        static const json null_json;
        return Field(source_, has(key) ? j_.at(key) : null_json, sub(key));
    }
    bool is_null() const { return j_.is_null(); }

    std::string str() const {
        if (!j_.is_string()) fail("must be a string, got " + type_name(j_));
        return j_.get<std::string>();
    }
    bool boolean(bool dflt) const {
        if (j_.is_null()) return dflt;
        if (!j_.is_boolean()) fail("must be true or false, got " + type_name(j_));
        return j_.get<bool>();
    }
    std::int64_t integer(std::int64_t lo, std::int64_t hi) const {
        std::int64_t v;
        if (j_.is_number_unsigned()) {
            auto u = j_.get<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(hi)) fail("must be at most " + std::to_string(hi) + ", got " + j_.dump());
            v = static_cast<std::int64_t>(u);
        } else if (j_.is_number_integer()) {
            v = j_.get<std::int64_t>();
        } else {
            fail("must be an integer, got " + type_name(j_));
        }
        if (v < lo || v > hi)
            fail("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
        return v;
    }
    std::size_t array_size() const {
        if (!j_.is_array()) fail("must be an array, got " + type_name(j_));
        return j_.size();
    }
    Field item(std::size_t i) const { return Field(source_, j_.at(i), path_ + "[" + std::to_string(i) + "]"); }
    // The "type" of a component object.
    std::string type() const {
        require_object();
        return at("type").str();
    }
    // {"String": s} -> s; {"Regex": r} is refused for `what` unless regex_out is given.
    std::string string_pattern(const std::string& what, std::string* regex_out = nullptr) const {
        require_object();
        if (has("String")) {
            std::string s = at("String").str();
            if (s.empty()) fail("String pattern must not be empty");
            return s;
        }
        if (has("Regex")) {
            std::string r = at("Regex").str();
            if (regex_out) {
                *regex_out = r;
                return {};
            }
            unsupported(what + " with a Regex pattern is not supported (supported: String patterns)");
        }
        fail("must have a \"String\" or \"Regex\" field");
    }
    const std::string& source() const { return source_; }

    static std::string type_name(const json& v) {
        return v.is_null() ? "null" : std::string(v.type_name()) + " " + abbreviate(v.dump());
    }

private:
    static std::string abbreviate(std::string s) {
        if (s.size() > 60) s = s.substr(0, 57) + "...";
        return s;
    }
    const std::string& source_;
    const json& j_;
    std::string path_;
};

std::string byte_token(int b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    return buf;
}

// A single character string -> its code point.
std::uint32_t single_char(const Field& f) {
    std::string s = f.str();
    if (s.empty() || !utf8::is_valid(s)) f.fail("must be one character");
    std::size_t i = 0;
    std::uint32_t cp = utf8::next(s, i);
    if (i != s.size()) f.fail("must be one character, got \"" + s + "\"");
    return cp;
}

// Sequences inside Sequences: real tokenizers nest one or two deep; the limit keeps a
// hostile file from recursing (and copying field paths) without bound.
void check_nesting(const Field& f, int depth) {
    if (depth > limits::kMaxTokenizerNesting) {
        f.fail("nests Sequences deeper than " + std::to_string(limits::kMaxTokenizerNesting) + " levels (the limit)");
    }
}

void parse_normalizer(const Field& f, std::vector<NormalizerStep>& out, int depth = 0) {
    if (f.is_null()) return;
    check_nesting(f, depth);
    std::string type = f.type();
    if (type == "Sequence") {
        Field list = f.at("normalizers");
        for (std::size_t i = 0, n = list.array_size(); i < n; ++i) parse_normalizer(list.item(i), out, depth + 1);
    } else if (type == "Prepend") {
        out.push_back({NormalizerStep::Prepend, f.at("prepend").str(), {}});
    } else if (type == "Replace") {
        std::string pattern = f.at("pattern").string_pattern("normalizer Replace");
        out.push_back({NormalizerStep::Replace, pattern, f.at("content").str()});
    } else {
        f.unsupported("normalizer '" + type + "' is not supported (supported: Sequence, Prepend, Replace)");
    }
}

PreTokenizerStep::Prepend prepend_scheme(const Field& f) {
    if (f.has("prepend_scheme")) {
        std::string s = f.at("prepend_scheme").str();
        if (s == "always") return PreTokenizerStep::Always;
        if (s == "first") return PreTokenizerStep::First;
        if (s == "never") return PreTokenizerStep::Never;
        f.at("prepend_scheme").fail("must be \"always\", \"first\" or \"never\", got \"" + s + "\"");
    }
    return f.opt("add_prefix_space").boolean(true) ? PreTokenizerStep::Always : PreTokenizerStep::Never;
}

void parse_pre_tokenizer(const Field& f, std::vector<PreTokenizerStep>& out, int depth = 0) {
    if (f.is_null()) return;
    check_nesting(f, depth);
    std::string type = f.type();
    if (type == "Sequence") {
        Field list = f.at("pretokenizers");
        for (std::size_t i = 0, n = list.array_size(); i < n; ++i) parse_pre_tokenizer(list.item(i), out, depth + 1);
    } else if (type == "Split") {
        std::string regex;
        std::string literal = f.at("pattern").string_pattern("pre_tokenizer Split", &regex);
        if (!literal.empty())
            f.unsupported("pre_tokenizer Split with the String pattern \"" + literal +
                          "\" is not supported (supported: the Llama-3 and GPT-2 regexes)");
        auto pattern = pretok::pattern_from_source(regex);
        if (!pattern)
            f.unsupported("pre_tokenizer Split regex '" + regex +
                          "' is not supported (supported: the Llama-3 and GPT-2 regexes)");
        std::string behavior = f.opt("behavior").is_null() ? "Isolated" : f.at("behavior").str();
        if (behavior != "Isolated")
            f.unsupported("pre_tokenizer Split behavior '" + behavior + "' is not supported (supported: Isolated)");
        if (f.opt("invert").boolean(false)) f.unsupported("pre_tokenizer Split with invert true is not supported");
        PreTokenizerStep s;
        s.kind = PreTokenizerStep::Split;
        s.pattern = *pattern;
        out.push_back(s);
    } else if (type == "ByteLevel") {
        PreTokenizerStep s;
        s.kind = PreTokenizerStep::ByteLevel;
        s.add_prefix_space = f.opt("add_prefix_space").boolean(true);
        s.use_regex = f.opt("use_regex").boolean(true);
        out.push_back(s);
    } else if (type == "Metaspace") {
        PreTokenizerStep s;
        s.kind = PreTokenizerStep::Metaspace;
        std::string rep;
        utf8::append(rep, f.has("replacement") ? single_char(f.at("replacement")) : 0x2581);
        s.replacement = rep;
        s.prepend = prepend_scheme(f);
        s.split = f.opt("split").boolean(true);
        out.push_back(s);
    } else {
        f.unsupported("pre_tokenizer '" + type +
                      "' is not supported (supported: Sequence, Split, ByteLevel, Metaspace)");
    }
}

void parse_decoder(const Field& f, std::vector<DecoderStep>& out, int depth = 0) {
    check_nesting(f, depth);
    std::string type = f.type();
    DecoderStep s{};
    if (type == "Sequence") {
        Field list = f.at("decoders");
        for (std::size_t i = 0, n = list.array_size(); i < n; ++i) parse_decoder(list.item(i), out, depth + 1);
        return;
    } else if (type == "Replace") {
        s.kind = DecoderStep::Replace;
        s.pattern = f.at("pattern").string_pattern("decoder Replace");
        s.content = f.at("content").str();
    } else if (type == "ByteFallback") {
        s.kind = DecoderStep::ByteFallback;
    } else if (type == "Fuse") {
        s.kind = DecoderStep::Fuse;
    } else if (type == "Strip") {
        s.kind = DecoderStep::Strip;
        s.strip_char = single_char(f.at("content"));
        s.start = static_cast<std::size_t>(f.opt("start").is_null() ? 0 : f.at("start").integer(0, 1 << 20));
        s.stop = static_cast<std::size_t>(f.opt("stop").is_null() ? 0 : f.at("stop").integer(0, 1 << 20));
    } else if (type == "ByteLevel") {
        s.kind = DecoderStep::ByteLevel;
    } else if (type == "Metaspace") {
        s.kind = DecoderStep::Metaspace;
        utf8::append(s.replacement, f.has("replacement") ? single_char(f.at("replacement")) : 0x2581);
        s.prepend_first = prepend_scheme(f) != PreTokenizerStep::Never;
    } else {
        f.unsupported("decoder '" + type +
                      "' is not supported (supported: Sequence, Replace, ByteFallback, Fuse, Strip, "
                      "ByteLevel, Metaspace)");
    }
    out.push_back(std::move(s));
}

// Resolves a special-token name of a TemplateProcessing to its ids.
std::vector<std::int32_t> template_ids(const Field& proc, const std::string& name) {
    Field specials = proc.at("special_tokens");
    specials.require_object();
    if (!specials.has(name.c_str()))
        proc.at("special_tokens").fail("has no entry for the template's special token \"" + name + "\"");
    Field entry = specials.at(name.c_str());
    Field ids = entry.at("ids");
    std::vector<std::int32_t> out;
    for (std::size_t i = 0, n = ids.array_size(); i < n; ++i)
        out.push_back(static_cast<std::int32_t>(ids.item(i).integer(0, kMaxId - 1)));
    return out;
}

void parse_post_processor(const Field& f, std::vector<std::int32_t>& prefix, std::vector<std::int32_t>& suffix,
                          int depth = 0) {
    check_nesting(f, depth);
    if (f.is_null()) return;
    std::string type = f.type();
    if (type == "Sequence") {
        Field list = f.at("processors");
        for (std::size_t i = 0, n = list.array_size(); i < n; ++i) parse_post_processor(list.item(i), prefix, suffix, depth + 1);
    } else if (type == "ByteLevel") {
        // Only adjusts offsets: adds no token.
    } else if (type == "TemplateProcessing") {
        Field single = f.at("single");
        std::vector<std::int32_t> pre, post;
        bool seen_a = false;
        for (std::size_t i = 0, n = single.array_size(); i < n; ++i) {
            Field piece = single.item(i);
            piece.require_object();
            if (piece.has("SpecialToken")) {
                auto ids = template_ids(f, piece.at("SpecialToken").at("id").str());
                (seen_a ? post : pre).insert((seen_a ? post : pre).end(), ids.begin(), ids.end());
            } else if (piece.has("Sequence")) {
                std::string id = piece.at("Sequence").at("id").str();
                if (id != "A" || seen_a) piece.fail("the single template must contain the sequence $A once");
                seen_a = true;
            } else {
                piece.fail("must be a SpecialToken or a Sequence");
            }
        }
        if (!seen_a) single.fail("the single template has no $A sequence");
        // A later processor wraps what the earlier ones produced.
        prefix.insert(prefix.begin(), pre.begin(), pre.end());
        suffix.insert(suffix.end(), post.begin(), post.end());
    } else {
        f.unsupported("post_processor '" + type +
                      "' is not supported (supported: TemplateProcessing, ByteLevel, Sequence)");
    }
}

void check_decoder_chain(const Field& f, const std::vector<DecoderStep>& steps) {
    bool fused = false;
    for (const auto& s : steps) {
        if (!fused) {
            if (s.kind == DecoderStep::Fuse || s.kind == DecoderStep::ByteLevel) fused = true;
            continue;
        }
        if (s.kind != DecoderStep::Strip && s.kind != DecoderStep::Fuse) {
            const char* names[] = {"Replace", "ByteFallback", "Fuse", "Strip", "ByteLevel", "Metaspace"};
            f.unsupported(std::string("decoder step ") + names[s.kind] +
                          " after Fuse or ByteLevel is not supported (only Strip may follow them)");
        }
    }
}

}  // namespace

// Loads the vocabulary, merges, added tokens and pipeline from tokenizer.json.
std::shared_ptr<TokenizerImpl> build_impl(const json& j, const std::string& source) {
    auto impl = std::make_shared<TokenizerImpl>();
    TokenizerImpl& t = *impl;
    t.source = source;
    Field root(source, j, "");
    root.require_object();

    // ---- model
    Field model = root.at("model");
    model.require_object();
    std::string mtype = model.has("type") ? model.at("type").str() : "BPE";
    if (mtype != "BPE") root.unsupported("model type '" + mtype + "' is not supported (supported: BPE)");
    if (model.has("dropout")) {
        Field d = model.at("dropout");
        if (!d.value().is_number()) d.fail("must be a number or null");
        if (d.value().get<double>() != 0.0)
            root.unsupported("BPE dropout " + d.value().dump() + " is not supported (it is for training)");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (model.has(key) && !model.at(key).str().empty())
            root.unsupported(std::string("BPE ") + key + " is not supported (Llama tokenizers do not use it)");
    }
    t.ignore_merges = model.opt("ignore_merges").boolean(false);
    t.byte_fallback = model.opt("byte_fallback").boolean(false);
    t.fuse_unk = model.opt("fuse_unk").boolean(false);

    Field vocab = model.at("vocab");
    if (!vocab.value().is_object()) vocab.fail("must be an object of token -> id, got " + Field::type_name(vocab.value()));
    t.vocab.reserve(vocab.value().size());
    std::int64_t max_id = -1;
    for (const auto& [piece, idv] : vocab.value().items()) {
        Field idf(source, idv, vocab.sub(piece));
        auto id = static_cast<std::int32_t>(idf.integer(0, kMaxId - 1));
        t.vocab.emplace(piece, id);
        max_id = std::max<std::int64_t>(max_id, id);
    }

    // ---- added tokens
    if (root.has("added_tokens")) {
        std::size_t new_added = 0;
        Field list = root.at("added_tokens");
        for (std::size_t i = 0, n = list.array_size(); i < n; ++i) {
            Field e = list.item(i);
            e.require_object();
            AddedToken a;
            e.at("id").integer(0, kMaxId - 1);  // checked, but see below
            a.content = e.at("content").str();
            if (a.content.empty()) e.at("content").fail("must not be empty");
            a.special = e.opt("special").boolean(false);
            a.single_word = e.opt("single_word").boolean(false);
            a.lstrip = e.opt("lstrip").boolean(false);
            a.rstrip = e.opt("rstrip").boolean(false);
            a.normalized = e.opt("normalized").boolean(!a.special);
            // Ids as HF assigns them when it loads the file: a content already in the model
            // vocabulary takes that id, any other one the next id after the vocabulary (its
            // entry count), in file order. Files written by HF carry exactly these ids.
            auto it = t.added_by_content.find(a.content);
            if (it != t.added_by_content.end()) {
                a.id = t.added[it->second].id;
                t.added[it->second] = a;  // a later duplicate replaces the earlier one's options
                continue;
            }
            if (auto v = t.vocab.find(a.content); v != t.vocab.end()) {
                a.id = v->second;
            } else {
                a.id = static_cast<std::int32_t>(t.vocab.size() + new_added++);
                if (a.id >= kMaxId) e.fail("gives more ids than supported");
            }
            max_id = std::max<std::int64_t>(max_id, a.id);
            {
                t.added_by_content.emplace(a.content, t.added.size());
                t.added.push_back(a);
            }
        }
    }

    // ---- id -> piece
    t.pieces.assign(static_cast<std::size_t>(max_id + 1), std::string());
    t.has_piece.assign(t.pieces.size(), 0);
    {
        // Deterministic when two pieces share an id: the lexicographically smallest wins.
        std::vector<const std::pair<const std::string, std::int32_t>*> entries;
        entries.reserve(t.vocab.size());
        for (const auto& e : t.vocab) entries.push_back(&e);
        std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
        for (auto* e : entries) {
            auto id = static_cast<std::size_t>(e->second);
            if (!t.has_piece[id]) {
                t.pieces[id] = e->first;
                t.has_piece[id] = 1;
            }
        }
    }
    for (std::size_t k = 0; k < t.added.size(); ++k) {
        const AddedToken& a = t.added[k];
        t.added_by_id[a.id] = k;
        t.pieces[static_cast<std::size_t>(a.id)] = a.content;  // added tokens take precedence
        t.has_piece[static_cast<std::size_t>(a.id)] = 1;
    }

    // ---- unk, byte fallback
    if (model.has("unk_token")) {
        t.unk_token = model.at("unk_token").str();
        auto it = t.vocab.find(t.unk_token);
        if (it == t.vocab.end()) model.at("unk_token").fail("\"" + t.unk_token + "\" is not in the vocabulary");
        t.unk_id = it->second;
    }
    for (int b = 0; b < 256; ++b) {
        auto it = t.vocab.find(byte_token(b));
        t.byte_fallback_ids[static_cast<std::size_t>(b)] = it == t.vocab.end() ? -1 : it->second;
    }

    // ---- merges
    Field merges = model.at("merges");
    std::size_t nmerges = merges.array_size();
    t.merges.reserve(nmerges);
    for (std::size_t i = 0; i < nmerges; ++i) {
        const json& m = merges.value()[i];
        std::string_view a, b;
        std::string joined;
        if (m.is_string()) {
            const std::string& s = m.get_ref<const std::string&>();
            auto sp = s.find(' ');
            if (sp == std::string::npos) merges.item(i).fail("must be two tokens separated by a space, got \"" + s + "\"");
            a = std::string_view(s).substr(0, sp);
            b = std::string_view(s).substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            a = m[0].get_ref<const std::string&>();
            b = m[1].get_ref<const std::string&>();
        } else {
            merges.item(i).fail("must be a string \"a b\" or a pair [\"a\", \"b\"], got " + Field::type_name(m));
        }
        auto ia = t.vocab.find(a);
        auto ib = t.vocab.find(b);
        joined.reserve(a.size() + b.size());
        joined.append(a).append(b);
        auto ij = t.vocab.find(joined);
        if (ia == t.vocab.end() || ib == t.vocab.end() || ij == t.vocab.end()) {
            std::string missing = ia == t.vocab.end() ? std::string(a) : ib == t.vocab.end() ? std::string(b) : joined;
            merges.item(i).fail("uses \"" + missing + "\", which is not in the vocabulary");
        }
        t.merges.insert(ia->second, ib->second, static_cast<std::int32_t>(i), ij->second);
    }

    // ---- pipeline
    parse_normalizer(root.opt("normalizer"), t.normalizer);
    parse_pre_tokenizer(root.opt("pre_tokenizer"), t.pre_tokenizer);
    for (std::size_t k = 0; k < t.pre_tokenizer.size(); ++k) {
        const auto& s = t.pre_tokenizer[k];
        if (s.kind == PreTokenizerStep::ByteLevel) {
            if (k + 1 != t.pre_tokenizer.size())
                root.unsupported("pre_tokenizer steps after ByteLevel are not supported");
            t.byte_level = true;
        }
    }
    if (t.byte_level) {
        for (const auto& s : t.pre_tokenizer)
            if (s.kind == PreTokenizerStep::Metaspace)
                root.unsupported("pre_tokenizer Metaspace combined with ByteLevel is not supported");
        const auto& b2c = byte_to_char();
        t.byte_ids_complete = true;
        for (std::size_t b = 0; b < 256; ++b) {
            std::string ch;
            utf8::append(ch, b2c[b]);
            auto it = t.vocab.find(ch);
            t.byte_ids[b] = it == t.vocab.end() ? -1 : it->second;
            if (it == t.vocab.end()) t.byte_ids_complete = false;
        }
        if (t.ignore_merges) {
            t.raw_vocab.reserve(t.vocab.size());
            for (const auto& [piece, id] : t.vocab) {
                std::string raw;
                bool ok = true;
                for (std::size_t i = 0; i < piece.size() && ok;) {
                    int byte = char_to_byte(utf8::next(piece, i));
                    if (byte < 0) ok = false;
                    else raw += static_cast<char>(byte);
                }
                if (ok) t.raw_vocab.emplace(std::move(raw), id);
            }
        }
    }
    parse_post_processor(root.opt("post_processor"), t.prefix_ids, t.suffix_ids);
    for (std::int32_t id : t.prefix_ids)
        if (!t.piece_of(id)) root.at("post_processor").fail("adds id " + std::to_string(id) + ", which has no token");
    for (std::int32_t id : t.suffix_ids)
        if (!t.piece_of(id)) root.at("post_processor").fail("adds id " + std::to_string(id) + ", which has no token");
    if (root.has("decoder")) {
        t.has_decoder = true;
        parse_decoder(root.at("decoder"), t.decoder);
        check_decoder_chain(root.at("decoder"), t.decoder);
    }

    // ---- what decode() sees: normalized added tokens decode as their normalized content;
    // skip_special tests that string against the special tokens' contents (as HF)
    for (const AddedToken& a : t.added)
        if (a.normalized) t.decode_override[a.id] = t.normalize(a.content);
    t.special_content.assign(t.pieces.size(), 0);
    {
        StringMap<bool> specials;
        for (const auto& a : t.added)
            if (a.special) specials.emplace(a.content, true);
        for (std::size_t id = 0; id < t.pieces.size(); ++id) {
            const std::string* p = t.decode_piece_of(static_cast<std::int32_t>(id));
            if (p && specials.count(*p)) t.special_content[id] = 1;
        }
    }

    // ---- added-token matchers (normalized ones are matched in normalized text)
    std::vector<std::pair<std::string, std::size_t>> raw, norm;
    for (std::size_t k = 0; k < t.added.size(); ++k) {
        const AddedToken& a = t.added[k];
        if (a.normalized) norm.emplace_back(t.normalize(a.content), k);
        else raw.emplace_back(a.content, k);
    }
    t.raw_matcher.build(raw);
    t.normalized_matcher.build(norm);
    return impl;
}

}  // namespace detail

// ---- Tokenizer ---------------------------------------------------------------------------

Tokenizer Tokenizer::from_json(const nlohmann::json& j, const std::string& source) {
    return Tokenizer(detail::build_impl(j, source));
}

Tokenizer Tokenizer::load(const std::string& path) {
    return from_json(read_json_file(path), path);
}

std::string Tokenizer::piece(std::int32_t id) const {
    const std::string* p = impl_->piece_of(id);
    return p ? *p : std::string();
}

std::int32_t Tokenizer::vocab_size() const { return static_cast<std::int32_t>(impl_->pieces.size()); }

std::optional<std::int32_t> Tokenizer::token_id(std::string_view piece) const {
    if (auto it = impl_->added_by_content.find(piece); it != impl_->added_by_content.end())
        return impl_->added[it->second].id;
    if (auto it = impl_->vocab.find(piece); it != impl_->vocab.end()) return it->second;
    return std::nullopt;
}

bool Tokenizer::is_special(std::int32_t id) const {
    if (!impl_->piece_of(id)) return false;
    if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end() && impl_->added[it->second].special)
        return true;
    return impl_->special_content[static_cast<std::size_t>(id)] != 0;
}

const std::vector<std::int32_t>& Tokenizer::prefix_ids() const { return impl_->prefix_ids; }
const std::vector<std::int32_t>& Tokenizer::suffix_ids() const { return impl_->suffix_ids; }
bool Tokenizer::adds_bos() const { return !impl_->prefix_ids.empty(); }
std::optional<std::int32_t> Tokenizer::bos_id() const {
    if (impl_->prefix_ids.empty()) return std::nullopt;
    return impl_->prefix_ids.front();
}

}  // namespace bitttt
