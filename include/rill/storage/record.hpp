// rill/storage/record.hpp: records going into a log (Record) and coming out (RecordView), and
// the encoding of one record frame (layout in log_format.hpp and docs/format.md).
//
// Thread-safety: Record and RecordView are values. A RecordView points into a segment's mapped
// bytes: it stays valid while whatever handed it out (a RecordBatch, a Log::Reader) keeps that
// segment pinned.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

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

// Headers of a stored record, decoded lazily as they are iterated. No allocation. The block
// was checked when its record was decoded, so iterating cannot run past it.
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
    iterator(const std::byte* p, const std::byte* end, std::uint32_t left)
        : p_(p), end_(end), left_(left) {}
    Header operator*() const {
      Header h;
      (void)decode(&h);
      return h;
    }
    iterator& operator++() {
      Header h;
      p_ = decode(&h);
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
    const std::byte* decode(Header* h) const noexcept {
      std::uint64_t name_len = 0;
      std::uint64_t value_len = 0;
      const std::byte* p = get_varint(p_, end_, &name_len);
      const char* name = reinterpret_cast<const char*>(p);
      p = get_varint(p + name_len, end_, &value_len);
      h->name = std::string_view(name, name_len);
      h->value = std::nullopt;
      if (value_len != 0)
        h->value = std::string_view(reinterpret_cast<const char*>(p), value_len - 1);
      return p + (value_len == 0 ? 0 : value_len - 1);
    }

    const std::byte* p_ = nullptr;
    const std::byte* end_ = nullptr;
    std::uint32_t left_ = 0;
  };

  HeaderRange() = default;
  HeaderRange(const std::byte* block, const std::byte* end, std::uint32_t count)
      : block_(block), end_(end), count_(count) {}
  iterator begin() const { return iterator(block_, end_, count_); }
  iterator end() const { return iterator(block_, end_, 0); }
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

 private:
  const std::byte* block_ = nullptr;
  const std::byte* end_ = nullptr;
  std::uint32_t count_ = 0;
};

// A record read from a log: its decoded fields, with the key, value and headers viewing the
// segment's mapped bytes (zero-copy). A small value; decode_record() fills it.
class RecordView {
 public:
  RecordView() = default;

  std::int64_t offset() const noexcept { return offset_; }
  std::int64_t timestamp_ms() const noexcept { return timestamp_ms_; }
  bool has_key() const noexcept { return key_size_ != kNullSize; }
  bool is_tombstone() const noexcept { return value_size_ == kNullSize; }

  // The key, or nullopt when the record has none.
  std::optional<std::string_view> key() const noexcept {
    if (!has_key()) return std::nullopt;
    return std::string_view(key_, key_size_);
  }
  // The value, or nullopt for a tombstone (null value).
  std::optional<std::string_view> value() const noexcept {
    if (is_tombstone()) return std::nullopt;
    return std::string_view(value_, value_size_);
  }
  HeaderRange headers() const noexcept { return HeaderRange(headers_, end_, header_count_); }
  // Bytes the record's encoding takes in its batch (the batch header not counted).
  std::size_t stored_bytes() const noexcept { return stored_bytes_; }

 private:
  friend const std::byte* decode_record(const std::byte*, const std::byte*, const FrameHeader&,
                                        std::uint64_t, RecordView*, const char**) noexcept;
  friend const std::byte* decode_checked_record(const std::byte*, const FrameHeader&,
                                                RecordView*) noexcept;

  std::int64_t offset_ = 0;
  std::int64_t timestamp_ms_ = 0;
  const char* key_ = nullptr;
  const char* value_ = nullptr;
  const std::byte* headers_ = nullptr;
  const std::byte* end_ = nullptr;
  std::uint32_t key_size_ = kNullSize;
  std::uint32_t value_size_ = kNullSize;
  std::uint32_t header_count_ = 0;
  std::uint32_t stored_bytes_ = 0;
};

// Records read from a log, in offset order: views into mapped bytes that the class deriving
// from it keeps mapped (Log's RecordBatch, LogReader's ReaderBatch). A value; no allocation
// when a derived class refills one that has grown.
class RecordViews {
 public:
  using const_iterator = std::vector<RecordView>::const_iterator;
  const_iterator begin() const noexcept { return records_.begin(); }
  const_iterator end() const noexcept { return records_.end(); }
  std::size_t size() const noexcept { return records_.size(); }
  bool empty() const noexcept { return records_.empty(); }
  const RecordView& operator[](std::size_t i) const noexcept { return records_[i]; }
  // The offset to read next: after the last record, or the requested one when empty (past a
  // compacted batch's gap when that is all the read found).
  std::int64_t next_offset() const noexcept { return next_offset_; }

 protected:
  RecordViews() = default;

  std::vector<RecordView> records_;
  std::int64_t next_offset_ = 0;
};

// --- encoding ---

// Bytes of an optional byte string with its length field (length + 1; 0 for null).
inline std::uint64_t bytes_field_size(const std::optional<std::string_view>& v) noexcept {
  return v ? varint_size(v->size() + 1) + v->size() : 1;
}

// Bytes of a record's header count and headers.
inline std::uint64_t headers_field_size(std::span<const Header> headers) noexcept {
  std::uint64_t n = varint_size(headers.size());
  for (const Header& h : headers) {
    n += varint_size(h.name.size()) + h.name.size() + bytes_field_size(h.value);
  }
  return n;
}

// Bytes of a record's key, value and headers with their length fields: everything after its
// timestamp delta. Does not check the fields' widths (record_payload_size does).
inline std::uint64_t record_payload_bytes(const Record& r) noexcept {
  return bytes_field_size(r.key) + bytes_field_size(r.value) +
         (r.headers.empty() ? 1 : headers_field_size(r.headers));
}

// record_payload_bytes, or 0 when a field does not fit its width (a key or value of 4 GiB or
// more, more than 65535 headers, a header name over 64 KiB).
inline std::uint64_t record_payload_size(const Record& r) noexcept {
  if (r.key && r.key->size() >= kNullSize) return 0;
  if (r.value && r.value->size() >= kNullSize) return 0;
  if (r.headers.size() > 0xFFFFu) return 0;
  for (const Header& h : r.headers) {
    if (h.name.size() > 0xFFFFu) return 0;
    if (h.value && h.value->size() >= kNullSize) return 0;
  }
  return record_payload_bytes(r);
}

// What a record counts for against a size limit: the bytes of a batch holding only it, its
// timestamp delta taken at its widest (10 bytes). An upper bound of what it takes in any
// batch (besides that batch's header). 0 when a field does not fit its width, or the result
// would not fit 32 bits.
inline std::size_t frame_size_of_payload(std::uint64_t payload) noexcept {
  if (payload == 0) return 0;
  const std::uint64_t body = 3 + kMaxVarintSize + payload;  // offset delta <= 65534: 3 bytes
  const std::uint64_t n = kFrameHeaderSize + varint_size(body) + body;
  if (n >= kNullSize) return 0;
  return static_cast<std::size_t>(n);
}
inline std::size_t frame_size(const Record& r) noexcept {
  return frame_size_of_payload(record_payload_size(r));
}

// The most bytes the records of one append take in a segment, as batches with their headers
// and padding: what must fit in a segment (a batch is never split across two). Add records
// with add(); their frame_size()s must be non-zero.
class BatchSizeBound {
 public:
  void add(const Record& r) noexcept { add_frame_size(frame_size(r)); }
  void add_frame_size(std::size_t frame_size) noexcept {
    payload_ += frame_size - kFrameHeaderSize;
    ++records_;
  }
  std::size_t bytes() const noexcept {
    const std::size_t batches = (records_ + kMaxBatchRecords - 1) / kMaxBatchRecords;
    return payload_ + batches * align_frame(kFrameHeaderSize + kFrameAlign - 1);
  }

 private:
  std::size_t payload_ = 0;
  std::size_t records_ = 0;
};

// Bytes a record may take beyond its key and value bytes when it has no headers: length (at
// most 5 bytes, as a frame is under 4 GiB), offset delta (3), timestamp delta (10), key and
// value lengths (5 each), header count (1).
inline constexpr std::size_t kMaxPlainRecordOverhead = 5 + 3 + kMaxVarintSize + 5 + 5 + 1;

// A quick upper bound of BatchSizeBound::bytes() of `records`, with a quick check that each is
// valid, in one pass of a few instructions per record and no branch: when no record has
// headers, no timestamp is below kNoTimestamp and every record's key and value bytes plus
// kMaxPlainRecordOverhead fit in `max_frame_bytes` less a batch header, every frame_size() is
// non-zero and at most `max_frame_bytes`, and the sum returned is at least BatchSizeBound's.
// 0 when `records` is empty or the quick check fails: the caller then measures record by
// record (frame_size()), which also says which rule a record breaks.
inline std::size_t quick_batch_bound(std::span<const Record> records,
                                     std::size_t max_frame_bytes) noexcept {
  std::uint64_t sum = 0;
  std::uint64_t widest = 0;
  std::uint64_t headers = 0;
  std::int64_t min_ts = kNoTimestamp;
  for (const Record& r : records) {
    const std::uint64_t bytes = (r.key ? r.key->size() : 0) + (r.value ? r.value->size() : 0);
    sum += bytes;
    widest = std::max(widest, bytes);
    headers |= r.headers.size();
    min_ts = std::min(min_ts, r.timestamp_ms);
  }
  // `widest` is below 2^64 - 69 (each size is at most PTRDIFF_MAX), so this cannot wrap; when
  // it passes, each record counted less than 4 GiB, and `sum` could only wrap for 2^32
  // records.
  if (records.empty() || headers != 0 || min_ts < kNoTimestamp ||
      widest + kFrameHeaderSize + kMaxPlainRecordOverhead > max_frame_bytes) {
    return 0;
  }
  const std::size_t batches = (records.size() + kMaxBatchRecords - 1) / kMaxBatchRecords;
  return sum + records.size() * kMaxPlainRecordOverhead +
         batches * align_frame(kFrameHeaderSize + kFrameAlign - 1);
}

// put_varint, inlined for values below 2^14 (one or two bytes): a record's length, its deltas
// and its field lengths nearly always are, and the byte loop's branches cost more than the
// bytes.
[[gnu::always_inline]] inline std::byte* put_varint_short(std::byte* p, std::uint64_t v) noexcept {
  if (v < 0x80) [[likely]] {
    *p = static_cast<std::byte>(v);
    return p + 1;
  }
  if (v < 0x4000) {
    const auto w = static_cast<std::uint16_t>((v & 0x7F) | 0x80 | ((v >> 7) << 8));
    std::memcpy(p, &w, 2);
    return p + 2;
  }
  return put_varint(p, v);
}

// Copies `n` bytes; keys and header fields of a few bytes are copied inline (two overlapping
// loads and stores), which a call to memcpy would cost several times over. `src` may be null
// when `n` is 0.
[[gnu::always_inline]] inline void copy_bytes(std::byte* dst, const char* src,
                                              std::size_t n) noexcept {
  if (n > 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    std::uint64_t a;
    std::uint64_t b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a;
    std::uint32_t b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else if (n != 0) {
    dst[0] = static_cast<std::byte>(src[0]);
    dst[n / 2] = static_cast<std::byte>(src[n / 2]);
    dst[n - 1] = static_cast<std::byte>(src[n - 1]);
  }
}

// Writes an optional byte string with its length field; returns the byte after it.
[[gnu::always_inline]] inline std::byte* put_bytes_field(
    std::byte* p, const std::optional<std::string_view>& v) noexcept {
  if (!v) {
    *p = std::byte{0};
    return p + 1;
  }
  p = put_varint_short(p, v->size() + 1);
  copy_bytes(p, v->data(), v->size());
  return p + v->size();
}

// Writes a record's headers (count and fields) at `p` and returns the byte after them.
inline std::byte* put_headers(std::byte* p, std::span<const Header> headers) noexcept {
  p = put_varint(p, headers.size());
  for (const Header& h : headers) {
    p = put_varint_short(p, h.name.size());
    copy_bytes(p, h.name.data(), h.name.size());
    p += h.name.size();
    p = put_bytes_field(p, h.value);
  }
  return p;
}

// Writes a key or value field at `p` (length + 1, 0 for null, then the bytes); returns the
// byte after it. `len_field` is the field's length value, `bytes` its bytes (empty when null).
[[gnu::always_inline]] inline std::byte* put_field(std::byte* p, std::uint64_t len_field,
                                                   std::string_view bytes) noexcept {
  if (len_field == 0) {  // null: no bytes to copy, and copy_bytes's size tests are skipped
    *p = std::byte{0};
    return p + 1;
  }
  p = put_varint_short(p, len_field);
  copy_bytes(p, bytes.data(), bytes.size());
  return p + bytes.size();
}

// Writes one record at `p` and returns the byte after it.
[[gnu::always_inline]] inline std::byte* encode_record(std::byte* p, const Record& r,
                                                       std::uint64_t offset_delta,
                                                       std::int64_t ts_delta) noexcept {
  // Every field is read before the first byte is written: bytes are written through
  // std::byte pointers, which may alias anything, so a field read after a store would be
  // loaded again.
  const std::string_view key = r.key ? *r.key : std::string_view();
  const std::string_view value = r.value ? *r.value : std::string_view();
  const std::uint64_t key_len = r.key ? key.size() + 1 : 0;  // the length fields: 0 for null
  const std::uint64_t value_len = r.value ? value.size() + 1 : 0;
  const std::span<const Header> headers = r.headers;
  const std::uint64_t ts = zigzag(ts_delta);
  const std::uint64_t body = varint_size(offset_delta) + varint_size(ts) + varint_size(key_len) +
                             key.size() + varint_size(value_len) + value.size() +
                             (headers.empty() ? 1 : headers_field_size(headers));
  p = put_varint_short(p, body);
  p = put_varint_short(p, offset_delta);
  p = put_varint_short(p, ts);
  p = put_field(p, key_len, key);
  p = put_field(p, value_len, value);
  if (headers.empty()) [[likely]] {
    *p = std::byte{0};
    return p + 1;
  }
  return put_headers(p, headers);
}

// encode_record for a record without headers whose timestamp delta is 0: what an append of
// records stamped by the log writes, with fewer fields to measure and write.
[[gnu::always_inline]] inline std::byte* encode_plain_record(std::byte* p, const Record& r,
                                                             std::uint64_t offset_delta) noexcept {
  const std::string_view key = r.key ? *r.key : std::string_view();
  const std::string_view value = r.value ? *r.value : std::string_view();
  const std::uint64_t key_len = r.key ? key.size() + 1 : 0;
  const std::uint64_t value_len = r.value ? value.size() + 1 : 0;
  // offset delta, timestamp delta (one byte: 0), key, value, header count (one byte: 0).
  const std::uint64_t body = varint_size(offset_delta) + 1 + varint_size(key_len) + key.size() +
                             varint_size(value_len) + value.size() + 1;
  p = put_varint_short(p, body);
  p = put_varint_short(p, offset_delta);
  *p++ = std::byte{0};
  p = put_field(p, key_len, key);
  p = put_field(p, value_len, value);
  *p = std::byte{0};
  return p + 1;
}

// The general case of encode_batch's loop, out of line so that the usual case keeps its
// registers: writes records [i, end) at `p`, stamping those without a timestamp with `now_ms`,
// raises *max_ts to their newest, and returns the byte after them.
[[gnu::noinline]] inline std::byte* encode_records(std::byte* p, std::span<const Record> records,
                                                   std::size_t i, std::int64_t base_ts,
                                                   std::int64_t now_ms,
                                                   std::int64_t* max_ts) noexcept {
  std::int64_t max = *max_ts;
  for (; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::int64_t ts = r.timestamp_ms == kNoTimestamp ? now_ms : r.timestamp_ms;
    max = std::max(max, ts);
    p = encode_record(p, r, i, ts - base_ts);
  }
  *max_ts = max;
  return p;
}

struct EncodedBatch {
  std::size_t size;  // the batch's size field (padding excluded)
  std::int64_t max_timestamp_ms;
};

// Writes `records` (1 to 65535) as one batch at `dst`, whose bytes up to the end of the batch
// and its padding must be zero (preallocated, unwritten). Record i gets offset base_offset + i
// and its timestamp, or `now_ms` when it has none. The size field is stored last, with
// release: a reader that sees it sees the whole batch.
inline EncodedBatch encode_batch(std::byte* dst, std::span<const Record> records,
                                 std::uint64_t base_offset, std::int64_t now_ms) noexcept {
  const std::int64_t base_ts =
      records[0].timestamp_ms == kNoTimestamp ? now_ms : records[0].timestamp_ms;
  std::int64_t max_ts = base_ts;
  std::byte* p = dst + kFrameHeaderSize;
  std::size_t i = 0;
  if (base_ts == now_ms) {
    // The usual append: records without headers, stamped by the log, so every timestamp
    // delta is 0 and max_ts stays now_ms. Until a record that is not.
    for (; i < records.size(); ++i) {
      const Record& r = records[i];
      if (r.timestamp_ms != kNoTimestamp || !r.headers.empty()) break;
      p = encode_plain_record(p, r, i);
    }
  }
  if (i < records.size()) {
    p = encode_records(p, records, i, base_ts, now_ms, &max_ts);
  }
  // The header's fields after size and crc, in place (offsets: FrameHeader's static_asserts).
  const auto last_delta = static_cast<std::uint32_t>(records.size() - 1);
  const auto count = static_cast<std::uint16_t>(records.size());
  const std::uint8_t tail[2] = {0, kBatchMagic};  // attributes, magic
  std::memcpy(dst + offsetof(FrameHeader, base_offset), &base_offset, 8);
  std::memcpy(dst + offsetof(FrameHeader, base_timestamp_ms), &base_ts, 8);
  std::memcpy(dst + offsetof(FrameHeader, max_timestamp_ms), &max_ts, 8);
  std::memcpy(dst + offsetof(FrameHeader, last_offset_delta), &last_delta, 4);
  std::memcpy(dst + offsetof(FrameHeader, count), &count, 2);
  std::memcpy(dst + offsetof(FrameHeader, attributes), tail, 2);
  const auto size = static_cast<std::size_t>(p - dst);
  const std::uint32_t crc = detail::crc32c_extend(0, dst + 8, size - 8);
  std::memcpy(dst + 4, &crc, 4);
  // release: pairs with the acquire in load_frame_size; the batch's other bytes, written
  // above, are visible to whoever sees a non-zero size.
  std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(dst))
      .store(static_cast<std::uint32_t>(size), std::memory_order_release);
  return {size, max_ts};
}

// A record as stored in a batch, for compaction to copy without re-encoding its key, value and
// headers: its offset and timestamp, and the bytes of its record from the key's length field
// to its end (key, value, headers), which do not depend on the batch around them.
struct StoredRecord {
  std::uint64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  const std::byte* payload = nullptr;
  std::size_t payload_bytes = 0;
};

// Bytes of `r` re-encoded in a batch with `base_offset` and `base_timestamp_ms`.
inline std::size_t stored_record_size(const StoredRecord& r, std::uint64_t base_offset,
                                      std::int64_t base_timestamp_ms) noexcept {
  const std::uint64_t body = varint_size(r.offset - base_offset) +
                             varint_size(zigzag(r.timestamp_ms - base_timestamp_ms)) +
                             r.payload_bytes;
  return varint_size(body) + body;
}

// Bytes encode_compacted_batch writes for `records` (padding excluded).
inline std::size_t compacted_batch_size(std::span<const StoredRecord> records,
                                        std::uint64_t base_offset) noexcept {
  std::size_t n = kFrameHeaderSize;
  const std::int64_t base_ts = records.empty() ? 0 : records[0].timestamp_ms;
  for (const StoredRecord& r : records) n += stored_record_size(r, base_offset, base_ts);
  return n;
}

// Writes a batch with the kBatchCompacted attribute at `dst` (zero up to the batch's padded
// end, as encode_batch): `records` (0 to 65535, offsets increasing, each in [base_offset,
// end_offset)) keep their offsets and timestamps; the batch spans the offsets [base_offset,
// end_offset) whatever it holds, so offsets dropped before, between and after its records are
// gaps readers skip (docs/format.md, "Record batches"). An empty batch takes `empty_ts_ms` as
// its timestamps (>= 0). REQUIRES: end_offset - base_offset - 1 fits 32 bits.
// Returns the size field. The buffer is private to compaction until it is renamed into place,
// so the size needs no release store.
inline std::size_t encode_compacted_batch(std::byte* dst, std::span<const StoredRecord> records,
                                          std::uint64_t base_offset, std::uint64_t end_offset,
                                          std::int64_t empty_ts_ms) noexcept {
  FrameHeader h{};
  h.base_offset = base_offset;
  h.base_timestamp_ms = records.empty() ? empty_ts_ms : records[0].timestamp_ms;
  h.max_timestamp_ms = h.base_timestamp_ms;
  h.last_offset_delta = static_cast<std::uint32_t>(end_offset - base_offset - 1);
  h.count = static_cast<std::uint16_t>(records.size());
  h.attributes = kBatchCompacted;
  h.magic = kBatchMagic;
  std::byte* p = dst + kFrameHeaderSize;
  for (const StoredRecord& r : records) {
    h.max_timestamp_ms = std::max(h.max_timestamp_ms, r.timestamp_ms);
    const std::uint64_t delta = r.offset - base_offset;
    const std::uint64_t ts = zigzag(r.timestamp_ms - h.base_timestamp_ms);
    p = put_varint(p, varint_size(delta) + varint_size(ts) + r.payload_bytes);
    p = put_varint(p, delta);
    p = put_varint(p, ts);
    std::memcpy(p, r.payload, r.payload_bytes);
    p += r.payload_bytes;
  }
  const auto size = static_cast<std::size_t>(p - dst);
  h.size = static_cast<std::uint32_t>(size);
  std::memcpy(dst, &h, kFrameHeaderSize);
  h.crc = detail::crc32c_extend(0, dst + 8, size - 8);
  std::memcpy(dst + 4, &h.crc, 4);
  return size;
}

// --- decoding ---

// Outcome of checking the batch at a position.
enum class FrameStatus {
  kOk,       // a whole, valid batch
  kEnd,      // size 0: nothing was written here (the end of the log, or a never-finished batch)
  kCorrupt,  // something is there but it is not a valid batch
};

// Decodes the record at `p` of the batch with header `h`, not reading at or past `end` (the
// batch's end). `min_delta` is the offset delta it must have (or, in a compacted batch, at
// least have). Returns the byte after the record, or nullptr with `*reason` set when it is
// malformed. Checks every length against `end`, so a damaged batch read without its CRC
// checked still never yields a view outside it.
[[gnu::always_inline]] inline const std::byte* decode_record(
    const std::byte* p, const std::byte* end, const FrameHeader& h, std::uint64_t min_delta,
    RecordView* out, const char** reason) noexcept {
  std::uint64_t body = 0;
  std::uint64_t delta = 0;
  std::uint64_t ts = 0;
  const std::byte* start = p;
  p = get_varint(p, end, &body);
  if (p == nullptr || body > static_cast<std::uint64_t>(end - p)) {
    *reason = "record length out of bounds";
    return nullptr;
  }
  const std::byte* rec_end = p + body;
  p = get_varint(p, rec_end, &delta);
  if (p != nullptr) p = get_varint(p, rec_end, &ts);
  if (p == nullptr) {
    *reason = "bad record fields";
    return nullptr;
  }
  const bool compacted = (h.attributes & kBatchCompacted) != 0;
  if (compacted ? delta < min_delta : delta != min_delta) {
    *reason = "unexpected offset";
    return nullptr;
  }
  if (delta > h.last_offset_delta) {
    *reason = "offset delta past the batch's last";
    return nullptr;
  }
  const std::uint64_t stamp =
      static_cast<std::uint64_t>(h.base_timestamp_ms) + static_cast<std::uint64_t>(unzigzag(ts));
  if (stamp > static_cast<std::uint64_t>(h.max_timestamp_ms)) {
    *reason = "timestamp outside the batch's range";
    return nullptr;
  }
  out->offset_ = static_cast<std::int64_t>(h.base_offset + delta);
  out->timestamp_ms_ = static_cast<std::int64_t>(stamp);
  std::uint64_t len = 0;
  p = get_varint(p, rec_end, &len);  // the key
  if (p == nullptr || len > static_cast<std::uint64_t>(rec_end - p) + 1) {
    *reason = "bad record fields";
    return nullptr;
  }
  out->key_ = reinterpret_cast<const char*>(p);
  out->key_size_ = static_cast<std::uint32_t>(len - 1);  // kNullSize when len is 0
  p += len == 0 ? 0 : len - 1;
  p = get_varint(p, rec_end, &len);  // the value
  if (p == nullptr || len > static_cast<std::uint64_t>(rec_end - p) + 1) {
    *reason = "bad record fields";
    return nullptr;
  }
  out->value_ = reinterpret_cast<const char*>(p);
  out->value_size_ = static_cast<std::uint32_t>(len - 1);
  p += len == 0 ? 0 : len - 1;
  std::uint64_t header_count = 0;
  p = get_varint(p, rec_end, &header_count);
  if (p == nullptr || header_count > 0xFFFFu) {
    *reason = "bad record fields";
    return nullptr;
  }
  out->headers_ = p;
  out->header_count_ = static_cast<std::uint32_t>(header_count);
  for (std::uint64_t i = 0; i < header_count; ++i) {
    std::uint64_t name_len = 0;
    p = get_varint(p, rec_end, &name_len);
    if (p == nullptr || name_len > static_cast<std::uint64_t>(rec_end - p)) {
      *reason = "bad header block";
      return nullptr;
    }
    p = get_varint(p + name_len, rec_end, &len);
    if (p == nullptr || len > static_cast<std::uint64_t>(rec_end - p) + 1) {
      *reason = "bad header block";
      return nullptr;
    }
    p += len == 0 ? 0 : len - 1;
  }
  if (p != rec_end) {
    *reason = "record fields do not add up";
    return nullptr;
  }
  out->end_ = rec_end;
  out->stored_bytes_ = static_cast<std::uint32_t>(rec_end - start);
  return rec_end;
}

// Reads a varint of bytes already checked, and moves `p` past it.
[[gnu::always_inline]] inline std::uint64_t take_checked_varint(const std::byte*& p) noexcept {
  if (static_cast<std::uint8_t>(*p) < 0x80) [[likely]] {
    return static_cast<std::uint8_t>(*p++);
  }
  std::uint64_t v = 0;
  p = get_varint_slow(p, p + kMaxVarintSize, &v);
  return v;
}

// decode_record for a record of a batch that check_frame() accepted: the same fields, none of
// the checks (they all passed). Never for bytes that were not checked whole.
[[gnu::always_inline]] inline const std::byte* decode_checked_record(const std::byte* p,
                                                                     const FrameHeader& h,
                                                                     RecordView* out) noexcept {
  const std::byte* const start = p;
  const std::uint64_t body = take_checked_varint(p);
  const std::byte* const rec_end = p + body;
  const std::uint64_t delta = take_checked_varint(p);
  const std::uint64_t ts = take_checked_varint(p);
  out->offset_ = static_cast<std::int64_t>(h.base_offset + delta);
  out->timestamp_ms_ = h.base_timestamp_ms + unzigzag(ts);
  std::uint64_t len = take_checked_varint(p);
  out->key_ = reinterpret_cast<const char*>(p);
  out->key_size_ = static_cast<std::uint32_t>(len - 1);  // kNullSize when len is 0
  p += len == 0 ? 0 : len - 1;
  len = take_checked_varint(p);
  out->value_ = reinterpret_cast<const char*>(p);
  out->value_size_ = static_cast<std::uint32_t>(len - 1);
  p += len == 0 ? 0 : len - 1;
  out->header_count_ = static_cast<std::uint32_t>(take_checked_varint(p));
  out->headers_ = p;
  out->end_ = rec_end;
  out->stored_bytes_ = static_cast<std::uint32_t>(rec_end - start);
  return rec_end;
}

// Appends to `out` the records of a batch that check_frame() accepted (read with
// decode_checked_record) whose offsets are at or after `at`, moving `at` past each and adding
// its stored_bytes() to `bytes`. Stops before a record that would make `out` hold more than
// `max_records`, or (unless `out` is empty) take `bytes` over `max_bytes`, and returns true
// then: the caller's batch is full. `p` is the batch's first record.
[[gnu::always_inline]] inline bool take_checked_records(
    const std::byte* p, const FrameHeader& h, std::size_t max_records, std::size_t max_bytes,
    std::vector<RecordView>& out, std::uint64_t& at, std::size_t& bytes) noexcept {
  std::uint32_t i = 0;
  if (h.base_offset < at) {  // a read starting inside the batch: skip the records before `at`
    for (; i < h.count; ++i) {
      const std::byte* q = p;
      RecordView rv;
      q = decode_checked_record(q, h, &rv);
      if (static_cast<std::uint64_t>(rv.offset()) >= at) break;
      p = q;
    }
  }
  const std::size_t room = max_records - out.size();  // REQUIRES out.size() <= max_records
  if (max_bytes == SIZE_MAX && h.count - i <= room) {
    // The whole rest of the batch fits: no limit to check per record.
    const std::size_t before = out.size();
    for (; i < h.count; ++i) {
      RecordView& rv = out.emplace_back();
      p = decode_checked_record(p, h, &rv);
    }
    // Nothing taken when every record lay before `at` (a compacted batch with a gap there):
    // `at` stays, and out.back() may not even exist.
    if (out.size() != before) at = static_cast<std::uint64_t>(out.back().offset()) + 1;
    return false;
  }
  for (; i < h.count; ++i) {
    RecordView rv;
    p = decode_checked_record(p, h, &rv);
    if (out.size() >= max_records || (!out.empty() && bytes + rv.stored_bytes() > max_bytes)) {
      return true;
    }
    out.push_back(rv);
    bytes += rv.stored_bytes();
    at = static_cast<std::uint64_t>(rv.offset()) + 1;
  }
  return false;
}

// Where a read stands in a segment: the batch at `position` starts at offset `expect` (or
// after it, when compacted); `at` is the next offset to return.
struct ReadCursor {
  std::uint64_t position;
  std::uint64_t expect;
  std::uint64_t at;
};

// The common case of a read, on its own so that it keeps its few variables in registers:
// appends to `out` the records of the batches from c.position up to `trusted_end`, which
// check_frame() accepted before (they are read without any check), stopping before a batch at
// or past offset `limit`. A batch the read must split (it starts before c.at, or holds more
// records than `out` may still take before it has `max_records`) stops it too: the caller's
// general loop handles that one. Batches wholly before c.at are skipped. Moves `c` past
// what it read. REQUIRES out.size() <= max_records; no byte limit.
inline void read_checked_batches(const std::byte* base, std::uint64_t trusted_end,
                                 std::uint64_t limit, std::size_t max_records,
                                 std::vector<RecordView>& out, ReadCursor& c) noexcept {
  std::uint64_t pos = c.position;
  std::uint64_t at = c.at;
  std::uint64_t expect = c.expect;
  // Room for the records first, then decoded in place: a push_back per record copied each
  // through the stack and kept a reallocation call (and the register spills around it) in
  // the loop. Each record has its own offset below `limit`: no more than limit - at come.
  const std::size_t first = out.size();
  const std::size_t room = std::min<std::uint64_t>(max_records - first, limit - at);
  out.resize(first + room);
  RecordView* dst = out.data() + first;
  RecordView* const dst_end = dst + room;
  while (pos < trusted_end) {
    const std::byte* const f = base + pos;
    std::uint32_t size;
    std::uint64_t base_offset;
    std::uint32_t last_offset_delta;
    std::uint16_t count;
    std::memcpy(&size, f + offsetof(FrameHeader, size), sizeof size);
    std::memcpy(&base_offset, f + offsetof(FrameHeader, base_offset), sizeof base_offset);
    std::memcpy(&last_offset_delta, f + offsetof(FrameHeader, last_offset_delta),
                sizeof last_offset_delta);
    std::memcpy(&count, f + offsetof(FrameHeader, count), sizeof count);
    if (base_offset >= limit) break;  // not yet the reader's
    const std::uint64_t next = base_offset + last_offset_delta + 1;
    if (next > at) {
      if (base_offset < at || count > dst_end - dst) break;  // split: the general loop's
      FrameHeader h;
      h.base_offset = base_offset;
      std::memcpy(&h.base_timestamp_ms, f + offsetof(FrameHeader, base_timestamp_ms),
                  sizeof h.base_timestamp_ms);
      const std::byte* p = f + kFrameHeaderSize;
      for (std::uint32_t i = 0; i < count; ++i) p = decode_checked_record(p, h, dst++);
      at = next;
    }
    expect = next;
    pos += align_frame(size);
  }
  out.resize(static_cast<std::size_t>(dst - out.data()));
  c.position = pos;
  c.at = at;
  c.expect = expect;
}

// The offset after the batch's last record.
inline std::uint64_t batch_next_offset(const FrameHeader& h) noexcept {
  return h.base_offset + h.last_offset_delta + 1;
}

struct FrameCheck {
  FrameStatus status;
  const char* reason;  // for kCorrupt: what failed
  FrameHeader header;
};

// Checks the header of the batch at `frame`, with `room` bytes before the end of what may be
// read, expected to start at `expected_offset` (or after it, when compacted): size within
// `room`, magic, count, offsets; the CRC when `verify_crc`. The records are not decoded (see
// check_frame). Never reads outside `room`.
inline FrameCheck check_frame_header(const std::byte* frame, std::size_t room,
                                     std::uint64_t expected_offset, bool verify_crc) noexcept {
  FrameCheck c{FrameStatus::kEnd, nullptr, {}};
  if (room < 4) return c;
  const std::uint32_t size = load_frame_size(frame);
  if (size == 0) return c;
  c.status = FrameStatus::kCorrupt;
  if (size < kFrameHeaderSize || size > room) {
    c.reason = "frame size out of bounds";
    return c;
  }
  std::memcpy(&c.header, frame, kFrameHeaderSize);
  const FrameHeader& h = c.header;
  if ((h.count == 0) != (size == kFrameHeaderSize)) {  // records, at least 6 bytes each, or none
    c.reason = "frame size out of bounds";
    return c;
  }
  if (h.magic != kBatchMagic || (h.attributes & ~kBatchCompacted) != 0) {
    c.reason = "bad frame magic";
    return c;
  }
  if (verify_crc && detail::crc32c_extend(0, frame + 8, size - 8) != h.crc) {
    c.reason = "frame CRC mismatch";
    return c;
  }
  const bool compacted = (h.attributes & kBatchCompacted) != 0;
  // An empty batch only after compaction: it keeps the offsets of records all dropped.
  if (compacted ? h.base_offset < expected_offset
                : h.count == 0 || h.base_offset != expected_offset ||
                      h.last_offset_delta + 1u != h.count) {
    c.reason = "unexpected offset";
    return c;
  }
  if (h.last_offset_delta + 1u < h.count || h.base_timestamp_ms < 0 ||
      h.max_timestamp_ms < h.base_timestamp_ms ||
      h.base_offset + h.last_offset_delta >= static_cast<std::uint64_t>(INT64_MAX)) {
    // Offsets are int64: a record at 2^63 - 1 would make the log's end offset negative.
    c.reason = "bad batch header";
    return c;
  }
  c.status = FrameStatus::kOk;
  return c;
}

// check_frame_header, and then every record decoded: they must fill the batch exactly, with
// the offsets and timestamps its header announces (in a compacted batch, within them).
inline FrameCheck check_frame(const std::byte* frame, std::size_t room,
                              std::uint64_t expected_offset, bool verify_crc) noexcept {
  FrameCheck c = check_frame_header(frame, room, expected_offset, verify_crc);
  if (c.status != FrameStatus::kOk) return c;
  const FrameHeader& h = c.header;
  const std::byte* p = frame + kFrameHeaderSize;
  const std::byte* end = frame + h.size;
  std::uint64_t next_delta = 0;
  std::int64_t max_ts = -1;
  RecordView rv;
  for (std::uint32_t i = 0; i < h.count; ++i) {
    p = decode_record(p, end, h, next_delta, &rv, &c.reason);
    if (p == nullptr) {
      c.status = FrameStatus::kCorrupt;
      return c;
    }
    next_delta = static_cast<std::uint64_t>(rv.offset()) - h.base_offset + 1;
    max_ts = std::max(max_ts, rv.timestamp_ms());
  }
  // A compacted batch may have lost its last records: it still spans its original offsets.
  const bool compacted = (h.attributes & kBatchCompacted) != 0;
  const std::uint64_t span = std::uint64_t{h.last_offset_delta} + 1;
  if (p != end || (compacted ? next_delta > span : next_delta != span) ||
      (h.count != 0 && max_ts != h.max_timestamp_ms)) {
    c.status = FrameStatus::kCorrupt;
    c.reason = "batch records do not match its header";
  }
  return c;
}

// The records of one batch, decoded one at a time with decode_record, for code that walks a
// batch whose header check_frame_header accepted (a dump, a read-only reader). Offsets skip a
// compacted batch's gaps; an empty batch has no records. Never reads outside the batch.
//   BatchRecords records(frame, check.header);
//   for (RecordView r; records.next(&r);) use(r);
//   if (records.damage() != nullptr) report(records.damage());
class BatchRecords {
 public:
  BatchRecords(const std::byte* frame, const FrameHeader& h) noexcept
      : h_(h), p_(frame + kFrameHeaderSize), end_(frame + h.size), left_(h.count) {}

  // Decodes the next record into `*out`. False after the last record, or at a malformed one
  // (damage() then says why).
  bool next(RecordView* out) noexcept {
    if (left_ == 0 || p_ == nullptr) return false;
    p_ = decode_record(p_, end_, h_, next_delta_, out, &damage_);
    if (p_ == nullptr) return false;
    next_delta_ = static_cast<std::uint64_t>(out->offset()) - h_.base_offset + 1;
    --left_;
    return true;
  }
  // Why next() stopped before the batch's last record, or null.
  const char* damage() const noexcept { return damage_; }

 private:
  FrameHeader h_;
  const std::byte* p_;
  const std::byte* end_;
  std::uint32_t left_;
  std::uint64_t next_delta_ = 0;
  const char* damage_ = nullptr;
};

}  // namespace rill::storage
