#include "connectors/postgres/pg_wake.h"

#include <algorithm>
#include <sstream>
#include <utility>
#include <vector>

namespace lockstep::connectors::postgres {
namespace {

std::string Number(int64_t n) { return std::to_string(n); }

// Sets the flag to `new_value`, an expression of its current value `w.last_value`, under
// kWakeLock (point 5), in one round trip.
std::string ChangeFlagSql(const std::string& new_value) {
  return "BEGIN; SELECT pg_advisory_xact_lock(" + Number(kWakeLock) + "); SELECT setval('" +
         kWakeSequence + "', " + new_value + ") FROM " + kWakeSequence + " w; COMMIT";
}

}  // namespace

std::string CreateWakeFlagSql() {
  return std::string("CREATE SEQUENCE IF NOT EXISTS ") + kWakeSequence + " MINVALUE 0 START 0;\n";
}

std::string NotifyIfAsleepSql() {
  // An empty payload: PostgreSQL folds a transaction's identical notifications into one.
  return std::string("IF (SELECT last_value FROM ") + kWakeSequence +
         ") <> 0 THEN PERFORM pg_notify('" + kChannel + "', ''); END IF; ";
}

Result<std::unique_ptr<ChangeWatcher>> ChangeWatcher::Open(std::string_view url,
                                                           const Options& options) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<store::PostgresDb> db, store::PostgresDb::Connect(url));
  // LISTEN before the first look: a notification sent after it is not missed.
  LOCKSTEP_RETURN_IF_ERROR(db->Listen(kChannel));
  std::unique_ptr<ChangeWatcher> watcher(new ChangeWatcher(std::move(db), options));
  LOCKSTEP_RETURN_IF_ERROR(watcher->ClaimSlot());
  return watcher;
}

ChangeWatcher::~ChangeWatcher() {
  if (state_ != State::kAwake) (void)SetBit(false);
}

Status ChangeWatcher::ClaimSlot() {
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement claim,
                            db_->Prepare("SELECT pg_try_advisory_lock(?::int8)"));
  for (int n = 0; n < kWakeSlots && !slot_.has_value(); ++n) {
    claim.BindInt(1, kFirstWakeSlot + n);
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, claim.Step());
    if (row && claim.ColumnInt(0) != 0) slot_ = n;
    claim.Reset();
  }
  // A bit whose slot nobody holds is an engine that is gone (this one's own slot too: a session
  // takes its own lock again, and gives that back). Nested CASEs keep the unlock paired with a
  // successful try: SQL does not otherwise fix the order in which conditions are evaluated.
  const std::string first = Number(kFirstWakeSlot);
  const std::string gone =
      "w.last_value & ~coalesce((SELECT bit_or(1::int8 << s) FROM generate_series(0, " +
      Number(kWakeSlots - 1) +
      ") s WHERE CASE WHEN (w.last_value >> s) & 1 = 1 THEN CASE WHEN pg_try_advisory_lock(" +
      first + " + s) THEN pg_advisory_unlock(" + first + " + s) ELSE false END ELSE false END), 0)";
  return db_->Exec(ChangeFlagSql(gone))
      .WithContext("clearing the wake flags of engines gone from " + db_->name());
}

Status ChangeWatcher::SetBit(bool on) {
  if (!slot_.has_value()) return Status::Ok();
  const std::string bit = "(1::int8 << " + Number(*slot_) + ")";
  return db_->Exec(ChangeFlagSql(on ? "w.last_value | " + bit : "w.last_value & ~" + bit))
      .WithContext("setting the wake flag of " + db_->name());
}

Result<bool> ChangeWatcher::Wait(Clock::time_point until) {
  for (;;) {
    // Also takes what arrived with the answers to earlier queries.
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> channels, db_->TakeNotifications());
    if (!channels.empty()) return true;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return false;
    LOCKSTEP_RETURN_IF_ERROR(db_->WaitForNotification(left));
  }
}

Status ChangeWatcher::PrepareLook() {
  // The capture tables and the collections count in one snapshot: a collection and its capture
  // table are made in one transaction, so a new count means a new table to look at.
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement list,
      db_->Prepare("SELECT (SELECT count(*) FROM _lockstep_collections), "
                   "coalesce(string_agg(quote_ident(tablename), ' '), '') FROM pg_tables "
                   "WHERE schemaname = current_schema() AND tablename LIKE "
                   "'\\_lockstep\\_capture\\_%'"));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, list.Step());
  if (!row) return Internal("listing the capture tables of " + db_->name() + " gave no row");
  collections_ = list.ColumnInt(0);
  std::string pending;
  std::istringstream tables{std::string(list.ColumnText(1))};
  for (std::string table; tables >> table;) {
    pending +=
        (pending.empty() ? "" : " OR ") + std::string("EXISTS (SELECT 1 FROM ") + table + ")";
  }
  look_.reset();
  // The log's end from its primary key: the records have no index by seq (metadata version 4).
  LOCKSTEP_ASSIGN_OR_RETURN(look_,
                            db_->Prepare("SELECT (SELECT count(*) FROM _lockstep_collections), "
                                         "(SELECT coalesce(max(seq), 0) FROM _lockstep_log), " +
                                         (pending.empty() ? std::string("false") : pending)));
  return Status::Ok();
}

Result<ChangeWatcher::Look> ChangeWatcher::LookAtDatabase() {
  for (int attempt = 0;; ++attempt) {
    if (!look_.has_value()) LOCKSTEP_RETURN_IF_ERROR(PrepareLook());
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, look_->Step());
    if (!row) return Internal("looking for changes in " + db_->name() + " gave no row");
    const int64_t collections = look_->ColumnInt(0);
    const Look look{look_->ColumnInt(1), look_->ColumnInt(2) != 0};
    look_->Reset();
    if (collections == collections_ || attempt > 0) return look;
    look_.reset();  // a collection came or went: look at the capture tables there are now
  }
}

bool ChangeWatcher::Work(const Look& look) {
  const bool moved = look.seq != last_seq_;
  last_seq_ = look.seq;
  return moved || look.pending;
}

Result<bool> ChangeWatcher::Next(std::chrono::milliseconds max_wait) {
  const auto until = std::min(next_look_, Clock::now() + max_wait);
  LOCKSTEP_ASSIGN_OR_RETURN(bool notified, Wait(until));
  // Awake, a notification is one sent before the bit was cleared: the next look sees its rows.
  if (notified && state_ != State::kAwake) return WakeUp();
  if (Clock::now() < next_look_) return false;
  switch (state_) {
    case State::kAwake:
      return LookWhileAwake();
    case State::kFallingAsleep:
      return LookWhileFallingAsleep();
    case State::kAsleep:
      return LookWhileAsleep();
  }
  return false;
}

Result<bool> ChangeWatcher::LookWhileAwake() {
  const int64_t seq_before = last_seq_;
  LOCKSTEP_ASSIGN_OR_RETURN(Look look, LookAtDatabase());
  last_seq_ = look.seq;
  const bool moved = look.seq != seq_before;
  const auto now = Clock::now();
  if (look.pending) {
    // Progress (the log moved) keeps the quick pace; captures that sit there unstamped (no
    // session to stamp them) slow it down to the poll interval.
    wait_ = moved ? options_.busy_poll : std::min(wait_ * 2, options_.idle_poll);
    next_look_ = now + wait_;
    return Nudge(now);
  }
  if (moved) {
    // The log moved with no capture waiting: this engine's own stamps and applies (a long first
    // copy moves it for minutes) or another engine's. The sessions need not hear of every step,
    // only every kLogNudgeEvery and once more when it stops; captures are still looked for
    // within that time.
    wait_ = std::min(std::max(wait_ * 2, options_.busy_poll), options_.log_nudge_every);
    next_look_ = now + wait_;
    if (now - last_nudge_ >= options_.log_nudge_every) return Nudge(now);
    owed_ = true;
    return false;
  }
  const bool owed = std::exchange(owed_, false);
  if (!slot_.has_value()) {  // no bit to set: poll
    next_look_ = now + options_.idle_poll;
    return owed;
  }
  LOCKSTEP_RETURN_IF_ERROR(SetBit(true));
  state_ = State::kFallingAsleep;
  wait_ = options_.busy_poll;
  LOCKSTEP_ASSIGN_OR_RETURN(bool woke, LookWhileFallingAsleep());
  return woke || owed;
}

bool ChangeWatcher::Nudge(Clock::time_point now) {
  last_nudge_ = now;
  owed_ = false;
  return true;
}

Result<bool> ChangeWatcher::LookWhileFallingAsleep() {
  if (!quiet_.has_value()) {
    LOCKSTEP_ASSIGN_OR_RETURN(quiet_, db_->Prepare("SELECT pg_try_advisory_xact_lock(" +
                                                   Number(store::PostgresDb::kRowsLock) + ")"));
  }
  // Point 2. The lock is released as the statement's own transaction ends; a look after it sees
  // every writer that held the shared side, since those released it only after committing.
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, quiet_->Step());
  const bool quiet = row && quiet_->ColumnInt(0) != 0;
  quiet_->Reset();
  if (!quiet) {
    wait_ = std::min(wait_ * 2, options_.idle_poll);
    next_look_ = Clock::now() + wait_;
    return false;
  }
  LOCKSTEP_ASSIGN_OR_RETURN(Look look, LookAtDatabase());
  if (Work(look)) return WakeUp();
  state_ = State::kAsleep;
  next_look_ = Clock::now() + options_.idle_poll;
  return false;
}

Result<bool> ChangeWatcher::LookWhileAsleep() {
  LOCKSTEP_ASSIGN_OR_RETURN(Look look, LookAtDatabase());
  if (Work(look)) return WakeUp();
  next_look_ = Clock::now() + options_.idle_poll;
  return false;
}

Result<bool> ChangeWatcher::WakeUp() {
  LOCKSTEP_RETURN_IF_ERROR(SetBit(false));
  state_ = State::kAwake;
  wait_ = options_.busy_poll;
  const auto now = Clock::now();
  next_look_ = now + wait_;
  return Nudge(now);
}

}  // namespace lockstep::connectors::postgres
