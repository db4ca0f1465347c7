// Producer<K,V>: Kafka's routing (murmur2 for keys, sticky or round-robin without), user
// partitioners, explicit partitions, send_batch (input-order metadata, consecutive offsets,
// all-or-nothing), serializer failures, timestamps, flush, and routing after a topic grows.
// Every test runs against an on-disk broker and an in-memory one.
#include <atomic>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker.hpp"
#include "rill/consumer_group.hpp"
#include "rill/partitioner.hpp"
#include "rill/producer.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace producer_test {

namespace {

// A user type whose serializer refuses some values (a negative quantity).
struct Order {
  std::int64_t id;
  std::int32_t qty;
  bool operator==(const Order&) const = default;
};

}  // namespace

}  // namespace producer_test

template <>
struct rill::Serde<producer_test::Order> {
  using Order = producer_test::Order;
  static std::string name() { return "test.Order/text-v1"; }
  static rill::Result<std::string_view> serialize(const Order& o, std::string& scratch) {
    if (o.qty < 0) return rill::fail(rill::ErrorCode::kInvalidArgument, "Order: negative qty");
    scratch = std::to_string(o.id) + "," + std::to_string(o.qty);
    return std::string_view(scratch);
  }
  static rill::Result<Order> deserialize(std::string_view bytes) {
    Order o{};
    const char* end = bytes.data() + bytes.size();
    auto [p, ec] = std::from_chars(bytes.data(), end, o.id);
    if (ec != std::errc() || p == end || *p != ',') {
      return rill::fail(rill::ErrorCode::kCorruption, "Order: expected <id>,<qty>");
    }
    auto [q, ec2] = std::from_chars(p + 1, end, o.qty);
    if (ec2 != std::errc() || q != end) {
      return rill::fail(rill::ErrorCode::kCorruption, "Order: expected <id>,<qty>");
    }
    return o;
  }
};

namespace producer_test {

using rill::Broker;
using rill::ErrorCode;
using rill::KeylessStrategy;
using rill::ManualClock;
using rill::Producer;
using rill::ProducerConfig;
using rill::ProducerRecord;
using rill::RecordMetadata;
using rill::Topic;
using rill::TopicConfig;
using rill_test::TempDir;

namespace {

using StringTopic = Topic<std::string, std::string>;
using StringProducer = Producer<std::string, std::string>;
using StringRecord = ProducerRecord<std::string, std::string>;

using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TopicConfig small_topic(std::int32_t partitions) {
  TopicConfig c;
  c.partitions = partitions;
  c.segment_bytes = 256 * 1024;
  c.max_record_bytes = 4096;
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

// The end offset of every partition.
template <typename K, typename V>
std::vector<std::int64_t> ends(const Topic<K, V>& topic) {
  std::vector<std::int64_t> out;
  for (std::int32_t p = 0; p < topic.partitions(); ++p) out.push_back(topic.log(p)->end_offset());
  return out;
}

// The value stored at (partition, offset) of a string topic.
std::string value_at(const StringTopic& topic, std::int32_t partition, std::int64_t offset) {
  auto batch = take(topic.read(partition, offset, 1));
  REQUIRE(batch.size() == 1);
  return batch[0].value;
}

// Every (key, value) of a partition, in offset order (reads on across segment boundaries).
std::vector<std::pair<std::optional<std::string>, std::string>> all_records(
    const StringTopic& topic, std::int32_t partition) {
  std::vector<std::pair<std::optional<std::string>, std::string>> out;
  rill::ConsumerBatch<std::string, std::string> batch;
  std::int64_t next = 0;
  while (next < topic.log(partition)->end_offset()) {
    require_ok(topic.read_into(partition, next, batch, 256));
    REQUIRE(!batch.empty());
    for (const auto& r : batch) out.emplace_back(r.key, r.value);
    next = batch.next_offset();
  }
  return out;
}

}  // namespace

// --- keyed routing ---------------------------------------------------------------------------

TEST_CASE("keyed records land on partition_for_key of the serialized key, as in Kafka",
          "[producer][routing]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(8)));
  StringProducer producer(*broker);

  // Kafka's UtilsTest: murmur2("21") == -973932308; to_positive gives 1173551340, and
  // 1173551340 % 8 == 4.
  REQUIRE(rill::murmur2("21") == -973932308);
  const auto md = take(producer.send(topic, "21", "v"));
  CHECK(md.partition == 4);
  CHECK(md.partition == 1173551340 % 8);
  CHECK(md.topic == "orders");
  CHECK(value_at(topic, 4, md.offset) == "v");
  // More of Kafka's vectors: murmur2("foobar") == -790332482, murmur2("abc") == 479470107.
  CHECK(take(producer.send(topic, "foobar", "v")).partition == rill::to_positive(-790332482) % 8);
  CHECK(take(producer.send(topic, "abc", "v")).partition == 479470107 % 8);

  for (int i = 0; i < 300; ++i) {
    const std::string key = "user-" + std::to_string(i * 7919);
    const auto m = take(producer.send(topic, key, std::to_string(i)));
    CAPTURE(key);
    CHECK(m.partition == rill::partition_for_key(key, 8));
    CHECK(value_at(topic, m.partition, m.offset) == std::to_string(i));
  }

  // The serialized key is what hashes: an int32 key hashes its 4 big-endian bytes.
  auto by_int = take(Topic<std::int32_t, std::string>::create(*broker, "by-int", small_topic(8)));
  Producer<std::int32_t, std::string> ints(*broker);
  for (std::int32_t k : {0, 1, 21, 0x01020304, -1}) {
    CAPTURE(k);
    const char bytes[4] = {static_cast<char>((k >> 24) & 0xFF), static_cast<char>((k >> 16) & 0xFF),
                           static_cast<char>((k >> 8) & 0xFF), static_cast<char>(k & 0xFF)};
    CHECK(take(ints.send(by_int, k, "v")).partition ==
          rill::partition_for_key(std::string_view(bytes, 4), 8));
  }
}

TEST_CASE("records with the same key go to the same partition, in send order",
          "[producer][routing]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(6)));
  StringProducer producer(*broker);
  const int kKeys = 20;
  const int kRounds = 25;
  std::map<std::string, std::int32_t> partition_of;
  for (int round = 0; round < kRounds; ++round) {
    for (int k = 0; k < kKeys; ++k) {
      const std::string key = "key-" + std::to_string(k);
      const auto md = take(producer.send(topic, key, std::to_string(round)));
      auto [it, first] = partition_of.emplace(key, md.partition);
      CHECK(it->second == md.partition);
    }
  }
  std::set<std::int32_t> used;
  for (std::int32_t p = 0; p < 6; ++p) {
    std::map<std::string, int> next_round;
    for (const auto& [key, value] : all_records(topic, p)) {
      REQUIRE(key.has_value());
      CHECK(partition_of.at(*key) == p);
      CHECK(value == std::to_string(next_round[*key]++));  // in order, none missing
      used.insert(p);
    }
    for (const auto& [key, n] : next_round) CHECK(n == kRounds);
  }
  CHECK(used.size() > 1);  // 20 keys do not all hash to one partition
}

// --- keyless routing -------------------------------------------------------------------------

TEST_CASE("keyless records stick to a partition for a batch's worth of bytes, then move",
          "[producer][routing][sticky]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "clicks", small_topic(4)));
  // The producer measures a record by storage::frame_size (its bytes alone in a batch, at
  // most): ten of these records make a sticky batch.
  const std::string value(60, 'v');
  const std::size_t record_bytes =
      rill::storage::frame_size({.key = std::nullopt, .value = std::string_view(value)});
  StringProducer producer(
      *broker, {.keyless = KeylessStrategy::kSticky, .sticky_batch_bytes = 10 * record_bytes});

  std::vector<std::int32_t> runs;  // the partition of each run of 10
  for (int run = 0; run < 8; ++run) {
    std::int32_t p = -1;
    for (int i = 0; i < 10; ++i) {
      // A keyed record in between neither counts toward the batch nor moves it.
      if (i == 5) take(producer.send(topic, "some-key", value));
      const auto md = take(producer.send(topic, std::nullopt, value));
      if (i == 0) p = md.partition;
      CAPTURE(run, i);
      CHECK(md.partition == p);
    }
    if (!runs.empty()) CHECK(p != runs.back());  // moves to another partition
    runs.push_back(p);
  }
  for (std::int32_t p : runs) {
    CHECK(p >= 0);
    CHECK(p < 4);
  }

  // send_batch routes the same way: a fresh producer's 30 keyless records form 3 runs.
  StringProducer batcher(
      *broker, {.keyless = KeylessStrategy::kSticky, .sticky_batch_bytes = 10 * record_bytes});
  std::vector<StringRecord> batch(30, StringRecord{.key = std::nullopt, .value = value});
  const auto mds = take(batcher.send_batch(topic, batch));
  REQUIRE(mds.size() == 30);
  for (std::size_t i = 0; i < 30; ++i) {
    CAPTURE(i);
    CHECK(mds[i].partition == mds[i - i % 10].partition);
  }
  CHECK(mds[10].partition != mds[0].partition);
  CHECK(mds[20].partition != mds[10].partition);
}

TEST_CASE("keyless round-robin cycles through the partitions 0..n-1, per topic",
          "[producer][routing][round-robin]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto a = take(StringTopic::create(*broker, "a", small_topic(5)));
  auto b = take(StringTopic::create(*broker, "b", small_topic(3)));
  StringProducer producer(*broker, {.keyless = KeylessStrategy::kRoundRobin});
  for (int i = 0; i < 15; ++i) {
    CAPTURE(i);
    CHECK(take(producer.send(a, std::nullopt, "a" + std::to_string(i))).partition == i % 5);
    if (i % 2 == 0) CHECK(take(producer.send(b, std::nullopt, "b")).partition == (i / 2) % 3);
    take(producer.send(a, "keyed", "k"));  // keyed records do not advance the cycle
  }
  for (std::int32_t p = 0; p < 5; ++p) {
    std::vector<std::string> keyless;
    for (const auto& [key, value] : all_records(a, p)) {
      if (!key) keyless.push_back(value);
    }
    CHECK(keyless == std::vector<std::string>{"a" + std::to_string(p), "a" + std::to_string(p + 5),
                                              "a" + std::to_string(p + 10)});
  }
  // send_batch continues the cycle.
  const std::vector<StringRecord> batch(7, StringRecord{.value = "x"});
  const auto mds = take(producer.send_batch(a, batch));
  for (std::size_t i = 0; i < mds.size(); ++i) CHECK(mds[i].partition == static_cast<int>(i % 5));
}

TEST_CASE("producers given the same seed route keyless records to the same partitions",
          "[producer][routing][sticky]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  // Small sticky batches: the 200 records below move partition about 50 times, each move a
  // random choice among 3, so two producers that draw independently almost never agree.
  const ProducerConfig config{.sticky_batch_bytes = 200, .seed = 0x5eed};
  auto keyless_partitions = [&](const std::string& topic_name, const ProducerConfig& c) {
    auto topic = take(StringTopic::create(*broker, topic_name, small_topic(4)));
    StringProducer producer(*broker, c);
    std::vector<std::int32_t> out;
    for (int i = 0; i < 200; ++i) {
      out.push_back(take(producer.send(topic, std::nullopt, "v" + std::to_string(i))).partition);
    }
    return out;
  };
  const auto first = keyless_partitions("a", config);
  CHECK(first == keyless_partitions("b", config));
  CHECK(std::set<std::int32_t>(first.begin(), first.end()).size() == 4);  // it does move
  // Another seed draws another sequence.
  ProducerConfig other = config;
  other.seed = 0x5eed + 1;
  CHECK(first != keyless_partitions("c", other));
}

// --- user partitioner and explicit partitions ------------------------------------------------

TEST_CASE("a user partitioner routes records; an answer out of range appends nothing",
          "[producer][routing][partitioner]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(4)));
  auto calls = std::make_shared<std::atomic<int>>(0);
  ProducerConfig config;
  config.partitioner = [calls](std::string_view topic_name, std::optional<std::string_view> key,
                               std::int32_t partitions) -> std::int32_t {
    calls->fetch_add(1, std::memory_order_relaxed);
    if (topic_name != "orders" || partitions != 4) return 1000;
    if (!key) return 3;                    // keyless: the last partition
    if (*key == "neg") return -1;          // out of range, below
    if (*key == "big") return partitions;  // out of range, above
    return static_cast<std::int32_t>(key->size() % 4);
  };
  StringProducer producer(*broker, config);

  CHECK(take(producer.send(topic, "", "0")).partition == 0);
  CHECK(take(producer.send(topic, "ab", "2")).partition == 2);
  CHECK(take(producer.send(topic, "abc", "3")).partition == 3);
  CHECK(take(producer.send(topic, std::nullopt, "keyless")).partition == 3);
  CHECK(calls->load() == 4);
  const auto before = ends(topic);

  for (const char* bad : {"neg", "big"}) {
    CAPTURE(bad);
    auto r = producer.send(topic, bad, "x");
    require_error(r, ErrorCode::kOutOfRange);
    CHECK(contains(r.error().message(), "partitioner"));
    const std::vector<StringRecord> batch = {{.key = "a", .value = "ok"},
                                             {.key = bad, .value = "x"}};
    require_error(producer.send_batch(topic, batch), ErrorCode::kOutOfRange);
    CHECK(ends(topic) == before);
  }
  // The serialized key is what it sees: an int key as its 4 big-endian bytes.
  auto ints = take(Topic<std::int32_t, std::string>::create(*broker, "ints", small_topic(4)));
  std::string seen;
  ProducerConfig spy;
  spy.partitioner = [&seen](std::string_view, std::optional<std::string_view> key, std::int32_t) {
    seen = key ? std::string(*key) : "<none>";
    return 0;
  };
  Producer<std::int32_t, std::string> int_producer(*broker, spy);
  take(int_producer.send(ints, 0x41424344, "v"));
  CHECK(seen == "ABCD");
}

TEST_CASE("an explicit partition overrides routing; one out of range appends nothing",
          "[producer][routing]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(4)));
  auto calls = std::make_shared<std::atomic<int>>(0);
  ProducerConfig config;
  config.partitioner = [calls](std::string_view, std::optional<std::string_view>, std::int32_t) {
    calls->fetch_add(1, std::memory_order_relaxed);
    return 0;
  };
  StringProducer with_partitioner(*broker, config);
  StringProducer plain(*broker);

  // "21" hashes to partition 0 of 4 (1173551340 % 4 == 0); sent to 2 explicitly.
  const auto md = take(plain.send(topic, {.key = "21", .value = "explicit", .partition = 2}));
  CHECK(md.partition == 2);
  CHECK(value_at(topic, 2, md.offset) == "explicit");
  CHECK(take(plain.send(topic, {.key = std::nullopt, .value = "x", .partition = 3})).partition ==
        3);
  CHECK(take(with_partitioner.send(topic, {.key = "k", .value = "x", .partition = 1})).partition ==
        1);
  CHECK(calls->load() == 0);  // an explicit partition never asks the partitioner

  const auto before = ends(topic);
  for (std::int32_t bad : {-1, 4, 1 << 20}) {
    CAPTURE(bad);
    auto r = plain.send(topic, {.key = "k", .value = "x", .partition = bad});
    require_error(r, ErrorCode::kOutOfRange);
    CHECK(contains(r.error().message(), std::to_string(bad)));
    const std::vector<StringRecord> batch = {{.key = "a", .value = "ok", .partition = 0},
                                             {.key = "b", .value = "x", .partition = bad}};
    require_error(plain.send_batch(topic, batch), ErrorCode::kOutOfRange);
    CHECK(ends(topic) == before);
  }
}

// --- send_batch ------------------------------------------------------------------------------

TEST_CASE("send_batch returns metadata in input order with consecutive offsets per partition",
          "[producer][batch]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(4)));
  StringProducer producer(*broker);
  for (std::int32_t p = 0; p < 4; ++p) {  // earlier records, so offsets do not start at 0
    for (int i = 0; i <= p; ++i) take(producer.send(topic, {.value = "old", .partition = p}));
  }
  const auto before = ends(topic);

  std::vector<std::string> values;
  std::vector<StringRecord> batch;
  for (int i = 0; i < 60; ++i) values.push_back("v" + std::to_string(i));
  for (int i = 0; i < 60; ++i) {
    StringRecord r{.key = "key-" + std::to_string(i % 9), .value = values[i]};
    if (i % 10 == 3) r.partition = i % 4;  // some explicit
    if (i % 10 == 7) r.key.reset();        // some keyless
    batch.push_back(r);
  }
  const auto mds = take(producer.send_batch(topic, batch));
  REQUIRE(mds.size() == batch.size());
  std::vector<std::int64_t> next = before;
  for (std::size_t i = 0; i < mds.size(); ++i) {
    CAPTURE(i);
    const RecordMetadata& md = mds[i];
    CHECK(md.topic == "orders");
    if (batch[i].partition) {
      CHECK(md.partition == *batch[i].partition);
    } else if (batch[i].key) {
      CHECK(md.partition == rill::partition_for_key(*batch[i].key, 4));
    }
    REQUIRE(md.partition >= 0);
    REQUIRE(md.partition < 4);
    // Within a partition, the batch's records take consecutive offsets in input order.
    CHECK(md.offset == next[static_cast<std::size_t>(md.partition)]++);
    CHECK(value_at(topic, md.partition, md.offset) == values[i]);
  }
  CHECK(ends(topic) == next);

  // An empty batch appends nothing.
  CHECK(take(producer.send_batch(topic, std::vector<StringRecord>{})).empty());
  CHECK(ends(topic) == next);
}

TEST_CASE("send_batch keeps the bytes serializers wrote into their scratch strings",
          "[producer][batch]") {
  // Numbers serialize into the scratch string's inline buffer (8 bytes: its address moves
  // with the string), Order into a heap buffer once its text is long. Every record must read
  // back as sent, on one partition (one append) and over several (sorted shares).
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  const std::int32_t partitions = GENERATE(1, 3);
  CAPTURE(in_memory, partitions);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::int64_t, Order>::create(*broker, "orders", small_topic(partitions)));
  Producer<std::int64_t, Order> producer(*broker);
  std::vector<ProducerRecord<std::int64_t, Order>> batch;
  for (std::int64_t i = 0; i < 200; ++i) {
    // ids of 1 to 19 digits: short texts stay inline in std::string, long ones do not.
    const std::int64_t id = i * 46'116'860'184'273'879 % 9'223'372'036'854'775'807;
    batch.push_back({.key = i * 1'000'003, .value = Order{id, static_cast<std::int32_t>(i)}});
  }
  const auto mds = take(producer.send_batch(topic, batch));
  REQUIRE(mds.size() == batch.size());
  for (std::size_t i = 0; i < mds.size(); ++i) {
    CAPTURE(i);
    auto got = take(topic.read(mds[i].partition, mds[i].offset, 1));
    REQUIRE(got.size() == 1);
    CHECK(got[0].key == batch[i].key);
    CHECK(got[0].value == batch[i].value);
  }
  // A single send goes through the same scratch handling.
  const auto md = take(producer.send(topic, 7, Order{1'234'567'890'123, 5}));
  auto got = take(topic.read(md.partition, md.offset, 1));
  REQUIRE(got.size() == 1);
  CHECK(got[0].key == std::optional<std::int64_t>(7));
  CHECK(got[0].value == Order{1'234'567'890'123, 5});
}

TEST_CASE("send_batch appends nothing anywhere when any record is bad",
          "[producer][batch][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig config = small_topic(3);
  config.segment_bytes = 8192;
  config.max_record_bytes = 1024;
  auto topic = take(Topic<std::string, Order>::create(*broker, "orders", config));
  Producer<std::string, Order> producer(*broker);
  for (std::int32_t p = 0; p < 3; ++p)
    take(producer.send(topic, {.value = {1, 1}, .partition = p}));
  const auto before = ends(topic);

  // Good records for every partition first, so that appending as it goes would show.
  using R = ProducerRecord<std::string, Order>;
  std::vector<R> batch;
  for (int i = 0; i < 9; ++i) batch.push_back(R{.value = {i, i}, .partition = i % 3});
  const std::string huge_key(2000, 'k');

  SECTION("one record over max_record_bytes") {
    batch.push_back(R{.key = huge_key, .value = {1, 1}, .partition = 2});
    require_error(producer.send_batch(topic, batch), ErrorCode::kRecordTooLarge);
  }
  SECTION("one record whose value does not serialize") {
    batch.push_back(R{.value = {1, -1}, .partition = 2});
    auto r = producer.send_batch(topic, batch);
    require_error(r, ErrorCode::kInvalidArgument);
    CHECK(contains(r.error().message(), "negative qty"));
  }
  SECTION("one record with a negative timestamp") {
    batch.push_back(R{.value = {1, 1}, .timestamp_ms = -5, .partition = 2});
    require_error(producer.send_batch(topic, batch), ErrorCode::kInvalidArgument);
  }
  SECTION("one record for a partition that does not exist") {
    batch.push_back(R{.value = {1, 1}, .partition = 3});
    require_error(producer.send_batch(topic, batch), ErrorCode::kOutOfRange);
  }
  SECTION("one partition's share does not fit in a segment") {
    // Each record fits, but partition 2's share (9 frames of about 1000 bytes) exceeds the
    // 8 KiB segment; partitions 0 and 1 come first and must not be written either.
    const std::string big(950, 'b');
    for (int i = 0; i < 9; ++i) batch.push_back(R{.key = big, .value = {i, i}, .partition = 2});
    auto r = producer.send_batch(topic, batch);
    require_error(r, ErrorCode::kRecordTooLarge);
    CHECK(contains(r.error().message(), "partition 2"));
  }
  CHECK(ends(topic) == before);

  // The same good records alone go through.
  batch.resize(9);
  take(producer.send_batch(topic, batch));
  CHECK(ends(topic) == std::vector<std::int64_t>{before[0] + 3, before[1] + 3, before[2] + 3});
}

TEST_CASE("a share that exactly fills a segment is accepted", "[producer][batch]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig config = small_topic(2);
  config.segment_bytes = 8192;
  config.max_record_bytes = 1024;
  auto topic = take(StringTopic::create(*broker, "orders", config));
  StringProducer producer(*broker);
  // Ten records counting 808 bytes each (frame_size less the batch header) and one batch
  // header with padding (48): exactly the 8128 bytes after the file header.
  const std::string value(789, 'x');
  REQUIRE(rill::storage::frame_size({.value = std::string_view(value)}) == 40 + 808);
  const std::vector<StringRecord> batch(10, StringRecord{.value = value, .partition = 1});
  const auto mds = take(producer.send_batch(topic, batch));
  CHECK(mds.back().offset == 9);
  CHECK(topic.log(1)->end_offset() == 10);
  // One byte more per share is refused.
  std::vector<StringRecord> over = batch;
  const std::string longer(790, 'x');
  over.back().value = longer;
  require_error(producer.send_batch(topic, over), ErrorCode::kRecordTooLarge);
  CHECK(topic.log(1)->end_offset() == 10);
}

// --- single sends: errors --------------------------------------------------------------------

TEST_CASE("a serializer error fails the send and appends nothing", "[producer][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto values = take(Topic<std::string, Order>::create(*broker, "values", small_topic(2)));
  auto keys = take(Topic<Order, std::string>::create(*broker, "keys", small_topic(2)));
  Producer<std::string, Order> vp(*broker);
  Producer<Order, std::string> kp(*broker);

  auto v = vp.send(values, "k", Order{1, -1});
  require_error(v, ErrorCode::kInvalidArgument);
  CHECK(contains(v.error().message(), "value"));
  CHECK(contains(v.error().message(), "negative qty"));
  require_error(vp.send(values, std::nullopt, Order{1, -1}), ErrorCode::kInvalidArgument);
  auto k = kp.send(keys, Order{1, -1}, "v");
  require_error(k, ErrorCode::kInvalidArgument);
  CHECK(contains(k.error().message(), "key"));
  CHECK(ends(values) == std::vector<std::int64_t>{0, 0});
  CHECK(ends(keys) == std::vector<std::int64_t>{0, 0});

  // Good values still go through the same producers.
  take(vp.send(values, "k", Order{1, 1}));
  take(kp.send(keys, Order{1, 1}, "v"));
}

TEST_CASE("a record over max_record_bytes is refused by send and appends nothing",
          "[producer][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);
  // 4096 bytes at most, as storage::frame_size counts them: 40 (batch header) + 2 (length)
  // + 13 (offset and timestamp deltas at their widest) + 2 (key "k") + 2 (value length)
  // + 1 (header count) + 4036 bytes of value fit exactly.
  REQUIRE(rill::storage::frame_size({.key = std::string_view("k"),
                                     .value = std::string_view(std::string(4036, 'x'))}) == 4096);
  take(producer.send(topic, "k", std::string(4036, 'x')));
  require_error(producer.send(topic, "k", std::string(4037, 'x')), ErrorCode::kRecordTooLarge);
  const std::string header_value(5000, 'h');
  const rill::storage::Header big[] = {{"h", std::string_view(header_value)}};
  require_error(producer.send(topic, "k", "v", big), ErrorCode::kRecordTooLarge);
  CHECK(topic.log(0)->end_offset() == 1);
}

// --- timestamps, flush -----------------------------------------------------------------------

TEST_CASE("an explicit timestamp is kept; without one the broker's clock stamps the record",
          "[producer][time]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(5'000'000);
  auto broker = open_backend(in_memory, dir, clock);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(1)));
  StringProducer producer(*broker);

  const auto a = take(producer.send(topic, "k", "a"));
  CHECK(a.timestamp_ms == 5'000'000);
  clock->advance_ms(10);
  const auto b = take(producer.send(topic, "k", "b", {}, 123));
  CHECK(b.timestamp_ms == 123);
  const auto c = take(producer.send(topic, "k", "c", {}, 0));  // 0 is a time, not "none"
  CHECK(c.timestamp_ms == 0);
  const auto d = take(producer.send(topic, {.key = "k", .value = "d", .timestamp_ms = 77}));
  CHECK(d.timestamp_ms == 77);
  const auto e = take(producer.send(topic, "k", "e", {}, rill::storage::kNoTimestamp));
  CHECK(e.timestamp_ms == 5'000'010);
  clock->advance_ms(10);
  const std::vector<StringRecord> batch = {{.key = "k", .value = "f"},
                                           {.key = "k", .value = "g", .timestamp_ms = 9}};
  const auto fg = take(producer.send_batch(topic, batch));
  CHECK(fg[0].timestamp_ms == 5'000'020);
  CHECK(fg[1].timestamp_ms == 9);

  const std::int64_t want[] = {5'000'000, 123, 0, 77, 5'000'010, 5'000'020, 9};
  for (std::int64_t offset = 0; offset < 7; ++offset) {
    CAPTURE(offset);
    auto r = take(topic.read(0, offset, 1));
    REQUIRE(r.size() == 1);
    CHECK(r[0].timestamp_ms == want[offset]);
  }

  require_error(producer.send(topic, "k", "neg", {}, -2), ErrorCode::kInvalidArgument);
  CHECK(topic.log(0)->end_offset() == 7);
}

TEST_CASE("Producer::flush syncs what was sent", "[producer][durability]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "t", small_topic(3)));
  StringProducer producer(*broker);
  for (int i = 0; i < 30; ++i) take(producer.send(topic, std::to_string(i), "v"));
  require_ok(producer.flush());
  for (std::int32_t p = 0; p < 3; ++p) {
    const rill::storage::Log* log = topic.log(p);
    REQUIRE(log != nullptr);
    const std::int64_t end = log->end_offset();
    CHECK(log->durable_offset() == end);
  }
}

// --- growth ----------------------------------------------------------------------------------

TEST_CASE("after add_partitions, keys route over the new partition count",
          "[producer][routing][partitions]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(4)));
  StringProducer producer(*broker);
  StringProducer round_robin(*broker, {.keyless = KeylessStrategy::kRoundRobin});

  std::vector<std::string> keys;  // keys that move when 4 partitions become 8
  for (int i = 0; keys.size() < 10; ++i) {
    const std::string k = "k" + std::to_string(i);
    if (rill::partition_for_key(k, 4) != rill::partition_for_key(k, 8)) keys.push_back(k);
  }
  for (const auto& k : keys)
    CHECK(take(producer.send(topic, k, "before")).partition == rill::partition_for_key(k, 4));
  for (int i = 0; i < 3; ++i) take(round_robin.send(topic, std::nullopt, "rr"));

  take(broker->add_partitions("orders", 8));
  REQUIRE(topic.partitions() == 8);
  std::set<std::int32_t> beyond;
  for (const auto& k : keys) {
    CAPTURE(k);
    const auto md = take(producer.send(topic, k, "after"));
    CHECK(md.partition == rill::partition_for_key(k, 8));
    CHECK(value_at(topic, md.partition, md.offset) == "after");
    if (md.partition >= 4) beyond.insert(md.partition);
  }
  CHECK(!beyond.empty());  // some keys now land on the new partitions
  // Keyless routing covers the new partitions as well.
  std::set<std::int32_t> rr;
  for (int i = 0; i < 8; ++i)
    rr.insert(take(round_robin.send(topic, std::nullopt, "rr")).partition);
  CHECK(rr.size() == 8);
}

TEST_CASE("a producer refuses rill's internal topics", "[producer][errors]") {
  // A record rill cannot decode in __consumer_offsets made every consumer group of the broker
  // fail (kCorruption) from the next open on. Kafka refuses produce requests to its internal
  // topics too.
  TempDir dir;
  auto broker = open_backend(false, dir);
  {
    rill::ConsumerGroup g(*broker, "g");  // makes the offsets topic
    CHECK(g.lag().has_value());
  }
  auto internal = take(StringTopic::open(*broker, std::string(rill::Broker::kOffsetsTopic)));
  StringProducer producer(*broker);
  const std::int64_t end = internal.log(0)->end_offset();
  rill_test::require_error(producer.send(internal, "junk", "junk"), ErrorCode::kInvalidArgument);
  const rill::ProducerRecord<std::string, std::string> one{.key = "junk", .value = "junk"};
  rill_test::require_error(producer.send_batch(internal, std::span(&one, 1)),
                           ErrorCode::kInvalidArgument);
  CHECK(internal.log(0)->end_offset() == end);
  broker.reset();
  broker = open_backend(false, dir);
  CHECK(rill::ConsumerGroup::list(*broker).empty());  // the offsets still load
}

}  // namespace producer_test
