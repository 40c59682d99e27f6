#include "cli/hub_options.h"

#include <cctype>
#include <fstream>

#include "security/identity.h"

namespace lockstep::cli {
namespace {

Result<std::string> ReadToken(const HubOptions& options) {
  if (!options.token.empty()) return options.token;
  if (options.token_file.empty()) {
    return InvalidArgument("talking to a hub needs --token or --token-file");
  }
  std::ifstream in(options.token_file);
  std::string token;
  if (!in || !std::getline(in, token)) {
    return NotFound("cannot read a token from " + options.token_file);
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

}  // namespace

void HubOptions::AddTo(CLI::App& command) {
  command.add_option("--token", token, "with a lockstep:// URL: the token the hub gave");
  command.add_option("--token-file", token_file, "or the file holding it");
  command.add_option("--trust", trust, "the hub's certificate fingerprint, SHA256:...");
  command.add_option("--ca", ca, "or a CA file that signed the hub's certificate");
  command.add_flag("--plaintext", plaintext, "plain TCP to a hub on a loopback address");
}

Status HubOptions::ApplyTo(engine::NetworkSyncOptions& options) const {
  LOCKSTEP_ASSIGN_OR_RETURN(options.token, ReadToken(*this));
  options.tls.plaintext = plaintext;
  options.tls.ca_file = ca;
  if (!trust.empty()) {
    auto pin = security::ParseFingerprint(trust);
    if (!pin.has_value()) return pin.error().WithContext("--trust");
    options.tls.pinned_fingerprint = *pin;
  }
  return Status::Ok();
}

}  // namespace lockstep::cli
