#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <vector>

#include "bitttt/error.h"

namespace bitttt {
namespace {

// Registry of live temporary paths that a signal handler may read: fixed-size slots
// of plain char arrays, claimed and released with atomics (no allocation in the handler).
constexpr int kSlots = 16;
constexpr std::size_t kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];

int claim_slot(const std::string& path) {
    if (path.size() >= kPathMax) return -1;
    for (int i = 0; i < kSlots; ++i) {
        bool expected = false;
        if (g_used[i].compare_exchange_strong(expected, true)) {
            std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
            std::atomic_signal_fence(std::memory_order_seq_cst);
            return i;
        }
    }
    return -1;  // registry full: the file is still removed on normal errors
}

void release_slot(int slot) {
    if (slot >= 0) g_used[slot].store(false);
}

extern "C" void cleanup_handler(int sig) {
    for (int i = 0; i < kSlots; ++i) {
        if (g_used[i].load()) ::unlink(g_paths[i]);
    }
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

std::string os_error(int err) { return std::strerror(err); }

}  // namespace

void install_signal_cleanup() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
            struct sigaction sa {};
            sa.sa_handler = cleanup_handler;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = 0;
            sigaction(sig, &sa, nullptr);
        }
    });
}

AtomicOutputFile::AtomicOutputFile(std::string final_path) : final_path_(std::move(final_path)) {
    install_signal_cleanup();
    // The temporary name is built inside the signal-cleanup registry slot itself, so a
    // signal arriving at any point after mkstemp() created the file finds it there.
    const std::string templ = final_path_ + ".tmp.XXXXXX";
    slot_ = claim_slot(templ);
    std::vector<char> local;
    char* name = nullptr;
    if (slot_ >= 0) {
        name = g_paths[slot_];
    } else {
        local.assign(templ.begin(), templ.end());
        local.push_back('\0');
        name = local.data();
    }
    fd_ = ::mkstemp(name);
    if (fd_ < 0) {
        const int err = errno;
        release_slot(slot_);
        slot_ = -1;
        auto dir = std::filesystem::path(final_path_).parent_path();
        throw IoError("cannot create output in '" + (dir.empty() ? std::string(".") : dir.string()) +
                      "': " + os_error(err));
    }
    temp_path_ = name;
    ::fchmod(fd_, 0644);
}

AtomicOutputFile::~AtomicOutputFile() { discard(); }

void AtomicOutputFile::discard() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        ::unlink(temp_path_.c_str());
    }
    release_slot(slot_);
    slot_ = -1;
}

void AtomicOutputFile::write_at(const void* data, std::size_t n, std::uint64_t offset) {
    if (fd_ < 0) throw IoError(final_path_ + ": write after the file was closed");
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw IoError("writing '" + final_path_ + "' failed: " + os_error(errno));
        }
        if (w == 0) throw IoError("writing '" + final_path_ + "' failed: no progress (disk full?)");
        p += w;
        n -= static_cast<std::size_t>(w);
        offset += static_cast<std::uint64_t>(w);
    }
}

void AtomicOutputFile::read_at(void* data, std::size_t n, std::uint64_t offset) const {
    auto* p = static_cast<char*>(data);
    while (n > 0) {
        ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) throw IoError("reading back '" + temp_path_ + "' failed: " + os_error(errno));
        p += r;
        n -= static_cast<std::size_t>(r);
        offset += static_cast<std::uint64_t>(r);
    }
}

void AtomicOutputFile::commit() {
    if (fd_ < 0) throw IoError(final_path_ + ": commit after the file was closed");
    if (::fsync(fd_) != 0) throw IoError("flushing '" + final_path_ + "' failed: " + os_error(errno));
    if (::close(fd_) != 0) {
        fd_ = -1;
        ::unlink(temp_path_.c_str());
        throw IoError("closing '" + final_path_ + "' failed: " + os_error(errno));
    }
    fd_ = -1;
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
        int err = errno;
        ::unlink(temp_path_.c_str());
        release_slot(slot_);
        slot_ = -1;
        throw IoError("renaming '" + temp_path_ + "' to '" + final_path_ + "' failed: " + os_error(err));
    }
    release_slot(slot_);
    slot_ = -1;
    // Make the rename durable.
    auto dir = std::filesystem::path(final_path_).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace bitttt
