// rill event sourcing: bank accounts whose state is the fold of their events.
//
//   account_ledger <data-dir>
//
// Each run: rebuild the account from its newest snapshot plus the events after it; handle a
// few commands, each validated against the state (no overdraft) and appended only if no one
// appended to the account since its state was read (optimistic concurrency); show a conflict
// and its retry; save a snapshot midway. Run it again on the same directory: the account comes back
// from the snapshot and the tail, and carries on. Each run adds 70 to the balance.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

#include <rill/rill.hpp>

// [doc:types]
// Events are facts: what happened to an account. A trivially copyable struct has a built-in
// serde; SerdeName gives it a stable name for the topic's type check.
struct AccountEvent {
  enum Kind : std::int32_t { kOpened = 1, kDeposited = 2, kWithdrawn = 3 };
  Kind kind;
  std::int64_t amount;
};
template <>
struct rill::SerdeName<AccountEvent> {
  static constexpr std::string_view value = "example.AccountEvent";
};

// State: what the events add up to. Snapshots store it as it is.
struct Account {
  bool open = false;
  std::int64_t balance = 0;
  std::int64_t events = 0;
};
template <>
struct rill::SerdeName<Account> {
  static constexpr std::string_view value = "example.Account";
};

static void apply(Account& a, const AccountEvent& e) {
  switch (e.kind) {
    case AccountEvent::kOpened:
      a.open = true;
      break;
    case AccountEvent::kDeposited:
      a.balance += e.amount;
      break;
    case AccountEvent::kWithdrawn:
      a.balance -= e.amount;
      break;
  }
  ++a.events;
}
// [end:types]

// [doc:decide]
// Commands are requests: validated against the state, they become events or are refused.
struct Command {
  enum Kind { kOpen, kDeposit, kWithdraw } kind;
  std::int64_t amount = 0;
};

static rill::Result<AccountEvent> decide(const Account& a, const Command& c) {
  using rill::ErrorCode;
  switch (c.kind) {
    case Command::kOpen:
      if (a.open) return rill::fail(ErrorCode::kAlreadyExists, "account is already open");
      return AccountEvent{AccountEvent::kOpened, 0};
    case Command::kDeposit:
      if (!a.open) return rill::fail(ErrorCode::kInvalidArgument, "account is not open");
      if (c.amount <= 0) return rill::fail(ErrorCode::kInvalidArgument, "deposit must be > 0");
      return AccountEvent{AccountEvent::kDeposited, c.amount};
    case Command::kWithdraw:
      if (!a.open) return rill::fail(ErrorCode::kInvalidArgument, "account is not open");
      if (c.amount > a.balance) {
        return rill::fail(ErrorCode::kInvalidArgument, "insufficient funds: balance " +
                                                           std::to_string(a.balance) + ", asked " +
                                                           std::to_string(c.amount));
      }
      return AccountEvent{AccountEvent::kWithdrawn, c.amount};
  }
  return rill::fail(ErrorCode::kInvalidArgument, "unknown command");
}
// [end:decide]

// [doc:handle]
using Events = rill::es::EventStore<std::string, AccountEvent>;
using Snapshots = rill::es::SnapshotStore<std::string, Account>;

// Load, decide, append at the version loaded; on a conflict, load again and retry.
static rill::Result<rill::es::AppendResult> handle(Events& events, Snapshots& snapshots,
                                                   const std::string& id, const Command& c) {
  for (int attempt = 1;; ++attempt) {
    auto acct = rill::es::rebuild(events, snapshots, id, Account{}, apply);
    if (!acct) return rill::fail(acct.error());
    auto event = decide(acct->state, c);
    if (!event) return rill::fail(event.error());
    auto at = events.append(id, *event, acct->version);
    if (at || at.error().code() != rill::ErrorCode::kConflict || attempt == 5) return at;
    std::printf("  conflict (%s); retrying\n", at.error().message().c_str());
  }
}
// [end:handle]

static int die(const char* what, const rill::Error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.to_string().c_str());
  return 1;
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "rill-ledger";
  // [doc:open]
  auto broker = rill::Broker::open(dir);
  if (!broker) return die("open", broker.error());
  auto events = Events::open(**broker, "accounts");
  if (!events) return die("events topic", events.error());
  auto snapshots = Snapshots::open(**broker, "accounts.snapshots");
  if (!snapshots) return die("snapshots topic", snapshots.error());
  const std::string id = "acct-1";
  // [end:open]

  // 1. State after a restart: newest snapshot, then the events after it.
  auto snap = snapshots->load(id);
  if (!snap) return die("load snapshot", snap.error());
  auto acct = rill::es::rebuild(*events, *snapshots, id, Account{}, apply);
  if (!acct) return die("rebuild", acct.error());
  std::printf("rebuilt %s: balance %" PRId64 " at version %" PRId64 " (snapshot at version %" PRId64
              ", then %" PRId64 " event(s) replayed)\n",
              id.c_str(), acct->state.balance, acct->version,
              *snap ? (*snap)->version : rill::es::kNoEvents, acct->events);
  // A full replay must agree with snapshot + tail.
  auto full = events->fold(id, Account{}, apply);
  if (!full) return die("fold", full.error());
  if (full->state.balance != acct->state.balance || full->version != acct->version) {
    std::fprintf(stderr, "snapshot + tail disagrees with a full replay\n");
    return 1;
  }
  if (acct->state.balance % 70 != 0) return std::fprintf(stderr, "unexpected balance\n"), 1;
  const std::int64_t run = acct->state.balance / 70 + 1;

  // 2. Commands, validated against the state.
  if (!acct->state.open) {
    if (auto r = handle(*events, *snapshots, id, {Command::kOpen}); !r)
      return die("open", r.error());
  }
  if (auto r = handle(*events, *snapshots, id, {Command::kDeposit, 100}); !r)
    return die("deposit", r.error());
  if (auto r = handle(*events, *snapshots, id, {Command::kWithdraw, 30}); !r)
    return die("withdraw", r.error());
  auto refused = handle(*events, *snapshots, id, {Command::kWithdraw, 1'000'000});
  if (refused) return std::fprintf(stderr, "an overdraft was accepted\n"), 1;
  std::printf("  refused: %s\n", refused.error().message().c_str());

  // [doc:snapshot]
  // Snapshot the state here, so the next run starts from it and replays only the events after.
  auto snapped = rill::es::rebuild(*events, *snapshots, id, Account{}, apply);
  if (!snapped) return die("rebuild", snapped.error());
  if (auto s = snapshots->save(id, snapped->state, snapped->version); !s) {
    return die("snapshot", s.error());
  }
  // [end:snapshot]

  // [doc:conflict]
  // 3. Two writers decide on the same version: the second one conflicts and nothing of it is
  //    appended; handle() reloads and retries.
  auto seen = events->fold(id, Account{}, apply);
  if (!seen) return die("fold", seen.error());
  auto a = events->append(id, AccountEvent{AccountEvent::kDeposited, 5}, seen->version);
  if (!a) return die("first writer", a.error());
  auto b = events->append(id, AccountEvent{AccountEvent::kDeposited, 5}, seen->version);
  if (b || b.error().code() != rill::ErrorCode::kConflict) {
    return std::fprintf(stderr, "the second writer should have conflicted\n"), 1;
  }
  std::printf("  second writer at version %" PRId64 ": %s\n", seen->version,
              b.error().to_string().c_str());
  // [end:conflict]
  auto withdraw5 = handle(*events, *snapshots, id, {Command::kWithdraw, 5});
  if (!withdraw5) return die("withdraw", withdraw5.error());

  // 4. Where this run leaves the account.
  auto now = rill::es::rebuild(*events, *snapshots, id, Account{}, apply);
  if (!now) return die("rebuild", now.error());
  std::printf("run %" PRId64 ": balance %" PRId64 " after %" PRId64 " events, version %" PRId64
              "\n",
              run, now->state.balance, now->state.events, now->version);
  if (now->state.balance != 70 * run) {
    return std::fprintf(stderr, "balance %" PRId64 ", expected %" PRId64 "\n", now->state.balance,
                        70 * run),
           1;
  }
  return 0;
}
