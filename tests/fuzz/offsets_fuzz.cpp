// libFuzzer target: see offsets_fuzz_target.hpp for the input layout and the invariants, and
// tests/fuzz/README.md for how to build and run it.
#include <cstddef>
#include <cstdint>

#include "offsets_fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return rill_fuzz_offsets_bytes(data, size);
}
