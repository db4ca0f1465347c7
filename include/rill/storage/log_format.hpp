// rill/storage/log_format.hpp: the bytes of a segment on disk. docs/format.md is the normative
// description; this header and that document change together, and a change of layout bumps
// kFormatVersion.
//
// All integers are little-endian. Every file (log, offset index, time index) starts with a
// 64-byte FileHeader:
//
//    0       4       8              16             24                    60      64
//    +-------+---+---+--------------+--------------+---- reserved (0) ---+-------+
//    | magic |ver|kind| base_offset  | created_ms   |                     | crc   |
//    +-------+---+---+--------------+--------------+---------------------+-------+
//    magic = "RILL" (0x4C4C4952), ver = u16 kFormatVersion, kind = u16 FileKind,
//    crc = CRC-32C of bytes [0, 60).
//
// A log file holds, from position 64, a sequence of record batches (Kafka's unit too), each
// starting at a multiple of 8 and padded with zero bytes to the next multiple of 8. One append
// writes one batch (several when it has over 65535 records): one header and one CRC for all
// of its records.
//
//    0        4        8                16               24               32        36    38 39 40
//    +--------+--------+----------------+----------------+----------------+---------+-----+--+--+
//    | size   | crc    | base_offset    | base_timestamp | max_timestamp  |last_dlt | cnt |at|mg|
//    +--------+--------+----------------+----------------+----------------+---------+-----+--+--+
//    | record | record | ... | zero padding to a multiple of 8
//
//    size      u32  bytes of the batch from its first byte to the end of its last record
//                   (padding excluded). 0 means "nothing written here yet": preallocated space
//                   is zero, and the writer stores `size` last, so a batch whose size is 0 was
//                   never completed.
//    crc       u32  CRC-32C of the batch's bytes [8, size): everything but size and crc.
//    base_offset    u64  offset of the first record.
//    base_timestamp i64  timestamp of the first record (ms since the Unix epoch).
//    max_timestamp  i64  the largest timestamp in the batch.
//    last_dlt  u32  offset delta of the last record.
//    cnt       u16  number of records, at least 1.
//    at        u8   attributes: bit 0 kBatchCompacted (offsets may have gaps; see below),
//                   other bits 0.
//    mg        u8   kBatchMagic: the batch layout's version.
//
// A record, packed (no alignment), its integers LEB128 varints ("v"; "z" = zigzag-signed):
//
//    v length        bytes of the record after this field
//    v offset_delta  offset - base_offset
//    z ts_delta      timestamp - base_timestamp
//    v key_len       key bytes + 1; 0 = no key (null), distinct from an empty key
//      key
//    v value_len     value bytes + 1; 0 = null value (a tombstone), distinct from empty
//      value
//    v header_count
//      per header: v name_len, name, v value_len (+1, 0 = null), value
//
// Offsets are dense within and across the batches an appender writes: record i of a batch has
// offset_delta i, and a batch starts where the previous one ended. A batch marked
// kBatchCompacted (written by compaction) may skip offsets: its deltas only increase, and it
// starts at or after where the previous batch ended.
//
// An offset index file holds, from position 64, 8-byte entries {u32 relative offset, u32
// position}; a time index file 16-byte entries {i64 max timestamp so far, u32 relative offset,
// u32 position}. Both are sparse and both mark an unused slot with position 0 (no frame starts
// there, the file header does).
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include "rill/detail/crc32c.hpp"

namespace rill::storage {

static_assert(std::endian::native == std::endian::little,
              "rill's on-disk format is little-endian; big-endian hosts are not supported yet");

inline constexpr std::uint32_t kFileMagic = 0x4C4C4952u;  // "RILL" read as little-endian u32
inline constexpr std::uint16_t kFormatVersion = 2;
inline constexpr std::uint8_t kBatchMagic = 2;
inline constexpr std::uint8_t kBatchCompacted = 1;  // attribute bit
inline constexpr std::uint32_t kNullSize = 0xFFFFFFFFu;
inline constexpr std::size_t kFileHeaderSize = 64;
inline constexpr std::size_t kFrameHeaderSize = 40;  // a batch's header
inline constexpr std::size_t kFrameAlign = 8;
inline constexpr std::size_t kMaxBatchRecords = 0xFFFF;
inline constexpr std::size_t kMinRecordSize = 6;  // six one-byte varints: empty key and value
inline constexpr std::size_t kMaxVarintSize = 10;

enum class FileKind : std::uint16_t { kLog = 1, kOffsetIndex = 2, kTimeIndex = 3 };

struct FileHeader {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;
  std::uint64_t base_offset;
  std::int64_t created_ms;
  std::uint8_t reserved[36];
  std::uint32_t crc;
};
static_assert(sizeof(FileHeader) == kFileHeaderSize);
static_assert(offsetof(FileHeader, base_offset) == 8);
static_assert(offsetof(FileHeader, created_ms) == 16);
static_assert(offsetof(FileHeader, crc) == 60);

struct FrameHeader {
  std::uint32_t size;
  std::uint32_t crc;
  std::uint64_t base_offset;
  std::int64_t base_timestamp_ms;
  std::int64_t max_timestamp_ms;
  std::uint32_t last_offset_delta;
  std::uint16_t count;
  std::uint8_t attributes;
  std::uint8_t magic;
};
static_assert(sizeof(FrameHeader) == kFrameHeaderSize);
static_assert(offsetof(FrameHeader, crc) == 4);
static_assert(offsetof(FrameHeader, base_offset) == 8);
static_assert(offsetof(FrameHeader, base_timestamp_ms) == 16);
static_assert(offsetof(FrameHeader, max_timestamp_ms) == 24);
static_assert(offsetof(FrameHeader, last_offset_delta) == 32);
static_assert(offsetof(FrameHeader, count) == 36);
static_assert(offsetof(FrameHeader, attributes) == 38);
static_assert(offsetof(FrameHeader, magic) == 39);

struct OffsetIndexEntry {
  std::uint32_t relative_offset;
  std::uint32_t position;
};
static_assert(sizeof(OffsetIndexEntry) == 8);

struct TimeIndexEntry {
  std::int64_t max_timestamp_ms;
  std::uint32_t relative_offset;
  std::uint32_t position;
};
static_assert(sizeof(TimeIndexEntry) == 16);

constexpr std::size_t align_frame(std::size_t n) noexcept {
  return (n + kFrameAlign - 1) & ~(kFrameAlign - 1);
}

inline FileHeader make_file_header(FileKind kind, std::uint64_t base_offset,
                                   std::int64_t created_ms) noexcept {
  FileHeader h{};
  h.magic = kFileMagic;
  h.version = kFormatVersion;
  h.kind = static_cast<std::uint16_t>(kind);
  h.base_offset = base_offset;
  h.created_ms = created_ms;
  h.crc = rill::crc32c(&h, offsetof(FileHeader, crc));
  return h;
}

// What is wrong with a file header, or nullptr when it is good.
inline const char* check_file_header(const FileHeader& h, FileKind kind) noexcept {
  if (h.magic != kFileMagic) return "bad magic (not a rill file)";
  if (h.crc != rill::crc32c(&h, offsetof(FileHeader, crc))) return "header CRC mismatch";
  if (h.version != kFormatVersion) return "unsupported format version";
  if (h.kind != static_cast<std::uint16_t>(kind)) return "wrong file kind";
  return nullptr;
}

// A header of a record: a name and an optional value (Kafka allows a null header value).
struct Header {
  std::string_view name;
  std::optional<std::string_view> value;
};

// Reads the `size` field with acquire, pairing with the writer's release store in
// encode_frame: every other byte of a frame whose size reads non-zero is visible. Readers
// inside the appending process synchronise through the published end position instead; this
// order is what keeps a frame whole for a reader that has only the bytes (recovery, or a
// reader in another process).
inline std::uint32_t load_frame_size(const std::byte* frame) noexcept {
  auto* word = reinterpret_cast<std::uint32_t*>(const_cast<std::byte*>(frame));
  return std::atomic_ref<std::uint32_t>(*word).load(std::memory_order_acquire);
}

inline std::uint32_t read_u32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint16_t read_u16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// --- varints (LEB128, as protobuf and Kafka's record format) ---

inline std::size_t varint_size(std::uint64_t v) noexcept {
  // ceil(bits / 7) for bits in [1, 64], as a multiply and a shift: (9 * (bits - 1) + 73) / 64.
  // bits - 1 is written as 63 ^ countl_zero, which compiles to one bsr (bit_width - 1 costs
  // two more instructions), and the rest to one lea and one shift.
  const unsigned top = 63u ^ static_cast<unsigned>(std::countl_zero(v | 1));
  return (9 * top + 73) >> 6;
}
inline std::uint64_t zigzag(std::int64_t v) noexcept {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
inline std::byte* put_varint(std::byte* p, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *p++ = static_cast<std::byte>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<std::byte>(v);
  return p;
}
// The general case of get_varint, out of line.
[[gnu::noinline]] inline const std::byte* get_varint_slow(const std::byte* p, const std::byte* end,
                                                          std::uint64_t* v) noexcept {
  std::uint64_t r = 0;
  for (unsigned shift = 0; p < end && shift < 70; shift += 7) {
    const auto b = static_cast<std::uint8_t>(*p++);
    if (shift == 63 && b > 1) return nullptr;  // beyond 64 bits
    r |= std::uint64_t{b & 0x7Fu} << shift;
    if (b < 0x80) {
      *v = r;
      return p;
    }
  }
  return nullptr;
}

// Reads a varint at `p`, never at or past `end`; nullptr when it does not end before `end`
// or is longer than 10 bytes. Inlined for the one-byte case (values below 128).
[[gnu::always_inline]] inline const std::byte* get_varint(const std::byte* p, const std::byte* end,
                                                          std::uint64_t* v) noexcept {
  if (p < end && static_cast<std::uint8_t>(*p) < 0x80) [[likely]] {
    *v = static_cast<std::uint8_t>(*p);
    return p + 1;
  }
  return get_varint_slow(p, end, v);
}

}  // namespace rill::storage
