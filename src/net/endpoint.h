// Where to listen or dial: HOST:PORT, and lockstep:// URLs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lockstep/status.h"

namespace lockstep::net {

inline constexpr uint16_t kDefaultPort = 7300;

struct Endpoint {
  std::string host;  // a name, an IPv4 address or an IPv6 address without brackets
  uint16_t port = kDefaultPort;

  // "host:port", with brackets around an IPv6 address.
  std::string ToString() const;
};

// "HOST:PORT", "[IPV6]:PORT" or "HOST" (the default port). kInvalidArgument otherwise.
Result<Endpoint> ParseEndpoint(std::string_view text);

// "lockstep://HOST[:PORT]". kInvalidArgument otherwise.
Result<Endpoint> ParseUrl(std::string_view url);

// Whether `text` looks like a lockstep:// URL rather than a file.
bool IsUrl(std::string_view text);

// Whether `host` is a loopback address or "localhost": the only places plain TCP may go.
bool IsLoopbackHost(std::string_view host);

}  // namespace lockstep::net
