#include "core/record.h"

#include <algorithm>

namespace lockstep::core {
namespace {

bool NameLess(const Record::NamedField& field, std::string_view name) { return field.first < name; }

}  // namespace

const Field* Record::Find(std::string_view name) const {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), name, NameLess);
  return it != fields_.end() && it->first == name ? &it->second : nullptr;
}

Field& Record::FindOrInsert(std::string_view name) {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), name, NameLess);
  if (it == fields_.end() || it->first != name) {
    it = fields_.insert(it, {std::string(name), Field{}});
  }
  return it->second;
}

}  // namespace lockstep::core
