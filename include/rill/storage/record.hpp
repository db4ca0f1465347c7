// rill/storage/record.hpp: records going into a log (Record) and coming out (RecordView), and
// the encoding of one record frame (layout in log_format.hpp and docs/format.md).
//
// Thread-safety: Record and RecordView are values. A RecordView points into a segment's mapped
// bytes: it stays valid while whatever handed it out (a RecordBatch, a Log::Reader) keeps that
// segment pinned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>

#include "rill/detail/crc32c.hpp"
#include "rill/storage/log_format.hpp"

namespace rill::storage {

// Kafka's "no timestamp": the log stamps the record with its clock.
inline constexpr std::int64_t kNoTimestamp = -1;

// A record to append. Views only: the bytes must stay alive for the duration of the call.
// Every member has a default, so designated initializers may name any subset:
//   log.append({.key = "user-1", .value = payload});
struct Record {
  std::optional<std::string_view> key{};    // nullopt: no key
  std::optional<std::string_view> value{};  // nullopt: a tombstone (null value), not "empty"
  std::span<const Header> headers{};
  std::int64_t timestamp_ms = kNoTimestamp;
};

// Headers of a stored record, decoded lazily as they are iterated. No allocation.
class HeaderRange {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Header;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Header;

    iterator() = default;
    iterator(const std::byte* p, std::uint32_t left) : p_(p), left_(left) {}
    Header operator*() const {
      const std::uint16_t name_size = read_u16(p_);
      const std::uint32_t value_size = read_u32(p_ + 2);
      const char* name = reinterpret_cast<const char*>(p_ + kRecordHeaderPrefix);
      Header h{std::string_view(name, name_size), std::nullopt};
      if (value_size != kNullSize) h.value = std::string_view(name + name_size, value_size);
      return h;
    }
    iterator& operator++() {
      const std::uint16_t name_size = read_u16(p_);
      const std::uint32_t value_size = read_u32(p_ + 2);
      p_ += kRecordHeaderPrefix + name_size + (value_size == kNullSize ? 0 : value_size);
      --left_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.left_ == b.left_; }

   private:
    const std::byte* p_ = nullptr;
    std::uint32_t left_ = 0;
  };

  HeaderRange() = default;
  HeaderRange(const std::byte* block, std::uint16_t count) : block_(block), count_(count) {}
  iterator begin() const { return iterator(block_, count_); }
  iterator end() const { return iterator(block_, 0); }
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

 private:
  const std::byte* block_ = nullptr;
  std::uint16_t count_ = 0;
};

// A record read from a log: a pointer to a validated frame in the mapping. Eight bytes; every
// accessor decodes its field from the frame.
class RecordView {
 public:
  RecordView() = default;
  explicit RecordView(const std::byte* frame) noexcept : frame_(frame) {}

  std::int64_t offset() const noexcept {
    return static_cast<std::int64_t>(field<std::uint64_t>(8));
  }
  std::int64_t timestamp_ms() const noexcept { return field<std::int64_t>(16); }
  bool has_key() const noexcept { return key_size() != kNullSize; }
  bool is_tombstone() const noexcept { return value_size() == kNullSize; }

  // The key, or nullopt when the record has none.
  std::optional<std::string_view> key() const noexcept {
    if (!has_key()) return std::nullopt;
    return std::string_view(chars() + kFrameHeaderSize, key_size());
  }
  // The value, or nullopt for a tombstone (null value).
  std::optional<std::string_view> value() const noexcept {
    if (is_tombstone()) return std::nullopt;
    return std::string_view(chars() + kFrameHeaderSize + stored(key_size()), value_size());
  }
  HeaderRange headers() const noexcept {
    return HeaderRange(frame_ + kFrameHeaderSize + stored(key_size()) + stored(value_size()),
                       field<std::uint16_t>(32));
  }
  // Bytes the frame occupies in the segment, padding included.
  std::size_t frame_bytes() const noexcept { return align_frame(field<std::uint32_t>(0)); }
  const std::byte* frame() const noexcept { return frame_; }

 private:
  template <typename T>
  T field(std::size_t at) const noexcept {
    T v;
    std::memcpy(&v, frame_ + at, sizeof v);
    return v;
  }
  static std::size_t stored(std::uint32_t size) noexcept { return size == kNullSize ? 0 : size; }
  std::uint32_t key_size() const noexcept { return field<std::uint32_t>(24); }
  std::uint32_t value_size() const noexcept { return field<std::uint32_t>(28); }
  const char* chars() const noexcept { return reinterpret_cast<const char*>(frame_); }

  const std::byte* frame_ = nullptr;
};

// Bytes of the frame for `r`, padding excluded (the `size` field), or 0 if a field does not
// fit its width (a key or value of 4 GiB, more than 65535 headers, a header name over 64 KiB).
inline std::size_t frame_size(const Record& r) noexcept {
  std::uint64_t n = kFrameHeaderSize;
  if (r.key && r.key->size() >= kNullSize) return 0;
  if (r.value && r.value->size() >= kNullSize) return 0;
  if (r.headers.size() > 0xFFFFu) return 0;
  n += r.key ? r.key->size() : 0;
  n += r.value ? r.value->size() : 0;
  for (const Header& h : r.headers) {
    if (h.name.size() > 0xFFFFu) return 0;
    if (h.value && h.value->size() >= kNullSize) return 0;
    n += kRecordHeaderPrefix + h.name.size() + (h.value ? h.value->size() : 0);
  }
  if (n >= kNullSize) return 0;
  return static_cast<std::size_t>(n);
}

// Writes the frame of `r` at `dst`, whose `align_frame(size)` bytes must be zero (preallocated
// and unwritten). `size` is frame_size(r). The size field is stored last, with release.
inline void encode_frame(std::byte* dst, const Record& r, std::size_t size, std::uint64_t offset,
                         std::int64_t timestamp_ms) noexcept {
  FrameHeader h{};
  h.offset = offset;
  h.timestamp_ms = timestamp_ms;
  h.key_size = r.key ? static_cast<std::uint32_t>(r.key->size()) : kNullSize;
  h.value_size = r.value ? static_cast<std::uint32_t>(r.value->size()) : kNullSize;
  h.header_count = static_cast<std::uint16_t>(r.headers.size());
  h.magic = kFrameMagic;
  std::byte* p = dst + kFrameHeaderSize;
  if (r.key && !r.key->empty()) {
    std::memcpy(p, r.key->data(), r.key->size());
    p += r.key->size();
  }
  if (r.value && !r.value->empty()) {
    std::memcpy(p, r.value->data(), r.value->size());
    p += r.value->size();
  }
  std::byte* block = p;
  for (const Header& hd : r.headers) {
    const auto name_size = static_cast<std::uint16_t>(hd.name.size());
    const std::uint32_t value_size =
        hd.value ? static_cast<std::uint32_t>(hd.value->size()) : kNullSize;
    std::memcpy(p, &name_size, 2);
    std::memcpy(p + 2, &value_size, 4);
    p += kRecordHeaderPrefix;
    if (name_size != 0) std::memcpy(p, hd.name.data(), name_size);
    p += name_size;
    if (hd.value && !hd.value->empty()) {
      std::memcpy(p, hd.value->data(), hd.value->size());
      p += hd.value->size();
    }
  }
  h.headers_size = static_cast<std::uint32_t>(p - block);
  std::memcpy(dst + 8, reinterpret_cast<const std::byte*>(&h) + 8, kFrameHeaderSize - 8);
  const std::uint32_t crc = detail::crc32c_extend(0, dst + 8, size - 8);
  std::memcpy(dst + 4, &crc, 4);
  // release: pairs with the acquire in load_frame_size; the frame's other bytes, written
  // above, are visible to whoever sees a non-zero size.
  std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(dst))
      .store(static_cast<std::uint32_t>(size), std::memory_order_release);
}

// Outcome of checking the frame at a position.
enum class FrameStatus {
  kOk,       // a whole, valid frame
  kEnd,      // size 0: nothing was written here (the end of the log, or a never-finished frame)
  kCorrupt,  // something is there but it is not a valid frame
};

struct FrameCheck {
  FrameStatus status;
  const char* reason;  // for kCorrupt: what failed
  RecordView record;
};

// Checks the frame at `frame`, with `room` bytes before the end of what may be read, expected
// to hold `expected_offset`. Structure is always checked (every size within `room`, sizes that
// add up, the magic, the offset); the CRC when `verify_crc`. Never reads outside `room`.
inline FrameCheck check_frame(const std::byte* frame, std::size_t room,
                              std::uint64_t expected_offset, bool verify_crc) noexcept {
  if (room < 4) return {FrameStatus::kEnd, nullptr, {}};
  const std::uint32_t size = load_frame_size(frame);
  if (size == 0) return {FrameStatus::kEnd, nullptr, {}};
  if (size < kFrameHeaderSize || size > room) {
    return {FrameStatus::kCorrupt, "frame size out of bounds", {}};
  }
  FrameHeader h;
  std::memcpy(&h, frame, kFrameHeaderSize);
  if (h.magic != kFrameMagic) return {FrameStatus::kCorrupt, "bad frame magic", {}};
  const std::uint64_t body = std::uint64_t{h.key_size == kNullSize ? 0 : h.key_size} +
                             (h.value_size == kNullSize ? 0 : h.value_size) + h.headers_size;
  if (kFrameHeaderSize + body != size) {
    return {FrameStatus::kCorrupt, "frame field sizes do not add up", {}};
  }
  if (verify_crc && detail::crc32c_extend(0, frame + 8, size - 8) != h.crc) {
    return {FrameStatus::kCorrupt, "frame CRC mismatch", {}};
  }
  if (h.offset != expected_offset) return {FrameStatus::kCorrupt, "unexpected offset", {}};
  if (h.header_count != 0 || h.headers_size != 0) {
    // Walk the header block so that iterating it later cannot run past the frame.
    const std::byte* p = frame + size - h.headers_size;
    std::uint64_t left = h.headers_size;
    for (std::uint32_t i = 0; i < h.header_count; ++i) {
      if (left < kRecordHeaderPrefix) return {FrameStatus::kCorrupt, "bad header block", {}};
      const std::uint16_t name_size = read_u16(p);
      const std::uint32_t value_size = read_u32(p + 2);
      const std::uint64_t n =
          kRecordHeaderPrefix + name_size + (value_size == kNullSize ? 0 : value_size);
      if (n > left) return {FrameStatus::kCorrupt, "bad header block", {}};
      p += n;
      left -= n;
    }
    if (left != 0) return {FrameStatus::kCorrupt, "bad header block", {}};
  }
  return {FrameStatus::kOk, nullptr, RecordView(frame)};
}

}  // namespace rill::storage
