// Runs the fuzz target (tests/fuzz/log_fuzz_target.hpp) over deterministic mutations of real
// segment files, so that every test run exercises what the libFuzzer binary does: bit flips,
// byte and field overwrites, truncations, extensions, splices, duplicated and deleted ranges.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "fuzz/log_fuzz_target.hpp"
#include "test_util.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace fuzz_replay_test {

namespace {

using Bytes = std::vector<std::uint8_t>;

// Applies one random mutation to `b`, drawing from `seeds` for splices; says what it did.
std::string mutate(Bytes& b, const std::vector<Bytes>& seeds, std::mt19937_64& rng) {
  const auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  // Field-sized values that matter to the format: sizes, the null marker, magic numbers.
  static constexpr std::uint32_t kInteresting[] = {
      0,      1,       7,          8,          39,         40,         41,
      48,     64,      0x7F,       0x80,       0xFF,       4096,       4097,
      0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x4C4C4952};
  switch (b.empty() ? 5 : rng() % 9) {
    case 0: {
      const std::size_t at = pick(b.size());
      const int bit = static_cast<int>(rng() % 8);
      b[at] ^= static_cast<std::uint8_t>(1u << bit);
      return "flip bit " + std::to_string(bit) + " of byte " + std::to_string(at);
    }
    case 1: {
      const std::size_t at = pick(b.size());
      b[at] = static_cast<std::uint8_t>(rng());
      return "set byte " + std::to_string(at);
    }
    case 2: {  // a u32 field at a frame-aligned spot (size, crc, key_size, value_size, ...)
      const std::size_t at = pick(b.size() / 4) * 4;
      if (at + 4 > b.size()) return "nothing";
      const std::uint32_t v = kInteresting[pick(std::size(kInteresting))];
      std::memcpy(b.data() + at, &v, 4);
      return "u32 " + std::to_string(v) + " at " + std::to_string(at);
    }
    case 3: {
      const std::size_t n = pick(b.size() + 1);
      b.resize(n);
      return "truncate to " + std::to_string(n);
    }
    case 4: {
      const std::size_t n = 1 + pick(300);
      const bool zeros = rng() % 2 == 0;
      for (std::size_t i = 0; i < n; ++i) b.push_back(zeros ? 0 : static_cast<std::uint8_t>(rng()));
      return std::string("extend with ") + (zeros ? "zeros" : "garbage") + " by " +
             std::to_string(n);
    }
    case 5: {  // splice: a range of another seed over a range of this one
      const Bytes& other = seeds[pick(seeds.size())];
      if (other.empty()) return "nothing";
      const std::size_t from = pick(other.size());
      const std::size_t n = 1 + pick(std::min<std::size_t>(other.size() - from, 512));
      const std::size_t at = pick(b.size() + 1);
      if (b.size() < at + n) b.resize(at + n);
      std::copy(other.begin() + static_cast<std::ptrdiff_t>(from),
                other.begin() + static_cast<std::ptrdiff_t>(from + n),
                b.begin() + static_cast<std::ptrdiff_t>(at));
      return "splice " + std::to_string(n) + " bytes at " + std::to_string(at);
    }
    case 6: {  // duplicate a range (a frame seen twice, offsets out of step)
      const std::size_t from = pick(b.size());
      const std::size_t n = 1 + pick(std::min<std::size_t>(b.size() - from, 256));
      const Bytes chunk(b.begin() + static_cast<std::ptrdiff_t>(from),
                        b.begin() + static_cast<std::ptrdiff_t>(from + n));
      const std::size_t at = pick(b.size() + 1);
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), chunk.begin(), chunk.end());
      return "duplicate " + std::to_string(n) + " bytes to " + std::to_string(at);
    }
    case 7: {
      const std::size_t from = pick(b.size());
      const std::size_t n = 1 + pick(std::min<std::size_t>(b.size() - from, 256));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(from),
              b.begin() + static_cast<std::ptrdiff_t>(from + n));
      return "delete " + std::to_string(n) + " bytes at " + std::to_string(from);
    }
    default: {  // zero a range (a torn page, a hole)
      const std::size_t from = pick(b.size());
      const std::size_t n = 1 + pick(std::min<std::size_t>(b.size() - from, 4096));
      std::fill(b.begin() + static_cast<std::ptrdiff_t>(from),
                b.begin() + static_cast<std::ptrdiff_t>(from + n), 0);
      return "zero " + std::to_string(n) + " bytes at " + std::to_string(from);
    }
  }
}

// Thousands of opens, each unclean one fsyncing the directory: in tmpfs when $TMPDIR leaves
// the choice open (the target needs no disk).
void prefer_tmpfs() {
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK | X_OK) == 0) {
    ::setenv("TMPDIR", "/dev/shm", 0);
  }
}
[[maybe_unused]] const bool kInTmpfs = (prefer_tmpfs(), true);

}  // namespace

TEST_CASE("the fuzz target holds on real segment files", "[log][recovery][fuzz]") {
  rill_test::TempDir tmp;
  const std::vector<Bytes> seeds = rill_fuzz::seed_inputs(tmp.sub("seed"));
  REQUIRE(seeds.size() >= 10);
  rill_fuzz::Harness harness(tmp.sub("run"));
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    CAPTURE(i);
    REQUIRE(harness.run(seeds[i].data(), seeds[i].size()) == "");
  }
  const Bytes empty;
  CHECK(harness.run(empty.data(), 0) == "");
}

TEST_CASE("the fuzz target holds on thousands of mutated segment files", "[log][recovery][fuzz]") {
  // Deterministic by default, so a failure replays; RILL_TEST_SEED explores other inputs.
  const std::uint64_t seed = std::getenv("RILL_TEST_SEED") ? rill_test::test_seed() : 20240601;
  INFO("seed " << seed);
  rill_test::TempDir tmp;
  const std::vector<Bytes> seeds = rill_fuzz::seed_inputs(tmp.sub("seed"));
  REQUIRE(!seeds.empty());
  rill_fuzz::Harness harness(tmp.sub("run"));
  std::mt19937_64 rng(seed);
  const int inputs = rill_test::sanitizer_build() ? 1000 : 4000;
  for (int i = 0; i < inputs; ++i) {
    const std::size_t from = static_cast<std::size_t>(rng() % seeds.size());
    Bytes input = seeds[from];
    std::string how;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < n; ++m) how += (m ? "; " : "") + mutate(input, seeds, rng);
    INFO("input " << i << ": seed input " << from << ", " << how);
    const std::string problem = harness.run(input.data(), input.size());
    REQUIRE(problem == "");
  }
}

}  // namespace fuzz_replay_test
