// Read-only access to a live directory (storage::LogReader, BrokerView), the inspection
// functions behind `rill dump` / `rill verify`, stats snapshots and the broker's log sink.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker_view.hpp"
#include "rill/rill.hpp"
#include "rill/stats.hpp"
#include "rill/storage/log_reader.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace log_reader_test {

using rill::ErrorCode;
using rill::storage::LogConfig;
using rill::storage::LogReader;
using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

namespace {

LogConfig small_segments() {
  LogConfig c;
  c.segment_bytes = 4096;
  c.max_record_bytes = 1024;
  c.prefault_bytes = 0;
  return c;
}

std::string value_of(std::int64_t i) { return "value-" + std::to_string(i); }

void append_n(rill::storage::Log& log, std::int64_t from, std::int64_t n) {
  for (std::int64_t i = from; i < from + n; ++i) {
    const std::string v = value_of(i);
    take(log.append({.key = std::string_view("k"), .value = std::string_view(v)}));
  }
}

// Every record in [from, to) read through `r`, checked against value_of.
void check_all(LogReader& r, std::int64_t from, std::int64_t to) {
  std::int64_t next = from;
  while (next < to) {
    auto batch = take(r.read(next, 100));
    REQUIRE(!batch.empty());
    for (const auto& rec : batch) {
      REQUIRE(rec.offset() == next);
      REQUIRE(rec.value() == std::optional<std::string_view>(value_of(next)));
      ++next;
    }
  }
}

// Path -> (size, mtime ns, bytes) of every file under `dir`.
std::map<std::string, std::vector<char>> snapshot(const std::string& dir) {
  std::map<std::string, std::vector<char>> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    struct stat st;
    ::stat(e.path().c_str(), &st);
    auto bytes = rill_test::read_file(e.path().string());
    const std::string stamp =
        std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    bytes.insert(bytes.end(), stamp.begin(), stamp.end());
    out[e.path().string()] = std::move(bytes);
  }
  return out;
}

// Appends to `file` a batch as log compaction leaves them (docs/format.md): `values` at
// offsets base, base + 1, ..., marked compacted and spanning `span` offsets from `base`, so
// the offsets after its records are a gap; no values: an empty batch (count 0, size 40).
void append_compacted_batch(std::vector<char>& file, std::uint64_t base, std::uint32_t span,
                            const std::vector<std::string>& values, std::int64_t ts) {
  namespace st = rill::storage;
  std::vector<st::Record> recs;
  for (const auto& v : values) recs.push_back({.value = std::string_view(v), .timestamp_ms = ts});
  st::BatchSizeBound bound;
  for (const auto& r : recs) bound.add(r);
  std::vector<std::byte> b(std::max(bound.bytes(), st::kFrameHeaderSize));
  st::FrameHeader h{};
  if (recs.empty()) {
    h = {static_cast<std::uint32_t>(st::kFrameHeaderSize),
         0,
         base,
         ts,
         ts,
         0,
         0,
         0,
         st::kBatchMagic};
  } else {
    (void)st::encode_batch(b.data(), recs, base, ts);
    std::memcpy(&h, b.data(), sizeof h);
  }
  h.attributes = st::kBatchCompacted;
  h.last_offset_delta = span - 1;
  std::memcpy(b.data(), &h, sizeof h);
  h.crc = rill::detail::crc32c_extend(0, b.data() + 8, h.size - 8);
  std::memcpy(b.data(), &h, sizeof h);
  b.resize(st::align_frame(h.size));
  const auto* bytes = reinterpret_cast<const char*>(b.data());
  file.insert(file.end(), bytes, bytes + b.size());
}

}  // namespace

TEST_CASE("a read-only reader follows a log another writer appends to, across rolls",
          "[log_reader]") {
  rill_test::TempDir dir;
  auto log = take(rill::storage::Log::open(dir.path(), small_segments()));
  append_n(*log, 0, 10);
  auto reader = take(LogReader::open(dir.path()));
  CHECK(reader->start_offset() == 0);
  CHECK(reader->end_offset() == 10);
  check_all(*reader, 0, 10);

  append_n(*log, 10, 300);  // many 4 KiB segments
  REQUIRE(log->segment_count() > 3);
  CHECK(reader->end_offset() == 10);  // nothing new until refresh
  auto info = take(reader->refresh());
  CHECK(info.new_records == 300);
  CHECK(info.new_segments == log->segment_count() - 1);
  CHECK(reader->end_offset() == 310);
  CHECK(reader->segment_count() == log->segment_count());
  check_all(*reader, 0, 310);
  CHECK(reader->size_bytes() == log->size_bytes());

  // An offset past the end is out of range; the end itself reads empty.
  require_error(reader->read(311, 1), ErrorCode::kOutOfRange);
  CHECK(take(reader->read(310, 1)).empty());
}

TEST_CASE("a read-only reader takes no lock and writes nothing", "[log_reader]") {
  rill_test::TempDir dir;
  {
    auto log = take(rill::storage::Log::open(dir.path(), small_segments()));
    append_n(*log, 0, 100);
  }
  const auto before = snapshot(dir.path());
  {
    auto reader = take(LogReader::open(dir.path()));
    check_all(*reader, 0, 100);
    take(reader->refresh());
    // A writer can open the directory while the reader has it open.
    auto log = rill::storage::Log::open(dir.path(), small_segments());
    REQUIRE(log.has_value());
  }
  // The writer's open above rewrote its own files (.lock, the active segment's indexes); open
  // a reader again over a closed log and check that it alone changes nothing.
  const auto settled = snapshot(dir.path());
  {
    auto reader = take(LogReader::open(dir.path()));
    check_all(*reader, 0, 100);
    (void)take(reader->refresh());
    (void)rill::storage::verify_log(dir.path());
  }
  CHECK(snapshot(dir.path()) == settled);
  CHECK(before.size() == settled.size());
}

TEST_CASE("a read-only reader never returns a batch whose size word is not stored yet",
          "[log_reader]") {
  rill_test::TempDir dir;
  auto log = take(rill::storage::Log::open(dir.path(), small_segments()));
  append_n(*log, 0, 3);
  auto reader = take(LogReader::open(dir.path()));
  REQUIRE(reader->end_offset() == 3);

  // Write a whole fourth batch (of two records) into the file behind the writer's back, all
  // but its size word, as an appender in the middle of encode_batch would have it.
  const std::uint64_t pos = log->segments().back()->end_position();
  const std::string v3 = value_of(3);
  const std::string v4 = value_of(4);
  const rill::storage::Record recs[] = {
      {.key = std::string_view("k"), .value = std::string_view(v3)},
      {.key = std::string_view("k"), .value = std::string_view(v4)}};
  rill::storage::BatchSizeBound bound;
  for (const auto& r : recs) bound.add(r);
  std::vector<std::byte> frame(bound.bytes());
  const auto encoded = rill::storage::encode_batch(frame.data(), recs, 3, 1'700'000'000'000);
  frame.resize(rill::storage::align_frame(encoded.size));
  const std::string path = dir.path() + "/" + rill::storage::segment_file_name(0, ".log");
  const int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, frame.data() + 4, frame.size() - 4, static_cast<off_t>(pos + 4)) ==
          static_cast<ssize_t>(frame.size() - 4));
  CHECK(take(reader->refresh()).new_records == 0);
  CHECK(reader->end_offset() == 3);

  // The size word, stored last, publishes it.
  REQUIRE(::pwrite(fd, frame.data(), 4, static_cast<off_t>(pos)) == 4);
  ::close(fd);
  CHECK(take(reader->refresh()).new_records == 2);
  check_all(*reader, 0, 5);
  // A read from the middle of a batch skips the records before it.
  auto mid = take(reader->read(4, 10));
  REQUIRE(mid.size() == 1);
  CHECK(mid[0].offset() == 4);
  CHECK(mid.next_offset() == 5);
}

TEST_CASE("a read-only reader survives retention deleting the segments it reads", "[log_reader]") {
  rill_test::TempDir dir;
  LogConfig c = small_segments();
  c.retention_bytes = 3 * 4096;
  auto log = take(rill::storage::Log::open(dir.path(), c));
  append_n(*log, 0, 50);
  rill::storage::LogReaderOptions o;
  o.list_interval_ms = 0;  // list the directory on every refresh
  auto reader = take(LogReader::open(dir.path(), o));
  auto held = take(reader->read(0, 10));  // pins the first segment
  append_n(*log, 50, 400);
  REQUIRE(log->start_offset() > 0);
  auto info = take(reader->refresh());
  CHECK(info.deleted_segments > 0);
  CHECK(reader->start_offset() == log->start_offset());
  CHECK(reader->end_offset() == log->end_offset());
  require_error(reader->read(0, 1), ErrorCode::kOutOfRange);
  check_all(*reader, reader->start_offset(), reader->end_offset());
  // Records read before the deletion stay readable: their mapping is pinned.
  REQUIRE(held.size() == 10);
  CHECK(held[9].value() == std::optional<std::string_view>(value_of(9)));
}

TEST_CASE("a read-only reader finds records by time and fails on a missing directory",
          "[log_reader]") {
  rill_test::TempDir dir;
  auto log = take(rill::storage::Log::open(dir.path(), small_segments()));
  for (std::int64_t i = 0; i < 100; ++i) {
    const std::string v = value_of(i);
    take(log->append({.value = std::string_view(v), .timestamp_ms = 1000 + i * 10}));
  }
  auto reader = take(LogReader::open(dir.path()));
  CHECK(reader->offset_for_time(0) == std::optional<std::int64_t>(0));
  CHECK(reader->offset_for_time(1505) == std::optional<std::int64_t>(51));
  CHECK(reader->offset_for_time(999'999) == std::nullopt);
  CHECK(reader->oldest_timestamp_ms() == 1000);
  CHECK(reader->newest_timestamp_ms() == 1990);
  require_error(LogReader::open(dir.sub("missing")), ErrorCode::kNotFound);
}

TEST_CASE("verify_log and dump_segment report a flipped bit; a clean log verifies",
          "[log_reader][verify]") {
  rill_test::TempDir dir;
  {
    auto log = take(rill::storage::Log::open(dir.path(), small_segments()));
    append_n(*log, 0, 100);
  }
  auto clean = take(rill::storage::verify_log(dir.path()));
  CHECK(clean.problems.empty());
  CHECK(clean.records == 100);
  CHECK(clean.segments > 1);

  std::vector<std::uint64_t> positions;
  auto d =
      take(rill::storage::dump_segment(dir.path(), 0, [&](const rill::storage::DumpedBatch& b) {
        REQUIRE(b.valid);
        REQUIRE(b.header.count == 1);  // one append, one batch
        positions.push_back(b.position);
      }));
  REQUIRE(positions.size() == d.batches);
  REQUIRE(d.records == d.batches);
  REQUIRE(positions.size() > 3);
  CHECK(positions.front() == rill::storage::kFileHeaderSize);

  // Flip a bit in the third batch of the first (sealed) segment: its first record's value
  // length.
  const std::string path = dir.path() + "/" + rill::storage::segment_file_name(0, ".log");
  auto bytes = rill_test::read_file(path);
  bytes[positions[2] + 45] ^= 0x10;
  rill_test::write_file(path, bytes);
  std::vector<bool> valid;
  auto damaged = take(rill::storage::dump_segment(
      dir.path(), 0, [&](const rill::storage::DumpedBatch& b) { valid.push_back(b.valid); }));
  CHECK(valid == std::vector<bool>{true, true, false});  // the damaged batch's header still reads
  CHECK(damaged.records == 2);
  CHECK(damaged.end_position == positions[2]);
  REQUIRE(damaged.damage != nullptr);
  CHECK(std::string(damaged.damage) == "frame CRC mismatch");
  auto check = take(rill::storage::verify_log(dir.path()));
  REQUIRE(check.problems.size() == 1);
  CHECK(check.problems[0].find("CRC mismatch") != std::string::npos);
  // A reader opens the damaged log, returns the records before the damage, and reports it.
  auto reader = take(LogReader::open(dir.path()));
  CHECK(take(reader->read(0, 100)).size() == 2);
  require_error(reader->read(2, 1), ErrorCode::kCorruption);
  CHECK(take(reader->read(static_cast<std::int64_t>(d.end_offset), 1)).size() == 1);

  // A damaged index is reported too.
  bytes[positions[2] + 45] ^= 0x10;
  rill_test::write_file(path, bytes);
  const std::string index = dir.path() + "/" + rill::storage::segment_file_name(0, ".index");
  auto ib = rill_test::read_file(index);
  REQUIRE(ib.size() >= 72);
  ib[68] = 8;  // the first entry's position: 64 -> a position that is not a batch
  rill_test::write_file(index, ib);
  check = take(rill::storage::verify_log(dir.path()));
  REQUIRE(check.problems.size() == 1);
  CHECK(check.problems[0].find(".index") != std::string::npos);
}

TEST_CASE("a broker view lists topics, reads partitions and committed offsets read-only",
          "[broker_view]") {
  rill_test::TempDir dir;
  rill::BrokerOptions o;
  o.prefault_bytes = 0;
  auto broker = take(rill::Broker::open(dir.path(), o));
  take(broker->create_topic("orders",
                            {.partitions = 2, .segment_bytes = 1 << 16, .max_record_bytes = 1024}));
  auto state = take(broker->topic_state("orders"));
  take(state->partition(1)->append({.value = std::string_view("x")}));
  rill::ConsumerGroup billing(*broker, "billing");
  require_ok(billing.reset_offsets("orders", rill::OffsetResetSpec::earliest()));

  auto view = take(rill::BrokerView::open(dir.path()));  // while the broker holds the lock
  CHECK(view->list_topics() == std::vector<std::string>{"orders"});
  auto d = take(view->describe_topic("orders"));
  REQUIRE(d.partitions.size() == 2);
  CHECK(d.partitions[1].end_offset == 1);
  require_error(view->describe_topic("nope"), ErrorCode::kNotFound);
  require_error(view->partition("orders", 2), ErrorCode::kOutOfRange);
  auto lag = take(view->group_lag("billing"));
  REQUIRE(lag.size() == 2);
  CHECK(lag[1].committed == std::optional<std::int64_t>(0));
  CHECK(lag[1].lag == 1);

  // New topics, records and partitions show after refresh.
  take(broker->create_topic("events",
                            {.partitions = 1, .segment_bytes = 1 << 16, .max_record_bytes = 1024}));
  take(state->partition(0)->append({.value = std::string_view("y")}));
  take(broker->add_partitions("orders", 3));
  require_ok(view->refresh_topics());
  require_ok(view->refresh());
  CHECK(view->list_topics() == std::vector<std::string>{"events", "orders"});
  d = take(view->describe_topic("orders"));
  REQUIRE(d.partitions.size() == 3);
  CHECK(d.partitions[0].end_offset == 1);
  auto stats = take(view->stats());
  REQUIRE(stats.groups.size() == 1);
  CHECK(stats.groups[0].total_lag == 2);

  require_error(rill::BrokerView::open(dir.sub("missing")), ErrorCode::kNotFound);
}

TEST_CASE("stats count appends and reads per partition and lag per group", "[stats]") {
  auto broker = take(rill::Broker::open_in_memory());
  take(broker->create_topic("orders", {.partitions = 2}));
  auto state = take(broker->topic_state("orders"));
  rill::storage::Log& log = *state->partition(0);
  std::vector<rill::storage::Record> batch(3,
                                           rill::storage::Record{.value = std::string_view("v")});
  take(log.append_batch(batch));
  take(log.append({.value = std::string_view("w")}));
  (void)take(log.read(0, 10));
  rill::ConsumerGroup g(*broker, "g");
  require_ok(g.reset_offsets("orders", rill::OffsetResetSpec::to_offset(0)));

  auto s = take(rill::stats(*broker));
  const rill::PartitionStats* p0 = nullptr;
  for (const auto& p : s.partitions) {
    if (p.topic == "orders" && p.partition == 0) p0 = &p;
  }
  REQUIRE(p0 != nullptr);
  CHECK(p0->end_offset == 4);
  CHECK(p0->counters.appended_records == 4);
  CHECK(p0->counters.appended_batches == 2);
  CHECK(p0->counters.appended_bytes == log.size_bytes());
  CHECK(p0->counters.read_records == 4);
  REQUIRE(s.groups.size() == 1);
  CHECK(s.groups[0].group_id == "g");
  CHECK(s.groups[0].total_lag == 4);
  CHECK(s.groups[0].members == 0);
}

TEST_CASE("the log sink hears recovery, retention and rebalances, outside rill's locks",
          "[stats][sink]") {
  rill_test::TempDir dir;
  rill::BrokerOptions o;
  o.prefault_bytes = 0;
  {
    auto broker = take(rill::Broker::open(dir.path(), o));  // no sink: silent
    rill::TopicConfig c;
    c.partitions = 1;
    c.segment_bytes = 4096;
    c.max_record_bytes = 1024;
    c.retention_bytes = 4096;
    take(broker->create_topic("orders", c));
  }
  // A torn tail for recovery to cut: garbage after the last frame of the active segment.
  const std::string seg = dir.path() + "/orders/0/" + rill::storage::segment_file_name(0, ".log");
  auto bytes = rill_test::read_file(seg);
  bytes[200] = 0x5a;
  rill_test::write_file(seg, bytes);

  std::mutex mu;
  std::vector<rill::LogEvent> events;
  rill::Broker* self = nullptr;
  o.log_sink = [&](const rill::LogEvent& e) {
    if (self != nullptr) (void)self->list_topics();  // calling back in must not deadlock
    std::lock_guard lock(mu);
    events.push_back(e);
  };
  auto broker = take(rill::Broker::open(dir.path(), o));
  self = broker.get();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == rill::LogEvent::Kind::kRecovery);
  CHECK(events[0].topic == "orders");
  CHECK(events[0].bytes > 0);

  auto state = take(broker->topic_state("orders"));
  const std::string v(200, 'v');
  for (int i = 0; i < 100; ++i) take(state->partition(0)->append({.value = std::string_view(v)}));
  {
    std::lock_guard lock(mu);
    bool retention = false;
    for (const auto& e : events)
      retention = retention || e.kind == rill::LogEvent::Kind::kRetention;
    CHECK(retention);
  }

  rill::Consumer<std::string, std::string> consumer(*broker, {.group_id = "g"});
  require_ok(consumer.subscribe({"orders"}));
  (void)take(consumer.poll(std::chrono::milliseconds(0)));
  std::lock_guard lock(mu);
  bool rebalance = false;
  for (const auto& e : events) {
    rebalance = rebalance || (e.kind == rill::LogEvent::Kind::kRebalance &&
                              e.message.find("'g'") != std::string::npos);
  }
  CHECK(rebalance);
}

TEST_CASE(
    "a read-only reader skips a compacted segment's gaps and empty batches; dump and verify "
    "accept them",
    "[log_reader][compacted]") {
  namespace st = rill::storage;
  rill_test::TempDir dir;
  // Offsets 0-2 kept, 3-4 dropped at the end of their batch, 5-7 an empty batch, 8-9 dropped
  // with their whole batch, 10-11 kept.
  const st::FileHeader fh = st::make_file_header(st::FileKind::kLog, 0, 1000);
  std::vector<char> file(reinterpret_cast<const char*>(&fh),
                         reinterpret_cast<const char*>(&fh) + sizeof fh);
  append_compacted_batch(file, 0, 5, {"v0", "v1", "v2"}, 1000);
  append_compacted_batch(file, 5, 3, {}, 1000);
  append_compacted_batch(file, 10, 2, {"v10", "v11"}, 2000);
  rill_test::write_file(dir.path() + "/" + st::segment_file_name(0, ".log"), file);

  const auto offsets = [](const st::ReaderBatch& b) {
    std::vector<std::int64_t> out;
    for (const auto& r : b) out.push_back(r.offset());
    return out;
  };
  using V = std::vector<std::int64_t>;
  auto reader = take(LogReader::open(dir.path()));
  CHECK(reader->end_offset() == 12);
  auto all = take(reader->read(0, 100));
  CHECK(offsets(all) == V{0, 1, 2, 10, 11});
  CHECK(all.next_offset() == 12);
  CHECK(all[3].value() == std::optional<std::string_view>("v10"));
  CHECK(offsets(take(reader->read(3, 100))) == V{10, 11});
  auto one = take(reader->read(6, 1));
  CHECK(offsets(one) == V{10});
  CHECK(one.next_offset() == 11);
  CHECK(offsets(take(reader->read(1, 2))) == V{1, 2});
  CHECK(take(reader->read(12, 1)).empty());
  CHECK(reader->offset_for_time(1500) == std::optional<std::int64_t>(10));

  std::vector<st::DumpedBatch> batches;
  auto d = take(
      st::dump_segment(dir.path(), 0, [&](const st::DumpedBatch& b) { batches.push_back(b); }));
  CHECK(d.damage == nullptr);
  CHECK(d.batches == 3);
  CHECK(d.records == 5);
  CHECK(d.end_offset == 12);
  REQUIRE(batches.size() == 3);
  CHECK(batches[1].compacted());
  CHECK(batches[1].header.count == 0);
  CHECK(batches[1].last_offset() == 7);
  CHECK(batches[2].header.base_offset == 10);

  // A writer recovers the segment as its active one (and writes its indexes); reads through
  // it and through the reader agree, and the directory verifies.
  {
    auto log = take(st::Log::open(dir.path(), small_segments()));
    CHECK(log->end_offset() == 12);
    std::vector<std::int64_t> via_log;
    for (const auto& r : take(log->read(0, 100))) via_log.push_back(r.offset());
    CHECK(via_log == V{0, 1, 2, 10, 11});
    take(log->append({.value = std::string_view("v12")}));
  }
  auto check = take(st::verify_log(dir.path()));
  CHECK(check.problems.empty());
  CHECK(check.records == 6);
  // The segment, created at 1000 ms since the epoch, was due to roll: offset 12 starts the next.
  CHECK(check.segments == 2);
  reader = take(LogReader::open(dir.path()));
  auto tail = take(reader->read(4, 100));
  CHECK(offsets(tail) == V{10, 11});  // a read stays within one segment
  CHECK(offsets(take(reader->read(tail.next_offset(), 100))) == V{12});
}

TEST_CASE("a broker view follows a topic deleted and created again", "[broker_view][log_reader]") {
  // The view's readers kept the deleted topic's mappings (the same file names came back) and
  // showed its records and end offsets; once the new topic rolled past the old end, its
  // segments were appended onto the old ones. A reader now notices the new log (its oldest
  // segment created at another time, or nothing left at or past its newest) and starts over.
  rill_test::TempDir dir;
  auto clock = std::make_shared<rill::ManualClock>(1'000'000);
  rill::BrokerOptions o;
  o.prefault_bytes = 0;
  o.clock = clock;
  auto broker = take(rill::Broker::open(dir.path(), o));
  const rill::TopicConfig config{.partitions = 1, .segment_bytes = 4096, .max_record_bytes = 1024};
  const bool old_rolled = GENERATE(false, true);  // the old log had several segments
  CAPTURE(old_rolled);
  const auto fill = [&](int n, const std::string& tag) {
    auto state = take(broker->topic_state("t"));
    for (int i = 0; i < n; ++i) {
      const std::string v = tag + std::to_string(i) + std::string(200, '.');
      take(state->partition(0)->append({.value = std::string_view(v)}));
    }
  };
  take(broker->create_topic("t", config));
  fill(old_rolled ? 60 : 10, "old-");
  auto view = take(rill::BrokerView::open(dir.path()));
  REQUIRE(take(view->describe_topic("t")).partitions[0].end_offset == (old_rolled ? 60 : 10));
  LogReader* reader = take(view->partition("t", 0));
  auto held = take(reader->read(0, 5));  // read before the delete: stays readable

  require_ok(broker->delete_topic("t"));
  clock->advance_ms(1000);
  take(broker->create_topic("t", config));
  fill(3, "new-");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past list_interval_ms
  require_ok(view->refresh_topics());
  require_ok(view->refresh());
  CHECK(take(view->describe_topic("t")).partitions[0].end_offset == 3);
  reader = take(view->partition("t", 0));
  auto batch = take(reader->read(0, 10));
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].value()->substr(0, 5) == "new-0");
  CHECK(held[0].value()->substr(0, 5) == "old-0");
  // And it follows the new log across its rolls.
  fill(40, "more-");
  require_ok(view->refresh());
  CHECK(take(view->describe_topic("t")).partitions[0].end_offset == 43);
  batch = take(reader->read(3, 1));
  CHECK(batch[0].value()->substr(0, 6) == "more-0");
}

}  // namespace log_reader_test
