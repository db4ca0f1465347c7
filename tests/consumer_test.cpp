// Consumer<K,V> on its own and as a group member: assign/seek without a group, auto_offset_reset,
// auto-commit (on the broker's clock, and on close), explicit and async commits, positions and
// seeks, offsets_for_times, pause/resume, wakeup(), blocking polls woken by appends,
// max_poll_records, typed decoding with headers, retention overtaking a position, and errors
// that must not lose records fetched from other partitions. Most tests run against an on-disk
// broker and an in-memory one. Group behaviour (rebalances, timeouts, restarts, admin) is in
// group_test.cpp; threads at scale in group_concurrency_test.cpp.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker.hpp"
#include "rill/consumer.hpp"
#include "rill/producer.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace consumer_test {

using rill::Broker;
using rill::Consumer;
using rill::ConsumerConfig;
using rill::ErrorCode;
using rill::ManualClock;
using rill::OffsetAndMetadata;
using rill::OffsetReset;
using rill::Producer;
using rill::ProducerRecord;
using rill::Topic;
using rill::TopicConfig;
using rill::TopicPartition;
using rill_test::TempDir;

namespace {

using StringTopic = Topic<std::string, std::string>;
using StringProducer = Producer<std::string, std::string>;
using StringConsumer = Consumer<std::string, std::string>;

using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

TopicConfig small_topic(std::int32_t partitions) {
  TopicConfig c;
  c.partitions = partitions;
  c.segment_bytes = 256 * 1024;
  c.max_record_bytes = 1024;  // fits the small segments some tests use
  return c;
}

std::unique_ptr<Broker> open_backend(bool in_memory, const TempDir& dir,
                                     std::shared_ptr<rill::Clock> clock = nullptr) {
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  options.clock = std::move(clock);
  if (in_memory) return take(Broker::open_in_memory(options));
  return take(Broker::open(dir.sub("data"), options));
}

// What a test keeps of a polled record (the record itself views the mapping).
struct Seen {
  std::int32_t partition;
  std::int64_t offset;
  std::string value;
};

// Polls without blocking until a poll returns nothing; everything returned, in order.
template <typename K, typename V>
std::vector<Seen> drain(Consumer<K, V>& consumer) {
  std::vector<Seen> out;
  for (int i = 0; i < 10'000; ++i) {
    auto records = take(consumer.poll(std::chrono::milliseconds(0)));
    if (records.empty()) return out;
    for (const auto& r : records) out.push_back({r.partition, r.offset, std::string(r.value)});
  }
  INFO("the consumer never ran dry");
  REQUIRE(false);
  return out;
}

// Sends `n` records "<partition>:<i>" to `partition`.
void fill(StringProducer& producer, const StringTopic& topic, std::int32_t partition, int n,
          int from = 0) {
  for (int i = from; i < from + n; ++i) {
    ProducerRecord<std::string, std::string> r;
    r.key = "k";
    r.value = std::to_string(partition) + ":" + std::to_string(i);
    r.partition = partition;
    take(producer.send(topic, r));
  }
}

std::vector<std::int64_t> offsets_of(const std::vector<Seen>& seen, std::int32_t partition) {
  std::vector<std::int64_t> out;
  for (const auto& s : seen) {
    if (s.partition == partition) out.push_back(s.offset);
  }
  return out;
}

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

ConsumerConfig config(std::string group, OffsetReset reset = OffsetReset::kEarliest) {
  ConsumerConfig c;
  c.group_id = std::move(group);
  c.auto_offset_reset = reset;
  return c;
}

std::optional<std::int64_t> committed_offset(const StringConsumer& c, const TopicPartition& tp) {
  auto om = take(c.committed(tp));
  if (!om) return std::nullopt;
  return om->offset;
}

// A value type without a default constructor: decoded records are built whole, not in place.
struct Label {
  explicit Label(std::string_view s) : text(s) {}
  std::string text;
};

}  // namespace

}  // namespace consumer_test

template <>
struct rill::Serde<consumer_test::Label> {
  using Label = consumer_test::Label;
  static std::string name() { return "test.Label"; }
  static rill::Result<std::string_view> serialize(const Label& v, std::string& /*scratch*/) {
    return std::string_view(v.text);
  }
  static rill::Result<Label> deserialize(std::string_view bytes) {
    if (bytes == "bad") return rill::fail(rill::ErrorCode::kCorruption, "not a label");
    return Label(bytes);
  }
};

namespace consumer_test {

// --- without a group --------------------------------------------------------------------------

TEST_CASE("a consumer without a group reads its assigned partitions and seeks within them",
          "[consumer][assign]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(3)));
  StringProducer producer(*broker);
  for (std::int32_t p = 0; p < 3; ++p) fill(producer, topic, p, 10);
  const TopicPartition p0{"t", 0}, p1{"t", 1}, p2{"t", 2};

  StringConsumer consumer(*broker, config(""));
  require_ok(consumer.assign({p0, p1}));
  CHECK(consumer.assignment() == std::vector<TopicPartition>{p0, p1});
  CHECK(consumer.member_id().empty());

  auto seen = drain(consumer);
  CHECK(seen.size() == 20);
  CHECK(offsets_of(seen, 0) == range(0, 10));
  CHECK(offsets_of(seen, 1) == range(0, 10));
  CHECK(offsets_of(seen, 2).empty());
  for (const auto& s : seen)
    CHECK(s.value == std::to_string(s.partition) + ":" + std::to_string(s.offset));
  CHECK(take(consumer.position(p0)) == 10);
  CHECK(take(consumer.position(p1)) == 10);

  require_ok(consumer.seek(p0, 4));
  CHECK(take(consumer.position(p0)) == 4);
  seen = drain(consumer);
  CHECK(offsets_of(seen, 0) == range(4, 10));
  CHECK(offsets_of(seen, 1).empty());

  require_ok(consumer.seek_to_beginning({p1}));
  CHECK(take(consumer.position(p1)) == 0);
  CHECK(offsets_of(drain(consumer), 1) == range(0, 10));

  require_ok(consumer.seek(p0, 10));  // the end is a valid position
  require_ok(consumer.seek(p1, 0));
  require_ok(consumer.seek_to_end({p0, p1}));
  CHECK(take(consumer.position(p1)) == 10);
  CHECK(drain(consumer).empty());

  // Outside [start, end] and partitions not assigned are refused, and change nothing.
  require_error(consumer.seek(p0, 11), ErrorCode::kOutOfRange);
  require_error(consumer.seek(p0, -1), ErrorCode::kOutOfRange);
  CHECK(take(consumer.position(p0)) == 10);
  require_error(consumer.seek(p2, 0), ErrorCode::kInvalidArgument);
  require_error(consumer.position(p2), ErrorCode::kInvalidArgument);
  require_error(consumer.seek_to_beginning({p2}), ErrorCode::kInvalidArgument);
  require_error(consumer.seek_to_end({p2}), ErrorCode::kInvalidArgument);

  // A new assignment replaces the old one; a bad one leaves the old one in place.
  require_error(consumer.assign({p2, {"missing", 0}}), ErrorCode::kNotFound);
  require_error(consumer.assign({p2, {"t", 3}}), ErrorCode::kOutOfRange);
  CHECK(consumer.assignment() == std::vector<TopicPartition>{p0, p1});
  require_ok(consumer.assign({p2}));
  CHECK(consumer.assignment() == std::vector<TopicPartition>{p2});
  CHECK(offsets_of(drain(consumer), 2) == range(0, 10));
  require_ok(consumer.unsubscribe());
  CHECK(consumer.assignment().empty());
  CHECK(drain(consumer).empty());
}

TEST_CASE("without a group id, subscribe, commit and committed are refused", "[consumer][assign]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 3);
  const TopicPartition p0{"t", 0};

  StringConsumer consumer(*broker, config(""));
  require_error(consumer.subscribe({"t"}), ErrorCode::kInvalidArgument);
  require_ok(consumer.assign({p0}));
  CHECK(drain(consumer).size() == 3);
  require_error(consumer.commit(), ErrorCode::kInvalidArgument);
  require_error(consumer.commit({{p0, OffsetAndMetadata{1, {}, 0}}}), ErrorCode::kInvalidArgument);
  require_error(consumer.committed(p0), ErrorCode::kInvalidArgument);
  std::optional<ErrorCode> async;
  consumer.commit_async([&](const auto&, const rill::Result<void>& r) {
    async = r ? ErrorCode::kOk : r.error().code();
  });
  CHECK(drain(consumer).empty());
  CHECK(async == ErrorCode::kInvalidArgument);
  // Nothing was stored for anyone, and no group appeared.
  CHECK(broker->list_groups().empty());
  // Closing with auto-commit on (the default) commits nothing, and is not an error.
  require_ok(consumer.close());
}

// --- where a partition starts -----------------------------------------------------------------

TEST_CASE("auto_offset_reset: earliest starts at the log's start, latest at its end, none fails",
          "[consumer][offset-reset]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 10);
  fill(producer, topic, 1, 10);
  const TopicPartition p0{"t", 0}, p1{"t", 1};

  SECTION("earliest") {
    StringConsumer c(*broker, config("g", OffsetReset::kEarliest));
    require_ok(c.assign({p0}));
    CHECK(take(c.position(p0)) == 0);
    CHECK(offsets_of(drain(c), 0) == range(0, 10));
  }
  SECTION("latest") {
    StringConsumer c(*broker, config("g", OffsetReset::kLatest));
    require_ok(c.assign({p0}));
    CHECK(take(c.position(p0)) == 10);
    CHECK(drain(c).empty());
    fill(producer, topic, 0, 1, 10);
    CHECK(offsets_of(drain(c), 0) == std::vector<std::int64_t>{10});
  }
  SECTION("none: kOutOfRange without a committed offset, the committed offset with one") {
    StringConsumer c(*broker, config("g", OffsetReset::kNone));
    require_ok(c.assign({p0}));
    require_error(c.position(p0), ErrorCode::kOutOfRange);
    require_error(c.poll(std::chrono::milliseconds(0)), ErrorCode::kOutOfRange);
    require_ok(c.commit({{p0, OffsetAndMetadata{7, {}, 0}}}));
    CHECK(take(c.position(p0)) == 7);
    CHECK(offsets_of(drain(c), 0) == range(7, 10));
  }
  SECTION("a committed offset outside the log is reset as the policy says") {
    StringConsumer committer(*broker, config("g"));
    require_ok(committer.commit({{p0, OffsetAndMetadata{50, {}, 0}}, {p1, {4, {}, 0}}}));
    StringConsumer earliest(*broker, config("g", OffsetReset::kEarliest));
    require_ok(earliest.assign({p0, p1}));
    CHECK(take(earliest.position(p0)) == 0);  // 50 > end 10: reset
    CHECK(take(earliest.position(p1)) == 4);  // valid: used
    StringConsumer latest(*broker, config("g", OffsetReset::kLatest));
    require_ok(latest.assign({p0}));
    CHECK(take(latest.position(p0)) == 10);
    StringConsumer none(*broker, config("g", OffsetReset::kNone));
    require_ok(none.assign({p0}));
    require_error(none.position(p0), ErrorCode::kOutOfRange);
  }
}

TEST_CASE("an unusable partition fails poll without losing records fetched from the others",
          "[consumer][offset-reset][regression]") {
  // Regression: fetch() advanced the positions of the partitions it had already read, then
  // returned the next partition's error; the records read were dropped with the failed result,
  // and a later commit moved past them. Kafka checks positions before it fetches, and returns
  // what it has fetched before raising a record's error.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 5);
  fill(producer, topic, 1, 5);
  const TopicPartition p0{"t", 0}, p1{"t", 1};

  StringConsumer c(*broker, config("g", OffsetReset::kNone));
  require_ok(c.commit({{p0, OffsetAndMetadata{0, {}, 0}}}));  // p1 has no committed offset
  require_ok(c.assign({p0, p1}));
  std::vector<Seen> seen;
  std::optional<ErrorCode> error;
  for (int i = 0; i < 4; ++i) {
    auto r = c.poll(std::chrono::milliseconds(0));
    if (!r) {
      error = r.error().code();
      continue;
    }
    for (const auto& rec : *r) seen.push_back({rec.partition, rec.offset, rec.value});
  }
  CHECK(error == ErrorCode::kOutOfRange);
  CHECK(offsets_of(seen, 0) == range(0, 5));  // delivered, not skipped
  CHECK(take(c.position(p0)) == 5);
  require_ok(c.seek(p1, 2));
  CHECK(offsets_of(drain(c), 1) == range(2, 5));
}

TEST_CASE("a record that does not decode stops its partition there; the others' records arrive",
          "[consumer][decode][regression]") {
  // Same regression as above, for a record of the wrong shape: the records before it, in its
  // own partition and in others, are returned; the bad one fails the next poll (as Kafka's
  // RecordDeserializationException) and stays the position until the application seeks past.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig untyped = small_topic(2);  // no serde names: any types may open it
  take(broker->create_topic("raw", untyped));
  auto raw = take(Topic<std::string, std::string>::open(*broker, "raw"));
  StringProducer producer(*broker);
  auto send = [&](std::int32_t p, std::string value) {
    take(producer.send(raw, {.key = std::nullopt, .value = std::move(value), .partition = p}));
  };
  const std::string eight(8, '\0');  // a valid big-endian int64 (0)
  for (int i = 0; i < 3; ++i) send(0, eight);
  send(1, eight);
  send(1, eight);
  send(1, "bad");  // 3 bytes: not an int64
  send(1, eight);

  Consumer<std::string, std::int64_t> c(*broker, config("", OffsetReset::kEarliest));
  const TopicPartition p0{"raw", 0}, p1{"raw", 1};
  require_ok(c.assign({p0, p1}));
  std::vector<std::pair<std::int32_t, std::int64_t>> seen;
  std::optional<rill::Error> error;
  for (int i = 0; i < 4; ++i) {
    auto r = c.poll(std::chrono::milliseconds(0));
    if (!r) {
      error = r.error();
      continue;
    }
    for (const auto& rec : *r) {
      CHECK(rec.value == 0);
      seen.emplace_back(rec.partition, rec.offset);
    }
  }
  REQUIRE(error.has_value());
  CHECK(error->code() == ErrorCode::kCorruption);
  CHECK(error->message().find("raw-1 offset 2") != std::string::npos);
  const std::vector<std::pair<std::int32_t, std::int64_t>> want{
      {0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}};
  CHECK(std::set(seen.begin(), seen.end()) ==
        std::set<std::pair<std::int32_t, std::int64_t>>(want.begin(), want.end()));
  CHECK(seen.size() == want.size());  // nothing twice
  CHECK(take(c.position(p1)) == 2);
  require_error(c.poll(std::chrono::milliseconds(0)), ErrorCode::kCorruption);
  require_ok(c.seek(p1, 3));
  auto last = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(last.size() == 1);
  CHECK(last[0].offset == 3);
}

TEST_CASE("values of a type without a default constructor decode, and a bad one stops there",
          "[consumer][decode]") {
  TempDir dir;
  auto broker = open_backend(false, dir);
  take(broker->create_topic("raw", small_topic(1)));  // untyped: any types may open it
  auto raw = take(Topic<std::string, std::string>::open(*broker, "raw"));
  StringProducer producer(*broker);
  for (const char* v : {"a", "bb", "bad", "ccc"}) {
    take(producer.send(raw, {.key = std::string("k"), .value = v, .partition = 0}));
  }
  Consumer<std::string, Label> c(*broker, config("", OffsetReset::kEarliest));
  const TopicPartition p0{"raw", 0};
  require_ok(c.assign({p0}));
  auto first = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(first.size() == 2);
  CHECK(first[0].value.text == "a");
  CHECK(first[1].value.text == "bb");
  CHECK(first[1].key == std::optional<std::string>("k"));
  CHECK(first[1].offset == 1);
  require_error(c.poll(std::chrono::milliseconds(0)), ErrorCode::kCorruption);
  CHECK(take(c.position(p0)) == 2);
  require_ok(c.seek(p0, 3));
  auto last = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(last.size() == 1);
  CHECK(last[0].value.text == "ccc");
}

// --- commits ------------------------------------------------------------------------------

TEST_CASE("auto-commit stores positions once the interval passes on the broker's clock",
          "[consumer][commit][auto-commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(1'000'000);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 10);
  const TopicPartition p0{"t", 0};

  ConsumerConfig cfg = config("g");
  cfg.auto_commit_interval_ms = 1000;
  StringConsumer c(*broker, cfg);
  SECTION("as a group member") { require_ok(c.subscribe({"t"})); }
  SECTION("with assigned partitions") { require_ok(c.assign({p0})); }

  CHECK(drain(c).size() == 10);
  CHECK(committed_offset(c, p0) == std::nullopt);  // no time has passed
  clock->advance_ms(999);
  CHECK(drain(c).empty());
  CHECK(committed_offset(c, p0) == std::nullopt);
  clock->advance_ms(1);
  CHECK(drain(c).empty());
  auto om = take(c.committed(p0));
  REQUIRE(om.has_value());
  CHECK(om->offset == 10);
  CHECK(om->commit_timestamp_ms == 1'001'000);
  // The next one is an interval after that one.
  fill(producer, topic, 0, 5, 10);
  CHECK(drain(c).size() == 5);
  clock->advance_ms(999);
  CHECK(drain(c).empty());
  CHECK(committed_offset(c, p0) == 10);
  clock->advance_ms(1);
  CHECK(drain(c).empty());
  CHECK(committed_offset(c, p0) == 15);
}

TEST_CASE("with auto-commit off, polling never commits", "[consumer][commit][auto-commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(1'000'000);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 10);
  ConsumerConfig cfg = config("g");
  cfg.enable_auto_commit = false;
  cfg.auto_commit_interval_ms = 10;
  StringConsumer c(*broker, cfg);
  require_ok(c.subscribe({"t"}));
  CHECK(drain(c).size() == 10);
  clock->advance_ms(1000);
  CHECK(drain(c).empty());
  require_ok(c.close());
  StringConsumer reader(*broker, config("g"));
  CHECK(committed_offset(reader, {"t", 0}) == std::nullopt);
}

TEST_CASE("close commits positions when auto-commit is on", "[consumer][commit][auto-commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 6);
  fill(producer, topic, 1, 4);
  const TopicPartition p0{"t", 0}, p1{"t", 1};
  const bool auto_commit = GENERATE(true, false);
  const bool subscribed = GENERATE(true, false);
  CAPTURE(auto_commit, subscribed);

  ConsumerConfig cfg = config("g");
  cfg.enable_auto_commit = auto_commit;
  {
    StringConsumer c(*broker, cfg);
    // Regression (subscribed == false): close() committed only for group members; a consumer
    // with assigned partitions and a group id lost its auto-commit on close (Kafka commits).
    if (subscribed) {
      require_ok(c.subscribe({"t"}));
    } else {
      require_ok(c.assign({p0, p1}));
    }
    CHECK(drain(c).size() == 10);
    require_ok(c.close());
    require_ok(c.close());  // idempotent
    require_error(c.poll(std::chrono::milliseconds(0)), ErrorCode::kClosed);
  }
  StringConsumer reader(*broker, config("g"));
  if (auto_commit) {
    CHECK(committed_offset(reader, p0) == 6);
    CHECK(committed_offset(reader, p1) == 4);
  } else {
    CHECK(committed_offset(reader, p0) == std::nullopt);
    CHECK(committed_offset(reader, p1) == std::nullopt);
  }
}

TEST_CASE("the destructor closes: a member leaves its group and auto-commits",
          "[consumer][commit][auto-commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 3);
  {
    StringConsumer c(*broker, config("g"));
    require_ok(c.subscribe({"t"}));
    CHECK(drain(c).size() == 3);
    auto coordinator = take(broker->group_coordinator("g"));
    CHECK(coordinator->describe().members.size() == 1);
  }
  auto coordinator = take(broker->group_coordinator("g"));
  CHECK(coordinator->describe().members.empty());
  StringConsumer reader(*broker, config("g"));
  CHECK(committed_offset(reader, {"t", 0}) == 3);
}

TEST_CASE("commit stores exactly the given offsets and metadata, stamped with the broker's time",
          "[consumer][commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(5'000);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 10);
  fill(producer, topic, 1, 10);
  const TopicPartition p0{"t", 0}, p1{"t", 1};

  ConsumerConfig cfg = config("g");
  cfg.enable_auto_commit = false;
  StringConsumer c(*broker, cfg);
  require_ok(c.subscribe({"t"}));
  CHECK(drain(c).size() == 20);
  clock->advance_ms(7);
  require_ok(c.commit({{p0, OffsetAndMetadata{3, "why", 0}}}));
  auto om = take(c.committed(p0));
  REQUIRE(om.has_value());
  CHECK(om->offset == 3);
  CHECK(om->metadata == "why");
  CHECK(om->commit_timestamp_ms == 5'007);
  CHECK(take(c.committed(p1)) == std::nullopt);  // only what was given
  // commit() stores every position; an unowned partition is refused (kFenced) and stores nothing.
  require_error(c.commit({{{"t", 7}, OffsetAndMetadata{1, {}, 0}}}), ErrorCode::kFenced);
  require_ok(c.commit());
  CHECK(committed_offset(c, p0) == 10);
  CHECK(committed_offset(c, p1) == 10);
  require_ok(c.commit({{p0, OffsetAndMetadata{3, {}, 0}}}));  // backwards is allowed, as Kafka
  require_ok(c.close());

  // The next member of the group starts where the commits say.
  StringConsumer next(*broker, cfg);
  require_ok(next.subscribe({"t"}));
  auto seen = drain(next);
  CHECK(offsets_of(seen, 0) == range(3, 10));
  CHECK(offsets_of(seen, 1).empty());
}

TEST_CASE("commit_async commits at once and reports at the next poll, on the polling thread",
          "[consumer][commit]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 4);
  fill(producer, topic, 1, 2);
  const TopicPartition p0{"t", 0}, p1{"t", 1};
  ConsumerConfig cfg = config("g");
  cfg.enable_auto_commit = false;
  StringConsumer c(*broker, cfg);
  require_ok(c.subscribe({"t"}));
  CHECK(drain(c).size() == 6);

  int calls = 0;
  std::map<TopicPartition, OffsetAndMetadata> got;
  bool ok = false;
  std::thread::id on;
  c.commit_async(
      [&](const std::map<TopicPartition, OffsetAndMetadata>& offsets, const rill::Result<void>& r) {
        ++calls;
        got = offsets;
        ok = r.has_value();
        on = std::this_thread::get_id();
      });
  CHECK(calls == 0);                    // not yet
  CHECK(committed_offset(c, p0) == 4);  // but already committed
  CHECK(committed_offset(c, p1) == 2);
  (void)take(c.poll(std::chrono::milliseconds(0)));
  CHECK(calls == 1);
  CHECK(ok);
  CHECK(on == std::this_thread::get_id());
  REQUIRE(got.size() == 2);
  CHECK(got.at(p0).offset == 4);
  CHECK(got.at(p1).offset == 2);
  (void)take(c.poll(std::chrono::milliseconds(0)));
  CHECK(calls == 1);  // once

  // One left pending runs at close().
  c.commit_async([&](const auto&, const rill::Result<void>&) { ++calls; });
  require_ok(c.close());
  CHECK(calls == 2);
}

// --- positions in time, pausing -------------------------------------------------------------

TEST_CASE("offsets_for_times gives the first offset at or after a timestamp, or nullopt",
          "[consumer][time]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig tc = small_topic(2);
  tc.segment_bytes = 4096;  // several segments
  auto topic = take(StringTopic::create(*broker, "t", tc));
  StringProducer producer(*broker);
  // p0: 300 records at timestamps 1000, 1010, ... (two per timestamp from 200 on).
  std::vector<std::int64_t> ts;
  for (int i = 0; i < 300; ++i) {
    ts.push_back(1000 + 10 * (i < 200 ? i : 200 + (i - 200) / 2));
    take(producer.send(
        topic,
        {.key = "k", .value = std::string(40, 'v'), .timestamp_ms = ts.back(), .partition = 0}));
  }
  REQUIRE(topic.log(0)->segment_count() > 3);
  const TopicPartition p0{"t", 0}, p1{"t", 1};

  StringConsumer c(*broker, config(""));  // nothing assigned: any partition may be asked
  auto first_at_or_after = [&](std::int64_t t) -> std::optional<std::int64_t> {
    for (std::size_t i = 0; i < ts.size(); ++i) {
      if (ts[i] >= t) return static_cast<std::int64_t>(i);
    }
    return std::nullopt;
  };
  for (std::int64_t t : {0, 1000, 1001, 1010, 1500, 2990, 2995, 3000, 3005, 3490, 3495, 3500}) {
    CAPTURE(t);
    auto got = take(c.offsets_for_times({{p0, t}, {p1, t}}));
    CHECK(got.at(p0) == first_at_or_after(t));
    CHECK(got.at(p1) == std::nullopt);  // empty partition
  }
  require_error(c.offsets_for_times({{{"t", 2}, 0}}), ErrorCode::kOutOfRange);
  require_error(c.offsets_for_times({{{"missing", 0}, 0}}), ErrorCode::kNotFound);

  // Seeking to what it returns reads from there.
  require_ok(c.assign({p0}));
  const auto at = take(c.offsets_for_times({{p0, 3000}})).at(p0);
  REQUIRE(at.has_value());
  require_ok(c.seek(p0, *at));
  auto seen = drain(c);
  REQUIRE(!seen.empty());
  CHECK(seen.front().offset == *at);
}

TEST_CASE("paused partitions return nothing but keep their position until resumed",
          "[consumer][pause]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(2)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 5);
  fill(producer, topic, 1, 5);
  const TopicPartition p0{"t", 0}, p1{"t", 1};

  StringConsumer c(*broker, config("g"));
  SECTION("assigned") { require_ok(c.assign({p0, p1})); }
  SECTION("subscribed") {
    require_ok(c.subscribe({"t"}));
    (void)take(c.poll(std::chrono::milliseconds(0)));  // joins; may already return records
    require_ok(c.seek_to_beginning({p0, p1}));
  }
  require_ok(c.pause({p0}));
  CHECK(c.paused() == std::set<TopicPartition>{p0});
  auto seen = drain(c);
  CHECK(offsets_of(seen, 0).empty());
  CHECK(offsets_of(seen, 1) == range(0, 5));
  CHECK(take(c.position(p0)) == 0);
  CHECK(c.assignment().size() == 2);  // still owned

  require_ok(c.resume({p0}));
  CHECK(c.paused().empty());
  CHECK(offsets_of(drain(c), 0) == range(0, 5));

  require_ok(c.pause({p0, p1}));
  fill(producer, topic, 0, 3, 5);
  fill(producer, topic, 1, 3, 5);
  CHECK(drain(c).empty());
  auto empty = take(c.poll(std::chrono::milliseconds(20)));  // appends ring, still nothing
  CHECK(empty.empty());
  CHECK(take(c.position(p0)) == 5);
  CHECK(take(c.position(p1)) == 5);
  require_ok(c.resume({p1}));
  seen = drain(c);
  CHECK(offsets_of(seen, 0).empty());
  CHECK(offsets_of(seen, 1) == range(5, 8));
  require_ok(c.resume({p0}));
  CHECK(offsets_of(drain(c), 0) == range(5, 8));

  require_error(c.pause({{"t", 9}}), ErrorCode::kInvalidArgument);
  require_error(c.resume({{"other", 0}}), ErrorCode::kInvalidArgument);
}

// --- blocking -------------------------------------------------------------------------------

TEST_CASE("wakeup from another thread breaks a blocking poll with kInterrupted",
          "[consumer][wakeup]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  const bool busy = GENERATE(false, true);  // ConsumerConfig::busy_poll
  CAPTURE(busy);
  ConsumerConfig cfg = config("g", OffsetReset::kLatest);
  cfg.busy_poll = busy;
  StringConsumer c(*broker, cfg);
  SECTION("assigned") { require_ok(c.assign({{"t", 0}})); }
  SECTION("subscribed") { require_ok(c.subscribe({"t"})); }
  SECTION("nothing to read at all") {}

  const auto start = std::chrono::steady_clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    c.wakeup();
  });
  auto r = c.poll(std::chrono::seconds(10));
  const auto took = std::chrono::steady_clock::now() - start;
  waker.join();
  require_error(r, ErrorCode::kInterrupted);
  CHECK(took < std::chrono::seconds(5));
  // Consumed: the next poll is a normal one.
  CHECK(take(c.poll(std::chrono::milliseconds(0))).empty());

  // A wakeup with no poll running breaks the next one, even with records waiting.
  StringProducer producer(*broker);
  fill(producer, topic, 0, 1);
  c.wakeup();
  require_error(c.poll(std::chrono::seconds(10)), ErrorCode::kInterrupted);
}

TEST_CASE("an append wakes a poll blocked on the consumer's partitions", "[consumer][blocking]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(4)));
  StringProducer producer(*broker);
  const bool busy = GENERATE(false, true);  // ConsumerConfig::busy_poll: spins, never sleeps
  CAPTURE(busy);
  ConsumerConfig cfg = config("g", OffsetReset::kLatest);
  cfg.busy_poll = busy;
  StringConsumer c(*broker, cfg);
  SECTION("assigned") { require_ok(c.assign({{"t", 0}, {"t", 3}})); }
  SECTION("subscribed") {
    require_ok(c.subscribe({"t"}));
    CHECK(take(c.poll(std::chrono::milliseconds(0))).empty());  // joins, owns all four
    REQUIRE(c.assignment().size() == 4);
  }
  CHECK(take(c.position({"t", 3})) == 0);  // sets the position before the append

  const auto start = std::chrono::steady_clock::now();
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    StringProducer p(*broker);
    (void)p.send(topic, {.key = "k", .value = "late", .partition = 3});
  });
  auto records = take(c.poll(std::chrono::seconds(10)));
  const auto took = std::chrono::steady_clock::now() - start;
  sender.join();
  REQUIRE(records.size() == 1);
  CHECK(records[0].value == "late");
  CHECK(records[0].partition == 3);
  CHECK(took < std::chrono::seconds(5));  // woken, not timed out
  // A busy poll sees the record by spinning, not at its once-a-second group round.
  if (busy) CHECK(took < std::chrono::milliseconds(900));

  // With nothing arriving, poll waits out its timeout and returns nothing.
  const auto before = std::chrono::steady_clock::now();
  CHECK(take(c.poll(std::chrono::milliseconds(30))).empty());
  CHECK(std::chrono::steady_clock::now() - before >= std::chrono::milliseconds(30));
}

// --- what poll returns ----------------------------------------------------------------------

TEST_CASE("poll returns at most max_poll_records, every record once and in order",
          "[consumer][poll]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig tc = small_topic(3);
  tc.segment_bytes = 8192;  // batches also stop at segment ends
  auto topic = take(StringTopic::create(*broker, "t", tc));
  StringProducer producer(*broker);
  for (std::int32_t p = 0; p < 3; ++p) fill(producer, topic, p, 100);
  const std::size_t max = GENERATE(std::size_t{1}, std::size_t{37}, std::size_t{500});
  CAPTURE(max);
  ConsumerConfig cfg = config("");
  cfg.max_poll_records = max;
  StringConsumer c(*broker, cfg);
  require_ok(c.assign({{"t", 0}, {"t", 1}, {"t", 2}}));
  std::vector<Seen> seen;
  for (int i = 0; i < 1000; ++i) {
    auto records = take(c.poll(std::chrono::milliseconds(0)));
    CHECK(records.size() <= max);
    if (records.empty()) break;
    for (const auto& r : records) seen.push_back({r.partition, r.offset, r.value});
  }
  CHECK(seen.size() == 300);
  for (std::int32_t p = 0; p < 3; ++p) CHECK(offsets_of(seen, p) == range(0, 100));
}

TEST_CASE("records decode with the topic's types, keys, timestamps and headers",
          "[consumer][decode]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(42'000);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(Topic<std::int32_t, double>::create(*broker, "typed", small_topic(2)));
  Producer<std::int32_t, double> producer(*broker);
  const std::vector<rill::storage::Header> headers{
      {"trace", std::string_view("abc")}, {"empty", std::string_view()}, {"null", std::nullopt}};
  take(producer.send(topic, {.key = -7, .value = 2.5, .headers = headers, .partition = 1}));
  take(producer.send(topic,
                     {.key = std::nullopt, .value = -0.25, .timestamp_ms = 7, .partition = 1}));

  Consumer<std::int32_t, double> c(*broker, config("", OffsetReset::kEarliest));
  require_ok(c.assign({{"typed", 1}}));
  auto records = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(records.size() == 2);
  const auto& a = records[0];
  CHECK(a.topic == "typed");
  CHECK(a.partition == 1);
  CHECK(a.offset == 0);
  CHECK(a.key == std::optional<std::int32_t>(-7));
  CHECK(a.value == 2.5);
  CHECK(a.timestamp_ms == 42'000);  // the broker's clock
  std::vector<std::pair<std::string, std::optional<std::string>>> hs;
  for (const auto& h : a.headers) {
    hs.emplace_back(std::string(h.name),
                    h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
  }
  CHECK(hs == std::vector<std::pair<std::string, std::optional<std::string>>>{
                  {"trace", "abc"}, {"empty", ""}, {"null", std::nullopt}});
  const auto& b = records[1];
  CHECK(b.offset == 1);
  CHECK(!b.key.has_value());
  CHECK(b.value == -0.25);
  CHECK(b.timestamp_ms == 7);
  CHECK(b.headers.empty());

  // Other types are refused, by assign and by subscribe; so is a missing topic.
  Consumer<std::string, double> wrong(*broker, config("g"));
  require_error(wrong.assign({{"typed", 0}}), ErrorCode::kInvalidArgument);
  require_error(wrong.subscribe({"typed"}), ErrorCode::kInvalidArgument);
  require_error(wrong.subscribe({"missing"}), ErrorCode::kNotFound);
  CHECK(wrong.member_id().empty());
}

TEST_CASE("zero-copy records stay valid while their ConsumerRecords lives", "[consumer][decode]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig tc = small_topic(1);
  tc.segment_bytes = 4096;
  tc.retention_bytes = 0;  // every sealed segment goes at once
  auto topic = take(StringTopic::create(*broker, "t", tc));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 20);
  Consumer<std::string_view, std::string_view> c(*broker, config("", OffsetReset::kEarliest));
  require_ok(c.assign({{"t", 0}}));
  auto held = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(!held.empty());
  // Roll and delete the segment the views point into.
  fill(producer, topic, 0, 200, 20);
  (void)take(topic.log(0)->enforce_retention());
  REQUIRE(topic.log(0)->start_offset() > held[held.size() - 1].offset);
  for (std::size_t i = 0; i < held.size(); ++i) {
    CHECK(held[i].value == "0:" + std::to_string(held[i].offset));
    CHECK(held[i].key == std::optional<std::string_view>("k"));
  }
}

TEST_CASE("records of earlier polls stay valid while later polls read on in their partitions",
          "[consumer][decode]") {
  // Each partition's read state is reused from poll to poll; the records a poll returned must
  // not depend on it: they stay valid while later polls read on, past their segment, and after
  // retention deleted it.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig tc = small_topic(2);
  tc.segment_bytes = 4096;
  tc.retention_bytes = 8192;  // keeps the newest segments: records not yet read survive
  auto topic = take(StringTopic::create(*broker, "t", tc));
  StringProducer producer(*broker);
  ConsumerConfig cc = config("", OffsetReset::kEarliest);
  cc.max_poll_records = 7;  // polls ending inside a partition's new records
  Consumer<std::string_view, std::string_view> c(*broker, cc);
  require_ok(c.assign({{"t", 0}, {"t", 1}}));
  std::vector<rill::ConsumerRecords<std::string_view, std::string_view>> held;
  std::int64_t next[2] = {0, 0};
  for (int round = 0; round < 30; ++round) {
    for (std::int32_t p = 0; p < 2; ++p) fill(producer, topic, p, 10, round * 10);
    for (int polls = 0; next[0] < (round + 1) * 10 || next[1] < (round + 1) * 10; ++polls) {
      REQUIRE(polls < 10);
      auto records = take(c.poll(std::chrono::milliseconds(0)));
      REQUIRE(!records.empty());
      for (const auto& r : records) {
        REQUIRE(r.offset == next[r.partition]);
        ++next[r.partition];
      }
      held.push_back(std::move(records));
    }
  }
  for (std::int32_t p = 0; p < 2; ++p) REQUIRE(topic.log(p)->start_offset() > 100);
  std::size_t n = 0;
  for (const auto& records : held) {
    for (const auto& r : records) {
      CHECK(r.value == std::to_string(r.partition) + ":" + std::to_string(r.offset));
      CHECK(r.key == std::optional<std::string_view>("k"));
      ++n;
    }
  }
  CHECK(n == 600);
}

TEST_CASE("a tombstone decodes to nullopt for optional values", "[consumer][decode]") {
  TempDir dir;
  auto broker = open_backend(true, dir);
  auto topic =
      take(Topic<std::string, std::optional<std::string>>::create(*broker, "t", small_topic(1)));
  Producer<std::string, std::optional<std::string>> producer(*broker);
  take(producer.send(topic, "a", std::optional<std::string>("x")));
  take(producer.send(topic, "a", std::optional<std::string>()));
  Consumer<std::string, std::optional<std::string>> c(*broker, config("", OffsetReset::kEarliest));
  require_ok(c.assign({{"t", 0}}));
  auto records = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(records.size() == 2);
  CHECK(records[0].value == std::optional<std::string>("x"));
  CHECK(records[1].value == std::nullopt);
}

// --- retention ------------------------------------------------------------------------------

TEST_CASE("retention passing a consumer's position resets it as auto_offset_reset says",
          "[consumer][retention][offset-reset]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig tc = small_topic(1);
  tc.segment_bytes = 2048;
  tc.retention_bytes = 4096;
  auto topic = take(StringTopic::create(*broker, "t", tc));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 5);
  const TopicPartition p0{"t", 0};
  const OffsetReset reset =
      GENERATE(OffsetReset::kEarliest, OffsetReset::kLatest, OffsetReset::kNone);
  CAPTURE(static_cast<int>(reset));

  ConsumerConfig cfg = config("g", reset);
  cfg.max_poll_records = 2;
  StringConsumer c(*broker, cfg);
  require_ok(c.commit({{p0, OffsetAndMetadata{0, {}, 0}}}));  // so kNone can start
  require_ok(c.assign({p0}));
  auto first = take(c.poll(std::chrono::milliseconds(0)));
  REQUIRE(first.size() == 2);
  REQUIRE(take(c.position(p0)) == 2);

  fill(producer, topic, 0, 200, 5);
  (void)take(topic.log(0)->enforce_retention());
  const std::int64_t start = topic.log(0)->start_offset();
  const std::int64_t end = topic.log(0)->end_offset();
  REQUIRE(start > 2);

  auto r = c.poll(std::chrono::milliseconds(0));
  switch (reset) {
    case OffsetReset::kEarliest:
      REQUIRE(r.has_value());
      REQUIRE(!r->empty());
      CHECK((*r)[0].offset == start);
      break;
    case OffsetReset::kLatest:
      REQUIRE(r.has_value());
      CHECK(r->empty());
      CHECK(take(c.position(p0)) == end);
      break;
    case OffsetReset::kNone:
      require_error(r, ErrorCode::kOutOfRange);
      CHECK(take(c.position(p0)) == 2);  // left for the application to seek
      break;
  }
}

// --- lifecycle ------------------------------------------------------------------------------

TEST_CASE("a closed consumer refuses polls; subscribing twice changes the subscription",
          "[consumer][subscribe]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto a = take(StringTopic::create(*broker, "a", small_topic(2)));
  auto b = take(StringTopic::create(*broker, "b", small_topic(1)));
  StringProducer producer(*broker);
  fill(producer, a, 0, 2);
  fill(producer, b, 0, 3);
  StringConsumer c(*broker, config("g"));
  require_ok(c.subscribe({"a"}));
  const std::string id = c.member_id();
  CHECK(!id.empty());
  CHECK(drain(c).size() == 2);
  CHECK(c.assignment() == std::vector<TopicPartition>{{"a", 0}, {"a", 1}});
  require_ok(c.subscribe({"b"}));
  CHECK(c.member_id() == id);  // the same member, a new subscription
  auto seen = drain(c);
  CHECK(c.assignment() == std::vector<TopicPartition>{{"b", 0}});
  CHECK(seen.size() == 3);
  require_error(c.assign({{"a", 0}}), ErrorCode::kInvalidArgument);  // while subscribed
  require_ok(c.unsubscribe());
  CHECK(c.member_id().empty());
  CHECK(c.assignment().empty());
  require_ok(c.assign({{"a", 0}}));  // allowed again
  require_ok(c.close());
  require_error(c.poll(std::chrono::milliseconds(0)), ErrorCode::kClosed);
}

TEST_CASE("a consumer outside a group cannot commit while the group has members",
          "[consumer][commit][assign]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);
  fill(producer, topic, 0, 5);
  const TopicPartition p0{"t", 0};
  ConsumerConfig cfg = config("g");
  cfg.enable_auto_commit = false;

  StringConsumer outsider(*broker, cfg);
  require_ok(outsider.assign({p0}));
  require_ok(outsider.commit({{p0, OffsetAndMetadata{2, {}, 0}}}));  // an empty group: allowed

  StringConsumer member(*broker, cfg);
  require_ok(member.subscribe({"t"}));
  CHECK(drain(member).size() == 3);  // resumes at the outsider's commit
  require_ok(member.commit());
  // Now the group is consuming: a stray commit would rewind it, and is refused.
  require_error(outsider.commit({{p0, OffsetAndMetadata{0, {}, 0}}}), ErrorCode::kFenced);
  CHECK(committed_offset(member, p0) == 5);
  require_ok(member.close());
  require_ok(outsider.commit({{p0, OffsetAndMetadata{1, {}, 0}}}));  // empty again: allowed
  CHECK(committed_offset(outsider, p0) == 1);
}

TEST_CASE("a consumer at its partition's end makes the appenders fault in their own pages",
          "[consumer][prefault]") {
  const bool busy = GENERATE(false, true);
  INFO("busy_poll " << busy);
  TempDir dir;
  rill::BrokerOptions options;
  options.prefault_bytes = 256u << 10;
  options.background_thread = false;  // background rounds run in run_due() only
  auto broker = take(Broker::open(dir.sub("data"), options));
  TopicConfig config;
  config.partitions = 1;
  config.segment_bytes = 8u << 20;
  auto topic = take(StringTopic::create(*broker, "t", config));
  StringProducer producer(*broker);
  StringConsumer consumer(*broker,
                          {.auto_offset_reset = OffsetReset::kEarliest, .busy_poll = busy});
  require_ok(consumer.assign({{"t", 0}}));
  // At the end: waits 1 ms, asleep or spinning; no append wakes it.
  CHECK(take(consumer.poll(std::chrono::milliseconds(1))).empty());
  for (int i = 0; i < 1000; ++i) {
    take(producer.send(topic, {.key = std::string("k"), .value = std::string(1000, 'v')}));
  }
  (void)take(broker->run_due());
  const auto counters = topic.log(0)->counters();
  // Skipped on a kernel without MADV_POPULATE_WRITE, where nothing is prefaulted.
  if (counters.prefaulted_by_appenders + counters.prefaulted_by_worker != 0) {
    CHECK(counters.prefaulted_by_appenders > 0);
    CHECK(counters.prefaulted_by_worker == 0);
  }
  std::size_t read = 0;
  while (read < 1000) read += take(consumer.poll(std::chrono::milliseconds(0))).size();
  CHECK(read == 1000);
}

TEST_CASE("a poll of milliseconds::max() blocks until a record arrives", "[consumer][poll]") {
  // milliseconds::max() overflowed on its way to a deadline: a poll meant to block forever
  // returned nothing at once, and a loop around it spun.
  TempDir dir;
  auto broker = open_backend(true, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringConsumer c(*broker, {.auto_offset_reset = OffsetReset::kEarliest});
  rill_test::require_ok(c.assign({{"t", 0}}));
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    StringProducer p(*broker);
    take(p.send(topic, "k", "v"));
  });
  auto records = take(c.poll(std::chrono::milliseconds::max()));
  producer.join();
  REQUIRE(records.size() == 1);
  CHECK(records.begin()->value == "v");
}

}  // namespace consumer_test
