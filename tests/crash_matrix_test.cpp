// The crash matrix: a child process works a data directory through the public API (Broker,
// Topic, Producer, Consumer) and reports each acknowledged operation through a pipe; the parent
// SIGKILLs it at a random moment, reopens the directory and checks that every acknowledged
// record and commit is there, that nothing corrupt is returned, that the recovery report
// accounts for what was dropped, and that a second reopen is clean.
//
// One scenario per place a kill can land (kScenarios): appends, segment rolls, index writes,
// retention deletes, compaction, offset commits, topic creation. Each runs kRounds rounds (30;
// 300 in the `stress` ctest run, RILL_STRESS=1).
//
// Nothing here depends on the byte layout of records: records are checked through the API
// against contents that are a pure function of (partition, offset) (for compaction, the keyed
// records of tests/support/compaction_model.hpp).
//
// TSan: the parent forks while single-threaded (its broker, and with it the background thread,
// is gone before each fork).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "compaction_model.hpp"
#include "expected_record.hpp"
#include "kill_child.hpp"
#include "rill/rill.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace crash_matrix_test {

namespace {

namespace fs = std::filesystem;
using rill::TopicPartition;
using rill_test::mix;
using StringTopic = rill::Topic<std::string, std::string>;

bool stress_run() {
  const char* v = std::getenv("RILL_STRESS");
  return v != nullptr && *v != '\0' && *v != '0';
}

int rounds() { return stress_run() ? 300 : 30; }

// One acknowledged operation: records [first, first + count) of `partition`; a commit of
// `first` for `partition`; or the creation of topic number `first`.
struct Ack {
  std::int32_t partition;
  std::int32_t pad;
  std::int64_t first;
  std::int64_t count;
};

[[noreturn]] void die(int code, const rill::Error& e) {
  std::fprintf(stderr, "crash matrix child: %s\n", e.to_string().c_str());
  ::_exit(code);
}

void ack(int fd, const Ack& a) {
  if (::write(fd, &a, sizeof a) != static_cast<ssize_t>(sizeof a)) ::_exit(9);
}

rill::BrokerOptions options(std::uint64_t seed) {
  rill::BrokerOptions o;
  o.prefault_bytes = seed % 2 == 0 ? 0 : 64u << 10;  // kills also land while it prefaults
  return o;
}

// --- record scenarios: append, roll, index, retention ------------------------------------------

struct RecordShape {
  rill::TopicConfig topic;
  std::size_t min_value;
  std::size_t max_value;
  std::size_t max_batch;
};

std::string value_of(std::uint64_t salt, std::int32_t p, std::int64_t offset,
                     const RecordShape& shape) {
  std::uint64_t h =
      mix(salt ^ mix(static_cast<std::uint64_t>(offset) * 131 + static_cast<std::uint64_t>(p)));
  const std::size_t len = shape.min_value + h % (shape.max_value - shape.min_value + 1);
  std::string v(len, '\0');
  for (std::size_t i = 0; i < len; ++i) {
    if (i % 8 == 0) h = mix(h);
    v[i] = static_cast<char>(h >> (8 * (i % 8)));
  }
  return v;
}

std::string key_of(std::int32_t p, std::int64_t offset) {
  return "k" + std::to_string(p) + "-" + std::to_string(offset);
}

[[noreturn]] void records_child(const RecordShape& shape, const std::string& dir,
                                std::uint64_t salt, std::uint64_t seed, int fd) {
  auto broker = rill::Broker::open(dir, options(seed));
  if (!broker) die(3, broker.error());
  auto topic = StringTopic::create_if_absent(**broker, "t", shape.topic);
  if (!topic) die(4, topic.error());
  auto state = (*broker)->topic_state("t");
  if (!state) die(4, state.error());
  rill::Producer<std::string, std::string> producer(**broker);
  std::mt19937_64 rng(seed);
  std::vector<rill::ProducerRecord<std::string, std::string>> batch;
  for (;;) {
    const auto p =
        static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(shape.topic.partitions));
    const std::int64_t next = (*state)->partition(p)->end_offset();
    const std::size_t n = rng() % 3 == 0 ? 1 + rng() % shape.max_batch : 1;
    batch.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const auto off = next + static_cast<std::int64_t>(i);
      batch.push_back(
          {.key = key_of(p, off), .value = value_of(salt, p, off, shape), .partition = p});
    }
    std::int64_t first;
    if (n == 1) {
      auto r = producer.send(*topic, batch[0]);
      if (!r) die(5, r.error());
      first = r->offset;
    } else {
      auto r = producer.send_batch(
          *topic, std::span<const rill::ProducerRecord<std::string, std::string>>(batch));
      if (!r) die(5, r.error());
      first = (*r)[0].offset;
    }
    if (first != next) ::_exit(6);
    ack(fd, {p, 0, first, static_cast<std::int64_t>(n)});
  }
}

// --- compaction -------------------------------------------------------------------------------
//
// A compacted topic of keyed records (updates and tombstones, tombstones expiring at once: the
// records' timestamps are long past) over 4 KiB segments; the child appends a burst of records,
// then compacts every partition (Broker::compact), over and over, so that most kills land in
// a compaction: while it writes a .cleaned file, renames it, or rebuilds the new indexes.
// Acks: appends as {partition, 0, first, count}; a compaction's start {0, kCompactStart} and
// end {0, kCompactEnd}.

constexpr std::int32_t kCompactPartitions = 2;
constexpr std::int32_t kCompactStart = 1;
constexpr std::int32_t kCompactEnd = 2;

rill::TopicConfig compacted_topic() {
  rill::TopicConfig tc;
  tc.partitions = kCompactPartitions;
  tc.segment_bytes = 4u << 10;
  tc.max_record_bytes = 1024;
  tc.cleanup_policy = rill::CleanupPolicy::kCompact;
  tc.delete_retention_ms = 0;
  return tc;
}

rill_test::KeyedRecords keyed_model(std::uint64_t salt, std::int32_t p) {
  rill_test::KeyedRecords m;
  m.salt = mix(salt + static_cast<std::uint64_t>(p));
  m.keys = 30;
  return m;
}

[[noreturn]] void compaction_child(const std::string& dir, std::uint64_t salt, std::uint64_t seed,
                                   int fd) {
  auto broker = rill::Broker::open(dir, options(seed));
  if (!broker) die(3, broker.error());
  auto topic = StringTopic::create_if_absent(**broker, "k", compacted_topic());
  if (!topic) die(4, topic.error());
  auto state = (*broker)->topic_state("k");
  if (!state) die(4, state.error());
  std::mt19937_64 rng(seed);
  std::vector<rill_test::Expected> exp;
  std::vector<std::vector<rill::storage::Header>> hdrs;
  std::vector<rill::storage::Record> recs;
  for (;;) {
    for (std::size_t burst = 5 + rng() % 40; burst > 0; --burst) {
      const auto p = static_cast<std::int32_t>(rng() % kCompactPartitions);
      rill::storage::Log* log = (*state)->partition(p);
      const auto next = static_cast<std::uint64_t>(log->end_offset());
      const std::size_t n = rng() % 3 == 0 ? 1 + rng() % 6 : 1;
      const auto model = keyed_model(salt, p);
      exp.clear();
      recs.clear();
      hdrs.assign(n, {});
      for (std::size_t i = 0; i < n; ++i) exp.push_back(model.at(next + i));
      for (std::size_t i = 0; i < n; ++i) recs.push_back(rill_test::as_record(exp[i], hdrs[i]));
      auto r = log->append_batch(recs);
      if (!r) die(5, r.error());
      if (r->offset != static_cast<std::int64_t>(next)) ::_exit(6);
      ack(fd, {p, 0, r->offset, r->count});
    }
    ack(fd, {0, kCompactStart, 0, 0});
    if (auto c = (*broker)->compact("k"); !c) die(7, c.error());
    ack(fd, {0, kCompactEnd, 0, 0});
  }
}

// --- offset commits ---------------------------------------------------------------------------

constexpr std::int32_t kCommitPartitions = 4;

std::string metadata_of(std::int64_t offset) { return "m" + std::to_string(offset * 7); }

[[noreturn]] void commits_child(const std::string& dir, std::uint64_t seed, int fd) {
  auto broker = rill::Broker::open(dir, options(seed));
  if (!broker) die(3, broker.error());
  rill::TopicConfig tc;
  tc.partitions = kCommitPartitions;
  tc.segment_bytes = 64u << 10;
  tc.max_record_bytes = 1024;
  auto topic = StringTopic::create_if_absent(**broker, "c", tc);
  if (!topic) die(4, topic.error());
  rill::Consumer<std::string, std::string> consumer(**broker,
                                                    {.group_id = "g", .enable_auto_commit = false});
  std::vector<TopicPartition> tps;
  for (std::int32_t p = 0; p < kCommitPartitions; ++p) tps.push_back({"c", p});
  if (auto r = consumer.assign(tps); !r) die(4, r.error());
  std::int64_t next[kCommitPartitions];
  for (std::int32_t p = 0; p < kCommitPartitions; ++p) {
    auto c = consumer.committed(tps[static_cast<std::size_t>(p)]);
    if (!c) die(4, c.error());
    next[p] = *c ? (*c)->offset + 1 : 1;
  }
  std::mt19937_64 rng(seed);
  for (;;) {
    std::map<TopicPartition, rill::OffsetAndMetadata> offsets;
    const std::uint64_t mask = 1 + rng() % ((1u << kCommitPartitions) - 1);
    for (std::int32_t p = 0; p < kCommitPartitions; ++p) {
      if ((mask >> p) & 1) {
        offsets[tps[static_cast<std::size_t>(p)]] = {next[p], metadata_of(next[p]), 0};
      }
    }
    if (auto r = consumer.commit(offsets); !r) die(5, r.error());
    for (const auto& [tp, om] : offsets) {
      ack(fd, {tp.partition, 0, om.offset, 1});
      ++next[tp.partition];
    }
  }
}

// --- topic creation ---------------------------------------------------------------------------

rill::TopicConfig created_config(std::int64_t i) {
  rill::TopicConfig tc;
  tc.partitions = static_cast<std::int32_t>(1 + i % 3);
  tc.segment_bytes = (16u << 10) + static_cast<std::size_t>(i) * 8;
  tc.max_record_bytes = 1024;
  tc.retention_ms = 1000 + i;
  return tc;
}

std::string created_name(std::int64_t i) { return "t-" + std::to_string(i); }

[[noreturn]] void topics_child(const std::string& dir, std::uint64_t seed, int fd) {
  auto broker = rill::Broker::open(dir, options(seed));
  if (!broker) die(3, broker.error());
  std::int64_t i = 0;
  while ((*broker)->describe_topic(created_name(i))) ++i;
  // The topics found are reported first, as if acknowledged (they survived a kill and a
  // reopen): after a round the parent did not check, the topic that round's child was
  // creating when killed exists unacknowledged, and this child's own unfinished creation
  // would make two, where the parent allows one.
  if (i > 0) ack(fd, {0, 0, i - 1, 1});
  for (;; ++i) {
    auto r = (*broker)->create_topic(created_name(i), created_config(i));
    if (!r) die(5, r.error());
    ack(fd, {0, 0, i, 1});
  }
}

// --- the matrix -------------------------------------------------------------------------------

enum class Kind { kRecords, kCompaction, kCommits, kTopics, kPending };

struct Scenario {
  const char* name;
  Kind kind;
  RecordShape shape;         // kRecords
  const char* pending_note;  // kPending
};

rill::TopicConfig records_topic(std::int32_t partitions, std::size_t segment_bytes,
                                std::size_t max_record_bytes, std::int64_t retention_bytes) {
  rill::TopicConfig tc;
  tc.partitions = partitions;
  tc.segment_bytes = segment_bytes;
  tc.max_record_bytes = max_record_bytes;
  tc.retention_bytes = retention_bytes;
  return tc;
}

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      // Appends into large segments: kills land mid-frame and mid-batch.
      {"append", Kind::kRecords, {records_topic(2, 1u << 20, 4096, -1), 0, 2000, 8}, nullptr},
      // 8 KiB segments and records up to 1.5 KiB: a roll every few appends.
      {"segment roll",
       Kind::kRecords,
       {records_topic(2, 8u << 10, 2048, -1), 100, 1500, 3},
       nullptr},
      // Records of 4-6 KiB with the 4 KiB index interval: an index entry (offset and time
      // index) written with nearly every record, new index files at every 64 KiB roll.
      {"index write",
       Kind::kRecords,
       {records_topic(1, 64u << 10, 8192, -1), 4000, 6000, 2},
       nullptr},
      // retention.bytes of 24 KiB over 8 KiB segments: a segment deleted at nearly every roll.
      {"retention delete",
       Kind::kRecords,
       {records_topic(2, 8u << 10, 2048, 24u << 10), 100, 1500, 3},
       nullptr},
      // Compactions of 4 KiB segments, one after another: kills land in every step of one.
      {"compaction", Kind::kCompaction, {}, nullptr},
      {"offset commit", Kind::kCommits, {}, nullptr},
      {"topic creation", Kind::kTopics, {}, nullptr},
  };
  return all;
}

// What the parent knows survives: it only grows.
struct Model {
  std::map<std::int32_t, std::int64_t> end;    // records below it are in the log
  std::map<std::int32_t, std::int64_t> start;  // the log's start offset last seen
  std::map<std::int32_t, std::int64_t> verified;
  std::map<std::int32_t, std::int64_t> committed;  // the last acknowledged commit
  std::int64_t topics = 0;                         // t-0 .. t-(topics - 1) exist
  bool compacting = false;                         // the child was killed inside a compaction
};

void apply(const Scenario& s, Model& m, const Ack& a) {
  switch (s.kind) {
    case Kind::kRecords:
      m.end[a.partition] = std::max(m.end[a.partition], a.first + a.count);
      break;
    case Kind::kCompaction:
      if (a.pad == kCompactStart) {
        m.compacting = true;
      } else if (a.pad == kCompactEnd) {
        m.compacting = false;
      } else {
        m.end[a.partition] = std::max(m.end[a.partition], a.first + a.count);
      }
      break;
    case Kind::kCommits:
      m.committed[a.partition] = std::max(m.committed[a.partition], a.first);
      break;
    case Kind::kTopics:
      m.topics = std::max(m.topics, a.first + 1);
      break;
    case Kind::kPending:
      break;
  }
}

// Whether the newest segment of partition directory `pdir` ends in something a kill left
// unfinished: bytes that fail the frame checks, or anything but zeros after the last whole
// frame. Read from the files before the broker reopens them; recovery must then name the
// partition and say what it dropped.
bool tail_is_torn(const fs::path& pdir) {
  fs::path newest;
  for (const auto& e : fs::directory_iterator(pdir)) {
    if (e.path().extension() == ".log" && (newest.empty() || e.path() > newest)) newest = e.path();
  }
  if (newest.empty()) return false;
  const std::vector<char> bytes = rill_test::read_file(newest.string());
  // A segment killed before its header was whole: recovery drops the file (crash_test).
  if (bytes.size() < rill::storage::kFileHeaderSize) return false;
  const auto* b = reinterpret_cast<const std::byte*>(bytes.data());
  std::uint64_t expect = std::stoull(newest.stem().string());
  std::size_t pos = rill::storage::kFileHeaderSize;
  while (pos < bytes.size()) {
    const auto c = rill::storage::check_frame(b + pos, bytes.size() - pos, expect, true);
    if (c.status == rill::storage::FrameStatus::kEnd) break;
    if (c.status != rill::storage::FrameStatus::kOk) return true;
    pos += rill::storage::align_frame(c.header.size);
    expect = rill::storage::batch_next_offset(c.header);
  }
  return std::any_of(bytes.begin() + static_cast<std::ptrdiff_t>(std::min(pos, bytes.size())),
                     bytes.end(), [](char ch) { return ch != 0; });
}

// The partitions (topic directory, partition number) whose tail tail_is_torn().
std::set<std::pair<std::string, std::int32_t>> torn_partitions(const std::string& dir) {
  std::set<std::pair<std::string, std::int32_t>> out;
  for (const auto& t : fs::directory_iterator(dir)) {
    if (!t.is_directory() || !fs::exists(t.path() / "topic.conf")) continue;
    for (const auto& p : fs::directory_iterator(t.path())) {
      const std::string name = p.path().filename().string();
      if (!p.is_directory() || name.empty() ||
          name.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      if (tail_is_torn(p.path())) out.emplace(t.path().filename().string(), std::stoi(name));
    }
  }
  return out;
}

// The recovery report of the reopened broker: every partition that recovery changed says so,
// and what it dropped begins at or after the end of what was acknowledged.
void check_reports(const rill::Broker& broker, const Scenario& s, const Model& m,
                   const std::set<std::pair<std::string, std::int32_t>>& torn) {
  // A partition whose files ended in an unfinished frame is named, with the bytes dropped.
  for (const auto& tp : torn) {
    // Named, not a structured binding: clang 14 cannot capture those in the lambda below.
    const std::string& topic = tp.first;
    const std::int32_t partition = tp.second;
    auto st = broker.topic_state(topic);
    if (!st || partition >= (*st)->partition_count()) continue;  // dropped whole on reopen
    INFO("torn tail in " << topic << "-" << partition);
    const auto& all = broker.recovery();
    const auto it = std::find_if(all.begin(), all.end(), [&](const auto& r) {
      return r.topic == topic && r.partition == partition;
    });
    REQUIRE(it != all.end());
    CHECK(it->report.dropped_bytes > 0);
  }
  for (const auto& r : broker.recovery()) {
    INFO("recovery of " << r.topic << "-" << r.partition << ": " << r.report.detail);
    CHECK(!r.report.clean());
    CHECK(!r.report.detail.empty());
    CHECK(r.report.dropped_records == 0);  // a kill leaves at most an unfinished frame
    auto st = broker.topic_state(r.topic);
    REQUIRE(st);
    const std::int64_t end = (*st)->partition(r.partition)->end_offset();
    if (r.report.truncated_at >= 0) CHECK(r.report.truncated_at == end);
    if ((s.kind == Kind::kRecords && r.topic == "t") ||
        (s.kind == Kind::kCompaction && r.topic == "k")) {
      auto it = m.end.find(r.partition);
      const std::int64_t acked = it == m.end.end() ? 0 : it->second;
      if (r.report.truncated_at >= 0) CHECK(r.report.truncated_at >= acked);
    }
  }
}

// What a second open of a recovered directory must also show, beyond an empty recovery list
// (which leaves out index rebuilds: RecoveryReport::clean() does not count them): no
// partition rebuilt an index, and no index file is left without its segment (retention and
// compaction remove a segment's files one by one; a kill between two unlinks must not leave
// an index that a later open mistakes for a segment's).
void check_second_open(const rill::Broker& broker, const std::string& dir) {
  for (const std::string& name : broker.list_topics(true)) {
    auto st = broker.topic_state(name);
    REQUIRE(st);
    for (std::int32_t p = 0; p < (*st)->partition_count(); ++p) {
      INFO("second open of " << name << "-" << p);
      CHECK((*st)->partition(p)->recovery().indexes_rebuilt == 0);
      const std::filesystem::path pdir = std::filesystem::path(dir) / name / std::to_string(p);
      for (const auto& e : std::filesystem::directory_iterator(pdir)) {
        const std::filesystem::path ext = e.path().extension();
        if (ext != ".index" && ext != ".timeindex") continue;
        std::filesystem::path log = e.path();
        log.replace_extension(".log");
        CHECK(std::filesystem::exists(log));
      }
    }
  }
}

void verify_records(rill::Broker& broker, const Scenario& s, Model& m, std::uint64_t salt,
                    bool full) {
  auto topic = StringTopic::open(broker, "t");
  REQUIRE(topic);
  rill::ConsumerBatch<std::string, std::string> batch;
  for (std::int32_t p = 0; p < s.shape.topic.partitions; ++p) {
    CAPTURE(p);
    auto d = broker.describe_topic("t");
    REQUIRE(d);
    const std::int64_t start = d->partitions[static_cast<std::size_t>(p)].start_offset;
    const std::int64_t end = d->partitions[static_cast<std::size_t>(p)].end_offset;
    CAPTURE(start, end, m.end[p]);
    REQUIRE(end >= m.end[p]);  // every acknowledged record is there...
    CHECK(start >= m.start[p]);
    if (s.shape.topic.retention_bytes < 0) CHECK(start == 0);  // ...unless retention took it
    std::int64_t at = std::max(start, full ? 0 : m.verified[p]);
    while (at < end) {
      auto r = topic->read_into(p, at, batch, 200);
      INFO("read at " << at << ": " << (r ? std::string("ok") : r.error().to_string()));
      REQUIRE(r);
      REQUIRE(!batch.empty());
      for (const auto& rec : batch) {
        REQUIRE(rec.offset == at);
        // ...and every record read, acknowledged or not, is exactly what was written.
        REQUIRE(rec.key == std::optional<std::string>(key_of(p, at)));
        if (rec.value != value_of(salt, p, at, s.shape)) FAIL("record " << at << " differs");
        ++at;
      }
    }
    m.end[p] = end;  // what survived is now the log the next child continues
    m.start[p] = start;
    m.verified[p] = end;
  }
}

// After a kill in a compaction: no .cleaned file is left, the segments are contiguous, every
// record read is what was appended at its offset, every acknowledged record is there or
// superseded by a newer record of its key that is (check_compacted), and a second compaction
// works and leaves what it may.
void verify_compacted(rill::Broker& broker, Model& m, std::uint64_t salt) {
  auto state = broker.topic_state("k");
  REQUIRE(state);
  for (std::int32_t p = 0; p < kCompactPartitions; ++p) {
    CAPTURE(p, m.end[p]);
    const rill::storage::Log& log = *(*state)->partition(p);
    const auto model = keyed_model(salt, p);
    const std::int64_t end = log.end_offset();
    REQUIRE(end >= m.end[p]);
    CHECK(log.start_offset() == 0);
    CHECK(rill_test::files_with_suffix(log.directory(), ".cleaned").empty());
    const auto segs = log.segments();
    for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
      CHECK(segs[i]->end_offset() == segs[i + 1]->base_offset());
    }
    const auto total = static_cast<std::uint64_t>(end);
    rill_test::check_compacted(model, rill_test::read_offsets(log, model), total, total, total,
                               false, false);
    m.end[p] = end;
  }
  auto c = broker.compact("k");
  INFO((c ? std::string() : c.error().to_string()));
  REQUIRE(c);
  for (std::int32_t p = 0; p < kCompactPartitions; ++p) {
    CAPTURE(p);
    const rill::storage::Log& log = *(*state)->partition(p);
    const auto model = keyed_model(salt, p);
    const auto total = static_cast<std::uint64_t>(log.end_offset());
    const auto active = log.segments().back()->base_offset();
    // Exact below the active segment: tombstones expire at once (delete_retention_ms 0).
    rill_test::check_compacted(model, rill_test::read_offsets(log, model), total, total, active,
                               false, true);
  }
}

void verify_commits(rill::Broker& broker, Model& m) {
  auto store = broker.offset_store();  // replays every commit record: fails on a corrupt one
  INFO((store ? std::string() : store.error().to_string()));
  REQUIRE(store);
  for (std::int32_t p = 0; p < kCommitPartitions; ++p) {
    CAPTURE(p, m.committed[p]);
    const auto got = (*store)->committed("g", {"c", p});
    if (m.committed[p] == 0) {
      if (got) m.committed[p] = got->offset;
      continue;
    }
    REQUIRE(got);
    CHECK(got->offset >= m.committed[p]);
    CHECK(got->metadata == metadata_of(got->offset));
    m.committed[p] = got->offset;
  }
}

void verify_topics(rill::Broker& broker, Model& m) {
  std::int64_t n = 0;
  while (broker.describe_topic(created_name(n))) ++n;
  CAPTURE(n, m.topics);
  REQUIRE(n >= m.topics);      // every acknowledged topic is there
  REQUIRE(n <= m.topics + 1);  // and at most the one being created when killed
  for (const auto& name : broker.list_topics()) {
    CHECK(name.rfind("t-", 0) == 0);
    auto idx = std::stoll(name.substr(2));
    CHECK(idx < n);  // no gap
  }
  for (std::int64_t i = 0; i < n; ++i) {
    auto d = broker.describe_topic(created_name(i));
    REQUIRE(d);
    const rill::TopicConfig want = created_config(i);
    CHECK(d->config.partitions == want.partitions);  // whole: its config and every partition
    CHECK(d->config.segment_bytes == want.segment_bytes);
    CHECK(d->config.retention_ms == want.retention_ms);
    CHECK(static_cast<std::int32_t>(d->partitions.size()) == want.partitions);
  }
  for (const auto& e : fs::directory_iterator(broker.directory())) {
    const std::string name = e.path().filename().string();
    CHECK((name == "~lock" || name.front() != '~'));  // staging directories were cleared
  }
  if (n > 0) {  // the newest topic takes records
    auto st = broker.topic_state(created_name(n - 1));
    REQUIRE(st);
    REQUIRE((*st)->partition(0)->append({.value = "after"}));
  }
  m.topics = n;
}

void run_scenario(const Scenario& s) {
  if (s.kind == Kind::kPending) {
    WARN("crash matrix scenario '" << s.name << "': " << s.pending_note);
    return;
  }
  const std::uint64_t seed = rill_test::test_seed();
  INFO("scenario '" << s.name << "', seed " << seed << " (replay with RILL_TEST_SEED=" << seed
                    << ")");
  const std::uint64_t salt = mix(seed);
  std::mt19937_64 rng(seed);
  rill_test::TempDir tmp;
  std::string dir;
  Model m;
  bool recovered = true;
  int unclean = 0;
  int killed_compacting = 0;
  int torn_rounds = 0;  // rounds whose files had an unfinished frame before the reopen
  const int n = rounds();
  for (int round = 0; round < n; ++round) {
    if (round % 10 == 0 && recovered) {  // a fresh directory now and then keeps rounds short
      dir = tmp.sub("data-" + std::to_string(round));
      m = Model{};
    }
    // One round in four the parent leaves the crashed directory to the next child, which
    // then recovers it itself and, half the time, is killed before it acknowledges anything
    // (perhaps in the middle of recovery).
    const bool verify = round % 4 != 1 || round + 1 == n;
    const bool early_kill = !recovered && rng() % 2 == 0;
    CAPTURE(round, verify, early_kill);
    const std::uint64_t child_seed = rng();
    const auto run_for = std::chrono::microseconds(early_kill ? rng() % 3000 : 200 + rng() % 4800);
    const std::vector<char> buf = rill_test::run_and_kill(
        [&](int fd) {
          switch (s.kind) {
            case Kind::kRecords:
              records_child(s.shape, dir, salt, child_seed, fd);
            case Kind::kCompaction:
              compaction_child(dir, salt, child_seed, fd);
            case Kind::kCommits:
              commits_child(dir, child_seed, fd);
            case Kind::kTopics:
              topics_child(dir, child_seed, fd);
            case Kind::kPending:
              break;
          }
        },
        early_kill, sizeof(Ack), run_for);
    REQUIRE(buf.size() % sizeof(Ack) == 0);
    if (!early_kill) REQUIRE(buf.size() >= sizeof(Ack));
    for (std::size_t i = 0; i < buf.size(); i += sizeof(Ack)) {
      Ack a;
      std::memcpy(&a, buf.data() + i, sizeof a);
      apply(s, m, a);
    }
    if (m.compacting) ++killed_compacting;
    m.compacting = false;
    if (!verify) {
      recovered = false;
      continue;
    }
    {
      rill::BrokerOptions verify_options = options(0);
      // The compacted topic would be compacted in the background by this broker too, racing
      // the checks (a .cleaned file of its own run was once taken for a leftover of the kill).
      if (s.kind == Kind::kCompaction) verify_options.background_thread = false;
      const auto torn = torn_partitions(dir);
      auto broker = rill::Broker::open(dir, verify_options);
      INFO((broker ? std::string() : broker.error().to_string()));
      REQUIRE(broker);
      if (!(*broker)->recovery().empty()) ++unclean;
      torn_rounds += torn.empty() ? 0 : 1;
      check_reports(**broker, s, m, torn);
      const bool full = round % 10 == 9 || round + 1 == n;
      switch (s.kind) {
        case Kind::kRecords:
          verify_records(**broker, s, m, salt, full);
          break;
        case Kind::kCompaction:
          verify_compacted(**broker, m, salt);
          break;
        case Kind::kCommits:
          verify_commits(**broker, m);
          break;
        case Kind::kTopics:
          verify_topics(**broker, m);
          break;
        case Kind::kPending:
          break;
      }
    }
    // Recovery leaves a directory that recovers clean.
    auto again = rill::Broker::open(dir, options(0));
    REQUIRE(again);
    for (const auto& r : (*again)->recovery()) {
      FAIL("second recovery of " << r.topic << "-" << r.partition << ": " << r.report.detail);
    }
    check_second_open(**again, dir);
    recovered = true;
  }
  if (std::getenv("RILL_TEST_VERBOSE") != nullptr) {
    std::printf(
        "crash matrix '%s': %d rounds, %d with an unclean recovery, %d with a torn tail, %d "
        "killed in a compaction\n",
        s.name, n, unclean, torn_rounds, killed_compacting);
  }
  // Most of the child's time goes to compactions: a run whose kills all missed them tests
  // little.
  if (s.kind == Kind::kCompaction) CHECK(killed_compacting >= n / 4);
}

// Kills need no disk: in tmpfs when $TMPDIR leaves the choice open, so that the fsyncs of
// topic creation and recovery do not dominate the run.
[[maybe_unused]] const bool kInTmpfs = [] {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK | X_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", 0);
  }
  return true;
}();

const Scenario& scenario(const std::string& name) {
  for (const auto& s : scenarios()) {
    if (name == s.name) return s;
  }
  std::abort();
}

}  // namespace

TEST_CASE("crash matrix: acknowledged appends survive SIGKILL", "[crash][matrix]") {
  run_scenario(scenario("append"));
}

TEST_CASE("crash matrix: a SIGKILL during a segment roll loses nothing acknowledged",
          "[crash][matrix]") {
  run_scenario(scenario("segment roll"));
}

TEST_CASE("crash matrix: a SIGKILL during index writes leaves indexes that recover",
          "[crash][matrix]") {
  run_scenario(scenario("index write"));
}

TEST_CASE("crash matrix: a SIGKILL during retention deletes keeps the log dense and readable",
          "[crash][matrix]") {
  run_scenario(scenario("retention delete"));
}

TEST_CASE("crash matrix: a SIGKILL during compaction leaves a valid log keeping every live record",
          "[crash][matrix][compaction]") {
  run_scenario(scenario("compaction"));
}

TEST_CASE("crash matrix: acknowledged offset commits survive SIGKILL", "[crash][matrix]") {
  run_scenario(scenario("offset commit"));
}

TEST_CASE("crash matrix: a topic is created whole or not at all across SIGKILL",
          "[crash][matrix]") {
  run_scenario(scenario("topic creation"));
}

TEST_CASE("crash matrix: every scenario is covered or marked pending", "[crash][matrix]") {
  std::set<std::string> names;
  for (const auto& s : scenarios()) {
    names.insert(s.name);
    if (s.kind == Kind::kPending) CHECK(std::string(s.pending_note).rfind("TODO", 0) == 0);
  }
  CHECK(names == std::set<std::string>{"append", "segment roll", "index write", "retention delete",
                                       "compaction", "offset commit", "topic creation"});
}

}  // namespace crash_matrix_test
