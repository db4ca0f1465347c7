// rill/testing.hpp: what a test of stream logic needs, on the real rill code paths.
//
//   rill/testing/test_broker.hpp   TestBroker: an in-memory broker on a ManualClock, with no
//                                  background thread; advance() fires what fell due (group
//                                  timeouts, retention) before it returns
//   rill/testing/test_topic.hpp    TestTopic<K, V>: pipe typed records in (keys, headers,
//                                  timestamps); read everything, or what is new, as typed values
//   rill/testing/catch2.hpp        Catch2 matchers and printers for topic contents; include it
//                                  after Catch2 (it compiles to nothing otherwise), so this
//                                  library keeps depending on the standard library only
//
// Not included by rill/rill.hpp: test code includes it.
//
//   #include <catch2/catch.hpp>
//   #include <rill/testing.hpp>
//   #include <rill/testing/catch2.hpp>
//
//   TEST_CASE("totals per customer") {
//     rill::testing::TestBroker env;
//     auto orders = *env.create_topic<std::string, std::int64_t>("orders");
//     REQUIRE(orders.pipe_key_values({{"alice", 30}, {"bob", 5}, {"alice", 12}}));
//     run_totals(env.broker());                       // the code under test
//     auto totals = *env.topic<std::string, std::int64_t>("totals");
//     using Totals = rill::testing::TestTopic<std::string, std::int64_t>;
//     REQUIRE_THAT(totals, rill::testing::HoldsLatestByKey<Totals>({{"alice", 42}, {"bob", 5}}));
//   }
#pragma once

#include "rill/testing/test_broker.hpp"
#include "rill/testing/test_topic.hpp"
