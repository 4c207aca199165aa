// Internal state of bitttt::Tokenizer, shared by the loader (tokenizer.cpp), the encoder
// (tokenizer_encode.cpp) and the decoder (tokenizer_decode.cpp). Not a public header.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer_pretok.h"

namespace bitttt::detail {

// std::unordered_map<std::string, V> that can be searched with a string_view.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Merge ranks: (left id, right id) -> (rank, merged id), open addressing.
class MergeMap {
public:
    struct Entry {
        std::uint64_t key;
        std::int32_t rank;
        std::int32_t id;
    };
    void reserve(std::size_t n);
    // Inserts or overwrites (a later duplicate merge wins, as in Hugging Face).
    void insert(std::int32_t a, std::int32_t b, std::int32_t rank, std::int32_t id);
    const Entry* find(std::int32_t a, std::int32_t b) const {
        if (mask_ == 0) return nullptr;
        std::uint64_t key = pack(a, b);
        for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
            const Entry& e = table_[i];
            if (e.key == key) return &e;
            if (e.key == kEmpty) return nullptr;
        }
    }
    std::size_t size() const { return size_; }

private:
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    static std::uint64_t pack(std::int32_t a, std::int32_t b) {
        return (std::uint64_t{static_cast<std::uint32_t>(a)} << 32) | static_cast<std::uint32_t>(b);
    }
    std::size_t slot(std::uint64_t key) const {
        return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
    }
    void grow();
    std::vector<Entry> table_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

struct AddedToken {
    std::string content;
    std::int32_t id = 0;
    bool special = false;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
};

// Matches added tokens in text: leftmost match, longest at that position (the
// Aho-Corasick "LeftmostLongest" semantics Hugging Face uses), via a byte trie.
class AddedTokenMatcher {
public:
    // Each pattern is an added token's (normalized) content with its index in the
    // added-token list; empty patterns are ignored.
    void build(const std::vector<std::pair<std::string, std::size_t>>& patterns);
    bool empty() const { return nodes_.size() <= 1; }
    struct Match {
        std::size_t start, end, token;  // token: index into the added-token list
    };
    // Every non-overlapping leftmost-longest match, left to right.
    void find_all(std::string_view text, std::vector<Match>& out) const;

private:
    struct Node {
        std::int32_t token = -1;                 // pattern ending here
        std::vector<std::pair<unsigned char, std::int32_t>> next;  // sorted by byte
    };
    std::int32_t child(std::int32_t node, unsigned char b) const;
    std::vector<Node> nodes_;
    std::array<bool, 256> first_{};
};

struct NormalizerStep {
    enum Kind { Prepend, Replace } kind;
    std::string a;  // Prepend: the prefix; Replace: the pattern
    std::string b;  // Replace: the content
};

struct PreTokenizerStep {
    enum Kind { Split, ByteLevel, Metaspace } kind = Split;
    pretok::Pattern pattern = pretok::Pattern::Llama3;  // Split
    bool add_prefix_space = false;                       // ByteLevel
    bool use_regex = false;                              // ByteLevel
    std::string replacement;                             // Metaspace
    enum Prepend { Always, First, Never } prepend = Always;  // Metaspace
    bool split = true;                                   // Metaspace
};

struct DecoderStep {
    enum Kind { Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace } kind = Replace;
    std::string pattern, content;  // Replace; Strip uses content (one character)
    std::uint32_t strip_char = ' ';
    std::size_t start = 0, stop = 0;  // Strip
    std::string replacement;          // Metaspace
    bool prepend_first = true;        // Metaspace: a leading replacement of the first token is dropped
};

// Word -> ids, per encode() call (so encode stays const and thread-safe).
using EncodeCache = StringMap<std::vector<std::int32_t>>;

struct TokenizerImpl {
    std::string source;  // names the file in messages

    // ---- vocabulary: id -> piece; model vocab and added tokens by content
    std::vector<std::string> pieces;  // by id ("" for ids no token uses)
    std::vector<std::uint8_t> has_piece;
    // What decode() feeds the decoder for an id: its piece, except for added tokens with
    // normalized=true, which decode as their normalized content (as HF 0.23 does).
    std::unordered_map<std::int32_t, std::string> decode_override;
    std::vector<std::uint8_t> special_content;  // id's decode string is an added special token's content
    StringMap<std::int32_t> vocab;               // model vocabulary only
    std::vector<AddedToken> added;
    StringMap<std::size_t> added_by_content;     // -> index into `added`
    std::unordered_map<std::int32_t, std::size_t> added_by_id;

    // ---- BPE model
    MergeMap merges;
    bool ignore_merges = false;
    bool byte_fallback = false;
    bool fuse_unk = false;
    std::int32_t unk_id = -1;
    std::string unk_token;
    std::array<std::int32_t, 256> byte_fallback_ids{};  // id of "<0xNN>", -1 if absent

    // ---- pipeline
    std::vector<NormalizerStep> normalizer;
    std::vector<PreTokenizerStep> pre_tokenizer;
    bool byte_level = false;  // a ByteLevel pre-tokenizer maps bytes to characters
    // Byte-level fast path: the id of each byte's character (-1: not in the vocabulary).
    std::array<std::int32_t, 256> byte_ids{};
    bool byte_ids_complete = false;  // every byte has an id
    StringMap<std::int32_t> raw_vocab;  // byte-level vocab keyed by the raw bytes (ignore_merges)
    AddedTokenMatcher raw_matcher;        // added tokens with normalized=false
    AddedTokenMatcher normalized_matcher; // added tokens with normalized=true
    std::vector<std::int32_t> prefix_ids, suffix_ids;  // post-processor (TemplateProcessing)
    bool has_decoder = false;
    std::vector<DecoderStep> decoder;

    // ---- helpers
    const std::string* piece_of(std::int32_t id) const {
        if (id < 0 || static_cast<std::size_t>(id) >= pieces.size() || !has_piece[id]) return nullptr;
        return &pieces[id];
    }
    const std::string* decode_piece_of(std::int32_t id) const {
        if (!decode_override.empty())
            if (auto it = decode_override.find(id); it != decode_override.end()) return &it->second;
        return piece_of(id);
    }
    std::string normalize(std::string_view text) const;
    // Normalizes, cuts out normalized added tokens, pre-tokenizes and BPE-encodes one piece
    // of text that lies between raw added tokens.
    void encode_segment(std::string_view text, bool at_start, bool parse_special, std::vector<std::int32_t>& out,
                        StringMap<std::vector<std::int32_t>>& cache) const;
    void bpe(std::string_view word, std::vector<std::int32_t>& out) const;
    void merge_all(std::vector<std::int32_t>& symbols) const;
};

// Replaces every non-overlapping occurrence of `pattern` (non-empty), left to right.
inline void replace_all(std::string& s, const std::string& pattern, const std::string& content) {
    std::size_t hit = s.find(pattern);
    if (hit == std::string::npos) return;
    std::string out;
    out.reserve(s.size());
    std::size_t pos = 0;
    for (; hit != std::string::npos; hit = s.find(pattern, pos)) {
        out.append(s, pos, hit - pos).append(content);
        pos = hit + pattern.size();
    }
    out.append(s, pos, std::string::npos);
    s.swap(out);
}

// The byte <-> character table of GPT-2's byte-level BPE.
const std::array<std::uint32_t, 256>& byte_to_char();
// Character -> byte, or -1.
int char_to_byte(std::uint32_t cp);

}  // namespace bitttt::detail
