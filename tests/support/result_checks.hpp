// Catch2 checks for rill::Result, shared by the tests of the typed layers.
#pragma once

#include <string>
#include <utility>

#include "catch.hpp"
#include "rill/result.hpp"

namespace rill_test {

// The value of a Result that must have succeeded; the error's text when it did not.
template <typename T>
T take(rill::Result<T> r) {
  INFO((r ? std::string() : r.error().to_string()));
  REQUIRE(r.has_value());
  return std::move(*r);
}

inline void require_ok(const rill::Result<void>& r) {
  INFO((r ? std::string() : r.error().to_string()));
  REQUIRE(r.has_value());
}

// A Result that must have failed, with `code`.
template <typename T>
void require_error(const rill::Result<T>& r, rill::ErrorCode code) {
  REQUIRE(!r.has_value());
  INFO(r.error().to_string());
  CHECK(r.error().code() == code);
}

}  // namespace rill_test
