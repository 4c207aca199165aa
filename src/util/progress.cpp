#include "util/progress.h"

#include <cstdio>

namespace bitttt {

Progress::Progress(bool enabled, std::uint64_t total, std::string unit)
    : enabled_(enabled), total_(total), unit_(std::move(unit)), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::advance(std::uint64_t units, std::string_view item) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    done_ += units;
    if (!item.empty()) item_ = item;
    draw_locked(false);
}

void Progress::set_item(std::string_view item) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    item_ = item;
    draw_locked(false);
}

void Progress::draw_locked(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
    if (frac > 1.0) frac = 1.0;
    constexpr int kWidth = 24;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(kWidth - filled), '.');
    double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::string eta = (rate > 0 && done_ < total_)
                          ? human_seconds(static_cast<double>(total_ - done_) / rate)
                          : std::string("-");
    std::string item = item_;
    if (item.size() > 40) item = "..." + item.substr(item.size() - 37);
    std::fprintf(stderr, "\r\033[K[%s] %5.1f%%  %s %s/s  ETA %s  %s", bar.c_str(), frac * 100.0,
                 human_count(rate).c_str(), unit_.c_str(), eta.c_str(), item.c_str());
    std::fflush(stderr);
}

void Progress::finish() {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (drawn_) {
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
    }
    enabled_ = false;
}

static std::string fmt_scaled(double v, const char* const* units, int n_units, double step, int decimals) {
    int u = 0;
    while (u + 1 < n_units && (v >= step || v <= -step)) {
        v /= step;
        ++u;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f %s", u == 0 ? 0 : decimals, v, units[u]);
    return buf;
}

std::string human_bytes(double bytes) {
    static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB"};
    return fmt_scaled(bytes, kUnits, 5, 1000.0, 1);
}

std::string human_count(double n) {
    static const char* const kUnits[] = {"", "k", "M", "G", "T"};
    std::string s = fmt_scaled(n, kUnits, 5, 1000.0, 2);
    if (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

std::string human_seconds(double s) {
    char buf[64];
    if (s < 60) {
        std::snprintf(buf, sizeof buf, "%.1fs", s);
    } else if (s < 3600) {
        std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
    }
    return buf;
}

}  // namespace bitttt
