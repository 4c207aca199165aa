// An output file that appears under its final name only when complete.
//
// Data goes to "<final>.tmp.XXXXXX" in the same folder (so rename is atomic); commit()
// fsyncs and renames it. If the object is destroyed without commit() -- an exception,
// a full disk -- the temporary file is removed. SIGINT/SIGTERM/SIGHUP remove every live
// temporary file before the process dies (install_signal_cleanup()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bitttt {

class AtomicOutputFile {
public:
    // Creates the temporary file. Throws IoError naming the folder on failure.
    explicit AtomicOutputFile(std::string final_path);
    ~AtomicOutputFile();
    AtomicOutputFile(const AtomicOutputFile&) = delete;
    AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;

    // Writes all of [data, data+n) at `offset`. Throws IoError (naming the final path
    // and the OS reason, e.g. "No space left on device") on failure.
    void write_at(const void* data, std::size_t n, std::uint64_t offset);
    // Reads back n bytes at offset (used when relocating data inside the file).
    void read_at(void* data, std::size_t n, std::uint64_t offset) const;
    // fsync + rename to the final path. After this the destructor does nothing.
    void commit();
    // Removes the temporary file now.
    void discard() noexcept;

    const std::string& final_path() const { return final_path_; }
    const std::string& temp_path() const { return temp_path_; }

private:
    std::string final_path_;
    std::string temp_path_;
    int fd_ = -1;
    int slot_ = -1;  // index in the signal-cleanup registry
};

// Installs handlers for SIGINT, SIGTERM and SIGHUP that unlink live temporary files and
// then die of the same signal. Idempotent.
void install_signal_cleanup();

}  // namespace bitttt
