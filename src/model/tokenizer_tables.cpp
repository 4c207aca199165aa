// The lookup structures a loaded tokenizer uses (tokenizer_internal.h): the merge map, the
// added-token matcher and the GPT-2 byte-level table. Loading is in tokenizer.cpp.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/tokenizer_internal.h"

namespace bitttt {
namespace detail {

// ---- MergeMap ------------------------------------------------------------------------

void MergeMap::reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    if (cap <= table_.size()) return;
    std::vector<Entry> old;
    old.swap(table_);
    table_.assign(cap, Entry{kEmpty, 0, 0});
    mask_ = cap - 1;
    size_ = 0;
    for (const Entry& e : old)
        if (e.key != kEmpty)
            insert(static_cast<std::int32_t>(e.key >> 32), static_cast<std::int32_t>(e.key & 0xFFFFFFFFu),
                   e.rank, e.id);
}

void MergeMap::grow() { reserve(std::max<std::size_t>(size_ + 1, table_.size())); }

void MergeMap::insert(std::int32_t a, std::int32_t b, std::int32_t rank, std::int32_t id) {
    if ((size_ + 1) * 2 > table_.size()) grow();
    std::uint64_t key = pack(a, b);
    for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
        Entry& e = table_[i];
        if (e.key == key) {
            e.rank = rank;
            e.id = id;
            return;
        }
        if (e.key == kEmpty) {
            e = Entry{key, rank, id};
            ++size_;
            return;
        }
    }
}

// ---- AddedTokenMatcher -----------------------------------------------------------------

std::int32_t AddedTokenMatcher::child(std::int32_t node, unsigned char b) const {
    const auto& next = nodes_[static_cast<std::size_t>(node)].next;
    auto it = std::lower_bound(next.begin(), next.end(), b,
                               [](const std::pair<unsigned char, std::int32_t>& p, unsigned char v) {
                                   return p.first < v;
                               });
    return (it != next.end() && it->first == b) ? it->second : -1;
}

void AddedTokenMatcher::build(const std::vector<std::pair<std::string, std::size_t>>& patterns) {
    nodes_.assign(1, Node{});
    first_.fill(false);
    for (const auto& [pattern, token] : patterns) {
        if (pattern.empty()) continue;  // would match everywhere
        first_[static_cast<unsigned char>(pattern[0])] = true;
        std::int32_t node = 0;
        for (char ch : pattern) {
            auto b = static_cast<unsigned char>(ch);
            std::int32_t c = child(node, b);
            if (c < 0) {
                c = static_cast<std::int32_t>(nodes_.size());
                auto& next = nodes_[static_cast<std::size_t>(node)].next;
                auto it = std::lower_bound(
                    next.begin(), next.end(), b,
                    [](const std::pair<unsigned char, std::int32_t>& p, unsigned char v) { return p.first < v; });
                next.insert(it, {b, c});
                nodes_.emplace_back();
            }
            node = c;
        }
        // The first pattern with this content wins (contents are unique in practice).
        if (nodes_[static_cast<std::size_t>(node)].token < 0)
            nodes_[static_cast<std::size_t>(node)].token = static_cast<std::int32_t>(token);
    }
}

void AddedTokenMatcher::find_all(std::string_view text, std::vector<Match>& out) const {
    if (empty()) return;
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        if (!first_[static_cast<unsigned char>(text[i])]) {
            ++i;
            continue;
        }
        std::int32_t node = 0;
        std::int32_t best = -1;
        std::size_t best_end = 0;
        for (std::size_t k = i; k < n; ++k) {
            node = child(node, static_cast<unsigned char>(text[k]));
            if (node < 0) break;
            if (nodes_[static_cast<std::size_t>(node)].token >= 0) {
                best = nodes_[static_cast<std::size_t>(node)].token;
                best_end = k + 1;
            }
        }
        if (best >= 0) {
            out.push_back({i, best_end, static_cast<std::size_t>(best)});
            i = best_end;
        } else {
            ++i;
        }
    }
}

// ---- byte-level table ----------------------------------------------------------------

const std::array<std::uint32_t, 256>& byte_to_char() {
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        std::uint32_t extra = 0;
        for (std::uint32_t b = 0; b < 256; ++b) {
            bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            t[b] = printable ? b : 256 + extra++;
        }
        return t;
    }();
    return table;
}

int char_to_byte(std::uint32_t cp) {
    static const std::array<std::int16_t, 324> table = [] {
        std::array<std::int16_t, 324> t{};
        t.fill(-1);
        const auto& fwd = byte_to_char();
        for (int b = 0; b < 256; ++b) t[fwd[static_cast<std::size_t>(b)]] = static_cast<std::int16_t>(b);
        return t;
    }();
    return cp < table.size() ? table[cp] : -1;
}

}  // namespace detail
}  // namespace bitttt
