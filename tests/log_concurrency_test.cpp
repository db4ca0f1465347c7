// Many appenders and readers on one log: dense order, intact bytes, no lost wake-ups.
// Runs under TSan in CI (label `concurrency`).
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "rill/rill.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace log_concurrency_test {

using rill::ErrorCode;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::Record;
using rill::storage::RecordBatch;
using rill_test::TempDir;

namespace {

// Key: writer id and sequence number. Value: bytes derived from both, of a length that varies.
struct Stamp {
  std::uint32_t writer;
  std::uint32_t seq;
};

std::string make_value(Stamp s) {
  const std::size_t len = 16 + (s.seq * 7 + s.writer * 13) % 200;
  std::string v(len, '\0');
  std::uint32_t x = s.writer * 0x9E3779B9u + s.seq * 0x85EBCA6Bu + 1;
  for (auto& c : v) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return v;
}

std::string make_key(Stamp s) {
  std::string k(sizeof s, '\0');
  std::memcpy(k.data(), &s, sizeof s);
  return k;
}

struct ReaderResult {
  std::int64_t records = 0;
  std::string failure;
};

// Reads [0, total) as it is appended, checking dense offsets, per-writer order and bytes.
void read_everything(const Log& log, std::int64_t total, std::uint32_t writers, ReaderResult& out) {
  std::vector<std::int64_t> last_seq(writers, -1);
  RecordBatch batch;
  std::int64_t next = 0;
  while (next < total) {
    auto waited = log.wait_for(next, std::chrono::seconds(60));
    if (!waited) {
      out.failure = "wait_for(" + std::to_string(next) + "): " + waited.error().to_string();
      return;
    }
    auto r = log.read_into(next, batch, 256);
    if (!r) {
      out.failure = "read_into(" + std::to_string(next) + "): " + r.error().to_string();
      return;
    }
    for (const auto& rec : batch) {
      if (rec.offset() != next) {
        out.failure = "offset " + std::to_string(rec.offset()) + " where " + std::to_string(next) +
                      " was due";
        return;
      }
      Stamp s;
      const auto key = rec.key();
      if (!key || key->size() != sizeof s) {
        out.failure = "bad key at " + std::to_string(next);
        return;
      }
      std::memcpy(&s, key->data(), sizeof s);
      if (s.writer >= writers || static_cast<std::int64_t>(s.seq) != last_seq[s.writer] + 1) {
        out.failure = "writer " + std::to_string(s.writer) + " seq " + std::to_string(s.seq) +
                      " out of order at offset " + std::to_string(next);
        return;
      }
      last_seq[s.writer] = s.seq;
      if (rec.value() != std::optional<std::string_view>(make_value(s))) {
        out.failure = "bytes differ at offset " + std::to_string(next);
        return;
      }
      ++next;
      ++out.records;
    }
  }
}

}  // namespace

TEST_CASE("4 appenders and 4 readers on one log see a dense, ordered, intact sequence",
          "[log][concurrency]") {
  const std::uint32_t kWriters = 4;
  const std::uint32_t kReaders = 4;
  const std::uint32_t per_writer = rill_test::sanitizer_build() ? 4000 : 25000;
  const std::int64_t total = std::int64_t{kWriters} * per_writer;

  TempDir dir;
  LogConfig cfg;
  cfg.segment_bytes = 256 * 1024;  // many rolls during the run
  cfg.max_record_bytes = 4096;
  cfg.index_interval_bytes = 1024;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto opened = in_memory ? Log::open_in_memory(cfg) : Log::open(dir.path(), cfg);
  REQUIRE(opened.has_value());
  Log& log = **opened;

  std::vector<ReaderResult> results(kReaders);
  std::vector<std::thread> threads;
  for (std::uint32_t r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] { read_everything(log, total, kWriters, results[r]); });
  }
  std::atomic<int> append_failures{0};
  for (std::uint32_t w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::uint32_t seq = 0;
      while (seq < per_writer) {
        // Writers alternate single appends and batches of up to 16.
        const std::uint32_t n = (seq / 16) % 2 == 0 ? 1 : std::min(16u, per_writer - seq);
        std::vector<std::string> keys, values;
        std::vector<Record> records;
        for (std::uint32_t i = 0; i < n; ++i) {
          keys.push_back(make_key({w, seq + i}));
          values.push_back(make_value({w, seq + i}));
        }
        for (std::uint32_t i = 0; i < n; ++i) {
          records.push_back(
              {.key = std::string_view(keys[i]), .value = std::string_view(values[i])});
        }
        auto r = log.append_batch(records);
        if (!r || r->count != n) append_failures.fetch_add(1);
        seq += n;
      }
    });
  }
  for (auto& t : threads) t.join();

  CHECK(append_failures.load() == 0);
  CHECK(log.end_offset() == total);
  for (const auto& r : results) {
    CHECK(r.failure == "");
    CHECK(r.records == total);
  }
  CHECK(log.segment_count() > 3);
}

TEST_CASE("readers racing retention see intact records or a clean out-of-range",
          "[log][concurrency][retention]") {
  TempDir dir;
  LogConfig cfg;
  cfg.segment_bytes = 64 * 1024;
  cfg.max_record_bytes = 4096;
  cfg.retention_bytes = 128 * 1024;
  auto opened = Log::open(dir.path(), cfg);
  REQUIRE(opened.has_value());
  Log& log = **opened;
  const std::uint32_t n = rill_test::sanitizer_build() ? 5000 : 40000;

  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      RecordBatch batch;
      std::int64_t next = 0;
      while (!done.load(std::memory_order_acquire) || next < log.end_offset()) {
        auto res = log.read_into(next, batch, 128);
        if (!res) {
          if (res.error().code() != ErrorCode::kOutOfRange) bad.fetch_add(1);
          next = log.start_offset();  // fell behind retention: skip ahead, as Kafka's reset
          continue;
        }
        for (const auto& rec : batch) {
          Stamp s;
          std::memcpy(&s, rec.key()->data(), sizeof s);
          if (rec.offset() != next || s.seq != static_cast<std::uint32_t>(rec.offset()) ||
              rec.value() != std::optional<std::string_view>(make_value(s))) {
            bad.fetch_add(1);
          }
          ++next;
        }
        if (batch.empty()) (void)log.wait_for(next, std::chrono::milliseconds(5));
      }
    });
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::string k = make_key({0, i});
    const std::string v = make_value({0, i});
    REQUIRE(log.append({.key = std::string_view(k), .value = std::string_view(v)}).has_value());
  }
  done.store(true, std::memory_order_release);
  for (auto& t : readers) t.join();
  CHECK(bad.load() == 0);
  CHECK(log.start_offset() > 0);
}

TEST_CASE("no waiter misses a wake-up", "[log][concurrency][wait]") {
  // One appender trickles records; waiters block for each next offset. A lost wake-up shows as
  // a waiter stuck until its (long) timeout.
  auto opened = Log::open_in_memory({});
  REQUIRE(opened.has_value());
  Log& log = **opened;
  const std::int64_t n = rill_test::sanitizer_build() ? 500 : 3000;
  std::atomic<int> timeouts{0};
  std::vector<std::thread> waiters;
  for (int w = 0; w < 3; ++w) {
    waiters.emplace_back([&] {
      for (std::int64_t next = 0; next < n; ++next) {
        if (!log.wait_for(next, std::chrono::seconds(20))) timeouts.fetch_add(1);
      }
    });
  }
  for (std::int64_t i = 0; i < n; ++i) {
    REQUIRE(log.append({.value = std::string_view("tick")}).has_value());
    if (i % 3 == 0) std::this_thread::yield();
  }
  for (auto& t : waiters) t.join();
  CHECK(timeouts.load() == 0);
}

TEST_CASE("a notifier attached to several logs wakes on an append to any of them",
          "[log][concurrency][wait]") {
  auto a = Log::open_in_memory({});
  auto b = Log::open_in_memory({});
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  rill::storage::Notifier bell;
  (*a)->add_notifier(&bell);
  (*b)->add_notifier(&bell);
  const std::int64_t n = rill_test::sanitizer_build() ? 300 : 2000;
  std::atomic<std::int64_t> seen{0};
  std::atomic<int> long_waits{0};
  std::thread waiter([&] {
    // Waits for a+b records in total, sleeping on the one bell between checks.
    while (true) {
      const auto ticket = bell.prepare();
      const std::int64_t total = (*a)->end_offset() + (*b)->end_offset();
      seen.store(total);
      if (total >= 2 * n) break;
      const auto t0 = std::chrono::steady_clock::now();
      bell.wait(ticket, std::chrono::seconds(20));
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(10)) long_waits.fetch_add(1);
    }
  });
  for (std::int64_t i = 0; i < n; ++i) {
    REQUIRE((*a)->append({.value = std::string_view("a")}).has_value());
    REQUIRE((*b)->append({.value = std::string_view("b")}).has_value());
  }
  waiter.join();
  CHECK(long_waits.load() == 0);  // a lost wake-up would sleep the full 20 s
  CHECK(seen.load() == 2 * n);
  (*a)->remove_notifier(&bell);
  (*b)->remove_notifier(&bell);
  const auto ticket = bell.prepare();
  REQUIRE((*a)->append({.value = std::string_view("after")}).has_value());
  CHECK(bell.prepare() == ticket);  // detached: no longer rung
}

TEST_CASE("a notifier's notify() says whether it woke a sleeper", "[log][concurrency][wait]") {
  rill::storage::Notifier bell;
  CHECK_FALSE(bell.notify());  // nobody asleep
  std::atomic<bool> stop{false};
  std::thread sleeper([&] {
    while (!stop.load()) {
      const auto ticket = bell.prepare();
      if (!stop.load()) bell.wait(ticket, std::chrono::seconds(20));
    }
  });
  // Rings until it catches the sleeper asleep (or about to sleep: counted as a sleeper).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool woke = false;
  while (!woke && std::chrono::steady_clock::now() < give_up) {
    woke = bell.notify();
    if (!woke) std::this_thread::yield();
  }
  CHECK(woke);
  stop.store(true);
  (void)bell.notify();  // a sleeper wakes; one about to sleep finds its ticket stale
  sleeper.join();
  CHECK_FALSE(bell.notify());
}

namespace {

// A fault hook that fails nothing but makes each fdatasync of a segment's log file start two
// milliseconds late (about as long as the sync itself takes here): a flush that has found the
// file open waits there while appenders roll (and seal) the segment.
int slow_segment_sync(rill::detail::FileOp op, const char* path) noexcept {
  const std::string_view p(path);
  if (op == rill::detail::FileOp::kSync && p.size() > 4 && p.substr(p.size() - 4) == ".log") {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return 0;
}

struct HookGuard {
  explicit HookGuard(rill::detail::FaultHook h) { rill::detail::set_fault_hook(h); }
  ~HookGuard() { rill::detail::set_fault_hook(nullptr); }
  HookGuard(const HookGuard&) = delete;
  HookGuard& operator=(const HookGuard&) = delete;
};

}  // namespace

TEST_CASE("syncs racing rolls of small segments never fail: every append and flush succeeds",
          "[log][concurrency][durability]") {
  // A sync (Log::flush, run by every_append after the append lock is let go) may be working
  // on the segment another appender is rolling and sealing. Sealing once closed the log
  // file's descriptor under the sync: fdatasync failed with EBADF (or synced whatever reused
  // the number), and an append whose records were in the log returned kIoError.
  //  - every_append: 4 appenders, each append syncing (the case seen);
  //  - the same with the slow hook, which widens the window between the sync's check of the
  //    descriptor and its fdatasync;
  //  - with the slow hook, appenders that do not sync and a thread that flushes meanwhile:
  //    appends (and rolls) go on while each sync waits, so nearly every sync meets a roll.
  enum Mode { kEveryAppend, kEveryAppendSlow, kFlusherSlow };
  const Mode mode = GENERATE(kEveryAppend, kEveryAppendSlow, kFlusherSlow);
  CAPTURE(mode);
  const std::uint32_t kWriters = 4;
  const std::uint32_t per_writer = rill_test::sanitizer_build() ? 100 : 300;
  const std::int64_t total = std::int64_t{kWriters} * per_writer;
  TempDir dir;
  LogConfig cfg;
  cfg.segment_bytes = 8 * 1024;
  cfg.max_record_bytes = 1024;
  cfg.index_interval_bytes = 1024;
  cfg.prefault_bytes = 0;
  if (mode != kFlusherSlow) cfg.durability = rill::storage::Durability::every_append();
  auto opened = Log::open(dir.path(), cfg);
  REQUIRE(opened.has_value());
  Log& log = **opened;
  std::optional<HookGuard> hook;
  if (mode != kEveryAppend) hook.emplace(&slow_segment_sync);

  ReaderResult read;
  std::vector<std::thread> threads;
  threads.emplace_back([&] { read_everything(log, total, kWriters, read); });
  std::atomic<int> failures{0};
  std::string first_failure;  // written by the thread that failed first only
  const auto failed = [&](const rill::Error& e) {
    if (failures.fetch_add(1) == 0) first_failure = e.to_string();
  };
  std::atomic<std::uint32_t> writers_done{0};
  if (mode == kFlusherSlow) {
    threads.emplace_back([&] {
      while (writers_done.load() < kWriters) {
        if (auto r = log.flush(); !r) failed(r.error());
      }
    });
  }
  for (std::uint32_t w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (std::uint32_t seq = 0; seq < per_writer; ++seq) {
        const std::string key = make_key({w, seq});
        const std::string value = make_value({w, seq});
        auto r = log.append({.key = std::string_view(key), .value = std::string_view(value)});
        if (!r) failed(r.error());
        // Unsynced appends would all be done within the first flush; pace them.
        if (mode == kFlusherSlow) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      writers_done.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  hook.reset();

  INFO(first_failure);
  CHECK(failures.load() == 0);
  CHECK(log.end_offset() == total);
  CHECK(read.failure == "");
  CHECK(read.records == total);
  if (mode == kFlusherSlow) CHECK(log.flush());
  CHECK(log.durable_offset() == total);
  CHECK(log.segment_count() > 5);  // about 40 records a segment
}

}  // namespace log_concurrency_test
