#include "http/url.hpp"

#include <charconv>

namespace e2ee::http {

namespace {

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Error bad(std::string_view text, std::string_view why) {
  return make_error(Errc::invalid_argument, "invalid URL '" + std::string(text) + "': " + std::string(why));
}

// The host as it appears in an authority: IPv6 literals need their brackets back.
std::string authority_host(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

Result<Url> Url::parse(std::string_view text) {
  Url url;
  std::string_view rest;
  if (starts_with_icase(text, "https://")) {
    url.tls = true;
    rest = text.substr(8);
  } else if (starts_with_icase(text, "http://")) {
    rest = text.substr(7);
  } else {
    return bad(text, "expected http:// or https://");
  }

  const std::size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view path = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return bad(text, "user information is not supported");

  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad(text, "unterminated IPv6 literal");
    const std::string_view literal = authority.substr(1, close - 1);
    if (literal.empty()) return bad(text, "empty host");
    for (char c : literal) {
      if (!is_hex(c) && c != ':' && c != '.') return bad(text, "bad character in IPv6 literal");
    }
    url.host = lower(literal);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(text, "unexpected text after IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return bad(text, "empty port");
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad(text, "empty port");
    }
    if (host.empty()) return bad(text, "empty host");
    for (char c : host) {
      if (!is_alnum(c) && c != '-' && c != '.' && c != '_') return bad(text, "bad character in host name");
    }
    url.host = lower(host);
  }

  if (port_text.empty()) {
    url.port = url.tls ? 443 : 80;
  } else {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
      return bad(text, "port must be a number from 0 to 65535");
    }
    url.port = static_cast<std::uint16_t>(value);
  }

  if (path.find_first_of("?#") != std::string_view::npos) return bad(text, "query and fragment are not supported");
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return bad(text, "control character or space in path");
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.base_path = std::string(path);
  return url;
}

std::string Url::origin() const {
  std::string out = tls ? "https://" : "http://";
  out += host_header();
  return out;
}

std::string Url::host_header() const {
  std::string out = authority_host(host);
  if (port != (tls ? 443 : 80)) out += ":" + std::to_string(port);
  return out;
}

std::string Url::target(std::string_view path) const {
  std::string out = base_path;
  out += path;
  if (out.empty()) out = "/";
  return out;
}

}  // namespace e2ee::http
