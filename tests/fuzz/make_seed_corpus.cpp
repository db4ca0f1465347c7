// Writes the fuzzers' seed corpora, one directory per target: log/ (real segment files, active
// and sealed, with and without their indexes), index/ (a real log's index files), topic_conf/
// (configs the broker writes, and some it refuses), offsets/ (records real commits append).
// Usage: make_seed_corpus <output dir>. tests/fuzz/corpus/ holds its output, committed.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "index_fuzz_target.hpp"
#include "log_fuzz_target.hpp"
#include "offsets_fuzz_target.hpp"
#include "topic_conf_fuzz_target.hpp"

namespace {

bool write_all(const std::string& dir, const std::vector<std::vector<std::uint8_t>>& seeds) {
  ::mkdir(dir.c_str(), 0755);
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    if (!rill_fuzz::write_bytes(dir + "/seed-" + std::to_string(i), seeds[i].data(),
                                seeds[i].size())) {
      return false;
    }
  }
  std::printf("%zu seed inputs in %s\n", seeds.size(), dir.c_str());
  return !seeds.empty();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  ::mkdir(out.c_str(), 0755);
  const std::string scratch = rill_fuzz::make_scratch_dir("seed");
  const auto log_seeds = rill_fuzz::seed_inputs(scratch);
  ::rmdir(scratch.c_str());
  std::vector<std::vector<std::uint8_t>> index_seeds;
  {
    rill_fuzz::IndexHarness index(rill_fuzz::make_scratch_dir("seed-index"));
    index_seeds = index.seeds();
  }
  const bool ok = write_all(out + "/log", log_seeds) && write_all(out + "/index", index_seeds) &&
                  write_all(out + "/topic_conf", rill_fuzz::TopicConfHarness::seeds()) &&
                  write_all(out + "/offsets", rill_fuzz::OffsetsHarness::seeds());
  return ok ? 0 : 1;
}
