// The code of docs/guide-event-sourcing.md beyond examples/account_ledger.cpp: a read model
// (projection) kept by replaying a partition from where it stopped, the history of one key
// since a time, and appends conditional on a partition's end offset.
//
//   event_replay <data-dir>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rill/rill.hpp>

// [doc:event]
struct CartEvent {
  enum Kind : std::int32_t { kAdded = 1, kRemoved = 2, kCheckedOut = 3 };
  Kind kind;
  std::int64_t item;
  std::int64_t cents;
};
template <>
struct rill::SerdeName<CartEvent> {  // the name the topic's type check uses
  static constexpr std::string_view value = "example.CartEvent/v1";
};
// [end:event]

static int die(const char* what, const rill::Error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.to_string().c_str());
  return 1;
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "rill-carts";
  auto clock = std::make_shared<rill::ManualClock>(1'700'000'000'000);
  auto broker = rill::Broker::open(dir, {.clock = clock});
  if (!broker) return die("open", broker.error());
  // [doc:open_store]
  using Carts = rill::es::EventStore<std::string, CartEvent>;
  auto carts = Carts::open(**broker, "carts", {.partitions = 2});  // keeps every event
  if (!carts) return die("open", carts.error());
  // [end:open_store]

  // [doc:append_new]
  // A new cart: kNoEvents as the expected version means "this key has no events yet".
  const CartEvent first[] = {{CartEvent::kAdded, 17, 1250}, {CartEvent::kAdded, 4, 300}};
  auto created = carts->append("cart-1", first, rill::es::kNoEvents);  // one batch, all or none
  if (!created) return die("append", created.error());
  auto again = carts->append("cart-1", first, rill::es::kNoEvents);
  // again.error().code() == rill::ErrorCode::kConflict: cart-1 has events now
  // [end:append_new]
  if (again || again.error().code() != rill::ErrorCode::kConflict) return 1;

  clock->advance_ms(60'000);
  if (!carts->append("cart-1", CartEvent{CartEvent::kRemoved, 4, 300}, created->last_offset))
    return 1;
  if (!carts->append("cart-2", CartEvent{CartEvent::kAdded, 9, 999}, rill::es::kNoEvents)) return 1;

  // [doc:projection]
  // A read model: revenue in open carts, per partition, kept by replaying each partition from
  // the offset it stopped at. Store `next` with the model to resume after a restart.
  std::map<std::string, std::int64_t> open_cents;
  std::vector<std::int64_t> next(static_cast<std::size_t>(carts->topic().partitions()), 0);
  for (std::int32_t p = 0; p < carts->topic().partitions(); ++p) {
    auto resume_at = carts->replay(p, next[static_cast<std::size_t>(p)], [&](const auto& r) {
      const CartEvent& e = r.value;
      auto& cents = open_cents[*r.key];
      cents += e.kind == CartEvent::kAdded ? e.cents : e.kind == CartEvent::kRemoved ? -e.cents : 0;
      if (e.kind == CartEvent::kCheckedOut) open_cents.erase(*r.key);
    });
    if (!resume_at) return die("replay", resume_at.error());
    next[static_cast<std::size_t>(p)] = *resume_at;
  }
  // [end:projection]
  if (open_cents["cart-1"] != 1250 || open_cents["cart-2"] != 999) {
    return std::fprintf(stderr, "projection: %lld %lld\n",
                        static_cast<long long>(open_cents["cart-1"]),
                        static_cast<long long>(open_cents["cart-2"])),
           1;
  }

  // [doc:history_since]
  // cart-1's events of the last 30 seconds, by the broker's clock (record timestamps).
  const std::int64_t since = clock->now_ms() - 30'000;
  std::vector<std::int64_t> offsets;
  auto version = carts->replay_key_since("cart-1", since, [&](const auto& r) {
    offsets.push_back(r.offset);  // r.timestamp_ms >= since
  });
  // [end:history_since]
  if (!version || offsets.size() != 1 || offsets[0] != *version) return 1;

  // [doc:append_if_end]
  // Append only if nothing at all was appended to the key's partition since it was read to
  // `end`: cheaper than a key's version, but any key's event there is a conflict too.
  auto p = carts->partition_of("cart-2");
  const std::int64_t end = carts->topic().log(*p)->end_offset();
  const CartEvent checkout[] = {{CartEvent::kCheckedOut, 0, 0}};
  auto at = carts->append_if_end("cart-2", checkout, end);
  // [end:append_if_end]
  if (!at) return die("append_if_end", at.error());
  auto stale = carts->append_if_end("cart-2", checkout, end);
  if (stale || stale.error().code() != rill::ErrorCode::kConflict) return 1;
  std::printf("projection: cart-1 %lld cents open; cart-1 history since %lld: %zu event(s)\n",
              static_cast<long long>(open_cents["cart-1"]), static_cast<long long>(since),
              offsets.size());
  return 0;
}
