// A one-line progress bar on stderr for long work (only drawn when stderr is a
// terminal and the user did not ask for --quiet). Thread-safe; redraws at most 10x/s.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace bitttt {

class Progress {
public:
    // `total` units of work (e.g. weights); `unit` names them in the rate ("weights").
    Progress(bool enabled, std::uint64_t total, std::string unit);
    ~Progress();
    // Adds `units` of finished work; `item` is what is being worked on now.
    void advance(std::uint64_t units, std::string_view item = {});
    // Sets the item label without adding work.
    void set_item(std::string_view item);
    // Clears the line. Called by the destructor too.
    void finish();

private:
    void draw_locked(bool force);

    bool enabled_;
    std::uint64_t total_;
    std::uint64_t done_ = 0;
    std::string unit_;
    std::string item_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_{};
    bool drawn_ = false;
    std::mutex mu_;
};

// "1.2 GB", "350.0 MB", "12 B" (powers of 1000, as disk sizes are quoted).
std::string human_bytes(double bytes);
// "3.4 G", "120 M" for counts.
std::string human_count(double n);
// "1h02m", "3m05s", "12.3s".
std::string human_seconds(double s);

}  // namespace bitttt
