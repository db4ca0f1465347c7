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
// files. Three things differ, all for determinism:
//   - time comes from a ManualClock that moves only in advance() / advance_to();
//   - the broker has no background thread (BrokerOptions::background_thread = false):
//     advance() runs what became due on the test's thread before it returns (group members
//     past their session timeout or max poll interval are removed, retention deletes old
//     segments; see Broker::run_due), and nothing else happens between two calls of the test;
//   - the TestTopics it hands out route keyless records with a fixed seed
//     (TestBrokerOptions::keyless_seed, ProducerConfig::seed), so they land on the same
//     partitions on every run. A Producer the code under test creates is its own: it routes
//     keyless records at random unless its ProducerConfig sets `seed` (env.keyless_seed(),
//     say), or the topic has one partition.
//
//   rill::testing::TestBroker other({.start_ms = 1'000, .keyless_seed = 42});
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
#include <limits>
#include <memory>
#include <string_view>

#include "rill/broker.hpp"
#include "rill/clock.hpp"
#include "rill/result.hpp"
#include "rill/testing/test_topic.hpp"
#include "rill/topic.hpp"

namespace rill::testing {

// What a TestBroker starts from.
struct TestBrokerOptions {
  // What the ManualClock reads at first.
  std::int64_t start_ms = 0;
  // The seed of the keyless routing of every TestTopic the broker hands out (create_topic,
  // topic): fixed, so runs repeat. Change it to see keyless records spread another way.
  std::uint64_t keyless_seed = kDefaultKeylessSeed;
};

class TestBroker {
 public:
  // An in-memory broker whose ManualClock reads `start_ms`, with the default keyless seed.
  explicit TestBroker(std::int64_t start_ms = 0) : TestBroker(TestBrokerOptions{start_ms}) {}

  // An in-memory broker as `options` say. Opening a broker in memory cannot fail (it touches
  // no file); a failure would be a bug and aborts (RILL_ASSERT).
  explicit TestBroker(const TestBrokerOptions& options)
      : clock_(std::make_shared<ManualClock>(options.start_ms)),
        keyless_seed_(options.keyless_seed) {
    BrokerOptions broker_options;
    broker_options.clock = clock_;
    broker_options.prefault_bytes = 0;  // anonymous memory: nothing to gain from faulting ahead
    broker_options.background_thread = false;
    auto broker = Broker::open_in_memory(broker_options);
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
  // The seed of its TestTopics' keyless routing; hand it to a Producer of the code under test
  // (ProducerConfig::seed) to make that one repeat too.
  std::uint64_t keyless_seed() const noexcept { return keyless_seed_; }

  // Moves the clock forward by `by` (saturating at the clock's largest time, so
  // milliseconds::max() means "past every timeout"; a negative `by` is a bug: advance_to
  // moves time back), then runs what fell due (Broker::run_due) before returning, and says
  // what that was. In memory nothing of it can fail.
  DueWork advance(std::chrono::milliseconds by) {
    RILL_ASSERT(by.count() >= 0, "advance() moves time forward; use advance_to() to go back");
    const std::int64_t now = now_ms();
    const std::int64_t room = std::numeric_limits<std::int64_t>::max() - now;
    return advance_to(by.count() >= room ? std::numeric_limits<std::int64_t>::max()
                                         : now + by.count());
  }

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
    return TestTopic<K, V>(std::move(*t), keyless_seed_);
  }

  // A driver on an existing topic (one the code under test created, say). Errors: as
  // Topic<K, V>::open.
  template <typename K, typename V>
  Result<TestTopic<K, V>> topic(std::string_view name) {
    auto t = Topic<K, V>::open(*broker_, name);
    if (!t) return fail(std::move(t).error());
    return TestTopic<K, V>(std::move(*t), keyless_seed_);
  }

 private:
  std::shared_ptr<ManualClock> clock_;
  std::uint64_t keyless_seed_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace rill::testing
