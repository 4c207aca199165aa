// Typed errors thrown by the bitttt libraries. The CLI catches them once, prints
// one line and exits non-zero (UsageError -> 2, everything else -> 1).
#pragma once

#include <stdexcept>
#include <string>

namespace bitttt {

// Base of every error bitttt throws on purpose.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A file's contents are malformed or inconsistent (safetensors, .btt, config.json, ...).
// The message names the file, the tensor (if any) and what is wrong.
class FormatError : public Error {
public:
    using Error::Error;
};

// The operating system refused an operation (open, mmap, write, rename, ...).
class IoError : public Error {
public:
    using Error::Error;
};

// The request itself cannot be honoured (bad flag value, incompatible options).
class UsageError : public Error {
public:
    using Error::Error;
};

// A valid file asks for something bitttt does not support (a dtype, a rope type, ...).
class UnsupportedError : public Error {
public:
    using Error::Error;
};

}  // namespace bitttt
