// libFuzzer target for the reconciliation message decoder, and for both sides of the protocol fed
// whatever it decodes. Bytes from a peer are hostile: the decoder must refuse them or return a
// message that re-encodes to exactly those bytes (the encoding is canonical), and a responder or
// initiator given that message must answer or refuse it without crashing, within bounded work.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "reconcile/memory_item_set.h"
#include "reconcile/message.h"
#include "reconcile/reconciler.h"

namespace {

using lockstep::reconcile::DecodeMessage;
using lockstep::reconcile::EncodeMessage;
using lockstep::reconcile::Initiator;
using lockstep::reconcile::Item;
using lockstep::reconcile::MakeItem;
using lockstep::reconcile::MemoryItemSet;
using lockstep::reconcile::Message;
using lockstep::reconcile::MessageKind;
using lockstep::reconcile::Options;
using lockstep::reconcile::Responder;

MemoryItemSet& Items() {
  static MemoryItemSet* items = [] {
    std::vector<Item> list;
    for (int i = 0; i < 200; ++i) list.push_back(MakeItem("k" + std::to_string(i), "v"));
    return new MemoryItemSet(std::move(list));
  }();
  return *items;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto message = DecodeMessage(bytes);
  if (!message.has_value()) return 0;
  if (EncodeMessage(*message) != bytes) std::abort();

  Options options;
  options.leaf_items = 4;
  options.max_message_bytes = 4096;
  if (message->kind == MessageKind::kRequest) {
    Responder responder(Items(), options);
    (void)responder.Receive(*message);
    return 0;
  }
  // An answer to the first request of a session with the same parameters.
  options.session = message->params;
  Initiator initiator(Items(), options);
  if (!initiator.Start().has_value()) std::abort();
  (void)initiator.Receive(*message);
  return 0;
}
