// Records for the compaction tests: keyed records whose contents are a pure function of
// (salt, offset), so a test (or the parent of a crashed child) can recompute any record, and
// the checks that a compacted log holds what compaction may leave and nothing else.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"
#include "expected_record.hpp"
#include "rill/storage/log.hpp"

namespace rill_test {

struct KeyedRecords {
  std::uint64_t salt = 1;
  std::uint64_t keys = 50;                     // distinct keys
  std::int64_t base_timestamp_ms = 1'000'000;  // record o has timestamp base + o
  int keyless_one_in = 13;                     // records without a key: about 1 in this
  int tombstone_one_in = 11;                   // keyed tombstones: about 1 in this

  Expected at(std::uint64_t offset) const {
    const std::uint64_t h = mix(salt ^ mix(offset));
    Expected e;
    if (h % static_cast<std::uint64_t>(keyless_one_in) != 0) {
      e.key = "key-" + std::to_string((h >> 8) % keys);
    }
    if (e.key && (h >> 24) % static_cast<std::uint64_t>(tombstone_one_in) == 0) {
      e.value = std::nullopt;
    } else {
      std::string v = "value-" + std::to_string(offset) + ":";
      v.append(20 + (h >> 32) % 80, static_cast<char>('a' + (h >> 40) % 26));
      e.value = std::move(v);
    }
    if ((h >> 48) % 5 == 0) e.headers.emplace_back("h", std::to_string(offset));
    e.timestamp_ms = base_timestamp_ms + static_cast<std::int64_t>(offset);
    return e;
  }

  // Appends the records [from, to) one append each (or in batches of `batch`).
  void append(rill::storage::Log& log, std::uint64_t from, std::uint64_t to,
              std::size_t batch = 1) const {
    std::vector<Expected> exp;
    std::vector<std::vector<rill::storage::Header>> hdrs(batch);
    std::vector<rill::storage::Record> recs;
    for (std::uint64_t o = from; o < to;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(batch, to - o));
      exp.clear();
      recs.clear();
      for (std::size_t i = 0; i < n; ++i) exp.push_back(at(o + i));
      for (std::size_t i = 0; i < n; ++i) recs.push_back(as_record(exp[i], hdrs[i]));
      auto r = log.append_batch(recs);
      INFO((r ? std::string() : r.error().to_string()));
      REQUIRE(r);
      REQUIRE(r->offset == static_cast<std::int64_t>(o));
      o += n;
    }
  }

  // Key -> newest offset among [0, end).
  std::map<std::string, std::uint64_t> newest(std::uint64_t end) const {
    std::map<std::string, std::uint64_t> m;
    for (std::uint64_t o = 0; o < end; ++o) {
      const Expected e = at(o);
      if (e.key) m[*e.key] = o;
    }
    return m;
  }
};

// Every offset readable from start_offset() to end_offset(), in order, each record checked
// against `model`. Fails the test on a record that differs or on offsets not increasing.
inline std::vector<std::uint64_t> read_offsets(const rill::storage::Log& log,
                                               const KeyedRecords& model,
                                               std::size_t max_records = 97) {
  std::vector<std::uint64_t> out;
  rill::storage::RecordBatch batch;
  std::int64_t at = log.start_offset();
  const std::int64_t end = log.end_offset();
  while (at < end) {
    auto r = log.read_into(at, batch, max_records);
    INFO("read at " << at << ": " << (r ? std::string("ok") : r.error().to_string()));
    REQUIRE(r);
    REQUIRE(batch.next_offset() > at);  // an empty batch still moves past a gap
    for (const auto& rec : batch) {
      REQUIRE(rec.offset() >= at);
      REQUIRE((out.empty() || static_cast<std::uint64_t>(rec.offset()) > out.back()));
      if (!matches(rec, model.at(static_cast<std::uint64_t>(rec.offset())))) {
        FAIL("record " << rec.offset() << " differs from what was appended");
      }
      out.push_back(static_cast<std::uint64_t>(rec.offset()));
    }
    at = batch.next_offset();
  }
  return out;
}

// What compaction may leave of records [0, end), the log's records when it ran: `present`
// (sorted) holds every record without a key, the newest record of every key (a tombstone only
// while `tombstones_kept`), and every record at or after `untouched_from` (the active
// segment); and, when `exact`, nothing else below `untouched_from`. Records at or after `end`
// must all be present.
inline void check_compacted(const KeyedRecords& model, const std::vector<std::uint64_t>& present,
                            std::uint64_t end, std::uint64_t total, std::uint64_t untouched_from,
                            bool tombstones_kept, bool exact) {
  const auto newest = model.newest(end);
  std::size_t i = 0;
  for (std::uint64_t o = 0; o < total; ++o) {
    const bool here = i < present.size() && present[i] == o;
    if (here) ++i;
    const Expected e = model.at(o);
    bool must = true;  // nothing may drop it
    if (o < end && o < untouched_from && e.key) {
      // The newest of its key stays unless it is an expired tombstone; older ones go.
      must = newest.at(*e.key) == o && (e.value.has_value() || tombstones_kept);
    }
    const bool may = must || !exact;
    INFO("offset " << o << " key " << (e.key ? *e.key : "<none>") << " tombstone "
                   << !e.value.has_value());
    if (must) REQUIRE(here);
    if (!may) REQUIRE(!here);
  }
  REQUIRE(i == present.size());
}

}  // namespace rill_test
