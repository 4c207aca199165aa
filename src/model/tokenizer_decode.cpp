// Decoding. The decoder chain of tokenizer.json is run as a pipeline of streaming stages,
// so decode() and StreamDecoder share one implementation and their outputs agree by
// construction:
//   token stages  (before the first Fuse/ByteLevel step): Replace, Strip and Metaspace act
//                 on each token; ByteFallback gathers runs of <0xNN> tokens;
//   fuse point    Fuse (concatenate), ByteLevel (characters -> bytes, then UTF-8 decoded
//                 lossily like String::from_utf8_lossy), or the end of the chain;
//   text stages   Strip after the fuse point acts on the start/end of the whole text.
// Each stage reproduces what the Hugging Face decoder does over the whole id list.
#include <utility>

#include "bitttt/tokenizer.h"
#include "model/tokenizer_internal.h"
#include "model/tokenizer_utf8.h"

namespace bitttt {
namespace detail {
namespace {

// HF's ByteFallback test: exactly "<0x" + 2 characters + ">", parsed as hexadecimal by
// Rust's u8::from_str_radix (which also takes a leading '+').
bool byte_token_value(const std::string& s, unsigned char& value) {
    if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return false;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    int v;
    if (s[3] == '+') {
        v = hex(s[4]);
    } else {
        int hi = hex(s[3]), lo = hex(s[4]);
        v = (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
    }
    if (v < 0) return false;
    value = static_cast<unsigned char>(v);
    return true;
}

// Strip of up to `start` leading and `stop` trailing `ch` characters of one string.
std::string strip_token(const std::string& s, std::uint32_t ch, std::size_t start, std::size_t stop) {
    std::vector<std::pair<std::size_t, std::uint32_t>> chars;  // (offset, code point)
    for (std::size_t i = 0; i < s.size();) {
        std::size_t at = i;
        chars.push_back({at, utf8::next(s, i)});
    }
    std::size_t a = 0, b = chars.size();
    while (a < chars.size() && a < start && chars[a].second == ch) ++a;
    for (std::size_t k = 0; k < stop && b > a && chars[b - 1].second == ch; ++k) --b;
    if (a >= b) return {};
    std::size_t from = chars[a].first;
    std::size_t to = b < chars.size() ? chars[b].first : s.size();
    return s.substr(from, to - from);
}

}  // namespace

struct DecoderState {
    const TokenizerImpl* t = nullptr;
    bool skip_special = false;
    std::size_t fuse_index = 0;             // first Fuse/ByteLevel step, or decoder.size()
    std::vector<std::size_t> seen;          // tokens that reached token stage k (Metaspace)
    std::vector<std::string> fallback;      // ByteFallback stage k: bytes of the current run
    utf8::LossyStream lossy;                // ByteLevel fuse point
    bool any_token = false;                 // no decoder: tokens are joined with " "
    struct StripState {
        std::size_t to_strip = 0;  // leading characters that may still be stripped
        std::string held;          // trailing strip characters, not yet known to be kept
        std::size_t held_count = 0;
    };
    std::vector<StripState> strips;  // by step index (text stages only)
    std::string out;

    DecoderState(const TokenizerImpl& impl, bool skip) : t(&impl), skip_special(skip) {
        fuse_index = t->decoder.size();
        for (std::size_t k = 0; k < t->decoder.size(); ++k) {
            auto kind = t->decoder[k].kind;
            if (kind == DecoderStep::Fuse || kind == DecoderStep::ByteLevel) {
                fuse_index = k;
                break;
            }
        }
        reset();
    }

    void reset() {
        seen.assign(t->decoder.size(), 0);
        fallback.assign(t->decoder.size(), std::string());
        lossy.reset();
        any_token = false;
        strips.assign(t->decoder.size(), StripState{});
        for (std::size_t k = 0; k < t->decoder.size(); ++k) strips[k].to_strip = t->decoder[k].start;
        out.clear();
    }

    void push_id(std::int32_t id) {
        const std::string* piece = t->decode_piece_of(id);
        if (!piece) return;  // ids without a token are skipped, as HF does
        if (skip_special && t->special_content[static_cast<std::size_t>(id)]) return;
        token(0, *piece);
    }

    // A token entering token stage k.
    void token(std::size_t k, std::string s) {
        if (k >= fuse_index) {
            fuse(std::move(s));
            return;
        }
        const DecoderStep& step = t->decoder[k];
        switch (step.kind) {
            case DecoderStep::Replace:
                replace_all(s, step.pattern, step.content);
                token(k + 1, std::move(s));
                break;
            case DecoderStep::Strip:
                token(k + 1, strip_token(s, step.strip_char, step.start, step.stop));
                break;
            case DecoderStep::Metaspace: {
                bool first = seen[k]++ == 0;
                std::string r;
                r.reserve(s.size());
                for (std::size_t i = 0; i < s.size();) {
                    std::size_t at = i;
                    i += utf8::char_len(static_cast<unsigned char>(s[i]));
                    if (s.compare(at, i - at, step.replacement) == 0) {
                        if (!(first && step.prepend_first)) r += ' ';
                    } else {
                        r.append(s, at, i - at);
                    }
                }
                token(k + 1, std::move(r));
                break;
            }
            case DecoderStep::ByteFallback: {
                unsigned char b;
                if (byte_token_value(s, b)) {
                    fallback[k] += static_cast<char>(b);
                } else {
                    end_byte_run(k);
                    token(k + 1, std::move(s));
                }
                break;
            }
            case DecoderStep::Fuse:
            case DecoderStep::ByteLevel:
                break;  // unreachable: k < fuse_index
        }
    }

    // A run of byte tokens ended: valid UTF-8 goes on as one token, anything else as one
    // U+FFFD per byte (HF's ByteFallback).
    void end_byte_run(std::size_t k) {
        if (fallback[k].empty()) return;
        std::string run;
        run.swap(fallback[k]);
        if (utf8::is_valid(run)) {
            token(k + 1, std::move(run));
        } else {
            for (std::size_t i = 0; i < run.size(); ++i) token(k + 1, std::string(utf8::kReplacement));
        }
    }

    void fuse(std::string s) {
        if (!t->has_decoder) {  // HF joins the tokens with spaces when there is no decoder
            if (any_token) text(fuse_index + 1, " ");
            any_token = true;
            text(fuse_index + 1, s);
            return;
        }
        if (fuse_index == t->decoder.size() || t->decoder[fuse_index].kind == DecoderStep::Fuse) {
            text(fuse_index + 1, s);
            return;
        }
        // ByteLevel: each token's characters back to bytes; a token with a character
        // outside the table contributes its own UTF-8 bytes instead (as HF).
        std::string bytes;
        bytes.reserve(s.size());
        for (std::size_t i = 0; i < s.size();) {
            int b = char_to_byte(utf8::next(s, i));
            if (b < 0) {
                bytes = s;
                break;
            }
            bytes += static_cast<char>(b);
        }
        std::string decoded;
        lossy.push(bytes, decoded);
        text(fuse_index + 1, decoded);
    }

    // Text entering text stage k (after the fuse point).
    void text(std::size_t k, std::string_view s) {
        for (; k < t->decoder.size() && t->decoder[k].kind != DecoderStep::Strip; ++k) {
        }  // Fuse after the fuse point changes nothing
        if (k >= t->decoder.size()) {
            out.append(s);
            return;
        }
        if (s.empty()) return;
        const DecoderStep& step = t->decoder[k];
        StripState& st = strips[k];
        std::string kept;
        for (std::size_t i = 0; i < s.size();) {
            std::size_t at = i;
            std::uint32_t cp = utf8::next(s, i);
            std::string_view ch = s.substr(at, i - at);
            if (st.to_strip > 0) {
                if (cp == step.strip_char) {
                    --st.to_strip;
                    continue;
                }
                st.to_strip = 0;
            }
            if (step.stop == 0) {
                kept.append(ch);
            } else if (cp == step.strip_char) {
                st.held.append(ch);
                if (++st.held_count > step.stop) {
                    std::size_t len = utf8::char_len(static_cast<unsigned char>(st.held[0]));
                    kept.append(st.held, 0, len);
                    st.held.erase(0, len);
                    --st.held_count;
                }
            } else {
                kept += st.held;
                st.held.clear();
                st.held_count = 0;
                kept.append(ch);
            }
        }
        text(k + 1, kept);
    }

    // Ends the stream: flushes byte runs and incomplete UTF-8; trailing strip characters
    // still held are dropped (they are at the very end).
    void finish() {
        for (std::size_t k = 0; k < fuse_index; ++k)
            if (t->decoder[k].kind == DecoderStep::ByteFallback) end_byte_run(k);
        if (fuse_index < t->decoder.size() && t->decoder[fuse_index].kind == DecoderStep::ByteLevel) {
            std::string tail;
            lossy.finish(tail);
            text(fuse_index + 1, tail);
        }
    }

    std::string take() {
        std::string r;
        r.swap(out);
        return r;
    }
};

}  // namespace detail

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skip_special) const {
    detail::DecoderState st(*impl_, skip_special);
    for (std::int32_t id : ids) st.push_id(id);
    st.finish();
    return st.take();
}

Tokenizer::StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : impl_(tokenizer.impl_), state_(std::make_unique<detail::DecoderState>(*impl_, skip_special)) {}
Tokenizer::StreamDecoder::~StreamDecoder() = default;
Tokenizer::StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
Tokenizer::StreamDecoder& Tokenizer::StreamDecoder::operator=(StreamDecoder&&) noexcept = default;

std::string Tokenizer::StreamDecoder::push(std::int32_t id) {
    state_->push_id(id);
    return state_->take();
}

std::string Tokenizer::StreamDecoder::flush() {
    state_->finish();
    std::string r = state_->take();
    state_->reset();
    return r;
}

void Tokenizer::StreamDecoder::prefill(const std::vector<std::int32_t>& ids) {
    for (std::int32_t id : ids) state_->push_id(id);
    state_->out.clear();
}

void Tokenizer::StreamDecoder::reset() { state_->reset(); }

}  // namespace bitttt
