// Partitioning: Kafka's murmur2 against the published vectors, partition_for_key, how evenly
// keys spread (chi-square), sticky and round-robin keyless partitioning, and many threads.
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "rill/partitioner.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace partitioner_test {

namespace {

using rill::DefaultPartitioner;
using rill::KeylessStrategy;
using rill::murmur2;
using rill::partition_for_key;
using rill::to_positive;

struct Vector {
  std::string_view key;
  std::int32_t hash;
};

// Pearson's chi-square statistic of `counts` against a uniform spread of their sum.
double chi_square(const std::vector<std::int64_t>& counts) {
  double total = 0;
  for (auto c : counts) total += static_cast<double>(c);
  const double expected = total / static_cast<double>(counts.size());
  double stat = 0;
  for (auto c : counts) {
    const double d = static_cast<double>(c) - expected;
    stat += d * d / expected;
  }
  return stat;
}

// The chi-square quantile for `df` degrees of freedom at the standard normal quantile z, by
// the Wilson-Hilferty approximation: df * (1 - 2/(9 df) + z * sqrt(2/(9 df)))^3.
double wilson_hilferty(int df, double z) {
  const double k = df;
  const double t = 1.0 - 2.0 / (9.0 * k) + z * std::sqrt(2.0 / (9.0 * k));
  return k * t * t * t;
}

// Upper 0.1% point of the standard normal: P(Z > z) = 0.001.
constexpr double kZ999 = 3.090232306167813;

// Spreads keys "key-0" .. "key-<n-1>" over `partitions` with `f` and returns the counts.
std::vector<std::int64_t> spread(int keys, std::int32_t partitions,
                                 const std::function<std::int32_t(std::string_view)>& f) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(partitions), 0);
  int out_of_range = 0;
  for (int i = 0; i < keys; ++i) {
    const std::string key = "key-" + std::to_string(i);
    const std::int32_t p = f(key);
    if (p < 0 || p >= partitions) {
      ++out_of_range;
    } else {
      ++counts[static_cast<std::size_t>(p)];
    }
  }
  REQUIRE(out_of_range == 0);
  return counts;
}

bool passes_uniformity(const std::vector<std::int64_t>& counts, double* stat, double* critical) {
  *stat = chi_square(counts);
  *critical = wilson_hilferty(static_cast<int>(counts.size()) - 1, kZ999);
  return *stat < *critical;
}

// Runs of consecutive equal partitions: (partition, length) pairs.
std::vector<std::pair<std::int32_t, int>> runs(const std::vector<std::int32_t>& ps) {
  std::vector<std::pair<std::int32_t, int>> out;
  for (std::int32_t p : ps) {
    if (out.empty() || out.back().first != p) {
      out.emplace_back(p, 1);
    } else {
      ++out.back().second;
    }
  }
  return out;
}

std::vector<std::int32_t> keyless(DefaultPartitioner& dp, std::string_view topic, int records,
                                  std::size_t record_bytes, std::int32_t partitions) {
  std::vector<std::int32_t> out;
  for (int i = 0; i < records; ++i) {
    out.push_back(dp.partition(topic, std::nullopt, record_bytes, partitions));
  }
  return out;
}

}  // namespace

// --- murmur2 ----------------------------------------------------------------------------------

TEST_CASE("murmur2 matches Kafka's UtilsTest vectors", "[partitioner][murmur2]") {
  // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
  // testMurmur2: Utils.murmur2 of each key's bytes.
  const Vector kafka[] = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& v : kafka) {
    CAPTURE(v.key);
    CHECK(murmur2(v.key.data(), v.key.size()) == v.hash);
    CHECK(murmur2(v.key) == v.hash);
  }
}

TEST_CASE("murmur2 matches librdkafka's unit-test vectors at every alignment",
          "[partitioner][murmur2]") {
  // confluentinc/librdkafka src/rdmurmur2.c, unittest_murmur2 ("java_murmur2_results": the
  // Java client's values). The suffixes of "1234" and of the long key start at offsets 1-3 of
  // the literal, so they exercise unaligned reads.
  const Vector rdkafka[] = {
      {"kafka", static_cast<std::int32_t>(0xd067cf64u)},
      {"giberish123456789", static_cast<std::int32_t>(0x8f552b0cu)},
      {"1234", static_cast<std::int32_t>(0x9fc97b14u)},
      {"234", static_cast<std::int32_t>(0xe7c009cau)},
      {"34", static_cast<std::int32_t>(0x873930dau)},
      {"4", static_cast<std::int32_t>(0x5a4b5ca1u)},
      {"PreAmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0x78424f1cu)},
      {"reAmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0x4a62b377u)},
      {"eAmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0xe0e4e09eu)},
      {"AmbleWillBeRemoved,ThePrePartThatIs", static_cast<std::int32_t>(0x62b8b43fu)},
      {"", static_cast<std::int32_t>(0x106e08d9u)},
  };
  for (const auto& v : rdkafka) {
    CAPTURE(v.key);
    CHECK(murmur2(v.key) == v.hash);
    // The same bytes at every offset of a buffer hash the same.
    for (std::size_t shift = 0; shift < 8; ++shift) {
      std::array<char, 64> buf{};
      std::memcpy(buf.data() + shift, v.key.data(), v.key.size());
      CHECK(murmur2(buf.data() + shift, v.key.size()) == v.hash);
    }
  }
  // librdkafka's NULL key with length 0: the empty hash.
  CHECK(murmur2(nullptr, 0) == static_cast<std::int32_t>(0x106e08d9u));
}

TEST_CASE("murmur2 matches librdkafka's earlier positive vectors", "[partitioner][murmur2]") {
  // confluentinc/librdkafka src/rdmurmur2.c, earlier unittest_murmurhashneutral2: the Java
  // results with the sign bit cleared.
  CHECK(to_positive(murmur2("kafka")) == 1348980580);
  CHECK(to_positive(murmur2("amqp")) == 767747138);
  CHECK(to_positive(murmur2("giberish123456789")) == 257239820);
}

TEST_CASE("to_positive clears the sign bit rather than negating", "[partitioner]") {
  CHECK(to_positive(0) == 0);
  CHECK(to_positive(5) == 5);
  CHECK(to_positive(-1) == std::numeric_limits<std::int32_t>::max());
  CHECK(to_positive(std::numeric_limits<std::int32_t>::min()) == 0);
  CHECK(to_positive(-973932308) == 1173551340);
}

TEST_CASE("partition_for_key matches librdkafka's murmur2 partitioner test", "[partitioner]") {
  // confluentinc/librdkafka tests/0048-partitioner.c, partitioner "murmur2": expected
  // partitions are (positive hash) % partition count, the hashes taken from the Java client
  // (tests/java/Murmur2Cli); the test runs with 17 partitions, or 7 in quick mode.
  struct Expect {
    std::string_view key;
    std::uint32_t positive_hash;
  };
  const Expect cases[] = {
      {"", 0x106e08d9u},
      {"23456", 0x058d780fu},
      {"this is another string with more length to it perhaps", 0x4f7703dau},
      {"hejsan", 0x5ec19395u},
  };
  for (std::int32_t n : {17, 7}) {
    for (const auto& c : cases) {
      CAPTURE(n, c.key);
      CHECK(partition_for_key(c.key, n) == static_cast<std::int32_t>(c.positive_hash % n));
    }
  }
  // The same, spelled out for 17 partitions.
  CHECK(partition_for_key("", 17) == 11);
  CHECK(partition_for_key("23456", 17) == 9);
  CHECK(partition_for_key("this is another string with more length to it perhaps", 17) == 11);
  CHECK(partition_for_key("hejsan", 17) == 5);
}

TEST_CASE("partition_for_key is to_positive(murmur2) modulo the partition count", "[partitioner]") {
  // -973932308 is murmur2("21") (Kafka's UtilsTest); 1173551340 its positive form.
  CHECK(partition_for_key("21", 1) == 0);
  CHECK(partition_for_key("21", 8) == 1173551340 % 8);
  CHECK(partition_for_key("21", 100) == 1173551340 % 100);
  CHECK(partition_for_key("21", std::numeric_limits<std::int32_t>::max()) == 1173551340);
  CHECK(partition_for_key("foobar", 3) == to_positive(-790332482) % 3);
}

TEST_CASE("keys spread evenly over 8 and over 100 partitions", "[partitioner][stats]") {
  // Chi-square goodness of fit of 100,000 keys "key-<i>" against a uniform spread, at
  // p = 0.001. Critical values by Wilson-Hilferty: 24.53 for 7 degrees of freedom (exact:
  // 24.32) and 148.29 for 99 (exact: 148.23).
  CHECK(std::abs(wilson_hilferty(7, kZ999) - 24.53) < 0.01);
  CHECK(std::abs(wilson_hilferty(99, kZ999) - 148.29) < 0.01);

  for (std::int32_t n : {8, 100}) {
    const auto counts =
        spread(100000, n, [n](std::string_view k) { return partition_for_key(k, n); });
    double stat = 0, critical = 0;
    const bool uniform = passes_uniformity(counts, &stat, &critical);
    CAPTURE(n, stat, critical);
    CHECK(uniform);
  }
}

TEST_CASE("the uniformity check rejects a bad partitioner", "[partitioner][stats]") {
  // The same check on key length % n (keys are 5 to 9 bytes long) and on the first byte
  // (always 'k') must fail, or the test above proves nothing.
  for (std::int32_t n : {8, 100}) {
    double stat = 0, critical = 0;
    const auto by_length = spread(100000, n, [n](std::string_view k) {
      return static_cast<std::int32_t>(k.size() % static_cast<std::size_t>(n));
    });
    CAPTURE(n);
    CHECK_FALSE(passes_uniformity(by_length, &stat, &critical));
    const auto by_first_byte = spread(100000, n, [n](std::string_view k) {
      return static_cast<std::int32_t>(static_cast<unsigned char>(k[0]) % n);
    });
    CHECK_FALSE(passes_uniformity(by_first_byte, &stat, &critical));
  }
}

// --- DefaultPartitioner: keyed ---------------------------------------------------------------

TEST_CASE("a keyed record goes to partition_for_key whatever the strategy", "[partitioner]") {
  for (auto strategy : {KeylessStrategy::kSticky, KeylessStrategy::kRoundRobin}) {
    DefaultPartitioner dp(strategy, 100, 1);
    for (int i = 0; i < 200; ++i) {
      const std::string key = "user-" + std::to_string(i);
      CAPTURE(key);
      CHECK(dp.partition("t", key, 1000, 12) == partition_for_key(key, 12));
    }
  }
}

TEST_CASE("an empty key is a key, not a keyless record", "[partitioner]") {
  // Round-robin would give 0, 1, 2, ...; the empty key always hashes to one partition.
  DefaultPartitioner dp(KeylessStrategy::kRoundRobin);
  const std::int32_t expected = static_cast<std::int32_t>(0x106e08d9u % 17u);
  for (int i = 0; i < 5; ++i) {
    CHECK(dp.partition("t", std::string_view(""), 10, 17) == expected);
  }
}

// --- DefaultPartitioner: sticky --------------------------------------------------------------

TEST_CASE("sticky partitioning stays on one partition until the batch bytes are reached",
          "[partitioner][sticky]") {
  // 100-byte records and a 1000-byte batch: exactly 10 records per partition, the 10th
  // (which reaches 1000) still on the old one.
  DefaultPartitioner dp(KeylessStrategy::kSticky, 1000, 42);
  const auto ps = keyless(dp, "t", 2000, 100, 8);
  const auto r = runs(ps);
  REQUIRE(r.size() == 200);
  for (const auto& [p, len] : r) {
    CAPTURE(p);
    CHECK(len == 10);
  }
}

TEST_CASE("sticky partitioning moves to a different partition and covers them all",
          "[partitioner][sticky]") {
  for (std::int32_t n : {2, 3, 8}) {
    DefaultPartitioner dp(KeylessStrategy::kSticky, 500, 7);
    const auto ps = keyless(dp, "t", 5000, 100, n);
    std::set<std::int32_t> seen;
    std::vector<std::int64_t> counts(static_cast<std::size_t>(n), 0);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      REQUIRE(ps[i] >= 0);
      REQUIRE(ps[i] < n);
      seen.insert(ps[i]);
      ++counts[static_cast<std::size_t>(ps[i])];
      // Every 5th record closes a batch; the next record is on another partition.
      if (i % 5 == 0 && i > 0) {
        CAPTURE(n, i);
        CHECK(ps[i] != ps[i - 1]);
      }
    }
    CAPTURE(n);
    CHECK(static_cast<std::int32_t>(seen.size()) == n);
    // 1000 batches: no partition is starved (each gets at least half its share).
    for (auto c : counts) CHECK(c > static_cast<std::int64_t>(5000 / n / 2));
  }
}

TEST_CASE("sticky partitioning counts bytes, not records", "[partitioner][sticky]") {
  DefaultPartitioner dp(KeylessStrategy::kSticky, 1000, 3);
  const std::int32_t first = dp.partition("t", std::nullopt, 999, 8);
  CHECK(dp.partition("t", std::nullopt, 1, 8) == first);  // reaches 1000: still `first`
  CHECK(dp.partition("t", std::nullopt, 1, 8) != first);  // then moves

  SECTION("a record at least a batch long switches after itself") {
    DefaultPartitioner big(KeylessStrategy::kSticky, 1000, 3);
    const auto ps = keyless(big, "t", 50, 5000, 4);
    for (std::size_t i = 1; i < ps.size(); ++i) CHECK(ps[i] != ps[i - 1]);
  }
  SECTION("a zero batch size switches after every record") {
    DefaultPartitioner zero(KeylessStrategy::kSticky, 0, 3);
    const auto ps = keyless(zero, "t", 50, 0, 4);
    for (std::size_t i = 1; i < ps.size(); ++i) CHECK(ps[i] != ps[i - 1]);
  }
}

TEST_CASE("sticky partitioning with one partition always returns 0", "[partitioner][sticky]") {
  DefaultPartitioner dp(KeylessStrategy::kSticky, 100, 5);
  for (auto p : keyless(dp, "t", 100, 60, 1)) CHECK(p == 0);
}

TEST_CASE("sticky state is per topic and keyed records do not touch it", "[partitioner][sticky]") {
  DefaultPartitioner dp(KeylessStrategy::kSticky, 1000, 11);
  const std::int32_t a = dp.partition("a", std::nullopt, 600, 8);
  // Another topic's bytes and keyed records of the same topic do not count toward a's batch.
  for (int i = 0; i < 10; ++i) dp.partition("b", std::nullopt, 600, 8);
  for (int i = 0; i < 10; ++i) dp.partition("a", std::string_view("k"), 600, 8);
  CHECK(dp.partition("a", std::nullopt, 300, 8) == a);  // 900 so far
  CHECK(dp.partition("a", std::nullopt, 100, 8) == a);  // 1000: last on a
  CHECK(dp.partition("a", std::nullopt, 100, 8) != a);
}

TEST_CASE("sticky partitioning is reproducible with a seed and random across seeds",
          "[partitioner][sticky]") {
  DefaultPartitioner x(KeylessStrategy::kSticky, 100, 1234);
  DefaultPartitioner y(KeylessStrategy::kSticky, 100, 1234);
  CHECK(keyless(x, "t", 500, 100, 8) == keyless(y, "t", 500, 100, 8));

  DefaultPartitioner z(KeylessStrategy::kSticky, 100, 4321);
  DefaultPartitioner w(KeylessStrategy::kSticky, 100, 1234);
  CHECK(keyless(z, "t", 500, 100, 8) != keyless(w, "t", 500, 100, 8));

  // The first partition is random too: over 64 seeds it is not always the same one.
  std::set<std::int32_t> firsts;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    DefaultPartitioner s(KeylessStrategy::kSticky, 100, seed);
    firsts.insert(s.partition("t", std::nullopt, 1, 8));
  }
  CHECK(firsts.size() == 8);
}

TEST_CASE("sticky partitioning never returns a partition past a shrunken count",
          "[partitioner][sticky]") {
  int were_out_of_range = 0;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    DefaultPartitioner dp(KeylessStrategy::kSticky, 1 << 20, seed);
    const std::int32_t before = dp.partition("t", std::nullopt, 10, 100);
    if (before >= 4) ++were_out_of_range;
    for (int i = 0; i < 5; ++i) {
      const std::int32_t after = dp.partition("t", std::nullopt, 10, 4);
      CAPTURE(seed, before, after);
      CHECK(after >= 0);
      CHECK(after < 4);
      if (before < 4) CHECK(after == before);  // still valid: stays sticky
    }
  }
  CHECK(were_out_of_range > 0);  // the case under test did happen
}

TEST_CASE("sticky partitioning keeps its partition when the topic grows", "[partitioner][sticky]") {
  DefaultPartitioner dp(KeylessStrategy::kSticky, 1000, 9);
  const std::int32_t p = dp.partition("t", std::nullopt, 100, 4);
  CHECK(dp.partition("t", std::nullopt, 100, 16) == p);
}

// --- DefaultPartitioner: round-robin ---------------------------------------------------------

TEST_CASE("round-robin cycles through the partitions exactly, per topic",
          "[partitioner][round-robin]") {
  DefaultPartitioner dp(KeylessStrategy::kRoundRobin);
  for (int i = 0; i < 25; ++i) {
    CHECK(dp.partition("a", std::nullopt, 1 << 20, 5) == i % 5);
    if (i % 2 == 0) CHECK(dp.partition("b", std::nullopt, 1, 3) == (i / 2) % 3);
  }
  CHECK(dp.strategy() == KeylessStrategy::kRoundRobin);
}

TEST_CASE("round-robin keeps cycling in range when the partition count changes",
          "[partitioner][round-robin]") {
  DefaultPartitioner dp(KeylessStrategy::kRoundRobin);
  for (int i = 0; i < 6; ++i) dp.partition("t", std::nullopt, 1, 8);  // next is 6
  CHECK(dp.partition("t", std::nullopt, 1, 4) == 0);                  // 6 is gone: wrap
  CHECK(dp.partition("t", std::nullopt, 1, 4) == 1);
  CHECK(dp.partition("t", std::nullopt, 1, 10) == 2);  // grew: continue
  for (int p = 3; p < 10; ++p) CHECK(dp.partition("t", std::nullopt, 1, 10) == p);
  CHECK(dp.partition("t", std::nullopt, 1, 10) == 0);
}

TEST_CASE("a default-constructed partitioner is sticky with Kafka's batch size", "[partitioner]") {
  DefaultPartitioner dp;
  CHECK(dp.strategy() == KeylessStrategy::kSticky);
  CHECK(dp.sticky_batch_bytes() == 16384);
  CHECK(DefaultPartitioner::kDefaultStickyBatchBytes == 16384);
  const auto ps = keyless(dp, "t", 40, 1024, 8);  // 16 records of 1 KiB per partition
  const auto r = runs(ps);
  REQUIRE(r.size() >= 2);
  CHECK(r[0].second == 16);
  CHECK(r[1].second == 16);
}

// --- user partitioners -----------------------------------------------------------------------

TEST_CASE("a user partitioner is any callable with the documented signature", "[partitioner]") {
  rill::Partitioner by_region = [](std::string_view, std::optional<std::string_view> key,
                                   std::int32_t n) -> std::int32_t {
    if (key && key->starts_with("eu-")) return 0;
    return key ? rill::partition_for_key(*key, n) : n - 1;
  };
  CHECK(by_region("t", std::string_view("eu-1"), 8) == 0);
  CHECK(by_region("t", std::string_view("us-1"), 8) == partition_for_key("us-1", 8));
  CHECK(by_region("t", std::nullopt, 8) == 7);
}

// --- threads ---------------------------------------------------------------------------------

TEST_CASE("concurrency: many threads get only in-range partitions", "[partitioner][concurrency]") {
  const int per_thread = rill_test::sanitizer_build() ? 20000 : 200000;
  constexpr int kThreads = 4;
  for (auto strategy : {KeylessStrategy::kSticky, KeylessStrategy::kRoundRobin}) {
    DefaultPartitioner dp(strategy, 512);
    std::atomic<int> bad{0};
    std::atomic<long> calls{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string_view topics[] = {"a", "b", "c"};
        for (int i = 0; i < per_thread; ++i) {
          // Partition counts change under the other threads' feet (a topic growing).
          const std::int32_t n = 1 + (i / 1000 + t) % 16;
          const std::string key = "k" + std::to_string(i);
          const std::optional<std::string_view> k =
              i % 3 == 0 ? std::optional<std::string_view>(key) : std::nullopt;
          const std::int32_t p = dp.partition(topics[(i + t) % 3], k, 100, n);
          if (p < 0 || p >= n) bad.fetch_add(1, std::memory_order_relaxed);
          calls.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(bad.load() == 0);
    CHECK(calls.load() == static_cast<long>(kThreads) * per_thread);
  }
}

}  // namespace partitioner_test
