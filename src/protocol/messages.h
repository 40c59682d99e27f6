// The messages of the sync protocol as plain C++ values. Only frame_codec.cc sees the protobuf
// types generated from lockstep.proto, so the rest of Lockstep never includes protobuf headers.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/delta.h"
#include "core/dot.h"
#include "lockstep/status.h"

namespace lockstep::protocol {

inline constexpr uint32_t kProtocolVersion = 1;

// Hello.features: besides the collections it names, the dialer wants every other collection its
// token covers that the listener holds.
inline constexpr uint64_t kFeatureAllCollections = 1;
// Hello.features: the dialer only verifies: the listener reconciles the granted collections with
// it (Welcome.reconcile) and then sends no record (`lockstep verify DB URL`).
inline constexpr uint64_t kFeatureVerify = 2;

// A position in one node's change log; a cursor from another epoch is void.
struct Cursor {
  int64_t epoch = 0;
  uint64_t seq = 0;
  friend bool operator==(const Cursor&, const Cursor&) = default;
};

// Which way changes flow, seen from the node that dials.
enum class Direction { kBoth, kPush, kPull };

// The PostgreSQL type a column's values stand for (connectors::Column::logical_type), so that a
// table created from a schema that passed through SQLite nodes and hubs gets it back.
struct ColumnType {
  std::string column;
  std::string logical_type;
  friend bool operator==(const ColumnType&, const ColumnType&) = default;
};

struct Schema {
  std::string collection;
  std::string create_sql;  // in SQLite's dialect, which every node can read
  std::string policy;
  std::vector<ColumnType> column_types;  // only the columns that have a logical type
  friend bool operator==(const Schema&, const Schema&) = default;
};

struct Hello {
  uint32_t protocol_version = kProtocolVersion;
  core::NodeId node;
  std::string token;  // a secret: never logged
  std::vector<std::string> collections;
  Direction direction = Direction::kBoth;
  Cursor cursor;  // how far the dialer has merged the listener's log
  uint64_t features = 0;
  std::vector<Schema> schemas;
  int64_t epoch = 0;                 // the epoch of the dialer's log
  uint64_t highest_dot_of_peer = 0;  // of the listener's node, held by the dialer (0: none)
  bool holds_records = false;        // in the collections asked for
  friend bool operator==(const Hello&, const Hello&) = default;
};

struct Welcome {
  uint32_t protocol_version = kProtocolVersion;
  core::NodeId node;
  std::vector<std::string> collections;  // granted
  Cursor cursor;                         // how far the listener has merged the dialer's log
  uint64_t features = 0;
  std::vector<Schema> schemas;
  Direction direction = Direction::kBoth;  // granted: may be narrower than asked
  int64_t epoch = 0;                       // the epoch of the listener's log
  uint64_t highest_dot_of_peer = 0;        // of the dialer's node, held by the listener
  bool reconcile = false;                  // reconcile before any batch (see lockstep.proto)
  friend bool operator==(const Welcome&, const Welcome&) = default;
};

// One record of a change log, named by its collection.
struct Change {
  std::string collection;
  core::RecordDelta delta;
  friend bool operator==(const Change&, const Change&) = default;
};

// Records of the sender's log in its seq order, up to `end`. A batch may hold no records and
// still move the receiver's cursor (records it skipped because the receiver has them).
struct ChangeBatch {
  uint64_t id = 0;
  Cursor end;
  std::vector<Change> changes;
  bool caught_up = false;  // the sender had nothing newer (see lockstep.proto)
  friend bool operator==(const ChangeBatch&, const ChangeBatch&) = default;
};

struct Ack {
  uint64_t batch_id = 0;
  Cursor cursor;
  friend bool operator==(const Ack&, const Ack&) = default;
};

struct Ping {
  uint64_t nonce = 0;
  friend bool operator==(const Ping&, const Ping&) = default;
};

struct Pong {
  uint64_t nonce = 0;
  friend bool operator==(const Pong&, const Pong&) = default;
};

// Ends a session; `code` says what the receiver should do (see lockstep/status.h).
struct ErrorMessage {
  StatusCode code = StatusCode::kInternal;
  std::string message;
  friend bool operator==(const ErrorMessage&, const ErrorMessage&) = default;
};

struct Goodbye {
  std::string reason;
  friend bool operator==(const Goodbye&, const Goodbye&) = default;
};

// One step of the reconciliation of one collection; `last` (from the dialer) ends them all.
struct Reconcile {
  std::string collection;
  std::string step;
  bool last = false;
  friend bool operator==(const Reconcile&, const Reconcile&) = default;
};

using Message =
    std::variant<Hello, Welcome, ChangeBatch, Ack, Ping, Pong, ErrorMessage, Goodbye, Reconcile>;

// The message's name for logs and errors: "hello", "change batch", ...
std::string_view MessageName(const Message& message);

}  // namespace lockstep::protocol
