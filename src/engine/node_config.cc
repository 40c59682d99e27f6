#include "engine/node_config.h"

#include <toml++/toml.h>

#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/policy.h"
#include "security/identity.h"
#include "store/postgres_db.h"

namespace lockstep::engine {
namespace {

std::string Where(const std::filesystem::path& file, const toml::node& node) {
  return file.string() + ":" + std::to_string(node.source().begin.line);
}

std::filesystem::path Resolve(const std::filesystem::path& file, const std::string& path) {
  const std::filesystem::path p(path);
  return p.is_absolute() ? p : file.parent_path() / p;
}

Result<std::vector<std::string>> Strings(const std::filesystem::path& file, const toml::node* node,
                                         std::string_view what) {
  std::vector<std::string> out;
  if (node == nullptr) return out;
  const toml::array* array = node->as_array();
  if (array == nullptr)
    return InvalidArgument(Where(file, *node) + ": " + std::string(what) +
                           " must be a list of strings");
  for (const toml::node& item : *array) {
    const auto* text = item.as_string();
    if (text == nullptr) {
      return InvalidArgument(Where(file, item) + ": " + std::string(what) + " holds a non-string");
    }
    out.push_back(text->get());
  }
  return out;
}

Result<PeerConfig> ParsePeer(const std::filesystem::path& file, const toml::table& peer) {
  PeerConfig config;
  const auto url = peer["url"].value<std::string>();
  if (!url.has_value()) return InvalidArgument(Where(file, peer) + ": [[peer]] needs url");
  config.url = *url;
  LOCKSTEP_RETURN_IF_ERROR(net::ParseUrl(config.url).status().WithContext(Where(file, peer)));
  if (auto token = peer["token"].value<std::string>()) config.token = *token;
  if (auto token_file = peer["token_file"].value<std::string>()) {
    std::ifstream in(Resolve(file, *token_file));
    if (!in || !std::getline(in, config.token)) {
      return InvalidArgument(Where(file, peer) + ": cannot read token_file " + *token_file);
    }
    while (!config.token.empty() && std::isspace(static_cast<unsigned char>(config.token.back()))) {
      config.token.pop_back();
    }
  }
  if (config.token.empty()) {
    return InvalidArgument(Where(file, peer) + ": [[peer]] needs token or token_file");
  }
  if (auto trust = peer["trust"].value<std::string>()) {
    LOCKSTEP_ASSIGN_OR_RETURN(config.tls.pinned_fingerprint, security::ParseFingerprint(*trust));
  }
  if (auto ca = peer["ca"].value<std::string>()) config.tls.ca_file = Resolve(file, *ca);
  config.tls.plaintext = peer["plaintext"].value_or(false);
  LOCKSTEP_ASSIGN_OR_RETURN(config.collections,
                            Strings(file, peer.get("collections"), "collections"));
  const std::string direction = peer["direction"].value_or(std::string("both"));
  if (direction == "push") {
    config.direction = protocol::Direction::kPush;
  } else if (direction == "pull") {
    config.direction = protocol::Direction::kPull;
  } else if (direction != "both") {
    // The line of the value at fault, not of its [[peer]] (present: value_or gave no default).
    return InvalidArgument(Where(file, *peer.get("direction")) +
                           ": direction must be both, push or pull");
  }
  const std::string mode = peer["mode"].value_or(std::string("live"));
  if (auto every = peer["every"].value<std::string>()) {
    LOCKSTEP_ASSIGN_OR_RETURN(config.every_ms, ParseDuration(*every));
    config.live = false;
  } else if (mode != "live") {
    return InvalidArgument(Where(file, *peer.get("mode")) +
                           ": mode must be \"live\", or give every = \"5m\"");
  }
  return config;
}

// A [[collection]] table as a policy spec: `conflict`, then `fields.NAME = POLICY` overrides.
Result<std::pair<std::string, std::string>> ParseCollection(const std::filesystem::path& file,
                                                            const toml::table& collection) {
  const auto name = collection["name"].value<std::string>();
  if (!name.has_value())
    return InvalidArgument(Where(file, collection) + ": [[collection]] needs name");
  std::string spec = collection["conflict"].value_or(std::string("lww"));
  if (const toml::table* fields = collection["fields"].as_table()) {
    for (const auto& [field, policy] : *fields) {
      const auto* text = policy.as_string();
      if (text == nullptr)
        return InvalidArgument(Where(file, policy) + ": field policies are strings");
      spec += "," + std::string(field.str()) + "=" + text->get();
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(core::ParsePolicy(spec).status().WithContext(Where(file, collection)));
  return std::make_pair(*name, spec);
}

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, text.data() + text.size() - end);
  int64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (unit == "d") scale = 86'400'000;
  if (error != std::errc() || value <= 0 || scale == 0 ||
      value > std::numeric_limits<int64_t>::max() / scale) {
    return InvalidArgument("'" + std::string(text) +
                           "' is not a duration (500ms, 30s, 5m, 1h, 30d)");
  }
  return value * scale;
}

Result<NodeConfig> LoadNodeConfig(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return NotFound(path.string() + ": cannot read the node file");
  std::stringstream text;
  text << in.rdbuf();
  // toml++ as Debian builds it reports syntax errors by exception: caught here, at the edge.
  toml::table root;
  try {
    root = toml::parse(text.str(), path.string());
  } catch (const toml::parse_error& error) {
    return InvalidArgument(path.string() + ":" + std::to_string(error.source().begin.line) + ": " +
                           std::string(error.description()));
  }
  NodeConfig config;
  config.name = root["node"]["name"].value_or(std::string());
  if (auto dir = root["node"]["data_dir"].value<std::string>())
    config.data_dir = Resolve(path, *dir);
  if (auto listen = root["node"]["listen"].value<std::string>()) {
    LOCKSTEP_ASSIGN_OR_RETURN(config.listen, net::ParseEndpoint(*listen));
    if (config.data_dir.empty()) {
      return InvalidArgument(path.string() + ": [node] listen needs data_dir (identity, tokens)");
    }
  }
  config.listen_plaintext = root["node"]["plaintext"].value_or(false);
  if (auto retention = root["node"]["retention"].value<std::string>()) {
    auto parsed = ParseDuration(*retention);
    if (!parsed.has_value()) return parsed.error().WithContext(path.string() + ": retention");
    config.retention_ms = *parsed;
  }

  const toml::array* sources = root["source"].as_array();
  if (sources == nullptr || sources->size() != 1 || !sources->front().is_table()) {
    return InvalidArgument(path.string() + ": a node has exactly one [[source]] for now");
  }
  const toml::table& source = *sources->front().as_table();
  const auto sqlite = source["sqlite"].value<std::string>();
  const auto postgres = source["postgres"].value<std::string>();
  if (sqlite.has_value() == postgres.has_value()) {
    return InvalidArgument(Where(path, source) + ": [[source]] needs sqlite or postgres (one)");
  }
  if (sqlite.has_value()) config.sqlite = Resolve(path, *sqlite);
  if (postgres.has_value()) {
    if (!store::IsPostgresUrl(*postgres)) {
      return InvalidArgument(Where(path, source) + ": postgres must be a postgres:// URL");
    }
    config.postgres = *postgres;
  }
  if (auto poll = source["poll"].value<std::string>()) {
    auto parsed = ParseDuration(*poll);
    if (!parsed.has_value()) {
      return parsed.error().WithContext(Where(path, *source.get("poll")) + ": poll");
    }
    config.poll_ms = *parsed;
  }
  LOCKSTEP_ASSIGN_OR_RETURN(config.tables, Strings(path, source.get("tables"), "tables"));

  if (const toml::array* collections = root["collection"].as_array()) {
    for (const toml::node& node : *collections) {
      if (!node.is_table()) return InvalidArgument(Where(path, node) + ": [[collection]] expected");
      LOCKSTEP_ASSIGN_OR_RETURN(auto named, ParseCollection(path, *node.as_table()));
      config.policies.insert(std::move(named));
    }
  }
  if (const toml::array* peers = root["peer"].as_array()) {
    for (const toml::node& node : *peers) {
      if (!node.is_table()) return InvalidArgument(Where(path, node) + ": [[peer]] expected");
      LOCKSTEP_ASSIGN_OR_RETURN(PeerConfig peer, ParsePeer(path, *node.as_table()));
      config.peers.push_back(std::move(peer));
    }
  }
  if (config.peers.empty() && !config.listen.has_value()) {
    return InvalidArgument(path.string() + ": nothing to do: no [[peer]] and no [node] listen");
  }
  return config;
}

}  // namespace lockstep::engine
