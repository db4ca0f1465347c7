// The testing layer (rill/testing.hpp): TestBroker (in-memory broker, ManualClock, no
// background thread, advance() firing group timeouts and retention), TestTopic (pipe typed
// records with keys, headers, timestamps and partitions; read all or what is new) and the
// Catch2 matchers and printers of rill/testing/catch2.hpp.
#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/consumer.hpp"
#include "rill/consumer_group.hpp"
#include "rill/testing.hpp"
#include "rill/testing/catch2.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace testing_test {

using rill::ErrorCode;
using rill::TopicConfig;
using rill::TopicPartition;
using rill::testing::HoldsKeyValues;
using rill::testing::HoldsLatestByKey;
using rill::testing::HoldsValues;
using rill::testing::IsEmptyTopic;
using rill::testing::TestBroker;
using rill::testing::TestBrokerOptions;
using rill::testing::TestHeader;
using rill::testing::TestRecord;
using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;
using namespace std::chrono_literals;

namespace {

using Rec = TestRecord<std::string, std::int64_t>;
using Totals = rill::testing::TestTopic<std::string, std::int64_t>;

// Where each record of a topic is, in read_all() order: (partition, offset, value).
using Placement = std::vector<std::tuple<std::int32_t, std::int64_t, std::int64_t>>;
Placement placement(const Totals& t) {
  Placement out;
  for (const Rec& r : take(t.read_all())) out.emplace_back(r.partition, r.offset, r.value);
  return out;
}

// The partitions a placement uses.
std::set<std::int32_t> partitions_used(const Placement& p) {
  std::set<std::int32_t> out;
  for (const auto& [partition, offset, value] : p) out.insert(partition);
  return out;
}

// A topic "events" of four partitions on `env`.
Totals four_partitions(TestBroker& env) {
  return take(env.create_topic<std::string, std::int64_t>("events", TestBroker::default_config(4)));
}

// from, from+1, ..., to-1.
std::vector<std::int64_t> iota_values(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(to - from));
  std::iota(out.begin(), out.end(), from);
  return out;
}

// Threads of this process now (Linux: /proc/self/status).
int thread_count() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

}  // namespace

TEST_CASE("a TestBroker is an in-memory broker on a manual clock", "[testing]") {
  TestBroker env(1'000);
  CHECK(env->in_memory());
  CHECK(env.now_ms() == 1'000);
  CHECK(env->clock().now_ms() == 1'000);  // the broker reads the same clock
  auto orders = take(env.create_topic<std::string, std::int64_t>("orders"));
  CHECK(take(orders.pipe("alice", 30)).timestamp_ms == 1'000);
  env.advance(250ms);
  CHECK(env.now_ms() == 1'250);
  CHECK(take(orders.pipe("bob", 5)).timestamp_ms == 1'250);
  env.advance_to(5'000);
  CHECK(env.now_ms() == 5'000);
  auto all = take(orders.read_all());
  REQUIRE(all.size() == 2);
  CHECK(all[0].timestamp_ms == 1'000);
  CHECK(all[1].timestamp_ms == 1'250);
}

TEST_CASE("a TestBroker runs no background thread, even with time-based retention", "[testing]") {
  const int before = thread_count();
  REQUIRE(before > 0);
  {
    // The check can see a thread: a default in-memory broker starts its background thread.
    auto broker = take(rill::Broker::open_in_memory());
    CHECK(thread_count() == before + 1);
  }
  TestBroker env;
  TopicConfig c = TestBroker::default_config(3);
  c.retention_ms = 1'000;
  c.durability = rill::storage::Durability::interval(10);
  auto t = take(env.create_topic<std::string, std::string>("events", c));
  require_ok(t.pipe_key_values({{"a", "1"}, {"b", "2"}}));
  rill::Consumer<std::string, std::string> consumer(env.broker(), {.group_id = "g"});
  require_ok(consumer.subscribe({"events"}));
  (void)take(consumer.poll(0ms));
  env.advance(10s);
  CHECK(thread_count() == before);
}

TEST_CASE("pipe sends keys, headers, timestamps and partitions; read_all returns them typed",
          "[testing]") {
  TestBroker env(100);
  auto t =
      take(env.create_topic<std::string, std::int64_t>("orders", TestBroker::default_config(4)));
  require_ok(t.pipe_all({
      {.key = "alice", .value = 30, .headers = {{"source", "web"}, {"trace", std::nullopt}}},
      {.key = std::nullopt, .value = 7, .timestamp_ms = 42, .partition = 2},
      {.key = "bob", .value = 5, .partition = 3},
  }));
  auto all = take(t.read_all());
  REQUIRE(all.size() == 3);
  // Partition then offset order: keyed alice goes where murmur2 puts it.
  const std::int32_t alice = rill::partition_for_key("alice", 4);
  std::map<std::int32_t, Rec> by_partition;
  for (const auto& r : all) by_partition[r.partition] = r;
  REQUIRE(by_partition.count(alice) == 1);
  const Rec& a = by_partition[alice];
  CHECK(a.key == std::optional<std::string>("alice"));
  CHECK(a.value == 30);
  CHECK(a.timestamp_ms == 100);
  CHECK(a.offset == 0);
  CHECK(a.headers == std::vector<TestHeader>{{"source", "web"}, {"trace", std::nullopt}});
  CHECK(by_partition[2].value == 7);
  CHECK_FALSE(by_partition[2].key.has_value());
  CHECK(by_partition[2].timestamp_ms == 42);
  CHECK(by_partition[3].key == std::optional<std::string>("bob"));
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].partition < all[i].partition);
  // Equality is about the record, not where it landed.
  CHECK(a == Rec{.key = "alice",
                 .value = 30,
                 .headers = {{"source", "web"}, {"trace", std::nullopt}},
                 .timestamp_ms = 100});
  CHECK(t.size() == 3);
}

// Keyless records go through sticky routing: about 16 KiB to one partition, then a move to one
// of the others. 2000 records of this topic make several moves. A producer seeded from the
// clock (as before TestTopic fixed its seed) picks even its first partition at random, so two
// brokers agree on it 1 time in 4, and eight pairs all agree less than once in 65536 runs,
// without counting the later moves.
TEST_CASE("keyless pipes land on the same partitions in every TestBroker, run after run",
          "[testing][determinism]") {
  const auto values = iota_values(0, 2000);
  std::optional<Placement> first;
  for (int pair = 0; pair < 8; ++pair) {
    CAPTURE(pair);
    TestBroker a;
    TestBroker b;
    auto ta = four_partitions(a);
    auto tb = four_partitions(b);
    for (std::size_t i = 0; i < 500; ++i) {  // one by one, then as a list
      (void)take(ta.pipe_value(values[i]));
      (void)take(tb.pipe_value(values[i]));
    }
    const std::vector<std::int64_t> rest(values.begin() + 500, values.end());
    require_ok(ta.pipe_values(rest));
    require_ok(tb.pipe_values(rest));

    const Placement pa = placement(ta);
    REQUIRE(pa.size() == values.size());
    CHECK(partitions_used(pa).size() > 1);  // the records did spread: the test means something
    CHECK(pa == placement(tb));
    CHECK(take(ta.read_values()) == take(tb.read_values()));
    if (!first) first = pa;
    CHECK(pa == *first);  // and the same as every other pair
  }
}

TEST_CASE("TestBrokerOptions::keyless_seed sets where keyless records go; a seed repeats",
          "[testing][determinism]") {
  CHECK(TestBroker().keyless_seed() == rill::testing::kDefaultKeylessSeed);
  const auto values = iota_values(0, 2000);
  // Pipes `values` through the driver create_topic returns, or through one from topic().
  auto spread = [&](std::uint64_t seed, bool through_topic) {
    TestBroker env(TestBrokerOptions{.start_ms = 5, .keyless_seed = seed});
    CHECK(env.now_ms() == 5);
    CHECK(env.keyless_seed() == seed);
    auto created = four_partitions(env);
    if (through_topic) {
      auto opened = take(env.topic<std::string, std::int64_t>("events"));
      require_ok(opened.pipe_values(values));
    } else {
      require_ok(created.pipe_values(values));
    }
    return placement(created);
  };
  CHECK(spread(42, false) == spread(42, false));
  std::set<Placement> distinct;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    CAPTURE(seed);
    const Placement p = spread(seed, false);
    CHECK(spread(seed, true) == p);  // both drivers route with the broker's seed
    distinct.insert(p);
  }
  CHECK(distinct.size() > 1);  // the seed does choose
}

TEST_CASE("a moved TestTopic routes keyless records on from where it was", "[testing]") {
  TestBroker a;
  TestBroker b;
  auto unmoved = four_partitions(a);
  auto before = four_partitions(b);
  require_ok(unmoved.pipe_values(iota_values(0, 2000)));
  require_ok(before.pipe_values(iota_values(0, 700)));
  Totals moved(std::move(before));
  require_ok(moved.pipe_values(iota_values(700, 2000)));
  CHECK(placement(moved) == placement(unmoved));
}

TEST_CASE("read_new returns only what arrived since the previous read_new", "[testing]") {
  TestBroker env;
  auto t =
      take(env.create_topic<std::string, std::int64_t>("orders", TestBroker::default_config(2)));
  CHECK(take(t.read_new()).empty());
  require_ok(t.pipe_key_values({{"a", 1}, {"b", 2}, {"c", 3}}));
  auto first = take(t.read_new());
  CHECK(first.size() == 3);
  CHECK(take(t.read_new()).empty());
  require_ok(t.pipe_key_values({{"d", 4}}));
  CHECK(take(t.read_new_values()) == std::vector<std::int64_t>{4});
  CHECK(take(t.read_new_values()).empty());
  // read_all neither consumes nor is limited by read_new.
  CHECK(take(t.read_all()).size() == 4);
  CHECK(take(t.read_new()).empty());
}

TEST_CASE("read_values, read_key_values and read_latest_by_key give typed contents", "[testing]") {
  TestBroker env;
  auto t = take(env.create_topic<std::string, std::optional<std::int64_t>>("table"));
  require_ok(t.pipe_all({{.key = "a", .value = 1},
                         {.key = "b", .value = 2},
                         {.key = std::nullopt, .value = 99},
                         {.key = "a", .value = 3},
                         {.key = "b", .value = std::nullopt}}));  // tombstone: b is deleted
  CHECK(take(t.read_values()) ==
        std::vector<std::optional<std::int64_t>>{1, 2, 99, 3, std::nullopt});
  auto kv = take(t.read_key_values());
  REQUIRE(kv.size() == 4);  // the keyless record is left out
  CHECK(kv[0] == std::pair<std::string, std::optional<std::int64_t>>{"a", 1});
  CHECK(kv[3] == std::pair<std::string, std::optional<std::int64_t>>{"b", std::nullopt});
  auto latest = take(t.read_latest_by_key());
  CHECK(latest == std::map<std::string, std::optional<std::int64_t>>{{"a", 3}});
}

TEST_CASE("reading a record that does not decode is an error, not garbage", "[testing]") {
  TestBroker env;
  (void)take(env->create_topic("raw", TestBroker::default_config()));  // untyped
  auto t = take(env.topic<std::string, std::int64_t>("raw"));
  auto state = take(env->topic_state("raw"));
  (void)take(state->partition(0)->append({.key = "k", .value = "abc"}));  // 3 bytes, not 8
  require_error(t.read_all(), ErrorCode::kCorruption);
  require_error(t.read_new(), ErrorCode::kCorruption);
  require_error(t.read_values(), ErrorCode::kCorruption);
  require_error(env.topic<std::string, std::int64_t>("missing"), ErrorCode::kNotFound);
}

TEST_CASE("advancing the clock applies time retention at once, and only then", "[testing]") {
  TestBroker env;
  TopicConfig c = TestBroker::default_config();
  c.retention_ms = 1'000;
  c.segment_ms = 100;  // roll by age, so old records sit in sealed segments
  auto t = take(env.create_topic<std::string, std::int64_t>("clicks", c));
  require_ok(t.pipe_key_values({{"a", 1}, {"b", 2}}));
  env.advance(200ms);
  require_ok(t.pipe_key_values({{"c", 3}}));  // rolls: the first segment is sealed
  const rill::storage::Log& log = *t.topic().log(0);
  REQUIRE(log.segment_count() == 2);

  // Time passes without anyone telling the broker: nothing acts on its own.
  env.clock().set_ms(5'000);
  CHECK(log.start_offset() == 0);
  CHECK(log.segment_count() == 2);

  // advance() runs retention before it returns.
  const rill::DueWork done = env.advance(0ms);
  CHECK(done.segments_deleted == 1);
  CHECK(log.start_offset() == 2);
  CHECK(take(t.read_values()) == std::vector<std::int64_t>{3});
}

TEST_CASE(
    "a group timeout driven only by the clock: the silent member is removed when the "
    "clock passes its session timeout",
    "[testing][group]") {
  TestBroker env;
  auto t =
      take(env.create_topic<std::string, std::int64_t>("orders", TestBroker::default_config(2)));
  require_ok(t.pipe_key_values({{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}));
  rill::ConsumerConfig cfg{.group_id = "billing",
                           .auto_offset_reset = rill::OffsetReset::kEarliest,
                           .enable_auto_commit = false,
                           .session_timeout_ms = 30'000,
                           .max_poll_interval_ms = 600'000};
  using C = rill::Consumer<std::string, std::int64_t>;
  C a(env.broker(), cfg);
  C b(env.broker(), cfg);
  std::vector<TopicPartition> a_lost;
  require_ok(a.subscribe({"orders"}, {.on_lost = [&](const auto& tps) { a_lost = tps; }}));
  require_ok(b.subscribe({"orders"}));
  for (int i = 0; i < 4; ++i) {  // a few rounds settle the rebalance: one partition each
    (void)take(a.poll(0ms));
    (void)take(b.poll(0ms));
  }
  REQUIRE(a.assignment().size() == 1);
  REQUIRE(b.assignment().size() == 1);
  require_ok(a.commit());

  // b keeps polling every 10 s; a goes silent. Its session times out after 30 s (strictly).
  for (int step = 1; step <= 3; ++step) {
    const rill::DueWork done = env.advance(10s);
    CHECK(done.members_expired == 0);
    (void)take(b.poll(0ms));
  }
  rill::ConsumerGroup group(env.broker(), "billing");
  CHECK(take(group.describe()).members.size() == 2);
  const rill::DueWork done = env.advance(1ms);  // 30.001 s since a's last call
  CHECK(done.members_expired == 1);
  auto desc = take(group.describe());
  REQUIRE(desc.members.size() == 1);
  CHECK(desc.members[0].member_id == b.member_id());

  // b takes over both partitions at its next poll; a's commits are refused; a learns of it.
  (void)take(b.poll(0ms));
  CHECK(b.assignment().size() == 2);
  require_error(a.commit(), ErrorCode::kFenced);
  (void)take(a.poll(0ms));
  CHECK(a_lost.size() == 1);
}

TEST_CASE("Catch2 matchers compare topic contents and print the topic on failure",
          "[testing][catch2]") {
  TestBroker env(7);
  auto t = take(env.create_topic<std::string, std::int64_t>("totals"));
  REQUIRE_THAT(t, IsEmptyTopic());
  require_ok(t.pipe_all({{.key = "alice", .value = 30, .headers = {{"h", "v"}}},
                         {.key = "bob", .value = 5},
                         {.key = "alice", .value = 42}}));
  REQUIRE_THAT(t, HoldsValues<Totals>({30, 5, 42}));
  REQUIRE_THAT(t, HoldsKeyValues<Totals>({{"alice", 30}, {"bob", 5}, {"alice", 42}}));
  REQUIRE_THAT(t, HoldsLatestByKey<Totals>({{"alice", 42}, {"bob", 5}}));

  // Mismatches fail, and say what was expected and what the topic holds.
  CHECK_FALSE(IsEmptyTopic().match(t));
  CHECK_FALSE(HoldsValues<Totals>({30, 5}).match(t));
  CHECK_FALSE(HoldsKeyValues<Totals>({{"alice", 30}}).match(t));
  HoldsLatestByKey<Totals> wrong({{"alice", 41}, {"bob", 5}});
  CHECK_FALSE(wrong.match(t));
  CHECK(wrong.describe() == "holds latest by key { \"alice\" -> 41, \"bob\" -> 5 }");
  CHECK(Catch::Detail::stringify(t) ==
        "topic 'totals' holds 3 record(s): { 0@0 key=\"alice\" value=30 ts=7 [h=\"v\"], "
        "0@1 key=\"bob\" value=5 ts=7, 0@2 key=\"alice\" value=42 ts=7 }");
}

TEST_CASE("size() counts the records a compacted topic holds; advance() saturates", "[testing]") {
  // size() was end - start offsets per partition: compaction drops records but not offsets,
  // so a compacted topic reported more records than read_all() returns, and a topic whose
  // records were all dropped was not empty(). advance(milliseconds::max()) on a clock past 0
  // overflowed (undefined behaviour; the clock went negative and nothing expired).
  TestBroker env(1'000);
  TopicConfig c = TestBroker::default_config(1);
  c.cleanup_policy = rill::CleanupPolicy::kCompact;
  c.segment_bytes = 1024;
  c.max_record_bytes = 512;
  auto t = take(env.create_topic<std::string, std::int64_t>("latest", c));
  for (std::int64_t i = 0; i < 60; ++i) (void)take(t.pipe("k" + std::to_string(i % 3), i));
  (void)take(env->compact("latest"));
  const auto all = take(t.read_all());
  REQUIRE(all.size() < 60);
  CHECK(t.size() == static_cast<std::int64_t>(all.size()));
  CHECK_FALSE(t.empty());

  env.advance(std::chrono::milliseconds::max());
  CHECK(env.now_ms() == std::numeric_limits<std::int64_t>::max());
}

}  // namespace testing_test
