// rill/testing/test_broker.hpp: TestBroker, the fixture of a test of stream logic: an
// in-memory broker on a ManualClock, in one line, with nothing running behind the test's back.
//
//   rill::testing::TestBroker env;                                   // clock at 0 ms
//   auto orders = *env.create_topic<std::string, std::int64_t>("orders");
//   rill::Consumer<std::string, std::int64_t> c(env.broker(), {.group_id = "g"});
//   env.advance(std::chrono::seconds(46));  // group timeouts and retention fire, now
//
// It is the real broker (rill::Broker::open_in_memory): topics, producers, consumers, groups
// and retention run exactly the code an application runs, over anonymous memory instead of
// files. Two things differ, both for determinism:
//   - time comes from a ManualClock that moves only in advance() / advance_to();
//   - the broker has no background thread (BrokerOptions::background_thread = false):
//     advance() runs what became due on the test's thread before it returns (group members
//     past their session timeout or max poll interval are removed, retention deletes old
//     segments; see Broker::run_due), and nothing else happens between two calls of the test.
//
// Thread-safety: thread-safe, as Broker; advance() may be called from any thread, but a test
// that moves time from several threads is not deterministic any more.
//
// Cost: an in-memory broker; each partition maps its first segment (TopicConfig::segment_bytes
// of address space, touched as written), so keep segment_bytes small in tests with many
// partitions. TestBroker's create_topic defaults it to 1 MiB.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "rill/broker.hpp"
#include "rill/clock.hpp"
#include "rill/result.hpp"
#include "rill/testing/test_topic.hpp"
#include "rill/topic.hpp"

namespace rill::testing {

class TestBroker {
 public:
  // An in-memory broker whose ManualClock reads `start_ms`. Opening a broker in memory cannot
  // fail (it touches no file); a failure would be a bug and aborts (RILL_ASSERT).
  explicit TestBroker(std::int64_t start_ms = 0) : clock_(std::make_shared<ManualClock>(start_ms)) {
    BrokerOptions options;
    options.clock = clock_;
    options.prefault_bytes = 0;  // anonymous memory: nothing to gain from faulting ahead
    options.background_thread = false;
    auto broker = Broker::open_in_memory(options);
    RILL_ASSERT(broker.has_value(), "an in-memory broker cannot fail to open");
    broker_ = std::move(*broker);
  }
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  Broker& broker() noexcept { return *broker_; }
  Broker* operator->() noexcept { return broker_.get(); }
  ManualClock& clock() noexcept { return *clock_; }
  const std::shared_ptr<ManualClock>& clock_ptr() const noexcept { return clock_; }
  std::int64_t now_ms() const noexcept { return clock_->now_ms(); }

  // Moves the clock forward by `by`, then runs what fell due (Broker::run_due) before
  // returning, and says what that was. In memory nothing of it can fail.
  DueWork advance(std::chrono::milliseconds by) { return advance_to(now_ms() + by.count()); }

  // Sets the clock to `ms` (it may go back: tests of clock skew), then runs what fell due.
  DueWork advance_to(std::int64_t ms) {
    clock_->set_ms(ms);
    return run_due();
  }

  // Runs what is due at the current time without moving the clock.
  DueWork run_due() {
    auto done = broker_->run_due();
    RILL_ASSERT(done.has_value(), "due work on an in-memory broker cannot fail");
    return *done;
  }

  // The topic's config as TestBroker creates it by default: one partition (so reading gives
  // append order) and 1 MiB segments.
  static TopicConfig default_config(std::int32_t partitions = 1) {
    TopicConfig c;
    c.partitions = partitions;
    c.segment_bytes = 1u << 20;
    c.max_record_bytes = 64u << 10;
    return c;
  }

  // Creates a typed topic and returns its driver. Errors: as Topic<K, V>::create.
  template <typename K, typename V>
  Result<TestTopic<K, V>> create_topic(std::string_view name,
                                       const TopicConfig& config = default_config()) {
    auto t = Topic<K, V>::create(*broker_, name, config);
    if (!t) return fail(std::move(t).error());
    return TestTopic<K, V>(std::move(*t));
  }

  // A driver on an existing topic (one the code under test created, say). Errors: as
  // Topic<K, V>::open.
  template <typename K, typename V>
  Result<TestTopic<K, V>> topic(std::string_view name) {
    auto t = Topic<K, V>::open(*broker_, name);
    if (!t) return fail(std::move(t).error());
    return TestTopic<K, V>(std::move(*t));
  }

 private:
  std::shared_ptr<ManualClock> clock_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace rill::testing
