#include "model/tokenizer_pretok.h"

#include <cstdint>

#include "model/tokenizer_utf8.h"
#include "model/unicode_tables.h"

namespace bitttt::pretok {
namespace {

constexpr std::string_view kLlama3Source =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr std::string_view kGpt2Source =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Character class bits.
enum : std::uint8_t { kL = 1, kN = 2, kS = 4, kCR_LF = 8 };

std::uint8_t classify(std::uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) - 'a' < 26) return kL;
        if (cp - '0' < 10) return kN;
        if (cp == '\r' || cp == '\n') return kS | kCR_LF;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kS;
        return 0;
    }
    std::uint8_t c = 0;
    if (unicode::is_letter(cp)) c |= kL;
    else if (unicode::is_number(cp)) c |= kN;
    else if (unicode::is_white_space(cp)) c |= kS;
    return c;
}

// The text as code points with their classes and byte offsets.
struct Chars {
    std::vector<std::uint32_t> cp;
    std::vector<std::uint8_t> cls;
    std::vector<std::size_t> off;  // size n + 1

    explicit Chars(std::string_view text) {
        cp.reserve(text.size());
        cls.reserve(text.size());
        off.reserve(text.size() + 1);
        std::size_t i = 0;
        while (i < text.size()) {
            off.push_back(i);
            std::uint32_t c = utf8::next(text, i);
            cp.push_back(c);
            cls.push_back(classify(c));
        }
        off.push_back(text.size());
    }
    std::size_t size() const { return cp.size(); }
    bool L(std::size_t k) const { return cls[k] & kL; }
    bool N(std::size_t k) const { return cls[k] & kN; }
    bool S(std::size_t k) const { return cls[k] & kS; }
    bool crlf(std::size_t k) const { return cls[k] & kCR_LF; }
    // [^\s\p{L}\p{N}]
    bool other(std::size_t k) const { return (cls[k] & (kL | kN | kS)) == 0; }
};

// End of the run of characters satisfying pred, starting at k.
template <class Pred>
std::size_t run(const Chars& c, std::size_t k, Pred pred) {
    while (k < c.size() && pred(k)) ++k;
    return k;
}

// Simple case folding of the letters the contraction alternatives use: ASCII, and
// U+017F LATIN SMALL LETTER LONG S, which folds to 's'.
std::uint32_t fold(std::uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
    if (cp == 0x017F) return 's';
    return cp;
}

// 's|'t|'re|'ve|'m|'ll|'d at i (case-insensitively if `icase`): the match end, or 0.
std::size_t contraction(const Chars& c, std::size_t i, bool icase) {
    std::size_t n = c.size();
    if (c.cp[i] != '\'' || i + 1 >= n) return 0;
    auto f = [&](std::size_t k) { return icase ? fold(c.cp[k]) : c.cp[k]; };
    std::uint32_t a = f(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 >= n) return 0;
    std::uint32_t b = f(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    return 0;
}

// \s+(?!\S) then \s+ at i (c.S(i) holds): the whitespace run, backing off one character
// when a non-space follows it and the run is longer than one.
std::size_t whitespace_tail(const Chars& c, std::size_t i) {
    std::size_t e = run(c, i, [&](std::size_t k) { return c.S(k); });
    if (e == c.size()) return e;  // \s+(?!\S) at the end of the text
    if (e - i >= 2) return e - 1;  // \s+(?!\S) backs off one
    return e;                      // \s+
}

std::size_t match_llama3(const Chars& c, std::size_t i) {
    const std::size_t n = c.size();
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (std::size_t e = contraction(c, i, true)) return e;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (c.L(i)) return run(c, i, [&](std::size_t k) { return c.L(k); });
    if (!c.N(i) && !c.crlf(i) && i + 1 < n && c.L(i + 1))
        return run(c, i + 1, [&](std::size_t k) { return c.L(k); });
    // \p{N}{1,3}
    if (c.N(i)) {
        std::size_t e = i + 1;
        while (e < n && e < i + 3 && c.N(e)) ++e;
        return e;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    std::size_t j = (c.cp[i] == ' ' && i + 1 < n && c.other(i + 1)) ? i + 1 : i;
    if (c.other(j)) {
        std::size_t e = run(c, j, [&](std::size_t k) { return c.other(k); });
        return run(c, e, [&](std::size_t k) { return c.crlf(k); });
    }
    if (c.S(i)) {
        // \s*[\r\n]+ : greedy \s* backs off to the last CR/LF of the whitespace run.
        std::size_t e = run(c, i, [&](std::size_t k) { return c.S(k); });
        for (std::size_t k = e; k > i; --k)
            if (c.crlf(k - 1)) return k;
        // \s+(?!\S) | \s+
        return whitespace_tail(c, i);
    }
    return i + 1;  // unreachable: every character is L, N, \s or "other"
}

std::size_t match_gpt2(const Chars& c, std::size_t i) {
    const std::size_t n = c.size();
    if (std::size_t e = contraction(c, i, false)) return e;
    std::size_t j = (c.cp[i] == ' ' && i + 1 < n) ? i + 1 : i;
    //  ?\p{L}+
    if (c.L(j)) return run(c, j, [&](std::size_t k) { return c.L(k); });
    if (c.L(i)) return run(c, i, [&](std::size_t k) { return c.L(k); });
    //  ?\p{N}+
    if (c.N(j)) return run(c, j, [&](std::size_t k) { return c.N(k); });
    if (c.N(i)) return run(c, i, [&](std::size_t k) { return c.N(k); });
    //  ?[^\s\p{L}\p{N}]+
    if (c.other(j)) return run(c, j, [&](std::size_t k) { return c.other(k); });
    if (c.other(i)) return run(c, i, [&](std::size_t k) { return c.other(k); });
    // \s+(?!\S) | \s+
    if (c.S(i)) return whitespace_tail(c, i);
    return i + 1;  // unreachable
}

}  // namespace

std::string_view pattern_source(Pattern p) { return p == Pattern::Llama3 ? kLlama3Source : kGpt2Source; }

std::optional<Pattern> pattern_from_source(std::string_view regex) {
    if (regex == kLlama3Source) return Pattern::Llama3;
    if (regex == kGpt2Source) return Pattern::Gpt2;
    return std::nullopt;
}

void split(Pattern p, std::string_view text, std::vector<std::string_view>& out) {
    if (text.empty()) return;
    Chars c(text);
    std::size_t i = 0;
    while (i < c.size()) {
        std::size_t e = p == Pattern::Llama3 ? match_llama3(c, i) : match_gpt2(c, i);
        out.push_back(text.substr(c.off[i], c.off[e] - c.off[i]));
        i = e;
    }
}

std::vector<std::string> split(Pattern p, std::string_view text) {
    std::vector<std::string_view> views;
    split(p, text, views);
    return {views.begin(), views.end()};
}

}  // namespace bitttt::pretok
