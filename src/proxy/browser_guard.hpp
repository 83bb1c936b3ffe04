#pragma once
// What a web browser may do with the local proxy. The proxy listens on the user's machine and may
// hold their API key, so two browser attacks matter:
//  - DNS rebinding: a page on evil.example re-points its own name at 127.0.0.1 and calls the
//    proxy as a same-origin request; the browser then sends `Host: evil.example`. Only names the
//    user chose (and IP literals, which a rebinding page cannot use as its origin) are answered.
//  - CORS: a grant lets any page read answers. `*` is given only when no key is stored (a page
//    must then bring the user's key itself) or when the user lists origins explicitly.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2ee::proxy {

struct BrowserPolicy {
  // Host names answered besides IP literals, `localhost` and `*.localhost` (--allowed-host;
  // the listen host and TLS domain are added by the caller). "*" turns the check off.
  std::vector<std::string> allowed_hosts;
  // Origins granted CORS (--cors-origin): exact `scheme://host[:port]`, or "*". Empty: `*` when
  // no API key is stored, otherwise no grant.
  std::vector<std::string> cors_origins;
  bool key_stored = false;
};

// True when a request with this Host header may be served. A missing Host (HTTP/1.0 clients,
// never a browser) is allowed.
bool host_allowed(const BrowserPolicy& policy, std::optional<std::string_view> host_header);

// The Access-Control-Allow-Origin value for a request from `origin` (the Origin header), or
// nullopt for no grant. An echoed origin needs `Vary: Origin` on the response.
std::optional<std::string> cors_grant(const BrowserPolicy& policy, std::optional<std::string_view> origin);

// "a, b,c" → {"a", "b", "c"}, lower-cased, empty items dropped (for lists given in one value).
std::vector<std::string> split_list(std::string_view text);

}  // namespace e2ee::proxy
