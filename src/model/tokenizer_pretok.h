// The pre-tokenizer split patterns of Llama-family tokenizers, implemented as hand-written
// matchers over code points with the exact semantics of the (Oniguruma) regexes that
// Hugging Face `tokenizers` runs: at each position the first alternative that matches
// wins, quantifiers are greedy and back off where the regex would backtrack.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitttt::pretok {

enum class Pattern {
    // Llama-3 (tiktoken cl100k style):
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    Llama3,
    // GPT-2 (the ByteLevel pre-tokenizer with use_regex true):
    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Gpt2,
};

// The regex source text of each pattern, as it appears in tokenizer.json.
std::string_view pattern_source(Pattern p);
// The pattern whose source is exactly `regex`, if it is one of ours.
std::optional<Pattern> pattern_from_source(std::string_view regex);

// Splits valid UTF-8 `text` into the consecutive regex matches (the Split pre-tokenizer
// with behavior "Isolated": matches and the text between them become separate pieces;
// both patterns match every character, so there is no text between them). Appends views
// into `text` to `out`; empty input gives no piece.
void split(Pattern p, std::string_view text, std::vector<std::string_view>& out);

// Convenience for tests: the pieces as strings.
std::vector<std::string> split(Pattern p, std::string_view text);

}  // namespace bitttt::pretok
