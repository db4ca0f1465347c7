// libFuzzer target: fuzz input -> segment files -> Log::open, read, append, reopen.
// Build and run: see tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>

#include "log_fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return rill_fuzz_log_bytes(data, size);
}
