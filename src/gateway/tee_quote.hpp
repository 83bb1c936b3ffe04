#pragma once
// TDX quotes from the Linux configfs-tsm interface (Documentation/ABI/testing/configfs-tsm):
// create <tsm>/report/<entry>, write the 64-byte report data to `inblob`, read the signed quote
// from `outblob`, remove the entry. Outside a TEE the interface is absent and the report says so
// plainly instead of pretending.

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace e2ee::gateway {

class QuoteSource {
 public:
  // `tsm_dir` is normally /sys/kernel/config/tsm (tests point it elsewhere).
  explicit QuoteSource(std::filesystem::path tsm_dir = "/sys/kernel/config/tsm");

  // Whether a TSM report interface exists here.
  bool available() const;
  // A quote over `report_data`. Errc::unavailable outside a TEE; other errors name the step.
  Result<Bytes> quote(const std::array<std::uint8_t, 64>& report_data) const;
  // "tdx_guest" etc. from <tsm>/report/<entry>/provider, when available.
  std::string provider() const { return provider_; }

 private:
  std::filesystem::path report_dir_;
  mutable std::string provider_;
};

}  // namespace e2ee::gateway
