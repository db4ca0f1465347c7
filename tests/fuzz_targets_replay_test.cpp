// Runs every libFuzzer target's checks as an ordinary test, under any compiler: over the seed
// corpora committed in tests/fuzz/corpus/<target>/, over every input a fuzzer ever crashed on
// (tests/fuzz/regressions/<target>/, kept there once fixed), over the seeds the targets make
// themselves, and over deterministic mutations of all of these (RILL_TEST_SEED explores
// others). The log target's own mutation test is tests/fuzz_replay_test.cpp.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fuzz/index_fuzz_target.hpp"
#include "fuzz/log_fuzz_target.hpp"
#include "fuzz/offsets_fuzz_target.hpp"
#include "fuzz/topic_conf_fuzz_target.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace fuzz_targets_replay_test {

#ifndef RILL_SOURCE_DIR
#define RILL_SOURCE_DIR "."
#endif

namespace {

namespace fs = std::filesystem;
using rill_fuzz::Bytes;

// Every file in tests/fuzz/<kind>/<target>/, sorted by name.
std::vector<std::pair<std::string, Bytes>> committed_inputs(const std::string& kind,
                                                            const std::string& target) {
  std::vector<std::pair<std::string, Bytes>> out;
  const fs::path dir = fs::path(RILL_SOURCE_DIR) / "tests" / "fuzz" / kind / target;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().filename().string().front() != '.')
      out.emplace_back(e.path().string(), rill_fuzz::read_bytes(e.path()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Text-aware mutations for the topic.conf target: tokens that matter to the parser.
const char* const kConfTokens[] = {
    "=",           "\n",          "#",           "-1",     "0",         "99999999999999999999",
    " ",           "\r",          "=\n",         "every:", "interval:", "compact",
    "version=1\n", "partitions=", "durability=", "\0"};

// One random change to `b`: a bit flip, a byte, a cut, an extension, an inserted token or a
// range from another input. Says what it did.
std::string mutate(Bytes& b, const std::vector<Bytes>& pool, std::mt19937_64& rng, bool text) {
  const auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  switch (b.empty() ? 3 : rng() % 6) {
    case 0: {
      const std::size_t at = pick(b.size());
      b[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      return "flip a bit of byte " + std::to_string(at);
    }
    case 1: {
      const std::size_t at = pick(b.size());
      b[at] = static_cast<std::uint8_t>(rng());
      return "set byte " + std::to_string(at);
    }
    case 2: {
      const std::size_t n = pick(b.size() + 1);
      b.resize(n);
      return "cut to " + std::to_string(n);
    }
    case 3: {
      const std::size_t at = pick(b.size() + 1);
      if (text) {
        const std::string t = kConfTokens[pick(std::size(kConfTokens))];
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), t.begin(), t.end());
        return "insert token at " + std::to_string(at);
      }
      const std::size_t n = 1 + pick(64);
      for (std::size_t i = 0; i < n; ++i)
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng()));
      return "insert " + std::to_string(n) + " bytes at " + std::to_string(at);
    }
    case 4: {
      const std::size_t from = pick(b.size());
      const std::size_t n = 1 + pick(std::min<std::size_t>(b.size() - from, 64));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(from),
              b.begin() + static_cast<std::ptrdiff_t>(from + n));
      return "delete " + std::to_string(n) + " bytes at " + std::to_string(from);
    }
    default: {
      const Bytes& other = pool[pick(pool.size())];
      if (other.empty()) return "nothing";
      const std::size_t from = pick(other.size());
      const std::size_t n = 1 + pick(std::min<std::size_t>(other.size() - from, 128));
      const std::size_t at = pick(b.size() + 1);
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at),
               other.begin() + static_cast<std::ptrdiff_t>(from),
               other.begin() + static_cast<std::ptrdiff_t>(from + n));
      return "splice " + std::to_string(n) + " bytes at " + std::to_string(at);
    }
  }
}

using Run = std::function<std::string(const Bytes&)>;

// The corpus, the regressions and the generated seeds must all pass, then `mutations`
// mutations of them.
void replay(const std::string& target, const std::vector<Bytes>& generated, const Run& run,
            int mutations, bool text) {
  std::vector<Bytes> pool = generated;
  std::size_t committed = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    for (const auto& [path, bytes] : committed_inputs(kind, target)) {
      INFO(path);
      CHECK(run(bytes) == "");
      pool.push_back(bytes);
      ++committed;
    }
  }
  if (std::string(RILL_SOURCE_DIR) != ".") CHECK(committed > 0);  // the corpus is in the repo
  for (std::size_t i = 0; i < generated.size(); ++i) {
    CAPTURE(i);
    CHECK(run(generated[i]) == "");
  }
  CHECK(run({}) == "");
  const std::uint64_t seed = std::getenv("RILL_TEST_SEED") ? rill_test::test_seed() : 20261126;
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const int n = rill_test::sanitizer_build() ? mutations / 4 : mutations;
  for (int i = 0; i < n; ++i) {
    const std::size_t from = static_cast<std::size_t>(rng() % pool.size());
    Bytes input = pool[from];
    std::string how;
    const int changes = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < changes; ++m) how += (m ? "; " : "") + mutate(input, pool, rng, text);
    INFO(target << " input " << i << ": pool input " << from << ", " << how);
    REQUIRE(run(input) == "");
  }
}

[[maybe_unused]] const bool kInTmpfs = [] {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK | X_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", 0);
  }
  return true;
}();

}  // namespace

TEST_CASE("the index fuzz target holds on its corpus and on mutated index files", "[fuzz][index]") {
  rill_test::TempDir tmp;
  rill_fuzz::IndexHarness h(tmp.sub("run"));
  const auto seeds = h.seeds();
  REQUIRE(seeds.size() >= 10);
  replay(
      "index", seeds, [&](const Bytes& b) { return h.run(b.data(), b.size()); }, 1500, false);
}

TEST_CASE("the topic.conf fuzz target holds on its corpus and on mutated configs",
          "[fuzz][broker]") {
  rill_test::TempDir tmp;
  rill_fuzz::TopicConfHarness h(tmp.sub("run"));
  replay(
      "topic_conf", rill_fuzz::TopicConfHarness::seeds(),
      [&](const Bytes& b) { return h.run(b.data(), b.size()); }, 3000, true);
}

TEST_CASE("the offset-commit fuzz target holds on its corpus and on mutated records",
          "[fuzz][group]") {
  rill_fuzz::OffsetsHarness h;
  replay(
      "offsets", rill_fuzz::OffsetsHarness::seeds(),
      [&](const Bytes& b) { return h.run(b.data(), b.size()); }, 3000, false);
}

TEST_CASE("the log fuzz target holds on its committed corpus and regressions", "[fuzz][log]") {
  rill_test::TempDir tmp;
  rill_fuzz::Harness h(tmp.sub("run"));
  replay(
      "log", {}, [&](const Bytes& b) { return h.run(b.data(), b.size()); }, 0, false);
}

}  // namespace fuzz_targets_replay_test
