// rill/testing/catch2.hpp: Catch2 matchers and printers for topic contents.
//
//   using Totals = rill::testing::TestTopic<std::string, std::int64_t>;
//   REQUIRE_THAT(totals, HoldsValues<Totals>({42, 5}));
//   REQUIRE_THAT(totals, HoldsKeyValues<Totals>({{"alice", 42}, {"bob", 5}}));
//   REQUIRE_THAT(totals, HoldsLatestByKey<Totals>({{"alice", 42}}));
//
// Each matcher takes the TestTopic type as its one template argument (one, so that no comma
// splits the REQUIRE_THAT macro's arguments) and the expected contents in its types.
//
// A failed match prints what the topic holds, record by record (partition@offset, key, value,
// timestamp, headers), and the error if the topic could not be read.
//
// rill's headers depend on the standard library only, so this one compiles to nothing unless
// Catch2 (v2's <catch2/catch.hpp> or v3's <catch2/catch_all.hpp>, or any header defining
// CATCH_VERSION_MAJOR and the matcher bases) was included before it. It lives under include/
// rather than in rill's own tests so that applications testing their stream logic get it too.
//
// Thread-safety: a match reads the topic (TestTopic::read_all); use it from the test's thread.
#pragma once

#if defined(CATCH_VERSION_MAJOR)

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "rill/testing/test_topic.hpp"

namespace rill::testing {
namespace catch2_detail {

#if CATCH_VERSION_MAJOR >= 3
using MatcherBase = Catch::Matchers::MatcherGenericBase;
#else
using MatcherBase = Catch::Matchers::Impl::MatcherUntypedBase;
#endif

template <typename T>
std::string show(const T& v) {
  return Catch::Detail::stringify(v);
}

template <typename T>
std::string show(const std::optional<T>& v) {
  return v ? show(*v) : std::string("null");
}

template <typename K, typename V>
std::string show_record(const TestRecord<K, V>& r) {
  std::ostringstream out;
  if (r.partition >= 0) out << r.partition << '@' << r.offset << ' ';
  out << "key=" << show(r.key) << " value=" << show(r.value) << " ts=" << r.timestamp_ms;
  for (const auto& [name, value] : r.headers) out << " [" << name << '=' << show(value) << ']';
  return out.str();
}

// "topic 'orders' holds 2 records: { 0@0 key=... , 0@1 ... }", or the read error.
template <typename K, typename V>
std::string show_topic(const TestTopic<K, V>& topic) {
  auto all = topic.read_all();
  if (!all) return "topic '" + topic.name() + "' (unreadable: " + all.error().to_string() + ")";
  std::string out =
      "topic '" + topic.name() + "' holds " + std::to_string(all->size()) + " record(s): {";
  for (std::size_t i = 0; i < all->size(); ++i) {
    out += (i == 0 ? " " : ", ") + show_record((*all)[i]);
  }
  return out + " }";
}

}  // namespace catch2_detail

// The topic's values, in TestTopic::read_values() order, equal `expected`.
template <typename Topic>
class HoldsValues : public catch2_detail::MatcherBase {
  using K = typename Topic::key_type;
  using V = typename Topic::value_type;

 public:
  explicit HoldsValues(std::vector<V> expected) : expected_(std::move(expected)) {}
  bool match(const TestTopic<K, V>& topic) const {
    auto got = topic.read_values();
    return got && *got == expected_;
  }
  std::string describe() const override { return "holds values " + catch2_detail::show(expected_); }

 private:
  std::vector<V> expected_;
};

// The topic's keyed records, as (key, value) in TestTopic::read_key_values() order, equal
// `expected` (keyless records are not compared).
template <typename Topic>
class HoldsKeyValues : public catch2_detail::MatcherBase {
  using K = typename Topic::key_type;
  using V = typename Topic::value_type;

 public:
  explicit HoldsKeyValues(std::vector<std::pair<K, V>> expected) : expected_(std::move(expected)) {}
  bool match(const TestTopic<K, V>& topic) const {
    auto got = topic.read_key_values();
    return got && *got == expected_;
  }
  std::string describe() const override {
    std::string out = "holds key-values {";
    for (std::size_t i = 0; i < expected_.size(); ++i) {
      out += (i == 0 ? " " : ", ") + catch2_detail::show(expected_[i].first) + " -> " +
             catch2_detail::show(expected_[i].second);
    }
    return out + " }";
  }

 private:
  std::vector<std::pair<K, V>> expected_;
};

// The newest value of each key (TestTopic::read_latest_by_key()) is exactly `expected`: what
// a table built from the topic holds.
template <typename Topic>
class HoldsLatestByKey : public catch2_detail::MatcherBase {
  using K = typename Topic::key_type;
  using V = typename Topic::value_type;

 public:
  explicit HoldsLatestByKey(std::map<K, V> expected) : expected_(std::move(expected)) {}
  bool match(const TestTopic<K, V>& topic) const {
    auto got = topic.read_latest_by_key();
    return got && *got == expected_;
  }
  std::string describe() const override {
    std::string out = "holds latest by key {";
    bool first = true;
    for (const auto& [k, v] : expected_) {
      out += (first ? " " : ", ") + catch2_detail::show(k) + " -> " + catch2_detail::show(v);
      first = false;
    }
    return out + " }";
  }

 private:
  std::map<K, V> expected_;
};

// The topic holds no record.
class IsEmptyTopic : public catch2_detail::MatcherBase {
 public:
  template <typename K, typename V>
  bool match(const TestTopic<K, V>& topic) const {
    return topic.empty();
  }
  std::string describe() const override { return "is empty"; }
};

}  // namespace rill::testing

// Catch2 prints the topic (its records) and test records when an assertion fails.
namespace Catch {
template <typename K, typename V>
struct StringMaker<rill::testing::TestTopic<K, V>> {
  static std::string convert(const rill::testing::TestTopic<K, V>& topic) {
    return rill::testing::catch2_detail::show_topic(topic);
  }
};
template <typename K, typename V>
struct StringMaker<rill::testing::TestRecord<K, V>> {
  static std::string convert(const rill::testing::TestRecord<K, V>& record) {
    return "{" + rill::testing::catch2_detail::show_record(record) + "}";
  }
};
}  // namespace Catch

#endif  // CATCH_VERSION_MAJOR
