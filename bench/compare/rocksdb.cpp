// RocksDB: one Put per record (key = the record number big-endian, so iteration is in append
// order), WAL on. W1/W2 without sync (a process crash loses nothing written; a power loss may
// lose the unsynced WAL); W5 with sync=true on every 1,000th Put (it syncs the WAL, and with
// it the 999 writes before).
#include <rocksdb/db.h>

#include <memory>

#include "compare.hpp"

namespace compare {
namespace {

std::string work(const std::string& path, Report& report, std::size_t value_bytes, std::uint64_t n,
                 bool durable) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (auto st = rocksdb::DB::Open(options, path, &raw); !st.ok()) return st.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value = make_value(value_bytes);
  rocksdb::WriteOptions plain, synced;
  synced.sync = true;
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t be = __builtin_bswap64(i);
    stamp(value, i);
    const bool sync = durable && ((i + 1) % 1000 == 0 || i + 1 == n);
    auto st = db->Put(sync ? synced : plain, rocksdb::Slice(reinterpret_cast<const char*>(&be), 8),
                      value);
    if (!st.ok()) return st.ToString();
  }
  const double s = seconds_since(t0);
  if (durable) {
    report.rate(kW5, "RocksDB Put, sync every 1000th", rate_of(n, value_bytes, s), "WAL fsync");
    return "";
  }
  report.rate(w1(value_bytes), "RocksDB Put (WAL, no sync)", rate_of(n, value_bytes, s),
              "default options");
  std::uint64_t got = 0, sum = 0;
  t0 = Clock::now();
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    sum += touch(it->value().data(), it->value().size());
    ++got;
  }
  const double rs = seconds_since(t0);
  g_sink = sum;
  if (got != n) return "read back " + std::to_string(got);
  report.rate(w2(value_bytes), "RocksDB iterator", rate_of(n, value_bytes, rs), "memtable + L0");
  return "";
}

}  // namespace

void run_rocksdb(const Options& o, const std::string& dir, Report& report) {
  int k = 0;
  for (const StorageCase& c : storage_cases(o)) {
    const std::string err =
        work(dir + "/" + std::to_string(k++), report, c.value_bytes, c.records, c.durable);
    if (!err.empty()) report.failed(c.workload(), "RocksDB", err);
  }
  report.line(
      "durability: RocksDB W1/W2 WAL without sync (process crash: safe; power loss: may lose the "
      "WAL tail); W5 sync on every 1,000th Put");
}

}  // namespace compare
