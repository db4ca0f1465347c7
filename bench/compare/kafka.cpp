// librdkafka against its built-in mock cluster (one broker inside this process, in memory:
// nothing survives the process). The producer lingers 5 ms and batches, as it normally does;
// W1 is timed until every delivery report has come back. W2 assigns the partition from the
// beginning; W3 sends one record at a time (linger 5 ms) to a consumer blocked in
// rd_kafka_consumer_poll; W4 runs a real consumer group (subscribe), join included.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "compare.hpp"

// librdkafka's rd_kafka_producev() argument macros (RD_KAFKA_V_*) type-check through GNU
// statement expressions, which clang's -Wpedantic reports at every use in this file.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif

namespace compare {
namespace {

std::atomic<std::uint64_t> g_delivered{0};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) g_delivered.fetch_add(1, std::memory_order_relaxed);
}

rd_kafka_conf_t* conf(std::initializer_list<std::pair<const char*, std::string>> kv) {
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  char err[256];
  for (const auto& [k, v] : kv) {
    if (rd_kafka_conf_set(c, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "kafka: %s=%s: %s\n", k, v.c_str(), err);
    }
  }
  return c;
}

struct Cluster {
  rd_kafka_t* producer = nullptr;
  std::string bootstraps;
  Cluster() {
    rd_kafka_conf_t* c = conf({{"test.mock.num.brokers", "1"}, {"linger.ms", "5"}});
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    char err[256];
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    bootstraps = rd_kafka_mock_cluster_bootstraps(rd_kafka_handle_mock_cluster(producer));
  }
  ~Cluster() {
    rd_kafka_flush(producer, 10'000);
    rd_kafka_destroy(producer);
  }
  void create(const char* topic, int partitions) {
    rd_kafka_mock_topic_create(rd_kafka_handle_mock_cluster(producer), topic, partitions, 1);
  }
  void send(const char* topic, std::uint64_t i, const std::string& value) {
    while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(&i, kKeyBytes),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer, 1);
    }
    rd_kafka_poll(producer, 0);
  }
  // fetch_wait_ms: the broker holds a fetch this long at most when it has nothing new
  // (fetch.wait.max.ms; 500 by default).
  rd_kafka_t* consumer(const std::string& group, const char* fetch_wait_ms = "500") const {
    char err[256];
    rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER,
                                 conf({{"bootstrap.servers", bootstraps},
                                       {"group.id", group},
                                       {"auto.offset.reset", "earliest"},
                                       {"fetch.wait.max.ms", fetch_wait_ms}}),
                                 err, sizeof err);
    rd_kafka_poll_set_consumer(c);
    return c;
  }
};

void assign_from_start(rd_kafka_t* c, const char* topic) {
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(c, l);
  rd_kafka_topic_partition_list_destroy(l);
}

void close_consumer(rd_kafka_t* c) {
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
}

// What the mock still holds of a partition: it keeps only about the last 5 MB or 100,000
// messages per partition (its retention), so a read from the beginning finds high - low.
std::uint64_t retained(rd_kafka_t* rk, const char* topic, int partition) {
  std::int64_t low = 0, high = 0;
  if (rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, 10'000) != 0) return 0;
  return static_cast<std::uint64_t>(high - low);
}

void produce_consume(Cluster& k, Report& report, std::size_t value_bytes, std::uint64_t n) {
  const std::string topic = "w1-" + std::to_string(value_bytes);
  k.create(topic.c_str(), 1);
  std::string value = make_value(value_bytes);
  g_delivered = 0;
  auto t0 = Clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    stamp(value, i);
    k.send(topic.c_str(), i, value);
  }
  rd_kafka_flush(k.producer, 60'000);
  const double s = seconds_since(t0);
  if (g_delivered != n)
    return report.failed(w1(value_bytes), "librdkafka",
                         "delivered " + std::to_string(g_delivered.load()));
  report.rate(w1(value_bytes), "librdkafka -> mock cluster", rate_of(n, value_bytes, s),
              "linger 5 ms; until all acked");

  const std::uint64_t kept = retained(k.producer, topic.c_str(), 0);
  rd_kafka_t* c = k.consumer("w2");
  assign_from_start(c, topic.c_str());
  std::uint64_t got = 0, sum = 0, idle = 0;
  while (got < kept && idle < 100) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
    if (m == nullptr) {
      ++idle;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (got == 0) t0 = Clock::now();  // connecting and the first fetch are left out
      sum += touch(m->payload, m->len);
      ++got;
    }
    rd_kafka_message_destroy(m);
  }
  const double rs = seconds_since(t0);
  close_consumer(c);
  g_sink = sum;
  if (got != kept || got == 0)
    return report.failed(w2(value_bytes), "librdkafka",
                         "read back " + std::to_string(got) + " of " + std::to_string(kept));
  report.rate(
      w2(value_bytes), "librdkafka consumer (assign)", rate_of(got, value_bytes, rs),
      "from the first record; the mock kept " + std::to_string(kept) + " of " + std::to_string(n));
}

void latency(const Options& o, Cluster& k, Report& report) {
  std::string why;
  const LatencyRounds rounds = latency_rounds(o, [&](std::uint32_t r) -> Latency {
    const std::string topic = "w3." + std::to_string(r);
    k.create(topic.c_str(), 1);
    rd_kafka_t* c = k.consumer(topic.c_str(), "5");
    assign_from_start(c, topic.c_str());
    std::uint64_t got = 0;
    const Latency l = paced_latency(
        o, o.value_bytes,
        [&](std::uint64_t i, std::string& value) { k.send(topic.c_str(), i, value); },
        [&](std::uint64_t n, const std::function<void(std::uint64_t)>& on_value) {
          for (int idle = 0; got < n && idle < 20;) {
            rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 1000);
            if (m == nullptr) {
              ++idle;
              continue;
            }
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) on_value(stamp_of(m->payload)), ++got;
            rd_kafka_message_destroy(m);
          }
        });
    close_consumer(c);
    rd_kafka_flush(k.producer, 10'000);
    if (got != o.latency_records) {
      why = "received " + std::to_string(got) +
            ": the consumer fell behind by more than the mock retains";
      return {};
    }
    return l;
  });
  if (rounds.median.max_us == 0) return report.failed(kW3, "librdkafka", why);
  report.latency(kW3, "librdkafka mock, linger 5 ms", rounds.median,
                 "blocked in consumer_poll; fetch.wait.max.ms 5" + rounds.note);
}

void groups(const Options& o, Cluster& k, Report& report) {
  k.create("w4", 8);
  std::string value = make_value(o.value_bytes);
  g_delivered = 0;
  for (std::uint64_t i = 0; i < o.group_records; ++i) {
    stamp(value, i);
    k.send("w4", i, value);
  }
  rd_kafka_flush(k.producer, 60'000);
  if (g_delivered != o.group_records) {
    return report.failed(w4(1), "librdkafka", "delivered " + std::to_string(g_delivered.load()));
  }
  std::int64_t start[8] = {};  // each partition's first retained offset
  std::uint64_t kept = 0;
  for (int p = 0; p < 8; ++p) {
    std::int64_t high = 0;
    rd_kafka_query_watermark_offsets(k.producer, "w4", p, &start[p], &high, 10'000);
    kept += static_cast<std::uint64_t>(high - start[p]);
  }
  for (int consumers : {1, 2}) {
    std::atomic<std::int64_t> end[8] = {};
    for (int p = 0; p < 8; ++p) end[p] = start[p];
    const std::string group = "g" + std::to_string(consumers);
    const double rate = run_group(consumers, kept, [&](int, GroupProgress& progress) {
      rd_kafka_t* c = k.consumer(group);
      rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(l, "w4", RD_KAFKA_PARTITION_UA);
      rd_kafka_subscribe(c, l);
      rd_kafka_topic_partition_list_destroy(l);
      std::uint64_t sum = 0;
      const auto t0 = Clock::now();
      while (!progress.done() && seconds_since(t0) < 120) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
        if (m == nullptr) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          sum += touch(m->payload, m->len);
          std::int64_t e = end[m->partition].load(std::memory_order_relaxed);
          while (e < m->offset + 1 && !end[m->partition].compare_exchange_weak(e, m->offset + 1)) {
          }
          std::int64_t total = 0;
          for (int p = 0; p < 8; ++p) total += end[p].load(std::memory_order_relaxed) - start[p];
          progress.set(static_cast<std::uint64_t>(total));
        }
        rd_kafka_message_destroy(m);
      }
      g_sink = sum;
      close_consumer(c);
    });
    std::int64_t total = 0;
    for (int p = 0; p < 8; ++p) total += end[p].load() - start[p];
    if (static_cast<std::uint64_t>(total) != kept) {
      report.failed(w4(consumers), "librdkafka",
                    "read " + std::to_string(total) + " of " + std::to_string(kept));
      continue;
    }
    report.rate(w4(consumers), "librdkafka consumer group",
                rate_of(kept, o.value_bytes, static_cast<double>(kept) / rate),
                "join included; the mock kept " + std::to_string(kept) + " of " +
                    std::to_string(o.group_records));
  }
}

}  // namespace

void run_kafka(const Options& o, const std::string&, Report& report) {
  Cluster k;
  produce_consume(k, report, o.value_bytes, o.records);
  produce_consume(k, report, o.big_value_bytes, o.records_big);
  latency(o, k, report);
  groups(o, k, report);
  report.line(
      "durability: librdkafka mock cluster none (the broker is in memory in this process; acks=all "
      "from it; W5 does not apply)");
}

}  // namespace compare
