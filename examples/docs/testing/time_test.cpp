// The code of docs/guide-testing.md beyond examples/testing/order_totals_test.cpp: driving
// time by hand (group timeouts, retention), timestamps and headers in, and the matchers.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catch.hpp"  // Catch2 v2 or v3 (tests/support/catch.hpp picks the one installed)
#include "rill/rill.hpp"
#include "rill/testing.hpp"
#include "rill/testing/catch2.hpp"

using namespace std::chrono_literals;

// [doc:group_timeout]
TEST_CASE("a worker that stops polling loses its partitions to the other") {
  rill::testing::TestBroker env;  // in memory, clock at 0, no background thread
  auto jobs = *env.create_topic<std::string, std::string>("jobs", env.default_config(2));
  const rill::ConsumerConfig config{.group_id = "workers",
                                    .auto_offset_reset = rill::OffsetReset::kEarliest,
                                    .session_timeout_ms = 10'000,
                                    .max_poll_interval_ms = 30'000};
  rill::Consumer<std::string, std::string> a(env.broker(), config);
  rill::Consumer<std::string, std::string> b(env.broker(), config);
  REQUIRE(a.subscribe({"jobs"}));
  REQUIRE(b.subscribe({"jobs"}));
  REQUIRE(a.poll(0ms));
  REQUIRE(b.poll(0ms));
  REQUIRE(a.assignment().size() == 1);

  env.advance(9s);  // b keeps polling; a says nothing
  REQUIRE(b.poll(0ms));
  env.advance(2s);  // a is now 11 s silent: past its session timeout, removed here
  REQUIRE(b.poll(0ms));
  CHECK(b.assignment().size() == 2);
  CHECK(a.commit().error().code() == rill::ErrorCode::kFenced);
}
// [end:group_timeout]

// [doc:retention]
TEST_CASE("retention by time deletes old segments when the clock says so") {
  rill::testing::TestBroker env;
  auto config = env.default_config();
  config.segment_bytes = 4096;      // small segments: a few records each
  config.max_record_bytes = 1024;   // must fit a segment (the default, 1 MiB, does not)
  config.retention_ms = 3'600'000;  // one hour
  auto events = *env.create_topic<std::string, std::string>("events", config);
  for (int i = 0; i < 100; ++i) REQUIRE(events.pipe("k", std::string(200, 'x')));
  env.advance(30min);
  REQUIRE(events.pipe("k", "recent"));

  CHECK(env.advance(31min).segments_deleted > 0);  // the old records are past an hour now
  CHECK(events.size() < 101);
  CHECK(events.read_values()->back() == "recent");  // the active segment always stays
}
// [end:retention]

// [doc:pipe_fields]
TEST_CASE("records keep the timestamps and headers a test gives them") {
  rill::testing::TestBroker env(1'700'000'000'000);  // the clock starts here
  auto orders = *env.create_topic<std::string, std::int64_t>("orders");
  REQUIRE(orders.pipe({.key = "alice", .value = 30, .timestamp_ms = 1'600'000'000'000}));
  REQUIRE(orders.pipe({.key = std::nullopt, .value = 5, .headers = {{"source", "web"}}}));

  auto all = *orders.read_all();
  REQUIRE(all.size() == 2);
  CHECK(all[0].timestamp_ms == 1'600'000'000'000);  // as given
  CHECK(all[1].timestamp_ms == env.now_ms());       // stamped by the broker's clock
  CHECK(!all[1].key);
  CHECK(all[1].headers.size() == 1);
  CHECK(all[1].headers[0].first == "source");
  REQUIRE_THAT(orders, rill::testing::HoldsValues<decltype(orders)>({30, 5}));
}
// [end:pipe_fields]

// [doc:empty]
TEST_CASE("a new topic is empty") {
  rill::testing::TestBroker env;
  auto out = *env.create_topic<std::string, std::string>("out");
  REQUIRE_THAT(out, rill::testing::IsEmptyTopic());
}
// [end:empty]
