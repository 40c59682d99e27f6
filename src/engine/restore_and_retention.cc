#include "engine/restore_and_retention.h"

#include <ctime>

namespace lockstep::engine {
namespace {

// What `knower` knows of `known`, offered to `known`.
Status Offer(connectors::Source& knower, connectors::Source& known, std::string_view scope) {
  store::ReplicaStore& of = known.store();
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t highest, knower.store().HighestDotOf(of.node()));
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> cursor,
                            knower.store().GetCursor(of.node(), scope));
  LOCKSTEP_RETURN_IF_ERROR(of.AdoptPeerView(knower.store().node(), highest, cursor).status());
  // A log of another epoch than the cursor's was restored (now, or in a sync with someone else):
  // what the knower took from it verbatim may be gone from it, so those records go back.
  if (cursor.has_value() && cursor->epoch != of.epoch()) {
    LOCKSTEP_RETURN_IF_ERROR(knower.store().ForgetOrigin(of.node()));
  }
  return Status::Ok();
}

std::string Date(int64_t millis) {
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

}  // namespace

Status ExchangeViews(connectors::Source& a, connectors::Source& b, std::string_view scope) {
  LOCKSTEP_RETURN_IF_ERROR(Offer(b, a, scope).WithContext(a.name()));
  return Offer(a, b, scope).WithContext(b.name());
}

std::string DescribeDuration(int64_t millis) {
  struct Unit {
    int64_t ms;
    const char* name;
  };
  for (const Unit unit : {Unit{86'400'000, "day"}, Unit{3'600'000, "hour"}, Unit{60'000, "minute"},
                          Unit{1000, "second"}}) {
    if (millis >= unit.ms && millis % unit.ms == 0) {
      const int64_t n = millis / unit.ms;
      return std::to_string(n) + " " + unit.name + (n == 1 ? "" : "s");
    }
  }
  return std::to_string(millis) + " ms";
}

Status CheckRetention(connectors::Source& from, connectors::Source& to, std::string_view scope,
                      int64_t retention_ms) {
  const core::NodeId& sender = from.store().node();
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> cursor,
                            to.store().GetCursor(sender, scope));
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<int64_t> synced,
                            to.store().CursorSyncedAt(sender, scope));
  LOCKSTEP_ASSIGN_OR_RETURN(bool reset, from.store().PeerNeedsReset(cursor, synced));
  if (!reset) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(store::ReplicaStore::GcHorizon horizon, from.store().Horizon());
  const std::string since = synced.has_value() ? Date(*synced) : "before " + Date(horizon.millis);
  const std::string remedy = "; run `lockstep reset " + to.name() + " " + from.name() + "`";
  return FailedPrecondition("reset required: " + to.name() + " has not synced with " + from.name() +
                            " since " + since + ", beyond the retention of " +
                            DescribeDuration(retention_ms) + remedy);
}

}  // namespace lockstep::engine
