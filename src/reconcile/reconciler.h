// Range-based set reconciliation of one collection between two replicas: finds which records
// each side must send so that both end with every version either holds, exchanging a number of
// bytes that grows with the differences rather than with the collection. The records themselves
// travel outside (as change batches); this only finds them.
//
// The initiator opens with a probe of its whole set; the responder answers every request, in
// one or more parts. Each side compares the other's probes with its own items and answers the
// ranges that differ one level finer, until ranges are small enough to list. When either side
// gives its recent changes (Options::recent_positions), the items around them are compared
// first, by lists, and the ranges only reconcile the rest. docs/PROTOCOL.md ("Reconciliation")
// has the exchange.
//
// Lost, duplicated and reordered messages: every answer names the request it answers and every
// entry names its ranges, answers are pure functions of the request and the items, and the
// initiator ignores what it has already seen. So the initiator resends Unanswered() after a
// timeout, and either side may receive anything twice.
//
//   Initiator initiator(items, {.session = {.seed = random}});
//   LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Message> out, initiator.Start());
//   // send `out`; for each answer received: out = initiator.Receive(answer), send `out`;
//   // until initiator.done(). The responder: out = responder.Receive(request), send `out`.
//   // Then each side sends the records of differences().send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "reconcile/difference_finder.h"
#include "reconcile/item_set.h"
#include "reconcile/message.h"

namespace lockstep::reconcile {

struct Options {
  // The initiator's choice for the session (the responder follows each request's). The seed
  // should be random per session: fingerprints and short hashes that collide in one session
  // then almost surely do not in the next.
  SessionParams session;
  // A range in which this side holds at most this many items is listed rather than split.
  size_t leaf_items = 16;
  // Messages are cut into parts of at most this many bytes (an entry larger than this, which
  // only a range of equal positions can produce, goes alone).
  size_t max_message_bytes = kMaxMessageBytes;
  // The initiator gives up (kResourceExhausted) after sending this many requests.
  uint64_t max_requests = uint64_t{1} << 20;
  // Positions (ItemPosition) of the records this side changed recently, most recent first: for
  // example every record changed since the other side's cursor into this side's log. When either
  // side gives some and the sets differ, the session first compares the items around them one by
  // one, then reconciles the rest by ranges, where it finds nothing more when every difference
  // was recent. Too few only costs the range phase; too many cost about 11 bytes each.
  std::vector<uint64_t> recent_positions;
  // 0: recent_positions are exactly what the other side may lack (the changes since its cursor),
  // offered all at once. Otherwise they are only the latest changes, of which the other side may
  // hold most: the first this many are offered, then, while most of what was offered differs,
  // windows 8 times larger each, up to kMaxRecentRounds (message.h, RecentEntry).
  size_t recent_window = 0;
};

// Drives a session. Not thread-safe; the ItemSet must outlive it and should not change during
// the session (a change is at worst sent twice, or left to the change log).
class Initiator {
 public:
  Initiator(ItemSet& items, const Options& options);

  // The first requests. kFailedPrecondition when called twice.
  Result<std::vector<Message>> Start();
  // Takes one answer part; returns the requests to send next (often none). Late duplicates are
  // ignored. kDataLoss for an answer that belongs to no request of this session, kAborted when
  // the responder's items changed under a resent request, kResourceExhausted past max_requests.
  Result<std::vector<Message>> Receive(const Message& answer);

  // The requests not yet fully answered: send them again when answers are overdue.
  std::vector<Message> Unanswered() const;
  // Every request has been fully answered: differences() is complete.
  bool done() const { return started_ && pending_.empty(); }
  Differences differences() const { return finder_.differences(); }

 private:
  struct Pending {
    Message request;
    std::vector<bool> parts_seen;  // empty until the first part arrives
    uint64_t parts_left = 0;
  };
  Result<std::vector<Message>> Send(std::vector<Entry> entries);

  DifferenceFinder finder_;
  Options options_;
  bool started_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> pending_;
};

// Answers requests. Keeps no state about the session except what it found (so it may answer
// requests of a restarted initiator too). Not thread-safe; the ItemSet must outlive it.
class Responder {
 public:
  Responder(ItemSet& items, const Options& options)
      : finder_(items, options.leaf_items, Role::kResponder, options.recent_positions,
                options.recent_window, options.max_message_bytes),
        options_(options) {}

  // The answer to `request`, in one or more parts (at least one, which may be empty).
  // kDataLoss when `request` is not a request.
  Result<std::vector<Message>> Receive(const Message& request);
  Differences differences() const { return finder_.differences(); }

 private:
  DifferenceFinder finder_;
  Options options_;
};

// `entries` cut into messages like `header` (whose entries are ignored) of at most `max_bytes`
// each, parts numbered; at least one message, empty when `entries` is.
Result<std::vector<Message>> PackMessages(std::vector<Entry> entries, const Message& header,
                                          size_t max_bytes);

}  // namespace lockstep::reconcile
