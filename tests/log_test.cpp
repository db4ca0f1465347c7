// The partition log: append, read, rolls, reopen, time lookup, retention, waiting, errors.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "rill/rill.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace log_test {

using rill::ErrorCode;
using rill::ManualClock;
using rill::storage::AppendInfo;
using rill::storage::Durability;
using rill::storage::Header;
using rill::storage::kFileHeaderSize;
using rill::storage::kFrameHeaderSize;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::Record;
using rill::storage::RecordBatch;
using rill_test::TempDir;

namespace {

// A value whose bytes depend on its offset, so any read can be checked.
std::string value_for(std::int64_t offset, std::size_t size = 100) {
  std::string v(size, '\0');
  std::uint64_t x = static_cast<std::uint64_t>(offset) * 0x9E3779B97F4A7C15ull + 1;
  for (auto& c : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return v;
}

LogConfig small_segments(std::size_t segment_bytes = 8192) {
  LogConfig c;
  c.segment_bytes = segment_bytes;
  c.max_record_bytes = 1024;
  c.index_interval_bytes = 256;
  return c;
}

std::unique_ptr<Log> open_log(const std::string& dir, LogConfig config = {}) {
  auto log = Log::open(dir, std::move(config));
  INFO((log ? std::string() : log.error().to_string()));
  REQUIRE(log.has_value());
  return std::move(*log);
}

AppendInfo append_value(Log& log, std::int64_t expect_offset, std::size_t size = 100,
                        std::int64_t ts = rill::storage::kNoTimestamp) {
  const std::string v = value_for(expect_offset, size);
  auto r = log.append({.key = std::string_view("key"), .value = v, .timestamp_ms = ts});
  INFO((r ? std::string() : r.error().to_string()));
  REQUIRE(r.has_value());
  REQUIRE(r->offset == expect_offset);
  return *r;
}

// Reads [from, end) in batches and checks each record's offset and value.
void check_all(const Log& log, std::int64_t from, std::size_t size = 100) {
  RecordBatch batch;
  std::int64_t next = from;
  while (next < log.end_offset()) {
    auto r = log.read_into(next, batch, 64);
    INFO((r ? std::string() : r.error().to_string()));
    REQUIRE(r.has_value());
    REQUIRE(!batch.empty());
    for (const auto& rec : batch) {
      REQUIRE(rec.offset() == next);
      REQUIRE(rec.value().has_value());
      REQUIRE(*rec.value() == value_for(next, size));
      ++next;
    }
    REQUIRE(batch.next_offset() == next);
  }
  REQUIRE(next == log.end_offset());
}

}  // namespace

TEST_CASE("append assigns dense offsets from 0 and reads return records whole", "[log]") {
  TempDir dir;
  auto log = open_log(dir.path());
  REQUIRE(log->start_offset() == 0);
  REQUIRE(log->end_offset() == 0);

  const Header headers[] = {
      {"trace", std::string_view("abc")}, {"empty", std::string_view("")}, {"null", std::nullopt}};
  auto a = log->append({.key = std::string_view("k1"),
                        .value = std::string_view("v1"),
                        .headers = headers,
                        .timestamp_ms = 1000});
  auto b = log->append({.key = std::nullopt, .value = std::nullopt});  // no key, tombstone
  auto c = log->append({.key = std::string_view(""), .value = std::string_view("")});
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  REQUIRE(c.has_value());
  CHECK(a->offset == 0);
  CHECK(b->offset == 1);
  CHECK(c->offset == 2);
  CHECK(log->end_offset() == 3);

  auto batch = log->read(0, 10);
  REQUIRE(batch.has_value());
  REQUIRE(batch->size() == 3);
  const auto& r0 = (*batch)[0];
  CHECK(r0.offset() == 0);
  CHECK(r0.timestamp_ms() == 1000);
  CHECK(r0.key() == std::optional<std::string_view>("k1"));
  CHECK(r0.value() == std::optional<std::string_view>("v1"));
  std::vector<Header> got(r0.headers().begin(), r0.headers().end());
  REQUIRE(got.size() == 3);
  CHECK(got[0].name == "trace");
  CHECK(got[0].value == std::optional<std::string_view>("abc"));
  CHECK(got[1].name == "empty");
  CHECK(got[1].value == std::optional<std::string_view>(""));
  CHECK(got[2].name == "null");
  CHECK(!got[2].value.has_value());

  const auto& r1 = (*batch)[1];
  CHECK(!r1.has_key());
  CHECK(!r1.key().has_value());
  CHECK(r1.is_tombstone());
  CHECK(!r1.value().has_value());
  CHECK(r1.headers().empty());

  const auto& r2 = (*batch)[2];
  CHECK(r2.has_key());
  CHECK(r2.key() == std::optional<std::string_view>(""));
  CHECK(!r2.is_tombstone());
  CHECK(r2.value() == std::optional<std::string_view>(""));
  CHECK(batch->next_offset() == 3);
}

TEST_CASE("batches mixing every field shape read back field for field and after a reopen",
          "[log][format]") {
  // The encoder has a short path (no headers, stamped by the log) and a general one, inline
  // varints of one and two bytes with a loop beyond, and inline copies of up to 16 bytes:
  // this crosses each boundary, switching paths in the middle of batches, and checks every
  // field; the reopen checks every batch's CRC.
  TempDir dir;
  const std::int64_t t0 = 1'700'000'000'000;
  auto clock = std::make_shared<ManualClock>(t0);
  LogConfig cfg;
  cfg.clock = clock;
  cfg.max_record_bytes = 64 << 10;
  auto log = open_log(dir.path(), cfg);

  struct Expected {
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::vector<std::pair<std::string, std::optional<std::string>>> headers;
    std::int64_t timestamp_ms;
  };
  const std::size_t key_sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 40, 127, 200};
  const std::size_t value_sizes[] = {0,     1,     100,   126,   127, 128, 16381,
                                     16382, 16383, 16384, 20000, 3,   50};
  const std::size_t batch_sizes[] = {1, 2, 64, 127, 128, 129, 300, 1, 5};
  std::vector<Expected> expected;
  std::uint64_t seq = 0;
  for (const std::size_t n : batch_sizes) {
    std::vector<Expected> batch;
    for (std::size_t i = 0; i < n; ++i, ++seq) {
      Expected e;
      if (seq % 7 != 3) e.key = value_for(static_cast<std::int64_t>(seq), key_sizes[seq % 15]);
      if (seq % 11 != 5)
        e.value = value_for(static_cast<std::int64_t>(seq) + 1, value_sizes[seq % 13]);
      if (seq % 9 == 4) {
        e.headers.push_back({"h", std::string("x")});
        e.headers.push_back({"", std::nullopt});
        e.headers.push_back({std::string(130, 'n'), std::string(20, 'v')});
      }
      // Mostly stamped by the log; else earlier or later than its time, by less and more than
      // the 63 ms a one-byte zigzag delta holds.
      const std::int64_t stamps[] = {rill::storage::kNoTimestamp, t0 - 100, t0 + 5, t0 + 70, 0};
      e.timestamp_ms = seq % 5 == 2 ? stamps[(seq / 5) % 5] : rill::storage::kNoTimestamp;
      batch.push_back(std::move(e));
    }
    std::vector<std::vector<Header>> headers(batch.size());
    std::vector<Record> records;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      for (const auto& [name, value] : batch[i].headers) {
        headers[i].push_back(
            {name, value ? std::optional<std::string_view>(*value) : std::nullopt});
      }
      Record r;
      if (batch[i].key) r.key = *batch[i].key;
      if (batch[i].value) r.value = *batch[i].value;
      r.headers = headers[i];
      r.timestamp_ms = batch[i].timestamp_ms;
      records.push_back(r);
    }
    auto at = log->append_batch(records);
    INFO((at ? std::string() : at.error().to_string()));
    REQUIRE(at.has_value());
    REQUIRE(at->offset == static_cast<std::int64_t>(expected.size()));
    for (auto& e : batch) {
      if (e.timestamp_ms == rill::storage::kNoTimestamp) e.timestamp_ms = clock->now_ms();
      expected.push_back(std::move(e));
    }
    clock->advance_ms(3);
  }

  const auto check = [&](const Log& l) {
    RecordBatch batch;
    std::int64_t next = 0;
    while (next < l.end_offset()) {
      auto r = l.read_into(next, batch, 1000);
      INFO((r ? std::string() : r.error().to_string()));
      REQUIRE(r.has_value());
      REQUIRE(!batch.empty());
      for (const auto& rec : batch) {
        INFO("offset " << rec.offset());
        REQUIRE(rec.offset() == next);
        const Expected& e = expected[static_cast<std::size_t>(next)];
        CHECK(rec.key() == (e.key ? std::optional<std::string_view>(*e.key) : std::nullopt));
        CHECK(rec.value() == (e.value ? std::optional<std::string_view>(*e.value) : std::nullopt));
        CHECK(rec.timestamp_ms() == e.timestamp_ms);
        std::vector<Header> got(rec.headers().begin(), rec.headers().end());
        REQUIRE(got.size() == e.headers.size());
        for (std::size_t h = 0; h < got.size(); ++h) {
          CHECK(got[h].name == e.headers[h].first);
          CHECK(got[h].value == (e.headers[h].second
                                     ? std::optional<std::string_view>(*e.headers[h].second)
                                     : std::nullopt));
        }
        ++next;
      }
    }
    CHECK(next == static_cast<std::int64_t>(expected.size()));
  };
  check(*log);
  log.reset();
  log = open_log(dir.path(), cfg);
  CHECK(log->recovery().clean());
  check(*log);
}

TEST_CASE("reads are zero-copy views into the segment mapping", "[log]") {
  TempDir dir;
  auto log = open_log(dir.path());
  append_value(*log, 0);
  auto batch = log->read(0, 1);
  REQUIRE(batch.has_value());
  const auto segs = log->segments();
  const auto* data = reinterpret_cast<const char*>(segs.back()->data());
  const char* value = (*batch)[0].value()->data();
  CHECK(value > data);
  CHECK(value < data + segs.back()->capacity_bytes());
}

TEST_CASE("a batch append gives consecutive offsets in one segment", "[log]") {
  TempDir dir;
  auto log = open_log(dir.path(), small_segments());
  append_value(*log, 0);
  std::vector<std::string> values;
  for (int i = 1; i <= 80; ++i) values.push_back(value_for(i));  // more than a segment holds
  std::vector<Record> records;
  for (const auto& v : values) records.push_back({.key = std::string_view("key"), .value = v});
  // A batch is sized by its records' frame_size (an upper bound, see record.hpp) less the
  // batch header each counts, plus one header and padding: the most of these records that
  // fit an empty 8 KiB segment.
  const std::size_t per_record = rill::storage::frame_size(records[0]) - kFrameHeaderSize;
  const std::size_t room =
      8192 - kFileHeaderSize - rill::storage::align_frame(kFrameHeaderSize + 7);
  const std::size_t fit = room / per_record;

  SECTION("a batch larger than a segment is refused whole") {
    REQUIRE(records.size() > fit);
    auto info = log->append_batch(records);
    REQUIRE(!info.has_value());
    CHECK(info.error().code() == ErrorCode::kRecordTooLarge);
    CHECK(log->end_offset() == 1);
  }
  SECTION("a batch that does not fit the active segment rolls it first") {
    records.resize(fit);  // fits a fresh segment, not the rest of one holding a record
    REQUIRE(fit * per_record > room - log->segments().back()->end_position() + kFileHeaderSize);
    const auto n = static_cast<std::int64_t>(fit);
    for (int round = 0; round < 3; ++round) {
      const auto before = log->segment_count();
      auto info = log->append_batch(records);
      REQUIRE(info.has_value());
      CHECK(info->offset == 1 + round * n);
      CHECK(info->count == n);
      CHECK(log->segment_count() == before + 1);
      CHECK(log->segments().back()->base_offset() == static_cast<std::uint64_t>(info->offset));
      for (std::size_t i = 0; i < records.size(); ++i) {  // next round's values
        values[i] = value_for(info->offset + n + static_cast<std::int64_t>(i));
        records[i].value = values[i];
      }
    }
    CHECK(log->end_offset() == 1 + 3 * n);
    check_all(*log, 0);
  }
}

TEST_CASE("a batch with one invalid record appends nothing", "[log][errors]") {
  TempDir dir;
  auto log = open_log(dir.path(), small_segments());
  const std::string big(2000, 'x');
  const Record records[] = {{.value = std::string_view("ok")}, {.value = big}};
  auto info = log->append_batch(records);
  REQUIRE(!info.has_value());
  CHECK(info.error().code() == ErrorCode::kRecordTooLarge);
  CHECK(log->end_offset() == 0);
}

TEST_CASE("every offset is readable after several segment rolls", "[log]") {
  TempDir dir;
  auto log = open_log(dir.path(), small_segments());
  const int n = 1000;
  for (int i = 0; i < n; ++i) append_value(*log, i, 20 + static_cast<std::size_t>(i % 90));
  REQUIRE(log->segment_count() >= 5);

  SECTION("one record at a time, from every offset") {
    for (int i = 0; i < n; ++i) {
      auto b = log->read(i, 1);
      REQUIRE(b.has_value());
      REQUIRE(b->size() == 1);
      REQUIRE((*b)[0].offset() == i);
      REQUIRE(*(*b)[0].value() == value_for(i, 20 + static_cast<std::size_t>(i % 90)));
    }
  }
  SECTION("a batch stops at its segment's end and resumes in the next") {
    std::int64_t next = 0;
    int batches = 0;
    while (next < n) {
      auto b = log->read(next, 100000);
      REQUIRE(b.has_value());
      REQUIRE(!b->empty());
      next = b->next_offset();
      ++batches;
    }
    CHECK(static_cast<std::size_t>(batches) == log->segment_count());
  }
  SECTION("max_bytes bounds a batch but always yields one record") {
    auto b = log->read(0, 1000, 1);
    REQUIRE(b.has_value());
    CHECK(b->size() == 1);
    auto c = log->read(0, 1000, 300);
    REQUIRE(c.has_value());
    std::size_t bytes = 0;
    for (const auto& r : *c) bytes += r.stored_bytes();
    CHECK(bytes <= 300);
    CHECK(c->size() > 1);
  }
}

TEST_CASE("segments are files named by their 20-digit base offset", "[log][format]") {
  TempDir dir;
  {
    auto log = open_log(dir.path(), small_segments());
    for (int i = 0; i < 300; ++i) append_value(*log, i);
    const auto segs = log->segments();
    REQUIRE(segs.size() >= 3);
    const auto logs = rill_test::files_with_suffix(dir.path(), ".log");
    REQUIRE(logs.size() == segs.size());
    for (std::size_t i = 0; i < segs.size(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "/%020llu.log",
                    static_cast<unsigned long long>(segs[i]->base_offset()));
      CHECK(logs[i] == dir.path() + name);
      CHECK(rill_test::file_size(dir.path() + name) > 0);
    }
    CHECK(segs[0]->base_offset() == 0);
    // The active segment is preallocated; sealed ones give their unused tail back.
    CHECK(rill_test::file_size(logs.back()) == 8192);
    CHECK(rill_test::file_size(logs.front()) == segs.front()->size_bytes());
    CHECK(rill_test::files_with_suffix(dir.path(), ".index").size() == segs.size());
    CHECK(rill_test::files_with_suffix(dir.path(), ".timeindex").size() == segs.size());
  }
}

TEST_CASE("a reopened log keeps every record and continues its offsets", "[log][recovery]") {
  TempDir dir;
  {
    auto log = open_log(dir.path(), small_segments());
    for (int i = 0; i < 500; ++i) append_value(*log, i);
  }
  {
    auto log = open_log(dir.path(), small_segments());
    CHECK(log->recovery().clean());
    CHECK(log->recovery().detail.empty());
    REQUIRE(log->end_offset() == 500);
    check_all(*log, 0);
    for (int i = 500; i < 700; ++i) append_value(*log, i);
  }
  auto log = open_log(dir.path(), small_segments());
  CHECK(log->recovery().clean());
  REQUIRE(log->end_offset() == 700);
  check_all(*log, 0);
}

TEST_CASE("a reopened log rebuilds a missing index", "[log][recovery]") {
  TempDir dir;
  {
    auto log = open_log(dir.path(), small_segments());
    for (int i = 0; i < 300; ++i) append_value(*log, i);
  }
  const auto indexes = rill_test::files_with_suffix(dir.path(), ".index");
  REQUIRE(indexes.size() >= 3);
  std::filesystem::remove(indexes[0]);
  auto log = open_log(dir.path(), small_segments());
  CHECK(log->recovery().indexes_rebuilt >= 1);
  CHECK(std::filesystem::exists(indexes[0]));
  for (int i = 0; i < 300; ++i) {
    auto b = log->read(i, 1);
    REQUIRE(b.has_value());
    REQUIRE((*b)[0].offset() == i);
  }
}

TEST_CASE("offset_for_time finds the first record at or after a timestamp", "[log][time]") {
  TempDir dir;
  auto log = open_log(dir.path(), small_segments());
  // Mostly increasing timestamps with some going back in time, as producers allow.
  std::vector<std::int64_t> ts;
  for (int i = 0; i < 600; ++i) {
    const std::int64_t t = 1'000'000 + i * 10 - ((i % 7 == 3) ? 55 : 0);
    ts.push_back(t);
    append_value(*log, i, 60, t);
  }
  REQUIRE(log->segment_count() >= 3);
  auto brute = [&](std::int64_t target) -> std::optional<std::int64_t> {
    for (std::size_t i = 0; i < ts.size(); ++i) {
      if (ts[i] >= target) return static_cast<std::int64_t>(i);
    }
    return std::nullopt;
  };
  for (std::int64_t target = 999'000; target <= 1'006'100; target += 7) {
    CAPTURE(target);
    REQUIRE(log->offset_for_time(target) == brute(target));
  }
  CHECK(log->offset_for_time(0) == std::optional<std::int64_t>(0));
  CHECK(!log->offset_for_time(2'000'000).has_value());
}

TEST_CASE("records without a timestamp take the log clock's time", "[log][time]") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(5000);
  LogConfig cfg;
  cfg.clock = clock;
  auto log = open_log(dir.path(), cfg);
  auto a = append_value(*log, 0);
  clock->advance_ms(250);
  append_value(*log, 1);
  append_value(*log, 2, 100, 42);
  auto b = log->read(0, 10);
  REQUIRE(b.has_value());
  CHECK(a.timestamp_ms == 5000);
  CHECK((*b)[0].timestamp_ms() == 5000);
  CHECK((*b)[1].timestamp_ms() == 5250);
  CHECK((*b)[2].timestamp_ms() == 42);
}

TEST_CASE("a segment rolls once it is older than segment_ms", "[log][roll]") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(0);
  LogConfig cfg;
  cfg.clock = clock;
  cfg.segment_ms = 1000;
  auto log = open_log(dir.path(), cfg);
  append_value(*log, 0);
  clock->advance_ms(999);
  append_value(*log, 1);
  CHECK(log->segment_count() == 1);
  clock->advance_ms(1);
  append_value(*log, 2);
  CHECK(log->segment_count() == 2);
  CHECK(log->segments().back()->base_offset() == 2);
  clock->advance_ms(5000);  // an idle log does not roll an empty segment
  CHECK(log->segment_count() == 2);
  check_all(*log, 0);
}

TEST_CASE("retention by size deletes the oldest segments, never the active one",
          "[log][retention]") {
  TempDir dir;
  LogConfig cfg = small_segments();
  cfg.retention_bytes = 20000;
  auto log = open_log(dir.path(), cfg);
  for (int i = 0; i < 1000; ++i) append_value(*log, i);  // ~150 KB of frames
  auto report = log->enforce_retention();
  REQUIRE(report.has_value());
  std::uint64_t total = 0;
  for (const auto& s : log->segments()) total += s->size_bytes();
  CHECK(total >= 20000);
  CHECK(total < 20000 + 8192);  // at most one segment over the limit, as in Kafka
  CHECK(log->start_offset() > 0);
  CHECK(log->start_offset() == static_cast<std::int64_t>(log->segments().front()->base_offset()));
  CHECK(rill_test::files_with_suffix(dir.path(), ".log").size() == log->segment_count());
  check_all(*log, log->start_offset());
  auto gone = log->read(0, 1);
  REQUIRE(!gone.has_value());
  CHECK(gone.error().code() == ErrorCode::kOutOfRange);

  SECTION("a tiny limit still keeps the active segment") {
    LogConfig tiny = small_segments();
    tiny.retention_bytes = 0;
    TempDir d2;
    auto l2 = open_log(d2.path(), tiny);
    for (int i = 0; i < 300; ++i) append_value(*l2, i);
    REQUIRE(l2->enforce_retention().has_value());
    CHECK(l2->segment_count() == 1);
    CHECK(l2->end_offset() == 300);
    check_all(*l2, l2->start_offset());
  }
}

TEST_CASE("retention by time deletes segments whose newest record is too old", "[log][retention]") {
  TempDir dir;
  auto clock = std::make_shared<ManualClock>(1'000'000);
  LogConfig cfg = small_segments();
  cfg.clock = clock;
  cfg.retention_ms = 60'000;
  auto log = open_log(dir.path(), cfg);
  for (int i = 0; i < 200; ++i) append_value(*log, i);
  const auto old_segments = log->segment_count();
  REQUIRE(old_segments >= 2);
  clock->advance_ms(30'000);
  for (int i = 200; i < 400; ++i) append_value(*log, i);
  REQUIRE(log->enforce_retention().has_value());
  CHECK(log->start_offset() == 0);  // nothing is 60 s old yet

  clock->advance_ms(30'001);  // the first 200 records are now older than 60 s
  auto report = log->enforce_retention();
  REQUIRE(report.has_value());
  CHECK(report->segments_deleted >= old_segments - 1);
  CHECK(log->start_offset() > 0);
  CHECK(log->start_offset() <= 200);
  check_all(*log, log->start_offset());

  clock->advance_ms(1'000'000);  // everything is old: all but the active segment go
  REQUIRE(log->enforce_retention().has_value());
  CHECK(log->segment_count() == 1);
  CHECK(log->end_offset() == 400);
}

TEST_CASE("a reader holding a deleted segment keeps valid memory", "[log][retention]") {
  TempDir dir;
  LogConfig cfg = small_segments();
  cfg.retention_bytes = 0;  // keep only the active segment
  auto log = open_log(dir.path(), cfg);
  for (int i = 0; i < 300; ++i) append_value(*log, i);
  const std::int64_t first = log->start_offset();
  const std::string first_file = log->segments().front()->log_path();
  auto held = log->read(first, 1000);
  REQUIRE(held.has_value());
  const std::size_t n = held->size();
  REQUIRE(n > 0);
  for (int i = 300; i < 600; ++i) append_value(*log, i);  // rolls; retention drops `first`
  REQUIRE(log->start_offset() > first + static_cast<std::int64_t>(n));
  REQUIRE(!std::filesystem::exists(first_file));
  for (std::size_t i = 0; i < n; ++i) {  // the mapping outlives the file
    CHECK(*(*held)[i].value() == value_for(first + static_cast<std::int64_t>(i)));
  }
}

TEST_CASE("retention survives a reopen", "[log][retention][recovery]") {
  TempDir dir;
  LogConfig cfg = small_segments();
  cfg.retention_bytes = 10000;
  std::int64_t start;
  {
    auto log = open_log(dir.path(), cfg);
    for (int i = 0; i < 500; ++i) append_value(*log, i);
    REQUIRE(log->enforce_retention().has_value());
    start = log->start_offset();
    REQUIRE(start > 0);
  }
  auto log = open_log(dir.path(), cfg);
  CHECK(log->recovery().clean());
  CHECK(log->start_offset() == start);
  CHECK(log->end_offset() == 500);
  check_all(*log, start);
  append_value(*log, 500);
}

TEST_CASE("offsets outside the log are out of range", "[log][errors]") {
  TempDir dir;
  auto log = open_log(dir.path());
  for (int i = 0; i < 5; ++i) append_value(*log, i);
  auto past = log->read(6, 1);
  REQUIRE(!past.has_value());
  CHECK(past.error().code() == ErrorCode::kOutOfRange);
  CHECK(past.error().message().find("[0, 5]") != std::string::npos);
  auto negative = log->read(-1, 1);
  REQUIRE(!negative.has_value());
  CHECK(negative.error().code() == ErrorCode::kOutOfRange);
  auto at_end = log->read(5, 1);
  REQUIRE(at_end.has_value());
  CHECK(at_end->empty());
  CHECK(at_end->next_offset() == 5);
}

TEST_CASE("a record over max_record_bytes is refused and changes nothing", "[log][errors]") {
  TempDir dir;
  LogConfig cfg;
  cfg.max_record_bytes = 1000;
  auto log = open_log(dir.path(), cfg);
  append_value(*log, 0);
  // A record counts as the batch of it alone with its timestamp at its widest (frame_size):
  // 40 (batch header) + 2 (length) + 1 (offset delta, counted as 3) + 10 (timestamp) + 4 (key)
  // + 2 (value length) + value + 1 (header count) = 62 + value bytes.
  const std::string fits(1000 - 62, 'a');
  const std::string too_big(1000 - 61, 'a');
  CHECK(rill::storage::frame_size({.key = std::string_view("key"), .value = fits}) == 1000);
  auto bad = log->append({.key = std::string_view("key"), .value = too_big});
  REQUIRE(!bad.has_value());
  CHECK(bad.error().code() == ErrorCode::kRecordTooLarge);
  CHECK(log->end_offset() == 1);
  auto ok = log->append({.key = std::string_view("key"), .value = fits});
  REQUIRE(ok.has_value());
  CHECK(ok->offset == 1);
}

TEST_CASE("a negative timestamp is refused", "[log][errors]") {
  TempDir dir;
  auto log = open_log(dir.path());
  auto r = log->append({.value = std::string_view("v"), .timestamp_ms = -5});
  REQUIRE(!r.has_value());
  CHECK(r.error().code() == ErrorCode::kInvalidArgument);
  CHECK(log->end_offset() == 0);
}

TEST_CASE("an invalid configuration is refused", "[log][errors]") {
  TempDir dir;
  LogConfig tiny;
  tiny.segment_bytes = 10;
  CHECK(Log::open(dir.path(), tiny).error().code() == ErrorCode::kInvalidArgument);
  LogConfig record_bigger_than_segment;
  record_bigger_than_segment.segment_bytes = 4096;
  record_bigger_than_segment.max_record_bytes = 8192;
  CHECK(Log::open(dir.path(), record_bigger_than_segment).error().code() ==
        ErrorCode::kInvalidArgument);
  LogConfig every_zero;
  every_zero.durability = Durability::every(0);
  CHECK(Log::open(dir.path(), every_zero).error().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("a second writer on the same directory is refused, naming the holder", "[log][lock]") {
  TempDir dir;
  auto log = open_log(dir.path());
  SECTION("in the same process") {
    auto second = Log::open(dir.path());
    REQUIRE(!second.has_value());
    CHECK(second.error().code() == ErrorCode::kLocked);
    CHECK(second.error().message().find(std::to_string(::getpid())) != std::string::npos);
  }
  SECTION("in another process") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto second = Log::open(dir.path());
      const bool refused =
          !second.has_value() && second.error().code() == ErrorCode::kLocked &&
          second.error().message().find(std::to_string(::getppid())) != std::string::npos;
      ::_exit(refused ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  SECTION("and allowed again once the holder closes") {
    log.reset();
    auto again = Log::open(dir.path());
    CHECK(again.has_value());
  }
}

TEST_CASE("a full disk fails the roll with kNoSpace and leaves the log unchanged",
          "[log][errors]") {
  TempDir dir;
  // RLIMIT_FSIZE stands in for a full disk: posix_fallocate past it fails with EFBIG, the
  // same path as ENOSPC. Done in a child so the limit does not touch the test runner.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    LogConfig cfg = small_segments(64 * 1024);
    cfg.prefault_bytes = 0;
    auto log = Log::open(dir.path(), cfg);
    if (!log) ::_exit(10);
    struct rlimit lim = {32 * 1024, 32 * 1024};  // below one segment's 64 KiB
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(11);
    // Fill the first segment, then the roll needs a new 64 KiB file: refused.
    std::int64_t i = 0;
    for (;; ++i) {
      const std::string v = value_for(i);
      auto r = (*log)->append({.value = v});
      if (!r) {
        if (r.error().code() != ErrorCode::kNoSpace) ::_exit(12);
        break;
      }
    }
    if ((*log)->end_offset() != i || (*log)->segment_count() != 1) ::_exit(13);
    const std::string v = value_for(i);
    auto again = (*log)->append({.value = v});  // still refused
    if (again || again.error().code() != ErrorCode::kNoSpace) ::_exit(14);
    // Everything acknowledged is still there, and no half-made segment was left behind.
    auto b = (*log)->read(0, 100000);
    if (!b || static_cast<std::int64_t>(b->size()) != i) ::_exit(15);
    if (rill_test::files_with_suffix(dir.path(), ".log").size() != 1) ::_exit(16);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  auto log = open_log(dir.path(), small_segments(64 * 1024));
  CHECK(log->recovery().clean());
  check_all(*log, 0);
}

TEST_CASE("wait_for returns at once, times out, or wakes on append", "[log][wait]") {
  TempDir dir;
  auto log = open_log(dir.path());
  append_value(*log, 0);
  CHECK(log->wait_for(0, std::chrono::milliseconds(0)).has_value());

  auto timed_out = log->wait_for(1, std::chrono::milliseconds(20));
  REQUIRE(!timed_out.has_value());
  CHECK(timed_out.error().code() == ErrorCode::kTimeout);

  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    auto r = log->wait_for(1, std::chrono::seconds(30));
    woke.store(r.has_value());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto t0 = std::chrono::steady_clock::now();
  append_value(*log, 1);
  waiter.join();
  CHECK(woke.load());
  // Woken by the append, not by the 30 s timeout.
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

TEST_CASE("a wait of hours::max() waits for the append", "[log][wait]") {
  // The timeout went through nanoseconds and then now() + timeout, both overflowing: a wait
  // meant as "forever" returned kTimeout at once.
  TempDir dir;
  auto log = open_log(dir.path());
  std::thread appender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    append_value(*log, 0);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = log->wait_for(0, std::chrono::hours::max());
  appender.join();
  INFO((r ? std::string() : r.error().to_string()));
  CHECK(r.has_value());
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(40));
  CHECK(log->wait_for(0, std::chrono::nanoseconds::max()).has_value());  // there: at once
}

TEST_CASE("closing a log wakes its waiters and refuses appends", "[log][wait]") {
  TempDir dir;
  auto log = open_log(dir.path());
  std::atomic<int> code{-1};
  std::thread waiter([&] {
    auto r = log->wait_for(0, std::chrono::seconds(30));
    code.store(r ? 0 : static_cast<int>(r.error().code()));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  log->close();
  waiter.join();
  CHECK(code.load() == static_cast<int>(ErrorCode::kClosed));
  auto r = log->append({.value = std::string_view("late")});
  REQUIRE(!r.has_value());
  CHECK(r.error().code() == ErrorCode::kClosed);
}

TEST_CASE("durability policies sync when they say they do", "[log][durability]") {
  TempDir dir;
  SECTION("os cache: nothing is synced until flush()") {
    auto log = open_log(dir.path());
    for (int i = 0; i < 10; ++i) append_value(*log, i);
    CHECK(log->durable_offset() == 0);
    REQUIRE(log->flush().has_value());
    CHECK(log->durable_offset() == 10);
  }
  SECTION("every append") {
    LogConfig cfg = small_segments();
    cfg.durability = Durability::every_append();
    auto log = open_log(dir.path(), cfg);
    for (int i = 0; i < 100; ++i) {
      append_value(*log, i);
      REQUIRE(log->durable_offset() == i + 1);
    }
  }
  SECTION("every N records") {
    LogConfig cfg;
    cfg.durability = Durability::every(10);
    auto log = open_log(dir.path(), cfg);
    for (int i = 0; i < 25; ++i) append_value(*log, i);
    CHECK(log->durable_offset() == 20);
  }
  SECTION("on an interval, with no further appends") {
    LogConfig cfg;
    cfg.durability = Durability::interval(10);
    auto log = open_log(dir.path(), cfg);
    for (int i = 0; i < 5; ++i) append_value(*log, i);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (log->durable_offset() < 5 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(log->durable_offset() == 5);
  }
}

TEST_CASE("an in-memory log behaves like an on-disk one", "[log][memory]") {
  auto clock = std::make_shared<ManualClock>(0);
  LogConfig cfg = small_segments();
  cfg.clock = clock;
  cfg.retention_ms = 1000;
  auto opened = Log::open_in_memory(cfg);
  REQUIRE(opened.has_value());
  auto& log = **opened;
  for (int i = 0; i < 500; ++i) append_value(log, i);
  CHECK(log.segment_count() >= 3);
  CHECK(log.directory().empty());
  check_all(log, 0);
  CHECK(log.offset_for_time(0) == std::optional<std::int64_t>(0));
  clock->advance_ms(2000);
  REQUIRE(log.enforce_retention().has_value());
  CHECK(log.segment_count() == 1);
  check_all(log, log.start_offset());
}

TEST_CASE("a conditional append writes only when its precondition holds under the lock",
          "[log][append]") {
  auto opened = Log::open_in_memory();
  REQUIRE(opened.has_value());
  Log& log = **opened;
  Record r;
  r.value = std::string_view("v");
  auto first = log.append_batch({&r, 1}, Log::end_offset_is(0));
  REQUIRE(first.has_value());
  auto stale = log.append_batch({&r, 1}, Log::end_offset_is(0));
  REQUIRE(!stale.has_value());
  CHECK(stale.error().code() == ErrorCode::kConflict);
  CHECK(log.end_offset() == 1);
  auto empty = log.append_batch({}, Log::end_offset_is(5));
  REQUIRE(!empty.has_value());
  CHECK(empty.error().code() == ErrorCode::kConflict);
  auto at = log.append_batch({&r, 1}, Log::end_offset_is(1));
  REQUIRE(at.has_value());
  CHECK(at->offset == 1);
  CHECK(log.end_offset() == 2);
}

TEST_CASE("the smallest max_record_bytes a log takes lets the smallest record in",
          "[log][config]") {
  // An append checks a bound of a record's frame (the timestamp counted at its widest), so a
  // max_record_bytes under the smallest record's bound would refuse every record: refused.
  LogConfig c;
  c.segment_bytes = 8192;
  c.prefault_bytes = 0;
  const std::size_t smallest = rill::storage::frame_size(Record{});
  c.max_record_bytes = smallest - 1;
  auto refused = Log::open_in_memory(c);
  REQUIRE(!refused.has_value());
  CHECK(refused.error().code() == ErrorCode::kInvalidArgument);
  c.max_record_bytes = smallest;
  auto opened = Log::open_in_memory(c);
  REQUIRE(opened.has_value());
  CHECK((*opened)->append(Record{}).has_value());  // no key, no value, no headers
  Record one;
  one.value = std::string_view("v");
  auto too_big = (*opened)->append(one);
  REQUIRE(!too_big.has_value());
  CHECK(too_big.error().code() == ErrorCode::kRecordTooLarge);
}

TEST_CASE("CoarseClock never leads the system clock, trails it by little, and advances",
          "[clock]") {
  rill::CoarseClock coarse;
  rill::SystemClock precise;
  // The coarse clock is the kernel's time at its last tick. A tick is 1 to 4 ms, but a tick can
  // come late (a loaded VM, a tickless idle CPU): CI once saw one tick plus 1 ms. So the lower
  // bound checked here is loose (a stale or wrong clock would miss it by far more), and the
  // upper bound is exact: the coarse time is never ahead of the precise time read after it.
  constexpr std::int64_t kMaxLagMs = 1000;
  for (int i = 0; i < 1000; ++i) {
    const std::int64_t before = precise.now_ms();
    const std::int64_t c = coarse.now_ms();
    const std::int64_t after = precise.now_ms();
    CHECK(c <= after);
    CHECK(c >= before - kMaxLagMs);
  }
  const std::int64_t start = coarse.now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  CHECK(coarse.now_ms() > start);
}

TEST_CASE("reads inside record batches return the same records checked or unchecked",
          "[log][batch]") {
  // Batches of 1 to 9 records over several segments; reads start at every offset, with record
  // and byte limits that stop inside batches. The same reads run on segments known whole
  // (written by this log: decoded without checks), and after a reopen, when the sealed
  // segments are unchecked (verify_checksums on: checked once, then trusted; off: decoded with
  // bounds checks every time).
  TempDir dir;
  const int n = 700;
  {
    auto log = open_log(dir.path(), small_segments());
    int at = 0;
    for (int size = 1; at < n; size = size % 9 + 1) {
      std::vector<std::string> values;
      std::vector<Record> records;
      for (int i = 0; i < size && at + i < n; ++i) values.push_back(value_for(at + i, 20 + i));
      for (const auto& v : values) records.push_back({.value = std::string_view(v)});
      auto info = log->append_batch(records);
      REQUIRE(info.has_value());
      REQUIRE(info->offset == at);
      at += static_cast<int>(records.size());
    }
    REQUIRE(log->segment_count() >= 3);
  }
  // The value of the record at `offset` (its batch put it at index i: size 20 + i).
  std::vector<std::string> expected;
  for (int at = 0, size = 1; at < n; size = size % 9 + 1) {
    for (int i = 0; i < size && at < n; ++i, ++at) expected.push_back(value_for(at, 20 + i));
  }
  const auto read_all = [&](const Log& log, std::size_t max_records, std::size_t max_bytes) {
    RecordBatch batch;
    for (std::int64_t from = 0; from < n; ++from) {
      std::int64_t next = from;
      for (int reads = 0; reads < 3 && next < n; ++reads) {
        auto r = log.read_into(next, batch, max_records, max_bytes);
        INFO("from " << from << " next " << next << " max_records " << max_records);
        REQUIRE(r.has_value());
        REQUIRE(!batch.empty());
        REQUIRE(batch.size() <= max_records);
        std::size_t bytes = 0;
        for (const auto& rec : batch) {
          REQUIRE(rec.offset() == next);
          REQUIRE(*rec.value() == expected[static_cast<std::size_t>(next)]);
          bytes += rec.stored_bytes();
          ++next;
        }
        if (batch.size() > 1) REQUIRE(bytes <= max_bytes);
        REQUIRE(batch.next_offset() == next);
      }
    }
  };
  for (const bool verify : {true, false}) {
    LogConfig c = small_segments();
    c.verify_checksums = verify;
    auto log = open_log(dir.path(), c);
    for (int round = 0; round < 2; ++round) {  // the second round reads what the first checked
      read_all(*log, 1, SIZE_MAX);
      read_all(*log, 4, SIZE_MAX);
      read_all(*log, 1000, SIZE_MAX);
      read_all(*log, 1000, 100);
      read_all(*log, 3, 1);
    }
  }
}

TEST_CASE("a reused batch read at a new offset starts there, after any read that returned early",
          "[log][batch]") {
  // read_into resumes where the batch's last read ended when the offset continues there. A
  // read that returned early (no records asked for, an error) left the batch's next offset at
  // its own offset but the position where the read before had ended: the next read at that
  // offset resumed there and skipped the records between.
  TempDir dir;
  auto log = open_log(dir.path(), small_segments());
  for (int i = 0; i < 200; ++i) REQUIRE(log->append({.value = value_for(i)}).has_value());
  REQUIRE(log->segment_count() >= 3);
  RecordBatch batch;
  const auto first_read_at = [&](std::int64_t offset) {
    auto r = log->read_into(offset, batch, 10);
    REQUIRE(r.has_value());
    REQUIRE(!batch.empty());
    return batch.begin()->offset();
  };
  SECTION("no records asked for") {
    REQUIRE(first_read_at(30) == 30);  // ends at 40 (or the segment's end)
    REQUIRE(log->read_into(5, batch, 0).has_value());
    CHECK(batch.next_offset() == 5);
    CHECK(first_read_at(5) == 5);
  }
  SECTION("a later segment, then back") {
    REQUIRE(first_read_at(190) == 190);
    REQUIRE(log->read_into(3, batch, 0).has_value());
    CHECK(first_read_at(3) == 3);
  }
}

}  // namespace log_test

namespace log_test {

namespace {

// A log whose background work runs only when the test calls run_once().
struct ManualLog {
  std::shared_ptr<rill::storage::Background> background =
      std::make_shared<rill::storage::Background>(rill::storage::Background::kManual);
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(1'000'000);
  TempDir dir;
  std::unique_ptr<Log> log;
  std::int64_t next = 0;  // the offset the next append() gets

  ManualLog() {
    LogConfig c;
    c.segment_bytes = 8u << 20;
    c.prefault_bytes = 256u << 10;
    c.background = background;
    c.clock = clock;
    log = open_log(dir.path(), c);
  }
  // Appends 1000-byte records until the log holds `end`.
  void append_until(std::int64_t end) {
    for (; next < end; ++next) append_value(*log, next, 1000);
  }
  rill::storage::LogCounters counters() const { return log->counters(); }
  // Bytes of the active segment faulted in so far: at its creation, then by either side.
  std::uint64_t covered() const {
    const auto c = counters();
    return rill::storage::Segment::kInitialPopulateBytes + c.prefaulted_by_worker +
           c.prefaulted_by_appenders;
  }
  // The active segment's end position (one segment here: the file header and the batches).
  std::uint64_t end_position() const { return kFileHeaderSize + counters().appended_bytes; }
  // Appends record 0 and reads it, then tells the log it waits at the end, as a consumer
  // does.
  void reader_waiting() {
    append_until(1);
    RecordBatch batch;
    REQUIRE(log->read_into(0, batch, 64).has_value());
    REQUIRE(batch.next_offset() == log->end_offset());
    log->note_reader_waiting();
  }
};

// Whether this kernel has MADV_POPULATE_WRITE (Linux 5.14+); without it rill does not prefault.
bool populate_supported() {
  auto m = rill::detail::Mapping::map_anonymous(4096);
  REQUIRE(m.has_value());
  return m->populate(0, 4096) != EINVAL;
}

#define RILL_REQUIRE_POPULATE()                                             \
  if (!populate_supported()) {                                              \
    WARN("MADV_POPULATE_WRITE is not supported here: nothing to prefault"); \
    return;                                                                 \
  }

}  // namespace

TEST_CASE("the worker faults pages in ahead of an appender that no reader waits for",
          "[log][prefault]") {
  RILL_REQUIRE_POPULATE();
  ManualLog m;
  m.append_until(400);
  // A read to the end (a scan, an index catching up) is not a reader waiting.
  check_all(*m.log, 0, 1000);
  // Past the pages faulted in at creation: appenders only ask the worker, which has not run.
  REQUIRE(m.end_position() > rill::storage::Segment::kInitialPopulateBytes);
  CHECK(m.counters().prefaulted_by_appenders == 0);
  CHECK(m.counters().prefaulted_by_worker == 0);
  m.background->run_once();
  CHECK(m.counters().prefaulted_by_appenders == 0);
  // prefault_bytes from the end position (the pages before it, past those faulted in at the
  // segment's creation, the appender faulted in by writing them).
  CHECK(m.counters().prefaulted_by_worker == (256u << 10));
}

TEST_CASE("while a reader keeps up, appenders fault pages in themselves and the worker keeps off",
          "[log][prefault]") {
  RILL_REQUIRE_POPULATE();
  ManualLog m;
  m.reader_waiting();
  m.append_until(1000);
  m.background->run_once();
  CHECK(m.counters().prefaulted_by_worker == 0);
  CHECK(m.counters().prefaulted_by_appenders > 0);
  // The appenders kept at least half of prefault_bytes faulted in ahead of themselves, a
  // 64 KiB step at a time.
  CHECK(m.covered() >= m.end_position() + (128u << 10));
  CHECK(m.covered() <= m.end_position() + (128u << 10) + (64u << 10));
  check_all(*m.log, 0, 1000);
}

TEST_CASE("a second after a reader last kept up, the worker faults pages in again",
          "[log][prefault]") {
  RILL_REQUIRE_POPULATE();
  ManualLog m;
  m.reader_waiting();
  m.append_until(300);
  m.background->run_once();  // the worker notes the reader, and keeps off
  CHECK(m.counters().prefaulted_by_worker == 0);
  const auto by_appenders = m.counters().prefaulted_by_appenders;
  CHECK(by_appenders > 0);

  m.clock->advance_ms(999);
  m.background->run_once();  // within the second: still off
  CHECK(m.counters().prefaulted_by_worker == 0);
  m.clock->advance_ms(1);
  m.background->run_once();  // a second without the reader: the worker runs ahead again
  CHECK(m.counters().prefaulted_by_worker > 0);
  // And the appenders leave it to the worker.
  m.append_until(1000);
  CHECK(m.counters().prefaulted_by_appenders == by_appenders);
  check_all(*m.log, 0, 1000);
}

TEST_CASE("an append that wakes a blocked reader makes the appenders fault pages in themselves",
          "[log][prefault][wait]") {
  RILL_REQUIRE_POPULATE();
  ManualLog m;
  std::atomic<std::int64_t> waited_for{0};
  std::atomic<bool> stop{false};
  rill::storage::Notifier bell;
  std::thread reader;
  SECTION("in wait_for") {
    reader = std::thread([&] {
      for (std::int64_t at = 0; !stop.load();) {
        if (m.log->wait_for(at, std::chrono::milliseconds(50))) at = m.log->end_offset();
        waited_for.store(at);
      }
    });
  }
  SECTION("on a notifier, as a consumer does") {
    m.log->add_notifier(&bell);
    reader = std::thread([&] {
      for (std::int64_t at = 0; !stop.load();) {
        const auto ticket = bell.prepare();
        if (m.log->end_offset() == at) bell.wait(ticket, std::chrono::milliseconds(50));
        at = m.log->end_offset();
        waited_for.store(at);
      }
    });
  }
  // Until an append finds the reader blocked in wait_for (it is at the end, so every append
  // from then on wakes it), lagging appends only ask the worker; it never runs here.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (m.counters().prefaulted_by_appenders == 0 && std::chrono::steady_clock::now() < give_up) {
    m.append_until(m.next + 1);
    while (waited_for.load() < m.next && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
  }
  stop.store(true);
  reader.join();
  m.log->remove_notifier(&bell);
  CHECK(m.counters().prefaulted_by_appenders > 0);
  m.background->run_once();
  CHECK(m.counters().prefaulted_by_worker == 0);
  check_all(*m.log, 0, 1000);
}

TEST_CASE("a segment prefaulted to its end asks the worker for nothing more", "[log][prefault]") {
  // Near a segment's end (all of it when prefault_bytes is two segments or more) every append
  // found prefaulting due, because prefaulted_to cannot pass the segment's capacity: each one
  // after a worker round woke the worker again, which then ran rounds back to back.
  RILL_REQUIRE_POPULATE();
  auto background = std::make_shared<rill::storage::Background>(rill::storage::Background::kManual);
  TempDir dir;
  LogConfig c;
  c.segment_bytes = 1u << 20;
  c.max_record_bytes = 4096;
  c.prefault_bytes = 4u << 20;  // more than the segment: it is prefaulted whole
  c.background = background;
  auto log = open_log(dir.path(), c);
  append_value(*log, 0, 1000);
  for (int i = 0; i < 3; ++i) background->run_once();  // the worker prefaults to the end
  const auto before = background->wakes();
  for (std::int64_t i = 1; i <= 20; ++i) {
    append_value(*log, i, 1000);
    background->run_once();  // a round between appends, as a running worker gives
  }
  CHECK(log->segment_count() == 1);
  CHECK(background->wakes() == before);
}

TEST_CASE("faulting in pages past the end of a truncated file fails without a signal",
          "[log][prefault]") {
  RILL_REQUIRE_POPULATE();
  TempDir dir;
  auto f = rill::detail::File::open(dir.path() + "/f", O_RDWR | O_CREAT);
  REQUIRE(f.has_value());
  REQUIRE(f->allocate(64u << 10).has_value());
  auto map = rill::detail::Mapping::map_file(*f, 64u << 10, true);
  REQUIRE(map.has_value());
  CHECK(map->populate(0, 64u << 10) == 0);
  // What a segment sealed by a roll looks like to a prefault already under way.
  REQUIRE(f->truncate(4096).has_value());
  const int err = map->populate(8192, 64u << 10);
  CHECK(err != 0);
  CHECK(err != EINVAL);  // EINVAL would turn prefaulting off for good
  CHECK(map->populate(0, 4096) == 0);
}

}  // namespace log_test
