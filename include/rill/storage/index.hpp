// rill/storage/index.hpp: a segment's sparse offset index and time index, each a preallocated,
// mapped file of fixed-size entries after a 64-byte FileHeader (layout in log_format.hpp).
//
// Indexes are an acceleration, never the truth: the log file is. Any index that is missing,
// has a bad header, or whose entries fail validation is rebuilt from the log by the segment.
//
// Thread-safety: one writer (the log's appender, under its lock) and any number of readers.
// The writer stores an entry, then publishes the count with release; readers load the count
// with acquire and only look at entries below it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "rill/detail/mmap_file.hpp"
#include "rill/result.hpp"
#include "rill/storage/log_format.hpp"

namespace rill::storage {

template <typename Entry, FileKind kKind>
class SparseIndex {
 public:
  SparseIndex() = default;
  SparseIndex(SparseIndex&& o) noexcept
      : file_(std::move(o.file_)),
        map_(std::move(o.map_)),
        capacity_(o.capacity_),
        count_(o.count_.load(std::memory_order_relaxed)) {}
  SparseIndex& operator=(SparseIndex&&) = delete;

  // Creates (truncating any old file) an empty index able to hold `capacity` entries. An empty
  // `path` makes an in-memory index. `mode`: the new file's permissions (before the umask).
  static Result<SparseIndex> create(const std::string& path, std::uint64_t base_offset,
                                    std::int64_t created_ms, std::size_t capacity,
                                    mode_t mode = detail::kDefaultFileMode) {
    SparseIndex idx;
    idx.capacity_ = capacity;
    const std::size_t bytes = kFileHeaderSize + capacity * sizeof(Entry);
    if (path.empty()) {
      auto m = detail::Mapping::map_anonymous(bytes);
      if (!m) return fail(std::move(m).error());
      idx.map_ = std::move(*m);
    } else {
      auto f = detail::File::open(path, O_RDWR | O_CREAT | O_TRUNC, mode);
      if (!f) return fail(std::move(f).error());
      RILL_TRY(f->allocate(bytes));
      auto m = detail::Mapping::map_file(*f, bytes, true);
      if (!m) return fail(std::move(m).error());
      idx.file_ = std::move(*f);
      idx.map_ = std::move(*m);
    }
    const FileHeader h = make_file_header(kKind, base_offset, created_ms);
    std::memcpy(idx.map_.data(), &h, sizeof h);
    (void)idx.map_.populate(0, bytes);  // small; spares the appender faults on index pages
    return idx;
  }

  // Opens an existing index file and checks it: header (kind, base offset), then entries
  // strictly increasing in relative offset and position, positions within [64, log_end),
  // relative offsets below `max_relative`. Fails with kCorruption when any check fails, so
  // the caller rebuilds it.
  static Result<SparseIndex> open(const std::string& path, std::uint64_t base_offset,
                                  std::uint64_t log_end, std::uint64_t max_relative) {
    auto f = detail::File::open(path, O_RDWR);
    if (!f) return fail(std::move(f).error());
    auto size = f->size();
    if (!size) return fail(std::move(size).error());
    if (*size < kFileHeaderSize) return fail(ErrorCode::kCorruption, path + ": too short");
    SparseIndex idx;
    idx.capacity_ = (*size - kFileHeaderSize) / sizeof(Entry);
    auto m = detail::Mapping::map_file(*f, kFileHeaderSize + idx.capacity_ * sizeof(Entry), true);
    if (!m) return fail(std::move(m).error());
    idx.file_ = std::move(*f);
    idx.map_ = std::move(*m);
    FileHeader h;
    std::memcpy(&h, idx.map_.data(), sizeof h);
    if (const char* why = check_file_header(h, kKind))
      return fail(ErrorCode::kCorruption, path + ": " + why);
    if (h.base_offset != base_offset) {
      return fail(ErrorCode::kCorruption, path + ": base offset does not match its log");
    }
    std::size_t n = 0;
    const Entry* e = idx.entries_ptr();
    for (; n < idx.capacity_ && e[n].position != 0; ++n) {
      // Frames start at multiples of 8: a position that is not one is damage, and would
      // have check_frame load a misaligned size field (UB) when used as a hint.
      const bool in_bounds = e[n].position >= kFileHeaderSize && e[n].position < log_end &&
                             e[n].position % kFrameAlign == 0 &&
                             e[n].relative_offset < max_relative;
      const bool increasing = n == 0 || (e[n].position > e[n - 1].position &&
                                         e[n].relative_offset > e[n - 1].relative_offset);
      if (!in_bounds || !increasing || !extra_ok(e, n)) {
        return fail(ErrorCode::kCorruption, path + ": entry " + std::to_string(n) + " is invalid");
      }
    }
    idx.count_.store(static_cast<std::uint32_t>(n), std::memory_order_relaxed);
    return idx;
  }

  // Appends an entry; a full index silently stops growing (it is sparse: lookups then scan
  // further). Writer only.
  void append(const Entry& e) noexcept {
    const std::uint32_t n = count_.load(std::memory_order_relaxed);  // writer's own value
    if (n >= capacity_) return;
    std::memcpy(entries_ptr() + n, &e, sizeof e);
    // release: pairs with the acquire in entries(); the entry above is visible to readers
    // that see the new count.
    count_.store(n + 1, std::memory_order_release);
  }

  std::span<const Entry> entries() const noexcept {
    // acquire: pairs with the release in append().
    return {entries_ptr(), count_.load(std::memory_order_acquire)};
  }

  // Gives back the unused tail of the file once the segment is sealed.
  Result<void> shrink_to_fit() {
    if (!file_.valid()) return {};
    return file_.truncate(kFileHeaderSize + count_.load(std::memory_order_relaxed) * sizeof(Entry));
  }

  // Closes the file descriptor; the mapping stays. Sealed segments do this so that a log of
  // thousands of segments does not hold thousands of descriptors.
  void close_file() noexcept { file_.close(); }

 private:
  Entry* entries_ptr() const noexcept {
    return reinterpret_cast<Entry*>(map_.data() + kFileHeaderSize);
  }
  static bool extra_ok(const Entry* e, std::size_t n) noexcept {
    if constexpr (requires { e[n].max_timestamp_ms; }) {
      return n == 0 || e[n].max_timestamp_ms >= e[n - 1].max_timestamp_ms;
    } else {
      return true;
    }
  }

  detail::File file_;
  detail::Mapping map_;
  std::size_t capacity_ = 0;
  std::atomic<std::uint32_t> count_{0};
};

using OffsetIndex = SparseIndex<OffsetIndexEntry, FileKind::kOffsetIndex>;
using TimeIndex = SparseIndex<TimeIndexEntry, FileKind::kTimeIndex>;

// Position of the last indexed frame at or before `relative_offset`, or 0 when there is none
// (scan from the first frame).
inline std::uint32_t lookup_offset(std::span<const OffsetIndexEntry> entries,
                                   std::uint32_t relative_offset) noexcept {
  auto it = std::upper_bound(
      entries.begin(), entries.end(), relative_offset,
      [](std::uint32_t v, const OffsetIndexEntry& e) { return v < e.relative_offset; });
  return it == entries.begin() ? 0 : std::prev(it)->position;
}

// Where to start scanning for the first record with timestamp >= `ts`: the indexed frame just
// before the first entry whose running maximum reaches `ts` (every record before that frame
// has a smaller timestamp), or 0 for the segment's first frame.
inline std::uint32_t lookup_time(std::span<const TimeIndexEntry> entries,
                                 std::int64_t ts) noexcept {
  auto it = std::lower_bound(
      entries.begin(), entries.end(), ts,
      [](const TimeIndexEntry& e, std::int64_t v) { return e.max_timestamp_ms < v; });
  return it == entries.begin() ? 0 : std::prev(it)->position;
}

}  // namespace rill::storage
