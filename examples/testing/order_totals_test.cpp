// Testing stream logic with rill::testing and Catch2: a small processor reads orders (key:
// customer, value: amount in cents) with a consumer group and writes each customer's running
// total to "customer-totals". The tests drive it on an in-memory broker with a manual clock:
// no files, no sleeps, no threads; the whole file runs in milliseconds.
//
// Built and registered with ctest as `example_order_totals_test` when rill's tests are built.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"  // Catch2 v2 or v3 (tests/support/catch.hpp picks the one installed)
#include "rill/rill.hpp"
#include "rill/testing.hpp"
#include "rill/testing/catch2.hpp"

using namespace std::chrono_literals;

// --- the code under test -----------------------------------------------------------------------

// [doc:processor]
// Keeps per-customer totals of the orders it consumes and publishes each new total.
class OrderTotals {
 public:
  explicit OrderTotals(rill::Broker& broker)
      : consumer_(broker, {.group_id = "order-totals",
                           .auto_offset_reset = rill::OffsetReset::kEarliest,
                           .enable_auto_commit = false}),
        producer_(broker) {
    auto totals =
        rill::Topic<std::string, std::int64_t>::create_if_absent(broker, "customer-totals", {});
    RILL_ASSERT(totals.has_value(), "customer-totals");
    totals_topic_.emplace(std::move(*totals));
    (void)consumer_.subscribe({"orders"});
  }

  // One poll's worth of work: returns how many orders it handled.
  rill::Result<int> step() {
    auto orders = consumer_.poll(0ms);
    if (!orders) return rill::fail(orders.error());
    int n = 0;
    for (const auto& order : *orders) {
      if (!order.key || order.value <= 0) continue;  // not an order we can bill
      const std::int64_t total = totals_[*order.key] += order.value;
      auto sent = producer_.send(*totals_topic_, *order.key, total);
      if (!sent) return rill::fail(sent.error());
      ++n;
    }
    RILL_TRY(consumer_.commit());
    return n;
  }

 private:
  rill::Consumer<std::string, std::int64_t> consumer_;
  rill::Producer<std::string, std::int64_t> producer_;
  std::optional<rill::Topic<std::string, std::int64_t>> totals_topic_;
  std::map<std::string, std::int64_t> totals_;
};
// [end:processor]

// --- the tests -----------------------------------------------------------------------------------

// [doc:first_test]
using rill::testing::HoldsKeyValues;
using rill::testing::HoldsLatestByKey;
using rill::testing::TestBroker;
using Orders = rill::testing::TestTopic<std::string, std::int64_t>;

TEST_CASE("each order updates its customer's total") {
  TestBroker env;
  auto orders = *env.create_topic<std::string, std::int64_t>("orders");
  OrderTotals app(env.broker());
  REQUIRE(orders.pipe_key_values({{"alice", 1200}, {"bob", 500}, {"alice", 300}}));

  REQUIRE(*app.step() == 3);

  auto totals = *env.topic<std::string, std::int64_t>("customer-totals");
  REQUIRE_THAT(totals, HoldsKeyValues<Orders>({{"alice", 1200}, {"bob", 500}, {"alice", 1500}}));
  REQUIRE_THAT(totals, HoldsLatestByKey<Orders>({{"alice", 1500}, {"bob", 500}}));
}
// [end:first_test]

TEST_CASE("orders without a customer or with no amount are skipped") {
  TestBroker env;
  auto orders = *env.create_topic<std::string, std::int64_t>("orders");
  OrderTotals app(env.broker());
  REQUIRE(orders.pipe({.key = std::nullopt, .value = 100}));
  REQUIRE(orders.pipe({.key = "carol", .value = 0, .headers = {{"reason", "refund"}}}));
  REQUIRE(orders.pipe("carol", 250));

  REQUIRE(*app.step() == 1);
  auto totals = *env.topic<std::string, std::int64_t>("customer-totals");
  REQUIRE(*totals.read_values() == std::vector<std::int64_t>{250});
}

TEST_CASE("only new totals appear after each step") {
  TestBroker env;
  auto orders = *env.create_topic<std::string, std::int64_t>("orders");
  OrderTotals app(env.broker());
  auto totals = *env.topic<std::string, std::int64_t>("customer-totals");

  REQUIRE(orders.pipe("alice", 100));
  REQUIRE(*app.step() == 1);
  REQUIRE(*totals.read_new_values() == std::vector<std::int64_t>{100});

  env.advance(1h);  // time passes; the next order is stamped an hour later
  REQUIRE(orders.pipe("alice", 50));
  REQUIRE(*app.step() == 1);
  auto fresh = *totals.read_new();
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0].value == 150);
  CHECK(fresh[0].timestamp_ms == env.now_ms());
}

// [doc:restart_test]
TEST_CASE("a restarted processor resumes after its committed orders") {
  TestBroker env;
  auto orders = *env.create_topic<std::string, std::int64_t>("orders");
  REQUIRE(orders.pipe("alice", 100));
  {
    OrderTotals first(env.broker());
    REQUIRE(*first.step() == 1);
  }  // leaves the group
  REQUIRE(orders.pipe("bob", 70));
  OrderTotals second(env.broker());
  REQUIRE(*second.step() == 1);  // only bob's order: alice's was committed
  auto totals = *env.topic<std::string, std::int64_t>("customer-totals");
  REQUIRE_THAT(totals, HoldsKeyValues<Orders>({{"alice", 100}, {"bob", 70}}));
}
// [end:restart_test]
