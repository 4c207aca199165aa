#include <xxhash.h>

#include <algorithm>
#include <vector>

#include "bitttt/btt.h"
#include "bitttt/error.h"
#include "format/le.h"
#include "util/atomic_file.h"

namespace bitttt {

std::uint32_t btt_version_needed(const std::vector<BttTensor>& tensors) {
    std::uint32_t v = kBttMinVersion;
    for (const auto& t : tensors) {
        if (t.encoding != Encoding::Ternary) continue;
        if (t.layout.two_level()) v = std::max<std::uint32_t>(v, 2);
        if (t.layout.tiled()) v = std::max<std::uint32_t>(v, 3);
    }
    return v;
}

using json = nlohmann::json;

namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// Bytes a header with `n` tensor entries may need: the fixed part plus a generous
// allowance per entry (names, shapes, statistics of up to 8 bases).
std::uint64_t header_reserve(const json& header, std::size_t n) {
    return align_up(kBttPreambleBytes + header.dump().size() + 4096 + 1536 * n, kBttAlignment);
}

}  // namespace

struct BttWriter::Impl {
    explicit Impl(const std::string& path) : out(path), hash(XXH64_createState()) {
        if (!hash) throw std::bad_alloc();
    }
    ~Impl() { XXH64_freeState(hash); }
    AtomicOutputFile out;
    XXH64_state_t* hash;
    bool open = false;              // a tensor is being streamed
    BttTensor current;
    std::uint64_t data_offset = 0;  // where the data section starts in the temporary file
    std::uint64_t data_end = 0;     // bytes of data written so far (relative)
};

BttWriter::BttWriter(const std::string& path, json header, std::size_t expected_tensors)
    : impl_(std::make_unique<Impl>(path)), header_(std::move(header)) {
    impl_->data_offset = header_reserve(header_, expected_tensors);
}

BttWriter::~BttWriter() = default;

void BttWriter::add(BttTensor t, const void* data, std::size_t nbytes) {
    begin_tensor(std::move(t));
    append(data, nbytes);
    end_tensor();
}

void BttWriter::begin_tensor(BttTensor t) {
    if (!impl_) throw Error("BttWriter: begin_tensor() after finish()");
    if (impl_->open) throw Error("BttWriter: begin_tensor('" + t.name + "') while '" + impl_->current.name + "' is open");
    for (const auto& other : tensors_) {
        if (other.name == t.name) throw Error("BttWriter: tensor '" + t.name + "' added twice");
    }
    t.offset = align_up(impl_->data_end, kBttAlignment);
    t.size = 0;
    // Zero the alignment gap explicitly so files are byte-for-byte reproducible.
    if (t.offset > impl_->data_end) {
        static const std::uint8_t zeros[kBttAlignment] = {};
        impl_->out.write_at(zeros, t.offset - impl_->data_end, impl_->data_offset + impl_->data_end);
        impl_->data_end = t.offset;
    }
    XXH64_reset(impl_->hash, 0);
    impl_->current = std::move(t);
    impl_->open = true;
}

void BttWriter::append(const void* data, std::size_t nbytes) {
    if (!impl_ || !impl_->open) throw Error("BttWriter: append() with no open tensor");
    impl_->out.write_at(data, nbytes, impl_->data_offset + impl_->data_end);
    XXH64_update(impl_->hash, data, nbytes);
    impl_->data_end += nbytes;
    impl_->current.size += nbytes;
}

BttTensor& BttWriter::end_tensor() {
    if (!impl_ || !impl_->open) throw Error("BttWriter: end_tensor() with no open tensor");
    impl_->current.xxh64 = XXH64_digest(impl_->hash);
    impl_->open = false;
    tensors_.push_back(std::move(impl_->current));
    return tensors_.back();
}

std::uint64_t BttWriter::finish() {
    if (!impl_) throw Error("BttWriter: finish() called twice");
    if (impl_->open) throw Error("BttWriter: finish() while tensor '" + impl_->current.name + "' is open");
    json tensors = json::array();
    for (const auto& t : tensors_) tensors.push_back(t.to_json());
    header_["tensors"] = std::move(tensors);
    // The oldest version that has every feature used, so that older readers read what they can.
    const std::uint32_t version = btt_version_needed(tensors_);
    header_["format_version"] = version;
    const std::string text = header_.dump();

    std::uint64_t needed = align_up(kBttPreambleBytes + text.size(), kBttAlignment);
    if (needed > impl_->data_offset) {
        // The header outgrew its reservation: move the data section up, copying from the
        // end backwards so the ranges may overlap.
        const std::uint64_t shift = needed - impl_->data_offset;
        std::vector<std::uint8_t> buf(std::size_t{8} << 20);
        std::uint64_t remaining = impl_->data_end;
        while (remaining > 0) {
            std::uint64_t chunk = std::min<std::uint64_t>(remaining, buf.size());
            remaining -= chunk;
            impl_->out.read_at(buf.data(), chunk, impl_->data_offset + remaining);
            impl_->out.write_at(buf.data(), chunk, impl_->data_offset + shift + remaining);
        }
        impl_->data_offset = needed;
    }

    std::vector<std::uint8_t> head(impl_->data_offset, ' ');
    std::copy(text.begin(), text.end(), head.begin() + kBttPreambleBytes);
    head[0] = 'B';
    head[1] = 'T';
    head[2] = 'T';
    head[3] = 'T';
    le::put_u32(head.data() + 4, version);
    le::put_u64(head.data() + 8, text.size());
    le::put_u64(head.data() + 16, impl_->data_offset);
    le::put_u64(head.data() + 24, checksum64(text.data(), text.size()));
    impl_->out.write_at(head.data(), head.size(), 0);
    const std::uint64_t size = impl_->data_offset + impl_->data_end;
    impl_->out.commit();
    impl_.reset();
    return size;
}

}  // namespace bitttt
