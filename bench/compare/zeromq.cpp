// ZeroMQ inproc sockets: no persistence at all (records live in the sockets' queues until
// received; nothing survives the process). W1: PUSH one message (key + value) per record to a
// PULL socket drained by a second thread, timed until it has all n. No W2 (nothing is kept to
// read from the start) and no groups. W3: PUSH/PULL and PUB/SUB, the receiver blocked in recv.
#include <zmq.h>

#include "compare.hpp"

namespace compare {
namespace {

struct Pair {
  void* ctx = zmq_ctx_new();
  void* tx = nullptr;
  void* rx = nullptr;
  Pair(int tx_type, int rx_type, const char* endpoint) {
    tx = zmq_socket(ctx, tx_type);
    rx = zmq_socket(ctx, rx_type);
    int hwm = 100'000;
    zmq_setsockopt(tx, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(rx, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_bind(rx, endpoint);
    zmq_connect(tx, endpoint);
    if (rx_type == ZMQ_SUB) zmq_setsockopt(rx, ZMQ_SUBSCRIBE, "", 0);
    if (tx_type == ZMQ_PUB) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // join
  }
  ~Pair() {
    int zero = 0;
    zmq_setsockopt(tx, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(tx);
    zmq_close(rx);
    zmq_ctx_term(ctx);
  }
};

void send_record(void* socket, std::uint64_t i, const std::string& value, std::string& buf) {
  std::memcpy(buf.data(), &i, kKeyBytes);
  std::memcpy(buf.data() + kKeyBytes, value.data(), value.size());
  zmq_send(socket, buf.data(), buf.size(), 0);
}

void produce(Report& report, std::size_t value_bytes, std::uint64_t n) {
  // PUB/SUB drops what exceeds its queue; only PUSH/PULL (blocking at the HWM) can keep n.
  Pair p(ZMQ_PUSH, ZMQ_PULL, "inproc://w1");
  std::uint64_t got = 0;
  const auto t0 = Clock::now();
  std::thread receiver([&] {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    std::uint64_t sum = 0;
    for (; got < n && zmq_msg_recv(&msg, p.rx, 0) >= 0; ++got) {
      sum +=
          touch(static_cast<char*>(zmq_msg_data(&msg)) + kKeyBytes, zmq_msg_size(&msg) - kKeyBytes);
    }
    zmq_msg_close(&msg);
    g_sink = sum;
  });
  std::string value = make_value(value_bytes), buf(kKeyBytes + value_bytes, '\0');
  for (std::uint64_t i = 0; i < n; ++i) {
    stamp(value, i);
    send_record(p.tx, i, value, buf);
  }
  receiver.join();
  const double s = seconds_since(t0);
  if (got != n) return report.failed(w1(value_bytes), "ZeroMQ", "received " + std::to_string(got));
  report.rate(w1(value_bytes), "ZeroMQ inproc PUSH/PULL", rate_of(n, value_bytes, s),
              "until received (2 threads); not stored");
}

void latency(const Options& o, Report& report, int tx_type, int rx_type, const char* name) {
  std::string why;
  const LatencyRounds rounds = latency_rounds(o, [&](std::uint32_t r) -> Latency {
    const std::string endpoint =
        (tx_type == ZMQ_PUB ? "inproc://w3pub." : "inproc://w3push.") + std::to_string(r);
    Pair p(tx_type, rx_type, endpoint.c_str());
    std::string buf(kKeyBytes + o.value_bytes, '\0');
    std::uint64_t got = 0;
    const Latency l = paced_latency(
        o, o.value_bytes,
        [&](std::uint64_t i, std::string& value) { send_record(p.tx, i, value, buf); },
        [&](std::uint64_t n, const std::function<void(std::uint64_t)>& on_value) {
          zmq_msg_t msg;
          zmq_msg_init(&msg);
          for (; got < n && zmq_msg_recv(&msg, p.rx, 0) >= 0; ++got) {
            on_value(stamp_of(static_cast<char*>(zmq_msg_data(&msg)) + kKeyBytes));
          }
          zmq_msg_close(&msg);
        });
    if (got != o.latency_records) why = "received " + std::to_string(got);
    return got == o.latency_records ? l : Latency{};
  });
  if (rounds.median.max_us == 0) return report.failed(kW3, name, why);
  report.latency(kW3, name, rounds.median, "blocking zmq_msg_recv" + rounds.note);
}

}  // namespace

void run_zeromq(const Options& o, const std::string&, Report& report) {
  produce(report, o.value_bytes, o.records);
  produce(report, o.big_value_bytes, o.records_big);
  latency(o, report, ZMQ_PUSH, ZMQ_PULL, "ZeroMQ inproc PUSH/PULL");
  latency(o, report, ZMQ_PUB, ZMQ_SUB, "ZeroMQ inproc PUB/SUB");
  report.line(
      "durability: ZeroMQ none (messages exist only in the sockets' queues; W2, W4, W5 do not "
      "apply)");
}

}  // namespace compare
