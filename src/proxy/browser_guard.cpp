#include "proxy/browser_guard.hpp"

#include <algorithm>
#include <cctype>

#include <boost/asio/ip/address.hpp>

namespace e2ee::proxy {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// The host part of a Host header: "[::1]:8443" → "::1", "Name.local:80" → "name.local",
// "example." → "example". Empty when malformed.
std::string host_part(std::string_view header) {
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  std::string_view host = header;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return {};
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return {};
    host = host.substr(1, close - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    if (host.find(':') != colon) return {};  // an unbracketed IPv6 address is not a valid Host
    host = host.substr(0, colon);
  }
  std::string out = lower(host);
  if (!out.empty() && out.back() == '.') out.pop_back();  // "localhost." names the same host
  return out;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

bool host_allowed(const BrowserPolicy& policy, std::optional<std::string_view> host_header) {
  if (!host_header) return true;
  if (contains(policy.allowed_hosts, "*")) return true;
  const std::string host = host_part(*host_header);
  if (host.empty()) return false;
  if (is_ip_literal(host)) return true;
  if (host == "localhost" || ends_with(host, ".localhost")) return true;
  return contains(policy.allowed_hosts, host);
}

std::optional<std::string> cors_grant(const BrowserPolicy& policy, std::optional<std::string_view> origin) {
  if (policy.cors_origins.empty()) {
    if (policy.key_stored) return std::nullopt;
    return std::string("*");
  }
  if (contains(policy.cors_origins, "*")) return std::string("*");
  if (!origin) return std::nullopt;
  std::string wanted = lower(*origin);
  while (!wanted.empty() && wanted.back() == '/') wanted.pop_back();
  if (contains(policy.cors_origins, wanted)) return std::string(*origin);
  return std::nullopt;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    while (!item.empty() && item.back() == '/') item.remove_suffix(1);
    if (!item.empty()) out.push_back(lower(item));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace e2ee::proxy
