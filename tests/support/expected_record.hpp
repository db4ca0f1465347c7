// Records whose content a test can recompute from (salt, offset), for tests that check every
// byte of a log after crashes or damage: the shape shared by crash_test and corruption_test
// (each makes its own Expected values from its own mix of sizes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rill/storage/record.hpp"

namespace rill_test {

inline std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

struct Expected {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  std::int64_t timestamp_ms = 0;
};

// A Record viewing `e`; `hdrs` holds its headers.
inline rill::storage::Record as_record(const Expected& e,
                                       std::vector<rill::storage::Header>& hdrs) {
  hdrs.clear();
  for (const auto& [name, value] : e.headers) {
    rill::storage::Header hd{name, std::nullopt};
    if (value) hd.value = *value;
    hdrs.push_back(hd);
  }
  rill::storage::Record r;
  if (e.key) r.key = *e.key;
  if (e.value) r.value = *e.value;
  r.headers = hdrs;
  r.timestamp_ms = e.timestamp_ms;
  return r;
}

inline bool matches(const rill::storage::RecordView& r, const Expected& e) {
  if (r.timestamp_ms() != e.timestamp_ms) return false;
  if (r.key() != e.key || r.value() != e.value) return false;
  std::size_t i = 0;
  for (const rill::storage::Header& hd : r.headers()) {
    if (i >= e.headers.size()) return false;
    if (hd.name != e.headers[i].first || hd.value != e.headers[i].second) return false;
    ++i;
  }
  return i == e.headers.size();
}

}  // namespace rill_test
