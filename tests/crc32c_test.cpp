// CRC-32C: both implementations against the standard vectors (RFC 3720, B.4) and each other.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "catch.hpp"
#include "rill/detail/crc32c.hpp"

// Each test file lives in its own namespace: the tests are compiled a few files per
// translation unit (tests/CMakeLists.txt, RILL_TEST_UNITY).
namespace crc32c_test {

namespace {

using rill::detail::crc32c_hardware;
using rill::detail::crc32c_hardware_available;
using rill::detail::crc32c_portable;

struct Vector {
  std::vector<unsigned char> bytes;
  std::uint32_t crc;
};

std::vector<Vector> standard_vectors() {
  std::vector<Vector> v;
  const std::string check = "123456789";
  v.push_back({{check.begin(), check.end()}, 0xE3069283u});
  v.push_back({std::vector<unsigned char>(32, 0x00), 0x8A9136AAu});
  v.push_back({std::vector<unsigned char>(32, 0xFF), 0x62A8AB43u});
  std::vector<unsigned char> up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i);
    down[static_cast<std::size_t>(i)] = static_cast<unsigned char>(31 - i);
  }
  v.push_back({up, 0x46DD794Eu});
  v.push_back({down, 0x113FDB5Cu});
  v.push_back({{}, 0x00000000u});
  return v;
}

}  // namespace

TEST_CASE("portable CRC-32C matches the standard vectors", "[crc32c]") {
  for (const auto& v : standard_vectors()) {
    CAPTURE(v.bytes.size());
    CHECK(crc32c_portable(0, v.bytes.data(), v.bytes.size()) == v.crc);
  }
}

TEST_CASE("hardware CRC-32C matches the standard vectors", "[crc32c]") {
  if (!crc32c_hardware_available()) {
    WARN("this CPU has no CRC-32C instruction; only the portable path is tested");
    return;
  }
  for (const auto& v : standard_vectors()) {
    CAPTURE(v.bytes.size());
    CHECK(crc32c_hardware(0, v.bytes.data(), v.bytes.size()) == v.crc);
  }
}

TEST_CASE("the dispatching crc32c gives the check value", "[crc32c]") {
  CHECK(rill::crc32c("123456789", 9) == 0xE3069283u);
}

// Lengths past 192 and 3072 bytes run the hardware path's three interleaved chains (64- and
// 1024-byte blocks, joined by table shifts), or from 512 bytes its folding tier where the CPU
// has one; every tier this CPU uses and the tails between them are covered.
TEST_CASE("both CRC-32C paths agree on every length and alignment", "[crc32c]") {
  std::mt19937 rng(12345);
  std::vector<unsigned char> buf(8200);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t len = 0; len + start <= buf.size(); len += (len < 200    ? 1
                                                                 : len < 1100 ? 37
                                                                              : 331)) {
      const std::uint32_t p = crc32c_portable(0, buf.data() + start, len);
      CAPTURE(start, len);
      REQUIRE(crc32c_hardware(0, buf.data() + start, len) == p);
      REQUIRE(rill::crc32c(buf.data() + start, len) == p);
    }
  }
}

#if RILL_HAVE_CRC32C_HW
// crc32c_hardware picks its tiers by length and CPU: on a CPU with VPCLMULQDQ the folding tier
// takes every input of 512 bytes or more, so the 1024-byte three-chain tier would go untested
// there. Each tier is run here on its own, from a non-zero register, and finished by the
// single chain.
TEST_CASE("each hardware CRC-32C tier alone agrees with the portable code", "[crc32c]") {
  if (!crc32c_hardware_available()) return;
  using namespace rill::detail;
  std::mt19937 rng(777);
  std::vector<unsigned char> buf(9000);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  const std::uint32_t seed = 0x9E3779B9u;
  for (const std::size_t len : {0,   1,   7,   8,   31,   32,   100,  191,  192,  255,  256,
                                257, 511, 512, 700, 1000, 3071, 3072, 3073, 4000, 6824, 8960}) {
    for (std::size_t start = 0; start < 4; ++start) {
      CAPTURE(len, start);
      const unsigned char* data = buf.data() + start;
      const std::uint32_t want = crc32c_portable(seed, data, len);
      CHECK(~crc32c_hw_raw(~seed, data, len) == want);
      {
        const unsigned char* p = data;
        std::size_t n = len;
        const std::uint32_t c = crc32c_hw_3way<64>(~seed, p, n);
        CHECK(~crc32c_hw_raw(c, p, n) == want);
      }
      {
        const unsigned char* p = data;
        std::size_t n = len;
        std::uint32_t c = crc32c_hw_3way<1024>(~seed, p, n);
        c = crc32c_hw_3way<64>(c, p, n);
        CHECK(~crc32c_hw_raw(c, p, n) == want);
      }
      if (crc32c_fold_available() && len >= 256) {
        const unsigned char* p = data;
        std::size_t n = len;
        const std::uint32_t c = crc32c_hw_fold(~seed, p, n);
        CHECK(n < 256);
        CHECK(~crc32c_hw_raw(c, p, n) == want);
      }
    }
  }
}
#endif

TEST_CASE("extending a CRC-32C equals computing it over the concatenation", "[crc32c]") {
  const std::string a = "hello, ", b = "partition log";
  const std::string ab = a + b;
  const std::uint32_t whole = rill::crc32c(ab.data(), ab.size());
  CHECK(crc32c_portable(crc32c_portable(0, a.data(), a.size()), b.data(), b.size()) == whole);
  CHECK(crc32c_hardware(crc32c_hardware(0, a.data(), a.size()), b.data(), b.size()) == whole);
}

}  // namespace crc32c_test
