#pragma once
// The parts of an Intel TDX quote that a client can check without Intel's collateral: the header's
// TEE type, the TD's attributes (debug bit) and its REPORTDATA, which the enclave fills with what it
// wants bound to the hardware (here: the model key's identity and our nonce). Layout from
// venice-protocol.md §2.3 item 5 (Intel's DCAP quote format, versions 4 and 5).
//
// This is a parse, not a verification: the quote's signature chain (PCK certificates, QE identity,
// TCB level) is not checked here. What it buys is that a key whose quote does not carry our fresh
// nonce and the key's identity, or whose TD runs in debug mode, is refused.

#include <array>
#include <cstdint>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace e2ee::proxy::field {

inline constexpr std::uint32_t kTdxTeeType = 0x00000081;
inline constexpr std::size_t kQuoteHeaderBytes = 48;
// A version 4 quote must reach the end of REPORTDATA: 48 (header) + 520 + 64.
inline constexpr std::size_t kMinTdxQuoteBytes = 632;

struct TdxQuote {
  std::uint16_t version = 0;
  std::uint16_t attestation_key_type = 0;
  std::uint32_t tee_type = 0;
  std::array<std::uint8_t, 8> td_attributes{};
  std::array<std::uint8_t, 48> mr_td{};
  std::array<std::uint8_t, 64> report_data{};

  // TDATTRIBUTES.DEBUG (bit 0): the host can read and change the TD's memory.
  bool debug() const noexcept { return (td_attributes[0] & 0x01) != 0; }
};

// The quote's bytes from its text form, as venice-e2ee 0.5.3 decodes it (Venice documents base64
// but sends hex): an optional "0x", then even-length all-hex means hex; anything else must be
// base64 or base64url, padding optional.
Result<Bytes> decode_quote_text(std::string_view text);

// Parses the header and TD report body. Refused: shorter than the layout needs, a version other
// than 4 or 5 (5 adds a 6-byte body descriptor before the TD report), a TEE type other than TDX.
// The debug bit is reported, not refused: the caller decides (and does refuse).
Result<TdxQuote> parse_tdx_quote(ByteView quote);

}  // namespace e2ee::proxy::field
