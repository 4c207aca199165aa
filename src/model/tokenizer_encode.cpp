// Encoding: added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor, with
// the semantics of Hugging Face `tokenizers` (see include/bitttt/tokenizer.h).
#include <algorithm>
#include <deque>
#include <queue>

#include "bitttt/tokenizer.h"
#include "model/tokenizer_internal.h"
#include "model/tokenizer_utf8.h"
#include "model/unicode_tables.h"

namespace bitttt {
namespace detail {
namespace {

// Words longer than this are not cached (they are rare, and would bloat the cache).
constexpr std::size_t kMaxCachedWord = 256;

std::uint32_t last_char(std::string_view s) {
    std::size_t i = s.size();
    while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i;
    if (i > 0) --i;
    std::size_t k = i;
    return utf8::next(s, k);
}

// Byte offset where the trailing White_Space run of s begins.
std::size_t trailing_space_start(std::string_view s) {
    std::size_t end = s.size();
    while (end > 0) {
        std::size_t i = end - 1;
        while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
        std::size_t k = i;
        if (!unicode::is_white_space(utf8::next(s, k))) break;
        end = i;
    }
    return end;
}

// Byte length of the leading White_Space run of s.
std::size_t leading_space_len(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t k = i;
        if (!unicode::is_white_space(utf8::next(s, k))) break;
        i = k;
    }
    return i;
}

// A piece of text between added tokens, or an added token.
struct Split {
    std::string_view text;
    std::size_t offset;  // in the text that was split
    std::int32_t token;  // added token id, or -1
};

// Hugging Face's AddedVocabulary::find_matches: cuts `text` at the added tokens found by
// `matcher`, skipping special tokens unless parse_special, and applying single_word,
// lstrip and rstrip. Empty text gives one empty split.
void split_added(const TokenizerImpl& t, const AddedTokenMatcher& matcher, std::string_view text,
                 bool parse_special, std::vector<Split>& out) {
    if (text.empty() || matcher.empty()) {
        out.push_back({text, 0, -1});
        return;
    }
    std::vector<AddedTokenMatcher::Match> matches;
    matcher.find_all(text, matches);
    std::size_t cursor = 0;
    for (const auto& m : matches) {
        const AddedToken& a = t.added[m.token];
        if (a.special && !parse_special) continue;
        std::size_t start = m.start, stop = m.end;
        if (a.single_word) {
            bool start_ok = start == 0 || !unicode::is_word(last_char(text.substr(0, start)));
            bool stop_ok = true;
            if (stop < text.size()) {
                std::size_t k = stop;
                stop_ok = !unicode::is_word(utf8::next(text, k));
            }
            if (!start_ok || !stop_ok) continue;
        }
        if (a.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), cursor);
        if (a.rstrip) stop += leading_space_len(text.substr(stop));
        if (cursor < start) out.push_back({text.substr(cursor, start - cursor), cursor, -1});
        out.push_back({text.substr(start, stop - start), start, a.id});
        cursor = stop;
    }
    if (cursor < text.size()) out.push_back({text.substr(cursor), cursor, -1});
}

// Min-heap entry of the merge queue, ordered by rank then position (as HF's Merge).
struct MergeEntry {
    std::int32_t rank;
    std::int32_t pos;
    std::int32_t new_id;
};
struct MergeAfter {
    bool operator()(const MergeEntry& a, const MergeEntry& b) const {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    }
};

}  // namespace

std::string TokenizerImpl::normalize(std::string_view text) const {
    std::string s(text);
    for (const auto& step : normalizer) {
        if (step.kind == NormalizerStep::Prepend) {
            if (!s.empty()) s.insert(0, step.a);
        } else {
            replace_all(s, step.a, step.b);
        }
    }
    return s;
}

// HF's Word::merge_all, literally: a priority queue of (rank, position) and a linked list;
// a popped entry is applied only if its pair still merges into the same new id.
void TokenizerImpl::merge_all(std::vector<std::int32_t>& symbols) const {
    const std::size_t n = symbols.size();
    if (n < 2) return;
    struct Sym {
        std::int32_t id, prev, next;
        bool alive;
    };
    std::vector<Sym> sym(n);
    for (std::size_t i = 0; i < n; ++i)
        sym[i] = {symbols[i], static_cast<std::int32_t>(i) - 1,
                  i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1, true};
    std::vector<MergeEntry> heap_storage;
    heap_storage.reserve(n);
    std::priority_queue<MergeEntry, std::vector<MergeEntry>, MergeAfter> queue(MergeAfter{},
                                                                              std::move(heap_storage));
    for (std::size_t i = 0; i + 1 < n; ++i)
        if (const auto* m = merges.find(symbols[i], symbols[i + 1]))
            queue.push({m->rank, static_cast<std::int32_t>(i), m->id});
    while (!queue.empty()) {
        MergeEntry top = queue.top();
        queue.pop();
        Sym& cur = sym[static_cast<std::size_t>(top.pos)];
        if (!cur.alive || cur.next < 0) continue;
        Sym& right = sym[static_cast<std::size_t>(cur.next)];
        const auto* m = merges.find(cur.id, right.id);
        if (!m || m->id != top.new_id) continue;  // expired entry
        cur.id = top.new_id;
        right.alive = false;
        cur.next = right.next;
        if (cur.next >= 0) sym[static_cast<std::size_t>(cur.next)].prev = top.pos;
        if (cur.prev >= 0)
            if (const auto* p = merges.find(sym[static_cast<std::size_t>(cur.prev)].id, cur.id))
                queue.push({p->rank, cur.prev, p->id});
        if (cur.next >= 0)
            if (const auto* p = merges.find(cur.id, sym[static_cast<std::size_t>(cur.next)].id))
                queue.push({p->rank, top.pos, p->id});
    }
    symbols.clear();
    for (const Sym& s : sym)
        if (s.alive) symbols.push_back(s.id);
}

// BPE of one pre-tokenized word as the model sees it (HF's BPE::merge_word): one symbol
// per character, byte fallback or unk for characters not in the vocabulary, then merges.
void TokenizerImpl::bpe(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges) {
        if (auto it = vocab.find(word); it != vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    std::vector<std::int32_t> symbols;
    symbols.reserve(word.size());
    std::int32_t pending_unk = -1;  // HF keeps one unk pending to fuse consecutive unknowns
    std::size_t i = 0;
    while (i < word.size()) {
        std::size_t start = i;
        i += utf8::char_len(static_cast<unsigned char>(word[i]));
        std::string_view ch = word.substr(start, i - start);
        if (auto it = vocab.find(ch); it != vocab.end()) {
            if (pending_unk >= 0) {
                symbols.push_back(pending_unk);
                pending_unk = -1;
            }
            symbols.push_back(it->second);
            continue;
        }
        if (byte_fallback) {
            bool all = true;
            for (char c : ch) all = all && byte_fallback_ids[static_cast<unsigned char>(c)] >= 0;
            if (all) {
                // As HF: the byte tokens go in without flushing a pending unk first.
                for (char c : ch) symbols.push_back(byte_fallback_ids[static_cast<unsigned char>(c)]);
                continue;
            }
        }
        if (unk_id >= 0) {
            if (pending_unk >= 0 && !fuse_unk) symbols.push_back(pending_unk);
            pending_unk = unk_id;
        }
        // No unk token: the character is dropped, as HF does.
    }
    if (pending_unk >= 0) symbols.push_back(pending_unk);
    merge_all(symbols);
    out.insert(out.end(), symbols.begin(), symbols.end());
}


namespace {

struct Piece {
    std::string_view text;
    bool at_start;  // begins at offset 0 of the original text (Metaspace prepend_scheme "first")
};

// Runs the pre-tokenizer steps on one piece of normalized text, leaving the non-empty
// words in `out`; strings made by a step (prefix spaces, replacements) live in `arena`.
void pre_tokenize(const TokenizerImpl& t, Piece input, std::vector<Piece>& out, std::deque<std::string>& arena) {
    out.clear();
    if (!input.text.empty()) out.push_back(input);
    std::vector<Piece> next;
    std::vector<std::string_view> views;
    for (const auto& step : t.pre_tokenizer) {
        next.clear();
        for (const Piece& p : out) {
            switch (step.kind) {
                case PreTokenizerStep::Split: {
                    views.clear();
                    pretok::split(step.pattern, p.text, views);
                    for (std::size_t k = 0; k < views.size(); ++k) next.push_back({views[k], p.at_start && k == 0});
                    break;
                }
                case PreTokenizerStep::ByteLevel: {
                    std::string_view s = p.text;
                    if (step.add_prefix_space && s[0] != ' ') {
                        arena.push_back(" " + std::string(s));
                        s = arena.back();
                    }
                    if (step.use_regex) {
                        views.clear();
                        pretok::split(pretok::Pattern::Gpt2, s, views);
                        for (std::size_t k = 0; k < views.size(); ++k)
                            next.push_back({views[k], p.at_start && k == 0});
                    } else {
                        next.push_back({s, p.at_start});
                    }
                    break;
                }
                case PreTokenizerStep::Metaspace: {
                    std::string s(p.text);
                    replace_all(s, " ", step.replacement);
                    bool has_prefix = s.compare(0, step.replacement.size(), step.replacement) == 0;
                    if (!has_prefix && (step.prepend == PreTokenizerStep::Always ||
                                        (step.prepend == PreTokenizerStep::First && p.at_start)))
                        s.insert(0, step.replacement);
                    arena.push_back(std::move(s));
                    std::string_view v = arena.back();
                    if (!step.split) {
                        next.push_back({v, p.at_start});
                        break;
                    }
                    // Split on the replacement, each delimiter merged with what follows it.
                    std::size_t begin = 0;
                    for (std::size_t pos = v.find(step.replacement, 1); pos != std::string_view::npos;
                         pos = v.find(step.replacement, pos + 1)) {
                        next.push_back({v.substr(begin, pos - begin), p.at_start && begin == 0});
                        begin = pos;
                    }
                    next.push_back({v.substr(begin), p.at_start && begin == 0});
                    break;
                }
            }
        }
        out.clear();
        for (const Piece& p : next)
            if (!p.text.empty()) out.push_back(p);
    }
}

// Ids of one pre-tokenized word (raw bytes when the tokenizer is byte-level).
void encode_word(const TokenizerImpl& t, std::string_view word, std::vector<std::int32_t>& out,
                 StringMap<std::vector<std::int32_t>>& cache) {
    if (word.size() <= kMaxCachedWord) {
        if (auto it = cache.find(word); it != cache.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::size_t first = out.size();
    if (!t.byte_level) {
        t.bpe(word, out);
    } else if (auto it = t.ignore_merges ? t.raw_vocab.find(word) : t.raw_vocab.end(); it != t.raw_vocab.end()) {
        out.push_back(it->second);
    } else if (t.byte_ids_complete) {
        std::vector<std::int32_t> symbols;
        symbols.reserve(word.size());
        for (char c : word) symbols.push_back(t.byte_ids[static_cast<unsigned char>(c)]);
        t.merge_all(symbols);
        out.insert(out.end(), symbols.begin(), symbols.end());
    } else {
        // A vocabulary missing some byte characters: run the general path on the mapped text.
        std::string mapped;
        const auto& b2c = byte_to_char();
        for (char c : word) utf8::append(mapped, b2c[static_cast<unsigned char>(c)]);
        t.bpe(mapped, out);
    }
    if (word.size() <= kMaxCachedWord)
        cache.emplace(std::string(word), std::vector<std::int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
}

}  // namespace

void TokenizerImpl::encode_segment(std::string_view text, bool at_start, bool parse_special,
                                   std::vector<std::int32_t>& out, EncodeCache& cache) const {
    std::string normalized = normalize(text);
    std::vector<Split> splits;
    split_added(*this, normalized_matcher, normalized, parse_special, splits);
    std::deque<std::string> arena;
    std::vector<Piece> words;
    for (const Split& s : splits) {
        if (s.token >= 0) {
            out.push_back(s.token);
            continue;
        }
        pre_tokenize(*this, {s.text, at_start && s.offset == 0}, words, arena);
        for (const Piece& w : words) encode_word(*this, w.text, out, cache);
        arena.clear();
    }
}

}  // namespace detail

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    const detail::TokenizerImpl& t = *impl_;
    std::string valid;
    if (!utf8::is_valid(text)) {
        valid = utf8::lossy(text);
        text = valid;
    }
    std::vector<std::int32_t> out;
    if (add_special) out = t.prefix_ids;
    detail::EncodeCache cache;
    std::vector<detail::Split> splits;
    detail::split_added(t, t.raw_matcher, text, parse_special, splits);
    for (const detail::Split& s : splits) {
        if (s.token >= 0) out.push_back(s.token);
        else t.encode_segment(s.text, s.offset == 0, parse_special, out, cache);
    }
    if (add_special) out.insert(out.end(), t.suffix_ids.begin(), t.suffix_ids.end());
    return out;
}

}  // namespace bitttt
