// Records: a key and named fields, each field holding the versions (value, dot, hlc) that survive
// merging, plus the record's version vector. Existence is the ordinary field `_exists`.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dot.h"
#include "core/version_vector.h"
#include "lockstep/value.h"

namespace lockstep::core {

// The field that says whether a record exists: Int(1) on insert and every update, Int(0) on
// delete. A deleted record keeps its other fields as a tombstone, so a resurrection restores them.
inline constexpr std::string_view kExistsField = "_exists";

// One write's value for one field.
struct Version {
  Value value;
  Dot dot;
  Hlc hlc;

  friend bool operator==(const Version&, const Version&) = default;
};

// A field's surviving versions, sorted by dot, never empty. Usually one. More than one when
// concurrent writes are kept as siblings until a write that has seen them replaces them (under
// every register policy: the field shows the policy's winner, see Winner) or, for a `counter`
// field, one contribution per node that ever changed it.
struct Field {
  std::vector<Version> versions;

  friend bool operator==(const Field&, const Field&) = default;
};

// A record as one replica holds it. Fields are kept sorted by name so that equal records have
// equal representations (and encodings). Invariant: the version vector covers every dot of every
// field. Thread-compatible.
class Record {
 public:
  using NamedField = std::pair<std::string, Field>;

  Record() = default;
  explicit Record(std::string key) : key_(std::move(key)) {}

  const std::string& key() const { return key_; }
  const VersionVector& vv() const { return vv_; }
  VersionVector& mutable_vv() { return vv_; }
  const std::vector<NamedField>& fields() const { return fields_; }
  std::vector<NamedField>& mutable_fields() { return fields_; }

  // The field called `name`, or nullptr.
  const Field* Find(std::string_view name) const;
  Field* Find(std::string_view name) {
    return const_cast<Field*>(static_cast<const Record&>(*this).Find(name));
  }
  // The field called `name`, inserted empty (in sorted position) when missing.
  Field& FindOrInsert(std::string_view name);

  friend bool operator==(const Record&, const Record&) = default;

 private:
  std::string key_;
  std::vector<NamedField> fields_;
  VersionVector vv_;
};

}  // namespace lockstep::core
