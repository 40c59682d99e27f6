#include "net/endpoint.h"

#include <arpa/inet.h>

#include <charconv>

namespace lockstep::net {

std::string Endpoint::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  Endpoint endpoint;
  std::string_view port;
  if (text.starts_with("[")) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unclosed '[' in address");
    endpoint.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(":")) return InvalidArgument("bad address");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      return InvalidArgument("an IPv6 address needs brackets: [" + std::string(text) + "]:PORT");
    }
    endpoint.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) port = text.substr(colon + 1);
  }
  if (endpoint.host.empty()) return InvalidArgument("address without a host");
  if (!port.empty() || text.ends_with(":")) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc() || end != port.data() + port.size() || value > 65535) {
      return InvalidArgument("bad port '" + std::string(port) + "'");
    }
    endpoint.port = static_cast<uint16_t>(value);
  }
  return endpoint;
}

bool IsUrl(std::string_view text) { return text.starts_with("lockstep://"); }

Result<Endpoint> ParseUrl(std::string_view url) {
  if (!IsUrl(url)) return InvalidArgument("'" + std::string(url) + "' is not a lockstep:// URL");
  std::string_view rest = url.substr(11);
  if (rest.ends_with("/")) rest.remove_suffix(1);
  return ParseEndpoint(rest);
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace lockstep::net
