// SQLite: a table (rowid = offset, key BLOB, value BLOB) in WAL mode, 1,000 rows per
// transaction, one prepared INSERT. W1/W2 with synchronous=NORMAL (a process crash loses
// nothing committed; a power loss may lose the last commits); W5 with synchronous=FULL (the
// WAL is synced at each commit).
#include <sqlite3.h>

#include "compare.hpp"

namespace compare {
namespace {

std::string work(const std::string& path, Report& report, std::size_t value_bytes, std::uint64_t n,
                 bool durable) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return "open failed";
  struct Closer {
    sqlite3* d;
    ~Closer() { sqlite3_close(d); }
  } closer{db};
  const std::string setup = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
                            (durable ? "FULL" : "NORMAL") + "; CREATE TABLE r(k BLOB, v BLOB);";
  if (sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    return sqlite3_errmsg(db);
  sqlite3_stmt* ins = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO r(k, v) VALUES(?, ?)", -1, &ins, nullptr) != SQLITE_OK)
    return sqlite3_errmsg(db);
  std::string value = make_value(value_bytes);
  char key[kKeyBytes];
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    if (i % 1000 == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    make_key(i, key);
    stamp(value, i);
    sqlite3_bind_blob(ins, 1, key, kKeyBytes, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) return sqlite3_errmsg(db);
    sqlite3_reset(ins);
    if ((i + 1) % 1000 == 0 || i + 1 == n) {
      if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
        return sqlite3_errmsg(db);
    }
  }
  const double s = seconds_since(t0);
  sqlite3_finalize(ins);
  if (durable) {
    report.rate(kW5, "SQLite WAL, synchronous=FULL", rate_of(n, value_bytes, s),
                "WAL synced per 1000-row txn");
    return "";
  }
  report.rate(w1(value_bytes), "SQLite WAL, 1000 rows/txn", rate_of(n, value_bytes, s),
              "synchronous=NORMAL");
  sqlite3_stmt* sel = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT v FROM r ORDER BY rowid", -1, &sel, nullptr) != SQLITE_OK)
    return sqlite3_errmsg(db);
  std::uint64_t got = 0, sum = 0;
  t0 = Clock::now();
  while (sqlite3_step(sel) == SQLITE_ROW) {
    sum +=
        touch(sqlite3_column_blob(sel, 0), static_cast<std::size_t>(sqlite3_column_bytes(sel, 0)));
    ++got;
  }
  const double rs = seconds_since(t0);
  sqlite3_finalize(sel);
  g_sink = sum;
  if (got != n) return "read back " + std::to_string(got);
  report.rate(w2(value_bytes), "SQLite SELECT by rowid", rate_of(n, value_bytes, rs),
              "one statement");
  return "";
}

}  // namespace

void run_sqlite(const Options& o, const std::string& dir, Report& report) {
  int k = 0;
  for (const StorageCase& c : storage_cases(o)) {
    const std::string err =
        work(dir + "/" + std::to_string(k++) + ".db", report, c.value_bytes, c.records, c.durable);
    if (!err.empty()) report.failed(c.workload(), "SQLite", err);
  }
  report.line(
      "durability: SQLite W1/W2 WAL + synchronous=NORMAL (process crash: safe; power loss: may "
      "lose last commits); W5 synchronous=FULL");
}

}  // namespace compare
