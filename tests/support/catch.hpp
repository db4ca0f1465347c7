// Test sources include "catch.hpp" and get Catch2 whichever major version is installed:
// Catch2 v3 when the build defines RILL_CATCH2_V3 (tests/CMakeLists.txt does), else v2.
//
// Keep tests to the API common to both: TEST_CASE, SECTION, REQUIRE*, CHECK*, INFO, CAPTURE,
// GENERATE, Approx, REQUIRE_THAT with Catch::Matchers::Equals / StartsWith / EndsWith.
// (Not common: v2's string Matchers::Contains is v3's Matchers::ContainsSubstring.)
#pragma once

#if defined(RILL_CATCH2_V3)
#include <catch2/catch_all.hpp>
#define RILL_CATCH2_VERSION_MAJOR 3
// v2 puts Approx in the global namespace; keep test sources portable.
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#define RILL_CATCH2_VERSION_MAJOR 2
#endif
