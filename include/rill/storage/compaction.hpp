// rill/storage/compaction.hpp: the pieces of log compaction that need no Log: walking a
// segment's records as stored, and building the bytes of a compacted segment. Log::compact()
// (log.hpp) decides what to keep and swaps the result in; docs/guarantees.md says what
// compaction promises, docs/format.md how a compacted segment looks on disk.
//
// Thread-safety: the functions read segments that may be appended to concurrently (only below
// their published end); a CompactedSegmentBuilder is single-owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "rill/result.hpp"
#include "rill/storage/log_format.hpp"
#include "rill/storage/record.hpp"
#include "rill/storage/segment.hpp"

namespace rill::storage {

// What one Log::compact() did. Records and bytes count the sealed segments it examined (the
// active segment is never rewritten); bytes are log-file bytes after the 64-byte file header.
struct CompactionReport {
  std::uint32_t segments_examined = 0;   // sealed segments looked at
  std::uint32_t segments_rewritten = 0;  // of those, replaced by a compacted copy
  std::uint64_t records_before = 0;
  std::uint64_t records_after = 0;
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
  std::uint64_t tombstones_dropped = 0;  // superseded ones and expired newest ones
  std::uint64_t keys = 0;                // distinct keys below end_offset
  std::int64_t end_offset = 0;  // the snapshot (end_offset, or durable_offset under a syncing
                                // policy): newer records were not considered
};

// Calls fn(const RecordView&, const StoredRecord&) for every record of `seg` in a batch that
// starts below `limit_offset`, in offset order. Reads only below the segment's published end,
// so it may run while the segment is appended to. Checks the CRC of every batch past
// seg.verified_to(). Errors: kCorruption naming the position of a batch that fails its checks.
template <typename Fn>
Result<void> for_each_stored_record(const Segment& seg, std::uint64_t limit_offset, Fn&& fn) {
  const std::byte* base = seg.data();
  const std::uint64_t end = seg.end_position();  // acquire: the bytes below are whole
  const std::uint64_t verified = seg.verified_to();
  std::uint64_t pos = kFileHeaderSize;
  std::uint64_t expect = seg.base_offset();
  const auto corrupt = [&](const char* reason) {
    return fail(ErrorCode::kCorruption,
                (seg.in_memory() ? std::string("<memory>") : seg.log_path()) + ": position " +
                    std::to_string(pos) + ": " + (reason ? reason : "frame missing"));
  };
  while (pos < end) {
    const FrameCheck c = check_frame_header(base + pos, end - pos, expect, pos >= verified);
    if (c.status != FrameStatus::kOk) return corrupt(c.reason);
    const FrameHeader& h = c.header;
    if (h.base_offset >= limit_offset) break;
    const std::byte* p = base + pos + kFrameHeaderSize;
    const std::byte* batch_end = base + pos + h.size;
    std::uint64_t delta = 0;
    RecordView rv;
    for (std::uint32_t i = 0; i < h.count; ++i) {
      const char* reason = nullptr;
      const std::byte* start = p;
      p = decode_record(p, batch_end, h, delta, &rv, &reason);
      if (p == nullptr) return corrupt(reason);
      // The payload starts after the length, offset delta and timestamp delta (decode_record
      // checked all three).
      std::uint64_t skip = 0;
      const std::byte* q = get_varint(start, p, &skip);
      q = get_varint(q, p, &skip);
      q = get_varint(q, p, &skip);
      const StoredRecord stored{static_cast<std::uint64_t>(rv.offset()), rv.timestamp_ms(), q,
                                static_cast<std::size_t>(p - q)};
      fn(rv, stored);
      delta = stored.offset - h.base_offset + 1;
    }
    pos += align_frame(h.size);
    expect = batch_next_offset(h);
  }
  return {};
}

// Builds the bytes of a compacted segment in memory: the file header, then the kept records in
// compacted batches of about kBatchBytes each (small appended batches are merged, which saves
// their 40-byte headers), the last batch spanning to the original segment's end offset so the
// segment still ends where the next begins. Memory: the size of the result, at most about the
// original segment's.
class CompactedSegmentBuilder {
 public:
  static constexpr std::size_t kBatchBytes = 16u << 10;

  CompactedSegmentBuilder(std::uint64_t base_offset, std::int64_t created_ms)
      : base_offset_(base_offset) {
    const FileHeader h = make_file_header(FileKind::kLog, base_offset, created_ms);
    out_.resize(kFileHeaderSize);
    std::memcpy(out_.data(), &h, sizeof h);
  }

  // Adds the next kept record (offsets increasing). `r` views bytes that must stay mapped
  // until finish().
  void add(const StoredRecord& r) {
    if (!pending_.empty()) {
      const std::uint64_t base = pending_.front().offset;
      const bool full = pending_.size() == kMaxBatchRecords ||
                        r.offset - base >= std::uint64_t{0xFFFFFFFFu} ||
                        pending_bytes_ + r.payload_bytes > kBatchBytes;
      if (full) flush(r.offset);  // spans up to this record; the gap after its last is kept
    }
    pending_.push_back(r);
    pending_bytes_ += r.payload_bytes + 3 * kMaxVarintSize;
  }

  // Ends the segment at `end_offset` (the original's end offset) and returns its bytes.
  // `max_timestamp_ms` is the original segment's newest timestamp: an empty segment's single
  // batch carries it. REQUIRES: end_offset > base offset.
  const std::vector<std::byte>& finish(std::uint64_t end_offset, std::int64_t max_timestamp_ms) {
    if (!pending_.empty() || out_.size() == kFileHeaderSize) {
      if (pending_.empty()) empty_ts_ = std::max<std::int64_t>(max_timestamp_ms, 0);
      flush(end_offset);
    }
    return out_;
  }

 private:
  // Writes the pending records as one batch spanning [its first offset, span_end) (from the
  // segment's base offset when there are none).
  void flush(std::uint64_t span_end) {
    const std::uint64_t base = pending_.empty() ? base_offset_ : pending_.front().offset;
    const std::size_t size = compacted_batch_size(pending_, base);
    const std::size_t at = out_.size();
    out_.resize(at + align_frame(size));  // zero-filled: the padding
    encode_compacted_batch(out_.data() + at, pending_, base, span_end, empty_ts_);
    pending_.clear();
    pending_bytes_ = 0;
  }

  std::uint64_t base_offset_;
  std::int64_t empty_ts_ = 0;
  std::vector<std::byte> out_;
  std::vector<StoredRecord> pending_;
  std::size_t pending_bytes_ = 0;
};

}  // namespace rill::storage
