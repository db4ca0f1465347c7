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
// A log file holds, from position 64, a sequence of record frames, each starting at a
// multiple of 8 and padded with zero bytes to the next multiple of 8:
//
//    0        4        8                16               24       28       32   34  35  36      40
//    +--------+--------+----------------+----------------+--------+--------+----+---+---+-------+
//    | size   | crc    | offset         | timestamp_ms   |key_size|val_size|hdrs|atr|mgc|hdr_sz |
//    +--------+--------+----------------+----------------+--------+--------+----+---+---+-------+
//    | key bytes | value bytes | header block | zero padding to a multiple of 8              ...
//
//    size      u32  bytes of the frame from its first byte to the end of the header block
//                   (padding excluded). 0 means "nothing written here yet": preallocated space
//                   is zero, and the writer stores `size` last, so a frame whose size is 0 was
//                   never completed.
//    crc       u32  CRC-32C of the frame's bytes [8, size): everything but size and crc.
//    offset    u64  the record's offset (dense: the previous frame's offset + 1).
//    timestamp i64  milliseconds since the Unix epoch.
//    key_size  u32  bytes of key; 0xFFFFFFFF = no key (null), distinct from an empty key.
//    val_size  u32  bytes of value; 0xFFFFFFFF = null value (a tombstone), distinct from empty.
//    hdrs      u16  number of headers.
//    atr       u8   attributes; 0. Reserved for control and transactional records.
//    mgc       u8   kFrameMagic: the frame layout's version.
//    hdr_sz    u32  bytes of the header block.
//    header block: per header, u16 name_size, u32 value_size (0xFFFFFFFF = null), name, value.
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
inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr std::uint8_t kFrameMagic = 1;
inline constexpr std::uint32_t kNullSize = 0xFFFFFFFFu;
inline constexpr std::size_t kFileHeaderSize = 64;
inline constexpr std::size_t kFrameHeaderSize = 40;
inline constexpr std::size_t kFrameAlign = 8;
inline constexpr std::size_t kRecordHeaderPrefix = 6;  // u16 name_size + u32 value_size

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
  std::uint64_t offset;
  std::int64_t timestamp_ms;
  std::uint32_t key_size;
  std::uint32_t value_size;
  std::uint16_t header_count;
  std::uint8_t attributes;
  std::uint8_t magic;
  std::uint32_t headers_size;
};
static_assert(sizeof(FrameHeader) == kFrameHeaderSize);
static_assert(offsetof(FrameHeader, crc) == 4);
static_assert(offsetof(FrameHeader, offset) == 8);
static_assert(offsetof(FrameHeader, timestamp_ms) == 16);
static_assert(offsetof(FrameHeader, key_size) == 24);
static_assert(offsetof(FrameHeader, value_size) == 28);
static_assert(offsetof(FrameHeader, header_count) == 32);
static_assert(offsetof(FrameHeader, attributes) == 34);
static_assert(offsetof(FrameHeader, magic) == 35);
static_assert(offsetof(FrameHeader, headers_size) == 36);

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

}  // namespace rill::storage
