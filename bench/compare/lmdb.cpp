// LMDB: one database, keys = the record number big-endian (so MDB_APPEND's sorted order holds),
// 1,000 puts per write transaction. W1/W2 with MDB_NOSYNC (commits reach the page cache: a
// process crash loses nothing committed, a power loss may); W5 with sync on each commit.
#include <lmdb.h>

#include "compare.hpp"

namespace compare {
namespace {

#define LMDB_CHECK(call)                                                                      \
  do {                                                                                        \
    if (const int rc_ = (call); rc_ != 0) return std::string(#call ": ") + mdb_strerror(rc_); \
  } while (0)

// Appends n records (and reads them back when `read`); "" or what failed.
std::string work(const Options& o, const std::string& dir, Report& report, std::size_t value_bytes,
                 std::uint64_t n, bool durable) {
  MDB_env* env = nullptr;
  LMDB_CHECK(mdb_env_create(&env));
  struct Closer {
    MDB_env* e;
    ~Closer() { mdb_env_close(e); }
  } closer{env};
  LMDB_CHECK(
      mdb_env_set_mapsize(env, static_cast<std::size_t>(n) * (value_bytes + 64) * 2 + (64u << 20)));
  LMDB_CHECK(mdb_env_open(env, dir.c_str(), durable ? 0 : MDB_NOSYNC, 0644));
  MDB_dbi dbi;
  MDB_txn* txn = nullptr;
  LMDB_CHECK(mdb_txn_begin(env, nullptr, 0, &txn));
  LMDB_CHECK(mdb_dbi_open(txn, nullptr, 0, &dbi));
  std::string value = make_value(value_bytes);
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t be = __builtin_bswap64(i);
    stamp(value, i);
    MDB_val k{8, const_cast<std::uint64_t*>(&be)}, v{value.size(), value.data()};
    LMDB_CHECK(mdb_put(txn, dbi, &k, &v, MDB_APPEND));
    if ((i + 1) % 1000 == 0 || i + 1 == n) {
      LMDB_CHECK(mdb_txn_commit(txn));
      txn = nullptr;
      if (i + 1 < n) LMDB_CHECK(mdb_txn_begin(env, nullptr, 0, &txn));
    }
  }
  const double s = seconds_since(t0);
  if (durable) {
    report.rate(kW5, "LMDB MDB_APPEND, sync/1000", rate_of(n, value_bytes, s), "fsync per commit");
    return "";
  }
  report.rate(w1(value_bytes), "LMDB MDB_APPEND, 1000/txn", rate_of(n, value_bytes, s),
              "MDB_NOSYNC");
  LMDB_CHECK(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn));
  MDB_cursor* cur = nullptr;
  LMDB_CHECK(mdb_cursor_open(txn, dbi, &cur));
  MDB_val k, v;
  std::uint64_t got = 0, sum = 0;
  t0 = Clock::now();
  for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, static_cast<MDB_cursor_op>(op)) == 0;
       op = MDB_NEXT) {
    sum += touch(v.mv_data, v.mv_size);
    ++got;
  }
  const double rs = seconds_since(t0);
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  g_sink = sum;
  if (got != n) return "read back " + std::to_string(got);
  report.rate(w2(value_bytes), "LMDB cursor", rate_of(n, value_bytes, rs), "read txn, MDB_NEXT");
  (void)o;
  return "";
}

}  // namespace

void run_lmdb(const Options& o, const std::string& dir, Report& report) {
  int k = 0;
  for (const StorageCase& c : storage_cases(o)) {
    const std::string d = dir + "/" + std::to_string(k++);
    std::filesystem::create_directories(d);
    const std::string err = work(o, d, report, c.value_bytes, c.records, c.durable);
    if (!err.empty()) report.failed(c.workload(), "LMDB", err);
  }
  report.line(
      "durability: LMDB W1/W2 MDB_NOSYNC (process crash: safe; power loss: may lose commits); W5 "
      "fsync per 1,000-record commit");
}

}  // namespace compare
