// Lowercase RFC 4648 base32 without padding: how node ids and tokens are written.
#pragma once

#include <string>
#include <string_view>

namespace lockstep::base {

std::string Base32(std::string_view bytes);

}  // namespace lockstep::base
