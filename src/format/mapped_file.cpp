// Read-only memory mapping of a whole file (POSIX).
#include "bitttt/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "bitttt/error.h"

namespace bitttt {

namespace {

std::string os_error(const std::string& what, const std::string& path, int err) {
    return what + " " + path + ": " + std::strerror(err);
}

std::size_t page_size() {
    static const std::size_t size = [] {
        const long p = ::sysconf(_SC_PAGESIZE);
        return p > 0 ? static_cast<std::size_t>(p) : std::size_t{4096};
    }();
    return size;
}

// Closes a descriptor on every exit path of the constructor.
struct FdGuard {
    int fd;
    ~FdGuard() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw IoError(os_error("cannot open", path, errno));
    FdGuard guard{fd};

    struct stat st {};
    if (::fstat(fd, &st) != 0) throw IoError(os_error("cannot stat", path, errno));
    if (!S_ISREG(st.st_mode)) throw IoError("cannot map " + path + ": not a regular file");
    if (st.st_size < 0 ||
        static_cast<std::uintmax_t>(st.st_size) > std::numeric_limits<std::size_t>::max())
        throw IoError("cannot map " + path + ": file too large for the address space");
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) return;  // mmap of length 0 is an error; an empty file is just empty

    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        const int err = errno;
        size_ = 0;
        throw IoError(os_error("cannot mmap", path, err));
    }
    data_ = static_cast<const std::uint8_t*>(p);
    // The mapping keeps the file alive; the descriptor is closed by the guard.
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
        path_ = std::move(other.path_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

namespace {

// madvise() on [offset, offset+len) clipped to the file and widened to whole pages (the
// mapping itself covers whole pages, so the widened range is always inside it). Advice
// is only a hint: failures are ignored.
void advise(const std::uint8_t* data, std::size_t size, std::size_t offset, std::size_t len,
            int advice) {
    if (data == nullptr || offset >= size || len == 0) return;
    const std::size_t end = len > size - offset ? size : offset + len;
    const std::size_t page = page_size();
    const std::size_t first = offset / page * page;
    // size rounded up to a page cannot overflow unless the file fills the address space.
    const std::size_t last = (end + page - 1) / page * page;
    ::madvise(const_cast<std::uint8_t*>(data) + first, last - first, advice);
}

}  // namespace

void MappedFile::will_need(std::size_t offset, std::size_t len) const {
    advise(data_, size_, offset, len, MADV_WILLNEED);
}

// For a private, never-written file mapping, MADV_DONTNEED only drops this process's
// page-table entries: the next access faults the data back in from the page cache (or
// the file). Pages shared with a neighbouring tensor are dropped too; that costs at most
// one extra fault per boundary and keeps resident memory strictly bounded.
void MappedFile::release(std::size_t offset, std::size_t len) const {
    advise(data_, size_, offset, len, MADV_DONTNEED);
}

}  // namespace bitttt
