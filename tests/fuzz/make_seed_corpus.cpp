// Writes the fuzzer's seed corpus: real segment files (active and sealed, with and without
// their indexes) in the target's input layout. Usage: make_seed_corpus <output dir>
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "log_fuzz_target.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  ::mkdir(out.c_str(), 0755);
  std::string scratch = rill_fuzz::scratch_root() + "/rill-seed-XXXXXX";
  if (::mkdtemp(scratch.data()) == nullptr) return 1;
  const auto seeds = rill_fuzz::seed_inputs(scratch);
  ::rmdir(scratch.c_str());
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const std::string path = out + "/seed-" + std::to_string(i);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 1;
    std::fwrite(seeds[i].data(), 1, seeds[i].size(), f);
    std::fclose(f);
  }
  std::printf("%zu seed inputs in %s\n", seeds.size(), out.c_str());
  return seeds.empty() ? 1 : 0;
}
