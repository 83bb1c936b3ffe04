#include "proxy/field/tdx_quote.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "common/encoding.hpp"

namespace e2ee::proxy::field {
namespace {

std::uint16_t u16le(ByteView b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8));
}
std::uint32_t u32le(ByteView b, std::size_t at) {
  return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
         (static_cast<std::uint32_t>(b[at + 2]) << 16) | (static_cast<std::uint32_t>(b[at + 3]) << 24);
}

bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

// Offsets inside the TD report body (TDX module ABI, TDREPORT's TD info part).
constexpr std::size_t kTdAttributes = 120;
constexpr std::size_t kMrTd = 136;
constexpr std::size_t kReportData = 520;
constexpr std::size_t kTdReport10Bytes = 584;  // TD report 1.0; 1.5 appends fields after REPORTDATA

}  // namespace

Result<Bytes> decode_quote_text(std::string_view text) {
  std::string_view value = text;
  if (value.size() >= 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X')) value.remove_prefix(2);
  if (value.empty()) return make_error(Errc::malformed, "the TDX quote is empty");
  if (value.size() % 2 == 0 && all_hex(value)) {
    if (auto bytes = hex_decode(value)) return std::move(*bytes);
  }
  if (auto bytes = base64_decode(value)) return std::move(*bytes);
  if (auto bytes = base64url_decode(value)) return std::move(*bytes);
  return make_error(Errc::malformed, "the TDX quote is neither hex nor base64");
}

Result<TdxQuote> parse_tdx_quote(ByteView quote) {
  if (quote.size() < kMinTdxQuoteBytes)
    return make_error(Errc::malformed, "the TDX quote is too short: " + std::to_string(quote.size()) + " bytes (at least " +
                                           std::to_string(kMinTdxQuoteBytes) + " expected)");
  TdxQuote q;
  q.version = u16le(quote, 0);
  q.attestation_key_type = u16le(quote, 2);
  q.tee_type = u32le(quote, 4);
  if (q.tee_type != kTdxTeeType) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%x", static_cast<unsigned>(q.tee_type));
    return make_error(Errc::malformed, std::string("the quote is not a TDX quote (TEE type ") + buf + ", expected 0x81)");
  }
  std::size_t body = kQuoteHeaderBytes;
  if (q.version == 5) {
    // Version 5 puts a descriptor (type u16, size u32) before the report; types 2 and 3 are the
    // TD reports 1.0 and 1.5, which share the offsets used here.
    const std::uint16_t body_type = u16le(quote, kQuoteHeaderBytes);
    const std::uint32_t body_size = u32le(quote, kQuoteHeaderBytes + 2);
    if (body_type != 2 && body_type != 3)
      return make_error(Errc::malformed, "the version 5 quote does not carry a TD report (body type " + std::to_string(body_type) + ")");
    body += 6;
    if (body_size < kTdReport10Bytes || quote.size() < body + kTdReport10Bytes)
      return make_error(Errc::malformed, "the version 5 TDX quote is too short for its TD report");
  } else if (q.version != 4) {
    return make_error(Errc::malformed, "unsupported quote version " + std::to_string(q.version) + " (4 and 5 are known)");
  }
  const auto copy = [&](auto& out, std::size_t at) { std::copy_n(quote.begin() + static_cast<std::ptrdiff_t>(body + at), out.size(), out.begin()); };
  copy(q.td_attributes, kTdAttributes);
  copy(q.mr_td, kMrTd);
  copy(q.report_data, kReportData);
  return q;
}

}  // namespace e2ee::proxy::field
