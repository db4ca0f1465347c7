// Bad input everywhere in the public API gets a clear error and changes nothing
// (docs/errors.md): each bad call is made against a broker holding topics, records and
// committed offsets, and the whole visible state (topics, configs, every partition's offsets
// and bytes, every group's committed offsets, the files on disk) must be the same afterwards.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/rill.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace errors_test {

namespace {

namespace fs = std::filesystem;
using rill::ErrorCode;
using rill::TopicPartition;
using rill_test::take;

// Everything a caller (or a later process) can observe of a broker.
std::string snapshot(rill::Broker& broker) {
  std::string out;
  for (const auto& name : broker.list_topics(true)) {
    auto d = take(broker.describe_topic(name));
    out += name + " " + rill::detail::format_topic_config(d.config);
    for (const auto& p : d.partitions) {
      out += " p" + std::to_string(p.partition) + ":" + std::to_string(p.start_offset) + "-" +
             std::to_string(p.end_offset) + "/" + std::to_string(p.size_bytes);
    }
    out += "\n";
  }
  auto store = take(broker.offset_store());
  for (const auto& g : store->groups()) {
    for (const auto& [tp, om] : store->group_offsets(g)) {
      out += g + " " + tp.topic + "-" + std::to_string(tp.partition) + "=" +
             std::to_string(om.offset) + " " + om.metadata + "\n";
    }
  }
  if (!broker.in_memory()) {
    std::set<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(broker.directory())) {
      files.insert(e.path().string() + " " +
                   std::to_string(e.is_regular_file() ? e.file_size() : 0));
    }
    for (const auto& f : files) out += f + "\n";
  }
  return out;
}

template <typename T>
void expect_error(const char* what, const rill::Result<T>& r, ErrorCode code) {
  INFO(what);
  REQUIRE(!r.has_value());
  INFO(r.error().to_string());
  CHECK(r.error().code() == code);
  CHECK(!r.error().message().empty());
}

}  // namespace

TEST_CASE("bad input to the broker, topics, producers and consumers changes nothing",
          "[errors][broker]") {
  rill_test::TempDir tmp;
  rill::BrokerOptions o;
  o.prefault_bytes = 0;
  auto broker = take(rill::Broker::open(tmp.sub("data"), o));
  rill::TopicConfig tc;
  tc.partitions = 2;
  tc.segment_bytes = 16u << 10;
  tc.max_record_bytes = 1024;
  auto topic = take(rill::Topic<std::string, std::string>::create(*broker, "orders", tc));
  rill::Producer<std::string, std::string> producer(*broker);
  for (int i = 0; i < 20; ++i) take(producer.send(topic, "k" + std::to_string(i), "v"));
  {
    rill::Consumer<std::string, std::string> c(*broker, {.group_id = "g"});
    rill_test::require_ok(c.assign({{"orders", 0}, {"orders", 1}}));
    rill_test::require_ok(c.commit({{{"orders", 0}, {3, "m", 0}}}));
  }
  const std::string before = snapshot(*broker);

  // Broker administration.
  rill::TopicConfig bad = tc;
  bad.partitions = 0;
  expect_error("0 partitions", broker->create_topic("t", bad), ErrorCode::kInvalidArgument);
  bad.partitions = rill::kMaxPartitions + 1;
  expect_error("too many partitions", broker->create_topic("t", bad), ErrorCode::kInvalidArgument);
  bad = tc;
  bad.segment_bytes = 10;
  expect_error("tiny segments", broker->create_topic("t", bad), ErrorCode::kInvalidArgument);
  bad = tc;
  bad.max_record_bytes = 1u << 20;
  expect_error("records larger than segments", broker->create_topic("t", bad),
               ErrorCode::kInvalidArgument);
  bad = tc;
  bad.durability = rill::storage::Durability::every(0);
  expect_error("every(0)", broker->create_topic("t", bad), ErrorCode::kInvalidArgument);
  bad = tc;
  bad.key_serde = "a\nb";
  expect_error("serde name with a newline", broker->create_topic("t", bad),
               ErrorCode::kInvalidArgument);
  expect_error("bad name", broker->create_topic("../t", tc), ErrorCode::kInvalidArgument);
  expect_error("existing", broker->create_topic("orders", tc), ErrorCode::kAlreadyExists);
  expect_error("describe unknown", broker->describe_topic("nope"), ErrorCode::kNotFound);
  expect_error("delete unknown", broker->delete_topic("nope"), ErrorCode::kNotFound);
  expect_error("delete internal", broker->delete_topic("__consumer_offsets"),
               ErrorCode::kInvalidArgument);
  expect_error("grow unknown", broker->add_partitions("nope", 3), ErrorCode::kNotFound);
  expect_error("shrink", broker->add_partitions("orders", 1), ErrorCode::kInvalidArgument);
  expect_error("same count", broker->add_partitions("orders", 2), ErrorCode::kInvalidArgument);
  expect_error("grow past the maximum", broker->add_partitions("orders", rill::kMaxPartitions + 1),
               ErrorCode::kInvalidArgument);
  expect_error("second broker", rill::Broker::open(tmp.sub("data"), o), ErrorCode::kLocked);
  expect_error("empty group id", broker->group_coordinator(""), ErrorCode::kInvalidArgument);

  // Typed topics and producers.
  expect_error("other types", rill::Topic<std::int32_t, std::string>::open(*broker, "orders"),
               ErrorCode::kInvalidArgument);
  expect_error("open unknown", rill::Topic<std::string, std::string>::open(*broker, "nope"),
               ErrorCode::kNotFound);
  expect_error("read partition out of range", topic.read(2, 0, 10), ErrorCode::kOutOfRange);
  expect_error("read offset out of range", topic.read(0, 1000, 10), ErrorCode::kOutOfRange);
  expect_error("read negative offset", topic.read(0, -1, 10), ErrorCode::kOutOfRange);
  rill::ProducerRecord<std::string, std::string> to_p9{.key = "k", .value = "v"};
  to_p9.partition = 9;
  expect_error("send to partition 9", producer.send(topic, to_p9), ErrorCode::kOutOfRange);
  expect_error("oversize value", producer.send(topic, "k", std::string(2000, 'x')),
               ErrorCode::kRecordTooLarge);
  expect_error("negative timestamp", producer.send(topic, "k", "v", {}, -5),
               ErrorCode::kInvalidArgument);
  std::vector<rill::ProducerRecord<std::string, std::string>> batch(3);
  batch[0].value = "fine";
  batch[1].value = std::string(2000, 'x');  // one bad record: none is appended
  batch[2].value = "fine";
  expect_error("batch with an oversize record",
               producer.send_batch(
                   topic, std::span<const rill::ProducerRecord<std::string, std::string>>(batch)),
               ErrorCode::kRecordTooLarge);
  rill::Producer<std::string, std::string> bad_router(
      *broker, {.partitioner = [](std::string_view, std::optional<std::string_view>, std::int32_t) {
        return 7;
      }});
  expect_error("partitioner out of range", bad_router.send(topic, "k", "v"),
               ErrorCode::kOutOfRange);

  // Consumers.
  {
    rill::Consumer<std::string, std::string> no_group(*broker, {});
    expect_error("subscribe without a group", no_group.subscribe({"orders"}),
                 ErrorCode::kInvalidArgument);
    expect_error("commit without a group", no_group.commit({{{"orders", 0}, {1, "", 0}}}),
                 ErrorCode::kInvalidArgument);
    expect_error("seek unassigned", no_group.seek({"orders", 0}, 1), ErrorCode::kInvalidArgument);
    rill_test::require_ok(no_group.assign({{"orders", 0}}));
    expect_error("seek past the end", no_group.seek({"orders", 0}, 1000), ErrorCode::kOutOfRange);
    rill::Consumer<std::string, std::string> grouped(*broker, {.group_id = "g"});
    expect_error("commit metadata over 64 KiB",
                 grouped.commit({{{"orders", 0}, {9, std::string(70000, 'm'), 0}}}),
                 ErrorCode::kInvalidArgument);
  }

  // The raw log.
  rill::storage::Log* log = (*broker->topic_state("orders"))->partition(0);
  expect_error("raw oversize", log->append({.value = std::string_view(std::string(2000, 'x'))}),
               ErrorCode::kRecordTooLarge);
  expect_error("raw negative timestamp", log->append({.value = "v", .timestamp_ms = -7}),
               ErrorCode::kInvalidArgument);
  const rill::storage::Record rec{.value = "v"};
  expect_error("conditional append, wrong end",
               log->append_batch({&rec, 1}, rill::storage::Log::end_offset_is(12345)),
               ErrorCode::kConflict);
  expect_error("wait with nothing coming", log->wait_for(1000, std::chrono::milliseconds(1)),
               ErrorCode::kTimeout);

  CHECK(snapshot(*broker) == before);
}

TEST_CASE("bad input to a log changes nothing, and a closed log refuses appends", "[errors][log]") {
  rill_test::TempDir tmp;
  rill::storage::LogConfig c;
  c.prefault_bytes = 0;
  for (auto bad : std::vector<std::function<void(rill::storage::LogConfig&)>>{
           [](auto& b) { b.segment_bytes = 8; },
           [](auto& b) { b.segment_bytes = (std::size_t{1} << 32) + 1; },
           [](auto& b) { b.max_record_bytes = 4; },
           [](auto& b) { b.durability = rill::storage::Durability::interval(0); }}) {
    rill::storage::LogConfig b = c;
    bad(b);
    expect_error("bad config", rill::storage::Log::open(tmp.sub("bad"), b),
                 ErrorCode::kInvalidArgument);
    CHECK(!fs::exists(tmp.sub("bad")));  // nothing created
  }
  auto log = take(rill::storage::Log::open(tmp.sub("log"), c));
  take(log->append({.value = "v"}));
  expect_error("second writer", rill::storage::Log::open(tmp.sub("log"), c), ErrorCode::kLocked);
  log->close();
  expect_error("append after close", log->append({.value = "v"}), ErrorCode::kClosed);
  CHECK(log->end_offset() == 1);
  auto read = take(log->read(0, 10));
  CHECK(read.size() == 1);
}

TEST_CASE("a Result converts implicitly from what its value type converts from, no more",
          "[errors][result]") {
  // Result<T>'s converting constructor was implicit for anything T could be built from, even
  // through T's explicit constructors: `return n;` in a function returning
  // Result<std::vector<std::int64_t>> compiled and returned n zeros. It is explicit where T's
  // constructor is, as std::expected's.
  using Vec = rill::Result<std::vector<std::int64_t>>;
  static_assert(!std::is_convertible_v<std::size_t, Vec>);
  static_assert(std::is_constructible_v<Vec, std::size_t>);  // said out loud, it still works
  static_assert(std::is_convertible_v<std::vector<std::int64_t>, Vec>);
  static_assert(!std::is_convertible_v<std::string_view, rill::Result<std::string>>);
  static_assert(std::is_convertible_v<const char*, rill::Result<std::string>>);
  static_assert(std::is_convertible_v<std::unique_ptr<int>, rill::Result<std::shared_ptr<int>>>);
  const rill::Result<std::string> s = "text";
  CHECK(*s == "text");
}

}  // namespace errors_test
