// `lockstep token create --data DIR --collections a,b --mode r|rw` and `lockstep init`.
#include <iostream>

#include "cli/command.h"
#include "security/identity.h"
#include "security/tokens.h"

namespace lockstep::cli {
namespace {

struct TokenArgs {
  std::string data;
  std::vector<std::string> collections;
  std::string mode = "rw";
};

int RunTokenCreate(const TokenArgs& args) {
  auto mode = security::ParseTokenMode(args.mode);
  if (!mode.has_value()) return Fail(mode.error());
  auto tokens = security::TokenStore::Open(args.data);
  if (!tokens.has_value()) return Fail(tokens.error());
  auto token = tokens->Create({args.collections, *mode});
  if (!token.has_value()) return Fail(token.error());
  // The only time the token is shown: the hub keeps nothing but its hash.
  std::cout << *token << "\n";
  return 0;
}

int RunInit(const std::string& data) {
  auto identity = security::LoadOrCreateIdentity(data);
  if (!identity.has_value()) return Fail(identity.error());
  std::cout << "identity in " << data << "\ncertificate fingerprint: " << identity->fingerprint
            << "\n";
  return 0;
}

}  // namespace

void AddTokenCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<TokenArgs>();
  CLI::App* token = app.add_subcommand("token", "Manage the tokens a hub accepts");
  token->require_subcommand(1);
  CLI::App* create = token->add_subcommand(
      "create", "Make a token for some collections; it is printed once and stored only hashed");
  create->add_option("--data", args->data, "the hub's directory")->required();
  create->add_option("--collections", args->collections, "collections it covers ('*': all)")
      ->delimiter(',')
      ->required();
  create->add_option("--mode", args->mode, "r (pull only) or rw")
      ->check(CLI::IsMember({"r", "rw"}))
      ->capture_default_str();
  create->callback([args, &run] { run = [args] { return RunTokenCreate(*args); }; });

  auto data = std::make_shared<std::string>();
  CLI::App* init = app.add_subcommand(
      "init", "Make this node's key and self-signed certificate and print its fingerprint");
  init->add_option("--data", *data, "the node's directory")->required();
  init->callback([data, &run] { run = [data] { return RunInit(*data); }; });
}

}  // namespace lockstep::cli
