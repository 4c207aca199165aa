// What the process and the machine look like: memory use, cores, terminals.
#pragma once

#include <cstdint>

namespace bitttt {

// Peak resident set size of this process so far, in bytes (getrusage).
std::uint64_t peak_rss_bytes();
// Current resident set size in bytes (/proc/self/statm), 0 if unknown.
std::uint64_t current_rss_bytes();
// Number of physical cores (distinct core ids in /proc/cpuinfo), falling back to the
// number of hardware threads, never less than 1.
int physical_cores();
// True if file descriptor `fd` is a terminal.
bool is_terminal(int fd);

}  // namespace bitttt
