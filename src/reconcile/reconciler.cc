#include "reconcile/reconciler.h"

#include <utility>

namespace lockstep::reconcile {
namespace {

// Room for the header of any message: kind, version, three varints, seed, widths, flags, count.
constexpr size_t kHeaderBytes = 2 + 3 * 10 + 8 + 3 + 10;

// Keys entries larger than `budget` bytes cut into several, so that any number of keys fits.
std::vector<Entry> CutKeys(std::vector<Entry> entries, const SessionParams& params, size_t budget) {
  std::vector<Entry> cut;
  cut.reserve(entries.size());
  for (Entry& entry : entries) {
    auto* keys = std::get_if<KeysEntry>(&entry);
    if (keys == nullptr || EncodedEntrySize(entry, params) <= budget) {
      cut.push_back(std::move(entry));
      continue;
    }
    KeysEntry piece;
    size_t bytes = 0;
    for (std::string& key : keys->keys) {
      const size_t key_bytes = key.size() + 10;
      if (!piece.keys.empty() && bytes + key_bytes > budget) {
        cut.emplace_back(std::move(piece));
        piece = {};
        bytes = 0;
      }
      bytes += key_bytes;
      piece.keys.push_back(std::move(key));
    }
    if (!piece.keys.empty()) cut.emplace_back(std::move(piece));
  }
  return cut;
}

}  // namespace

Result<std::vector<Message>> PackMessages(std::vector<Entry> entries, const Message& header,
                                          size_t max_bytes) {
  const size_t budget = max_bytes > kHeaderBytes ? max_bytes - kHeaderBytes : 1;
  entries = CutKeys(std::move(entries), header.params, budget);
  std::vector<Message> messages;
  size_t bytes = 0;
  for (Entry& entry : entries) {
    const size_t size = EncodedEntrySize(entry, header.params);
    if (size + kHeaderBytes > kMaxMessageBytes) {
      return ResourceExhausted("reconcile: one range's items exceed the message limit");
    }
    if (messages.empty() || (bytes + size > budget && !messages.back().entries.empty())) {
      messages.push_back(header);
      messages.back().entries.clear();
      bytes = 0;
    }
    messages.back().entries.push_back(std::move(entry));
    bytes += size;
  }
  if (messages.empty()) {
    messages.push_back(header);
    messages.back().entries.clear();
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    messages[i].part = i;
    messages[i].parts = messages.size();
  }
  return messages;
}

Initiator::Initiator(ItemSet& items, const Options& options)
    : finder_(items, options.leaf_items, Role::kInitiator, options.recent_positions,
              options.recent_window, options.max_message_bytes),
      options_(options) {
  options_.session.recent = finder_.has_recent();
}

Result<std::vector<Message>> Initiator::Start() {
  if (started_) return FailedPrecondition("reconcile: session already started");
  started_ = true;
  LOCKSTEP_ASSIGN_OR_RETURN(SplitEntry whole, finder_.ProbeWholeSet(options_.session));
  std::vector<Entry> entries;
  entries.emplace_back(std::move(whole));
  return Send(std::move(entries));
}

Result<std::vector<Message>> Initiator::Send(std::vector<Entry> entries) {
  if (entries.empty()) return std::vector<Message>{};
  Message header;
  header.kind = MessageKind::kRequest;
  header.params = options_.session;
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Message> requests,
                            PackMessages(std::move(entries), header, options_.max_message_bytes));
  for (Message& request : requests) {
    if (next_id_ > options_.max_requests) {
      return ResourceExhausted("reconcile: more than " + std::to_string(options_.max_requests) +
                               " requests");
    }
    request.id = next_id_++;
    request.part = 0;
    request.parts = 1;
    pending_[request.id] = Pending{request, {}, 0};
  }
  return requests;
}

Result<std::vector<Message>> Initiator::Receive(const Message& answer) {
  if (answer.kind != MessageKind::kAnswer) return DataLoss("reconcile: expected an answer");
  if (answer.params != options_.session) return DataLoss("reconcile: answer for another session");
  const auto it = pending_.find(answer.id);
  if (it == pending_.end()) {
    if (answer.id != 0 && answer.id < next_id_) return std::vector<Message>{};  // late duplicate
    return DataLoss("reconcile: answer to request " + std::to_string(answer.id) +
                    " that was never sent");
  }
  Pending& pending = it->second;
  if (pending.parts_seen.empty()) {
    pending.parts_seen.assign(answer.parts, false);
    pending.parts_left = answer.parts;
  } else if (pending.parts_seen.size() != answer.parts) {
    return Aborted("reconcile: the responder's items changed during the session");
  }
  if (answer.part >= answer.parts) return DataLoss("reconcile: bad part number");
  if (pending.parts_seen[answer.part]) return std::vector<Message>{};  // duplicate
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Entry> next,
                            finder_.Answer(answer.entries, options_.session));
  pending.parts_seen[answer.part] = true;
  if (--pending.parts_left == 0) pending_.erase(it);
  return Send(std::move(next));
}

std::vector<Message> Initiator::Unanswered() const {
  std::vector<Message> requests;
  requests.reserve(pending_.size());
  for (const auto& [id, pending] : pending_) requests.push_back(pending.request);
  return requests;
}

Result<std::vector<Message>> Responder::Receive(const Message& request) {
  if (request.kind != MessageKind::kRequest) return DataLoss("reconcile: expected a request");
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                            finder_.Answer(request.entries, request.params));
  Message header;
  header.kind = MessageKind::kAnswer;
  header.id = request.id;
  header.params = request.params;
  return PackMessages(std::move(entries), header, options_.max_message_bytes);
}

}  // namespace lockstep::reconcile
