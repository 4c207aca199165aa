// UTF-8 helpers for the tokenizer: decoding code points, encoding them, and turning
// arbitrary bytes into valid UTF-8 the way Rust's String::from_utf8_lossy does (each
// maximal invalid subpart becomes one U+FFFD), also incrementally for streaming.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bitttt::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

inline void append(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Length of the character starting with lead byte `b` in valid UTF-8 (1 for stray bytes).
inline std::size_t char_len(unsigned char b) {
    if (b < 0xC0) return 1;
    if (b < 0xE0) return 2;
    if (b < 0xF0) return 3;
    return 4;
}

// Decodes the code point at s[i] of VALID UTF-8 and advances i past it.
inline std::uint32_t next(std::string_view s, std::size_t& i) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
        ++i;
        return b;
    }
    std::size_t n = char_len(b);
    std::uint32_t cp = n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += n;
    return cp;
}

// Result of examining the bytes at the start of a buffer.
struct Scan {
    enum Kind { Valid, Invalid, Incomplete } kind;
    std::size_t len;  // Valid: the character's length; Invalid: the maximal invalid subpart's
                      // length (>= 1); Incomplete: the bytes present (a valid prefix)
};

// Classifies the sequence starting at p[0] (n >= 1 bytes available), following the
// Unicode "maximal subpart" rule that Rust's from_utf8_lossy uses.
inline Scan scan(const unsigned char* p, std::size_t n) {
    unsigned char b = p[0];
    if (b < 0x80) return {Scan::Valid, 1};
    std::size_t need;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
        need = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return {Scan::Invalid, 1};
    }
    for (std::size_t k = 1; k < need; ++k) {
        if (k >= n) return {Scan::Incomplete, k};
        unsigned char c = p[k];
        bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
        if (!ok) return {Scan::Invalid, k};
    }
    return {Scan::Valid, need};
}

inline bool is_valid(std::string_view s) {
    auto p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t i = 0, n = s.size();
    while (i < n) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        Scan r = scan(p + i, n - i);
        if (r.kind != Scan::Valid) return false;
        i += r.len;
    }
    return true;
}

// Appends `s` to `out` as valid UTF-8: every maximal invalid subpart (and an incomplete
// sequence at the end) becomes one U+FFFD, exactly as String::from_utf8_lossy.
inline void append_lossy(std::string& out, std::string_view s) {
    auto p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t i = 0, n = s.size();
    while (i < n) {
        std::size_t start = i;
        while (i < n && p[i] < 0x80) ++i;
        out.append(s.data() + start, i - start);
        if (i >= n) break;
        Scan r = scan(p + i, n - i);
        if (r.kind == Scan::Valid) {
            out.append(s.data() + i, r.len);
        } else {
            out += kReplacement;
        }
        i += r.len;
    }
}

inline std::string lossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    append_lossy(out, s);
    return out;
}

// Incremental from_utf8_lossy: bytes are pushed in any pieces; complete characters and
// U+FFFD for invalid subparts are emitted as soon as they are certain, an incomplete
// sequence is held until it completes, fails, or finish() is called.
class LossyStream {
public:
    // Appends the text that became certain to `out`.
    void push(std::string_view bytes, std::string& out) {
        pending_.append(bytes);
        auto p = reinterpret_cast<const unsigned char*>(pending_.data());
        std::size_t i = 0, n = pending_.size();
        while (i < n) {
            if (p[i] < 0x80) {
                out += static_cast<char>(p[i++]);
                continue;
            }
            Scan r = scan(p + i, n - i);
            if (r.kind == Scan::Incomplete) break;
            if (r.kind == Scan::Valid) {
                out.append(pending_, i, r.len);
            } else {
                out += kReplacement;
            }
            i += r.len;
        }
        pending_.erase(0, i);
    }
    // Ends the stream: an incomplete sequence left over becomes one U+FFFD.
    void finish(std::string& out) {
        if (!pending_.empty()) out += kReplacement;
        pending_.clear();
    }
    void reset() { pending_.clear(); }

private:
    std::string pending_;  // at most 3 bytes: a valid but incomplete sequence
};

}  // namespace bitttt::utf8
