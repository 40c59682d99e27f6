#include "reconcile/difference_finder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

#include "reconcile/fingerprint.h"

namespace lockstep::reconcile {
namespace {

// How many bits to split a mismatched range by. Few expected differences: 4 sub-ranges, which
// spend the fewest fingerprints per difference found (k / ln k is least near k = 3). Many or
// unknown: 16, which reaches small ranges in fewer round trips when most of them differ anyway.
unsigned SplitBits(uint64_t own_count, size_t leaf_items, double expected, unsigned depth) {
  unsigned bits = 4;
  if (expected >= 0) bits = expected <= 2 ? 2 : expected <= 4 ? 3 : 4;
  // Wide enough that at most five more splits reach ranges of leaf size, bounding round trips.
  const double levels = std::log2(static_cast<double>(own_count) / static_cast<double>(leaf_items));
  bits = std::max(bits, static_cast<unsigned>(std::ceil(levels / 5)));
  return std::min({bits, kMaxSplitBits, kPositionBits - depth});
}

// The expected differences in one mismatched sub-range, from how many of its `probed` siblings
// mismatched: with Poisson-spread differences at rate m per sub-range, a share 1 - e^-m
// mismatches, and one that does holds m / (1 - e^-m) on average. Negative (unknown) when all did.
double ExpectedDifferences(size_t mismatched, size_t probed) {
  if (mismatched == 0 || mismatched >= probed) return -1;
  const double share = static_cast<double>(mismatched) / static_cast<double>(probed);
  const double rate = -std::log1p(-share);
  return rate / share;
}

// The most items a sub-range may hold for its probe to list them rather than send a fingerprint,
// when it mismatches with probability p. m items listed now cost m * item_bytes; a fingerprint
// costs fingerprint_bytes now and, with probability p, the list later under the range's name
// (and half a round trip): listing wins while m * item_bytes * (1 - p) <= fingerprint_bytes +
// p * name_bytes.
size_t ListUpTo(double mismatch, const SessionParams& params, size_t leaf_items) {
  if (mismatch >= 0.99) return leaf_items;
  constexpr double kRangeNameBytes = 8;
  const double items = (params.fingerprint_bytes + mismatch * kRangeNameBytes) /
                       (params.item_bytes * (1 - mismatch));
  return std::min(leaf_items, static_cast<size_t>(items));
}

// Whether `split` is the initiator's first probe: a fingerprint of its whole set.
bool IsFirstProbe(const SplitEntry& split) {
  return split.range == kWholeRange && split.bits == 0 && split.children.size() == 1 &&
         !split.children[0].listed;
}

}  // namespace

DifferenceFinder::DifferenceFinder(ItemSet& items, size_t leaf_items, Role role,
                                   const std::vector<uint64_t>& recent_positions,
                                   size_t recent_window, size_t max_message_bytes)
    : items_(items),
      leaf_items_(leaf_items == 0 ? 1 : leaf_items),
      role_(role),
      max_message_bytes_(std::min(max_message_bytes, kMaxMessageBytes)),
      recent_window_(recent_window) {
  std::set<uint32_t> seen;
  for (uint64_t position : recent_positions) {
    if (seen.size() == kMaxRecentPrefixes) break;
    if (seen.insert(RecentPrefix(position)).second) own_recent_.push_back(RecentPrefix(position));
  }
}

std::vector<uint32_t> DifferenceFinder::Window(uint8_t round) const {
  size_t begin = 0, end = own_recent_.size();
  if (recent_window_ == 0) {
    if (round > 0) begin = end;
  } else {
    // Window r holds the changes [w (8^r - 1) / 7, w (8^(r+1) - 1) / 7) of the list.
    size_t size = recent_window_;
    begin = 0;
    for (uint8_t r = 0; r < round && begin < own_recent_.size(); ++r) {
      begin += size;
      size *= 8;
    }
    begin = std::min(begin, own_recent_.size());
    end = std::min(own_recent_.size(), begin + size);
  }
  std::vector<uint32_t> window(own_recent_.begin() + static_cast<ptrdiff_t>(begin),
                               own_recent_.begin() + static_cast<ptrdiff_t>(end));
  std::sort(window.begin(), window.end());
  return window;
}

bool DifferenceFinder::MoreAfter(uint8_t round) const {
  if (recent_window_ == 0) return false;
  size_t end = 0, size = recent_window_;
  for (uint8_t r = 0; r <= round && end < own_recent_.size(); ++r) {
    end += size;
    size *= 8;
  }
  return end < own_recent_.size();
}

Status DifferenceFinder::LeaveOut(const std::vector<uint32_t>& own,
                                  const std::vector<uint32_t>& theirs) {
  std::vector<uint32_t> window;
  std::set_union(own.begin(), own.end(), theirs.begin(), theirs.end(), std::back_inserter(window));
  std::vector<uint32_t> before = excluding_ ? excluding_->prefixes() : std::vector<uint32_t>{};
  std::vector<uint32_t> added;
  std::set_difference(window.begin(), window.end(), before.begin(), before.end(),
                      std::back_inserter(added));
  std::vector<uint32_t> all;
  std::set_union(before.begin(), before.end(), added.begin(), added.end(), std::back_inserter(all));
  // Remade rather than extended: the windows grow geometrically, so this reads each recent range
  // at most a few times over the session.
  LOCKSTEP_ASSIGN_OR_RETURN(ExcludingItemSet excluding,
                            ExcludingItemSet::Make(items_, std::move(all)));
  excluding_.emplace(std::move(excluding));
  round_ranges_.push_back(std::move(added));
  return Status::Ok();
}

Result<std::vector<DifferenceFinder::Listed>> DifferenceFinder::ListOwn(
    const RangeId& range, const SessionParams& params) {
  // Lists of recent ranges are of every item there; the range phase never sees those items.
  ItemSet& set = excluding_ && excluding_->Excludes(range) ? items_ : active();
  LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary summary, set.Summarize(range.positions()));
  if (summary.count > list_budget_) {
    return ResourceExhausted("reconcile: a message asks to list more items than this side holds");
  }
  list_budget_ -= summary.count;
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Item> items, set.Items(range.positions()));
  std::vector<Listed> listed;
  listed.reserve(items.size());
  for (Item& item : items) {
    listed.push_back(
        {ShortItemHash(item.hash, params.seed, params.item_bytes), std::move(item.key)});
  }
  std::sort(listed.begin(), listed.end(), [](const Listed& a, const Listed& b) {
    return a.short_hash != b.short_hash ? a.short_hash < b.short_hash : a.key < b.key;
  });
  return listed;
}

Result<RangeProbe> DifferenceFinder::Probe(const RangeId& range, const RangeSummary& own,
                                           const SessionParams& params, size_t list_up_to) {
  RangeProbe probe;
  if (own.count > list_up_to && range.depth < kPositionBits) {
    probe.fingerprint = RangeFingerprint(own, params.seed, params.fingerprint_bytes);
    return probe;
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Listed> listed, ListOwn(range, params));
  probe.listed = true;
  probe.items.reserve(listed.size());
  for (const Listed& item : listed) probe.items.push_back(item.short_hash);
  return probe;
}

Result<SplitEntry> DifferenceFinder::ProbeWholeSet(const SessionParams& params) {
  LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary whole, items_.Summarize(kWholeRange.positions()));
  list_budget_ = whole.count;
  LOCKSTEP_ASSIGN_OR_RETURN(RangeProbe probe, Probe(kWholeRange, whole, params, leaf_items_));
  return SplitEntry{kWholeRange, 0, {std::move(probe)}};
}

Result<SplitEntry> DifferenceFinder::Refine(const RangeId& range, const RangeSummary& own,
                                            double expected, const SessionParams& params) {
  SplitEntry split{range, 0, {}};
  if (own.count <= leaf_items_ || range.depth == kPositionBits) {
    LOCKSTEP_ASSIGN_OR_RETURN(RangeProbe probe, Probe(range, own, params, leaf_items_));
    split.children.push_back(std::move(probe));
    return split;
  }
  split.bits = static_cast<uint8_t>(SplitBits(own.count, leaf_items_, expected, range.depth));
  const uint64_t children = uint64_t{1} << split.bits;
  const double mismatch =
      expected < 0 ? 1 : 1 - std::exp(-expected / static_cast<double>(children));
  const size_t list_up_to = ListUpTo(mismatch, params, leaf_items_);
  split.children.reserve(children);
  for (uint64_t i = 0; i < children; ++i) {
    const RangeId child = range.Child(split.bits, i);
    LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary summary, active().Summarize(child.positions()));
    LOCKSTEP_ASSIGN_OR_RETURN(RangeProbe probe, Probe(child, summary, params, list_up_to));
    split.children.push_back(std::move(probe));
  }
  return split;
}

Status DifferenceFinder::CompareList(const RangeId& range, const std::vector<uint64_t>& theirs,
                                     const SessionParams& params, std::vector<Entry>& out,
                                     std::vector<std::string>& sent) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Listed> own, ListOwn(range, params));
  LackingEntry lacking{range, theirs.size(), {}};
  // Both lists are sorted; equal short hashes pair off one to one, so duplicates are counted.
  size_t i = 0, j = 0;
  while (i < own.size() || j < theirs.size()) {
    if (j == theirs.size() || (i < own.size() && own[i].short_hash < theirs[j])) {
      sent.push_back(std::move(own[i++].key));
    } else if (i == own.size() || theirs[j] < own[i].short_hash) {
      lacking.indices.push_back(j++);
    } else {
      ++i;
      ++j;
    }
  }
  if (!lacking.indices.empty()) out.emplace_back(std::move(lacking));
  return Status::Ok();
}

Status DifferenceFinder::AnswerLacking(const LackingEntry& lacking, const SessionParams& params,
                                       std::vector<std::string>& sent) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Listed> own, ListOwn(lacking.range, params));
  if (own.size() != lacking.listed) {
    // Our items in the range changed since we listed them, so the indices may name other items:
    // send them all, which is never wrong, only more than needed.
    for (Listed& item : own) sent.push_back(std::move(item.key));
    return Status::Ok();
  }
  for (uint64_t index : lacking.indices) {
    if (index >= own.size()) return InvalidArgument("reconcile: lacking index out of range");
    sent.push_back(own[index].key);
  }
  return Status::Ok();
}

Status DifferenceFinder::AnswerSplit(const SplitEntry& split, const SessionParams& params,
                                     std::vector<Entry>& out, std::vector<std::string>& sent) {
  if (!split.range.valid() || split.bits > kMaxSplitBits ||
      split.range.depth + split.bits > kPositionBits ||
      split.children.size() != (size_t{1} << split.bits)) {
    return InvalidArgument("reconcile: malformed split");
  }
  struct Mismatch {
    RangeId range;
    RangeSummary own;
  };
  std::vector<Mismatch> mismatched;
  size_t probed = 0;
  for (size_t i = 0; i < split.children.size(); ++i) {
    const RangeId child = split.range.Child(split.bits, i);
    const RangeProbe& probe = split.children[i];
    if (probe.listed) {
      LOCKSTEP_RETURN_IF_ERROR(CompareList(child, probe.items, params, out, sent));
      continue;
    }
    ++probed;
    LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary own, active().Summarize(child.positions()));
    if (RangeFingerprint(own, params.seed, params.fingerprint_bytes) != probe.fingerprint) {
      mismatched.push_back({child, own});
    }
  }
  const double expected = ExpectedDifferences(mismatched.size(), probed);
  for (const Mismatch& mismatch : mismatched) {
    LOCKSTEP_ASSIGN_OR_RETURN(SplitEntry finer,
                              Refine(mismatch.range, mismatch.own, expected, params));
    out.emplace_back(std::move(finer));
  }
  return Status::Ok();
}

Status DifferenceFinder::AnswerRecent(const RecentEntry& recent, const SessionParams& params,
                                      std::vector<Entry>& out, std::vector<std::string>& sent) {
  // Each round's first entry fixes the ranges it leaves out; a later one is a duplicate (or a peer
  // changing its mind, which is ignored) and gets the same answer again.
  const size_t rounds = round_ranges_.size();
  if (recent.round > rounds || recent.round >= kMaxRecentRounds) {
    return InvalidArgument("reconcile: recent round out of order");
  }
  if (role_ == Role::kResponder) {
    if (!recent.has_rest) return Status::Ok();
    if (recent.round == rounds)
      LOCKSTEP_RETURN_IF_ERROR(LeaveOut(Window(recent.round), recent.prefixes));
    const std::vector<uint32_t>& ranges = round_ranges_[recent.round];
    if (!recent.lists.empty() && recent.lists.size() != ranges.size()) {
      return Aborted("reconcile: the initiator's recent ranges are not ours");
    }
    size_t differed = 0;
    for (size_t i = 0; i < recent.lists.size(); ++i) {
      const size_t before = out.size() + sent.size();
      LOCKSTEP_RETURN_IF_ERROR(
          CompareList(RangeId{kRecentDepth, ranges[i]}, recent.lists[i], params, out, sent));
      if (out.size() + sent.size() != before) ++differed;
    }
    const auto next = static_cast<uint8_t>(recent.round + 1);
    // A later round has left out more, so this one opened it: the same answer again (an answer
    // must not depend on what came since, or a resent request would get different parts).
    if (size_t{next} < round_ranges_.size()) {
      out.emplace_back(RecentEntry{Window(next), false, {}, {}, next, MoreAfter(next)});
      return Status::Ok();
    }
    // Most of the round's ranges differed, so the differences likely go further back: the next
    // windows are cheaper than descending the rest, unless the rest already matches.
    const bool grow = !recent.lists.empty() && 2 * differed > ranges.size() &&
                      next < kMaxRecentRounds && (recent.more || MoreAfter(recent.round)) &&
                      !recent.rest.listed;
    if (grow) {
      LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary rest, active().Summarize(kWholeRange.positions()));
      if (RangeFingerprint(rest, params.seed, params.fingerprint_bytes) !=
          recent.rest.fingerprint) {
        RecentEntry open{Window(next), false, {}, {}, next, MoreAfter(next)};
        out.emplace_back(std::move(open));
      }
      return Status::Ok();
    }
    return AnswerSplit(SplitEntry{kWholeRange, 0, {recent.rest}}, params, out, sent);
  }
  if (recent.round < rounds) return Status::Ok();
  // The initiator: its window, its probe of the rest and its lists of the round's ranges, all in
  // one entry, so that the responder never reads the probe without knowing what it leaves out.
  std::vector<uint32_t> window = Window(recent.round);
  LOCKSTEP_RETURN_IF_ERROR(LeaveOut(window, recent.prefixes));
  const std::vector<uint32_t>& ranges = round_ranges_.back();
  LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary rest, active().Summarize(kWholeRange.positions()));
  RecentEntry mine{std::move(window), true, {}, {}, recent.round, MoreAfter(recent.round)};
  LOCKSTEP_ASSIGN_OR_RETURN(mine.rest, Probe(kWholeRange, rest, params, leaf_items_));
  size_t list_bytes = 0;
  mine.lists.reserve(ranges.size());
  for (uint32_t prefix : ranges) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Listed> listed,
                              ListOwn(RangeId{kRecentDepth, prefix}, params));
    std::vector<uint64_t>& list = mine.lists.emplace_back();
    for (const Listed& item : listed) list.push_back(item.short_hash);
    list_bytes += 1 + list.size() * params.item_bytes;
  }
  // Lists too large for one message travel as split entries, which any message can carry (a
  // responder lists a recent range from all its items whether or not it knows it is recent).
  std::vector<std::vector<uint64_t>> lists;
  if (list_bytes > max_message_bytes_ / 2) lists.swap(mine.lists);
  out.emplace_back(std::move(mine));
  for (size_t i = 0; i < lists.size(); ++i) {
    out.emplace_back(SplitEntry{
        RangeId{kRecentDepth, ranges[i]}, 0, {RangeProbe{true, 0, std::move(lists[i])}}});
  }
  return Status::Ok();
}

Result<std::vector<Entry>> DifferenceFinder::Answer(const std::vector<Entry>& entries,
                                                    const SessionParams& params) {
  if (params.fingerprint_bytes < kMinHashBytes || params.fingerprint_bytes > kMaxHashBytes ||
      params.item_bytes < kMinHashBytes || params.item_bytes > kMaxHashBytes) {
    return InvalidArgument("reconcile: bad hash width");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary whole, items_.Summarize(kWholeRange.positions()));
  constexpr uint64_t kListSlack = 65536;
  list_budget_ = 2 * whole.count + kListSlack;
  std::vector<Entry> out;
  std::vector<std::string> sent;
  for (const Entry& entry : entries) {
    if (const auto* split = std::get_if<SplitEntry>(&entry)) {
      // A session with recent changes on either side compares those first (excluding_item_set.h).
      const bool recent_first = role_ == Role::kResponder && !excluding_ &&
                                (params.recent || has_recent()) && IsFirstProbe(*split);
      if (!recent_first) {
        LOCKSTEP_RETURN_IF_ERROR(AnswerSplit(*split, params, out, sent));
        continue;
      }
      LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary own, items_.Summarize(kWholeRange.positions()));
      if (RangeFingerprint(own, params.seed, params.fingerprint_bytes) !=
          split->children[0].fingerprint) {
        out.emplace_back(RecentEntry{Window(0), false, {}, {}, 0, MoreAfter(0)});
      }
    } else if (const auto* lacking = std::get_if<LackingEntry>(&entry)) {
      LOCKSTEP_RETURN_IF_ERROR(AnswerLacking(*lacking, params, sent));
    } else if (const auto* recent = std::get_if<RecentEntry>(&entry)) {
      LOCKSTEP_RETURN_IF_ERROR(AnswerRecent(*recent, params, out, sent));
    } else {
      for (const std::string& key : std::get<KeysEntry>(entry).keys) need_.insert(key);
    }
  }
  std::sort(sent.begin(), sent.end());
  sent.erase(std::unique(sent.begin(), sent.end()), sent.end());
  send_.insert(sent.begin(), sent.end());
  if (params.name_keys && !sent.empty()) out.emplace_back(KeysEntry{std::move(sent)});
  return out;
}

Differences DifferenceFinder::differences() const {
  return {{send_.begin(), send_.end()}, {need_.begin(), need_.end()}};
}

}  // namespace lockstep::reconcile
