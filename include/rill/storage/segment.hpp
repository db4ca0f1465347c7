// rill/storage/segment.hpp: one segment of a partition log: a log file of record frames
// named by its 20-digit base offset ("00000000000000000042.log"), preallocated to the segment
// size and mapped MAP_SHARED, plus its sparse offset index (".index") and time index
// (".timeindex"). An in-memory segment has the same layout in anonymous memory.
//
// Thread-safety: one appender at a time (the owning Log serialises them) and any number of
// concurrent readers. The appender writes a frame's bytes, then publishes the segment's end
// position and end offset with release stores; readers load them with acquire and never look
// past them. A Segment is shared through std::shared_ptr: whoever holds one keeps its mapping
// valid, even after retention has deleted its files.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "rill/detail/mmap_file.hpp"
#include "rill/result.hpp"
#include "rill/storage/index.hpp"
#include "rill/storage/log_format.hpp"
#include "rill/storage/record.hpp"

namespace rill::storage {

// "dir/00000000000000000042.log" and friends.
inline std::string segment_file_name(std::uint64_t base_offset, const char* suffix) {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64, base_offset);
  return std::string(name) + suffix;
}

// Counts the records of the batches in bytes [position, limit) of a log file whose sizes still
// chain (CRC not checked), skipping a damaged batch whose size is plausible: what recovery
// reports as dropped records. A best effort: the counts come from headers that may be damaged
// too.
inline std::uint64_t count_batch_records(const std::byte* data, std::uint64_t limit,
                                         std::uint64_t position) noexcept {
  std::uint64_t n = 0;
  while (position + kFrameHeaderSize <= limit) {
    const std::uint32_t size = read_u32(data + position);
    if (size < kFrameHeaderSize || size > limit - position) break;
    FrameHeader h;
    std::memcpy(&h, data + position, kFrameHeaderSize);
    n += std::max<std::uint16_t>(h.count, 1);  // a batch was (meant to be) here
    position += align_frame(size);
  }
  return n;
}

// Checks the file header at the start of a log file's mapped bytes (at least kFileHeaderSize
// of them) for the segment named `base_offset`: what both a writer (Segment::open_file) and a
// read-only reader (ReadOnlySegment::open) require before trusting anything after it. Errors:
// kCorruption naming `path`.
inline Result<FileHeader> read_log_file_header(const std::string& path, const std::byte* data,
                                               std::uint64_t base_offset) {
  FileHeader h;
  std::memcpy(&h, data, sizeof h);
  if (const char* why = check_file_header(h, FileKind::kLog)) {
    return fail(ErrorCode::kCorruption, path + ": " + why);
  }
  if (h.base_offset != base_offset) {
    return fail(ErrorCode::kCorruption, path + ": header base offset " +
                                            std::to_string(h.base_offset) +
                                            " does not match the file name");
  }
  return h;
}

struct SegmentLayout {
  std::size_t capacity_bytes;                   // bytes of the log file, header included
  std::size_t index_interval_bytes;             // log bytes between index entries
  mode_t file_mode = detail::kDefaultFileMode;  // permissions of new files (before the umask)
};

// What a scan of a segment found: where its valid frames end, and what (if anything) lies
// beyond them that is not a valid frame.
struct ScanResult {
  std::uint64_t end_position = kFileHeaderSize;  // first byte after the last valid frame
  std::uint64_t end_offset = 0;                  // offset after the last valid frame
  std::int64_t max_timestamp_ms = -1;
  const char* damage = nullptr;  // why scanning stopped, when it was not a clean end
};

class Segment {
 public:
  // Bytes of a new segment faulted in when it is created (the log's background thread or its
  // appenders do the rest: Log::prefault_segment).
  static constexpr std::size_t kInitialPopulateBytes = 256u << 10;

  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  ~Segment() = default;

  // Creates an empty segment with `base_offset` in `dir` (in memory when `dir` is empty).
  // Fails with kNoSpace when the disk cannot hold the preallocation; nothing is left behind.
  static Result<std::shared_ptr<Segment>> create(const std::string& dir, std::uint64_t base_offset,
                                                 std::int64_t now_ms, const SegmentLayout& layout) {
    std::shared_ptr<Segment> s(new Segment(dir, base_offset, layout));
    s->created_ms_ = now_ms;
    auto r = s->create_files(now_ms);
    if (!r) {
      s->remove_files();
      return fail(std::move(r).error());
    }
    return s;
  }

  // Maps an existing log file for recovery; indexes are attached by attach_indexes().
  // `capacity_bytes` of 0 maps exactly the file (a sealed segment); otherwise the file is grown
  // to at least that size first (the active segment). `file`, when not empty, is the file to
  // map instead of log_path(): compaction opens "<base>.log.cleaned" before renaming it.
  static Result<std::shared_ptr<Segment>> open_file(const std::string& dir,
                                                    std::uint64_t base_offset,
                                                    const SegmentLayout& layout, bool active,
                                                    const std::string& file = {}) {
    std::shared_ptr<Segment> s(new Segment(dir, base_offset, layout));
    auto f = detail::File::open(file.empty() ? s->log_path() : file, O_RDWR);
    if (!f) return fail(std::move(f).error());
    auto size = f->size();
    if (!size) return fail(std::move(size).error());
    std::size_t map_bytes = static_cast<std::size_t>(*size);
    if (active) {
      map_bytes = std::max(map_bytes, layout.capacity_bytes);
      if (map_bytes > *size) RILL_TRY(f->allocate(map_bytes));
    }
    s->file_size_ = map_bytes;
    s->layout_.capacity_bytes = map_bytes;
    if (map_bytes < kFileHeaderSize) {
      return fail(ErrorCode::kCorruption, s->log_path() + ": shorter than its header");
    }
    auto m = detail::Mapping::map_file(*f, map_bytes, true);
    if (!m) return fail(std::move(m).error());
    s->file_ = std::make_shared<detail::File>(std::move(*f));  // not shared yet: no lock
    s->map_ = std::move(*m);
    auto h = read_log_file_header(s->log_path(), s->map_.data(), base_offset);
    if (!h) return fail(std::move(h).error());
    s->created_ms_ = h->created_ms;
    return s;
  }

  // Walks batches from `from_position` (a batch start where offset `from_offset` is expected)
  // to the first position that is not a whole valid batch, checking CRCs when `verify_crc`.
  ScanResult scan(std::uint64_t from_position, std::uint64_t from_offset, bool verify_crc,
                  std::uint64_t limit) const noexcept {
    ScanResult r;
    r.end_position = from_position;
    r.end_offset = from_offset;
    limit = std::min<std::uint64_t>(limit, map_.size());
    while (r.end_position < limit) {
      const FrameCheck c = check_frame(map_.data() + r.end_position, limit - r.end_position,
                                       r.end_offset, verify_crc);
      if (c.status == FrameStatus::kEnd) break;
      if (c.status == FrameStatus::kCorrupt) {
        r.damage = c.reason;
        break;
      }
      r.max_timestamp_ms = std::max(r.max_timestamp_ms, c.header.max_timestamp_ms);
      r.end_position += align_frame(c.header.size);
      r.end_offset = batch_next_offset(c.header);
    }
    return r;
  }

  // Rebuilds both indexes from the batches in [64, end_position), replacing their files.
  Result<void> rebuild_indexes(std::uint64_t end_position) {
    RILL_TRY(create_indexes(created_ms_));
    std::uint64_t pos = kFileHeaderSize;
    std::uint64_t offset = base_offset_;
    while (pos < end_position) {
      const FrameCheck c = check_frame_header(map_.data() + pos, end_position - pos, offset, false);
      RILL_ASSERT(c.status == FrameStatus::kOk, "rebuilding an index over unscanned batches");
      note_frame(c.header.base_offset, pos, c.header.max_timestamp_ms, align_frame(c.header.size));
      pos += align_frame(c.header.size);
      offset = batch_next_offset(c.header);
    }
    return {};
  }

  // Opens the index files of a recovered segment, rebuilding any that is missing or invalid.
  // Returns true when it had to rebuild.
  Result<bool> attach_indexes(std::uint64_t end_position, std::uint64_t end_offset) {
    // Rebuild over the frames that are there. For a sealed segment not yet scanned,
    // `end_position` is the file's end, which may lie past the last frame (zeros left by a
    // roll killed before seal(), or damage), and rebuild_indexes asserts on anything that is
    // not a frame: tests/corruption_test.cpp aborted on a deleted index of such a segment.
    const auto rebuild = [&]() -> Result<bool> {
      RILL_TRY(
          rebuild_indexes(scan(kFileHeaderSize, base_offset_, false, end_position).end_position));
      return true;
    };
    if (dir_.empty()) return rebuild();
    const std::uint64_t max_rel = end_offset - base_offset_;
    auto oi = OffsetIndex::open(index_path(), base_offset_, end_position, max_rel);
    auto ti = TimeIndex::open(time_index_path(), base_offset_, end_position, max_rel);
    // Each frame that gets an index entry gets one in both (note_frame), so the two must
    // agree entry by entry. Damage to one file that still passes its own checks (cut short,
    // a position moved to another frame-aligned spot) shows up here without reading the log;
    // tests/corruption_test.cpp saw a shortened time index make offset_for_time skip records.
    bool agree = oi && ti && oi->entries().size() == ti->entries().size();
    for (std::size_t i = 0; agree && i < oi->entries().size(); ++i) {
      agree = oi->entries()[i].relative_offset == ti->entries()[i].relative_offset &&
              oi->entries()[i].position == ti->entries()[i].position;
    }
    if (!agree) return rebuild();
    offset_index_.emplace(std::move(*oi));
    time_index_.emplace(std::move(*ti));
    return false;
  }

  // Sets the published state after recovery (single-threaded, before the log is shared).
  // `verified`: the scan checked every frame's CRC from the segment's start.
  void restore(const ScanResult& r, bool verified) noexcept {
    verified_to_.store(verified ? r.end_position : kFileHeaderSize, std::memory_order_relaxed);
    end_position_.store(r.end_position, std::memory_order_relaxed);
    end_offset_.store(r.end_offset, std::memory_order_relaxed);
    max_timestamp_ms_.store(r.max_timestamp_ms, std::memory_order_relaxed);
    write_position_ = r.end_position;
    bytes_since_index_ = index_interval();  // index the next frame
  }

  // --- appender side (callers serialise) ---

  std::uint64_t write_position() const noexcept { return write_position_; }
  std::size_t capacity_bytes() const noexcept { return layout_.capacity_bytes; }
  bool has_room(std::size_t frame_bytes) const noexcept {
    return write_position_ + frame_bytes <= layout_.capacity_bytes;
  }
  std::byte* write_ptr() noexcept { return map_.data() + write_position_; }

  // Records a batch starting at `offset` written at `position` (write_position() when
  // appending): updates indexes and the write position. Not yet visible to readers until
  // publish(). `timestamp_ms`: the batch's newest.
  void note_frame(std::uint64_t offset, std::uint64_t position, std::int64_t timestamp_ms,
                  std::size_t frame_bytes) noexcept {
    const std::int64_t max_ts =
        std::max(max_timestamp_ms_.load(std::memory_order_relaxed), timestamp_ms);
    // relaxed: published to readers by the release in publish().
    max_timestamp_ms_.store(max_ts, std::memory_order_relaxed);
    if (bytes_since_index_ >= index_interval()) {
      const auto rel = static_cast<std::uint32_t>(offset - base_offset_);
      const auto pos = static_cast<std::uint32_t>(position);
      offset_index_->append({rel, pos});
      time_index_->append({max_ts, rel, pos});
      bytes_since_index_ = 0;
    }
    bytes_since_index_ += frame_bytes;
    write_position_ = position + frame_bytes;
  }

  // Makes every frame noted so far visible: release stores, paired with the acquire loads in
  // end_position() / end_offset(). The position goes first so that a reader who sees the new
  // end offset also sees at least the bytes that hold it.
  void publish(std::uint64_t end_offset) noexcept {
    // relaxed: a hint for readers' CRC checks, ordered for them by the release just below.
    // Frames this process wrote need no check against its own memory.
    verified_to_.store(write_position_, std::memory_order_relaxed);
    end_position_.store(write_position_, std::memory_order_release);
    end_offset_.store(end_offset, std::memory_order_release);
  }

  // Freezes the segment when the log rolls past it: gives back the preallocated tail of the
  // files and marks it sealed, so readers move on to the next segment.
  void seal() noexcept {
    const std::uint64_t end = write_position_;
    // The mappings keep the bytes; descriptors are not needed once nothing grows. The log
    // file's is closed when `file` goes out of scope below, or later, when a sync() that took
    // it before (from another thread, under the Log's sync lock only) is done with it.
    std::shared_ptr<detail::File> file;
    {
      std::lock_guard lock(file_mu_);
      file = std::move(file_);
    }
    if (file) {
      // Best effort: a failed truncate leaves zeros that recovery skips.
      (void)file->truncate(end);
      (void)offset_index_->shrink_to_fit();
      (void)time_index_->shrink_to_fit();
      offset_index_->close_file();
      time_index_->close_file();
    } else {
      const std::size_t page = detail::Mapping::page_size();
      const std::size_t from = (end + page - 1) & ~(page - 1);
      if (from < map_.size()) ::madvise(map_.data() + from, map_.size() - from, MADV_DONTNEED);
    }
    // release: pairs with the acquire in sealed(); a reader that sees the seal sees the final
    // end position and offset.
    sealed_.store(true, std::memory_order_release);
  }

  // --- reader side (any thread) ---

  std::uint64_t base_offset() const noexcept { return base_offset_; }
  std::int64_t created_ms() const noexcept { return created_ms_; }
  // acquire: pairs with the release in publish().
  std::uint64_t end_position() const noexcept {
    return end_position_.load(std::memory_order_acquire);
  }
  std::uint64_t end_offset() const noexcept { return end_offset_.load(std::memory_order_acquire); }
  bool sealed() const noexcept { return sealed_.load(std::memory_order_acquire); }
  std::int64_t max_timestamp_ms() const noexcept {
    return max_timestamp_ms_.load(std::memory_order_acquire);
  }
  const std::byte* data() const noexcept { return map_.data(); }

  // Frames in [64, verified_to()) are known whole: written by this process, or CRC-checked by
  // recovery or by an earlier read. Readers check CRCs only past it.
  std::uint64_t verified_to() const noexcept {
    // relaxed: read after end_position()'s acquire, which orders it.
    return verified_to_.load(std::memory_order_relaxed);
  }
  // A reader CRC-checked [from, to) and from <= verified_to(): the known-good prefix grows.
  void mark_verified(std::uint64_t from, std::uint64_t to) const noexcept {
    extend(verified_to_, from, to);
  }
  // Frames in [64, structure_checked_to()) passed every check but the CRC's: a log reading with
  // verify_checksums off checks no more, and decodes their records without bounds checks after
  // that. Kept apart from verified_to(), which compaction trusts to skip CRC checks.
  std::uint64_t structure_checked_to() const noexcept {
    // relaxed: read after end_position()'s acquire, which orders it.
    return structure_checked_to_.load(std::memory_order_relaxed);
  }
  void mark_structure_checked(std::uint64_t from, std::uint64_t to) const noexcept {
    extend(structure_checked_to_, from, to);
  }
  std::size_t size_bytes() const noexcept { return end_position(); }

  // The position to start scanning from for `offset` (from the sparse offset index).
  std::uint64_t position_hint(std::uint64_t offset, std::uint64_t* hint_offset) const noexcept {
    const auto rel = static_cast<std::uint32_t>(offset - base_offset_);
    const auto entries = offset_index_->entries();
    auto it = std::upper_bound(
        entries.begin(), entries.end(), rel,
        [](std::uint32_t v, const OffsetIndexEntry& e) { return v < e.relative_offset; });
    if (it == entries.begin()) {
      *hint_offset = base_offset_;
      return kFileHeaderSize;
    }
    --it;
    *hint_offset = base_offset_ + it->relative_offset;
    return it->position;
  }

  // The position to start scanning from for the first record with timestamp >= ts, and the
  // offset of the frame there.
  std::uint64_t time_hint(std::int64_t ts, std::uint64_t* hint_offset) const noexcept {
    const auto entries = time_index_->entries();
    auto it = std::lower_bound(
        entries.begin(), entries.end(), ts,
        [](const TimeIndexEntry& e, std::int64_t v) { return e.max_timestamp_ms < v; });
    if (it == entries.begin()) {
      *hint_offset = base_offset_;
      return kFileHeaderSize;
    }
    --it;
    *hint_offset = base_offset_ + it->relative_offset;
    return it->position;
  }

  // --- durability and prefaulting ---

  // Writes [from, to) of the log file back to disk and waits for it (msync + fdatasync).
  // On Linux msync(MS_SYNC) of a shared file mapping also syncs the file (vfs_fsync_range),
  // so a sealed segment, whose descriptor is closed, needs nothing more. Safe to run while
  // the segment is sealed (Log::flush runs without the append lock): it holds the descriptor
  // it checked until fdatasync returns, where it once read a descriptor seal() was closing
  // (EBADF: an append under every_append failed although its records were in the log; or
  // the fdatasync of another file that reused the number).
  Result<void> sync(std::uint64_t from, std::uint64_t to) const {
    if (in_memory()) return {};
    RILL_TRY(map_.sync(from, to));
    const std::shared_ptr<detail::File> f = file();
    if (!f) return {};  // sealed after the msync above, which synced the file
    return f->sync_data();
  }

  // Faults in the pages of [from, to) ahead of the appender (see Log::prefault_segment);
  // 0 or an errno (detail::Mapping::populate).
  int populate(std::uint64_t from, std::uint64_t to) const noexcept {
    return map_.populate(from, to);
  }
  // How far populate() has run ahead; raised by the Log's worker and by its appenders.
  std::atomic<std::uint64_t>& prefaulted_to() noexcept { return prefaulted_to_; }

  // Deletes the segment's files. The mapping stays valid until the last holder lets go.
  void remove_files() noexcept {
    if (dir_.empty()) return;
    ::unlink(log_path().c_str());
    remove_index_files();
  }
  // Retention's two steps: the log file, with its error (the segment is gone once this
  // succeeds: a reopen does not find it), then the indexes, best effort (an index left
  // without its log file is removed by the next open).
  Result<void> remove_log_file() const {
    if (dir_.empty()) return {};
    return detail::remove_file(log_path());
  }
  void remove_index_files() const noexcept {
    if (dir_.empty()) return;
    ::unlink(index_path().c_str());
    ::unlink(time_index_path().c_str());
  }

  std::string log_path() const { return dir_ + "/" + segment_file_name(base_offset_, ".log"); }
  std::string index_path() const { return dir_ + "/" + segment_file_name(base_offset_, ".index"); }
  std::string time_index_path() const {
    return dir_ + "/" + segment_file_name(base_offset_, ".timeindex");
  }
  bool in_memory() const noexcept { return dir_.empty(); }

  // Zeroes [from, to) of the log mapping: recovery clears what it truncated so that the next
  // frames land on zero bytes, as the format requires.
  void zero(std::uint64_t from, std::uint64_t to) noexcept {
    to = std::min<std::uint64_t>(to, map_.size());
    if (from < to) std::memset(map_.data() + from, 0, to - from);
  }

  // One past the last non-zero byte of the log mapping in [from, to); `from` when all are zero.
  // Skips what the file system reports as holes (lseek SEEK_DATA / SEEK_HOLE): a preallocated
  // segment is mostly unwritten extents, which read as zeros, and reading them through the
  // mapping would fault in (and zero) every page of the segment on each open.
  std::uint64_t nonzero_end(std::uint64_t from, std::uint64_t to) const noexcept {
    to = std::min<std::uint64_t>(to, map_.size());
    to = std::min(to, data_end(from, to));
    const std::byte* p = map_.data();
    while (to > from && (to % 8) != 0 && p[to - 1] == std::byte{0}) --to;
    while (to >= from + 8 && (to % 8) == 0) {
      std::uint64_t w;
      std::memcpy(&w, p + to - 8, 8);
      if (w != 0) break;
      to -= 8;
    }
    while (to > from && p[to - 1] == std::byte{0}) --to;
    return std::max(to, from);
  }

  // The end of the last region in [from, to) that the file system holds as data (not a hole,
  // not an unwritten extent without cached pages); `from` when there is none. `to` when the
  // file system cannot tell (no SEEK_DATA, or an in-memory segment): everything may be data.
  std::uint64_t data_end(std::uint64_t from, std::uint64_t to) const noexcept {
#if defined(SEEK_DATA) && defined(SEEK_HOLE)
    const std::shared_ptr<detail::File> f = file();
    if (!f) return to;
    std::uint64_t end = from;
    for (std::uint64_t at = from; at < to;) {
      const off_t data = ::lseek(f->fd(), static_cast<off_t>(at), SEEK_DATA);
      if (data < 0) return errno == ENXIO ? end : to;  // ENXIO: no data past `at`
      if (static_cast<std::uint64_t>(data) >= to) break;
      const off_t hole = ::lseek(f->fd(), data, SEEK_HOLE);
      if (hole < 0) return to;
      end = std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), to);
      at = static_cast<std::uint64_t>(hole);
    }
    return std::max(end, from);
#else
    (void)from;
    return to;
#endif
  }

  // The running maximum timestamp recorded by the last time index entry, or -1.
  std::int64_t indexed_max_timestamp_ms() const noexcept {
    const auto entries = time_index_->entries();
    return entries.empty() ? -1 : entries.back().max_timestamp_ms;
  }

  // Counts the records of the batches from `position` on whose sizes still chain (see
  // count_batch_records): what recovery reports as dropped records.
  std::uint64_t count_frames_from(std::uint64_t position, std::uint64_t limit) const noexcept {
    return count_batch_records(map_.data(), std::min<std::uint64_t>(limit, map_.size()), position);
  }

 private:
  // Grows a checked prefix [64, *prefix) by [from, to) when the two touch: readers that
  // checked different stretches leave it at the first gap. relaxed: a hint for readers, who
  // see the bytes it covers through end_position()'s acquire.
  static void extend(std::atomic<std::uint64_t>& prefix, std::uint64_t from,
                     std::uint64_t to) noexcept {
    std::uint64_t cur = prefix.load(std::memory_order_relaxed);
    while (from <= cur && cur < to &&
           !prefix.compare_exchange_weak(cur, to, std::memory_order_relaxed)) {
    }
  }

  Segment(std::string dir, std::uint64_t base_offset, const SegmentLayout& layout)
      : dir_(std::move(dir)), base_offset_(base_offset), layout_(layout) {
    end_offset_.store(base_offset, std::memory_order_relaxed);
    bytes_since_index_ = index_interval();
  }

  std::size_t index_interval() const noexcept {
    return std::max<std::size_t>(layout_.index_interval_bytes, 1);
  }

  // The log file while the segment is active; null once sealed, and in memory.
  std::shared_ptr<detail::File> file() const {
    std::lock_guard lock(file_mu_);
    return file_;
  }

  std::size_t index_capacity() const noexcept {
    const std::size_t min_frame = align_frame(kFrameHeaderSize + kMinRecordSize);
    return layout_.capacity_bytes / std::max(layout_.index_interval_bytes, min_frame) + 2;
  }

  Result<void> create_files(std::int64_t now_ms) {
    const FileHeader h = make_file_header(FileKind::kLog, base_offset_, now_ms);
    if (dir_.empty()) {
      auto m = detail::Mapping::map_anonymous(layout_.capacity_bytes);
      if (!m) return fail(std::move(m).error());
      map_ = std::move(*m);
    } else {
      auto f = detail::File::open(log_path(), O_RDWR | O_CREAT | O_EXCL, layout_.file_mode);
      if (!f) return fail(std::move(f).error());
      file_ = std::make_shared<detail::File>(std::move(*f));  // not shared yet: no lock
      RILL_TRY(file_->allocate(layout_.capacity_bytes));
      auto m = detail::Mapping::map_file(*file_, layout_.capacity_bytes, true);
      if (!m) return fail(std::move(m).error());
      map_ = std::move(*m);
    }
    file_size_ = layout_.capacity_bytes;
    RILL_TRY(create_indexes(now_ms));
    std::memcpy(map_.data(), &h, sizeof h);
    // Fault in the first pages now, while the new segment is not yet visible, so the first
    // appends do not race the background prefaulter page by page; best effort.
    const std::size_t initial =
        std::min<std::size_t>(layout_.capacity_bytes, kInitialPopulateBytes);
    // relaxed: not yet visible to any other thread.
    if (map_.populate(0, initial) == 0) prefaulted_to_.store(initial, std::memory_order_relaxed);
    write_position_ = kFileHeaderSize;
    end_position_.store(kFileHeaderSize, std::memory_order_relaxed);
    return {};
  }

  Result<void> create_indexes(std::int64_t now_ms) {
    const std::string oi_path = dir_.empty() ? std::string() : index_path();
    const std::string ti_path = dir_.empty() ? std::string() : time_index_path();
    offset_index_.reset();
    time_index_.reset();
    auto oi =
        OffsetIndex::create(oi_path, base_offset_, now_ms, index_capacity(), layout_.file_mode);
    if (!oi) return fail(std::move(oi).error());
    auto ti = TimeIndex::create(ti_path, base_offset_, now_ms, index_capacity(), layout_.file_mode);
    if (!ti) return fail(std::move(ti).error());
    offset_index_.emplace(std::move(*oi));
    time_index_.emplace(std::move(*ti));
    bytes_since_index_ = index_interval();
    return {};
  }

  const std::string dir_;
  const std::uint64_t base_offset_;
  SegmentLayout layout_;
  std::int64_t created_ms_ = 0;
  std::size_t file_size_ = 0;
  // The log file's descriptor, until seal(). Shared so that a sync() on another thread keeps
  // it open across its fdatasync while seal() lets go of it. file_mu_ guards the pointer (not
  // the file) and is a leaf lock: held only to copy or move the pointer, never across a
  // system call or while taking another lock, so it orders after the Log's locks (seal()
  // under append_mu_, sync() under sync_mu_) and cannot deadlock with them; and seal(), under
  // the append lock, never waits for a sync's I/O.
  std::shared_ptr<detail::File> file_;
  mutable std::mutex file_mu_;
  detail::Mapping map_;
  std::optional<OffsetIndex> offset_index_;
  std::optional<TimeIndex> time_index_;

  // Appender-only state (the owning Log serialises appenders).
  std::uint64_t write_position_ = kFileHeaderSize;
  std::size_t bytes_since_index_ = 0;

  // Published state. Each on its own cache line from the appender's hot fields, so readers
  // polling the end do not false-share with the prefault worker's progress.
  alignas(64) std::atomic<std::uint64_t> end_position_{kFileHeaderSize};
  std::atomic<std::uint64_t> end_offset_{0};
  std::atomic<std::int64_t> max_timestamp_ms_{-1};
  std::atomic<bool> sealed_{false};
  mutable std::atomic<std::uint64_t> verified_to_{kFileHeaderSize};
  mutable std::atomic<std::uint64_t> structure_checked_to_{kFileHeaderSize};
  alignas(64) std::atomic<std::uint64_t> prefaulted_to_{0};
};

}  // namespace rill::storage
