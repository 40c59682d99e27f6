// What both sides of a reconciliation do with the entries the other side sent: compare each
// probe with their own items, answer each mismatch one level finer (or with the list of their
// items when they hold few), and record the keys they must send and, when the session names
// keys, the keys they need. An answer is a pure function of the entries and the item set, so a
// duplicated or resent message gets the same answer again and records nothing new.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "reconcile/excluding_item_set.h"
#include "reconcile/item_set.h"
#include "reconcile/message.h"

namespace lockstep::reconcile {

// The outcome of a reconciliation on one side, keys sorted.
struct Differences {
  // Keys of records this side holds in a version the other side lacks: send them.
  std::vector<std::string> send;
  // Keys of records the other side holds in a version this side lacks. Filled only when the
  // session names keys (SessionParams::name_keys); otherwise the records simply arrive.
  std::vector<std::string> need;
};

enum class Role { kInitiator, kResponder };

// Not thread-safe; the ItemSet must outlive it.
class DifferenceFinder {
 public:
  // `leaf_items`: a range in which this side holds at most this many items is listed, not split.
  // `recent_positions`: positions of the records this side changed recently, most recent first
  // (only the first kMaxRecentPrefixes distinct ranges count). `recent_window`: 0 to offer them
  // all at once, else how many to offer first, the next windows 8 times larger each (RecentEntry).
  // `max_message_bytes`: as in Options; lists of recent ranges above half of it are sent apart
  // from the recent entry.
  DifferenceFinder(ItemSet& items, size_t leaf_items, Role role,
                   const std::vector<uint64_t>& recent_positions, size_t recent_window,
                   size_t max_message_bytes);

  bool has_recent() const { return !own_recent_.empty(); }

  // The probe of the whole set that opens a session.
  Result<SplitEntry> ProbeWholeSet(const SessionParams& params);
  // The entries that answer `entries` (none when everything they cover matches). Errors come
  // from the item set, kInvalidArgument for entries that no decoder would produce, and
  // kResourceExhausted when the entries ask to list more than twice this side's items (plus
  // 65,536): an honest peer's entries cover disjoint ranges, so this bounds a hostile one's.
  Result<std::vector<Entry>> Answer(const std::vector<Entry>& entries, const SessionParams& params);

  Differences differences() const;

 private:
  struct Listed {
    uint64_t short_hash;
    std::string key;
  };
  // This side's items in `range` as a listed probe would name them: sorted by short hash.
  Result<std::vector<Listed>> ListOwn(const RangeId& range, const SessionParams& params);
  // Lists this side's items in `range` when it holds at most `list_up_to`, else fingerprints it.
  Result<RangeProbe> Probe(const RangeId& range, const RangeSummary& own,
                           const SessionParams& params, size_t list_up_to);
  // This side's probes of `range` one level finer; `expected` estimates the differences in it
  // (negative when unknown), which sets how many sub-ranges to cut it into.
  Result<SplitEntry> Refine(const RangeId& range, const RangeSummary& own, double expected,
                            const SessionParams& params);
  Status AnswerSplit(const SplitEntry& split, const SessionParams& params, std::vector<Entry>& out,
                     std::vector<std::string>& sent);
  Status CompareList(const RangeId& range, const std::vector<uint64_t>& theirs,
                     const SessionParams& params, std::vector<Entry>& out,
                     std::vector<std::string>& sent);
  Status AnswerLacking(const LackingEntry& lacking, const SessionParams& params,
                       std::vector<std::string>& sent);
  // This side's window of recent changes for `round`, ascending.
  std::vector<uint32_t> Window(uint8_t round) const;
  // Whether this side has recent changes beyond the window of `round`.
  bool MoreAfter(uint8_t round) const;
  // Leaves out the ranges of both sides' windows of the next round: round_ranges_ gains the
  // ranges not left out before.
  Status LeaveOut(const std::vector<uint32_t>& own, const std::vector<uint32_t>& theirs);
  // Learns the other side's window of a round (once) and answers: the initiator with its own, its
  // probe of the rest and its lists of the round's ranges; the responder by comparing the lists
  // and then either the rest or, when most of them differed, by opening the next round.
  Status AnswerRecent(const RecentEntry& recent, const SessionParams& params,
                      std::vector<Entry>& out, std::vector<std::string>& sent);
  // The set the range phase compares: without the recent ranges once they are known.
  ItemSet& active() { return excluding_ ? static_cast<ItemSet&>(*excluding_) : items_; }

  ItemSet& items_;
  size_t leaf_items_;
  Role role_;
  size_t max_message_bytes_;
  std::vector<uint32_t> own_recent_;  // distinct, most recent first
  size_t recent_window_;
  // The ranges each round left out that no earlier round had, ascending; one per round so far.
  std::vector<std::vector<uint32_t>> round_ranges_;
  std::optional<ExcludingItemSet> excluding_;
  uint64_t list_budget_ = 0;  // items ListOwn may still read while answering one message
  std::set<std::string> send_;
  std::set<std::string> need_;
};

}  // namespace lockstep::reconcile
