// rill/event_sourcing.hpp: event sourcing on rill topics (namespace rill::es).
//
//   rill/es/event_store.hpp      EventStore<K, E>: append a key's events only if its version
//                                (the offset of its last event) or the partition's end offset
//                                is the one expected, else kConflict and nothing appended;
//                                replay a partition or a key from an offset or a timestamp;
//                                fold events into state
//   rill/es/snapshot_store.hpp   SnapshotStore<K, S>: state snapshots in a compacted topic;
//                                rebuild(): newest snapshot, then the events after it
//
// A command handler, with retries on conflict:
//
//   for (;;) {
//     auto acct = rill::es::rebuild(events, snapshots, id, Account{}, apply);  // state, version
//     if (!acct) return fail(acct.error());
//     auto event = decide(acct->state, command);       // validate against the state
//     if (!event) return fail(event.error());
//     auto at = events.append(id, *event, acct->version);
//     if (at || at.error().code() != rill::ErrorCode::kConflict) return at;
//   }
#pragma once

#include "rill/es/event_store.hpp"
#include "rill/es/snapshot_store.hpp"
