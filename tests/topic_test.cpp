// Typed topics: Topic<K,V> round trips through Producer and Topic::read for every built-in
// serde and a user one, zero-copy reads, keys and headers, nullability, serde-identity checks
// on open, untyped topics, decode and read errors. Every typed test runs against an on-disk
// broker and an in-memory one.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catch.hpp"
#include "result_checks.hpp"
#include "rill/broker.hpp"
#include "rill/producer.hpp"
#include "rill/serde.hpp"
#include "rill/topic.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace topic_test {

namespace {

// A user type with its own text encoding "<id>,<qty>" (as in serde.hpp's example).
struct Order {
  std::int64_t id;
  std::int32_t qty;
  bool operator==(const Order&) const = default;
};

// Trivially copyable structs without padding: one named, one not.
struct Point {
  std::int32_t x;
  std::int32_t y;
  std::int64_t z;
  bool operator==(const Point&) const = default;
};
struct Pair8 {
  std::int32_t a;
  std::int32_t b;
};
struct Triple12 {
  std::int32_t a;
  std::int32_t b;
  std::int32_t c;
};

}  // namespace

}  // namespace topic_test

template <>
struct rill::Serde<topic_test::Order> {
  using Order = topic_test::Order;
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

template <>
struct rill::SerdeName<topic_test::Point> {
  static constexpr std::string_view value = "test.Point";
};

namespace topic_test {

using rill::Broker;
using rill::ErrorCode;
using rill::ProducerRecord;
using rill::Topic;
using rill::TopicConfig;
using rill::storage::Header;
using rill_test::TempDir;

namespace {

using rill_test::require_error;
using rill_test::require_ok;
using rill_test::take;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TopicConfig small_topic(std::int32_t partitions = 1) {
  TopicConfig c;
  c.partitions = partitions;
  c.segment_bytes = 1u << 20;
  c.max_record_bytes = 512u << 10;
  return c;
}

// The backend of a typed test: an on-disk broker in `dir`, or an in-memory one.
std::unique_ptr<Broker> open_backend(bool in_memory, const TempDir& dir) {
  rill::BrokerOptions options;
  options.prefault_bytes = 0;
  if (in_memory) return take(Broker::open_in_memory(options));
  return take(Broker::open(dir.sub("data"), options));
}

// Calls f(record) for every record of a partition, in offset order, while the batch holding
// it is alive (zero-copy fields point into it). A read stops at a segment boundary, so this
// reads on until the end.
template <typename K, typename V, typename F>
std::int64_t for_each_record(const Topic<K, V>& topic, std::int32_t partition, F&& f) {
  rill::ConsumerBatch<K, V> batch;
  std::int64_t next = topic.log(partition)->start_offset();
  const std::int64_t end = topic.log(partition)->end_offset();
  std::int64_t seen = 0;
  while (next < end) {
    require_ok(topic.read_into(partition, next, batch, 64));
    REQUIRE(!batch.empty());
    for (const auto& r : batch) {
      CHECK(r.topic == topic.name());
      CHECK(r.partition == partition);
      CHECK(r.offset == next);
      f(r);
      ++next;
      ++seen;
    }
    CHECK(batch.next_offset() == next);
  }
  return seen;
}

// Sends each value with key "k<i>" to partition 0 and returns the values as read back.
template <typename V>
std::vector<V> round_trip(Broker& broker, const std::string& name, const std::vector<V>& values) {
  auto topic = take(Topic<std::string, V>::create(broker, name, small_topic()));
  rill::Producer<std::string, V> producer(broker);
  for (std::size_t i = 0; i < values.size(); ++i) {
    // Appended, not "k" + std::to_string(i): g++ 12 at -O2 warns -Wrestrict on that (a false
    // positive in its std::string code), an error with -Werror.
    std::string key = "k";
    key += std::to_string(i);
    const auto md =
        take(producer.send(topic, {.key = std::move(key), .value = values[i], .partition = 0}));
    CHECK(md.offset == static_cast<std::int64_t>(i));
  }
  std::vector<V> out;
  std::size_t i = 0;
  for_each_record(topic, 0, [&](const rill::ConsumerRecord<std::string, V>& r) {
    CHECK(r.key == std::optional<std::string>("k" + std::to_string(i++)));
    out.push_back(r.value);
  });
  return out;
}

// The raw bytes of the record at `offset` of partition 0, as stored.
std::optional<std::string> raw_value(const rill::storage::Log& log, std::int64_t offset) {
  auto batch = take(log.read(offset, 1));
  REQUIRE(batch.size() == 1);
  const auto v = batch[0].value();
  return v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
}

bool points_into(const rill::storage::Log& log, const void* p) {
  const auto at = reinterpret_cast<std::uintptr_t>(p);
  for (const auto& seg : log.segments()) {
    const auto begin = reinterpret_cast<std::uintptr_t>(seg->data());
    if (at >= begin && at < begin + seg->capacity_bytes()) return true;
  }
  return false;
}

template <typename Bytes>
std::string to_string(const Bytes& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<std::byte> to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return std::vector<std::byte>(p, p + s.size());
}

const std::string kBinary("\0\x01\xff\x80 bin\0", 9);

}  // namespace

// --- round trips -----------------------------------------------------------------------------

TEST_CASE("strings round-trip through a producer and Topic::read", "[topic][serde]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  const std::vector<std::string> values = {"hello", "", kBinary, std::string(100'000, 'x'),
                                           "\xc3\xa9t\xc3\xa9"};
  CHECK(round_trip(*broker, "s", values) == values);
  const auto d = take(broker->describe_topic("s"));
  CHECK(d.config.key_serde == "string");
  CHECK(d.config.value_serde == "string");
}

TEST_CASE("string_view keys and values are read zero-copy from the mapped segment",
          "[topic][serde][zero-copy]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  using SV = Topic<std::string_view, std::string_view>;
  auto topic = take(SV::create(*broker, "sv", small_topic(2)));
  rill::Producer<std::string_view, std::string_view> producer(*broker);
  const std::string keys[] = {"alpha", "beta", "gamma", "delta"};
  for (const auto& k : keys) take(producer.send(topic, k, "value-of-" + k));

  std::size_t seen = 0;
  for (std::int32_t p = 0; p < 2; ++p) {
    for_each_record(topic, p,
                    [&](const rill::ConsumerRecord<std::string_view, std::string_view>& r) {
                      REQUIRE(r.key.has_value());
                      CHECK(r.value == "value-of-" + std::string(*r.key));
                      CHECK(points_into(*topic.log(p), r.key->data()));
                      CHECK(points_into(*topic.log(p), r.value.data()));
                      CHECK(rill::partition_for_key(*r.key, 2) == p);
                      ++seen;
                    });
  }
  CHECK(seen == 4);

  // string and string_view share the serde "string": the same topic opens as either.
  auto as_strings = take(Topic<std::string, std::string>::open(*broker, "sv"));
  std::size_t also = 0;
  for (std::int32_t p = 0; p < 2; ++p) {
    also += static_cast<std::size_t>(for_each_record(
        as_strings, p, [&](const rill::ConsumerRecord<std::string, std::string>& r) {
          CHECK(r.value == "value-of-" + *r.key);
        }));
  }
  CHECK(also == 4);
}

TEST_CASE("byte buffers round-trip: vector<byte>, vector<uint8_t> and span<const byte>",
          "[topic][serde]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  const std::vector<std::string> payloads = {"", kBinary, std::string(5000, '\xee')};

  std::vector<std::vector<std::byte>> bytes;
  for (const auto& p : payloads) bytes.push_back(to_bytes(p));
  CHECK(round_trip(*broker, "bytes", bytes) == bytes);

  std::vector<std::vector<std::uint8_t>> u8;
  for (const auto& p : payloads) u8.emplace_back(p.begin(), p.end());
  CHECK(round_trip(*broker, "u8", u8) == u8);

  // span<const byte>: written from spans over our strings, read back as views of the segment.
  auto topic =
      take(Topic<std::string, std::span<const std::byte>>::create(*broker, "span", small_topic()));
  rill::Producer<std::string, std::span<const std::byte>> producer(*broker);
  for (const auto& p : payloads) {
    const std::span<const std::byte> view(reinterpret_cast<const std::byte*>(p.data()), p.size());
    take(producer.send(topic, "k", view));
  }
  std::size_t i = 0;
  for_each_record(topic, 0,
                  [&](const rill::ConsumerRecord<std::string, std::span<const std::byte>>& r) {
                    CHECK(to_string(r.value) == payloads[i]);
                    if (!r.value.empty()) CHECK(points_into(*topic.log(0), r.value.data()));
                    ++i;
                  });
  CHECK(i == payloads.size());

  // All three are "bytes": each opens a topic written by another.
  CHECK(take(broker->describe_topic("span")).config.value_serde == "bytes");
  auto as_u8 = take(Topic<std::string, std::vector<std::uint8_t>>::open(*broker, "span"));
  auto as_vec = take(Topic<std::string, std::vector<std::byte>>::open(*broker, "u8"));
  auto first = take(as_u8.read(0, 1, 1));
  REQUIRE(first.size() == 1);
  CHECK(to_string(first[0].value) == kBinary);
  (void)as_vec;
}

TEST_CASE("numbers and bool round-trip and are stored big-endian", "[topic][serde]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);

  using I32 = std::numeric_limits<std::int32_t>;
  const std::vector<std::int32_t> i32 = {0, 1, -1, 0x01020304, I32::min(), I32::max()};
  CHECK(round_trip(*broker, "i32", i32) == i32);
  using I64 = std::numeric_limits<std::int64_t>;
  const std::vector<std::int64_t> i64 = {0, -2, 0x0102030405060708, I64::min(), I64::max()};
  CHECK(round_trip(*broker, "i64", i64) == i64);
  const std::vector<std::uint16_t> u16 = {0, 1, 0x0102, 0xFFFF};
  CHECK(round_trip(*broker, "u16", u16) == u16);
  const std::vector<bool> flags = {true, false, true};
  CHECK(round_trip(*broker, "bool", flags) == flags);
  const std::vector<float> f32 = {1.5f, -0.0f, std::numeric_limits<float>::infinity()};
  CHECK(round_trip(*broker, "f32", f32) == f32);

  const std::vector<double> f64 = {0.0,
                                   -0.0,
                                   3.25,
                                   -1e300,
                                   std::numeric_limits<double>::infinity(),
                                   std::numeric_limits<double>::denorm_min(),
                                   std::numeric_limits<double>::quiet_NaN()};
  const auto back = round_trip(*broker, "f64", f64);
  REQUIRE(back.size() == f64.size());
  for (std::size_t i = 0; i + 1 < f64.size(); ++i) {
    CAPTURE(i);
    CHECK(back[i] == f64[i]);
    CHECK(std::signbit(back[i]) == std::signbit(f64[i]));
  }
  CHECK(std::isnan(back.back()));

  // The stored bytes are Kafka's: big-endian.
  auto log_of = [&](const char* name) { return take(broker->topic_state(name))->partition(0); };
  CHECK(raw_value(*log_of("i32"), 3) == std::string("\x01\x02\x03\x04", 4));
  CHECK(raw_value(*log_of("i64"), 2) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  CHECK(raw_value(*log_of("u16"), 2) == std::string("\x01\x02", 2));
  CHECK(raw_value(*log_of("bool"), 0) == std::string("\x01", 1));
  CHECK(raw_value(*log_of("f64"), 2) == std::string("\x40\x0a\x00\x00\x00\x00\x00\x00", 8));
  CHECK(raw_value(*log_of("f64"), 6) == std::string("\x7f\xf8\x00\x00\x00\x00\x00\x00", 8));

  CHECK(take(broker->describe_topic("i32")).config.value_serde == "int32");
  CHECK(take(broker->describe_topic("i64")).config.value_serde == "int64");
  CHECK(take(broker->describe_topic("u16")).config.value_serde == "uint16");
  CHECK(take(broker->describe_topic("f32")).config.value_serde == "float32");
  CHECK(take(broker->describe_topic("f64")).config.value_serde == "float64");
  CHECK(take(broker->describe_topic("bool")).config.value_serde == "bool");
}

TEST_CASE("numbers work as keys and route by their serialized bytes", "[topic][serde]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::int64_t, std::string>::create(*broker, "by-id", small_topic(4)));
  rill::Producer<std::int64_t, std::string> producer(*broker);
  for (std::int64_t id : {0LL, 1LL, -7LL, 1LL << 40}) {
    std::string scratch;
    const auto bytes = take(rill::Serde<std::int64_t>::serialize(id, scratch));
    const auto md = take(producer.send(topic, id, std::to_string(id)));
    CHECK(md.partition == rill::partition_for_key(bytes, 4));
  }
  std::size_t seen = 0;
  for (std::int32_t p = 0; p < 4; ++p) {
    for_each_record(topic, p, [&](const rill::ConsumerRecord<std::int64_t, std::string>& r) {
      REQUIRE(r.key.has_value());
      CHECK(std::to_string(*r.key) == r.value);
      ++seen;
    });
  }
  CHECK(seen == 4);
}

TEST_CASE("a trivially copyable struct round-trips under its SerdeName", "[topic][serde]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  const std::vector<Point> points = {{1, 2, 3}, {-1, 0, std::numeric_limits<std::int64_t>::min()}};
  CHECK(round_trip(*broker, "points", points) == points);
  CHECK(take(broker->describe_topic("points")).config.value_serde == "trivial:test.Point");

  // Without a SerdeName only the size is recorded: another size is refused.
  auto pairs = take(Topic<std::string, Pair8>::create(*broker, "pairs", small_topic()));
  CHECK(take(broker->describe_topic("pairs")).config.value_serde == "trivial:8");
  require_error(Topic<std::string, Triple12>::open(*broker, "pairs"), ErrorCode::kInvalidArgument);
  require_error(Topic<std::string, Point>::open(*broker, "pairs"), ErrorCode::kInvalidArgument);
  (void)pairs;
}

TEST_CASE("a user type round-trips through its own Serde", "[topic][serde]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  const std::vector<Order> orders = {{7, 3}, {-12, 0}, {1LL << 50, 2'000'000'000}};
  CHECK(round_trip(*broker, "orders", orders) == orders);
  CHECK(take(broker->describe_topic("orders")).config.value_serde == "test.Order/text-v1");
  auto log = take(broker->topic_state("orders"))->partition(0);
  CHECK(raw_value(*log, 0) == "7,3");  // the serde's bytes, nothing added

  // User types work as keys too.
  auto by_order = take(Topic<Order, std::int32_t>::create(*broker, "by-order", small_topic(3)));
  rill::Producer<Order, std::int32_t> producer(*broker);
  const auto md = take(producer.send(by_order, Order{7, 3}, 99));
  CHECK(md.partition == rill::partition_for_key("7,3", 3));
  auto batch = take(by_order.read(md.partition, md.offset, 1));
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].key == std::optional<Order>(Order{7, 3}));
  CHECK(batch[0].value == 99);
}

// --- nullability, keys, headers --------------------------------------------------------------

TEST_CASE("a std::nullopt value is a tombstone, distinct from an empty string",
          "[topic][serde][tombstone]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  using Opt = std::optional<std::string>;
  const std::vector<Opt> values = {Opt("x"), std::nullopt, Opt(""), std::nullopt, Opt("y")};
  CHECK(round_trip(*broker, "nullable", values) == values);
  CHECK(take(broker->describe_topic("nullable")).config.value_serde == "string");

  auto log = take(broker->topic_state("nullable"))->partition(0);
  CHECK(raw_value(*log, 1) == std::nullopt);   // a null value in the log
  CHECK(raw_value(*log, 2) == std::string());  // an empty one
  CHECK(!take(log->read(2, 1))[0].is_tombstone());

  // optional<V> and V name the same serde: the topic opens as plain strings, and reading a
  // tombstone into a non-nullable type is a decode error naming the offset.
  auto plain = take(Topic<std::string, std::string>::open(*broker, "nullable"));
  CHECK(take(plain.read(0, 0, 1))[0].value == "x");
  auto tomb = plain.read(0, 1, 1);
  require_error(tomb, ErrorCode::kCorruption);
  CHECK(contains(tomb.error().message(), "offset 1"));
  CHECK(take(plain.read(0, 2, 1))[0].value.empty());

  // Nullable numbers as well.
  using OptI = std::optional<std::int64_t>;
  const std::vector<OptI> numbers = {OptI(0), std::nullopt, OptI(-5)};
  CHECK(round_trip(*broker, "nullable-n", numbers) == numbers);
}

TEST_CASE("a topic written with V opens with std::optional<V> and the other way round",
          "[topic][serde][open]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto plain = take(Topic<std::string, std::int32_t>::create(*broker, "plain", small_topic()));
  rill::Producer<std::string, std::int32_t> p1(*broker);
  take(p1.send(plain, "k", 5));
  auto as_opt =
      take(Topic<std::optional<std::string>, std::optional<std::int32_t>>::open(*broker, "plain"));
  auto batch = take(as_opt.read(0, 0, 1));
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].key == std::optional<std::optional<std::string>>(std::optional<std::string>("k")));
  CHECK(batch[0].value == std::optional<std::int32_t>(5));

  auto opt =
      take(Topic<std::string, std::optional<std::int32_t>>::create(*broker, "opt", small_topic()));
  CHECK(take(broker->describe_topic("opt")).config.value_serde == "int32");
  auto as_plain = take(Topic<std::string, std::int32_t>::open(*broker, "opt"));
  (void)opt;
  (void)as_plain;
  // create_if_absent checks the same way.
  take(Topic<std::string, std::optional<std::int32_t>>::create_if_absent(*broker, "plain",
                                                                         small_topic()));
}

TEST_CASE("keys may be absent or present, and an empty key is present", "[topic][keys]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::string, std::string>::create(*broker, "keys", small_topic()));
  rill::Producer<std::string, std::string> producer(*broker);
  take(producer.send(topic, std::nullopt, "no key"));
  take(producer.send(topic, "", "empty key"));
  take(producer.send(topic, "k", "key"));
  take(producer.send(topic, {.key = std::nullopt, .value = "record without key"}));
  take(producer.send(topic, {.key = kBinary, .value = "binary key"}));

  std::vector<std::optional<std::string>> keys;
  for_each_record(topic, 0, [&](const rill::ConsumerRecord<std::string, std::string>& r) {
    keys.push_back(r.key);
  });
  const std::vector<std::optional<std::string>> want = {std::nullopt, std::string(), "k",
                                                        std::nullopt, kBinary};
  CHECK(keys == want);
  auto raw = take(topic.log(0)->read(0, 1));
  CHECK(!raw[0].has_key());

  // With a nullable key type, std::nullopt as the key is a missing key as well.
  auto nk = take(Topic<std::optional<std::string>, std::string>::create(*broker, "nullable-key",
                                                                        small_topic()));
  rill::Producer<std::optional<std::string>, std::string> p2(*broker);
  take(p2.send(nk, std::optional<std::string>(), "v"));
  take(p2.send(nk, std::optional<std::string>("k"), "v"));
  auto b0 = take(nk.read(0, 0, 1));
  auto b1 = take(nk.read(0, 1, 1));
  CHECK(!b0[0].key.has_value());  // the record has no key
  CHECK(b1[0].key == std::optional<std::optional<std::string>>(std::optional<std::string>("k")));
  CHECK(!take(nk.log(0)->read(0, 1))[0].has_key());
}

TEST_CASE("headers survive the round trip", "[topic][headers]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::string, std::int32_t>::create(*broker, "h", small_topic()));
  rill::Producer<std::string, std::int32_t> producer(*broker);
  const std::string long_value(3000, 'h');
  const Header headers[] = {{"trace", std::string_view("abc")},
                            {"empty", std::string_view("")},
                            {"null", std::nullopt},
                            {"bin", std::string_view(kBinary)},
                            {"trace", std::string_view(long_value)}};  // names may repeat
  take(producer.send(topic, "k", 1, headers));
  take(producer.send(topic, "k", 2));  // none
  const ProducerRecord<std::string, std::int32_t> batch[] = {
      {.key = "k", .value = 3, .headers = std::span<const Header>(headers, 1)}};
  take(producer.send_batch(topic, batch));

  std::vector<std::vector<std::pair<std::string, std::optional<std::string>>>> got;
  for_each_record(topic, 0, [&](const rill::ConsumerRecord<std::string, std::int32_t>& r) {
    std::vector<std::pair<std::string, std::optional<std::string>>> hs;
    for (const Header h : r.headers) {
      hs.emplace_back(std::string(h.name),
                      h.value ? std::optional<std::string>(std::string(*h.value)) : std::nullopt);
    }
    CHECK(r.headers.size() == hs.size());
    got.push_back(hs);
  });
  REQUIRE(got.size() == 3);
  REQUIRE(got[0].size() == 5);
  CHECK(got[0][0] == std::pair<std::string, std::optional<std::string>>("trace", "abc"));
  CHECK(got[0][1] == std::pair<std::string, std::optional<std::string>>("empty", ""));
  CHECK(got[0][2] == std::pair<std::string, std::optional<std::string>>("null", std::nullopt));
  CHECK(got[0][3] == std::pair<std::string, std::optional<std::string>>("bin", kBinary));
  CHECK(got[0][4] == std::pair<std::string, std::optional<std::string>>("trace", long_value));
  CHECK(got[1].empty());
  REQUIRE(got[2].size() == 1);
  CHECK(got[2][0].first == "trace");
}

TEST_CASE("a consumer record carries the metadata the producer returned", "[topic]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::string, std::string>::create(*broker, "meta", small_topic(3)));
  rill::Producer<std::string, std::string> producer(*broker);
  for (int i = 0; i < 30; ++i) {
    const std::string key = "key-" + std::to_string(i % 7);
    const auto md = take(producer.send(topic, key, std::to_string(i), {}, 1000 + i));
    CHECK(md.topic == "meta");
    auto batch = take(topic.read(md.partition, md.offset, 1));
    REQUIRE(batch.size() == 1);
    const auto& r = batch[0];
    CHECK(r.topic == "meta");
    CHECK(r.partition == md.partition);
    CHECK(r.offset == md.offset);
    CHECK(r.timestamp_ms == md.timestamp_ms);
    CHECK(r.timestamp_ms == 1000 + i);
    CHECK(r.key == std::optional<std::string>(key));
    CHECK(r.value == std::to_string(i));
  }
}

// --- opening: serde identities ---------------------------------------------------------------

TEST_CASE("a typed topic refuses to open with another key type or another value type",
          "[topic][open][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::string, std::int64_t>::create(*broker, "typed", small_topic()));
  take(Topic<std::string, std::int64_t>::open(*broker, "typed"));

  SECTION("another key type") {
    auto r = Topic<std::int64_t, std::int64_t>::open(*broker, "typed");
    require_error(r, ErrorCode::kInvalidArgument);
    CHECK(contains(r.error().message(), "string"));  // what the topic holds ...
    CHECK(contains(r.error().message(), "int64"));   // ... and what it was opened as
    require_error(Topic<std::vector<std::byte>, std::int64_t>::open(*broker, "typed"),
                  ErrorCode::kInvalidArgument);
  }
  SECTION("another value type") {
    auto r = Topic<std::string, std::int32_t>::open(*broker, "typed");
    require_error(r, ErrorCode::kInvalidArgument);
    CHECK(contains(r.error().message(), "int64"));
    CHECK(contains(r.error().message(), "int32"));
    require_error(Topic<std::string, std::uint64_t>::open(*broker, "typed"),
                  ErrorCode::kInvalidArgument);
    require_error(Topic<std::string, double>::open(*broker, "typed"), ErrorCode::kInvalidArgument);
    require_error(Topic<std::string, std::string>::open(*broker, "typed"),
                  ErrorCode::kInvalidArgument);
  }
  SECTION("both swapped") {
    require_error(Topic<std::int64_t, std::string>::open(*broker, "typed"),
                  ErrorCode::kInvalidArgument);
  }
  SECTION("create_if_absent with other types") {
    require_error(
        Topic<std::string, std::string>::create_if_absent(*broker, "typed", small_topic()),
        ErrorCode::kInvalidArgument);
    take(Topic<std::string, std::int64_t>::create_if_absent(*broker, "typed", small_topic()));
  }
  SECTION("create of a name that exists, whatever the types") {
    require_error(Topic<std::string, std::int64_t>::create(*broker, "typed", small_topic()),
                  ErrorCode::kAlreadyExists);
    require_error(Topic<std::string, std::string>::create(*broker, "typed", small_topic()),
                  ErrorCode::kAlreadyExists);
  }
  CHECK(take(broker->describe_topic("typed")).config.value_serde == "int64");  // unchanged
  (void)topic;
}

TEST_CASE("Topic::create records its own serde names, whatever the config says", "[topic][open]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  TopicConfig config = small_topic(2);
  config.key_serde = "bogus";
  config.value_serde = "also bogus";
  auto topic = take(Topic<std::string, Order>::create(*broker, "stamped", config));
  const auto d = take(broker->describe_topic("stamped"));
  CHECK(d.config.key_serde == "string");
  CHECK(d.config.value_serde == "test.Order/text-v1");
  CHECK(d.config.partitions == 2);
  CHECK(topic.name() == "stamped");
  CHECK(topic.partitions() == 2);
  CHECK(&topic.broker() == broker.get());
  CHECK(topic.log(0) != nullptr);
  CHECK(topic.log(1) != nullptr);
  CHECK(topic.log(2) == nullptr);
  CHECK(topic.log(-1) == nullptr);
  CHECK(!topic.deleted());
  require_error(Topic<std::string, Order>::open(*broker, "absent"), ErrorCode::kNotFound);
}

TEST_CASE("an untyped topic opens with any key and value types", "[topic][open]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  take(broker->create_topic("raw", small_topic()));
  auto as_strings = take(Topic<std::string, std::string>::open(*broker, "raw"));
  rill::Producer<std::string, std::string> producer(*broker);
  take(producer.send(as_strings, "7,3", "12,5"));

  auto as_orders = take(Topic<Order, Order>::open(*broker, "raw"));
  auto orders = take(as_orders.read(0, 0, 1));
  REQUIRE(orders.size() == 1);
  CHECK(orders[0].key == std::optional<Order>(Order{7, 3}));
  CHECK(orders[0].value == Order{12, 5});

  auto as_bytes =
      take(Topic<std::vector<std::uint8_t>, std::span<const std::byte>>::open(*broker, "raw"));
  auto bytes = take(as_bytes.read(0, 0, 1));
  REQUIRE(bytes.size() == 1);
  CHECK(to_string(*bytes[0].key) == "7,3");
  CHECK(to_string(bytes[0].value) == "12,5");
  take(Topic<std::int32_t, double>::open(*broker, "raw"));  // opens; decoding is another matter
  // Opening does not type the topic.
  CHECK(take(broker->describe_topic("raw")).config.key_serde.empty());
  CHECK(take(broker->describe_topic("raw")).config.value_serde.empty());
}

// --- read errors -----------------------------------------------------------------------------

TEST_CASE("bytes that do not decode as the type are kCorruption naming the offset",
          "[topic][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  take(broker->create_topic("raw", small_topic()));
  auto writer = take(Topic<std::string, std::string>::open(*broker, "raw"));
  rill::Producer<std::string, std::string> producer(*broker);
  take(producer.send(writer, std::string("\0\0\0\x05", 4), std::string("\0\0\0\x06", 4)));
  take(producer.send(writer, std::string("\0\0\0\x05", 4), "abc"));  // value: not an int32
  take(producer.send(writer, "abc", std::string("\0\0\0\x06", 4)));  // key: not an int32

  auto ints = take(Topic<std::int32_t, std::int32_t>::open(*broker, "raw"));
  auto good = take(ints.read(0, 0, 1));
  REQUIRE(good.size() == 1);
  CHECK(good[0].key == std::optional<std::int32_t>(5));
  CHECK(good[0].value == 6);

  auto bad_value = ints.read(0, 1, 1);
  require_error(bad_value, ErrorCode::kCorruption);
  CHECK(contains(bad_value.error().message(), "raw-0 offset 1"));
  CHECK(contains(bad_value.error().message(), "value"));
  auto bad_key = ints.read(0, 2, 1);
  require_error(bad_key, ErrorCode::kCorruption);
  CHECK(contains(bad_key.error().message(), "raw-0 offset 2"));
  CHECK(contains(bad_key.error().message(), "key"));
}

TEST_CASE("reads outside the topic's partitions or offsets are kOutOfRange", "[topic][errors]") {
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto topic = take(Topic<std::string, std::string>::create(*broker, "t", small_topic(2)));
  rill::Producer<std::string, std::string> producer(*broker);
  take(producer.send(topic, {.key = "k", .value = "v", .partition = 1}));

  for (std::int32_t p : {-1, 2, 1000}) {
    CAPTURE(p);
    auto r = topic.read(p, 0, 1);
    require_error(r, ErrorCode::kOutOfRange);
    CHECK(contains(r.error().message(), "partition " + std::to_string(p)));
  }
  require_error(topic.read(1, 2, 1), ErrorCode::kOutOfRange);   // past the end
  require_error(topic.read(1, -1, 1), ErrorCode::kOutOfRange);  // before the start
  auto at_end = take(topic.read(1, 1, 10));                     // at the end: empty
  CHECK(at_end.empty());
  CHECK(at_end.next_offset() == 1);
  CHECK(take(topic.read(0, 0, 10)).empty());
  CHECK(take(topic.read(1, 0, 0)).empty());  // max_records 0

  // read_into reuses a batch and clears what it held.
  rill::ConsumerBatch<std::string, std::string> batch;
  require_ok(topic.read_into(1, 0, batch, 10));
  CHECK(batch.size() == 1);
  CHECK(batch.next_offset() == 1);
  require_ok(topic.read_into(1, 1, batch, 10));
  CHECK(batch.empty());
  CHECK(!topic.read_into(5, 0, batch, 10).has_value());
  CHECK(batch.empty());
}

TEST_CASE("a batch reused across partitions and topics reads each one's own records",
          "[topic][read]") {
  // Topic::read_into once resumed in the segment the batch held from its previous read when
  // the offset happened to continue where that read ended, even for another partition: it
  // returned partition 0's records as partition 1's.
  TempDir dir;
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  auto broker = open_backend(in_memory, dir);
  auto a = take(Topic<std::string, std::string>::create(*broker, "a", small_topic(2)));
  auto b = take(Topic<std::string, std::string>::create(*broker, "b", small_topic(2)));
  rill::Producer<std::string, std::string> producer(*broker);
  for (int i = 0; i < 10; ++i) {
    for (std::int32_t p = 0; p < 2; ++p) {
      const std::string suffix = std::to_string(p) + "-" + std::to_string(i);
      take(producer.send(a, {.value = "a" + suffix, .partition = p}));
      take(producer.send(b, {.value = "b" + suffix, .partition = p}));
    }
  }
  rill::ConsumerBatch<std::string, std::string> batch;
  auto expect = [&](const Topic<std::string, std::string>& t, std::int32_t p, std::int64_t from,
                    std::size_t n) {
    CAPTURE(t.name(), p, from);
    require_ok(t.read_into(p, from, batch, n));
    REQUIRE(!batch.empty());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      CHECK(batch[i].partition == p);
      CHECK(batch[i].offset == from + static_cast<std::int64_t>(i));
      CHECK(batch[i].value == t.name() + std::to_string(p) + "-" + std::to_string(from + i));
    }
    CHECK(batch.next_offset() == from + static_cast<std::int64_t>(batch.size()));
  };
  expect(a, 0, 5, 3);  // ends at 8 ...
  expect(a, 1, 8, 2);  // ... where this one continues, in another partition
  expect(b, 1, 8, 2);  // the same partition number and offset, in another topic
  expect(b, 1, 2, 3);
  expect(b, 1, 5, 3);  // continuing in the same partition still works
  expect(b, 0, 8, 2);
  expect(a, 0, 0, 10);
}

}  // namespace topic_test
