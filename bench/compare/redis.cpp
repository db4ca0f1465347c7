// Redis Streams over hiredis, against a redis-server the bench starts on a loopback port (in
// its own directory, with no snapshots and no AOF: the data lives in the server's memory and
// dies with it) and stops after. W1 pipelines XADD 1,000 at a time, as a Redis client normally
// batches; W2 pages through XRANGE 1,000 at a time; W3 sends one XADD per record to a consumer
// blocked in XREAD BLOCK; W4 reads with XREADGROUP (NOACK) on one stream: Redis streams have
// no partitions, a group shares one stream's entries.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compare.hpp"

extern char** environ;

namespace compare {
namespace {

struct Server {
  pid_t pid = -1;
  int port = 0;
  explicit Server(const std::string& dir) {
    port = 20000 + static_cast<int>(::getpid() % 20000);
    const std::string p = std::to_string(port);
    std::vector<std::string> args = {"redis-server", "--port",     p,        "--bind",
                                     "127.0.0.1",    "--save",     "",       "--appendonly",
                                     "no",           "--dir",      dir,      "--daemonize",
                                     "no",           "--loglevel", "warning"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t quiet;  // its log lines would interleave with our table
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    if (::posix_spawnp(&pid, "redis-server", &quiet, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&quiet);
  }
  ~Server() {
    if (pid > 0) ::kill(pid, SIGTERM), ::waitpid(pid, nullptr, 0);
  }
  redisContext* connect() const {
    for (int i = 0; i < 100; ++i) {
      redisContext* c = redisConnect("127.0.0.1", port);
      if (c != nullptr && c->err == 0) return c;
      if (c != nullptr) redisFree(c);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
  }
};

struct Reply {
  redisReply* r;
  explicit Reply(void* p) : r(static_cast<redisReply*>(p)) {}
  ~Reply() {
    if (r != nullptr) freeReplyObject(r);
  }
  bool ok() const { return r != nullptr && r->type != REDIS_REPLY_ERROR; }
};

// XADD of n records, pipelined `depth` at a time; false on an error reply.
bool add(redisContext* c, const char* stream, std::size_t value_bytes, std::uint64_t n,
         std::uint64_t depth) {
  std::string value = make_value(value_bytes);
  for (std::uint64_t i = 0; i < n;) {
    const std::uint64_t k = std::min(depth, n - i);
    for (std::uint64_t j = 0; j < k; ++j, ++i) {
      stamp(value, i);
      redisAppendCommand(c, "XADD %s * k %b v %b", stream, &i, kKeyBytes, value.data(),
                         value.size());
    }
    for (std::uint64_t j = 0; j < k; ++j) {
      void* p = nullptr;
      if (redisGetReply(c, &p) != REDIS_OK || !Reply(p).ok()) return false;
    }
  }
  return true;
}

// Calls on_value(value) for each entry of an XRANGE/XREAD entry array; returns the last id.
template <typename Fn>
std::string entries(const redisReply* arr, Fn&& on_value) {
  std::string last;
  for (std::size_t i = 0; i < arr->elements; ++i) {
    const redisReply* e = arr->element[i];
    const redisReply* fields = e->element[1];
    on_value(fields->element[3]);
    last.assign(e->element[0]->str, e->element[0]->len);
  }
  return last;
}

void produce_consume(const Server& s, Report& report, std::size_t value_bytes, std::uint64_t n) {
  redisContext* c = s.connect();
  const std::string stream = "w1-" + std::to_string(value_bytes);
  auto t0 = Clock::now();
  const bool ok = add(c, stream.c_str(), value_bytes, n, 1000);
  const double ws = seconds_since(t0);
  if (!ok) return redisFree(c), report.failed(w1(value_bytes), "Redis", "XADD failed");
  report.rate(w1(value_bytes), "Redis XADD, pipelined 1000", rate_of(n, value_bytes, ws),
              "loopback TCP; in server memory");
  std::uint64_t got = 0, sum = 0;
  std::string start = "-";
  t0 = Clock::now();
  for (;;) {
    Reply r(redisCommand(c, "XRANGE %s %s + COUNT 1000", stream.c_str(), start.c_str()));
    if (!r.ok() || r.r->elements == 0) break;
    start = "(" + entries(r.r, [&](const redisReply* v) {
              sum += touch(v->str, v->len);
              ++got;
            });
  }
  const double rs = seconds_since(t0);
  redisFree(c);
  g_sink = sum;
  if (got != n) return report.failed(w2(value_bytes), "Redis", "read back " + std::to_string(got));
  report.rate(w2(value_bytes), "Redis XRANGE, 1000 per call", rate_of(n, value_bytes, rs), "");
}

void latency(const Options& o, const Server& s, Report& report) {
  std::string why;
  const LatencyRounds rounds = latency_rounds(o, [&](std::uint32_t r) -> Latency {
    const std::string stream = "w3." + std::to_string(r);
    redisContext* tx = s.connect();
    redisContext* rx = s.connect();
    std::uint64_t got = 0;
    const Latency l = paced_latency(
        o, o.value_bytes,
        [&](std::uint64_t i, std::string& value) {
          Reply(redisCommand(tx, "XADD %s * k %b v %b", stream.c_str(), &i, kKeyBytes, value.data(),
                             value.size()));
        },
        [&](std::uint64_t n, const std::function<void(std::uint64_t)>& on_value) {
          std::string last = "0-0";
          while (got < n) {
            Reply rep(redisCommand(rx, "XREAD COUNT 1000 BLOCK 10000 STREAMS %s %s", stream.c_str(),
                                   last.c_str()));
            if (!rep.ok() || rep.r->type != REDIS_REPLY_ARRAY) break;
            last = entries(rep.r->element[0]->element[1], [&](const redisReply* v) {
              on_value(stamp_of(v->str));
              ++got;
            });
          }
        });
    Reply(redisCommand(tx, "DEL %s", stream.c_str()));  // the server keeps no round but this
    redisFree(tx);
    redisFree(rx);
    if (got != o.latency_records) {
      why = "received " + std::to_string(got);
      return {};
    }
    return l;
  });
  if (rounds.median.max_us == 0) return report.failed(kW3, "Redis", why);
  report.latency(kW3, "Redis XADD -> XREAD BLOCK", rounds.median,
                 "one XADD per record" + rounds.note);
}

void groups(const Options& o, const Server& s, Report& report) {
  redisContext* c = s.connect();
  if (!add(c, "w4", o.value_bytes, o.group_records, 1000))
    return redisFree(c), report.failed(w4(1), "Redis", "XADD failed");
  for (int consumers : {1, 2}) {
    const std::string group = "g" + std::to_string(consumers);
    Reply(redisCommand(c, "XGROUP CREATE w4 %s 0", group.c_str()));
    const double rate = run_group(consumers, o.group_records, [&](int id, GroupProgress& progress) {
      redisContext* rc = s.connect();
      const std::string name = "c" + std::to_string(id);
      std::uint64_t sum = 0;
      while (!progress.done()) {
        Reply r(redisCommand(rc, "XREADGROUP GROUP %s %s COUNT 500 BLOCK 100 NOACK STREAMS w4 >",
                             group.c_str(), name.c_str()));
        if (!r.ok()) break;
        if (r.r->type != REDIS_REPLY_ARRAY) continue;
        const redisReply* arr = r.r->element[0]->element[1];
        entries(arr, [&](const redisReply* v) { sum += touch(v->str, v->len); });
        progress.add(arr->elements);
      }
      g_sink = sum;
      redisFree(rc);
    });
    report.rate(
        w4(consumers), "Redis XREADGROUP, one stream",
        rate_of(o.group_records, o.value_bytes, static_cast<double>(o.group_records) / rate),
        "COUNT 500, NOACK");
  }
  redisFree(c);
}

}  // namespace

void run_redis(const Options& o, const std::string& dir, Report& report) {
  if (::system("command -v redis-server >/dev/null 2>&1") != 0) {
    report.line("Redis: no redis-server binary found; rows left out");
    return;
  }
  Server s(dir);
  redisContext* probe = s.pid > 0 ? s.connect() : nullptr;
  if (probe == nullptr)
    return report.failed(w1(o.value_bytes), "Redis", "redis-server did not start");
  redisFree(probe);
  produce_consume(s, report, o.value_bytes, o.records);
  produce_consume(s, report, o.big_value_bytes, o.records_big);
  latency(o, s, report);
  groups(o, s, report);
  report.line(
      "durability: Redis none here (no AOF, no snapshots: the server's memory; W5 would be "
      "appendfsync, not measured)");
}

}  // namespace compare
