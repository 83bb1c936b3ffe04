#pragma once
// Absolute http(s) URLs as used in configuration (--upstream, --backend, --listen).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace e2ee::http {

struct Url {
  bool tls = false;          // https
  std::string host;          // name or IP literal, without brackets
  std::uint16_t port = 0;    // explicit, or 80 / 443 by scheme
  std::string base_path;     // path prefix without a trailing slash ("" for the root)

  // "https://api.chutes.ai" → {tls, "api.chutes.ai", 443, ""}. Only http and https; no userinfo,
  // query or fragment.
  static Result<Url> parse(std::string_view text);

  // scheme://host[:port]
  std::string origin() const;
  // Host header value: host, plus :port when it is not the scheme's default.
  std::string host_header() const;
  // base_path + path (path starts with '/').
  std::string target(std::string_view path) const;
};

}  // namespace e2ee::http
