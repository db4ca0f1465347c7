// The broker: topic administration (create, describe, list, delete, add partitions), topic
// names and configs, topic.conf on disk and its damage, the directory lock, crash leftovers,
// reopening, recovery reports, and the broker's clock.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker.hpp"
#include "rill/producer.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace broker_test {

using rill::Broker;
using rill::BrokerOptions;
using rill::CleanupPolicy;
using rill::ErrorCode;
using rill::kMaxPartitions;
using rill::ManualClock;
using rill::TopicConfig;
using rill::TopicDescription;
using rill::storage::Durability;
using rill::storage::Record;
using rill_test::TempDir;

namespace fs = std::filesystem;

namespace {

using StringTopic = rill::Topic<std::string, std::string>;
using StringProducer = rill::Producer<std::string, std::string>;

// Unwraps a Result, failing the test with its error message.
using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Small segments and no prefault thread: cheap topics.
BrokerOptions light_options(std::shared_ptr<rill::Clock> clock = nullptr) {
  BrokerOptions o;
  o.clock = std::move(clock);
  o.prefault_bytes = 0;
  return o;
}

TopicConfig small_topic(std::int32_t partitions) {
  TopicConfig c;
  c.partitions = partitions;
  c.segment_bytes = 64 * 1024;
  c.max_record_bytes = 4096;
  return c;
}

std::unique_ptr<Broker> open_broker(const std::string& dir,
                                    BrokerOptions options = light_options()) {
  return take(Broker::open(dir, std::move(options)));
}

// An on-disk broker in `dir` or an in-memory one.
std::unique_ptr<Broker> open_backend(bool in_memory, const TempDir& dir,
                                     BrokerOptions options = light_options()) {
  if (in_memory) return take(Broker::open_in_memory(std::move(options)));
  return open_broker(dir.sub("data"), std::move(options));
}

// Names in a directory, sorted; empty when it does not exist.
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_text(const std::string& path) {
  const auto bytes = rill_test::read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

void write_text(const std::string& path, const std::string& text) {
  rill_test::write_file(path, std::vector<char>(text.begin(), text.end()));
}

// Appends `n` raw records "<topic>-<p>-<i>" to every partition of a topic.
void fill(Broker& broker, const std::string& topic, int n) {
  auto state = take(broker.topic_state(topic));
  for (std::int32_t p = 0; p < state->partition_count(); ++p) {
    for (int i = 0; i < n; ++i) {
      const std::string v = topic + "-" + std::to_string(p) + "-" + std::to_string(i);
      auto at = state->partition(p)->append({.key = std::string_view("k"), .value = v});
      REQUIRE(at.has_value());
    }
  }
}

// Checks that every partition of a topic holds exactly the `n` records fill() wrote.
void check_filled(Broker& broker, const std::string& topic, int n) {
  auto state = take(broker.topic_state(topic));
  for (std::int32_t p = 0; p < state->partition_count(); ++p) {
    CAPTURE(topic, p);
    const rill::storage::Log& log = *state->partition(p);
    REQUIRE(log.end_offset() == n);
    // A read stops at a segment boundary: read on until the end.
    int i = 0;
    rill::storage::RecordBatch batch;
    while (i < n) {
      require_ok(log.read_into(i, batch, static_cast<std::size_t>(n)));
      REQUIRE(!batch.empty());
      for (const auto& r : batch) {
        CHECK(r.offset() == i);
        CHECK(*r.value() == topic + "-" + std::to_string(p) + "-" + std::to_string(i));
        ++i;
      }
    }
    CHECK(i == n);
  }
}

bool same_durability(const Durability& a, const Durability& b) {
  return a.mode == b.mode && a.every_records == b.every_records && a.interval_ms == b.interval_ms;
}

void check_same_config(const TopicConfig& got, const TopicConfig& want) {
  CHECK(got.partitions == want.partitions);
  CHECK(got.segment_bytes == want.segment_bytes);
  CHECK(got.segment_ms == want.segment_ms);
  CHECK(got.retention_bytes == want.retention_bytes);
  CHECK(got.retention_ms == want.retention_ms);
  CHECK(got.cleanup_policy == want.cleanup_policy);
  CHECK(same_durability(got.durability, want.durability));
  CHECK(got.max_record_bytes == want.max_record_bytes);
  CHECK(got.key_serde == want.key_serde);
  CHECK(got.value_serde == want.value_serde);
}

// A topic name made printable for test output.
std::string printable(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += "0123456789abcdef"[b >> 4];
      out += "0123456789abcdef"[b & 0xF];
    }
  }
  return out.size() > 40 ? out.substr(0, 20) + "...(" + std::to_string(name.size()) + " chars)"
                         : out;
}

}  // namespace

// --- create, describe, list ------------------------------------------------------------------

TEST_CASE("a created topic is described with its config and empty partitions", "[broker]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  CHECK(broker->in_memory() == in_memory);

  TopicConfig config = small_topic(3);
  config.retention_ms = 60'000;
  config.key_serde = "string";
  const TopicDescription created = take(broker->create_topic("orders", config));
  CHECK(created.name == "orders");
  check_same_config(created.config, config);
  REQUIRE(created.partitions.size() == 3);
  for (std::int32_t p = 0; p < 3; ++p) {
    const auto& info = created.partitions[static_cast<std::size_t>(p)];
    CHECK(info.partition == p);
    CHECK(info.start_offset == 0);
    CHECK(info.end_offset == 0);
    CHECK(info.size_bytes == 0);
    CHECK(info.segments == 1);
  }

  fill(*broker, "orders", 5);
  const TopicDescription described = take(broker->describe_topic("orders"));
  CHECK(described.name == "orders");
  check_same_config(described.config, config);
  REQUIRE(described.partitions.size() == 3);
  for (const auto& info : described.partitions) {
    CHECK(info.end_offset == 5);
    CHECK(info.size_bytes > 0);
  }
}

TEST_CASE("list_topics names every topic, sorted", "[broker]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  CHECK(broker->list_topics().empty());
  for (const char* name : {"zeta", "alpha", "Mid.dle_1-x", "0"}) {
    take(broker->create_topic(name, small_topic(1)));
  }
  CHECK(broker->list_topics() == std::vector<std::string>{"0", "Mid.dle_1-x", "alpha", "zeta"});
}

TEST_CASE("a topic that exists is not created again, and an absent one is not found",
          "[broker][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  take(broker->create_topic("orders", small_topic(2)));
  fill(*broker, "orders", 3);

  require_error(broker->create_topic("orders", small_topic(5)), ErrorCode::kAlreadyExists);
  const auto d = take(broker->describe_topic("orders"));
  CHECK(d.config.partitions == 2);  // untouched, records too
  check_filled(*broker, "orders", 3);

  require_error(broker->describe_topic("absent"), ErrorCode::kNotFound);
  require_error(broker->delete_topic("absent"), ErrorCode::kNotFound);
  require_error(broker->add_partitions("absent", 4), ErrorCode::kNotFound);
  require_error(broker->topic_state("absent"), ErrorCode::kNotFound);
  require_error(StringTopic::open(*broker, "absent"), ErrorCode::kNotFound);
}

TEST_CASE("create_topic_if_absent returns the existing topic's config, not the requested one",
          "[broker]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);

  TopicConfig first = small_topic(2);
  first.retention_bytes = 1 << 20;
  const auto created = take(broker->create_topic_if_absent("orders", first));
  check_same_config(created.config, first);
  fill(*broker, "orders", 4);

  TopicConfig other = small_topic(7);
  other.retention_bytes = 5;
  other.cleanup_policy = CleanupPolicy::kCompact;
  other.value_serde = "int64";
  const auto existing = take(broker->create_topic_if_absent("orders", other));
  check_same_config(existing.config, first);
  REQUIRE(existing.partitions.size() == 2);
  CHECK(existing.partitions[0].end_offset == 4);  // the same topic, records and all
  check_filled(*broker, "orders", 4);
  CHECK(broker->list_topics() == std::vector<std::string>{"orders"});

  // An invalid config for a topic that does not exist yet is still refused.
  TopicConfig bad = small_topic(0);
  require_error(broker->create_topic_if_absent("other", bad), ErrorCode::kInvalidArgument);
}

TEST_CASE("on disk a topic is a directory with topic.conf and one directory per partition",
          "[broker][format]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  auto broker = open_broker(data);
  take(broker->create_topic("orders", small_topic(3)));
  CHECK(broker->directory() == data);
  CHECK(entries(data) == std::vector<std::string>{"orders", "~lock"});
  CHECK(entries(data + "/orders") == std::vector<std::string>{"0", "1", "2", "topic.conf"});
  const std::string conf = read_text(data + "/orders/topic.conf");
  CHECK(contains(conf, "\npartitions=3\n"));
  CHECK(contains(conf, "\nsegment_bytes=65536\n"));
  CHECK(contains(conf, "\ndurability=os_cache\n"));
  CHECK(contains(conf, "\ncleanup_policy=delete\n"));
  CHECK(contains(read_text(data + "/~lock"), std::to_string(::getpid())));
}

// --- delete ----------------------------------------------------------------------------------

TEST_CASE("delete_topic removes the topic and its files; the name can be created again, empty",
          "[broker][delete]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  const std::string data = dir.sub("data");
  auto broker = open_backend(in_memory, dir);
  take(broker->create_topic("orders", small_topic(3)));
  take(broker->create_topic("keep", small_topic(1)));
  fill(*broker, "orders", 10);
  fill(*broker, "keep", 2);

  require_ok(broker->delete_topic("orders"));
  CHECK(broker->list_topics() == std::vector<std::string>{"keep"});
  require_error(broker->describe_topic("orders"), ErrorCode::kNotFound);
  require_error(broker->delete_topic("orders"), ErrorCode::kNotFound);
  if (!in_memory) {
    CHECK(entries(data) == std::vector<std::string>{"keep", "~lock"});  // no "~deleted-N"
  }

  const auto again = take(broker->create_topic("orders", small_topic(2)));
  REQUIRE(again.partitions.size() == 2);
  for (const auto& info : again.partitions) {
    CHECK(info.start_offset == 0);
    CHECK(info.end_offset == 0);
  }
  check_filled(*broker, "keep", 2);  // the other topic is untouched

  if (!in_memory) {  // and after a reopen, too
    broker.reset();
    broker = open_broker(data);
    CHECK(broker->list_topics() == std::vector<std::string>{"keep", "orders"});
    const auto d = take(broker->describe_topic("orders"));
    REQUIRE(d.partitions.size() == 2);
    CHECK(d.partitions[0].end_offset == 0);
    CHECK(d.partitions[1].end_offset == 0);
    check_filled(*broker, "keep", 2);
  }
}

TEST_CASE("a topic handle held across delete_topic fails its sends with kNotFound",
          "[broker][delete][producer]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(2)));
  StringProducer producer(*broker);
  take(producer.send(topic, "k", "before"));
  auto held = take(topic.read(rill::partition_for_key("k", 2), 0, 10));  // read before delete
  REQUIRE(held.size() == 1);

  require_ok(broker->delete_topic("orders"));
  CHECK(topic.deleted());

  require_error(producer.send(topic, "k", "after"), ErrorCode::kNotFound);
  require_error(producer.send(topic, std::nullopt, "after"), ErrorCode::kNotFound);
  require_error(producer.send(topic, {.key = std::nullopt, .value = "after", .partition = 1}),
                ErrorCode::kNotFound);
  const rill::ProducerRecord<std::string, std::string> batch[] = {{.key = "a", .value = "1"},
                                                                  {.key = "b", .value = "2"}};
  require_error(producer.send_batch(topic, batch), ErrorCode::kNotFound);
  // Records read before the delete stay readable while their batch holds them.
  CHECK(held[0].value == "before");
  CHECK(held[0].key == std::optional<std::string>("k"));

  // A new topic of the same name is a different topic: the old handle cannot write into it.
  auto fresh = take(StringTopic::create(*broker, "orders", small_topic(2)));
  require_error(producer.send(topic, "k", "stale"), ErrorCode::kNotFound);
  CHECK(!fresh.deleted());
  CHECK(fresh.log(0)->end_offset() == 0);
  CHECK(fresh.log(1)->end_offset() == 0);
  take(producer.send(fresh, "k", "new"));
}

// --- add_partitions --------------------------------------------------------------------------

TEST_CASE("add_partitions grows a topic and the new partitions take records",
          "[broker][partitions]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(StringTopic::create(*broker, "orders", small_topic(2)));
  fill(*broker, "orders", 3);

  const auto grown = take(broker->add_partitions("orders", 5));
  CHECK(grown.config.partitions == 5);
  REQUIRE(grown.partitions.size() == 5);
  CHECK(grown.partitions[0].end_offset == 3);  // old partitions keep their records
  CHECK(grown.partitions[1].end_offset == 3);
  for (std::size_t p = 2; p < 5; ++p) CHECK(grown.partitions[p].end_offset == 0);
  CHECK(take(broker->describe_topic("orders")).config.partitions == 5);
  CHECK(topic.partitions() == 5);  // a handle taken before sees the growth

  StringProducer producer(*broker);
  for (std::int32_t p = 2; p < 5; ++p) {
    const auto md = take(producer.send(topic, {.key = "k", .value = "new", .partition = p}));
    CHECK(md.partition == p);
    CHECK(md.offset == 0);
    auto batch = take(topic.read(p, 0, 10));
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].value == "new");
  }
  if (!in_memory) {
    CHECK(entries(dir.sub("data/orders")) ==
          std::vector<std::string>{"0", "1", "2", "3", "4", "topic.conf"});
  }
}

TEST_CASE("add_partitions refuses equal or fewer partitions and more than kMaxPartitions",
          "[broker][partitions][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  take(broker->create_topic("orders", small_topic(3)));
  for (const std::int32_t total : {3, 2, 1, 0, -1, kMaxPartitions + 1, 1 << 30}) {
    CAPTURE(total);
    require_error(broker->add_partitions("orders", total), ErrorCode::kInvalidArgument);
    CHECK(take(broker->describe_topic("orders")).partitions.size() == 3);
  }
  if (!in_memory) {
    CHECK(entries(dir.sub("data/orders")) == std::vector<std::string>{"0", "1", "2", "topic.conf"});
    CHECK(contains(read_text(dir.sub("data/orders/topic.conf")), "\npartitions=3\n"));
  }
}

TEST_CASE("a topic can grow to exactly kMaxPartitions, and be created with that many",
          "[broker][partitions]") {
  // In memory with tiny segments: a thousand partitions cost little there.
  auto broker = take(Broker::open_in_memory(light_options()));
  TopicConfig config = small_topic(1);
  config.segment_bytes = 4096;
  config.max_record_bytes = 1024;
  take(broker->create_topic("grows", config));
  CHECK(take(broker->add_partitions("grows", kMaxPartitions)).partitions.size() ==
        static_cast<std::size_t>(kMaxPartitions));
  require_error(broker->add_partitions("grows", kMaxPartitions + 1), ErrorCode::kInvalidArgument);

  config.partitions = kMaxPartitions;
  CHECK(take(broker->create_topic("born-big", config)).partitions.size() ==
        static_cast<std::size_t>(kMaxPartitions));
}

TEST_CASE("add_partitions is persisted: a reopened broker has the new partitions and records",
          "[broker][partitions][recovery]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  {
    auto broker = open_broker(data);
    take(broker->create_topic("orders", small_topic(2)));
    fill(*broker, "orders", 2);
    take(broker->add_partitions("orders", 4));
    auto state = take(broker->topic_state("orders"));
    for (std::int32_t p = 2; p < 4; ++p) {
      REQUIRE(state->partition(p)->append({.value = std::string_view("late")}).has_value());
    }
  }
  auto broker = open_broker(data);
  CHECK(broker->recovery().empty());
  const auto d = take(broker->describe_topic("orders"));
  CHECK(d.config.partitions == 4);
  REQUIRE(d.partitions.size() == 4);
  CHECK(d.partitions[0].end_offset == 2);
  CHECK(d.partitions[1].end_offset == 2);
  CHECK(d.partitions[2].end_offset == 1);
  CHECK(d.partitions[3].end_offset == 1);
  auto state = take(broker->topic_state("orders"));
  CHECK(*take(state->partition(3)->read(0, 1))[0].value() == "late");
}

// --- reopen ----------------------------------------------------------------------------------

TEST_CASE("a reopened broker brings back every topic, its whole config and its records",
          "[broker][recovery]") {
  TempDir dir;
  const std::string data = dir.sub("data");

  std::vector<std::pair<std::string, TopicConfig>> topics;
  {
    TopicConfig c = small_topic(3);
    c.segment_ms = 12345;
    c.retention_bytes = 1 << 20;
    c.retention_ms = 3'600'000;
    c.cleanup_policy = CleanupPolicy::kDelete;
    c.durability = Durability::os_cache();
    c.max_record_bytes = 2048;
    c.key_serde = "string";
    c.value_serde = "int64";
    topics.emplace_back("os-cache", c);
  }
  {
    TopicConfig c = small_topic(1);
    c.segment_bytes = 8192;
    c.segment_ms = -1;
    c.cleanup_policy = CleanupPolicy::kCompact;
    c.durability = Durability::every(7);
    c.key_serde = "trivial:geo.Point";
    c.value_serde = "my Order/v1 #2";  // spaces and '#' are kept as they are
    topics.emplace_back("every.7", c);
  }
  {
    TopicConfig c = small_topic(2);
    c.durability = Durability::interval(250);
    c.retention_ms = 0;
    c.retention_bytes = 0;
    c.value_serde = "bytes";  // a key serde may be empty while the value's is not
    topics.emplace_back("interval_250", c);
  }
  {
    TopicConfig c = small_topic(2);
    c.durability = Durability::every_append();
    c.segment_bytes = 1u << 20;
    c.max_record_bytes = (1u << 20) - 64;  // the largest a segment allows
    topics.emplace_back("EveryAppend", c);
  }
  { topics.emplace_back("defaults", TopicConfig{}); }

  {
    auto broker = open_broker(data);
    for (const auto& [name, config] : topics) {
      CAPTURE(name);
      check_same_config(take(broker->create_topic(name, config)).config, config);
      fill(*broker, name, 6);
    }
  }
  auto broker = open_broker(data);
  CHECK(broker->recovery().empty());
  CHECK(broker->list_topics() ==
        std::vector<std::string>{"EveryAppend", "defaults", "every.7", "interval_250", "os-cache"});
  for (const auto& [name, config] : topics) {
    CAPTURE(name);
    const auto d = take(broker->describe_topic(name));
    check_same_config(d.config, config);
    CHECK(d.partitions.size() == static_cast<std::size_t>(config.partitions));
    check_filled(*broker, name, 6);
  }
  // Appends continue where the records end.
  auto state = take(broker->topic_state("os-cache"));
  CHECK(take(state->partition(0)->append({.value = std::string_view("next")})).offset == 6);
}

TEST_CASE("a typed topic opens with its types after a reopen and refuses others",
          "[broker][recovery][topic]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  {
    auto broker = open_broker(data);
    auto topic = take(rill::Topic<std::string, std::int64_t>::create(*broker, "n", small_topic(2)));
    rill::Producer<std::string, std::int64_t> producer(*broker);
    take(producer.send(topic, "k", 42));
  }
  auto broker = open_broker(data);
  const auto d = take(broker->describe_topic("n"));
  CHECK(d.config.key_serde == "string");
  CHECK(d.config.value_serde == "int64");
  auto topic = take(rill::Topic<std::string, std::int64_t>::open(*broker, "n"));
  auto batch = take(topic.read(rill::partition_for_key("k", 2), 0, 10));
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].value == 42);
  require_error(rill::Topic<std::string, std::int32_t>::open(*broker, "n"),
                ErrorCode::kInvalidArgument);
}

// --- names -----------------------------------------------------------------------------------

TEST_CASE("topic names outside Kafka's rule are refused and nothing is created",
          "[broker][names][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  const std::string bad[] = {
      "",
      ".",
      "..",
      std::string(250, 'a'),
      std::string(1000, 'b'),
      "a/b",
      "../x",
      "/abs",
      "a b",
      "\xc3\xa9",  // "é" in UTF-8
      std::string("a\0b", 3),
      "~x",
      "~creating-1",
      "~deleted-1",
      "a\\b",
      "a:b",
      "a\nb",
      "tab\t",
  };
  for (const std::string& name : bad) {
    INFO("name: \"" << printable(name) << "\"");
    auto v = rill::validate_topic_name(name);
    REQUIRE(!v.has_value());
    CHECK(v.error().code() == ErrorCode::kInvalidArgument);
    require_error(broker->create_topic(name, small_topic(1)), ErrorCode::kInvalidArgument);
    require_error(broker->create_topic_if_absent(name, small_topic(1)),
                  ErrorCode::kInvalidArgument);
    require_error(StringTopic::create(*broker, name, small_topic(1)), ErrorCode::kInvalidArgument);
  }
  CHECK(broker->list_topics().empty());
  if (!in_memory) {
    CHECK(entries(dir.path()) == std::vector<std::string>{"data"});  // nothing beside, e.g. "x"
    CHECK(entries(dir.sub("data")) == std::vector<std::string>{"~lock"});
  }
}

TEST_CASE("topic names of Kafka's alphabet up to 249 characters are valid", "[broker][names]") {
  for (const std::string& name :
       {std::string("a"), std::string("..."), std::string(".hidden"), std::string("A-Z_a.z-0_9"),
        std::string(248, 'x'), std::string(249, 'x'), std::string(249, '.')}) {
    INFO("name: \"" << printable(name) << "\"");
    CHECK(rill::validate_topic_name(name).has_value());
  }
  // In memory, nothing limits a name further.
  auto broker = take(Broker::open_in_memory(light_options()));
  const std::string longest(249, 'n');
  take(broker->create_topic(longest, small_topic(1)));
  CHECK(broker->list_topics() == std::vector<std::string>{longest});
  require_ok(broker->delete_topic(longest));
}

TEST_CASE("a 247 to 249 character topic name works on disk: create, reopen, delete",
          "[broker][names]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  for (const std::size_t length : {247u, 248u, 249u}) {
    CAPTURE(length);
    const std::string name(length, 'n');
    {
      auto broker = open_broker(data);
      auto created = broker->create_topic(name, small_topic(1));
      INFO((created ? std::string() : created.error().to_string()));
      REQUIRE(created.has_value());
      fill(*broker, name, 1);
    }
    auto broker = open_broker(data);
    check_filled(*broker, name, 1);
    require_ok(broker->delete_topic(name));
    CHECK(entries(data) == std::vector<std::string>{"~lock"});
  }
}

TEST_CASE("a topic may be named \".lock\"", "[broker][names]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  {
    auto broker = open_broker(data);
    auto created = broker->create_topic(".lock", small_topic(1));
    INFO((created ? std::string() : created.error().to_string()));
    REQUIRE(created.has_value());
    fill(*broker, ".lock", 2);
  }
  auto broker = open_broker(data);
  check_filled(*broker, ".lock", 2);
}

// --- configs ---------------------------------------------------------------------------------

TEST_CASE("invalid topic configs are refused with kInvalidArgument and nothing is created",
          "[broker][config][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);

  std::vector<std::pair<std::string, TopicConfig>> bad;
  auto add = [&](const char* what, auto change) {
    TopicConfig c = small_topic(2);
    change(c);
    bad.emplace_back(what, c);
  };
  add("partitions 0", [](TopicConfig& c) { c.partitions = 0; });
  add("partitions -1", [](TopicConfig& c) { c.partitions = -1; });
  add("partitions > kMaxPartitions", [](TopicConfig& c) { c.partitions = kMaxPartitions + 1; });
  add("segment_bytes too small", [](TopicConfig& c) {
    c.segment_bytes = 100;  // less than a file header and one frame header
    c.max_record_bytes = 40;
  });
  add("segment_bytes over 4 GiB",
      [](TopicConfig& c) { c.segment_bytes = (std::size_t{1} << 32) + 8; });
  add("max_record_bytes > segment",
      [](TopicConfig& c) { c.max_record_bytes = c.segment_bytes + 1; });
  add("max_record_bytes > segment - header",
      [](TopicConfig& c) { c.max_record_bytes = c.segment_bytes - 63; });
  add("max_record_bytes < a frame header", [](TopicConfig& c) { c.max_record_bytes = 39; });
  add("Durability::every(0)", [](TopicConfig& c) { c.durability = Durability::every(0); });
  add("Durability::interval(0)", [](TopicConfig& c) { c.durability = Durability::interval(0); });
  add("serde name with a newline", [](TopicConfig& c) { c.key_serde = "string\npartitions=9"; });
  add("serde name with '='", [](TopicConfig& c) { c.value_serde = "a=b"; });

  for (const auto& [what, config] : bad) {
    CAPTURE(what);
    require_error(broker->create_topic("t", config), ErrorCode::kInvalidArgument);
    require_error(broker->create_topic_if_absent("t", config), ErrorCode::kInvalidArgument);
  }
  CHECK(broker->list_topics().empty());
  if (!in_memory) CHECK(entries(dir.sub("data")) == std::vector<std::string>{"~lock"});

  // The boundaries themselves are fine.
  TopicConfig edge = small_topic(1);
  edge.max_record_bytes = edge.segment_bytes - 64;
  take(broker->create_topic("edge", edge));
}

TEST_CASE("a damaged topic.conf fails Broker::open with kCorruption naming the file",
          "[broker][config][corruption]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  {
    auto broker = open_broker(data);
    take(broker->create_topic("orders", small_topic(2)));
    take(broker->create_topic("fine", small_topic(1)));
  }
  const std::string conf = data + "/orders/topic.conf";
  const std::string good = read_text(conf);
  REQUIRE(contains(good, "\nsegment_ms="));

  auto replace = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    return text;
  };
  struct Damage {
    const char* what;
    std::string text;
  };
  const Damage damages[] = {
      {"missing key", replace("\nsegment_ms=604800000\n", "\n")},
      {"missing version", replace("version=1\n", "")},
      {"unknown key", good + "colour=blue\n"},
      {"bad number", replace("\npartitions=2\n", "\npartitions=two\n")},
      {"number with trailing junk", replace("\nsegment_bytes=65536\n", "\nsegment_bytes=65536x\n")},
      {"number out of range", replace("\npartitions=2\n", "\npartitions=99999999999\n")},
      {"duplicate key", good + "partitions=2\n"},
      {"partitions=0", replace("\npartitions=2\n", "\npartitions=0\n")},
      {"unknown version", replace("version=1\n", "version=2\n")},
      {"unknown cleanup policy", replace("cleanup_policy=delete", "cleanup_policy=shred")},
      {"unknown durability", replace("durability=os_cache", "durability=sometimes")},
      {"bad durability count", replace("durability=os_cache", "durability=every:x")},
      {"zero durability count", replace("durability=os_cache", "durability=every:0")},
      {"line without '='", good + "garbage\n"},
      {"empty file", ""},
  };
  for (const auto& d : damages) {
    CAPTURE(d.what);
    write_text(conf, d.text);
    auto broker = Broker::open(data, light_options());
    REQUIRE(!broker.has_value());
    INFO(broker.error().to_string());
    CHECK(broker.error().code() == ErrorCode::kCorruption);
    CHECK(contains(broker.error().message(), conf));
  }
  // Repaired, it opens again with every topic.
  write_text(conf, good);
  auto broker = open_broker(data);
  CHECK(broker->list_topics() == std::vector<std::string>{"fine", "orders"});
}

// --- the directory lock ----------------------------------------------------------------------

TEST_CASE("a data directory has one broker at a time, and the refusal names the holder",
          "[broker][lock]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  auto broker = open_broker(data);
  take(broker->create_topic("orders", small_topic(1)));

  SECTION("a second broker in the same process") {
    auto second = Broker::open(data, light_options());
    REQUIRE(!second.has_value());
    INFO(second.error().to_string());
    CHECK(second.error().code() == ErrorCode::kLocked);
    CHECK(contains(second.error().message(), "pid " + std::to_string(::getpid())));
    CHECK(broker->list_topics() == std::vector<std::string>{"orders"});  // holder unharmed
  }
  SECTION("a broker in another process") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      auto second = Broker::open(data, light_options());
      const bool refused =
          !second.has_value() && second.error().code() == ErrorCode::kLocked &&
          second.error().message().find("pid " + std::to_string(::getppid())) != std::string::npos;
      ::_exit(refused ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  SECTION("another broker once the holder has closed") {
    broker.reset();
    auto again = open_broker(data);
    CHECK(again->list_topics() == std::vector<std::string>{"orders"});
    CHECK(contains(read_text(data + "/~lock"), std::to_string(::getpid())));
  }
}

TEST_CASE("in-memory brokers take no lock and share nothing", "[broker][memory]") {
  auto a = take(Broker::open_in_memory(light_options()));
  auto b = take(Broker::open_in_memory(light_options()));
  take(a->create_topic("orders", small_topic(1)));
  CHECK(b->list_topics().empty());
  take(b->create_topic("orders", small_topic(2)));
  CHECK(take(a->describe_topic("orders")).partitions.size() == 1);
  CHECK(a->directory().empty());
}

TEST_CASE("an in-memory partition keeps its first records in one segment, as on disk",
          "[broker][memory]") {
  auto broker = take(Broker::open_in_memory(light_options()));
  take(broker->create_topic("orders", small_topic(1)));
  fill(*broker, "orders", 3);
  const auto d = take(broker->describe_topic("orders"));
  CHECK(d.partitions[0].segments == 1);
  auto state = take(broker->topic_state("orders"));
  CHECK(take(state->partition(0)->read(0, 10)).size() == 3);
}

TEST_CASE("a RecordBatch reused on another partition's log reads that log's own records",
          "[broker][read]") {
  auto broker = take(Broker::open_in_memory(light_options()));
  take(broker->create_topic("orders", small_topic(2)));
  fill(*broker, "orders", 10);
  auto state = take(broker->topic_state("orders"));
  rill::storage::RecordBatch batch;
  require_ok(state->partition(0)->read_into(5, batch, 3));  // ends at offset 8
  require_ok(state->partition(1)->read_into(8, batch, 2));  // continues at 8, other log
  REQUIRE(batch.size() == 2);
  CHECK(*batch[0].value() == "orders-1-8");
  CHECK(*batch[1].value() == "orders-1-9");
}

// --- crash leftovers and recovery ------------------------------------------------------------

TEST_CASE("leftovers of interrupted creates, deletes and partition adds are removed on open",
          "[broker][recovery]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  {
    auto broker = open_broker(data);
    take(broker->create_topic("orders", small_topic(2)));
    fill(*broker, "orders", 3);
  }
  // An interrupted create (a staging directory with a config and partitions) ...
  fs::create_directories(data + "/~creating-7/0");
  write_text(data + "/~creating-7/topic.conf", read_text(data + "/orders/topic.conf"));
  write_text(data + "/~creating-7/0/junk", "x");
  // ... one that re-creates a name that exists ...
  fs::create_directories(data + "/~creating-8/0");
  // ... an interrupted delete ...
  fs::copy(data + "/orders", data + "/~deleted-3", fs::copy_options::recursive);
  // ... and partitions an add_partitions created before it crashed short of writing topic.conf
  // (nothing was appended to them: one holding records is refused, in "a partition directory
  // past topic.conf's count is removed only when it holds nothing").
  fs::create_directories(data + "/orders/2");
  fs::create_directories(data + "/orders/7");
  write_text(data + "/orders/7/00000000000000000000.log", "not even a segment");

  auto broker = open_broker(data);
  CHECK(broker->list_topics() == std::vector<std::string>{"orders"});
  CHECK(entries(data) == std::vector<std::string>{"orders", "~lock"});
  CHECK(entries(data + "/orders") == std::vector<std::string>{"0", "1", "topic.conf"});
  const auto d = take(broker->describe_topic("orders"));
  CHECK(d.config.partitions == 2);
  check_filled(*broker, "orders", 3);
  // The names are free again: the interrupted create can be done over, and the topic grown.
  take(broker->create_topic("new", small_topic(1)));
  const auto grown = take(broker->add_partitions("orders", 3));
  CHECK(grown.partitions[2].end_offset == 0);
}

TEST_CASE("a partition whose tail was damaged is reported by recovery() after open",
          "[broker][recovery]") {
  TempDir dir;
  const std::string data = dir.sub("data");
  std::string segment_path;
  std::uint64_t end_position = 0;
  {
    auto broker = open_broker(data);
    take(broker->create_topic("orders", small_topic(2)));
    fill(*broker, "orders", 4);
    auto state = take(broker->topic_state("orders"));
    const auto segs = state->partition(1)->segments();
    segment_path = segs.back()->log_path();
    end_position = segs.back()->end_position();
  }
  {
    auto broker = open_broker(data);
    CHECK(broker->recovery().empty());  // a clean close leaves nothing to report
  }
  auto bytes = rill_test::read_file(segment_path);
  REQUIRE(bytes.size() > end_position + 16);
  for (std::size_t i = 0; i < 16; ++i) bytes[end_position + i] = '\xAB';  // a torn frame
  rill_test::write_file(segment_path, bytes);

  auto broker = open_broker(data);
  REQUIRE(broker->recovery().size() == 1);
  const auto& r = broker->recovery()[0];
  CHECK(r.topic == "orders");
  CHECK(r.partition == 1);
  CHECK(r.report.dropped_bytes == 16);
  CHECK(r.report.truncated_at == 4);
  CHECK(!r.report.detail.empty());
  check_filled(*broker, "orders", 4);  // every record before the damage is there
}

// --- the clock -------------------------------------------------------------------------------

TEST_CASE("the broker's ManualClock stamps records sent without a timestamp", "[broker][time]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto clock = std::make_shared<ManualClock>(1'700'000'000'000);
  auto broker = open_backend(in_memory, dir, light_options(clock));
  CHECK(broker->clock().now_ms() == 1'700'000'000'000);
  CHECK(broker->clock_ptr() == clock);
  auto topic = take(StringTopic::create(*broker, "events", small_topic(1)));
  StringProducer producer(*broker);

  const auto first = take(producer.send(topic, "k", "a"));
  CHECK(first.timestamp_ms == 1'700'000'000'000);
  clock->advance_ms(1234);
  const auto second = take(producer.send(topic, "k", "b"));
  CHECK(second.timestamp_ms == 1'700'000'001'234);
  const auto explicit_ts = take(producer.send(topic, "k", "c", {}, 42));
  CHECK(explicit_ts.timestamp_ms == 42);

  const std::int64_t want[] = {1'700'000'000'000, 1'700'000'001'234, 42};
  for (std::int64_t offset = 0; offset < 3; ++offset) {
    auto batch = take(topic.read(0, offset, 1));
    REQUIRE(batch.size() == 1);
    CHECK(batch[0].timestamp_ms == want[offset]);
  }
}

TEST_CASE("retention by time follows the broker's ManualClock", "[broker][time][retention]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  const std::int64_t t0 = 1'000'000;
  auto clock = std::make_shared<ManualClock>(t0);
  auto broker = open_backend(in_memory, dir, light_options(clock));
  TopicConfig config = small_topic(1);
  config.segment_ms = 1000;  // a segment per simulated second
  config.retention_ms = 5000;
  const auto policy = GENERATE(CleanupPolicy::kDelete, CleanupPolicy::kCompact);
  CAPTURE(policy == CleanupPolicy::kCompact);
  config.cleanup_policy = policy;
  auto topic = take(StringTopic::create(*broker, "events", config));
  StringProducer producer(*broker);

  for (int second = 0; second < 3; ++second) {  // segments [0, 3) [3, 6) [6, 9)
    for (int i = 0; i < 3; ++i) take(producer.send(topic, "k", std::to_string(second)));
    clock->advance_ms(1000);
  }
  rill::storage::Log& log = *topic.log(0);
  REQUIRE(log.segment_count() >= 3);
  take(log.enforce_retention());
  CHECK(log.start_offset() == 0);  // the oldest record is 3 s old; 5 s are kept

  clock->set_ms(t0 + 5500);  // the first segment's newest record is now 5.5 s old
  take(log.enforce_retention());
  if (policy == CleanupPolicy::kDelete) {
    CHECK(log.start_offset() == 3);
    CHECK(take(broker->describe_topic("events")).partitions[0].start_offset == 3);
    require_error(topic.read(0, 0, 10), ErrorCode::kOutOfRange);
    CHECK(take(topic.read(0, 3, 10))[0].value == "1");
  } else {
    CHECK(log.start_offset() == 0);  // a compacted topic does not delete by age
  }

  clock->set_ms(t0 + 1'000'000);  // everything is old: all but the active segment go
  take(log.enforce_retention());
  CHECK(log.start_offset() == (policy == CleanupPolicy::kDelete ? 6 : 0));
  CHECK(log.end_offset() == 9);
}

TEST_CASE("Broker::flush syncs every partition of every topic", "[broker][durability]") {
  TempDir dir;
  auto broker = open_broker(dir.sub("data"));
  take(broker->create_topic("a", small_topic(2)));
  take(broker->create_topic("b", small_topic(1)));
  fill(*broker, "a", 5);
  fill(*broker, "b", 3);
  for (const char* name : {"a", "b"}) {
    auto state = take(broker->topic_state(name));
    for (std::int32_t p = 0; p < state->partition_count(); ++p) {
      CHECK(state->partition(p)->durable_offset() == 0);
    }
  }
  require_ok(broker->flush());
  for (const char* name : {"a", "b"}) {
    auto state = take(broker->topic_state(name));
    for (std::int32_t p = 0; p < state->partition_count(); ++p) {
      const rill::storage::Log* log = state->partition(p);
      REQUIRE(log != nullptr);
      const std::int64_t end = log->end_offset();
      CHECK(log->durable_offset() == end);
    }
  }
}

TEST_CASE("a partition directory past topic.conf's count is removed only when it holds nothing",
          "[broker][partitions][recovery]") {
  // An add_partitions that crashed before writing topic.conf leaves empty partitions behind,
  // which open removes. A topic.conf restored from an old backup (or edited) says fewer
  // partitions than hold records: open deleted those, records and all. It now refuses.
  TempDir dir;
  {
    auto broker = open_broker(dir.sub("data"));
    take(broker->create_topic("orders", small_topic(3)));
    fill(*broker, "orders", 5);
  }
  const std::string conf = dir.sub("data/orders/topic.conf");
  const std::string three = read_text(conf);
  std::string two = three;
  const auto at = two.find("\npartitions=3\n");
  REQUIRE(at != std::string::npos);
  two.replace(at, 14, "\npartitions=2\n");
  write_text(conf, two);
  require_error(Broker::open(dir.sub("data"), light_options()), ErrorCode::kCorruption);
  CHECK(entries(dir.sub("data/orders")) == std::vector<std::string>{"0", "1", "2", "topic.conf"});
  write_text(conf, three);  // restored: everything is there
  {
    auto broker = open_broker(dir.sub("data"));
    auto d = take(broker->describe_topic("orders"));
    REQUIRE(d.partitions.size() == 3);
    for (const auto& p : d.partitions) CHECK(p.end_offset == 5);
  }
  // An empty partition past the count (a crashed add_partitions): removed on open.
  fs::create_directories(dir.sub("data/orders/3"));
  {
    auto broker = open_broker(dir.sub("data"));
    CHECK(take(broker->describe_topic("orders")).partitions.size() == 3);
  }
  CHECK(entries(dir.sub("data/orders")) == std::vector<std::string>{"0", "1", "2", "topic.conf"});
}

TEST_CASE("a data directory entry that cannot be examined is an error, not an exception",
          "[broker][errors]") {
  // Broker::open listed the data directory with the throwing std::filesystem calls: an entry
  // it could not stat let a filesystem_error out of a function that returns Result (and ended
  // a -fno-exceptions build). Here the entry's path is too long to stat (ENAMETOOLONG): the
  // data directory sits deep enough that <dir>/<topic>/topic.conf passes PATH_MAX.
  TempDir dir;
  std::string deep = dir.sub("d");
  while (deep.size() < 4096 - 150) deep += "/" + std::string(100, 'x');
  fs::create_directories(deep);
  {
    auto broker = open_broker(deep);  // fine while nothing in it is too deep
    CHECK(broker->list_topics().empty());
  }
  // A directory named like a topic, made relative to the data directory (its absolute path
  // is too long to pass to mkdir).
  const int dfd = ::open(deep.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dfd >= 0);
  const std::string topic(200, 't');
  REQUIRE(::mkdirat(dfd, topic.c_str(), 0700) == 0);
  auto opened = Broker::open(deep, light_options());  // no exception
  CHECK(!opened.has_value());
  if (!opened) CHECK(opened.error().code() == ErrorCode::kIoError);
  // Removed the same way it was made: TempDir's recursive removal could not reach it.
  CHECK(::unlinkat(dfd, topic.c_str(), AT_REMOVEDIR) == 0);
  ::close(dfd);
}

TEST_CASE("a topic handle kept past its broker: the directory opens again, appends fail",
          "[broker][lifetime]") {
  // Destroying the broker left the logs that Topic handles kept alive open, with each
  // partition's lock held: opening the directory again in the same process failed with
  // kLocked, and the old handle could still append to files the new broker owned.
  TempDir dir;
  auto broker = open_broker(dir.sub("data"));
  auto kept = take(StringTopic::create(*broker, "orders", small_topic(2)));
  fill(*broker, "orders", 3);
  rill::storage::RecordBatch held;
  require_ok(kept.log(1)->read_into(0, held, 10));
  broker.reset();
  auto again = open_broker(dir.sub("data"));
  require_error(kept.log(0)->append({.key = std::string_view("k"), .value = std::string_view("v")}),
                ErrorCode::kClosed);
  // What the old handle read is still there to read; the new broker has every record, once.
  REQUIRE(held.size() == 3);
  CHECK(*held[2].value() == "orders-1-2");
  check_filled(*again, "orders", 3);
  for (const auto& p : take(again->describe_topic("orders")).partitions) CHECK(p.end_offset == 3);
}

}  // namespace broker_test
