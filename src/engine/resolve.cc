#include "engine/resolve.h"

#include "core/key.h"
#include "core/local_write.h"
#include "engine/local_edit.h"

namespace lockstep::engine {
namespace {

// The sibling this resolution keeps for one field.
Result<Value> Choose(const core::Field& field, const std::string& name,
                     const core::MergePolicy& policy, const core::NodeId& self,
                     const Resolution& resolution) {
  if (resolution.take == Resolution::Take::kValue) return resolution.value;
  const core::Version* chosen = nullptr;
  for (const core::Version& version : field.versions) {
    const bool local = version.dot.node == self;
    if (local != (resolution.take == Resolution::Take::kLocal)) continue;
    if (chosen == nullptr || core::Beats(version, *chosen, name, policy)) chosen = &version;
  }
  if (chosen == nullptr) {
    return NotFound("field '" + name + "' has no " +
                    (resolution.take == Resolution::Take::kLocal ? "local" : "remote") + " value");
  }
  return chosen->value;
}

}  // namespace

Resolution ParseTake(const std::string& take) {
  if (take == "local") return {Resolution::Take::kLocal, {}, {}};
  if (take == "remote") return {Resolution::Take::kRemote, {}, {}};
  auto literal = core::ParseLiteral(take);
  return {Resolution::Take::kValue, literal.has_value() ? *literal : Value::Text(take), {}};
}

Status ResolveConflict(connectors::Source& source, const std::string& key_text,
                       const Resolution& resolution) {
  const size_t colon = key_text.find(':');
  if (colon == std::string::npos) {
    return InvalidArgument("key must be TABLE:KEY as 'lockstep conflicts list' prints it");
  }
  const std::string table_name = key_text.substr(0, colon);
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Value> key_values,
                            core::ParseKeyText(std::string_view(key_text).substr(colon + 1)));
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<connectors::TableSchema> schema,
                            source.Schema(table_name));
  if (!schema.has_value()) return NotFound("no table '" + table_name + "'");
  LOCKSTEP_RETURN_IF_ERROR(source.Attach({&*schema, 1}, ""));
  connectors::RowSink& table = *source.Table(table_name);
  store::ReplicaStore& store = source.store();
  const std::string key = core::EncodeKey(key_values);

  return store.Write([&]() -> Status {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::StoredRecord> stored,
                              store.Get(table.collection().id, key));
    if (!stored.has_value()) return NotFound("no record " + key_text);
    core::LocalWrite write;
    for (const auto& [name, field] : stored->record.fields()) {
      const bool asked = resolution.field.has_value() && *resolution.field == name;
      if (name == core::kExistsField || (!asked && field.versions.size() < 2)) continue;
      if (resolution.field.has_value() && !asked) continue;
      LOCKSTEP_ASSIGN_OR_RETURN(Value value,
                                Choose(field, name, table.policy(), store.node(), resolution));
      write.fields.emplace_back(name, std::move(value));
    }
    if (write.fields.empty()) return NotFound("no unresolved conflict in " + key_text);
    write.exists = core::Exists(stored->record, table.policy());  // resolving never resurrects
    LOCKSTEP_RETURN_IF_ERROR(WriteLocally(store, table, *stored, std::move(write)));
    return store.MarkResolved(table_name, key);
  });
}

}  // namespace lockstep::engine
