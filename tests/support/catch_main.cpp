// Catch2 v2's runner, compiled once into rill_catch_main and linked into every test executable.
// (With Catch2 v3 the tests link Catch2::Catch2WithMain instead and this file is not built.)
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
