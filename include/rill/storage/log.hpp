// rill/storage/log.hpp: the partition log. An untyped, append-only sequence of records with
// dense offsets from 0, kept in segment files in one directory (or in anonymous memory).
//
//   auto log = rill::storage::Log::open("data/orders-0", {});
//   auto at = (*log)->append({.key = "k", .value = "v"});      // at->offset == 0
//   auto batch = (*log)->read(0, 100);                          // views into the mapping
//   for (const auto& r : *batch) use(r.offset(), r.value());
//
// Thread-safety: thread-safe. Any number of threads may append and read at once. Appenders
// serialise on one mutex; readers never take it: they see records through release/acquire
// publication of the end offset, and take a separate, briefly held mutex only to look up a
// segment they do not already hold.
//
// Costs: append is one lock, one memcpy of the frame, one CRC-32C, a few stores; no system
// call unless the segment rolls or the durability policy syncs (or, while a reader keeps up,
// one madvise per 64 KiB appended: see LogConfig::prefault_bytes). Reads are zero-copy. A
// background thread per log faults in pages ahead of the appender, syncs on an interval policy
// and applies retention.
//
// Files: "<base offset, 20 digits>.log", ".index", ".timeindex" per segment and a ".lock"
// held with flock(2) while the log is open, so two writers can never share a directory.
// Compaction (compact()) writes "<base>.log.cleaned" and renames it over a sealed segment.
#pragma once

#include <sys/file.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "rill/clock.hpp"
#include "rill/detail/futex.hpp"
#include "rill/detail/mmap_file.hpp"
#include "rill/result.hpp"
#include "rill/storage/background.hpp"
#include "rill/storage/compaction.hpp"
#include "rill/storage/log_format.hpp"
#include "rill/storage/notifier.hpp"
#include "rill/storage/record.hpp"
#include "rill/storage/segment.hpp"

namespace rill::storage {

// When appended records are forced to stable storage. Every mode survives a crash of the
// process (the kernel keeps the mapped pages); only a sync survives a power loss or a kernel
// crash. Kafka's equivalents: flush.messages and flush.ms.
struct Durability {
  enum class Mode { kOsCache, kEveryRecords, kInterval, kEveryAppend };
  Mode mode = Mode::kOsCache;
  std::uint64_t every_records = 0;  // kEveryRecords: sync after this many appended records
  std::int64_t interval_ms = 0;     // kInterval: sync dirty data at least this often

  static Durability os_cache() { return {}; }
  static Durability every(std::uint64_t records) { return {Mode::kEveryRecords, records, 0}; }
  static Durability interval(std::int64_t ms) { return {Mode::kInterval, 0, ms}; }
  static Durability every_append() { return {Mode::kEveryAppend, 0, 0}; }
};

struct RetentionReport;  // below

struct LogConfig {
  // A segment file's size: it is preallocated to this and rolled when the next frame does
  // not fit. Kafka: segment.bytes.
  std::size_t segment_bytes = 64u << 20;
  // Roll a segment this long after its first record, even if not full; <= 0: never.
  // Kafka: segment.ms.
  std::int64_t segment_ms = 7LL * 24 * 3600 * 1000;
  // Largest frame (40-byte header + key + value + headers). Kafka: max.message.bytes.
  std::size_t max_record_bytes = 1u << 20;
  // Log bytes between two entries of the sparse indexes. Kafka: index.interval.bytes.
  std::size_t index_interval_bytes = 4096;
  // Delete the oldest segments while the rest still hold at least this many bytes; < 0: no
  // limit. Kafka: retention.bytes.
  std::int64_t retention_bytes = -1;
  // Delete segments whose newest timestamp is older than this; < 0: keep forever.
  // Kafka: retention.ms.
  std::int64_t retention_ms = -1;
  Durability durability{};
  // Check frames' CRCs on read: those of sealed segments that recovery did not check whole,
  // once each (frames this process wrote, and the active segment's, which recovery checks
  // whole, need none). Catches damage to old segments; off, reads trust them.
  bool verify_checksums = true;
  // Check every frame of every segment on open, not only the active segment and the tails.
  bool verify_all_on_open = false;
  // Keep pages faulted in this far ahead of the appender; 0 turns it off. Off, each append
  // that reaches a fresh page faults it in itself (about a microsecond on the machines
  // measured). On, while no reader waits for records, the background thread runs ahead in
  // rounds, so a throughput appender rarely waits for pages (only when it outruns the
  // thread, which runs at nice 19); while a reader waits (an append woke it from wait_for()
  // or a Notifier, or it called Log::note_reader_waiting(), as a consumer at the end does,
  // in about the last second: until the thread's first round a second after), appenders
  // fault in the next 64 KiB themselves once their records are published and their readers
  // woken, and the thread keeps off. Its rounds (a millisecond or more of CPU) had delayed
  // woken readers by a scheduler tick or more on a 2-CPU machine (docs/performance.md, W3).
  std::size_t prefault_bytes = 4u << 20;
  // Where timestamps, roll age and retention age come from.
  std::shared_ptr<Clock> clock{};
  // The thread that runs this log's background work (prefaulting, interval syncs, retention
  // by time, compaction); logs may share one. Null: the log starts its own when it has such
  // work.
  std::shared_ptr<Background> background{};
  // Compact in the background (Kafka: cleanup.policy=compact; with retention set,
  // compact,delete). Log::compact() works whatever this says.
  bool compact = false;
  // How long compaction keeps a tombstone that is the newest record of its key, from the
  // tombstone's timestamp, by the log's clock: consumers that read within this time see the
  // delete. Kafka: delete.retention.ms (default one day).
  std::int64_t delete_retention_ms = 24LL * 3600 * 1000;
  // Background compaction runs when the sealed segments not yet compacted hold at least this
  // share of all sealed bytes, or when a kept tombstone has expired. Kafka:
  // min.cleanable.dirty.ratio.
  double min_cleanable_dirty_ratio = 0.5;
  // How often the background thread checks whether compaction is due.
  std::int64_t compaction_check_ms = 1000;
  // Permissions of the files and directories the log creates, before the umask: owner-only
  // by default, as the data is the application's.
  mode_t file_mode = detail::kDefaultFileMode;
  mode_t dir_mode = detail::kDefaultDirMode;
  // Called after retention deleted segments (not when it deleted none), with no lock of the
  // log held, on the thread that ran retention (an appender, the background thread, or the
  // caller of enforce_retention). Empty: nothing is called. It must not throw (on the
  // background thread an exception ends the process), and must not open or close a log that
  // shares this log's Background (its worker runs the callback while it holds its task list).
  std::function<void(const RetentionReport&)> on_retention{};
};

// What recovery found on open. A crash of the appending process leaves at most a frame
// that was never completed; damage (flipped bits, a torn page after power loss, a truncated
// or extended file) is cut off at the first bad frame, and everything from there on is
// dropped and counted here.
struct RecoveryReport {
  std::uint64_t dropped_records = 0;  // frames after the cut that still parsed (best effort)
  std::uint64_t dropped_bytes = 0;    // non-zero bytes discarded, in all files
  std::int64_t truncated_at = -1;     // first dropped offset, -1 when nothing was dropped
  std::uint32_t segments_deleted = 0;
  std::uint32_t indexes_rebuilt = 0;
  std::string detail;  // what was wrong, where; empty when clean
  bool clean() const noexcept { return dropped_bytes == 0 && segments_deleted == 0; }
};

// Offsets and timestamp of an append.
struct AppendInfo {
  std::int64_t offset = 0;        // of the first (or only) record
  std::int64_t count = 0;         // records appended
  std::int64_t timestamp_ms = 0;  // the log's time, given to records that had none
};

struct RetentionReport {
  std::uint32_t segments_deleted = 0;
  std::uint64_t bytes_deleted = 0;
  std::int64_t start_offset = 0;  // the log's first offset afterwards
};

// Activity of one log since it was opened in this process (Log::counters()): what a stats
// snapshot reports. Monotonic; each field is read on its own (no snapshot across fields).
struct LogCounters {
  std::uint64_t appended_records = 0;
  std::uint64_t appended_bytes = 0;    // batch bytes, padding included
  std::uint64_t appended_batches = 0;  // batches written (one per append of <= 65535 records)
  std::uint64_t read_records = 0;      // records returned by read()/read_into()
  // Bytes of the active segment faulted in ahead of the appender (LogConfig::prefault_bytes):
  // by the background worker, and by appenders themselves while readers wait for records.
  std::uint64_t prefaulted_by_worker = 0;
  std::uint64_t prefaulted_by_appenders = 0;
};

// Records read from a log: views into one segment, which the batch keeps mapped. Reusing a
// batch for the next read (Log::read_into) allocates nothing once it has grown.
class RecordBatch : public RecordViews {
 public:
  // Keeps the segment these records point into mapped for as long as the returned handle
  // lives: their views (keys, values, headers) stay valid after the batch is refilled or
  // destroyed. Null for a batch that holds no segment.
  std::shared_ptr<const void> pin() const noexcept { return segment_; }

 private:
  friend class Log;
  std::shared_ptr<const Segment> segment_;
  std::uint64_t log_id_ = 0;         // Log::id_ of the log that filled it
  std::uint64_t next_position_ = 0;  // the batch holding next_offset_, or after it
  std::uint64_t next_expect_ = 0;    // the offset the batch at next_position_ starts at
};

class Log final : private BackgroundTask {
 public:
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  ~Log() { close(); }

  // Opens the log in `dir`, creating the directory and a first segment if needed, and
  // recovers it (see RecoveryReport). Errors: kLocked when another Log (in this or another
  // process) has the directory open; kInvalidArgument for a bad config; kIoError / kNoSpace
  // from the file system; kCorruption when a file is not a rill segment at all.
  static Result<std::unique_ptr<Log>> open(const std::string& dir, LogConfig config = {}) {
    RILL_TRY(validate(config));
    RILL_TRY(detail::create_directories(dir, config.dir_mode));
    std::unique_ptr<Log> log(new Log(dir, std::move(config)));
    RILL_TRY(log->lock_directory());
    RILL_TRY(log->recover());
    log->start_worker();
    return log;
  }

  // A log in anonymous memory: the same code, no files; gone when closed.
  static Result<std::unique_ptr<Log>> open_in_memory(LogConfig config = {}) {
    RILL_TRY(validate(config));
    std::unique_ptr<Log> log(new Log(std::string(), std::move(config)));
    auto seg = Segment::create(std::string(), 0, log->clock_->now_ms(), log->layout());
    if (!seg) return fail(std::move(seg).error());
    log->install_recovered({*seg}, -1);
    log->start_worker();
    return log;
  }

  // --- appending ---

  // Appends one record and returns its offset. The record is readable by every thread as soon
  // as this returns (earlier, in fact). Errors, after which the log is unchanged:
  // kRecordTooLarge, kInvalidArgument (a negative timestamp other than kNoTimestamp),
  // kNoSpace / kIoError when a new segment cannot be created, kClosed.
  Result<AppendInfo> append(const Record& record) { return append_batch({&record, 1}); }

  // Appends records with consecutive offsets under one lock and one publication: readers see
  // all of them or none. A batch always lands in one segment (rolling first if needed).
  // Validated first: if any record is invalid, or the batch's frames exceed
  // segment_bytes - 64 (kRecordTooLarge, as Kafka's batch-larger-than-segment), none is
  // appended.
  Result<AppendInfo> append_batch(std::span<const Record> records) {
    return append_impl(records, nullptr);
  }

  // A check run under the append lock, before anything is written, with the log's end offset
  // at that moment: an error from it aborts the append (nothing written) and is returned as
  // is. With no other appender able to run in between, "append only if the end offset is
  // still E" (optimistic concurrency, see end_offset_is) and checks against the log's
  // contents up to the end are atomic with the append. It must not append to this log.
  using AppendPrecondition = std::function<Result<void>(std::int64_t end_offset)>;

  // A precondition that the end offset is `expected`; else kConflict.
  static AppendPrecondition end_offset_is(std::int64_t expected) {
    return [expected](std::int64_t end) -> Result<void> {
      if (end == expected) return {};
      return fail(ErrorCode::kConflict, "expected end offset " + std::to_string(expected) +
                                            ", the log ends at " + std::to_string(end));
    };
  }

  // append_batch, only if `precondition` (when not null) passes under the append lock.
  Result<AppendInfo> append_batch(std::span<const Record> records,
                                  const AppendPrecondition& precondition) {
    return append_impl(records, precondition ? &precondition : nullptr);
  }

  // Forces everything appended so far to stable storage (msync + fdatasync of the segments
  // written since the last flush). Blocks for the I/O. Errors: kIoError.
  Result<void> flush() { return sync_unsynced(0); }

  // Every record below this offset has been synced to stable storage by flush() or the
  // durability policy in this process's lifetime (records recovered on open count as
  // synced only once flushed again). In-memory logs report end_offset().
  std::int64_t durable_offset() const noexcept {
    if (dir_.empty()) return end_offset();
    return durable_offset_.load(std::memory_order_acquire);
  }

  // --- reading ---

  // The first offset still in the log (it grows as retention deletes segments).
  std::int64_t start_offset() const noexcept {
    // acquire: pairs with the release in enforce_retention.
    return start_offset_.load(std::memory_order_acquire);
  }
  // The offset the next record will get; every offset below it is readable.
  std::int64_t end_offset() const noexcept {
    // acquire: pairs with the store in append_batch; the records below are visible.
    return end_offset_.load(std::memory_order_acquire);
  }

  // Reads up to `max_records` records from `offset`, and about `max_bytes` (at least one
  // record is returned when any is available). Stops at a segment boundary. An offset equal to
  // end_offset() gives an empty batch. Errors: kOutOfRange when offset < start_offset() or
  // > end_offset(); kCorruption when a frame fails its checks (the records before it are
  // returned first).
  Result<RecordBatch> read(std::int64_t offset, std::size_t max_records,
                           std::size_t max_bytes = SIZE_MAX) const {
    RecordBatch batch;
    RILL_TRY(read_into(offset, batch, max_records, max_bytes));
    return batch;
  }

  // As read(), into a batch that is reused: no allocation once its capacity suffices, and no
  // index lookup or segment-table lock when `offset` continues where the batch ended.
  Result<void> read_into(std::int64_t offset, RecordBatch& out, std::size_t max_records,
                         std::size_t max_bytes = SIZE_MAX) const {
    const std::int64_t continues = out.next_offset_;  // where the previous read ended
    // The resume position belongs to `continues` alone: a read that returns before its end
    // (max_records 0, an error) leaves next_offset_ at `offset`, and a stale position kept
    // beside it sent the next read at that offset to where the batch had ended before,
    // skipping the records between.
    if (offset != continues) out.next_position_ = 0;
    out.records_.clear();
    // One allocation for a fresh batch rather than a doubling series.
    if (out.records_.capacity() == 0)
      out.records_.reserve(std::min<std::size_t>(max_records, 1024));
    out.next_offset_ = offset;
    const std::int64_t end = end_offset();
    const std::int64_t start = start_offset();
    if (offset < start || offset > end) {
      out.segment_.reset();
      return fail(ErrorCode::kOutOfRange,
                  "offset " + std::to_string(offset) + " is outside the log's range [" +
                      std::to_string(start) + ", " + std::to_string(end) + "]");
    }
    if (offset == end || max_records == 0) return {};
    const auto want = static_cast<std::uint64_t>(offset);

    std::uint64_t pos;     // a batch start at or before the wanted offset
    std::uint64_t expect;  // the offset the batch at `pos` must start at (or after)
    const Segment* seg = out.segment_.get();
    if (out.log_id_ != id_) {  // a batch last filled by another log: its segment is not ours
      out.segment_.reset();
      out.log_id_ = id_;
      seg = nullptr;
    }
    if (seg != nullptr && offset == continues && out.next_position_ != 0 &&
        want >= seg->base_offset() && want < seg->end_offset()) {
      pos = out.next_position_;
      expect = out.next_expect_;
    } else if (seg != nullptr && want >= seg->base_offset() && want < seg->end_offset()) {
      pos = seg->position_hint(want, &expect);
    } else {
      out.segment_ = segment_for(want);
      out.next_position_ = 0;  // a position in the batch's old segment, if any
      seg = out.segment_.get();
      if (seg == nullptr || want < seg->base_offset()) {
        return fail(ErrorCode::kOutOfRange,
                    "offset " + std::to_string(offset) + " was deleted by retention");
      }
      pos = seg->position_hint(want, &expect);
    }
    const std::uint64_t seg_end_pos = seg->end_position();
    const std::byte* base = seg->data();
    // A sealed segment's end offset is final (sealed() is stored after its last publish);
    // the active segment's may run ahead of the bytes loaded above, so no bound there.
    const bool sealed = seg->sealed();
    const std::uint64_t sealed_end = sealed ? seg->end_offset() : UINT64_MAX;
    // Where the read stops. In the active segment, at `end`: the bytes of a later append may
    // be published (end_position) before the log's end offset is, and are not ours yet. A
    // sealed segment is read to its own end: every record of it is below end_offset() by the
    // time a reader sees it sealed (the roll that sealed it came after the append that
    // stored the log's end past its last record). `end` would be wrong there: loaded before
    // the segment was sealed and compacted, it can fall in the gap before a compacted batch,
    // and the read stopped at that batch as if it were a later append, returning nothing
    // without moving (a consumer there never moved again; seen once in a TSan run of
    // tests/compaction_concurrency_test.cpp).
    const std::uint64_t limit = sealed ? sealed_end : static_cast<std::uint64_t>(end);
    // Batches below verified_to() were checked whole (header, CRC and every record's
    // structure) by their writer, by recovery or by an earlier read, and never change: their
    // headers and records are read without re-checking. verified_to() may run ahead of the
    // end position loaded above (a later publish); bytes past that are not ours to read yet.
    // Without verify_checksums, batches whose structure a read has checked count as well.
    const std::uint64_t known = config_.verify_checksums
                                    ? seg->verified_to()
                                    : std::max(seg->verified_to(), seg->structure_checked_to());
    const std::uint64_t trusted_end = std::min(known, seg_end_pos);
    std::uint64_t checked_from = 0;  // [checked_from, checked_to): batches whose CRC passed
    std::uint64_t checked_to = 0;
    std::uint64_t at = want;  // the next offset to return
    if (pos < trusted_end && max_bytes == SIZE_MAX) {
      ReadCursor c{pos, expect, at};
      read_checked_batches(base, trusted_end, limit, max_records, out.records_, c);
      pos = c.position;
      expect = c.expect;
      at = c.at;
    }
    // The general loop: batches not yet checked, a batch the read splits, a byte limit.
    std::size_t bytes = 0;
    bool full = out.records_.size() >= max_records;
    while (pos < seg_end_pos && !full) {
      FrameHeader h;
      bool trusted = pos < trusted_end;
      if (trusted) [[likely]] {
        std::memcpy(&h, base + pos, kFrameHeaderSize);
        if (h.base_offset >= limit) break;  // not yet ours
      } else {
        FrameCheck c = check_frame_header(base + pos, seg_end_pos - pos, expect, false);
        // A sealed segment's batches all end by its end offset; one that claims offsets past
        // it is damage (a compacted batch may start above `expect`), not a batch appended
        // after `end` was loaded, which only the active segment can hold. Without this check
        // the read stopped there as if at the end and returned nothing below end_offset().
        if (c.status == FrameStatus::kOk && batch_next_offset(c.header) > sealed_end) {
          c.status = FrameStatus::kCorrupt;
          c.reason = "batch runs past its segment's end offset";
        }
        if (c.status == FrameStatus::kOk && c.header.base_offset >= limit) break;  // not yet ours
        // Past verified_to(), with verify_checksums, check the batch whole once (skipped
        // below when it lies before the wanted offset).
        if (c.status == FrameStatus::kOk && config_.verify_checksums &&
            batch_next_offset(c.header) > at) {
          c = check_frame(base + pos, seg_end_pos - pos, expect, true);
          if (c.status == FrameStatus::kOk) {
            if (checked_to != pos) checked_from = pos;
            checked_to = pos + align_frame(c.header.size);
            trusted = true;
          }
        }
        if (c.status != FrameStatus::kOk) {
          if (!out.records_.empty()) break;
          return corrupt_at(*seg, pos, c.reason ? c.reason : "frame missing");
        }
        h = c.header;
      }
      const std::uint64_t next = batch_next_offset(h);
      if (next <= at) {  // before the wanted offset: skip it
        pos += align_frame(h.size);
        expect = next;
        continue;
      }
      const std::byte* p = base + pos + kFrameHeaderSize;
      if (trusted) [[likely]] {
        full = take_checked_records(p, h, max_records, max_bytes, out.records_, at, bytes);
      } else {
        // verify_checksums is off (or the batch failed its check): decode with bounds checks,
        // and, when every record decodes, make check_frame's remaining checks so that later
        // reads of the batch take the fast path.
        const std::byte* batch_end = base + pos + h.size;
        std::uint64_t delta = 0;
        std::int64_t max_ts = -1;
        RecordView rv;
        std::uint32_t i = 0;
        for (; i < h.count; ++i) {
          const char* reason = nullptr;
          p = decode_record(p, batch_end, h, delta, &rv, &reason);
          if (p == nullptr) {
            if (!out.records_.empty()) {
              full = true;  // return what came before; the next read reports the damage
              break;
            }
            return corrupt_at(*seg, pos, reason);
          }
          const auto o = static_cast<std::uint64_t>(rv.offset());
          delta = o - h.base_offset + 1;
          max_ts = std::max(max_ts, rv.timestamp_ms());
          if (o < at) continue;
          if (out.records_.size() >= max_records ||
              (!out.records_.empty() && bytes + rv.stored_bytes() > max_bytes)) {
            full = true;
            break;
          }
          out.records_.push_back(rv);
          bytes += rv.stored_bytes();
          at = o + 1;
        }
        const bool compacted = (h.attributes & kBatchCompacted) != 0;
        const std::uint64_t span = std::uint64_t{h.last_offset_delta} + 1;
        if (!config_.verify_checksums && i == h.count && p == batch_end &&
            (compacted ? delta <= span : delta == span) &&
            (h.count == 0 || max_ts == h.max_timestamp_ms)) {
          if (checked_to != pos) checked_from = pos;
          checked_to = pos + align_frame(h.size);
        }
      }
      if (full) break;  // stopped inside this batch: the next read resumes at its start
      at = std::max(at, next);
      pos += align_frame(h.size);
      expect = next;
    }
    if (checked_to > checked_from) {
      if (config_.verify_checksums) {
        seg->mark_verified(checked_from, checked_to);
      } else {
        seg->mark_structure_checked(checked_from, checked_to);
      }
    }
    // relaxed: statistics only; one increment per read call, not per record.
    read_records_.fetch_add(out.records_.size(), std::memory_order_relaxed);
    out.next_offset_ = static_cast<std::int64_t>(at);
    out.next_position_ = pos;
    out.next_expect_ = expect;
    return {};
  }

  // The first offset whose record has a timestamp >= `timestamp_ms`, or nullopt when no record
  // has (Kafka's offsetsForTimes). Skips whole segments by their newest timestamp, then walks
  // the batch headers of the first one that may hold it (whole batches skipped by theirs) and
  // decodes one batch. Cost: a header read per batch of that segment.
  std::optional<std::int64_t> offset_for_time(std::int64_t timestamp_ms) const {
    const auto limit = static_cast<std::uint64_t>(end_offset());
    for (const auto& seg : segments_snapshot()) {
      if (seg->max_timestamp_ms() < timestamp_ms) continue;
      // From the segment's first batch, not from its time index's hint: a damaged .timeindex
      // can hold entries that look sound (ordered, at batch starts) and still point past a
      // batch holding the timestamp, and nothing checks entries against the batches (the
      // index fuzzer found one: offset 62 where a scan says 60). Batch headers carry their
      // newest timestamp, so the walk skips whole batches: a few milliseconds for a 64 MiB
      // segment of single-record batches.
      std::uint64_t at = seg->base_offset();
      std::uint64_t pos = kFileHeaderSize;
      const std::uint64_t seg_end_pos = seg->end_position();
      while (pos < seg_end_pos) {
        const FrameCheck c = check_frame_header(seg->data() + pos, seg_end_pos - pos, at, false);
        if (c.status != FrameStatus::kOk || c.header.base_offset >= limit) break;
        const FrameHeader& h = c.header;
        if (h.max_timestamp_ms >= timestamp_ms) {
          const std::byte* p = seg->data() + pos + kFrameHeaderSize;
          std::uint64_t delta = 0;
          RecordView rv;
          for (std::uint32_t i = 0; i < h.count; ++i) {
            const char* reason = nullptr;
            p = decode_record(p, seg->data() + pos + h.size, h, delta, &rv, &reason);
            if (p == nullptr) return std::nullopt;
            if (rv.timestamp_ms() >= timestamp_ms) return rv.offset();
            delta = static_cast<std::uint64_t>(rv.offset()) - h.base_offset + 1;
          }
        }
        pos += align_frame(h.size);
        at = batch_next_offset(h);
      }
    }
    return std::nullopt;
  }

  // Blocks until end_offset() > `offset` (a record at `offset` is readable), or `timeout`
  // passes. Returns at once when that already holds. An append wakes every waiter at once
  // (futex); appends pay nothing for this when nobody waits beyond one ordered store.
  // Errors: kTimeout, kClosed (the log was closed while waiting). Any duration: one too long
  // to represent as a deadline (hours::max(), say) waits without a limit.
  template <typename Rep, typename Period>
  Result<void> wait_for(std::int64_t offset, std::chrono::duration<Rep, Period> timeout) const {
    if (end_offset() > offset) return {};
    const auto deadline = detail::deadline_after(timeout);
    // seq_cst: the other half of the Dekker pair with the end_offset_ store in append_batch.
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    Result<void> result;
    for (;;) {
      // acquire: pairs with the release increment in wake_waiters; read before the check so
      // that a wake after the check changes the word and futex_wait returns at once.
      const std::uint32_t seq = wake_seq_.load(std::memory_order_acquire);
      if (end_offset_.load(std::memory_order_seq_cst) > offset) break;
      if (closed_.load(std::memory_order_acquire)) {
        result = fail(ErrorCode::kClosed, "log closed while waiting");
        break;
      }
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) {
        result = fail(ErrorCode::kTimeout, "no record at offset " + std::to_string(offset));
        break;
      }
      detail::futex_wait(wake_seq_, seq, left);
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return result;
  }

  // Tells the log that a reader has caught up with it and waits for the next record (a
  // Consumer calls it when a poll reaches a partition's end, whether it then sleeps or
  // spins). While a reader waits, by this or asleep in wait_for() or on a Notifier (an append
  // that wakes one notes it), the log's appenders fault in their own pages and its background
  // thread keeps off (LogConfig::prefault_bytes). A read that reaches the end does not call
  // it: a scan or an index catching up is not waiting. Cost: two loads, and a store when a
  // flag changes.
  void note_reader_waiting() const noexcept {
    // relaxed, both: hints for provision() and the worker (readers_kept_up()).
    if (!reader_seen_.load(std::memory_order_relaxed)) {
      reader_seen_.store(true, std::memory_order_relaxed);
    }
    if (!readers_keep_up_.load(std::memory_order_relaxed)) {
      readers_keep_up_.store(true, std::memory_order_relaxed);
    }
  }

  // Rings `n` after every append (and on close) until remove_notifier(n): how a consumer
  // waits on many partitions at once. Appends then take a short extra lock to ring.
  void add_notifier(Notifier* n) {
    {
      std::lock_guard lock(notifiers_mu_);
      notifiers_.push_back(n);
    }
    // seq_cst: the same Dekker pair as wait_for's increment (see append_batch); a record
    // appended after this is rung.
    waiters_.fetch_add(std::uint64_t{1} << 32, std::memory_order_seq_cst);
  }

  // Stops ringing `n`; once this returns, the log never touches `n` again.
  void remove_notifier(Notifier* n) {
    std::lock_guard lock(notifiers_mu_);
    auto it = std::find(notifiers_.begin(), notifiers_.end(), n);
    if (it == notifiers_.end()) return;
    notifiers_.erase(it);
    waiters_.fetch_sub(std::uint64_t{1} << 32, std::memory_order_relaxed);
  }

  // --- maintenance ---

  // Compacts the log now (Kafka's log cleaner): keeps the newest record of every key, every
  // record without a key, and a newest tombstone until it is older than delete_retention_ms
  // (by its timestamp against the log's clock); drops the rest. Offsets never change: readers
  // skip the dropped ones (a read from a dropped offset returns the next record kept, and a
  // read may return an empty batch whose next_offset() is past the one asked for). Only
  // sealed segments are rewritten, never the active one; the newest offset per key is taken
  // over the whole log up to end_offset() when compaction starts (appends after that are not
  // considered, and keep their older versions until the next run), or, under a durability
  // policy that syncs, up to durable_offset(): a record not yet on stable storage supersedes
  // nothing, so a power loss cannot take both it and the record it replaced.
  //
  // Appends and reads go on meanwhile: a rewritten segment is swapped in under the segment
  // table's lock, and a reader holding the old one keeps its mapping. Crash-safe at every
  // point (docs/format.md, "Compaction"): "<base>.log.cleaned" is written and synced, then
  // renamed over the segment; recovery deletes a leftover .cleaned file. Runs on demand and,
  // with LogConfig::compact, in the background. Concurrent calls run one at a time.
  //
  // Errors, after which the log stays valid (segments already swapped stay compacted):
  // kClosed; kCorruption when a batch fails its checks (that segment is left alone, the
  // others are compacted);
  // kIoError / kNoSpace writing the compacted copy.
  //
  // Cost: reads every record once to find the newest offsets (a map of every distinct key,
  // viewing the mapped keys), then, per sealed segment that drops something, builds its
  // compacted copy in memory (up to a segment's size), writes and fsyncs it, fsyncs the
  // directory, and rebuilds its indexes.
  Result<CompactionReport> compact();

  // Deletes the oldest segments that retention_bytes / retention_ms no longer keep; never the
  // active segment. Runs after every roll and periodically on the background thread; call it
  // to apply retention now (after moving a ManualClock, say). Readers that hold a deleted
  // segment keep reading it: its mapping outlives its files.
  // Errors: kIoError (or the disk's error) when a segment's log file cannot be removed: that
  // segment and every newer one stay in the log, readable, and the start offset stays where
  // the files say, so a reopen finds the same log; the older ones removed before it are
  // gone (reported through on_retention as usual); a later call tries again.
  Result<RetentionReport> enforce_retention() {
    // Compaction swaps files under the same lock: a segment deleted here is never renamed
    // back into place, and one compacted there is deleted whole. Only this function removes
    // segments from the front of the table, always under this lock: the doomed segments
    // chosen below are still its first ones when they are taken out.
    std::lock_guard files_lock(files_mu_);
    // A closed log may have let its directory go (close()): its files are not ours to delete.
    if (closed_.load(std::memory_order_acquire)) return RetentionReport{};
    std::vector<std::shared_ptr<Segment>> doomed;
    {
      std::lock_guard lock(segments_mu_);
      std::uint64_t total = 0;
      for (const auto& s : segments_) total += s->size_bytes();
      const std::int64_t now = clock_->now_ms();
      std::size_t n = 0;
      while (n + 1 < segments_.size()) {
        const Segment& s = *segments_[n];
        const bool by_size =
            config_.retention_bytes >= 0 &&
            total - s.size_bytes() >= static_cast<std::uint64_t>(config_.retention_bytes);
        const bool by_time =
            config_.retention_ms >= 0 && s.max_timestamp_ms() < now - config_.retention_ms;
        if (!by_size && !by_time) break;
        total -= s.size_bytes();
        ++n;
      }
      doomed.assign(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    // Oldest first, each log file before its segment leaves the table: the table never
    // drops a segment whose file a reopen would find again.
    RetentionReport report;
    Result<void> failed;
    std::size_t removed = 0;
    for (; removed < doomed.size(); ++removed) {
      failed = doomed[removed]->remove_log_file();
      if (!failed) break;
      report.bytes_deleted += doomed[removed]->size_bytes();
    }
    {
      std::lock_guard lock(segments_mu_);
      segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(removed));
      report.start_offset = static_cast<std::int64_t>(segments_.front()->base_offset());
      // release: pairs with the acquire in start_offset(); a reader that sees the new start
      // will not look for the deleted segments.
      start_offset_.store(report.start_offset, std::memory_order_release);
    }
    for (std::size_t i = 0; i < removed; ++i) doomed[i]->remove_index_files();
    report.segments_deleted = static_cast<std::uint32_t>(removed);
    if (removed != 0 && !dir_.empty() && config_.durability.mode != Durability::Mode::kOsCache) {
      RILL_TRY(detail::sync_directory(dir_));
    }
    if (removed != 0 && config_.on_retention) config_.on_retention(report);
    if (!failed) return fail(std::move(failed).error());
    return report;
  }

  // Stops the background thread, waits for the appends, compaction and retention under way,
  // syncs if the durability policy asks for syncs, wakes waiters with kClosed, makes later
  // appends (and compactions) fail with kClosed, and releases the directory's lock: another
  // Log may open the directory at once, while this one's records stay readable to those
  // holding it (its mappings stay). Idempotent.
  void close() {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return;
    stop_worker();
    // Each lock once, in turn (never two at a time): whoever held it had checked closed_
    // before the exchange above and is done with the files when we get it; whoever takes it
    // after us sees closed_ and leaves them alone. Without this an append under way when
    // close() returned could still write, and roll a new segment file into a directory that
    // a topic created again under the same name now owns.
    { std::lock_guard wait_compaction(compact_mu_); }
    { std::lock_guard wait_retention(files_mu_); }
    { std::lock_guard wait_appends(append_mu_); }
    if (config_.durability.mode != Durability::Mode::kOsCache) (void)flush();
    lock_file_.close();  // flock(2) ends with the descriptor
    wake_seq_.fetch_add(1, std::memory_order_release);
    detail::futex_wake_all(wake_seq_);
    std::lock_guard lock(notifiers_mu_);
    for (Notifier* n : notifiers_) n->notify();
  }

  // What this log has appended and served since it was opened; cheap (four relaxed loads).
  LogCounters counters() const noexcept {
    // relaxed: statistics; see append_impl and read_into.
    return {appended_records_.load(std::memory_order_relaxed),
            appended_bytes_.load(std::memory_order_relaxed),
            appended_batches_.load(std::memory_order_relaxed),
            read_records_.load(std::memory_order_relaxed),
            prefaulted_by_worker_.load(std::memory_order_relaxed),
            prefaulted_by_appenders_.load(std::memory_order_relaxed)};
  }

  // How many segments compaction has replaced since the log was opened: when it has not
  // moved, no record below end_offset() has been dropped since (retention aside, which
  // start_offset() shows). Lets an index of the log built by reading it (es::EventStore's)
  // tell when to look for records it indexed that are gone.
  std::uint64_t compacted_segments() const noexcept {
    // acquire: pairs with the release in install_compacted; a reader that sees the new count
    // reads the compacted segment.
    return compacted_segments_.load(std::memory_order_acquire);
  }

  const RecoveryReport& recovery() const noexcept { return recovery_; }
  const std::string& directory() const noexcept { return dir_; }
  const LogConfig& config() const noexcept { return config_; }
  std::size_t segment_count() const {
    std::lock_guard lock(segments_mu_);
    return segments_.size();
  }
  // Bytes of record frames in all segments.
  std::uint64_t size_bytes() const {
    std::uint64_t total = 0;
    for (const auto& s : segments_snapshot()) total += s->size_bytes() - kFileHeaderSize;
    return total;
  }
  // The segments, oldest first (for tools and tests).
  std::vector<std::shared_ptr<const Segment>> segments() const {
    auto snap = segments_snapshot();
    return {snap.begin(), snap.end()};
  }

 private:
  Log(std::string dir, LogConfig config) : dir_(std::move(dir)), config_(std::move(config)) {
    clock_ = config_.clock ? config_.clock : SystemClock::instance();
    system_clock_ = clock_ == SystemClock::instance();
  }

  // The time for an append: the configured clock, read without a virtual call when it is the
  // shared SystemClock (the default).
  std::int64_t append_now_ms() const noexcept {
    return system_clock_ ? SystemClock::read_ms() : clock_->now_ms();
  }

  static Result<void> validate(const LogConfig& c) { return validate_config(c); }

 public:
  // Checks a configuration without opening anything: kInvalidArgument naming the bad field.
  static Result<void> validate_config(const LogConfig& c) {
    // The size an append checks against max_record_bytes is a bound (the timestamp's varint is
    // counted at its widest: the time is read under the lock), so even the smallest record (no
    // key, no value, no headers) counts as this much. A smaller max_record_bytes would refuse
    // every record.
    const std::size_t smallest = frame_size(Record{});
    if (c.segment_bytes < kFileHeaderSize + align_frame(smallest) ||
        c.segment_bytes > (std::size_t{1} << 32)) {
      return fail(ErrorCode::kInvalidArgument,
                  "segment_bytes must be within [" +
                      std::to_string(kFileHeaderSize + align_frame(smallest)) + ", 4 GiB], got " +
                      std::to_string(c.segment_bytes));
    }
    if (c.max_record_bytes < smallest ||
        align_frame(c.max_record_bytes) > c.segment_bytes - kFileHeaderSize) {
      return fail(ErrorCode::kInvalidArgument,
                  "max_record_bytes must be within [" + std::to_string(smallest) +
                      ", segment_bytes - 64], got " + std::to_string(c.max_record_bytes));
    }
    if (c.durability.mode == Durability::Mode::kEveryRecords && c.durability.every_records == 0) {
      return fail(ErrorCode::kInvalidArgument, "Durability::every(n) needs n > 0");
    }
    if (c.durability.mode == Durability::Mode::kInterval && c.durability.interval_ms <= 0) {
      return fail(ErrorCode::kInvalidArgument, "Durability::interval(ms) needs ms > 0");
    }
    if (c.delete_retention_ms < 0) {
      return fail(ErrorCode::kInvalidArgument,
                  "delete_retention_ms must be >= 0, got " + std::to_string(c.delete_retention_ms));
    }
    if (!(c.min_cleanable_dirty_ratio >= 0.0 && c.min_cleanable_dirty_ratio <= 1.0)) {
      return fail(ErrorCode::kInvalidArgument, "min_cleanable_dirty_ratio must be within [0, 1]");
    }
    if (c.compaction_check_ms <= 0) {
      return fail(ErrorCode::kInvalidArgument, "compaction_check_ms must be > 0");
    }
    return {};
  }

 private:
  // BatchSizeBound::bytes() of `records`, checking each: kRecordTooLarge for a frame over
  // max_record_bytes or with a field too wide, kInvalidArgument for a negative timestamp.
  [[gnu::noinline]] Result<std::size_t> measure_records(std::span<const Record> records) const {
    BatchSizeBound bound;
    for (const Record& r : records) {
      const std::size_t size = frame_size(r);
      if (size == 0 || size > config_.max_record_bytes) {
        return fail(ErrorCode::kRecordTooLarge,
                    "record of " +
                        (size == 0 ? std::string("over 4 GiB or with oversize fields")
                                   : std::to_string(size) + " bytes") +
                        " exceeds max_record_bytes " + std::to_string(config_.max_record_bytes));
      }
      if (r.timestamp_ms < 0 && r.timestamp_ms != kNoTimestamp) {
        return fail(ErrorCode::kInvalidArgument,
                    "negative timestamp " + std::to_string(r.timestamp_ms));
      }
      bound.add_frame_size(size);
    }
    return bound.bytes();
  }

  Result<AppendInfo> append_impl(std::span<const Record> records,
                                 const AppendPrecondition* precondition) {
    // Upper bound of the bytes the records take (see frame_size): exact sizes depend on the
    // timestamps, known only under the lock. First a quick, looser bound that also checks the
    // records (quick_batch_bound); the exact one, record by record, only when the quick one
    // does not settle it: a record to look at, or a batch near a segment's size. Either way
    // the log behaves as if the exact bound had been used.
    std::size_t total = quick_batch_bound(records, config_.max_record_bytes);
    bool exact = false;
    if (total == 0 || total > config_.segment_bytes - kFileHeaderSize) [[unlikely]] {
      auto bound = measure_records(records);
      if (!bound) return fail(std::move(bound).error());
      total = *bound;
      exact = true;
    }
    if (records.empty() && precondition == nullptr) {
      return AppendInfo{end_offset(), 0, clock_->now_ms()};
    }
    if (total > config_.segment_bytes - kFileHeaderSize) [[unlikely]] {
      // As Kafka: a batch must fit in a segment.
      return fail(ErrorCode::kRecordTooLarge, "batch of up to " + std::to_string(total) +
                                                  " bytes does not fit in a segment of " +
                                                  std::to_string(config_.segment_bytes) + " bytes");
    }

    std::unique_lock lock(append_mu_);
    if (closed_.load(std::memory_order_relaxed)) return fail(ErrorCode::kClosed, "log is closed");
    if (precondition != nullptr) RILL_TRY((*precondition)(static_cast<std::int64_t>(next_offset_)));
    const std::int64_t now = append_now_ms();
    if (records.empty()) return AppendInfo{static_cast<std::int64_t>(next_offset_), 0, now};
    Segment* seg = active_.get();
    if (!seg->has_room(total) || roll_due(*seg, now)) [[unlikely]] {
      if (!exact) total = *measure_records(records);  // valid: the quick check passed
      if (seg->write_position() > kFileHeaderSize &&
          (!seg->has_room(total) || roll_due(*seg, now))) {
        RILL_TRY(roll(now));
        seg = active_.get();
      }
    }
    const std::uint64_t first = next_offset_;
    const std::uint64_t first_pos = seg->write_position();
    std::uint64_t batches = 0;
    for (std::size_t i = 0; i < records.size(); i += kMaxBatchRecords) {  // fits: checked above
      const auto part = records.subspan(i, std::min(kMaxBatchRecords, records.size() - i));
      const std::uint64_t pos = seg->write_position();
      const EncodedBatch b = encode_batch(seg->write_ptr(), part, next_offset_, now);
      seg->note_frame(next_offset_, pos, b.max_timestamp_ms, align_frame(b.size));
      next_offset_ += part.size();
      ++batches;
    }
    if (first_append_ms_ < 0) first_append_ms_ = now;
    seg->publish(next_offset_);
    // seq_cst: pairs with the seq_cst increment of waiters_ in wait_for (a store-load
    // "Dekker" pair): either this store is seen by a waiter's re-check, or the waiter's
    // increment is seen by our load of waiters_ below, so a wake is never lost. On x86 this
    // is one xchg instead of a mov, paid whether or not anyone waits.
    end_offset_.store(static_cast<std::int64_t>(next_offset_), std::memory_order_seq_cst);
    const auto count = static_cast<std::int64_t>(next_offset_ - first);
    unsynced_records_ += static_cast<std::uint64_t>(count);
    // relaxed: statistics, written only under append_mu_ (so a plain load + store, no locked
    // instruction), read by counters() with no ordering against anything.
    appended_records_.store(
        appended_records_.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(count),
        std::memory_order_relaxed);
    appended_bytes_.store(
        appended_bytes_.load(std::memory_order_relaxed) + (seg->write_position() - first_pos),
        std::memory_order_relaxed);
    appended_batches_.store(appended_batches_.load(std::memory_order_relaxed) + batches,
                            std::memory_order_relaxed);
    const bool sync_now = config_.durability.mode == Durability::Mode::kEveryAppend ||
                          (config_.durability.mode == Durability::Mode::kEveryRecords &&
                           unsynced_records_ >= config_.durability.every_records);
    // Not once the segment is prefaulted to its end: then there is nothing to do before the
    // roll, and asking anyway kept the worker running rounds back to back through the last
    // prefault_bytes / 2 of every segment (all of it when prefault_bytes >= 2 segments).
    const std::uint64_t prefaulted = seg->prefaulted_to().load(std::memory_order_relaxed);
    const bool prefault_due = background_ != nullptr && config_.prefault_bytes != 0 &&
                              !prefault_off_.load(std::memory_order_relaxed) &&
                              prefaulted < seg->capacity_bytes() &&
                              seg->write_position() + config_.prefault_bytes / 2 > prefaulted;
    const bool retention_due = std::exchange(retention_due_, false);
    // While readers keep up, this append faults the next pages in itself (see provision());
    // the segment is held so that a roll and retention meanwhile cannot unmap it. relaxed: a
    // hint.
    std::shared_ptr<Segment> lagging;
    if (prefault_due && readers_keep_up_.load(std::memory_order_relaxed)) [[unlikely]]
      lagging = active_;
    lock.unlock();

    if (wake_waiters()) note_reader_waiting();
    if (prefault_due) [[unlikely]]
      provision(lagging.get());
    if (retention_due) [[unlikely]]
      (void)enforce_retention();
    if (sync_now) {
      RILL_TRY(sync_unsynced(config_.durability.mode == Durability::Mode::kEveryRecords
                                 ? config_.durability.every_records
                                 : 0));
    }
    return AppendInfo{static_cast<std::int64_t>(first), count, now};
  }

  // flush(), unless fewer than `min_unsynced` records are left unsynced by the time this
  // flush's turn comes: Durability::every(n) passes n, so appenders that crossed n while
  // another flush ran do not each sync again once it has covered their records.
  Result<void> sync_unsynced(std::uint64_t min_unsynced) {
    std::lock_guard sync_lock(sync_mu_);
    std::uint64_t end_offset;
    std::uint64_t covered;  // of unsynced_records_: the records below end_offset
    {
      std::lock_guard lock(append_mu_);
      if (unsynced_records_ < min_unsynced) return {};
      end_offset = next_offset_;
      covered = unsynced_records_;
    }
    const auto durable =
        static_cast<std::uint64_t>(durable_offset_.load(std::memory_order_relaxed));
    const auto segs = segments_snapshot();
    for (const auto& seg : segs) {
      if (seg->end_offset() <= durable && seg.get() != segs.back().get()) continue;
      const std::uint64_t from = seg->base_offset() == synced_base_ ? synced_position_ : 0;
      const std::uint64_t to = seg->end_position();
      RILL_TRY(seg->sync(from, to));
      synced_base_ = seg->base_offset();
      synced_position_ = to;
    }
    // relaxed: a timestamp for the background thread's "is a sync due" check only.
    last_sync_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                        std::memory_order_relaxed);
    // Only now are those records off the count Durability::every(n) keeps: reset before the
    // sync, a failed sync left up to n - 1 more appends without one (and more than n - 1
    // records unsynced). Records appended meanwhile stay counted. Flushes run one at a time
    // (sync_mu_), so nothing else lowers the count in between.
    {
      std::lock_guard lock(append_mu_);
      unsynced_records_ -= std::min(unsynced_records_, covered);
    }
    // release: pairs with the acquire in durable_offset().
    durable_offset_.store(static_cast<std::int64_t>(end_offset), std::memory_order_release);
    return {};
  }

  SegmentLayout layout() const {
    return {config_.segment_bytes, config_.index_interval_bytes, config_.file_mode};
  }

  bool roll_due(const Segment& seg, std::int64_t now) const noexcept {
    return config_.segment_ms > 0 && first_append_ms_ >= 0 &&
           seg.write_position() > kFileHeaderSize && now - first_append_ms_ >= config_.segment_ms;
  }

  // Starts a new active segment at next_offset_. REQUIRES: append_mu_ held. On failure the
  // old segment stays active and unchanged, and no file of the new one is left behind.
  Result<void> roll(std::int64_t now) {
    auto next = Segment::create(dir_, next_offset_, now, layout());  // removes its files on error
    if (!next) return fail(std::move(next).error());
    if (!dir_.empty() && config_.durability.mode != Durability::Mode::kOsCache) {
      if (auto synced = detail::sync_directory(dir_); !synced) {
        // The new segment's files exist (header written) but the log does not use them. Left
        // there, "<next_offset_>.log" would be found by the next open while the old segment,
        // still active, grows past next_offset_: recovery then takes the old segment's end for
        // damage and deletes every later segment, acknowledged records included (and a retried
        // roll at the same base failed with kAlreadyExists). Nothing was written to them.
        (*next)->remove_files();
        return fail(std::move(synced).error());
      }
    }
    active_->publish(next_offset_);
    active_->seal();
    {
      std::lock_guard lock(segments_mu_);
      segments_.push_back(*next);
    }
    active_ = std::move(*next);
    first_append_ms_ = -1;
    retention_due_ = config_.retention_bytes >= 0 || config_.retention_ms >= 0;
    return {};
  }

  // Wakes threads in wait_for() and rings the notifiers. Returns whether a blocked reader was
  // (or may have been) woken: a thread in wait_for(), or a notifier with a sleeper.
  bool wake_waiters() const noexcept {
    // seq_cst load: see the store of end_offset_ in append_batch.
    const std::uint64_t w = waiters_.load(std::memory_order_seq_cst);
    if (w == 0) return false;
    bool woke = false;
    if ((w & 0xFFFFFFFFu) != 0) {
      // release: pairs with the acquire load of wake_seq_ in wait_for.
      wake_seq_.fetch_add(1, std::memory_order_release);
      detail::futex_wake_all(wake_seq_);
      woke = true;
    }
    if ((w >> 32) != 0) {
      std::lock_guard lock(notifiers_mu_);
      for (Notifier* n : notifiers_) woke = n->notify() || woke;
    }
    return woke;
  }

  // The worker's view, once a round: whether a reader kept up (note_reader_waiting()) in the
  // last kReaderWindowMs by the log's clock; publishes it to the appenders.
  static constexpr std::int64_t kReaderWindowMs = 1000;
  bool readers_kept_up() {
    const std::int64_t now = clock_->now_ms();
    // relaxed, all: hints. reader_last_seen_ms_ is the worker's own (rounds run one at a time).
    if (reader_seen_.exchange(false, std::memory_order_relaxed)) reader_last_seen_ms_ = now;
    if (!readers_keep_up_.load(std::memory_order_relaxed)) return false;
    // A clock stepped back counts as the window's end.
    const std::int64_t age = now - reader_last_seen_ms_;
    if (reader_last_seen_ms_ >= 0 && age >= 0 && age < kReaderWindowMs) return true;
    readers_keep_up_.store(false, std::memory_order_relaxed);
    return false;
  }

  // Pages for the appender, asked for by an append that found fewer than prefault_bytes / 2
  // faulted in ahead of it; runs once that append's records are published and its readers
  // woken. Faulting pages in is CPU work (allocating and zeroing page cache), and on a
  // machine with few CPUs a burst of it (the worker's rounds take a millisecond or more)
  // delayed readers woken meanwhile by up to a scheduler tick or more (docs/performance.md,
  // W3). So while readers keep up (`lagging`, the active segment, is then given), the
  // appender faults in the next kProvisionStepBytes itself, in steps of about ten
  // microseconds, and the worker keeps off; otherwise the worker is woken to run ahead, off
  // the appender's path (one wake per lag: while the worker has not run since the last one,
  // another is useless).
  static constexpr std::uint64_t kProvisionStepBytes = 64u << 10;
  void provision(Segment* lagging) {
    if (lagging != nullptr) {
      prefault_segment(*lagging, kProvisionStepBytes, prefaulted_by_appenders_);
      return;
    }
    // relaxed: a hint (see prefault()).
    if (!prefault_wake_sent_.load(std::memory_order_relaxed) &&
        !prefault_wake_sent_.exchange(true, std::memory_order_relaxed)) {
      background_->wake();
    }
  }

  // Faults in up to `max_bytes` of `seg`'s pages past those already claimed, staying within
  // prefault_bytes of its end position. Called by the worker and by appenders, concurrently:
  // each first claims its range by raising prefaulted_to, so no two populate the same pages.
  // A claimed range whose populate fails stays claimed: its pages fault on first write. A
  // kernel without MADV_POPULATE_WRITE (EINVAL) turns prefaulting off; another failure (the
  // segment sealed and its file truncated meanwhile: EFAULT; ENOMEM) ends only this call.
  void prefault_segment(Segment& seg, std::uint64_t max_bytes,
                        std::atomic<std::uint64_t>& counter) {
    if (seg.sealed()) return;
    // relaxed, all: prefaulted_to is a hint (pages it covers that are not faulted in only
    // cost their writer a fault); end_position() is the appender's own or a recent value.
    const std::uint64_t pos = seg.end_position();
    const std::uint64_t limit =
        std::min<std::uint64_t>(pos + config_.prefault_bytes, seg.capacity_bytes());
    auto& claimed = seg.prefaulted_to();
    std::uint64_t before = claimed.load(std::memory_order_relaxed);
    std::uint64_t to = 0;
    do {
      to = std::min(limit, std::max(before, pos) + max_bytes);
      if (std::max(before, pos) >= to) return;
    } while (!claimed.compare_exchange_weak(before, to, std::memory_order_relaxed));
    const std::uint64_t from = std::max(before, pos);
    const int err = seg.populate(from, to);
    if (err == EINVAL) prefault_off_.store(true, std::memory_order_relaxed);
    if (err == 0) counter.fetch_add(to - from, std::memory_order_relaxed);  // relaxed: stats
  }

  std::shared_ptr<const Segment> segment_for(std::uint64_t offset) const {
    std::lock_guard lock(segments_mu_);
    auto it = std::upper_bound(
        segments_.begin(), segments_.end(), offset,
        [](std::uint64_t v, const std::shared_ptr<Segment>& s) { return v < s->base_offset(); });
    if (it == segments_.begin()) return nullptr;
    return *std::prev(it);
  }

  std::vector<std::shared_ptr<Segment>> segments_snapshot() const {
    std::lock_guard lock(segments_mu_);
    return segments_;
  }

  Unexpected corrupt_at(const Segment& seg, std::uint64_t pos, const char* reason) const {
    return fail(ErrorCode::kCorruption,
                (seg.in_memory() ? std::string("<memory>") : seg.log_path()) + ": position " +
                    std::to_string(pos) + ": " + (reason ? reason : "frame missing"));
  }

  Result<void> lock_directory() {
    const std::string path = dir_ + "/.lock";
    auto f = detail::File::open(path, O_RDWR | O_CREAT, config_.file_mode);
    if (!f) return fail(std::move(f).error());
    if (::flock(f->fd(), LOCK_EX | LOCK_NB) != 0) {
      char holder[32] = {};
      const ssize_t n = ::pread(f->fd(), holder, sizeof holder - 1, 0);
      std::string who = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : "unknown";
      while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
      return fail(ErrorCode::kLocked,
                  dir_ + " is already open for writing (held by pid " + who + ")");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    RILL_TRY(f->truncate(0));
    RILL_TRY(f->pwrite_all(pid.data(), pid.size(), 0));
    lock_file_ = std::move(*f);
    return {};
  }

  void install_recovered(std::vector<std::shared_ptr<Segment>> segs, std::int64_t first_append) {
    active_ = segs.back();
    next_offset_ = active_->end_offset();
    start_offset_.store(static_cast<std::int64_t>(segs.front()->base_offset()),
                        std::memory_order_relaxed);
    end_offset_.store(static_cast<std::int64_t>(next_offset_), std::memory_order_relaxed);
    first_append_ms_ = first_append;
    segments_ = std::move(segs);
  }

  // Recovery, in order:
  //  1. list "<20 digits>.log" files; delete index files whose log is gone;
  //  2. check each sealed segment cheaply: header, indexes (rebuilt when invalid), and the
  //     frames after the last index entry, which must end exactly where the next segment
  //     begins; a sealed segment failing that is scanned whole and, if damaged, becomes the
  //     last segment (everything after it is dropped);
  //  3. scan the last segment frame by frame with CRCs, cut it at the first bad frame, zero
  //     what lies after, rebuild its indexes.
  Result<void> recover();

  // Checks a sealed segment that must end at `expected_end`; false when it is damaged.
  Result<bool> recover_sealed(Segment& seg, std::uint64_t expected_end);

  // Recovers the segment with `base` as the active one. Returns nullptr (after deleting its
  // files) when its header is unreadable, so the caller falls back to the previous segment.
  Result<std::shared_ptr<Segment>> recover_active(std::uint64_t base);

  // Deletes a segment that recovery drops, counting what it held.
  void drop_segment(std::uint64_t base);

  void note(const std::string& what) {
    if (!recovery_.detail.empty()) recovery_.detail += "; ";
    recovery_.detail += what;
  }

  bool needs_background() const noexcept {
    return config_.prefault_bytes != 0 || config_.durability.mode == Durability::Mode::kInterval ||
           config_.retention_ms >= 0 || config_.compact;
  }

  void start_worker() {
    if (!needs_background()) return;
    if (!config_.background) config_.background = std::make_shared<Background>();
    background_ = config_.background.get();
    background_->attach(this);
  }

  // Detaches from the worker. background_ keeps its value: an append that read it under the
  // append lock before close() may still call wake() on it after (harmless once detached),
  // and config_.background keeps the Background alive as long as this log.
  void stop_worker() {
    if (background_ != nullptr) background_->detach(this);
  }

  // BackgroundTask: keeps prefault_bytes of pages faulted in ahead of the appender, syncs on
  // the interval policy, and applies retention by time once a second.
  std::chrono::milliseconds period() const override {
    if (config_.durability.mode == Durability::Mode::kInterval) {
      return std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(100),
          std::chrono::milliseconds(config_.durability.interval_ms));
    }
    return std::chrono::milliseconds(100);
  }

  void tick() override {
    using namespace std::chrono;
    if (!prefault_off_.load(std::memory_order_relaxed)) prefault();
    const std::int64_t now = steady_clock::now().time_since_epoch().count();
    // Whether `ms` milliseconds have passed since `since` (steady_clock ticks), compared in
    // milliseconds: an interval near INT64_MAX ms (a natural "never") overflowed on its way to
    // nanoseconds and came out negative, so the work ran at every tick.
    const auto passed = [now](std::int64_t since, std::int64_t ms) {
      return duration_cast<milliseconds>(steady_clock::duration(now - since)).count() >= ms;
    };
    if (config_.durability.mode == Durability::Mode::kInterval &&
        passed(last_sync_ns_.load(std::memory_order_relaxed), config_.durability.interval_ms)) {
      (void)flush();
    }
    if (config_.retention_ms >= 0 && passed(last_retention_ns_, 1000)) {
      (void)enforce_retention();
      last_retention_ns_ = now;
    }
    if (config_.compact && passed(last_compaction_check_ns_, config_.compaction_check_ms)) {
      last_compaction_check_ns_ = now;
      if (compaction_due()) (void)compact();
    }
  }

  // Whether background compaction should run: a kept tombstone has expired, or the sealed
  // segments compaction has not seen yet hold min_cleanable_dirty_ratio of the sealed bytes.
  bool compaction_due() const {
    // relaxed, both: hints written by compact(); a stale one delays or repeats a run.
    const std::int64_t expiry = tombstone_expiry_ms_.load(std::memory_order_relaxed);
    if (expiry >= 0 && clock_->now_ms() >= expiry) return true;
    const std::uint64_t cleaned_to = cleaned_to_.load(std::memory_order_relaxed);
    const auto segs = segments_snapshot();
    std::uint64_t dirty = 0;
    std::uint64_t total = 0;
    for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
      const std::uint64_t bytes = segs[i]->size_bytes() - kFileHeaderSize;
      total += bytes;
      if (segs[i]->base_offset() >= cleaned_to) dirty += bytes;
    }
    return dirty > 0 && static_cast<double>(dirty) >=
                            config_.min_cleanable_dirty_ratio * static_cast<double>(total);
  }

  // Replaces sealed segment `old` by the compacted copy `bytes` (file header included).
  // Returns false, changing nothing, when retention deleted `old` meanwhile.
  Result<bool> install_compacted(const std::shared_ptr<Segment>& old,
                                 const std::vector<std::byte>& bytes);

  // The worker's round of prefaulting: up to prefault_bytes ahead of the appender, unless
  // readers wait for records (appenders then fault pages in themselves: see provision()).
  void prefault() {
    // relaxed: a hint that lets the next lagging append wake us again.
    prefault_wake_sent_.store(false, std::memory_order_relaxed);
    if (readers_kept_up()) return;
    std::shared_ptr<Segment> seg;
    {
      std::lock_guard lock(segments_mu_);
      seg = segments_.back();
    }
    prefault_segment(*seg, config_.prefault_bytes, prefaulted_by_worker_);
  }

  static std::uint64_t next_id() noexcept {
    static std::atomic<std::uint64_t> ids{0};
    return ids.fetch_add(1, std::memory_order_relaxed) + 1;  // relaxed: only uniqueness matters
  }

  const std::uint64_t id_ = next_id();  // tells batches which log filled them
  const std::string dir_;
  LogConfig config_;
  std::shared_ptr<Clock> clock_;
  bool system_clock_ = false;  // clock_ is SystemClock::instance()
  detail::File lock_file_;
  RecoveryReport recovery_;

  // Appenders' state, guarded by append_mu_.
  detail::Mutex append_mu_;
  std::shared_ptr<Segment> active_;
  std::uint64_t next_offset_ = 0;
  std::int64_t first_append_ms_ = -1;  // of the active segment's first record
  std::uint64_t unsynced_records_ = 0;
  bool retention_due_ = false;

  // The segment table, guarded by segments_mu_ (never held with append_mu_ taken after it).
  mutable std::mutex segments_mu_;
  std::vector<std::shared_ptr<Segment>> segments_;

  // Guarded by sync_mu_.
  std::mutex sync_mu_;
  std::uint64_t synced_base_ = 0;  // segment and position up to which bytes were synced
  std::uint64_t synced_position_ = 0;

  // Published state: readers poll these, appenders write them; kept off the appenders' lines.
  alignas(64) std::atomic<std::int64_t> end_offset_{0};
  alignas(64) std::atomic<std::int64_t> start_offset_{0};
  // Low 32 bits: threads in wait_for(); high 32 bits: attached Notifiers. One word, so an append
  // with nobody waiting pays one load to know it.
  alignas(64) mutable std::atomic<std::uint64_t> waiters_{0};
  mutable std::atomic<std::uint32_t> wake_seq_{0};
  mutable std::mutex notifiers_mu_;
  std::vector<Notifier*> notifiers_;  // guarded by notifiers_mu_
  std::atomic<bool> closed_{false};
  std::atomic<std::int64_t> durable_offset_{0};
  // Statistics (counters()): the appenders' on their own line, the readers' on another.
  alignas(64) std::atomic<std::uint64_t> appended_records_{0};
  std::atomic<std::uint64_t> appended_bytes_{0};
  std::atomic<std::uint64_t> appended_batches_{0};
  alignas(64) mutable std::atomic<std::uint64_t> read_records_{0};
  std::atomic<std::uint64_t> prefaulted_by_worker_{0};
  std::atomic<std::uint64_t> prefaulted_by_appenders_{0};

  // Background work (tick() runs on the Background's thread).
  Background* background_ = nullptr;
  std::atomic<bool> prefault_off_{false};
  std::atomic<bool> prefault_wake_sent_{false};  // an append woke the worker to prefault
  // Readers keeping up (note_reader_waiting()): one noted since the worker's last round, and
  // the worker's verdict for the appenders. On their own line: readers at the end write them.
  alignas(64) mutable std::atomic<bool> reader_seen_{false};
  mutable std::atomic<bool> readers_keep_up_{false};
  std::int64_t reader_last_seen_ms_ = -1;  // the worker's: when it last found reader_seen_
  std::atomic<std::int64_t> last_sync_ns_{
      std::chrono::steady_clock::now().time_since_epoch().count()};
  std::int64_t last_retention_ns_ = 0;         // background thread only
  std::int64_t last_compaction_check_ns_ = 0;  // background thread only

  // Compaction. compact_mu_ runs one compaction at a time; files_mu_ is held while segment
  // files are deleted (retention) or replaced (compaction), and taken before segments_mu_.
  std::mutex compact_mu_;
  std::mutex files_mu_;
  std::atomic<std::uint64_t> cleaned_to_{0};           // sealed segments below were compacted
  std::atomic<std::int64_t> tombstone_expiry_ms_{-1};  // first kept tombstone to expire
  std::atomic<std::uint64_t> compacted_segments_{0};   // segments replaced since open
};

inline Result<void> Log::recover() {
  namespace fs = std::filesystem;
  std::vector<std::uint64_t> bases;
  std::vector<std::pair<std::uint64_t, fs::path>> indexes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    const auto dot = name.find('.');
    if (dot != 20 || name.find_first_not_of("0123456789") != 20) continue;
    // Offsets are int64 (as Kafka's): a base above 2^63 - 1 is not a segment of ours, and
    // 20 digits can even exceed 2^64 - 1, where std::stoull throws. Leave such files alone.
    if (name.compare(0, 20, "09223372036854775807") > 0) continue;
    const std::uint64_t base = std::stoull(name.substr(0, 20));
    const std::string ext = name.substr(20);
    if (ext == ".log") {
      bases.push_back(base);
    } else if (ext == ".index" || ext == ".timeindex") {
      indexes.emplace_back(base, entry.path());
    } else if (ext == ".log.cleaned") {
      // A compaction that crashed before its rename: the segment it was replacing is whole.
      std::error_code rm;
      fs::remove(entry.path(), rm);
      note("deleted unfinished compaction output " + entry.path().string());
    }
  }
  if (ec) return fail(ErrorCode::kIoError, "listing " + dir_ + ": " + ec.message());
  std::sort(bases.begin(), bases.end());
  for (const auto& [base, path] : indexes) {  // indexes whose log is gone (a crash in deletion)
    if (!std::binary_search(bases.begin(), bases.end(), base)) fs::remove(path, ec);
  }

  std::vector<std::shared_ptr<Segment>> segs;
  std::size_t last = bases.empty() ? 0 : bases.size() - 1;
  for (std::size_t i = 0; i + 1 < bases.size(); ++i) {
    auto seg = Segment::open_file(dir_, bases[i], layout(), false);
    if (!seg && seg.error().code() != ErrorCode::kCorruption) return fail(std::move(seg).error());
    bool good = false;
    if (seg) {
      auto ok = recover_sealed(**seg, bases[i + 1]);
      if (!ok) return fail(std::move(ok).error());
      good = *ok;
    } else {
      note(seg.error().message());
    }
    if (!good) {
      last = i;
      break;
    }
    segs.push_back(std::move(*seg));
  }
  for (std::size_t j = last + 1; j < bases.size(); ++j) drop_segment(bases[j]);

  std::shared_ptr<Segment> active;
  while (!bases.empty()) {
    auto seg = recover_active(bases[last]);
    if (!seg) return fail(std::move(seg).error());
    if (*seg) {
      active = std::move(*seg);
      break;
    }
    if (last == 0) break;  // no usable segment: start afresh at the first base
    --last;
    segs.pop_back();  // reopen the previous segment as the active one
  }
  if (!active) {
    const std::uint64_t base = bases.empty() ? 0 : bases.front();
    auto seg = Segment::create(dir_, base, clock_->now_ms(), layout());
    if (!seg) return fail(std::move(seg).error());
    active = std::move(*seg);
  }
  const auto end = static_cast<std::int64_t>(active->end_offset());
  if (recovery_.truncated_at > end) {
    // Dropping a later segment set truncated_at to its base, but the segment cut before it
    // (or the fresh one replacing it) ends earlier: the log was cut where it now ends
    // (tests/corruption_test.cpp, tests/fuzz_replay_test.cpp).
    recovery_.truncated_at = end;
  }
  const std::int64_t first_append =
      active->end_offset() > active->base_offset() ? active->created_ms() : -1;
  segs.push_back(std::move(active));
  install_recovered(std::move(segs), first_append);
  if (!recovery_.clean()) RILL_TRY(detail::sync_directory(dir_));
  return {};
}

inline Result<bool> Log::recover_sealed(Segment& seg, std::uint64_t expected_end) {
  const std::uint64_t file_end = seg.capacity_bytes();
  ScanResult r;
  bool rebuilt = false;
  bool whole = false;  // every frame's CRC checked
  if (!config_.verify_all_on_open) {
    auto attached = seg.attach_indexes(file_end, expected_end);
    if (!attached) return fail(std::move(attached).error());
    rebuilt = *attached;
    std::uint64_t at = seg.base_offset();
    const std::uint64_t pos =
        rebuilt ? kFileHeaderSize : seg.position_hint(expected_end > 0 ? expected_end - 1 : 0, &at);
    r = seg.scan(pos, at, true, file_end);
    r.max_timestamp_ms = std::max(r.max_timestamp_ms, seg.indexed_max_timestamp_ms());
    whole = pos == kFileHeaderSize;
  }
  if (config_.verify_all_on_open || r.damage != nullptr || r.end_offset != expected_end) {
    r = seg.scan(kFileHeaderSize, seg.base_offset(), true, file_end);
    whole = true;
    if (r.damage != nullptr || r.end_offset != expected_end) {
      note(seg.log_path() + ": sealed segment ends at offset " + std::to_string(r.end_offset) +
           " instead of " + std::to_string(expected_end) +
           (r.damage ? std::string(" (") + r.damage + ")" : std::string()));
      return false;
    }
    RILL_TRY(seg.rebuild_indexes(r.end_position));
    rebuilt = true;
  }
  if (!rebuilt && r.end_position < file_end) {
    // The file holds more than its frames (a roll killed before seal() truncated it), and the
    // index entries were only checked against the file's end. seal() cuts the file at the
    // frames' end; an entry past it would send offset_for_time into pages that are gone
    // (SIGBUS, tests/corruption_test.cpp). Check them again against the frames' end.
    auto again = seg.attach_indexes(r.end_position, expected_end);
    if (!again) return fail(std::move(again).error());
    rebuilt = *again;
  }
  if (rebuilt) ++recovery_.indexes_rebuilt;
  seg.restore(r, whole);
  seg.seal();
  return true;
}

inline Result<std::shared_ptr<Segment>> Log::recover_active(std::uint64_t base) {
  auto opened = Segment::open_file(dir_, base, layout(), true);
  if (!opened) {
    if (opened.error().code() != ErrorCode::kCorruption) return fail(std::move(opened).error());
    // An unreadable header: either a roll that crashed before writing it (all zeros), or
    // damage. Nothing in the file can be trusted; drop it.
    note(opened.error().message());
    drop_segment(base);
    return std::shared_ptr<Segment>();
  }
  Segment& seg = **opened;
  const ScanResult r = seg.scan(kFileHeaderSize, base, true, seg.capacity_bytes());
  // Everything after the last valid frame must be zero. A process killed mid-append leaves at
  // most one unfinished frame there, but a lost page (power loss) can leave a run of zeros
  // with intact old frames after it, which would come back as records once new appends line up
  // with them. So the whole rest of the file is checked, on every open: a backwards scan of
  // zeros, a few milliseconds for a 64 MiB segment.
  const std::uint64_t garbage_end = seg.nonzero_end(r.end_position, seg.capacity_bytes());
  if (garbage_end > r.end_position) {
    // Count up to the capacity, not garbage_end: a frame whose last bytes are zero ends
    // after garbage_end and would be missed (what follows garbage_end is all zero).
    const std::uint64_t lost =
        r.damage != nullptr ? seg.count_frames_from(r.end_position, seg.capacity_bytes()) : 0;
    recovery_.dropped_bytes += garbage_end - r.end_position;
    recovery_.dropped_records += lost;
    if (recovery_.truncated_at < 0)
      recovery_.truncated_at = static_cast<std::int64_t>(r.end_offset);
    note(seg.log_path() + ": truncated at position " + std::to_string(r.end_position) +
         " (offset " + std::to_string(r.end_offset) +
         "): " + (r.damage ? r.damage : "unfinished frame") + ", dropped " +
         std::to_string(garbage_end - r.end_position) + " bytes");
    seg.zero(r.end_position, garbage_end);
  }
  RILL_TRY(seg.rebuild_indexes(r.end_position));
  seg.restore(r, true);  // scanned whole, with CRCs
  return std::move(*opened);
}

inline void Log::drop_segment(std::uint64_t base) {
  const std::string path = dir_ + "/" + segment_file_name(base, ".log");
  if (auto seg = Segment::open_file(dir_, base, layout(), false)) {
    const std::uint64_t used = (*seg)->nonzero_end(kFileHeaderSize, (*seg)->capacity_bytes());
    recovery_.dropped_bytes += used;
    // Up to the file's end, not `used`: a last frame ending in zero bytes ends after `used`.
    recovery_.dropped_records +=
        (*seg)->count_frames_from(kFileHeaderSize, (*seg)->capacity_bytes());
    if (used > kFileHeaderSize || recovery_.truncated_at < 0) {
      recovery_.truncated_at =
          recovery_.truncated_at < 0
              ? static_cast<std::int64_t>(base)
              : std::min<std::int64_t>(recovery_.truncated_at, static_cast<std::int64_t>(base));
    }
    (*seg)->remove_files();
  } else {
    // Count the non-zero bytes, not the file size: a roll killed before it wrote the header
    // leaves a preallocated file of zeros, which held nothing (tests/crash_test.cpp saw
    // dropped_bytes equal to segment_bytes after such a crash).
    std::uint64_t used = 0;
    if (auto f = detail::File::open(path, O_RDONLY)) {
      char buf[1 << 14];
      std::uint64_t pos = 0;
      for (ssize_t n; (n = ::pread(f->fd(), buf, sizeof buf, static_cast<off_t>(pos))) > 0;) {
        for (ssize_t i = n; i > 0; --i) {
          if (buf[i - 1] != 0) {
            used = pos + static_cast<std::uint64_t>(i);
            break;
          }
        }
        pos += static_cast<std::uint64_t>(n);
      }
      // The batches after the unreadable header are dropped records too (a best effort, as
      // for a segment that is cut; tests/corruption_test.cpp saw 0 reported for them).
      if (used > kFileHeaderSize) {
        if (auto m = detail::Mapping::map_file(*f, pos, false))
          recovery_.dropped_records += count_batch_records(m->data(), pos, kFileHeaderSize);
      }
    }
    recovery_.dropped_bytes += used;
    // Bytes past the header were frames: their records are dropped from `base` on.
    if (used > kFileHeaderSize) {
      recovery_.truncated_at =
          recovery_.truncated_at < 0
              ? static_cast<std::int64_t>(base)
              : std::min<std::int64_t>(recovery_.truncated_at, static_cast<std::int64_t>(base));
    }
    ::unlink(path.c_str());
    ::unlink((dir_ + "/" + segment_file_name(base, ".index")).c_str());
    ::unlink((dir_ + "/" + segment_file_name(base, ".timeindex")).c_str());
  }
  ++recovery_.segments_deleted;
  note("deleted segment " + path);
}

inline Result<CompactionReport> Log::compact() {
  std::lock_guard compact_lock(compact_mu_);
  if (closed_.load(std::memory_order_acquire)) return fail(ErrorCode::kClosed, "log is closed");
  CompactionReport report;
  // The table first, then the end: every segment of the snapshot but its last is sealed and
  // ends at or below `end`. Records a roll moves out of the snapshot are simply not seen:
  // newer records missed only make compaction keep more.
  const std::vector<std::shared_ptr<Segment>> segs = segments_snapshot();
  // Under a durability policy that syncs, only records already on stable storage may
  // supersede others: compaction makes its deletions durable at once (the compacted copy is
  // fsynced), and a power loss before the newer record's sync would otherwise lose both
  // (Kafka cleans only below the high watermark for the same reason). Under kOsCache nothing
  // is promised across a power loss, and every record counts.
  const auto end = static_cast<std::uint64_t>(
      config_.durability.mode == Durability::Mode::kOsCache ? end_offset() : durable_offset());
  report.end_offset = static_cast<std::int64_t>(end);
  const std::int64_t now = clock_->now_ms();

  // Key -> its newest offset below `end`. The keys view the mappings `segs` keeps alive.
  // A segment with a batch that fails its checks is left as it is, and its records from the
  // damage on supersede nothing (unseen, so older versions elsewhere are kept); the other
  // segments are compacted all the same and the error comes back at the end. Before, one
  // damaged batch anywhere (recovery checks a sealed segment's CRCs only near its end) stopped
  // every compaction of the log, for good.
  std::unordered_map<std::string_view, std::uint64_t> newest;
  std::vector<bool> damaged(segs.size(), false);
  Result<void> damage;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    auto scanned =
        for_each_stored_record(*segs[i], end, [&](const RecordView& r, const StoredRecord& s) {
          if (const auto key = r.key()) newest.insert_or_assign(*key, s.offset);
        });
    if (!scanned) {
      damaged[i] = true;
      if (damage) damage = std::move(scanned);
    }
  }
  report.keys = newest.size();

  std::int64_t expiry = -1;  // when the first tombstone kept now may go
  enum class Verdict { kKeep, kSuperseded, kExpired };
  const auto judge = [&](const RecordView& r, std::uint64_t offset) {
    const auto key = r.key();
    if (!key) return Verdict::kKeep;  // nothing can supersede a record without a key
    const auto it = newest.find(*key);
    if (it == newest.end() || it->second < offset) return Verdict::kKeep;  // after `end`
    if (it->second > offset) return Verdict::kSuperseded;
    if (!r.is_tombstone()) return Verdict::kKeep;
    if (now - r.timestamp_ms() > config_.delete_retention_ms) return Verdict::kExpired;
    // Saturating: delete_retention_ms may be as large as "never" (INT64_MAX).
    const std::int64_t at =
        r.timestamp_ms() >= std::numeric_limits<std::int64_t>::max() - config_.delete_retention_ms
            ? std::numeric_limits<std::int64_t>::max()
            : r.timestamp_ms() + config_.delete_retention_ms + 1;
    expiry = expiry < 0 ? at : std::min(expiry, at);
    return Verdict::kKeep;
  };

  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {  // never the active segment
    if (damaged[i]) continue;
    const Segment& seg = *segs[i];
    ++report.segments_examined;
    std::uint64_t records = 0;
    std::uint64_t kept = 0;
    std::uint64_t tombstones = 0;
    RILL_TRY(
        for_each_stored_record(seg, UINT64_MAX, [&](const RecordView& r, const StoredRecord& s) {
          ++records;
          if (judge(r, s.offset) == Verdict::kKeep) {
            ++kept;
          } else if (r.is_tombstone()) {
            ++tombstones;
          }
        }));
    const std::uint64_t bytes = seg.end_position() - kFileHeaderSize;
    report.records_before += records;
    report.bytes_before += bytes;
    std::uint64_t bytes_after = bytes;
    if (kept < records) {
      CompactedSegmentBuilder builder(seg.base_offset(), seg.created_ms());
      RILL_TRY(
          for_each_stored_record(seg, UINT64_MAX, [&](const RecordView& r, const StoredRecord& s) {
            if (judge(r, s.offset) == Verdict::kKeep) builder.add(s);
          }));
      const std::vector<std::byte>& out = builder.finish(seg.end_offset(), seg.max_timestamp_ms());
      auto installed = install_compacted(segs[i], out);
      if (!installed) return fail(std::move(installed).error());
      if (*installed) {
        ++report.segments_rewritten;
        report.tombstones_dropped += tombstones;
        bytes_after = out.size() - kFileHeaderSize;
      } else {
        kept = records;  // retention deleted it meanwhile
      }
    }
    report.records_after += kept;
    report.bytes_after += bytes_after;
  }
  // relaxed, both: hints for compaction_due() on the background thread.
  cleaned_to_.store(segs.back()->base_offset(), std::memory_order_relaxed);
  tombstone_expiry_ms_.store(expiry, std::memory_order_relaxed);
  if (!damage) return fail(std::move(damage).error());
  return report;
}

inline Result<bool> Log::install_compacted(const std::shared_ptr<Segment>& old,
                                           const std::vector<std::byte>& bytes) {
  const std::uint64_t base = old->base_offset();
  std::shared_ptr<Segment> seg;
  std::string cleaned;               // the file written, until it is renamed
  const auto discard = [&cleaned] {  // best effort: recovery deletes a leftover .cleaned
    if (!cleaned.empty()) (void)detail::remove_file(cleaned);
  };
  if (dir_.empty()) {
    SegmentLayout lay = layout();
    lay.capacity_bytes = bytes.size();
    auto s = Segment::create(std::string(), base, old->created_ms(), lay);
    if (!s) return fail(std::move(s).error());
    seg = std::move(*s);
    std::memcpy(seg->write_ptr(), bytes.data() + kFileHeaderSize, bytes.size() - kFileHeaderSize);
  } else {
    cleaned = old->log_path() + ".cleaned";
    auto f = detail::File::open(cleaned, O_RDWR | O_CREAT | O_TRUNC, config_.file_mode);
    if (!f) return fail(std::move(f).error());
    auto written = f->pwrite_all(bytes.data(), bytes.size(), 0);
    if (written) written = f->sync_data();  // the bytes are on disk before the rename is
    if (!written) {
      discard();
      return fail(std::move(written).error());
    }
    auto s = Segment::open_file(dir_, base, layout(), false, cleaned);
    if (!s) {
      discard();
      return fail(std::move(s).error());
    }
    seg = std::move(*s);
  }
  // Check the copy as recovery will: whole batches, CRCs, ending where the old one ended.
  const ScanResult r = seg->scan(kFileHeaderSize, base, true, bytes.size());
  if (r.damage != nullptr || r.end_offset != old->end_offset() || r.end_position != bytes.size()) {
    discard();
    return fail(ErrorCode::kCorruption,
                "compaction built an invalid copy of segment " + std::to_string(base) + ": " +
                    (r.damage ? r.damage : "it does not end where the segment ends"));
  }

  std::lock_guard files_lock(files_mu_);
  {
    std::lock_guard lock(segments_mu_);
    if (std::find(segments_.begin(), segments_.end(), old) == segments_.end()) {
      discard();  // retention deleted it: never bring it back
      return false;
    }
  }
  if (!dir_.empty()) {
    // The rename is the commit point. The old indexes go first: an index of the old layout
    // beside the new log could pass its checks and send reads past records (compacted batches
    // may start after the offset an entry names). Without indexes, recovery rebuilds them.
    // Each step goes through the file layer (and its fault hook); a failure before the rename
    // leaves the old log in place, readable through its mappings, and recovery rebuilds an
    // index that is gone.
    auto step = detail::remove_file(old->index_path());
    if (step) step = detail::remove_file(old->time_index_path());
    if (step) step = detail::rename_path(cleaned, old->log_path());
    if (!step) {
      discard();
      return fail(std::move(step).error());
    }
    cleaned.clear();
    // Durable before the new indexes exist: an index of the new layout never meets the old log.
    RILL_TRY(detail::sync_directory(dir_));
  }
  RILL_TRY(seg->rebuild_indexes(r.end_position));
  seg->restore(r, true);
  seg->seal();
  {
    std::lock_guard lock(segments_mu_);
    // Still there: retention waits for files_mu_.
    *std::find(segments_.begin(), segments_.end(), old) = std::move(seg);
    // release: pairs with the acquire in compacted_segments(); stored after the swap.
    compacted_segments_.fetch_add(1, std::memory_order_release);
  }
  return true;
}

}  // namespace rill::storage
