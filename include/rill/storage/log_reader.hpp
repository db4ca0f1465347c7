// rill/storage/log_reader.hpp: read-only access to a partition log directory that another
// process (or this one) may be appending to right now, and the batch-by-batch inspection of
// segment files that `rill dump` and `rill verify` print.
//
//   auto reader = rill::storage::LogReader::open("data/orders/0");
//   for (;;) {
//     (void)(*reader)->refresh();                       // new records, new segments, retention
//     auto batch = (*reader)->read(next, 500);
//     for (const auto& r : *batch) use(r.offset(), r.value());
//     next = batch->next_offset();
//   }
//
// How it stays consistent without the writer's lock: the writer stores each record batch's
// bytes, then its `size` word with release ordering, into a MAP_SHARED mapping of the same file
// (see docs/format.md). This reader maps the files read-only and loads `size` with acquire
// (check_frame), so a batch is either whole or reads as size 0 (not there yet). Every batch is
// checked once (CRC, and every record decoded) when the reader first scans past it; the reader
// never returns a record beyond the first batch that is not whole and valid. It takes no lock,
// writes nothing, truncates nothing and rebuilds no index on disk: its sparse index of batch
// positions lives in memory.
//
// Reading: read() finds the batch holding the wanted offset from that index, skips the
// batches before it by their headers, and decodes records (decode_record), passing over
// those before the wanted offset, as Log::read_into does. Compacted batches may skip offsets
// or hold no record at all: a read returns the next record that exists.
//
// Following the writer: refresh() scans forward from the known end of the last segment, and
// moves on to the next segment once that file exists (the writer creates it before sealing
// the previous one, so every batch of the previous one is complete by then). Retention may
// delete segments under the reader: their mappings stay valid for records already handed out
// (ReaderBatch pins them), and start_offset() moves up at the next directory listing.
//
// Thread-safety: thread-compatible. One thread at a time may call a LogReader's methods
// (refresh, read, ...); different LogReaders, even of one directory, are independent. A
// ReaderBatch is a value and may be moved to another thread.
//
// Costs: refresh() is a few system calls (fstat of the last file, a stat of the next segment's
// name, a directory listing at most every `list_interval_ms`) plus a CRC-32C and a decode of
// the new bytes. read() is zero-copy. A sealed segment is scanned (with CRCs) once, on its
// first read.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "rill/detail/mmap_file.hpp"
#include "rill/result.hpp"
#include "rill/storage/index.hpp"
#include "rill/storage/log_format.hpp"
#include "rill/storage/record.hpp"
#include "rill/storage/segment.hpp"

namespace rill::storage {

// Base offsets of the "<20 digits>.log" files in `dir`, sorted. Errors: kNotFound when `dir`
// does not exist, kIoError when it cannot be listed.
inline Result<std::vector<std::uint64_t>> list_segment_bases(const std::string& dir) {
  std::vector<std::uint64_t> bases;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 24 || name.compare(20, 4, ".log") != 0 ||
        name.find_first_not_of("0123456789") != 20 ||
        name.compare(0, 20, "09223372036854775807") > 0)
      continue;
    std::uint64_t base = 0;
    for (std::size_t i = 0; i < 20; ++i)
      base = base * 10 + static_cast<std::uint64_t>(name[i] - '0');
    bases.push_back(base);
  }
  if (ec) {
    return fail(
        ec == std::errc::no_such_file_or_directory ? ErrorCode::kNotFound : ErrorCode::kIoError,
        "listing " + dir + ": " + ec.message());
  }
  std::sort(bases.begin(), bases.end());
  return bases;
}

// One segment's log file mapped read-only, with what a forward scan has learnt of it: where
// its valid batches end, the offset they reach, and a sparse in-memory index of batch
// positions. Thread-compatible (owned by one LogReader); shared with ReaderBatches only to keep
// the mapping alive, which they read below the scanned end.
class ReadOnlySegment {
 public:
  // Opens and maps `dir`/<base>.log read-only and checks its file header. Errors: kNotFound
  // when the file is gone; kCorruption for a header that does not check out or a file shorter
  // than its header (a segment being created reads like that for a moment: LogReader retries
  // the newest segment later rather than report it); kIoError.
  static Result<std::shared_ptr<ReadOnlySegment>> open(const std::string& dir,
                                                       std::uint64_t base_offset) {
    std::shared_ptr<ReadOnlySegment> s(new ReadOnlySegment());
    s->base_offset_ = base_offset;
    s->path_ = dir + "/" + segment_file_name(base_offset, ".log");
    auto f = detail::File::open(s->path_, O_RDONLY);
    if (!f) return fail(std::move(f).error());
    auto size = f->size();
    if (!size) return fail(std::move(size).error());
    if (*size < kFileHeaderSize) {
      return fail(ErrorCode::kCorruption, s->path_ + ": shorter than its header");
    }
    auto m = detail::Mapping::map_file(*f, static_cast<std::size_t>(*size), false);
    if (!m) return fail(std::move(m).error());
    s->file_ = std::move(*f);
    s->map_ = std::move(*m);
    auto h = read_log_file_header(s->path_, s->map_.data(), base_offset);
    if (!h) return fail(std::move(h).error());
    s->created_ms_ = h->created_ms;
    s->end_offset_ = base_offset;
    return s;
  }

  // Scans batches forward from the scanned end, each checked once as recovery would (CRC
  // included, every record decoded: check_frame), up to the first position that is not a
  // whole valid batch. Returns the number of new records. Safe against the writer sealing
  // (truncating) the file meanwhile: a size word that starts a page is read with pread first,
  // since that page may be past the file's new end.
  // `on_batch`, when given, sees each new batch with its position.
  std::uint64_t extend(
      const std::function<void(std::uint64_t position, const FrameHeader&)>* on_batch = nullptr) {
    if (damage_ != nullptr) return 0;
    std::uint64_t limit = map_.size();
    if (file_.valid()) {
      if (auto now = file_.size()) limit = std::min<std::uint64_t>(limit, *now);
    }
    const std::size_t page = detail::Mapping::page_size();
    std::uint64_t added = 0;
    while (end_position_ < limit) {
      if (end_position_ % page == 0 && file_.valid()) {
        std::uint32_t word = 0;
        if (::pread(file_.fd(), &word, sizeof word, static_cast<off_t>(end_position_)) !=
                static_cast<ssize_t>(sizeof word) ||
            word == 0) {
          break;
        }
        // acquire: the size word was read through the page cache, not the mapping; this
        // orders the batch's other bytes after it as load_frame_size's acquire would.
        std::atomic_thread_fence(std::memory_order_acquire);
      }
      const FrameCheck c =
          check_frame(map_.data() + end_position_, limit - end_position_, end_offset_, true);
      if (c.status == FrameStatus::kEnd) break;
      if (c.status == FrameStatus::kCorrupt) {
        damage_ = c.reason;
        break;
      }
      if (on_batch != nullptr) (*on_batch)(end_position_, c.header);
      note(c.header);
      added += c.header.count;
    }
    return added;
  }

  // No more batches will come: the next segment exists (or this one is being read alone).
  // The descriptor is closed; the mapping stays.
  void finish() {
    (void)extend();
    complete_ = true;
    file_.close();
  }

  // Where to start walking batches for `offset`: the last indexed batch that starts at or
  // before it (the first batch when none), and in `*batch_offset` that batch's base offset.
  std::uint64_t position_hint(std::uint64_t offset, std::uint64_t* batch_offset) const noexcept {
    const auto rel = static_cast<std::uint32_t>(offset - base_offset_);
    auto it = std::upper_bound(
        index_.begin(), index_.end(), rel,
        [](std::uint32_t v, const OffsetIndexEntry& e) { return v < e.relative_offset; });
    return hint(it == index_.begin() ? nullptr : &*std::prev(it), batch_offset);
  }

  // The header of the scanned batch at `position` (a batch start below end_position()),
  // where offset `expected` is expected; nullopt when its bytes changed since they were
  // scanned (the file was damaged under the reader).
  std::optional<FrameHeader> batch_at(std::uint64_t position, std::uint64_t expected) const {
    const FrameCheck c =
        check_frame_header(map_.data() + position, end_position_ - position, expected, false);
    if (c.status != FrameStatus::kOk) return std::nullopt;
    return c.header;
  }

  // The first offset in this segment whose record has a timestamp >= `ts`, if any: batches
  // whose max_timestamp is below `ts` are skipped whole, the others decoded.
  std::optional<std::uint64_t> offset_for_time(std::int64_t ts) const noexcept {
    if (max_timestamp_ms_ < ts) return std::nullopt;
    // As lookup_time: the indexed batch before the first entry whose running maximum reaches
    // `ts`; every record before it is older.
    auto it = std::lower_bound(
        time_index_.begin(), time_index_.end(), ts,
        [](const TimeIndexEntry& e, std::int64_t v) { return e.max_timestamp_ms < v; });
    std::uint64_t expected = 0;
    std::uint64_t pos = hint(it == time_index_.begin() ? nullptr : &*std::prev(it), &expected);
    while (pos < end_position_) {
      const std::optional<FrameHeader> h = batch_at(pos, expected);
      if (!h) return std::nullopt;
      if (h->max_timestamp_ms >= ts) {
        BatchRecords records(map_.data() + pos, *h);
        for (RecordView r; records.next(&r);) {
          if (r.timestamp_ms() >= ts) return static_cast<std::uint64_t>(r.offset());
        }
      }
      pos += align_frame(h->size);
      expected = batch_next_offset(*h);
    }
    return std::nullopt;
  }

  std::uint64_t base_offset() const noexcept { return base_offset_; }
  std::int64_t created_ms() const noexcept { return created_ms_; }
  // The offset after the last batch scanned (a compacted batch's gaps included), and the
  // position after it.
  std::uint64_t end_offset() const noexcept { return end_offset_; }
  std::uint64_t end_position() const noexcept { return end_position_; }
  // Records and batches scanned (fewer records than offsets when batches are compacted).
  std::uint64_t records() const noexcept { return records_; }
  std::uint64_t batches() const noexcept { return batches_; }
  std::int64_t max_timestamp_ms() const noexcept { return max_timestamp_ms_; }
  // The timestamp of the segment's first record, or -1 when it has none yet.
  std::int64_t first_timestamp_ms() const noexcept { return first_timestamp_ms_; }
  bool complete() const noexcept { return complete_; }
  // Why the scan stopped short of the writer's end (a batch that failed its checks), or null.
  const char* damage() const noexcept { return damage_; }
  // Bytes of the file as mapped (its size when opened).
  std::uint64_t mapped_bytes() const noexcept { return map_.size(); }
  // Non-zero bytes after the scanned batches, up to the file's end. Read with pread while the
  // file is open, not through the mapping: a writer that sealed the segment since it was
  // mapped has truncated the file, and a mapped page past its new end faults (SIGBUS).
  std::uint64_t nonzero_bytes_after_end() const {
    std::uint64_t n = 0;
    if (!file_.valid()) {
      for (std::uint64_t i = end_position_; i < map_.size(); ++i) {
        if (map_.data()[i] != std::byte{0}) ++n;
      }
      return n;
    }
    std::byte buf[16384];
    for (std::uint64_t at = end_position_;;) {
      const ssize_t got = ::pread(file_.fd(), buf, sizeof buf, static_cast<off_t>(at));
      if (got <= 0) return n;
      for (ssize_t i = 0; i < got; ++i) {
        if (buf[i] != std::byte{0}) ++n;
      }
      at += static_cast<std::uint64_t>(got);
    }
  }
  const std::byte* data() const noexcept { return map_.data(); }
  const std::string& path() const noexcept { return path_; }

 private:
  ReadOnlySegment() = default;

  // The position of the indexed batch `e` (the first batch when null) and its base offset.
  template <typename Entry>
  std::uint64_t hint(const Entry* e, std::uint64_t* batch_offset) const noexcept {
    if (e == nullptr) {
      *batch_offset = base_offset_;
      return kFileHeaderSize;
    }
    *batch_offset = base_offset_ + e->relative_offset;
    return e->position;
  }

  // Takes in the valid batch `h` at end_position_.
  void note(const FrameHeader& h) {
    const std::uint64_t bytes = align_frame(h.size);
    if (h.count != 0) {  // an empty compacted batch's timestamps stand for no record
      max_timestamp_ms_ = std::max(max_timestamp_ms_, h.max_timestamp_ms);
      if (first_timestamp_ms_ < 0) first_timestamp_ms_ = h.base_timestamp_ms;
    }
    if (bytes_since_index_ >= kIndexIntervalBytes) {
      const auto rel = static_cast<std::uint32_t>(h.base_offset - base_offset_);
      const auto pos = static_cast<std::uint32_t>(end_position_);
      index_.push_back({rel, pos});
      time_index_.push_back({max_timestamp_ms_, rel, pos});
      bytes_since_index_ = 0;
    }
    bytes_since_index_ += bytes;
    end_position_ += bytes;
    end_offset_ = batch_next_offset(h);
    records_ += h.count;
    ++batches_;
  }

  static constexpr std::uint64_t kIndexIntervalBytes = 4096;

  std::uint64_t base_offset_ = 0;
  std::int64_t created_ms_ = 0;
  std::string path_;
  detail::File file_;  // open until complete(): fstat and pread near the tail
  detail::Mapping map_;
  std::uint64_t end_position_ = kFileHeaderSize;
  std::uint64_t end_offset_ = 0;
  std::uint64_t records_ = 0;
  std::uint64_t batches_ = 0;
  std::int64_t max_timestamp_ms_ = -1;
  std::int64_t first_timestamp_ms_ = -1;
  std::uint64_t bytes_since_index_ = kIndexIntervalBytes;  // index the first batch
  std::vector<OffsetIndexEntry> index_;     // batch starts, every ~kIndexIntervalBytes
  std::vector<TimeIndexEntry> time_index_;  // the same batches, with the running max timestamp
  const char* damage_ = nullptr;
  bool complete_ = false;
};

// Records read by a LogReader: views into one segment's mapping, which the batch keeps alive
// (even after retention deleted the file).
class ReaderBatch : public RecordViews {
 private:
  friend class LogReader;
  std::shared_ptr<const ReadOnlySegment> segment_;
};

struct LogReaderOptions {
  // How often refresh() lists the directory to notice segments deleted by retention (and
  // segments it skipped). Finding the next segment needs no listing.
  std::int64_t list_interval_ms = 250;
};

// What one refresh() found.
struct RefreshInfo {
  std::uint64_t new_records = 0;
  std::uint32_t new_segments = 0;
  std::uint32_t deleted_segments = 0;
  // The log was deleted and created again (a topic deleted and re-created under its name):
  // the reader dropped everything it had mapped and now follows the new log, whose offsets
  // start over.
  bool replaced = false;
};

class LogReader {
 public:
  // Opens the log directory `dir` read-only: lists its segments, maps them and scans the last
  // one. Errors: kNotFound when `dir` does not exist or holds no segment yet; kCorruption when
  // a sealed segment's header is bad; kIoError from the file system.
  static Result<std::unique_ptr<LogReader>> open(const std::string& dir,
                                                 LogReaderOptions options = {}) {
    std::unique_ptr<LogReader> r(new LogReader(dir, options));
    auto info = r->reconcile();
    if (!info) return fail(std::move(info).error());
    if (r->segments_.empty()) return fail(ErrorCode::kNotFound, dir + ": no segment files");
    return r;
  }

  // Picks up records appended since the last call, segments rolled, and (every
  // list_interval_ms) segments deleted by retention. Errors: kCorruption for a sealed segment
  // whose header is bad; kIoError. (Damaged batches are reported by read(), where they are.)
  Result<RefreshInfo> refresh() {
    RefreshInfo info;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_list_ >= std::chrono::milliseconds(options_.list_interval_ms)) {
      auto r = reconcile();
      if (!r) return r;
      info = *r;
    }
    for (;;) {
      ReadOnlySegment& tail = *segments_.back();
      info.new_records += tail.extend();
      if (tail.damage() != nullptr) break;
      // The writer creates the next segment, named by the tail's end offset, before it seals
      // the tail; once that file exists every batch of the tail is complete. The writer never
      // rolls an empty segment (and an empty tail's end names the tail itself).
      if (tail.end_offset() == tail.base_offset()) break;
      const std::string next = dir_ + "/" + segment_file_name(tail.end_offset(), ".log");
      struct stat st;
      if (::stat(next.c_str(), &st) != 0) break;
      auto grown = append_segment(tail.end_offset(), true, info);
      if (!grown) return fail(std::move(grown).error());
      if (!*grown) break;
    }
    return info;
  }

  // The first offset still readable and the offset after the last record scanned.
  std::int64_t start_offset() const noexcept {
    return static_cast<std::int64_t>(segments_.front()->base_offset());
  }
  std::int64_t end_offset() const noexcept {
    return static_cast<std::int64_t>(segments_.back()->end_offset());
  }

  // Reads up to `max_records` records from `offset` (and about `max_bytes`; at least one when
  // any is available), within one segment. An offset equal to end_offset() gives an empty
  // batch. Errors: kOutOfRange when offset < start_offset() or > end_offset(); kCorruption
  // when a sealed segment's records stop short of the next segment (the records before it
  // are returned first).
  Result<ReaderBatch> read(std::int64_t offset, std::size_t max_records,
                           std::size_t max_bytes = SIZE_MAX) {
    ReaderBatch out;
    out.next_offset_ = offset;
    if (offset < start_offset() || offset > end_offset()) {
      return fail(ErrorCode::kOutOfRange,
                  "offset " + std::to_string(offset) + " is outside the log's range [" +
                      std::to_string(start_offset()) + ", " + std::to_string(end_offset()) + "]");
    }
    std::uint64_t at = static_cast<std::uint64_t>(offset);  // the next offset to return
    // A segment whose wanted part is all compacted away (empty batches, gaps) gives no
    // record: go on to the next one rather than return nothing before the end.
    for (std::size_t i = segment_index(at); i < segments_.size(); ++i) {
      ReadOnlySegment& seg = *segments_[i];
      if (!seg.complete() && i + 1 < segments_.size()) seg.finish();
      if (at >= seg.end_offset()) {
        if (at == static_cast<std::uint64_t>(end_offset()) || max_records == 0) break;
        return fail(ErrorCode::kCorruption,
                    seg.path() + ": records end at offset " + std::to_string(seg.end_offset()) +
                        (seg.damage() ? std::string(" (") + seg.damage() + ")" : std::string()) +
                        ", before the next segment");
      }
      RILL_TRY(read_segment(seg, at, max_records, max_bytes, out));
      if (!out.records_.empty() || max_records == 0) {
        out.segment_ = segments_[i];
        break;
      }
    }
    return out;
  }

  // The first offset whose record has a timestamp >= `timestamp_ms`, or nullopt (Kafka's
  // offsetsForTimes). Scans sealed segments not read yet.
  std::optional<std::int64_t> offset_for_time(std::int64_t timestamp_ms) {
    for (std::size_t i = 0; i < segments_.size(); ++i) {
      if (!segments_[i]->complete() && i + 1 < segments_.size()) segments_[i]->finish();
      if (auto at = segments_[i]->offset_for_time(timestamp_ms)) {
        return static_cast<std::int64_t>(*at);
      }
    }
    return std::nullopt;
  }

  // The timestamp of the oldest segment's first record (Kafka's log start time) and the
  // newest timestamp of any record, or -1. Scans the first segment if not read yet.
  std::int64_t oldest_timestamp_ms() {
    if (!segments_.front()->complete() && segments_.size() > 1) segments_.front()->finish();
    return segments_.front()->first_timestamp_ms();
  }
  std::int64_t newest_timestamp_ms() const noexcept {
    for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
      if ((*it)->max_timestamp_ms() >= 0) return (*it)->max_timestamp_ms();
    }
    return -1;
  }

  std::size_t segment_count() const noexcept { return segments_.size(); }
  // Bytes of record batches: scanned bytes of the last segment, file bytes of the others.
  std::uint64_t size_bytes() const noexcept {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < segments_.size(); ++i) {
      const auto& s = *segments_[i];
      const bool last = i + 1 == segments_.size();
      total += (last || s.complete() ? s.end_position() : s.mapped_bytes()) - kFileHeaderSize;
    }
    return total;
  }
  const std::string& directory() const noexcept { return dir_; }

 private:
  LogReader(std::string dir, LogReaderOptions options) : dir_(std::move(dir)), options_(options) {}

  std::size_t segment_index(std::uint64_t offset) const noexcept {
    auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                               [](std::uint64_t v, const std::shared_ptr<ReadOnlySegment>& s) {
                                 return v < s->base_offset();
                               });
    return static_cast<std::size_t>(std::prev(it) - segments_.begin());
  }

  // Appends to `out` the records of `seg` from offset `at` on (as Log::read_into: batches
  // that end before it skipped whole by their headers, earlier records of the batch holding it
  // decoded and passed over), up to `max_records` and about `max_bytes`; moves `at` past what
  // it returned and past the gaps and empty batches it walked. Every batch was checked by the
  // scan; a batch whose bytes changed since (damage under the reader) ends the read, and is
  // an error when nothing came before it.
  static Result<void> read_segment(const ReadOnlySegment& seg, std::uint64_t& at,
                                   std::size_t max_records, std::size_t max_bytes,
                                   ReaderBatch& out) {
    const auto damaged = [&](std::uint64_t pos, const char* why) -> Result<void> {
      if (!out.records_.empty()) return {};
      return fail(ErrorCode::kCorruption, seg.path() + ": batch at position " +
                                              std::to_string(pos) +
                                              " changed after it was "
                                              "checked: " +
                                              why);
    };
    std::uint64_t expected = 0;
    std::uint64_t pos = seg.position_hint(at, &expected);
    std::size_t bytes = 0;
    while (pos < seg.end_position()) {
      const std::optional<FrameHeader> h = seg.batch_at(pos, expected);
      if (!h) return damaged(pos, "bad header");
      const std::uint64_t next = batch_next_offset(*h);
      if (next > at) {
        BatchRecords records(seg.data() + pos, *h);
        RecordView r;
        while (records.next(&r)) {
          const auto o = static_cast<std::uint64_t>(r.offset());
          if (o < at) continue;
          if (out.records_.size() >= max_records ||
              (!out.records_.empty() && bytes + r.stored_bytes() > max_bytes)) {
            out.next_offset_ = static_cast<std::int64_t>(at);
            return {};
          }
          out.records_.push_back(r);
          bytes += r.stored_bytes();
          at = o + 1;
        }
        if (records.damage() != nullptr) return damaged(pos, records.damage());
        at = std::max(at, next);
      }
      pos += align_frame(h->size);
      expected = next;
    }
    out.next_offset_ = static_cast<std::int64_t>(at);
    return {};
  }

  // Maps the segment at `base` and makes it the last one. Returns false when it is not ready:
  // the newest file with no valid header yet (a roll in progress), or a file deleted since it
  // was listed.
  Result<bool> append_segment(std::uint64_t base, bool newest, RefreshInfo& info) {
    auto seg = ReadOnlySegment::open(dir_, base);
    if (!seg) {
      const ErrorCode code = seg.error().code();
      if (code == ErrorCode::kNotFound || (newest && code == ErrorCode::kCorruption)) return false;
      return fail(std::move(seg).error());
    }
    // Every batch of the previous tail is complete now: scan it to its end. Should it stop
    // short of `base` (damage), read() reports kCorruption there; the records before it and
    // the segments after it stay readable.
    if (!segments_.empty()) segments_.back()->finish();
    info.new_records += (*seg)->extend();
    segments_.push_back(std::move(*seg));
    ++info.new_segments;
    return true;
  }

  // Lists the directory: forgets segments whose files are gone, maps new ones. The last
  // segment is kept until a newer one replaces it, so the reader always has one.
  Result<RefreshInfo> reconcile() {
    RefreshInfo info;
    last_list_ = std::chrono::steady_clock::now();
    auto listed = list_segment_bases(dir_);
    if (!listed) return fail(std::move(listed).error());
    const auto& bases = *listed;
    if (replaced(bases)) {
      info.deleted_segments += static_cast<std::uint32_t>(segments_.size());
      info.replaced = true;
      segments_.clear();  // batches read from them keep their mappings
    }
    auto drop_deleted = [&] {
      // Retention deletes the oldest segments first. The mapping of a dropped segment lives
      // on in the batches that hold it.
      while (segments_.size() > 1 &&
             !std::binary_search(bases.begin(), bases.end(), segments_.front()->base_offset())) {
        segments_.erase(segments_.begin());
        ++info.deleted_segments;
      }
    };
    drop_deleted();
    for (std::size_t i = 0; i < bases.size(); ++i) {
      if (!segments_.empty() && bases[i] <= segments_.back()->base_offset()) continue;
      auto grown = append_segment(bases[i], i + 1 == bases.size(), info);
      if (!grown) return fail(std::move(grown).error());
      if (!*grown) break;
    }
    drop_deleted();
    return info;
  }

  // Whether the directory now holds another log than the one mapped: its topic was deleted
  // and created again under the name (the files are new, and offsets start over). The writer
  // never deletes its newest segment, and compaction keeps a segment's creation time, so
  // either is a sign: no listed segment at or past the newest one mapped, or the oldest
  // listed segment, mapped here too, created at another time. Without this the reader went
  // on serving the deleted log's mappings, then appended the new log's later segments onto
  // them (tests/log_reader_test.cpp, "a broker view follows a topic deleted and created
  // again"). Cost: reading one file header per listing.
  bool replaced(const std::vector<std::uint64_t>& bases) const {
    if (segments_.empty()) return false;
    if (bases.empty() || bases.back() < segments_.back()->base_offset()) return true;
    for (const auto& seg : segments_) {
      if (seg->base_offset() < bases.front()) continue;
      if (seg->base_offset() > bases.front()) break;
      auto f = detail::File::open(dir_ + "/" + segment_file_name(bases.front(), ".log"), O_RDONLY);
      if (!f) return false;  // gone meanwhile (retention): the next listing decides
      FileHeader h{};
      if (::pread(f->fd(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return false;
      return h.magic == kFileMagic && h.created_ms != seg->created_ms();
    }
    return false;
  }

  const std::string dir_;
  LogReaderOptions options_;
  std::vector<std::shared_ptr<ReadOnlySegment>> segments_;
  std::chrono::steady_clock::time_point last_list_{};
};

// --- inspection: what `rill dump` and `rill verify` print ----------------------------------

// One batch of a segment, as dump_segment hands it out: a valid one (structure, CRC and every
// record checked), or the one the walk stopped at when its header still reads.
struct DumpedBatch {
  std::uint64_t position = 0;        // of the batch in the log file
  FrameHeader header{};              // offsets, count, timestamps, size, attributes, the CRC field
  bool valid = true;                 // false: the walk stopped here (SegmentDump::damage says why)
  const std::byte* bytes = nullptr;  // the batch, mapped while the callback runs

  std::uint64_t last_offset() const noexcept {
    return header.base_offset + header.last_offset_delta;
  }
  bool compacted() const noexcept { return (header.attributes & kBatchCompacted) != 0; }
  // Its records, decoded one at a time (of a valid batch: an invalid one may stop early).
  BatchRecords records() const noexcept { return BatchRecords(bytes, header); }
};

// What a batch-by-batch walk of one segment file found.
struct SegmentDump {
  std::uint64_t base_offset = 0;
  std::int64_t created_ms = 0;
  std::uint64_t file_bytes = 0;
  std::uint64_t batches = 0;  // valid ones
  std::uint64_t records = 0;  // in them (fewer than their offsets when compacted)
  std::uint64_t end_position = kFileHeaderSize;  // after the last valid batch
  std::uint64_t end_offset = 0;                  // after the last valid batch
  const char* damage = nullptr;                  // why the walk stopped before a clean end, or null
  std::uint64_t trailing_nonzero_bytes = 0;      // non-zero bytes after the last valid batch
};

// Walks every batch of `dir`/<base>.log from its start, checking each as recovery would (CRC
// and records included), and calls `on_batch` with each valid batch, then with the batch the
// walk stopped at if its header still reads (valid = false; e.g. a CRC mismatch). Stops at
// the first position that is not a valid batch and says why (`damage`). Read-only: takes no
// lock and writes nothing, so it may run while a writer appends (the walk then ends wherever
// the writer was). Errors: kNotFound, kCorruption for a bad file header, kIoError.
inline Result<SegmentDump> dump_segment(const std::string& dir, std::uint64_t base,
                                        const std::function<void(const DumpedBatch&)>& on_batch) {
  auto seg = ReadOnlySegment::open(dir, base);
  if (!seg) return fail(std::move(seg).error());
  ReadOnlySegment& s = **seg;
  const std::function<void(std::uint64_t, const FrameHeader&)> each = [&](std::uint64_t pos,
                                                                          const FrameHeader& h) {
    on_batch({pos, h, true, s.data() + pos});
  };
  s.extend(on_batch ? &each : nullptr);
  if (on_batch && s.damage() != nullptr) {
    const std::uint64_t pos = s.end_position();
    const FrameCheck c =
        check_frame_header(s.data() + pos, s.mapped_bytes() - pos, s.end_offset(), false);
    if (c.status == FrameStatus::kOk) on_batch({pos, c.header, false, s.data() + pos});
  }
  SegmentDump d;
  d.base_offset = base;
  d.created_ms = s.created_ms();
  d.file_bytes = s.mapped_bytes();
  d.batches = s.batches();
  d.records = s.records();
  d.end_position = s.end_position();
  d.end_offset = s.end_offset();
  d.damage = s.damage();
  d.trailing_nonzero_bytes = s.nonzero_bytes_after_end();
  return d;
}

// What verify_log found in one log directory.
struct LogCheck {
  std::uint32_t segments = 0;
  std::uint64_t batches = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;            // bytes of the log files walked
  std::vector<std::string> problems;  // each names a file and what is wrong with it
};

namespace detail {

// A valid batch a walk found: where it starts and the offset it starts at.
struct BatchSpot {
  std::uint64_t position;
  std::uint64_t base_offset;
};

// Checks an index file (`kind`) of a segment against the batches a walk found (`batches`, in
// file order, ending at `end_position`): header, base offset, entries increasing, and every
// entry naming a batch's start and that batch's base offset. Entries at or past the walk's
// end are not judged (a writer may be appending). Appends what is wrong to `problems`.
template <typename Entry>
void check_index_file(const std::string& path, FileKind kind, std::uint64_t base,
                      const std::vector<BatchSpot>& batches, std::uint64_t end_position,
                      std::vector<std::string>& problems) {
  auto f = rill::detail::File::open(path, O_RDONLY);
  if (!f) {
    problems.push_back(path + ": " + f.error().message());
    return;
  }
  auto size = f->size();
  if (!size || *size < kFileHeaderSize) {
    problems.push_back(path + ": shorter than its header");
    return;
  }
  std::vector<std::byte> bytes(static_cast<std::size_t>(*size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n =
        ::pread(f->fd(), bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  FileHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (const char* why = check_file_header(h, kind)) {
    problems.push_back(path + ": " + why);
    return;
  }
  if (h.base_offset != base) {
    problems.push_back(path + ": base offset does not match its log");
    return;
  }
  Entry prev{};
  for (std::size_t at = kFileHeaderSize, n = 0; at + sizeof(Entry) <= got;
       at += sizeof(Entry), ++n) {
    Entry e;
    std::memcpy(&e, bytes.data() + at, sizeof e);
    if (e.position == 0) break;
    if (n != 0 && (e.position <= prev.position || e.relative_offset <= prev.relative_offset)) {
      problems.push_back(path + ": entry " + std::to_string(n) + " does not increase");
      return;
    }
    prev = e;
    if (e.position >= end_position) continue;
    auto it =
        std::lower_bound(batches.begin(), batches.end(), std::uint64_t{e.position},
                         [](const BatchSpot& b, std::uint64_t pos) { return b.position < pos; });
    if (it == batches.end() || it->position != e.position ||
        it->base_offset != base + e.relative_offset) {
      problems.push_back(path + ": entry " + std::to_string(n) + " points at position " +
                         std::to_string(e.position) + ", not at the batch of offset " +
                         std::to_string(base + e.relative_offset));
      return;
    }
  }
}

// A file as stat(2) names it: device, inode, size and change time (which also tells a new
// file apart from a deleted one whose inode it reuses); all zero when it does not exist.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

inline FileIdentity file_identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size,
          static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
}

// One pass of verify_log over one segment: its log and both indexes.
struct SegmentCheck {
  bool vanished = false;  // the log file was gone (retention deleted the segment)
  SegmentDump dump;
  std::vector<std::string> problems;
  // The segment's log, .index and .timeindex, before and after the pass.
  std::array<FileIdentity, 3> before;
  std::array<FileIdentity, 3> after;
};

inline std::array<FileIdentity, 3> segment_identities(const std::string& dir, std::uint64_t base) {
  return {file_identity(dir + "/" + segment_file_name(base, ".log")),
          file_identity(dir + "/" + segment_file_name(base, ".index")),
          file_identity(dir + "/" + segment_file_name(base, ".timeindex"))};
}

// `next_base`: the next segment's base offset, or nullopt for the newest segment.
inline SegmentCheck check_segment(const std::string& dir, std::uint64_t base,
                                  std::optional<std::uint64_t> next_base) {
  SegmentCheck c;
  c.before = segment_identities(dir, base);
  std::vector<BatchSpot> batches;
  auto d = dump_segment(dir, base, [&](const DumpedBatch& b) {
    if (b.valid) batches.push_back({b.position, b.header.base_offset});
  });
  if (d) {
    c.dump = *d;
    const std::string path = dir + "/" + segment_file_name(base, ".log");
    if (d->damage != nullptr) {
      c.problems.push_back(path + ": invalid batch at position " + std::to_string(d->end_position) +
                           " (offset " + std::to_string(d->end_offset) + "): " + d->damage);
    } else if (next_base && d->end_offset != *next_base) {
      c.problems.push_back(path + ": batches end at offset " + std::to_string(d->end_offset) +
                           " but the next segment starts at " + std::to_string(*next_base));
    } else if (next_base && d->trailing_nonzero_bytes != 0) {
      c.problems.push_back(path + ": " + std::to_string(d->trailing_nonzero_bytes) +
                           " non-zero bytes after the last batch");
    }
    check_index_file<OffsetIndexEntry>(dir + "/" + segment_file_name(base, ".index"),
                                       FileKind::kOffsetIndex, base, batches, d->end_position,
                                       c.problems);
    check_index_file<TimeIndexEntry>(dir + "/" + segment_file_name(base, ".timeindex"),
                                     FileKind::kTimeIndex, base, batches, d->end_position,
                                     c.problems);
  } else if (d.error().code() != ErrorCode::kNotFound) {
    c.problems.push_back(d.error().message());
  }
  c.after = segment_identities(dir, base);
  c.vanished = !d ? d.error().code() == ErrorCode::kNotFound : c.after[0].inode == 0;
  return c;
}

// How long verify_log waits before it checks a segment with problems again: far longer than
// a writer's swap of a compacted copy or creation of a segment takes.
inline constexpr std::chrono::milliseconds kVerifyRecheckPause{250};

}  // namespace detail

// Checks every segment of the log in `dir` read-only: file headers; every batch's structure,
// CRC and records, and its offsets (dense, or increasing with gaps in a compacted batch);
// offsets contiguous across segments (each sealed segment ends where the next begins, which a
// compacted one does too: its batches keep spanning their offsets); no stray bytes after a
// sealed segment's batches; and both index files against the batches. `progress`, when given,
// is called after each segment with the log bytes walked so far.
//
// Safe against a live writer: what it changes while a segment is read is not reported as
// damage. The writer swaps a compacted copy in by deleting the indexes, renaming the copy over
// the log and writing new indexes; it creates a segment's files before their headers; and
// retention deletes the log, then the indexes. A pass over a segment in such a moment sees a
// missing or headerless file, or an old log beside new indexes. So a segment whose pass finds
// problems is checked again from freshly opened files after a pause
// (detail::kVerifyRecheckPause), and once more if its files changed meanwhile (another inode,
// size or change time); only what the last pass finds is reported. A segment whose log is
// gone is skipped. Real damage stays put, and costs the pause per damaged segment.
//
// Costs: reads every byte. Errors: kNotFound when `dir` does not exist; damage is not an
// error but a line in LogCheck::problems.
inline Result<LogCheck> verify_log(const std::string& dir,
                                   const std::function<void(std::uint64_t)>& progress = {}) {
  auto bases = list_segment_bases(dir);
  if (!bases) return fail(std::move(bases).error());
  LogCheck check;
  for (std::size_t i = 0; i < bases->size(); ++i) {
    const std::uint64_t base = (*bases)[i];
    std::optional<std::uint64_t> next;
    if (i + 1 < bases->size()) next = (*bases)[i + 1];
    detail::SegmentCheck c = detail::check_segment(dir, base, next);
    for (int again = 0; again < 2 && !c.problems.empty() && !c.vanished; ++again) {
      std::this_thread::sleep_for(detail::kVerifyRecheckPause);
      detail::SegmentCheck r = detail::check_segment(dir, base, next);
      // The same files through the pause and the new pass: the problems are theirs.
      const bool settled = r.before == c.after && r.after == r.before;
      c = std::move(r);
      if (settled) break;
    }
    if (c.vanished) continue;  // deleted by retention meanwhile
    ++check.segments;
    check.batches += c.dump.batches;
    check.records += c.dump.records;
    check.bytes += c.dump.file_bytes;
    check.problems.insert(check.problems.end(), c.problems.begin(), c.problems.end());
    if (progress) progress(check.bytes);
  }
  return check;
}

}  // namespace rill::storage
