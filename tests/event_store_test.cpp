// Event sourcing (rill/event_sourcing.hpp): optimistic concurrency by key version and by
// partition end offset, an index that sees every appender (producers, other stores, earlier
// runs), replay of partitions and keys from offsets and timestamps, folds, snapshots and
// rebuild from snapshot plus tail. Threads racing on one key: event_store_concurrency_test.cpp.
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker.hpp"
#include "rill/event_sourcing.hpp"
#include "rill/producer.hpp"
#include "rill/testing.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace event_store_test {

// An event whose serializer runs a hook: it lets a test append "from another writer" after the
// caller read the key's version and before its own append takes the log's lock.
struct Hooked {
  std::string text;
};
std::function<void()> serialize_hook;  // NOLINT: test-only global

// A key whose serializer runs a hook every time: it lets a test grow the topic while an append
// routes the key.
struct HookedKey {
  std::string text;
};
std::function<void()> key_hook;  // NOLINT: test-only global

}  // namespace event_store_test

template <>
struct rill::Serde<event_store_test::HookedKey> {
  using HookedKey = event_store_test::HookedKey;
  static std::string name() { return "test.HookedKey"; }
  static rill::Result<std::string_view> serialize(const HookedKey& v, std::string&) {
    if (event_store_test::key_hook) event_store_test::key_hook();
    return std::string_view(v.text);
  }
  static rill::Result<HookedKey> deserialize(std::string_view bytes) {
    return HookedKey{std::string(bytes)};
  }
};

template <>
struct rill::Serde<event_store_test::Hooked> {
  using Hooked = event_store_test::Hooked;
  static std::string name() { return "test.Hooked"; }
  static rill::Result<std::string_view> serialize(const Hooked& v, std::string&) {
    auto& hook = event_store_test::serialize_hook;
    if (hook) std::exchange(hook, nullptr)();
    return std::string_view(v.text);
  }
  static rill::Result<Hooked> deserialize(std::string_view bytes) {
    return Hooked{std::string(bytes)};
  }
};

namespace event_store_test {

using rill::ErrorCode;
using rill::es::EventStore;
using rill::es::kNoEvents;
using rill::es::SnapshotStore;
using rill::testing::TestBroker;
using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

namespace {

using Store = EventStore<std::string, std::int64_t>;  // events: amounts
using Snaps = SnapshotStore<std::string, std::int64_t>;

std::vector<std::int64_t> amounts(std::initializer_list<std::int64_t> v) { return v; }

std::int64_t add(std::int64_t s, const std::int64_t& e) { return s + e; }

// Segments that roll after a few dozen records.
rill::TopicConfig small_segments() {
  rill::TopicConfig config;
  config.segment_bytes = 4096;
  config.max_record_bytes = 1024;
  return config;
}

// What a visitor saw: (offset, value) of each record.
struct Seen {
  std::vector<std::int64_t> offsets;
  std::vector<std::int64_t> values;
  void operator()(const rill::ConsumerRecord<std::string, std::int64_t>& r) {
    offsets.push_back(r.offset);
    values.push_back(r.value);
  }
};

}  // namespace

TEST_CASE(
    "append with the expected version goes in; with another it conflicts and appends "
    "nothing",
    "[es]") {
  TestBroker env;
  auto store = take(Store::open(env.broker(), "accounts"));
  CHECK(take(store.version("a")) == kNoEvents);

  auto first = take(store.append("a", amounts({10, 20}), kNoEvents));
  CHECK(first.partition == 0);
  CHECK(first.first_offset == 0);
  CHECK(first.last_offset == 1);
  CHECK(take(store.version("a")) == 1);

  const rill::storage::Log& log = *store.topic().log(0);
  for (const std::int64_t stale : {kNoEvents, std::int64_t{0}, std::int64_t{2}}) {
    INFO("expected version " << stale);
    auto r = store.append("a", amounts({99}), stale);
    require_error(r, ErrorCode::kConflict);
    CHECK(log.end_offset() == 2);
  }
  auto second = take(store.append("a", 5, 1));
  CHECK(second.first_offset == 2);
  CHECK(second.last_offset == 2);
  CHECK(take(store.fold("a", std::int64_t{0}, add)).state == 35);
}

TEST_CASE("a key's version ignores other keys; the partition's end offset does not", "[es]") {
  TestBroker env;
  auto store = take(Store::open(env.broker(), "accounts"));  // one partition: a and b share it
  (void)take(store.append("a", amounts({1}), kNoEvents));    // offset 0
  (void)take(store.append("b", amounts({2}), kNoEvents));    // offset 1
  // a is still at version 0, though the partition moved on.
  (void)take(store.append("a", amounts({3}), 0));  // offset 2
  CHECK(take(store.version("a")) == 2);
  CHECK(take(store.version("b")) == 1);

  // By end offset: anything appended to the partition since is a conflict.
  require_error(store.append_if_end("b", amounts({4}), 2), ErrorCode::kConflict);
  CHECK(store.topic().log(0)->end_offset() == 3);
  auto at = take(store.append_if_end("b", amounts({4}), 3));
  CHECK(at.first_offset == 3);
  (void)take(store.append_unchecked("c", amounts({5, 6})));
  CHECK(take(store.version("c")) == 5);
}

TEST_CASE("the version sees every appender: a producer, another store, a reopened broker", "[es]") {
  rill_test::TempDir dir;
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  rill::TopicConfig config;
  config.partitions = 3;
  config.segment_bytes = 1u << 20;
  config.max_record_bytes = 4096;
  {
    auto broker = take(rill::Broker::open(dir.sub("data"), options));
    auto store = take(Store::open(*broker, "accounts", config));
    auto other = take(Store::open(*broker, "accounts", config));
    (void)take(store.append("a", amounts({1}), kNoEvents));
    const std::int32_t p = take(store.partition_of("a"));
    CHECK(p == rill::partition_for_key("a", 3));  // routed as Kafka's producers route keys

    // A producer's record with the same key lands in the same partition and moves the version.
    rill::Producer<std::string, std::int64_t> producer(*broker);
    auto md = take(producer.send(store.topic(), "a", 2));
    CHECK(md.partition == p);
    CHECK(take(store.version("a")) == md.offset);
    require_error(store.append("a", amounts({3}), 0), ErrorCode::kConflict);

    // A second store on the topic (its own index) sees both, and its appends are seen.
    CHECK(take(other.version("a")) == md.offset);
    auto at = take(other.append("a", amounts({3}), md.offset));
    CHECK(take(store.version("a")) == at.last_offset);
  }
  auto broker = take(rill::Broker::open(dir.sub("data"), options));
  auto store = take(Store::open(*broker, "accounts"));
  auto folded = take(store.fold("a", std::int64_t{0}, add));
  CHECK(folded.state == 6);
  CHECK(folded.events == 3);
  require_error(store.append("a", amounts({4}), folded.version - 1), ErrorCode::kConflict);
  (void)take(store.append("a", amounts({4}), folded.version));
}

TEST_CASE("replay reads a partition in order from an offset or from a timestamp", "[es]") {
  TestBroker env(1'000);
  auto store = take(Store::open(env.broker(), "ledger"));
  for (std::int64_t i = 0; i < 10; ++i) {
    (void)take(store.append_unchecked(i % 2 == 0 ? "even" : "odd", amounts({i})));
    env.advance(std::chrono::milliseconds(100));
  }
  Seen all;
  CHECK(take(store.replay(0, 0, std::ref(all))) == 10);
  CHECK(all.values == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

  Seen from_offset;
  CHECK(take(store.replay(0, 7, std::ref(from_offset))) == 10);
  CHECK(from_offset.offsets == std::vector<std::int64_t>{7, 8, 9});

  Seen since;  // event i was stamped 1000 + 100 i
  CHECK(take(store.replay_since(0, 1'650, std::ref(since))) == 10);
  CHECK(since.values == std::vector<std::int64_t>{7, 8, 9});
  Seen none;
  CHECK(take(store.replay_since(0, 99'999, std::ref(none))) == 10);
  CHECK(none.values.empty());

  Seen odd;
  CHECK(take(store.replay_key("odd", 0, std::ref(odd))) == 9);  // returns the version
  CHECK(odd.values == std::vector<std::int64_t>{1, 3, 5, 7, 9});
  Seen odd_late;
  (void)take(store.replay_key("odd", 4, std::ref(odd_late)));
  CHECK(odd_late.values == std::vector<std::int64_t>{5, 7, 9});
  Seen odd_since;
  (void)take(store.replay_key_since("odd", 1'250, std::ref(odd_since)));
  CHECK(odd_since.values == std::vector<std::int64_t>{3, 5, 7, 9});
  Seen missing;
  CHECK(take(store.replay_key("nobody", 0, std::ref(missing))) == kNoEvents);
  CHECK(missing.values.empty());

  require_error(store.replay(1, 0, std::ref(all)), ErrorCode::kOutOfRange);
}

TEST_CASE("a visitor returning an error stops the replay with it", "[es]") {
  TestBroker env;
  auto store = take(Store::open(env.broker(), "ledger"));
  (void)take(store.append_unchecked("k", amounts({1, 2, 3, 4})));
  int calls = 0;
  auto stop_at_3 =
      [&](const rill::ConsumerRecord<std::string, std::int64_t>& r) -> rill::Result<void> {
    ++calls;
    if (r.value == 3) return rill::fail(ErrorCode::kInvalidArgument, "three");
    return {};
  };
  require_error(store.replay(0, 0, stop_at_3), ErrorCode::kInvalidArgument);
  CHECK(calls == 3);
  calls = 0;
  require_error(store.replay_key("k", 0, stop_at_3), ErrorCode::kInvalidArgument);
  CHECK(calls == 3);
}

TEST_CASE("fold takes S(S, const E&) or void(S&, const E&) and resumes from an offset", "[es]") {
  TestBroker env;
  auto store = take(Store::open(env.broker(), "ledger"));
  (void)take(store.append("k", amounts({1, 2}), kNoEvents));
  (void)take(store.append("other", amounts({100}), kNoEvents));
  (void)take(store.append("k", amounts({3}), 1));

  auto by_value = take(store.fold("k", std::int64_t{0}, add));
  CHECK(by_value.state == 6);
  CHECK(by_value.version == 3);
  CHECK(by_value.events == 3);

  auto in_place =
      take(store.fold("k", std::vector<std::int64_t>{},
                      [](std::vector<std::int64_t>& s, const std::int64_t& e) { s.push_back(e); }));
  CHECK(in_place.state == std::vector<std::int64_t>{1, 2, 3});

  auto tail = take(store.fold("k", std::int64_t{1000}, add, 2));
  CHECK(tail.state == 1003);
  CHECK(tail.events == 1);
  CHECK(tail.version == 3);
  // Every event before from_offset: nothing applied, but the version is still the key's.
  auto none = take(store.fold("k", std::int64_t{7}, add, 4));
  CHECK(none.state == 7);
  CHECK(none.events == 0);
  CHECK(none.version == 3);
  auto empty = take(store.fold("nobody", std::int64_t{0}, add));
  CHECK(empty.version == kNoEvents);
  CHECK(empty.events == 0);
}

TEST_CASE("snapshots: the newest one loads, and rebuild applies only the events after it",
          "[es][snapshot]") {
  TestBroker env;
  auto store = take(Store::open(env.broker(), "ledger"));
  auto snaps = take(Snaps::open(env.broker(), "ledger.snapshots"));
  CHECK(take(env->describe_topic("ledger.snapshots")).config.cleanup_policy ==
        rill::CleanupPolicy::kCompact);
  CHECK_FALSE(take(snaps.load("k")).has_value());

  (void)take(store.append("k", amounts({1, 2, 3}), kNoEvents));  // offsets 0..2
  auto rebuilt = take(rill::es::rebuild(store, snaps, std::string("k"), std::int64_t{0}, add));
  CHECK(rebuilt.state == 6);
  CHECK(rebuilt.events == 3);  // no snapshot: everything replayed

  require_ok(snaps.save("k", 3, 1));  // state after offsets 0 and 1
  require_ok(snaps.save("other", 42, 9));
  require_ok(snaps.save("k", 6, 2));  // the newest
  auto s = take(snaps.load("k"));
  REQUIRE(s.has_value());
  CHECK(s->state == 6);
  CHECK(s->version == 2);

  (void)take(store.append("k", amounts({4}), 2));  // offset 3
  rebuilt = take(rill::es::rebuild(store, snaps, std::string("k"), std::int64_t{0}, add));
  CHECK(rebuilt.state == 10);
  CHECK(rebuilt.version == 3);
  CHECK(rebuilt.events == 1);  // only the tail after the snapshot

  // A snapshot that covers every event: state from it, version still the key's.
  require_ok(snaps.save("k", 10, 3));
  rebuilt = take(rill::es::rebuild(store, snaps, std::string("k"), std::int64_t{0}, add));
  CHECK(rebuilt.state == 10);
  CHECK(rebuilt.version == 3);
  CHECK(rebuilt.events == 0);
  require_error(snaps.save("k", 1, -2), ErrorCode::kInvalidArgument);
}

TEST_CASE("a snapshot loads past segments that compaction emptied", "[es][snapshot]") {
  // Every snapshot in the first segments is superseded, so compaction leaves each of them one
  // empty batch, and a read there returns no records while moving past them. The stores' key
  // index took the first empty read for the end: a store opened after the compaction found
  // no snapshot at all, for good.
  TestBroker env;
  rill::TopicConfig config = small_segments();
  auto snaps = take(Snaps::open(env.broker(), "snaps", config));
  for (std::int64_t i = 0; i < 200; ++i) require_ok(snaps.save("k", i * 10, i));
  require_ok(snaps.save("other", 7, 0));
  REQUIRE(snaps.topic().log(0)->segment_count() >= 4);
  const auto reports = take(env->compact("snaps"));
  REQUIRE(reports.size() == 1);
  REQUIRE(reports[0].segments_rewritten >= 3);

  auto fresh = take(Snaps::open(env.broker(), "snaps", config));  // a new key index
  auto k = take(fresh.load("k"));
  REQUIRE(k.has_value());
  CHECK(k->state == 1990);
  CHECK(k->version == 199);
  auto other = take(fresh.load("other"));
  REQUIRE(other.has_value());
  CHECK(other->state == 7);
}

TEST_CASE("a snapshot whose record compaction dropped since is no longer found", "[es][snapshot]") {
  // The store's index saw a tombstone as "k"'s newest record; compaction then dropped the
  // expired tombstone, and a read at its offset returns the next record kept, "x"'s. load()
  // returned that as "k"'s snapshot.
  TestBroker env(1'000'000);  // the tombstone, stamped 1, has expired by then
  rill::TopicConfig config = small_segments();
  config.delete_retention_ms = 0;
  auto snaps = take(Snaps::open(env.broker(), "snaps", config));
  require_ok(snaps.save("k", 5, 1));
  rill::storage::Record tombstone{.key = "k", .value = std::nullopt, .timestamp_ms = 1};
  REQUIRE(snaps.topic().log(0)->append(tombstone).has_value());
  require_ok(snaps.save("x", 1, 0));  // kept, right after the tombstone in its segment
  for (std::int64_t i = 0; i < 100; ++i) require_ok(snaps.save("other", i, i));
  REQUIRE(take(snaps.load("other"))->state == 99);  // the index has seen the tombstone
  REQUIRE(snaps.topic().log(0)->segment_count() >= 2);
  REQUIRE(take(env->compact("snaps"))[0].tombstones_dropped == 1);
  CHECK_FALSE(take(snaps.load("k")).has_value());
  CHECK(take(snaps.load("x"))->state == 1);
}

TEST_CASE("a tombstone deletes a key's snapshot; other keys still load", "[es][snapshot]") {
  // A null value, sent the Kafka way, is how a key's snapshot is deleted. load() decoded it
  // into the snapshot type and failed with kCorruption until compaction dropped it.
  TestBroker env;
  auto snaps = take(Snaps::open(env.broker(), "snaps"));
  require_ok(snaps.save("k", 5, 1));
  require_ok(snaps.save("x", 7, 2));
  rill::Producer<std::string, std::optional<std::int64_t>> producer(env.broker());
  auto nullable = take(rill::Topic<std::string, std::optional<std::int64_t>>::open(
      env.broker(), snaps.topic().name()));
  (void)take(producer.send(nullable, "k", std::nullopt));
  CHECK_FALSE(take(snaps.load("k")).has_value());
  CHECK(take(snaps.load("x"))->state == 7);
  auto fresh = take(Snaps::open(env.broker(), "snaps"));  // an index built from the log
  CHECK_FALSE(take(fresh.load("k")).has_value());
  require_ok(snaps.save("k", 9, 3));  // a new snapshot after the delete
  CHECK(take(snaps.load("k"))->state == 9);
}

TEST_CASE("a snapshot record without a version header is corruption, not a state",
          "[es][snapshot]") {
  TestBroker env;
  auto snaps = take(Snaps::open(env.broker(), "snaps"));
  rill::Producer<std::string, std::int64_t> producer(env.broker());
  (void)take(producer.send(snaps.topic(), "k", 5));  // no header
  require_error(snaps.load("k"), ErrorCode::kCorruption);
}

TEST_CASE("a snapshot version of INT64_MAX is corruption, not a version to fold after",
          "[es][snapshot]") {
  // rebuild() folds the events after a snapshot's version (version + 1), which overflowed for
  // a record (written by another tool, or damaged) claiming INT64_MAX.
  TestBroker env;
  auto snaps = take(Snaps::open(env.broker(), "snaps"));
  const std::string top = std::to_string(std::numeric_limits<std::int64_t>::max());
  const rill::storage::Header header{rill::es::kSnapshotVersionHeader, std::string_view(top)};
  const std::string value(8, '\0');  // an int64 of 0, big-endian
  REQUIRE(snaps.topic()
              .log(0)
              ->append({.key = std::string_view("k"),
                        .value = std::string_view(value),
                        .headers = std::span(&header, 1)})
              .has_value());
  require_error(snaps.load("k"), ErrorCode::kCorruption);
}

TEST_CASE("appending nothing, or to a deleted topic, is an error", "[es]") {
  TestBroker env;
  auto store = take(Store::open(env.broker(), "ledger"));
  require_error(store.append("k", std::vector<std::int64_t>{}, kNoEvents),
                ErrorCode::kInvalidArgument);
  require_ok(env->delete_topic("ledger"));
  require_error(store.append("k", amounts({1}), kNoEvents), ErrorCode::kNotFound);
}

TEST_CASE("an append landing between the version check's read and the append is a conflict",
          "[es]") {
  // The check must run under the log's append lock, after everything that precedes the append
  // (here the event's serialization): a check made before, then an append, would let the
  // other writer's event slip in between and both appends succeed.
  TestBroker env;
  auto store = take(EventStore<std::string, Hooked>::open(env.broker(), "hooked"));
  auto other = take(EventStore<std::string, Hooked>::open(env.broker(), "hooked"));
  (void)take(store.append("k", Hooked{"first"}, kNoEvents));  // version 0
  bool hooked = false;
  serialize_hook = [&] {
    hooked = true;
    (void)take(other.append_unchecked("k", std::vector<Hooked>{{"sneaked in"}}));
  };
  require_error(store.append("k", Hooked{"second"}, 0), ErrorCode::kConflict);
  CHECK(hooked);
  CHECK(store.topic().log(0)->end_offset() == 2);
  CHECK(take(store.version("k")) == 1);
}

TEST_CASE("a key whose events retention deleted has no version, as in a store opened afresh",
          "[es]") {
  // The index kept every key it had seen: after retention deleted a key's events, version()
  // still gave its old last offset, and an append expecting kNoEvents was a conflict, while a
  // store opened afresh (or the process restarted) said kNoEvents.
  TestBroker env;
  rill::TopicConfig config = small_segments();
  config.retention_bytes = 0;  // a roll deletes every sealed segment
  auto store = take(Store::open(env.broker(), "ledger", config));
  auto other = take(Store::open(env.broker(), "ledger", config));  // its own index
  (void)take(store.append("a", amounts({1, 2}), kNoEvents));
  REQUIRE(take(store.version("a")) == 1);  // both indexes have seen "a"
  REQUIRE(take(other.version("a")) == 1);
  const rill::storage::Log& log = *store.topic().log(0);
  for (std::int64_t i = 0; log.start_offset() <= 1; ++i) {
    REQUIRE(i < 10'000);
    (void)take(store.append_unchecked("b", amounts({i})));
  }

  auto fresh = take(Store::open(env.broker(), "ledger", config));
  CHECK(take(fresh.version("a")) == kNoEvents);
  CHECK(take(store.version("a")) == kNoEvents);
  auto folded = take(store.fold("a", std::int64_t{0}, add));
  CHECK(folded.version == kNoEvents);
  CHECK(folded.events == 0);
  CHECK(take(store.version("b")) == log.end_offset() - 1);  // a key still in the log stays
  // The append's own check, under the append lock, agrees.
  require_error(other.append("a", amounts({3}), 1), ErrorCode::kConflict);
  auto at = take(other.append("a", amounts({3}), kNoEvents));
  CHECK(take(store.version("a")) == at.last_offset);
  CHECK(take(fresh.version("a")) == at.last_offset);
}

TEST_CASE("a key whose tombstone compaction dropped has no version, as in a store opened afresh",
          "[es]") {
  // Compaction drops an expired tombstone that is a key's newest record, and every older record
  // of the key with it: a store opened afterwards has never heard of the key. The running
  // store's index still had the tombstone's offset as the key's version.
  TestBroker env(1'000'000);  // the tombstone, stamped 1, has expired by then
  rill::TopicConfig config = small_segments();
  config.cleanup_policy = rill::CleanupPolicy::kCompact;
  config.delete_retention_ms = 0;
  auto store = take(Store::open(env.broker(), "ledger", config));
  (void)take(store.append("a", amounts({1}), kNoEvents));  // offset 0
  rill::storage::Log& log = *store.topic().log(0);
  rill::storage::Record tombstone{.key = "a", .value = std::nullopt, .timestamp_ms = 1};
  REQUIRE(log.append(tombstone).has_value());  // offset 1
  (void)take(store.append("t", amounts({5}), kNoEvents));
  rill::storage::Record kept_tombstone{.key = "t", .value = std::nullopt};  // stamped now
  REQUIRE(log.append(kept_tombstone).has_value());  // offset 3: not expired, kept
  REQUIRE(take(store.version("a")) == 1);           // the index has seen the tombstones
  REQUIRE(take(store.version("t")) == 3);
  for (std::int64_t i = 0; log.segment_count() < 2; ++i) {
    REQUIRE(i < 10'000);
    (void)take(store.append_unchecked("b", amounts({i})));
  }
  // Compacting twice: the second run finds nothing to drop and leaves the index alone.
  REQUIRE(take(env->compact("ledger"))[0].tombstones_dropped == 1);
  REQUIRE(take(env->compact("ledger"))[0].tombstones_dropped == 0);

  auto fresh = take(Store::open(env.broker(), "ledger", config));
  CHECK(take(fresh.version("a")) == kNoEvents);
  CHECK(take(store.version("a")) == kNoEvents);
  CHECK(take(fresh.version("t")) == 3);
  CHECK(take(store.version("t")) == 3);
  auto at = take(store.append("a", amounts({2}), kNoEvents));
  CHECK(take(fresh.version("a")) == at.last_offset);
}

TEST_CASE("an append checks the version in the partition it appends to while the topic grows",
          "[es]") {
  // The partition was computed twice, once for the version check and once for the append: an
  // add_partitions between the two checked the key's version in one partition and appended to
  // another, where the key had other events (here none), and the append succeeded.
  TestBroker env;
  auto store = take(EventStore<HookedKey, std::int64_t>::open(env.broker(), "grown"));
  // A key that stays in partition 0 at 2 partitions and moves at 3.
  std::string text;
  for (int i = 0; i < 1000 && text.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (rill::partition_for_key(k, 2) == 0 && rill::partition_for_key(k, 3) != 0) text = k;
  }
  REQUIRE(!text.empty());
  const HookedKey key{text};
  (void)take(store.append(key, amounts({1}), kNoEvents));  // partition 0, offset 0
  REQUIRE(take(store.version(key)) == 0);

  // Each time the append serializes the key, the topic gets one partition more.
  int grown = 0;
  key_hook = [&] {
    ++grown;
    (void)take(env->add_partitions("grown", store.topic().partitions() + 1));
  };
  auto at = store.append(key, amounts({2}), 0);
  key_hook = nullptr;
  REQUIRE(grown >= 1);
  // The key's version was checked at 2 partitions (or more), where it is in partition 0: the
  // events follow version 0 there.
  REQUIRE(at.has_value());
  CHECK(at->partition == 0);
  CHECK(at->first_offset == 1);
  CHECK(store.topic().log(0)->end_offset() == 2);
}

}  // namespace event_store_test
