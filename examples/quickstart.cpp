// rill quickstart: append records to a partition log, close it, reopen it and read them back.
//
//   quickstart <data-dir>
//
// Run it twice on the same directory: the second run finds the first run's records, checks
// them, and continues the offsets where they ended.
#include <cstdio>
#include <string>

#include <rill/rill.hpp>

namespace storage = rill::storage;

int main(int argc, char** argv) {
  const std::string dir = std::string(argc > 1 ? argv[1] : "rill-data") + "/events-0";

  std::int64_t first_new = 0;
  {
    auto log = storage::Log::open(dir);  // creates the directory and first segment if needed
    if (!log) {
      std::fprintf(stderr, "open %s: %s\n", dir.c_str(), log.error().to_string().c_str());
      return 1;
    }
    first_new = (*log)->end_offset();
    std::printf("opened %s: %lld records from earlier runs\n", dir.c_str(),
                static_cast<long long>(first_new));
    for (int i = 0; i < 5; ++i) {
      const std::string key = "user-" + std::to_string(i % 2);
      const std::string value = "event #" + std::to_string(first_new + i);
      const storage::Header headers[] = {{"source", std::string_view("quickstart")}};
      auto at = (*log)->append({.key = key, .value = value, .headers = headers});
      if (!at) {
        std::fprintf(stderr, "append: %s\n", at.error().to_string().c_str());
        return 1;
      }
      std::printf("  appended offset %lld  key=%s value=\"%s\"\n",
                  static_cast<long long>(at->offset), key.c_str(), value.c_str());
    }
    if (auto flushed = (*log)->flush(); !flushed) {  // survive power loss too, not just a crash
      std::fprintf(stderr, "flush: %s\n", flushed.error().to_string().c_str());
      return 1;
    }
  }  // the log closes here, as if the process had exited

  auto log = storage::Log::open(dir);
  if (!log) {
    std::fprintf(stderr, "reopen: %s\n", log.error().to_string().c_str());
    return 1;
  }
  std::printf("reopened: offsets [%lld, %lld), recovery %s\n",
              static_cast<long long>((*log)->start_offset()),
              static_cast<long long>((*log)->end_offset()),
              (*log)->recovery().clean() ? "clean" : (*log)->recovery().detail.c_str());
  std::int64_t offset = (*log)->start_offset();
  while (offset < (*log)->end_offset()) {
    auto batch = (*log)->read(offset, 100);  // zero-copy views into the mapped segment
    if (!batch) {
      std::fprintf(stderr, "read: %s\n", batch.error().to_string().c_str());
      return 1;
    }
    for (const auto& record : *batch) {
      const std::string expected = "event #" + std::to_string(record.offset());
      if (record.value() != std::optional<std::string_view>(expected)) {
        std::fprintf(stderr, "offset %lld holds the wrong value\n",
                     static_cast<long long>(record.offset()));
        return 1;
      }
      if (record.offset() >= first_new) {
        std::printf("  read offset %lld  key=%.*s value=\"%.*s\"\n",
                    static_cast<long long>(record.offset()), static_cast<int>(record.key()->size()),
                    record.key()->data(), static_cast<int>(record.value()->size()),
                    record.value()->data());
      }
    }
    offset = batch->next_offset();
  }
  std::printf("all %lld records intact; run again to append more\n",
              static_cast<long long>(offset));
  return 0;
}
