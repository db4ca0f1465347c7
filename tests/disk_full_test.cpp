// A full disk and a failing disk: the file layer's fault hook (tests/support/fault_injection.hpp)
// fails the Nth grow, open, map, write, sync, rename or mkdir with ENOSPC or EIO, and each test
// checks that the call that met it returns a clear error (kNoSpace for a full disk, kIoError
// otherwise, naming the call and the file), that the log or broker is left as it was and
// readable, and that the same operation succeeds once the disk has room again. One test uses
// the kernel's own EFBIG (RLIMIT_FSIZE) instead of the hook.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "catch.hpp"
#include "compaction_model.hpp"
#include "fault_injection.hpp"
#include "rill/broker.hpp"
#include "rill/producer.hpp"
#include "rill/storage/log.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace disk_full_test {

namespace {

using rill::ErrorCode;
using rill::storage::Log;
using rill::storage::LogConfig;
using rill::storage::Record;
using rill_test::FaultInjector;
using rill_test::FileOp;

std::string value_for(std::int64_t offset) {
  return std::string(900, static_cast<char>('a' + offset % 26)) + std::to_string(offset);
}

LogConfig small_log() {
  LogConfig c;
  c.segment_bytes = 16u << 10;
  c.max_record_bytes = 2048;
  c.index_interval_bytes = 256;
  c.prefault_bytes = 0;
  return c;
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

void check_records(const Log& log, std::int64_t end) {
  REQUIRE(log.end_offset() == end);
  for (std::int64_t at = log.start_offset(); at < end; ++at) {
    auto got = log.read(at, 1);
    INFO("offset " << at << ": " << (got ? std::string("ok") : got.error().to_string()));
    REQUIRE(got);
    REQUIRE(got->size() == 1);
    CHECK((*got)[0].value() == std::optional<std::string_view>(value_for(at)));
  }
}

struct CompactionFault {
  FileOp op;
  int err;
  const char* path_contains;
  ErrorCode code;
};

struct SegmentFault {
  FileOp op;
  int err;
  int after;  // matching calls let through first (1: the log file's passes, an index's fails)
  ErrorCode code;
};

}  // namespace

TEST_CASE(
    "a segment that cannot be created fails the append, changes nothing, and appends "
    "resume once space returns",
    "[log][fault]") {
  const SegmentFault f = GENERATE(SegmentFault{FileOp::kGrow, ENOSPC, 0, ErrorCode::kNoSpace},
                                  SegmentFault{FileOp::kGrow, ENOSPC, 1, ErrorCode::kNoSpace},
                                  SegmentFault{FileOp::kGrow, EDQUOT, 2, ErrorCode::kNoSpace},
                                  SegmentFault{FileOp::kOpen, ENOSPC, 0, ErrorCode::kNoSpace},
                                  SegmentFault{FileOp::kOpen, EIO, 1, ErrorCode::kIoError},
                                  SegmentFault{FileOp::kMap, ENOMEM, 0, ErrorCode::kIoError},
                                  SegmentFault{FileOp::kMap, ENOMEM, 2, ErrorCode::kIoError});
  CAPTURE(static_cast<int>(f.op), f.err, f.after);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  auto log = Log::open(dir, small_log());
  REQUIRE(log);
  std::int64_t end = 0;
  // Fill the first segment to just short of a roll.
  for (;; ++end) {
    const std::string v = value_for(end);
    if (!(*log)->segments().back()->has_room(1024)) break;
    REQUIRE((*log)->append({.value = std::string_view(v)}));
  }
  const auto files_before = names_in(dir);
  {
    FaultInjector disk({.op = f.op, .err = f.err, .after = f.after});
    for (int attempt = 0; attempt < 2; ++attempt) {  // the disk stays full: it fails again
      const std::string v = value_for(end);
      auto r = (*log)->append({.value = std::string_view(v)});
      REQUIRE(!r);
      INFO(r.error().to_string());
      CHECK(r.error().code() == f.code);
      CHECK(r.error().message().find(dir) != std::string::npos);  // names the file
      CHECK(disk.failures() >= 1);
      // Nothing changed: same records, same files, still readable.
      check_records(**log, end);
      CHECK((*log)->segment_count() == 1);
      CHECK(names_in(dir) == files_before);
    }
    disk.heal();
    const std::string v = value_for(end);
    auto r = (*log)->append({.value = std::string_view(v)});
    INFO((r ? std::string() : r.error().to_string()));
    REQUIRE(r);
    CHECK(r->offset == end);
    ++end;
  }
  CHECK((*log)->segment_count() == 2);
  check_records(**log, end);
  log->reset();
  auto again = Log::open(dir, small_log());
  REQUIRE(again);
  CHECK((*again)->recovery().clean());
  check_records(**again, end);
}

TEST_CASE(
    "a roll whose directory sync fails leaves no file of the new segment, and a reopen finds "
    "every acknowledged record",
    "[log][fault]") {
  // The roll creates the next segment's files, then syncs the directory (durability modes
  // other than os_cache). A failed sync once left the new, empty segment on disk: smaller
  // appends went on into the old segment, past the new one's base, and the next open took the
  // old segment for damaged and deleted every later one (acknowledged records lost); a retry
  // of the same roll failed with kAlreadyExists.
  const bool every_append = GENERATE(false, true);
  const int attempts = GENERATE(1, 2);
  CAPTURE(every_append, attempts);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  LogConfig config = small_log();
  config.durability = every_append ? rill::storage::Durability::every_append()
                                   : rill::storage::Durability::every(1000);
  std::vector<std::string> values;  // values[offset]
  auto log = Log::open(dir, config);
  REQUIRE(log);
  const auto add = [&](std::string v) {
    auto r = (*log)->append({.value = std::string_view(v)});
    INFO((r ? std::string() : r.error().to_string()));
    REQUIRE(r);
    REQUIRE(r->offset == static_cast<std::int64_t>(values.size()));
    values.push_back(std::move(v));
  };
  while ((*log)->segments().back()->has_room(1024)) add(value_for(std::ssize(values)));
  const auto files_before = names_in(dir);
  {
    // Under these policies the roll's directory fsync is the only sync until the next append
    // has succeeded.
    FaultInjector disk({.op = FileOp::kSync, .err = EIO});
    for (int i = 0; i < attempts; ++i) {
      const std::string v = value_for(std::ssize(values));
      auto r = (*log)->append({.value = std::string_view(v)});
      REQUIRE(!r);
      INFO(r.error().to_string());
      CHECK(r.error().code() == ErrorCode::kIoError);  // not kAlreadyExists on a retry
      CHECK(disk.failures() == i + 1);
      CHECK(names_in(dir) == files_before);
    }
    disk.heal();
  }
  // Small records still fit in the old segment: it grows past the base the failed roll used,
  // then rolls normally, and the log goes on in the new segment.
  while ((*log)->segment_count() == 1) add("small-" + std::to_string(values.size()));
  for (int i = 0; i < 20; ++i) add("after-" + std::to_string(values.size()));
  log->reset();
  auto again = Log::open(dir, config);
  REQUIRE(again);
  INFO((*again)->recovery().detail);
  CHECK((*again)->recovery().clean());
  REQUIRE((*again)->end_offset() == std::ssize(values));
  for (std::int64_t at = 0; at < std::ssize(values); ++at) {
    auto got = (*again)->read(at, 1);
    INFO("offset " << at << ": " << (got ? std::string("ok") : got.error().to_string()));
    REQUIRE(got);
    REQUIRE(got->size() == 1);
    CHECK((*got)[0].value() == std::optional<std::string_view>(values[at]));
  }
}

TEST_CASE(
    "a compaction whose output cannot be written, synced or renamed fails, leaves the log as "
    "it was, and a later compaction succeeds",
    "[log][fault][compaction]") {
  const CompactionFault f =
      GENERATE(CompactionFault{FileOp::kOpen, ENOSPC, ".cleaned", ErrorCode::kNoSpace},
               CompactionFault{FileOp::kWrite, ENOSPC, ".cleaned", ErrorCode::kNoSpace},
               CompactionFault{FileOp::kSync, EIO, ".cleaned", ErrorCode::kIoError},
               CompactionFault{FileOp::kRename, EIO, ".cleaned", ErrorCode::kIoError},
               CompactionFault{FileOp::kRemove, EIO, ".index", ErrorCode::kIoError});
  CAPTURE(static_cast<int>(f.op), f.err, f.path_contains);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  LogConfig config = small_log();
  config.delete_retention_ms = std::numeric_limits<std::int64_t>::max();
  rill_test::KeyedRecords model;
  model.keys = 40;
  auto log = Log::open(dir, config);
  REQUIRE(log);
  model.append(**log, 0, 700);
  REQUIRE((*log)->segment_count() >= 4);
  const auto total = static_cast<std::uint64_t>((*log)->end_offset());
  const auto before = rill_test::read_offsets(**log, model);
  REQUIRE(before.size() == total);
  const auto files_before = names_in(dir);
  // The old segment's indexes go just before the rename (recovery rebuilds them): a failed
  // rename may leave them gone, nothing else.
  const auto changed_at_most = [&](const std::set<std::string>& now) {
    const std::string first = (*log)->segments().front()->log_path();
    const std::string stem = std::filesystem::path(first).stem().string();
    for (const auto& name : files_before) {
      if (now.count(name) == 0) CHECK((f.op == FileOp::kRename && name.rfind(stem, 0) == 0));
    }
    for (const auto& name : now) CHECK(files_before.count(name) == 1);
  };
  {
    FaultInjector disk({.op = f.op, .err = f.err, .path_contains = f.path_contains});
    auto c = (*log)->compact();
    REQUIRE(!c);
    INFO(c.error().to_string());
    CHECK(c.error().code() == f.code);
    CHECK(c.error().message().find(dir) != std::string::npos);  // names the file
    CHECK(disk.failures() == 1);
    // Nothing changed: the same records are read, no output is left behind.
    CHECK(rill_test::read_offsets(**log, model) == before);
    CHECK(rill_test::files_with_suffix(dir, ".cleaned").empty());
    changed_at_most(names_in(dir));
    disk.heal();
  }
  // A later compaction succeeds and keeps exactly what it may.
  auto c = (*log)->compact();
  INFO((c ? std::string() : c.error().to_string()));
  REQUIRE(c);
  CHECK(c->segments_rewritten >= 1);
  const std::uint64_t active = (*log)->segments().back()->base_offset();
  const auto after = rill_test::read_offsets(**log, model);
  rill_test::check_compacted(model, after, total, total, active, true, true);
  CHECK(after.size() < before.size());
  log->reset();
  auto again = Log::open(dir, config);
  REQUIRE(again);
  CHECK((*again)->recovery().clean());
  CHECK(rill_test::read_offsets(**again, model) == after);
}

TEST_CASE("a failed sync is reported, the log stays readable, and a later flush succeeds",
          "[log][fault]") {
  rill_test::TempDir tmp;
  const int err = GENERATE(EIO, ENOSPC);
  auto log = Log::open(tmp.sub("log"), small_log());
  REQUIRE(log);
  for (std::int64_t i = 0; i < 5; ++i) {
    const std::string v = value_for(i);
    REQUIRE((*log)->append({.value = std::string_view(v)}));
  }
  {
    FaultInjector disk({.op = FileOp::kSync, .err = err});
    auto r = (*log)->flush();
    REQUIRE(!r);
    INFO(r.error().to_string());
    CHECK(r.error().code() == (err == EIO ? ErrorCode::kIoError : ErrorCode::kNoSpace));
    CHECK((*log)->durable_offset() == 0);  // not claimed durable
    check_records(**log, 5);
    disk.heal();
    REQUIRE((*log)->flush());
  }
  CHECK((*log)->durable_offset() == 5);

  // Under Durability::every_append() and every(n) the append that syncs reports the failed
  // sync. Its records are in the log (readable, and they survive a crash of the process) but
  // not known durable until a later sync succeeds.
  for (const std::int64_t n : {1, 3}) {
    CAPTURE(n);
    LogConfig c = small_log();
    c.durability = n == 1 ? rill::storage::Durability::every_append()
                          : rill::storage::Durability::every(static_cast<std::uint64_t>(n));
    auto synced = Log::open(tmp.sub("synced-" + std::to_string(n)), c);
    REQUIRE(synced);
    for (std::int64_t i = 0; i + 1 < n; ++i) {
      const std::string w = value_for(i);
      REQUIRE((*synced)->append({.value = std::string_view(w)}));
    }
    {
      FaultInjector disk({.op = FileOp::kSync, .err = EIO});
      const std::string w = value_for(n - 1);
      auto r = (*synced)->append({.value = std::string_view(w)});
      REQUIRE(!r);
      CHECK(r.error().code() == ErrorCode::kIoError);
      CHECK((*synced)->durable_offset() == 0);
      check_records(**synced, n);
    }
    const std::string w = value_for(n);
    REQUIRE((*synced)->append({.value = std::string_view(w)}));  // appends go on
    REQUIRE((*synced)->flush());
    CHECK((*synced)->durable_offset() == n + 1);
  }
}

TEST_CASE("under every(n), a failed sync leaves its records counted: the next append syncs",
          "[log][fault]") {
  // flush() once zeroed the count of unsynced records before syncing, so after a failed sync
  // the next n - 1 appends did not try again: more than n - 1 records stayed unsynced.
  rill_test::TempDir tmp;
  LogConfig c = small_log();
  c.durability = rill::storage::Durability::every(3);
  auto log = Log::open(tmp.sub("log"), c);
  REQUIRE(log);
  const auto append = [&](std::int64_t at) {
    const std::string v = value_for(at);
    return (*log)->append({.value = std::string_view(v)});
  };
  REQUIRE(append(0));
  REQUIRE(append(1));
  {
    FaultInjector disk({.op = FileOp::kSync, .err = EIO});
    auto r = append(2);  // the third record: its sync fails
    REQUIRE(!r);
    CHECK(r.error().code() == ErrorCode::kIoError);
    CHECK((*log)->durable_offset() == 0);
  }
  REQUIRE(append(3));  // four unsynced records: this append syncs them
  CHECK((*log)->durable_offset() == 4);

  // The same after a failed flush() of its own.
  REQUIRE(append(4));
  REQUIRE(append(5));
  {
    FaultInjector disk({.op = FileOp::kSync, .err = EIO});
    REQUIRE(!(*log)->flush());
  }
  REQUIRE(append(6));  // the third unsynced record since the last good sync
  CHECK((*log)->durable_offset() == 7);
  check_records(**log, 7);
}

TEST_CASE("a segment file retention cannot remove stays in the log, and a reopen agrees",
          "[log][fault][retention]") {
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  LogConfig c = small_log();
  c.retention_bytes = static_cast<std::int64_t>(c.segment_bytes);  // keep about one segment
  auto log = Log::open(dir, c);
  REQUIRE(log);
  std::int64_t end = 0;
  {
    // Every unlink fails while the log rolls through four segments: the retention each roll
    // runs removes nothing, and the log keeps every record.
    FaultInjector disk({.op = FileOp::kRemove, .err = EIO});
    while ((*log)->segments().size() < 4 && end < 10'000) {
      const std::string v = value_for(end++);
      REQUIRE((*log)->append({.value = std::string_view(v)}));
    }
    REQUIRE((*log)->segments().size() == 4);
    auto r = (*log)->enforce_retention();
    REQUIRE(!r);
    INFO(r.error().to_string());
    CHECK(r.error().code() == ErrorCode::kIoError);
    CHECK(r.error().message().find(".log") != std::string::npos);
    CHECK((*log)->start_offset() == 0);
    CHECK((*log)->segments().size() == 4);
    check_records(**log, end);
  }
  // A reopen sees the same log: nothing the running log still shows was deleted on disk.
  log->reset();
  log = Log::open(dir, small_log());
  REQUIRE(log);
  CHECK((*log)->start_offset() == 0);
  check_records(**log, end);
  log->reset();

  // With the disk healed, retention removes the old segments, files and all.
  log = Log::open(dir, c);
  REQUIRE(log);
  auto r = (*log)->enforce_retention();
  REQUIRE(r);
  CHECK(r->segments_deleted >= 2);
  CHECK(r->start_offset > 0);
  CHECK((*log)->start_offset() == r->start_offset);
  check_records(**log, end);
  const std::int64_t start = r->start_offset;
  log->reset();
  log = Log::open(dir, small_log());
  REQUIRE(log);
  CHECK((*log)->start_offset() == start);
  for (const std::string& name : names_in(dir)) {
    if (name == ".lock") continue;
    CHECK(std::stoll(name.substr(0, 20)) >= start);  // no file of a deleted segment is left
  }
}

TEST_CASE("a real file-size limit (EFBIG) is a kNoSpace error and the log stays readable",
          "[log][fault]") {
  // In a child, under RLIMIT_FSIZE, so that the kernel itself refuses to grow a file.
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("log");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The limit is per file: the first segment (opened before it) fills, and the roll's
    // preallocation of the next one meets it.
    LogConfig c = small_log();
    c.segment_bytes = 1u << 20;
    auto log = Log::open(dir, c);
    if (!log) ::_exit(11);
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {256u << 10, 256u << 10};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(10);
    std::int64_t i = 0;
    for (;; ++i) {
      const std::string v = value_for(i);
      auto r = (*log)->append({.value = std::string_view(v)});
      if (!r) {
        if (r.error().code() != ErrorCode::kNoSpace) ::_exit(12);
        break;
      }
      if (i > 10000) ::_exit(13);
    }
    if ((*log)->end_offset() != i) ::_exit(14);
    for (std::int64_t at = 0; at < i; ++at) {
      auto got = (*log)->read(at, 1);
      if (!got || got->size() != 1 || (*got)[0].value() != value_for(at)) ::_exit(15);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Without the limit, the log opens clean and appends again.
  auto log = Log::open(dir, small_log());
  REQUIRE(log);
  CHECK((*log)->recovery().clean());
  const std::int64_t end = (*log)->end_offset();
  CHECK(end > 0);
  const std::string v = value_for(end);
  REQUIRE((*log)->append({.value = std::string_view(v)}));
  check_records(**log, end + 1);
}

namespace {

struct BrokerFault {
  FileOp op;
  int err;
};

ErrorCode code_for(int err) { return err == EIO ? ErrorCode::kIoError : ErrorCode::kNoSpace; }

bool no_leftovers(const std::string& dir) {
  for (const auto& name : names_in(dir)) {
    if (name != "~lock" && name.front() == '~') return false;
  }
  return true;
}

rill::TopicConfig small_topic(std::int32_t partitions) {
  rill::TopicConfig t;
  t.partitions = partitions;
  t.segment_bytes = 16u << 10;
  t.max_record_bytes = 2048;
  return t;
}

rill::BrokerOptions quiet() {
  rill::BrokerOptions o;
  o.prefault_bytes = 0;
  return o;
}

}  // namespace

TEST_CASE(
    "topic administration on a full or failing disk either happens whole or changes "
    "nothing",
    "[broker][fault]") {
  const BrokerFault f =
      GENERATE(BrokerFault{FileOp::kMkdir, ENOSPC}, BrokerFault{FileOp::kOpen, ENOSPC},
               BrokerFault{FileOp::kWrite, ENOSPC}, BrokerFault{FileOp::kGrow, ENOSPC},
               BrokerFault{FileOp::kSync, EIO}, BrokerFault{FileOp::kRename, EIO},
               BrokerFault{FileOp::kMap, EIO});
  const int after = GENERATE(0, 1, 2, 4);
  const std::string admin = GENERATE("create", "add_partitions", "delete");
  CAPTURE(static_cast<int>(f.op), f.err, after, admin);
  rill_test::TempDir tmp;
  const std::string dir = tmp.sub("data");
  std::int32_t partitions_before = 0;
  bool existed = false;
  {
    auto broker = rill::Broker::open(dir, quiet());
    REQUIRE(broker);
    if (admin != "create") {
      REQUIRE((*broker)->create_topic("orders", small_topic(2)));
      auto st = (*broker)->topic_state("orders");
      REQUIRE(st);
      REQUIRE((*st)->partition(0)->append({.value = std::string_view("kept")}));
      partitions_before = 2;
      existed = true;
    }
    bool ok;
    {
      FaultInjector disk({.op = f.op, .err = f.err, .after = after});
      rill::Result<void> r;
      if (admin == "create") {
        auto d = (*broker)->create_topic("orders", small_topic(3));
        if (!d) r = rill::fail(d.error());
      } else if (admin == "add_partitions") {
        auto d = (*broker)->add_partitions("orders", 4);
        if (!d) r = rill::fail(d.error());
      } else {
        r = (*broker)->delete_topic("orders");
      }
      ok = r.has_value();
      if (!ok) {
        INFO(r.error().to_string());
        CHECK(disk.failures() >= 1);
        CHECK(r.error().code() == code_for(f.err));
        CHECK(!r.error().message().empty());
      }
    }
    // In memory, the broker agrees with what the call said.
    auto d = (*broker)->describe_topic("orders");
    std::int32_t expect = partitions_before;
    if (ok && admin == "create") expect = 3;
    if (ok && admin == "add_partitions") expect = 4;
    if (ok && admin == "delete") expect = 0;
    if (expect == 0) {
      CHECK(!d);
    } else {
      REQUIRE(d);
      CHECK(d->config.partitions == expect);
      CHECK(static_cast<std::int32_t>(d->partitions.size()) == expect);
    }
    partitions_before = expect;
    CHECK(no_leftovers(dir));
  }
  // And so does the disk, after a reopen.
  auto broker = rill::Broker::open(dir, quiet());
  INFO((broker ? std::string() : broker.error().to_string()));
  REQUIRE(broker);
  CHECK((*broker)->recovery().empty());
  CHECK(no_leftovers(dir));
  auto d = (*broker)->describe_topic("orders");
  if (partitions_before == 0) {
    CHECK(!d);
    // The name is free again.
    REQUIRE((*broker)->create_topic("orders", small_topic(1)));
  } else {
    REQUIRE(d);
    CHECK(d->config.partitions == partitions_before);
    CHECK(static_cast<std::int32_t>(d->partitions.size()) == partitions_before);
    if (existed) CHECK(d->partitions[0].end_offset == 1);
    auto st = (*broker)->topic_state("orders");
    REQUIRE(st);
    for (std::int32_t p = 0; p < partitions_before; ++p) {
      REQUIRE((*st)->partition(p)->append({.value = std::string_view("after")}));
    }
  }
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    CHECK(name.find(".tmp") == std::string::npos);
  }
}

TEST_CASE("a send that needs a new segment on a full disk fails and appends nothing",
          "[broker][fault]") {
  rill_test::TempDir tmp;
  auto broker = rill::Broker::open(tmp.sub("data"), quiet());
  REQUIRE(broker);
  using StringTopic = rill::Topic<std::string, std::string>;
  auto topic = StringTopic::create(**broker, "t", small_topic(1));
  REQUIRE(topic);
  rill::Producer<std::string, std::string> producer(**broker);
  const rill::storage::Log* log = topic->log(0);
  std::int64_t end = 0;
  for (; log->segments().back()->has_room(1024); ++end) {
    REQUIRE(producer.send(*topic, std::nullopt, value_for(end)));
  }
  const std::string v = value_for(end);
  {
    FaultInjector disk({.op = FileOp::kGrow, .err = ENOSPC});
    auto r = producer.send(*topic, std::nullopt, v);
    REQUIRE(!r);
    CHECK(r.error().code() == ErrorCode::kNoSpace);
    // A batch fails the same way, whole.
    const std::vector<rill::ProducerRecord<std::string, std::string>> batch(3, {.value = v});
    auto b = producer.send_batch(*topic, batch);
    REQUIRE(!b);
    CHECK(b.error().code() == ErrorCode::kNoSpace);
    auto d = (*broker)->describe_topic("t");
    REQUIRE(d);
    CHECK(d->partitions[0].end_offset == end);
    disk.heal();
  }
  auto md = producer.send(*topic, std::nullopt, v);
  REQUIRE(md);
  CHECK(md->offset == end);
  auto got = topic->read(0, end, 1);
  REQUIRE(got);
  REQUIRE(got->size() == 1);
  CHECK((*got)[0].value == v);
}

}  // namespace disk_full_test
