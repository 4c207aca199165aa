// A Hugging Face `tokenizers`-compatible BPE tokenizer for Llama-family checkpoints,
// read from tokenizer.json. Depends on nlohmann-json and the standard library only.
//
// Supported (anything else is refused with UnsupportedError naming it):
//   model          BPE (vocab, merges as "a b" strings or [a, b] pairs, ignore_merges,
//                  byte_fallback, unk_token, fuse_unk)
//   normalizer     null, Sequence, Prepend, Replace (string pattern)
//   pre_tokenizer  null, Sequence, Split (the Llama-3 or GPT-2 regex, behavior Isolated),
//                  ByteLevel (use_regex false, or true = the GPT-2 regex), Metaspace
//   post_processor null, TemplateProcessing, ByteLevel (adds nothing), Sequence of these
//   decoder        null, Sequence, Replace (string pattern), ByteFallback, Fuse, Strip,
//                  ByteLevel, Metaspace; after a Fuse/ByteLevel step only Strip and Fuse
//
// That covers Llama-3 (byte-level BPE, the Llama-3 split regex) and Llama-2 /
// SentencePiece-style BPE (Prepend/Replace normalizer, byte fallback to <0xNN>).
//
// Semantics follow Hugging Face `tokenizers` (checked against version 0.23.2):
//  - Added tokens (tokenizer.json "added_tokens") are cut out of the text before the
//    normalizer runs: leftmost match first, the longest at that position, honouring
//    single_word / lstrip / rstrip; tokens with "normalized": true are matched in the
//    normalized text. Non-special added tokens are always matched. Special ones only when
//    `parse_special` is true; otherwise their text is tokenized like any other text (HF's
//    `encode_special_tokens = true`, transformers' `split_special_tokens=True`).
//  - Added-token ids are the ones HF assigns when loading: a content that is in the model
//    vocabulary takes its id, any other content the next id after the vocabulary's entry
//    count, in file order (tokenizer.json files written by HF carry exactly these ids).
//  - The normalizer and pre-tokenizer run on each piece of text between added tokens.
//  - Text that is not valid UTF-8 is first made valid: each maximal invalid subpart becomes
//    U+FFFD (as Rust's String::from_utf8_lossy).
//  - The post-processor's special tokens (e.g. BOS) are added when `add_special` is true.
//  - decode() sends every known id, added tokens included, through the decoder, as HF
//    does; ids without a token are skipped; `skip_special` drops added special tokens.
//  - `truncation` and `padding` in tokenizer.json are ignored (an engine never wants
//    its prompt cut).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace bitttt {

namespace detail {
struct TokenizerImpl;
struct DecoderState;
}  // namespace detail

class Tokenizer {
public:
    // Builds a tokenizer from a parsed tokenizer.json. `source` names the file in errors:
    // FormatError for malformed or missing fields (naming the field), UnsupportedError for
    // a valid file using a component this tokenizer does not implement.
    static Tokenizer from_json(const nlohmann::json& j, const std::string& source);
    // Reads and parses tokenizer.json (IoError if unreadable, FormatError if not JSON).
    static Tokenizer load(const std::string& path);

    // Token ids of `text`. add_special: add what the post-processor adds (BOS for Llama).
    // parse_special: match added special tokens ("<|eot_id|>", "<s>") written in the text.
    // Thread-safe (const; no shared mutable state).
    std::vector<std::int32_t> encode(std::string_view text, bool add_special = true,
                                     bool parse_special = false) const;

    // The text of `ids`, exactly as Hugging Face's decode(ids, skip_special_tokens).
    std::string decode(const std::vector<std::int32_t>& ids, bool skip_special = false) const;

    // The token's string as stored in tokenizer.json (byte-level tokens in their mapped
    // form, e.g. "Ġthe"); "" for ids no token uses.
    std::string piece(std::int32_t id) const;
    // Number of id slots: 1 + the largest id of the vocabulary and the added tokens.
    std::int32_t vocab_size() const;
    // The id of `piece` (added tokens first, then the model vocabulary).
    std::optional<std::int32_t> token_id(std::string_view piece) const;
    // True for added tokens marked special (and any id whose piece is one's content).
    bool is_special(std::int32_t id) const;

    // The special tokens the post-processor puts before / after the text.
    const std::vector<std::int32_t>& prefix_ids() const;
    const std::vector<std::int32_t>& suffix_ids() const;
    // True when the post-processor puts a special token first (Llama BOS).
    bool adds_bos() const;
    // That first token's id, if the post-processor adds one (not otherwise: the original
    // Llama-3 tokenizer.json adds none; take config.json's bos_token_id then).
    std::optional<std::int32_t> bos_id() const;

    // Incremental decoding for generation. push() returns the text that token completes;
    // the concatenation of every push() and the final flush() equals decode() of all the
    // ids. Only whole UTF-8 characters are returned: a character split across tokens is
    // held until it is complete. Byte-fallback tokens (<0xNN>) are held until the run of
    // byte tokens ends, because HF turns every byte of a run that is not valid UTF-8 as a
    // whole into U+FFFD. flush() ends the stream (held bytes that never completed become
    // U+FFFD) and starts a new one. Decoder steps that act on the start of the text (e.g.
    // the Llama-2 Strip of one leading space) apply to the first token of a stream only;
    // to continue after a prompt, prefill() the prompt's ids first.
    class StreamDecoder {
    public:
        explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);
        ~StreamDecoder();
        StreamDecoder(StreamDecoder&&) noexcept;
        StreamDecoder& operator=(StreamDecoder&&) noexcept;
        StreamDecoder(const StreamDecoder&) = delete;
        StreamDecoder& operator=(const StreamDecoder&) = delete;

        std::string push(std::int32_t id);
        std::string flush();
        // Feeds context (e.g. the prompt) without returning its text, so that what push()
        // returns next is exactly the continuation: decode(context + more) minus
        // decode(context) (bytes of a character that straddles the two come out with it).
        void prefill(const std::vector<std::int32_t>& ids);
        // Drops anything held and starts a new stream.
        void reset();

    private:
        std::shared_ptr<const detail::TokenizerImpl> impl_;
        std::unique_ptr<detail::DecoderState> state_;
    };

private:
    explicit Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const detail::TokenizerImpl> impl_;
};

}  // namespace bitttt
