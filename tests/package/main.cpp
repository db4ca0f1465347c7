// Shared by the three consumer projects in tests/package: it only has to find <rill/rill.hpp>,
// compile against rill::rill with the consumer's own flags, link and run.
#include <rill/rill.hpp>

#include <cstdio>

int main() {
  // CRC-32C check value of "123456789" (RFC 3720, B.4).
  const auto crc = rill::crc32c("123456789", 9);
  if (crc != 0xE3069283u) {
    std::fprintf(stderr, "rill::crc32c(\"123456789\") = 0x%08X, want 0xE3069283\n",
                 static_cast<unsigned>(crc));
    return 1;
  }
  std::puts("rill consumer ok");
  return 0;
}
