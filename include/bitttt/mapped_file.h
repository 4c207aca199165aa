// A read-only memory-mapped file. Never reads the file into RAM; pages come in on
// demand and can be dropped again with release().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bitttt {

class MappedFile {
public:
    MappedFile() = default;
    // Maps `path` read-only. Throws IoError naming the path on failure.
    // An empty file maps to data() == nullptr, size() == 0.
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::uint8_t* data() const { return data_; }
    std::size_t size() const { return size_; }
    const std::string& path() const { return path_; }

    // Hints that [offset, offset+len) will be read soon / in order.
    void will_need(std::size_t offset, std::size_t len) const;
    // Drops the resident pages of [offset, offset+len) from this process (they stay
    // in the page cache). Keeps resident memory bounded when streaming a big file.
    void release(std::size_t offset, std::size_t len) const;

private:
    std::string path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace bitttt
