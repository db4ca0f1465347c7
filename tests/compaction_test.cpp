// Log compaction (storage::Log::compact): what survives, offsets, tombstones, keyless records,
// the active segment, reopening, recovery of an interrupted swap, background runs, and the
// broker's cleanup policies.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "compaction_model.hpp"
#include "result_checks.hpp"
#include "rill/rill.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace compaction_test {

using rill::ErrorCode;
using rill::ManualClock;
using rill::storage::CompactionReport;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::RecordBatch;
using rill_test::check_compacted;
using rill_test::KeyedRecords;
using rill_test::read_offsets;
using rill_test::take;
using rill_test::TempDir;

namespace {

constexpr std::int64_t kNow = 10'000'000;  // after every record's timestamp

LogConfig compaction_config(const std::shared_ptr<ManualClock>& clock) {
  LogConfig c;
  c.segment_bytes = 8192;
  c.max_record_bytes = 1024;
  c.index_interval_bytes = 256;
  c.prefault_bytes = 0;
  c.clock = clock;
  c.delete_retention_ms = 1LL << 40;  // tombstones stay unless a test says otherwise
  return c;
}

std::unique_ptr<Log> open_log(const std::string& dir, const LogConfig& config) {
  return take(dir.empty() ? Log::open_in_memory(config) : Log::open(dir, config));
}

// The records of the active segment and its base offset.
std::uint64_t active_base(const Log& log) { return log.segments().back()->base_offset(); }

}  // namespace

TEST_CASE("compaction keeps the newest record of every key at its offset, and no older one",
          "[compaction]") {
  TempDir tmp;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(kNow);
  const std::string dir = in_memory ? std::string() : tmp.sub("log");
  KeyedRecords model;
  auto log = open_log(dir, compaction_config(clock));
  const std::uint64_t total = 3000;
  model.append(*log, 0, total / 2, 1);
  model.append(*log, total / 2, total, 7);  // batches too: a compacted batch merges them
  const std::uint64_t untouched = active_base(*log);
  REQUIRE(log->segment_count() > 10);
  const auto active_before = log->segments().back();
  const std::uint64_t bytes_before = log->size_bytes();

  const CompactionReport rep = take(log->compact());
  CHECK(rep.end_offset == static_cast<std::int64_t>(total));
  CHECK(rep.keys == model.keys);
  CHECK(rep.segments_examined == log->segment_count() - 1);
  CHECK(rep.segments_rewritten > 0);
  CHECK(rep.records_before == untouched);
  CHECK(rep.records_after < rep.records_before / 4);
  CHECK(rep.bytes_after < rep.bytes_before / 2);
  CHECK(rep.tombstones_dropped > 0);  // superseded ones
  CHECK(log->size_bytes() == bytes_before - (rep.bytes_before - rep.bytes_after));

  // Offsets and the segment table are unchanged; the active segment is the same object.
  CHECK(log->start_offset() == 0);
  CHECK(log->end_offset() == static_cast<std::int64_t>(total));
  const auto segs = log->segments();
  CHECK(segs.back() == active_before);
  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
    CHECK(segs[i]->end_offset() == segs[i + 1]->base_offset());
  }

  const auto present = read_offsets(*log, model);
  check_compacted(model, present, total, total, untouched, true, true);
  CHECK(present.size() == rep.records_after + (total - untouched));

  // Appends go on at the end, dense.
  model.append(*log, total, total + 10);
  CHECK(log->end_offset() == static_cast<std::int64_t>(total + 10));

  // A second run finds nothing more to drop in what it compacted.
  const CompactionReport again = take(log->compact());
  CHECK(again.records_before >= rep.records_after);
  const auto present2 = read_offsets(*log, model);
  check_compacted(model, present2, total + 10, total + 10, active_base(*log), true, true);

  if (!in_memory) {
    // Reopening finds the same records, cleanly, with no leftover files.
    log.reset();
    auto reopened = open_log(dir, compaction_config(clock));
    INFO(reopened->recovery().detail);
    CHECK(reopened->recovery().clean());
    CHECK(reopened->recovery().indexes_rebuilt == 0);
    CHECK(read_offsets(*reopened, model) == present2);
    CHECK(rill_test::files_with_suffix(dir, ".cleaned").empty());
  }
}

TEST_CASE("a read from a compacted-away offset returns the next surviving record", "[compaction]") {
  auto clock = std::make_shared<ManualClock>(kNow);
  auto log = open_log(std::string(), compaction_config(clock));
  // Segment 0 holds only "a"s then one "keep"; later segments overwrite every "a".
  std::string v(200, 'x');
  for (int i = 0; i < 30; ++i) REQUIRE(log->append({.key = "a", .value = v}));
  REQUIRE(log->append({.key = "keep", .value = v}));
  while (log->segment_count() < 4) REQUIRE(log->append({.key = "a", .value = v}));
  REQUIRE(log->append({.key = "a", .value = "last"}));
  const std::int64_t end = log->end_offset();
  take(log->compact());

  auto batch = take(log->read(0, 10));
  REQUIRE(batch.size() >= 1);
  CHECK(batch[0].offset() == 30);
  CHECK(batch[0].key() == "keep");
  // From an offset inside the gap: the same record.
  batch = take(log->read(5, 10));
  REQUIRE(!batch.empty());
  CHECK(batch[0].offset() == 30);
  // Past it, a segment may have nothing left: the batch is empty, next_offset() moves on.
  std::int64_t at = 31;
  std::vector<std::int64_t> seen;
  while (at < end) {
    batch = take(log->read(at, 10));
    REQUIRE(batch.next_offset() > at);
    for (const auto& r : batch) seen.push_back(r.offset());
    at = batch.next_offset();
  }
  REQUIRE(!seen.empty());
  CHECK(seen.back() == end - 1);  // the newest "a", in the active segment
  // offset_for_time still answers across gaps.
  CHECK(log->offset_for_time(0) == 30);
}

TEST_CASE("tombstones stay for delete_retention_ms after their timestamp, then go",
          "[compaction][tombstone]") {
  TempDir tmp;
  auto clock = std::make_shared<ManualClock>(kNow);
  LogConfig c = compaction_config(clock);
  c.delete_retention_ms = 60'000;
  auto log = open_log(tmp.sub("log"), c);
  const std::string v(300, 'v');
  REQUIRE(log->append({.key = "gone", .value = v, .timestamp_ms = kNow}));
  REQUIRE(log->append({.key = "stays", .value = v, .timestamp_ms = kNow}));
  const auto tomb = take(log->append({.key = "gone", .timestamp_ms = kNow + 1000}));
  while (log->segment_count() < 3) REQUIRE(log->append({.key = "filler", .value = v}));

  const auto keys_at = [&] {
    std::vector<std::string> out;
    for (std::int64_t at = 0; at < log->end_offset();) {
      auto b = take(log->read(at, 100));
      for (const auto& r : b) {
        if (r.key() != "filler") out.push_back(std::string(*r.key()) + (r.value() ? "" : "(x)"));
      }
      at = b.next_offset();
    }
    return out;
  };
  take(log->compact());  // the older "gone" goes, its tombstone stays
  CHECK(keys_at() == std::vector<std::string>{"stays", "gone(x)"});

  clock->set_ms(kNow + 1000 + 60'000);  // exactly delete_retention_ms old: kept
  take(log->compact());
  CHECK(keys_at() == std::vector<std::string>{"stays", "gone(x)"});

  clock->advance_ms(1);
  const CompactionReport rep = take(log->compact());
  CHECK(rep.tombstones_dropped == 1);
  CHECK(keys_at() == std::vector<std::string>{"stays"});
  // Its offset is a gap now: reading there moves past it (perhaps through an empty batch,
  // when nothing else of its segment is left).
  auto b = take(log->read(tomb.offset, 1));
  CHECK(b.next_offset() > tomb.offset);
  while (b.empty()) b = take(log->read(b.next_offset(), 1));
  CHECK(b[0].offset() > tomb.offset);
  CHECK(b[0].key() == "filler");
}

TEST_CASE("records without a key are never compacted away", "[compaction]") {
  auto clock = std::make_shared<ManualClock>(kNow);
  auto log = open_log(std::string(), compaction_config(clock));
  const std::string v(100, 'v');
  std::vector<std::int64_t> keyless;
  for (int i = 0; i < 400; ++i) {
    if (i % 3 == 0) {
      keyless.push_back(take(log->append({.value = v})).offset);
    } else {
      REQUIRE(log->append({.key = "k", .value = v}));
    }
  }
  take(log->compact());
  std::vector<std::int64_t> got;
  for (std::int64_t at = 0; at < log->end_offset();) {
    auto b = take(log->read(at, 100));
    for (const auto& r : b) {
      if (!r.has_key()) got.push_back(r.offset());
    }
    at = b.next_offset();
  }
  CHECK(got == keyless);
}

TEST_CASE("the active segment is never rewritten", "[compaction]") {
  TempDir tmp;
  auto clock = std::make_shared<ManualClock>(kNow);
  auto log = open_log(tmp.sub("log"), compaction_config(clock));
  const std::string v(100, 'v');
  // Everything in the active segment: nothing to do, even though every record is superseded.
  for (int i = 0; i < 20; ++i) REQUIRE(log->append({.key = "k", .value = v}));
  REQUIRE(log->segment_count() == 1);
  const auto before = log->segments().back();
  const std::vector<std::byte> bytes(before->data(), before->data() + before->end_position());
  const CompactionReport rep = take(log->compact());
  CHECK(rep.segments_examined == 0);
  CHECK(rep.segments_rewritten == 0);
  CHECK(log->segments().back() == before);
  CHECK(std::memcmp(before->data(), bytes.data(), bytes.size()) == 0);
  auto b = take(log->read(0, 100));
  CHECK(b.size() == 20);
}

TEST_CASE("recovery copes with a compaction interrupted at any step of its swap",
          "[compaction][recovery]") {
  namespace fs = std::filesystem;
  TempDir tmp;
  auto clock = std::make_shared<ManualClock>(kNow);
  const LogConfig c = compaction_config(clock);
  KeyedRecords model;
  const std::string dir = tmp.sub("log");
  const std::uint64_t total = 1500;
  {
    auto log = open_log(dir, c);
    model.append(*log, 0, total);
  }
  const std::string before = tmp.sub("before");
  fs::copy(dir, before);
  std::uint64_t untouched;
  {
    auto log = open_log(dir, c);
    untouched = active_base(*log);
    take(log->compact());
  }
  const std::string after = tmp.sub("after");
  fs::copy(dir, after);
  const std::string seg0 = "/" + rill::storage::segment_file_name(0, "");

  const auto reopen_and_check = [&](bool compacted) {
    auto log = open_log(dir, c);
    INFO(log->recovery().detail);
    CHECK(log->recovery().segments_deleted == 0);
    CHECK(log->recovery().dropped_bytes == 0);
    const auto present = read_offsets(*log, model);
    check_compacted(model, present, total, total, untouched, true, false);
    if (!compacted) CHECK(present.size() == total);
    CHECK(rill_test::files_with_suffix(dir, ".cleaned").empty());
    take(log->compact());  // and compaction works again
    check_compacted(model, read_offsets(*log, model), total, total, untouched, true, true);
  };
  const auto restore = [&](const std::string& from) {
    fs::remove_all(dir);
    fs::copy(from, dir);
  };

  SECTION("killed while writing the .cleaned copy: it is deleted, the old segment stays") {
    restore(before);
    fs::copy_file(after + seg0 + ".log", dir + seg0 + ".log.cleaned");
    rill_test::write_file(dir + seg0 + ".log.cleaned",
                          std::vector<char>(100, 'g'));  // torn: garbage
    reopen_and_check(false);
  }
  SECTION("killed after deleting the old indexes, before the rename") {
    restore(before);
    fs::copy_file(after + seg0 + ".log", dir + seg0 + ".log.cleaned");
    fs::remove(dir + seg0 + ".index");
    fs::remove(dir + seg0 + ".timeindex");
    reopen_and_check(false);
  }
  SECTION("killed after the rename, before the new indexes") {
    restore(before);
    fs::copy_file(after + seg0 + ".log", dir + seg0 + ".log", fs::copy_options::overwrite_existing);
    fs::remove(dir + seg0 + ".index");
    fs::remove(dir + seg0 + ".timeindex");
    reopen_and_check(true);
  }
  SECTION("killed while writing the new indexes: a shorter time index is rebuilt") {
    restore(after);
    const std::string ti = dir + seg0 + ".timeindex";
    fs::resize_file(ti, rill_test::file_size(ti) - 16);
    reopen_and_check(true);
  }
}

TEST_CASE("compaction runs in the background when enough of the log is dirty",
          "[compaction][background]") {
  auto clock = std::make_shared<ManualClock>(kNow);
  LogConfig c = compaction_config(clock);
  c.compact = true;
  c.compaction_check_ms = 5;
  c.min_cleanable_dirty_ratio = 0.5;
  KeyedRecords model;
  auto log = open_log(std::string(), c);
  model.append(*log, 0, 2000);
  // The size the records take uncompacted, from a twin log with no compaction: the worker may
  // already have compacted part of `log` while the records went in (a slow machine), so its
  // own size now is no baseline.
  auto twin = open_log(std::string(), compaction_config(clock));
  model.append(*twin, 0, 2000);
  const std::uint64_t bytes = twin->size_bytes();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (log->size_bytes() > bytes / 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(log->size_bytes() < bytes / 2);
  log->close();  // waits for a run in progress
  check_compacted(model, read_offsets(*log, model), 2000, 2000, active_base(*log), true, false);
}

TEST_CASE("an expired tombstone triggers a background run on its own", "[compaction][background]") {
  auto clock = std::make_shared<ManualClock>(kNow);
  LogConfig c = compaction_config(clock);
  c.compact = true;
  c.compaction_check_ms = 5;
  c.min_cleanable_dirty_ratio = 1.0;  // only a fully dirty log would run by ratio
  c.delete_retention_ms = 1000;
  auto log = open_log(std::string(), c);
  const std::string v(200, 'v');
  REQUIRE(log->append({.key = "k", .timestamp_ms = kNow}));
  for (int i = 0; log->segment_count() < 3; ++i) {
    REQUIRE(log->append({.key = "f" + std::to_string(i), .value = v}));
  }
  take(log->compact());  // keeps the tombstone, notes when it expires
  CHECK(take(log->read(0, 1))[0].offset() == 0);
  clock->advance_ms(1001);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (take(log->read(0, 1))[0].offset() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(take(log->read(0, 1))[0].offset() > 0);
}

TEST_CASE("compaction on a closed log fails with kClosed; a bad config is refused",
          "[compaction][errors]") {
  auto log = open_log(std::string(), LogConfig{});
  log->close();
  rill_test::require_error(log->compact(), ErrorCode::kClosed);
  LogConfig c;
  c.delete_retention_ms = -1;
  rill_test::require_error(Log::open_in_memory(c), ErrorCode::kInvalidArgument);
  c = LogConfig{};
  c.min_cleanable_dirty_ratio = 1.5;
  rill_test::require_error(Log::open_in_memory(c), ErrorCode::kInvalidArgument);
}

TEST_CASE("one poll reads past every segment that compaction emptied", "[compaction][consumer]") {
  // A fetch that moved a position past a compacted gap without records left poll waiting for
  // an append that would announce more: poll(0) returned nothing although records followed,
  // and poll(timeout) slept up to a second per emptied segment.
  TempDir tmp;
  rill::BrokerOptions opts;
  opts.clock = std::make_shared<ManualClock>(kNow);
  opts.prefault_bytes = 0;
  // No background thread: its own compaction (a compact topic's, once a second) could run
  // first and leave the call below fewer segments to rewrite (seen once under ASan).
  opts.background_thread = false;
  rill::TopicConfig tc;
  tc.segment_bytes = 8192;
  tc.max_record_bytes = 1024;
  tc.cleanup_policy = rill::CleanupPolicy::kCompact;
  auto broker = take(rill::Broker::open(tmp.sub("data"), opts));
  take(broker->create_topic("t", tc));
  Log* log = take(broker->topic_state("t"))->partition(0);
  const std::string v(100, 'v');
  for (int i = 0; i < 300; ++i) REQUIRE(log->append({.key = "a", .value = v}));
  REQUIRE(log->append({.key = "a", .value = v}));  // supersedes every "a" before it
  const auto reports = take(broker->compact("t"));
  REQUIRE(reports[0].segments_rewritten >= 3);
  // The sealed segments hold nothing now; the active one is never compacted.
  const auto kept = static_cast<std::int64_t>(log->segments().back()->base_offset());
  REQUIRE(kept > 0);

  rill::ConsumerConfig cc;
  cc.auto_offset_reset = rill::OffsetReset::kEarliest;
  rill::Consumer<std::string, std::string> consumer(*broker, cc);
  rill_test::require_ok(consumer.assign({{"t", 0}}));
  const auto records = take(consumer.poll(std::chrono::milliseconds(0)));
  REQUIRE(!records.empty());
  CHECK(records.begin()->offset == kept);
}

TEST_CASE("a broker topic with cleanup_policy compact,delete compacts and keeps its config",
          "[compaction][broker]") {
  TempDir tmp;
  auto clock = std::make_shared<ManualClock>(kNow);
  rill::BrokerOptions opts;
  opts.clock = clock;
  opts.prefault_bytes = 0;
  rill::TopicConfig tc;
  tc.segment_bytes = 8192;
  tc.max_record_bytes = 1024;
  tc.cleanup_policy = rill::CleanupPolicy::kCompactDelete;
  tc.delete_retention_ms = 5000;
  tc.retention_bytes = 1 << 20;
  {
    auto broker = take(rill::Broker::open(tmp.sub("data"), opts));
    take(broker->create_topic("plain", rill::TopicConfig{}));
    rill_test::require_error(broker->compact("plain"), ErrorCode::kInvalidArgument);
    rill_test::require_error(broker->compact("missing"), ErrorCode::kNotFound);
    take(broker->create_topic("t", tc));
    Log* log = take(broker->topic_state("t"))->partition(0);
    CHECK(log->config().compact);
    CHECK(log->config().delete_retention_ms == 5000);
    CHECK(log->config().retention_bytes == 1 << 20);
    const std::string v(100, 'v');
    for (int i = 0; i < 500; ++i) REQUIRE(log->append({.key = std::to_string(i % 10), .value = v}));
    const auto reports = take(broker->compact("t"));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].segments_rewritten > 0);

    // A consumer reads across the gaps: only the records compaction kept, then the rest.
    rill::ConsumerConfig cc;
    cc.auto_offset_reset = rill::OffsetReset::kEarliest;
    rill::Consumer<std::string, std::string> consumer(*broker, cc);
    rill_test::require_ok(consumer.assign({{"t", 0}}));
    std::vector<std::int64_t> seen;
    for (int i = 0; i < 1000; ++i) {
      auto records = take(consumer.poll(std::chrono::milliseconds(0)));
      for (const auto& r : records) seen.push_back(r.offset);
      if (!seen.empty() && seen.back() == 499) break;
    }
    REQUIRE(!seen.empty());
    CHECK(seen.back() == 499);
    CHECK(seen.size() < 500);
    CHECK(std::is_sorted(seen.begin(), seen.end()));
  }
  // The config persisted; a topic.conf written before compaction existed (no
  // delete_retention_ms line) still loads, with the default.
  const std::string conf = tmp.sub("data/t/topic.conf");
  auto text = rill_test::read_file(conf);
  std::string s(text.begin(), text.end());
  CHECK(s.find("cleanup_policy=compact,delete\n") != std::string::npos);
  CHECK(s.find("delete_retention_ms=5000\n") != std::string::npos);
  {
    auto broker = take(rill::Broker::open(tmp.sub("data"), opts));
    const auto d = take(broker->describe_topic("t"));
    CHECK(d.config.cleanup_policy == rill::CleanupPolicy::kCompactDelete);
    CHECK(d.config.delete_retention_ms == 5000);
  }
  s.erase(s.find("delete_retention_ms=5000\n"), std::strlen("delete_retention_ms=5000\n"));
  rill_test::write_file(conf, std::vector<char>(s.begin(), s.end()));
  {
    auto broker = take(rill::Broker::open(tmp.sub("data"), opts));
    const auto d = take(broker->describe_topic("t"));
    CHECK(d.config.delete_retention_ms == rill::TopicConfig{}.delete_retention_ms);
  }
}

TEST_CASE("under a syncing durability policy, a record not yet synced supersedes nothing",
          "[compaction][durability]") {
  // Compaction fsyncs its deletions at once. Counting a newer record that was not synced yet,
  // it dropped the synced older one: a power loss before the newer record's sync lost both.
  TempDir tmp;
  auto clock = std::make_shared<ManualClock>(kNow);
  LogConfig c = compaction_config(clock);
  c.durability = rill::storage::Durability::every(1'000'000);  // syncs only when told
  auto log = open_log(tmp.sub("log"), c);
  const std::string filler(200, 'f');
  REQUIRE(log->append({.key = std::string_view("k"), .value = std::string_view("v1")}));
  const std::uint64_t first_segment = active_base(*log);
  while (active_base(*log) == first_segment) {
    REQUIRE(log->append({.key = std::string_view("other"), .value = std::string_view(filler)}));
  }
  rill_test::require_ok(log->flush());  // v1 (and the filler) are durable
  const auto v2 =
      take(log->append({.key = std::string_view("k"), .value = std::string_view("v2")}));
  REQUIRE(log->durable_offset() <= v2.offset);
  take(log->compact());
  RecordBatch b;
  rill_test::require_ok(log->read_into(0, b, 1));
  REQUIRE(b.size() == 1);
  CHECK(b[0].offset() == 0);  // v1 is still there: v2 could still be lost
  CHECK(*b[0].value() == "v1");

  rill_test::require_ok(log->flush());  // now v2 is durable too, and v1 may go
  take(log->compact());
  RecordBatch fresh;  // (`b` would go on reading the segment it holds, as it was)
  std::int64_t at = 0;
  for (int reads = 0; fresh.empty() && reads < 4; ++reads) {  // past the emptied segment
    rill_test::require_ok(log->read_into(at, fresh, 1));
    at = fresh.next_offset();
  }
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0].offset() > 0);
  CHECK(*fresh[0].key() == "other");
}

TEST_CASE("a damaged batch in one segment leaves that segment alone, not the whole compaction",
          "[compaction][errors]") {
  // Recovery checks a sealed segment's CRCs only near its end, so damage earlier in it shows
  // at compaction's first read. That stopped every compaction of the log for good; now the
  // damaged segment is left as it is, the others are compacted, and kCorruption comes back.
  TempDir tmp;
  const std::string dir = tmp.sub("log");
  auto clock = std::make_shared<ManualClock>(kNow);
  const LogConfig c = compaction_config(clock);
  const std::string v(100, 'v');
  std::uint64_t superseded_at = 0;
  std::uint64_t third = 0;
  std::string segment0;
  {
    auto log = open_log(dir, c);
    for (int i = 0; active_base(*log) == 0; ++i) {  // segment 0: keys that stay
      const std::string key = "x" + std::to_string(i);
      REQUIRE(log->append({.key = std::string_view(key), .value = std::string_view(v)}));
    }
    segment0 = log->segments().front()->log_path();
    const std::uint64_t second = active_base(*log);
    superseded_at = second;
    while (active_base(*log) == second) {  // segment 1: "a" over and over
      REQUIRE(log->append({.key = std::string_view("a"), .value = std::string_view(v)}));
    }
    third = active_base(*log);  // the active segment, which compaction never rewrites
    REQUIRE(log->append({.key = std::string_view("a"), .value = std::string_view("last")}));
  }
  // A flipped byte in a value of segment 0's first batch: inside its records, past recovery's
  // quick check.
  {
    std::vector<char> bytes = rill_test::read_file(segment0);
    bytes.at(rill::storage::kFileHeaderSize + 40 + 20) ^= 0x10;
    rill_test::write_file(segment0, bytes);
  }
  auto log = open_log(dir, c);
  REQUIRE(log->recovery().clean());
  rill_test::require_error(log->compact(), ErrorCode::kCorruption);
  // Segment 1 was compacted: no superseded "a" is left in it (its first record, the one whose
  // append rolled segment 0, has a key of its own and stays).
  RecordBatch b;
  std::vector<std::int64_t> a_offsets;
  for (auto at = static_cast<std::int64_t>(superseded_at); at < static_cast<std::int64_t>(third);
       at = b.next_offset()) {
    rill_test::require_ok(log->read_into(at, b, 1000));
    for (const auto& r : b) {
      if (r.offset() < static_cast<std::int64_t>(third) && *r.key() == "a") {
        a_offsets.push_back(r.offset());
      }
    }
  }
  CHECK(a_offsets.empty());
  // Segment 0 is as it was: its first record, damaged, is still reported as such.
  rill_test::require_error(log->read_into(0, b, 1), ErrorCode::kCorruption);
}

TEST_CASE("a compaction interval of 'never' does not run compaction at every tick",
          "[compaction][background]") {
  // The background check converted compaction_check_ms to nanoseconds, which overflowed for a
  // value near INT64_MAX (a natural "never") and came out negative: compaction then ran at
  // every tick instead of never.
  auto clock = std::make_shared<ManualClock>(kNow);
  LogConfig c = compaction_config(clock);
  c.compact = true;
  c.compaction_check_ms = std::numeric_limits<std::int64_t>::max();
  c.durability = rill::storage::Durability::interval(std::numeric_limits<std::int64_t>::max());
  auto background = std::make_shared<rill::storage::Background>(rill::storage::Background::kManual);
  c.background = background;
  TempDir tmp;
  auto log = open_log(tmp.sub("log"), c);
  const std::string v(100, 'v');
  while (log->segment_count() < 3) {
    REQUIRE(log->append({.key = std::string_view("a"), .value = std::string_view(v)}));
  }
  const auto before = log->compacted_segments();
  const auto durable = log->durable_offset();
  for (int i = 0; i < 3; ++i) background->run_once();
  CHECK(log->compacted_segments() == before);  // no compaction
  CHECK(log->durable_offset() == durable);     // no interval sync either
}

}  // namespace compaction_test
