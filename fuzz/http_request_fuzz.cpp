// The parts of request handling we own beyond Beast's parser (src/http/headers.cpp, url.cpp,
// src/proxy/browser_guard.cpp): header lists, the wire checks every head we write passes,
// Connection-style token lists, URL parsing (--upstream, --backend, --listen), and the proxy's
// DNS-rebinding (Host) and CORS (Origin) decisions.
//
// Input: line 1 is a URL, and also a comma-separated list (split_list) of allowed hosts and CORS
// origins; every further line is a header field "name:value" (split at the first ':'), whose
// value is also tried as a Host and as an Origin. Checks:
//   Url::parse   a parsed URL is normalised (lower-case host, no trailing '/', default port by
//                scheme) and origin() + base_path parses back to the same URL
//   Headers      get() is the first field of that name in any case; set() leaves exactly one field
//                at the first one's place and the others in order; remove() leaves none
//   wire         append_fields() succeeds exactly when every field is a token name and a value
//                without CR/LF/NUL, and its output reads back as the same fields
//   list         list_contains() finds each element of a list, in any case, and a list split at
//                a comma contains a token exactly when one of its halves does
//   Host         with no names configured only IP literals (by inet_pton; IPv6 in brackets, with
//                an optional zone) and localhost names pass; the answer ignores case; a listed
//                name passes with any port; "*" and a missing Host pass
//   Origin       without a list: "*" unless a key is stored, then nothing; with a list: "*" only
//                if listed, else the request's own Origin and only when it is listed

#include <arpa/inet.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "http/headers.hpp"
#include "http/url.hpp"
#include "http/wire.hpp"
#include "proxy/browser_guard.hpp"

namespace {

namespace http = e2ee::http;
using Field = http::Headers::Field;

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void check_url(std::string_view text) {
  const auto url = http::Url::parse(text);
  if (!url) {
    FUZZ_CHECK(!url.error().message.empty());
    return;
  }
  FUZZ_CHECK(!url->host.empty());
  FUZZ_CHECK(std::none_of(url->host.begin(), url->host.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  FUZZ_CHECK(url->base_path.empty() || (url->base_path.front() == '/' && url->base_path.back() != '/'));
  if (text.find_first_of(':', text.find("://") + 3) == std::string_view::npos)
    FUZZ_CHECK(url->port == (url->tls ? 443 : 80));
  FUZZ_CHECK(url->target("/v1/x") == url->base_path + "/v1/x");
  FUZZ_CHECK(url->target("") == (url->base_path.empty() ? "/" : url->base_path));

  const std::string again = url->origin() + url->base_path;
  const auto back = http::Url::parse(again);
  FUZZ_CHECK_MSG(back.has_value(), again);
  FUZZ_CHECK_MSG(back->tls == url->tls && back->host == url->host && back->port == url->port &&
                     back->base_path == url->base_path && back->origin() == url->origin(),
                 again);
}

// RFC 9110 delimiters and anything outside visible ASCII: never in a token.
bool token_char_possible(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f && std::string_view("\"(),/:;<=>?@[\\]{}").find(c) == std::string_view::npos;
}

std::vector<Field> others(const std::vector<Field>& fields, std::string_view name) {
  std::vector<Field> out;
  for (const auto& f : fields) {
    if (!http::iequals(f.first, name)) out.push_back(f);
  }
  return out;
}

void check_headers(const http::Headers& h) {
  const auto& fields = h.fields();
  for (std::size_t i = 0; i < fields.size() && i < 16; ++i) {
    const std::string& name = fields[i].first;
    FUZZ_CHECK(http::iequals(name, upper(name)) && http::iequals(upper(name), name));

    // get: the first field with that name, in any case
    const auto first = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return http::iequals(f.first, name); });
    const auto got = h.get(upper(name));
    FUZZ_CHECK(got.has_value() && *got == first->second);

    // set: one field, where the first one was; the others untouched and in order
    http::Headers set = h;
    set.set(name, "fuzz-value");
    const auto at = static_cast<std::size_t>(first - fields.begin());
    FUZZ_CHECK(set.fields().size() == others(fields, name).size() + 1);
    FUZZ_CHECK(set.fields()[at].second == "fuzz-value" && set.fields()[at].first == first->first);
    FUZZ_CHECK(others(set.fields(), name) == others(fields, name));

    // remove: none left, the others untouched
    http::Headers removed = h;
    removed.remove(upper(name));
    FUZZ_CHECK(!removed.has(name));
    FUZZ_CHECK(removed.fields() == others(fields, name));
  }

  // append_fields: all or nothing by the wire rules, and the output reads back
  std::string out;
  const bool ok = http::wire::append_fields(out, h, {"Content-Length", "Connection"});
  std::vector<Field> expected;
  bool all_valid = true;
  for (const auto& [name, value] : fields) {
    if (http::iequals(name, "content-length") || http::iequals(name, "connection")) continue;
    const bool token = http::wire::is_token(name);
    if (token) FUZZ_CHECK(std::all_of(name.begin(), name.end(), token_char_possible));
    all_valid = all_valid && token && http::wire::is_field_value(value);
    expected.emplace_back(name, value);
  }
  FUZZ_CHECK(ok == all_valid);
  if (!ok) return;
  std::vector<Field> read;
  std::string_view rest = out;
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    FUZZ_CHECK(end != std::string_view::npos);
    const std::string_view line = rest.substr(0, end);
    const auto sep = line.find(": ");
    FUZZ_CHECK(sep != std::string_view::npos);
    read.emplace_back(std::string(line.substr(0, sep)), std::string(line.substr(sep + 2)));
    rest.remove_prefix(end + 2);
  }
  FUZZ_CHECK(read == expected);
}

void check_list(std::string_view list, std::string_view token) {
  namespace wire = http::wire;
  const std::string_view first = trim_ows(list.substr(0, list.find(',')));
  if (!list.empty()) {
    FUZZ_CHECK(wire::list_contains(list, first));
    FUZZ_CHECK(wire::list_contains(upper(list), first));
  }
  const bool found = wire::list_contains(list, token);
  FUZZ_CHECK(wire::list_contains(list, upper(token)) == found);
  // (For a non-empty token: "" is a list of no elements, while the "" before a comma is one.)
  if (const auto comma = list.find(','); comma != std::string_view::npos && !token.empty()) {
    FUZZ_CHECK(found == (wire::list_contains(list.substr(0, comma), token) ||
                         wire::list_contains(list.substr(comma + 1), token)));
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// An address literal by the C library's reading (IPv6 may carry a zone: "fe80::1%eth0").
bool address_literal(const std::string& host) {
  unsigned char buf[16];
  const std::string v6 = host.substr(0, host.find('%'));
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, v6.c_str(), buf) == 1;
}

// What a Host header names, independently of the guard: brackets off an IPv6 literal, the port
// off anything else, lower case, one trailing dot off.
std::string named_host(std::string_view value) {
  value = trim_ows(value);
  std::string_view host = value;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') == std::string_view::npos ? 0 : host.find(']') - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string out = lower(host);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

void check_host(std::string_view value, const std::vector<std::string>& listed) {
  namespace proxy = e2ee::proxy;
  const proxy::BrowserPolicy none;
  const bool allowed = proxy::host_allowed(none, value);
  FUZZ_CHECK(proxy::host_allowed(none, upper(value)) == allowed);
  if (allowed) {
    const std::string host = named_host(value);
    const bool bracketed = !trim_ows(value).empty() && trim_ows(value).front() == '[';
    FUZZ_CHECK_MSG(host == "localhost" || host.ends_with(".localhost") ||
                       (address_literal(host) && (bracketed || host.find(':') == std::string::npos)),
                   value);
  }
  proxy::BrowserPolicy star;
  star.allowed_hosts = {"*"};
  FUZZ_CHECK(proxy::host_allowed(star, value) && proxy::host_allowed(none, std::nullopt));

  proxy::BrowserPolicy names;
  names.allowed_hosts = listed;
  FUZZ_CHECK(!allowed || proxy::host_allowed(names, value));  // listing names only adds
  for (const auto& name : listed) {
    const bool plain = !name.empty() && name.find_first_of(":[]/ \t") == std::string::npos && name.back() != '.';
    if (plain) FUZZ_CHECK_MSG(proxy::host_allowed(names, upper(name) + ":8443"), name);
  }
}

void check_origin(std::string_view origin, const std::vector<std::string>& listed) {
  namespace proxy = e2ee::proxy;
  proxy::BrowserPolicy open;
  FUZZ_CHECK(proxy::cors_grant(open, origin) == std::optional<std::string>("*"));
  proxy::BrowserPolicy keyed;
  keyed.key_stored = true;
  FUZZ_CHECK(!proxy::cors_grant(keyed, origin));
  keyed.cors_origins = listed;
  const auto grant = proxy::cors_grant(keyed, origin);
  const bool star = std::find(listed.begin(), listed.end(), "*") != listed.end();
  if (listed.empty() || !grant) return;
  if (star) {
    FUZZ_CHECK(*grant == "*");
    return;
  }
  FUZZ_CHECK(*grant == origin);
  std::string wanted = lower(origin);
  while (!wanted.empty() && wanted.back() == '/') wanted.pop_back();
  FUZZ_CHECK_MSG(std::find(listed.begin(), listed.end(), wanted) != listed.end(), std::string(origin));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto lines = e2ee::fuzz::lines_of(e2ee::fuzz::text_of(data, size));
  if (lines.empty()) return 0;
  check_url(lines.front());
  const auto listed = e2ee::proxy::split_list(lines.front());
  for (const auto& item : listed) FUZZ_CHECK(!item.empty() && item == lower(item));

  http::Headers headers;
  for (std::size_t i = 1; i < lines.size() && i <= 64; ++i) {
    const auto colon = lines[i].find(':');
    const std::string_view name = lines[i].substr(0, colon);
    const std::string_view value = colon == std::string_view::npos ? std::string_view{} : lines[i].substr(colon + 1);
    headers.add(name, value);
    check_list(value, trim_ows(name));
    if (i <= 8) {
      check_host(value, listed);
      check_origin(value, listed);
    }
  }
  check_headers(headers);
  return 0;
}
