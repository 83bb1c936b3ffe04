#include "common/result.hpp"

namespace e2ee {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::invalid_length: return "invalid_length";
    case Errc::invalid_key: return "invalid_key";
    case Errc::authentication_failed: return "authentication_failed";
    case Errc::limit_exceeded: return "limit_exceeded";
    case Errc::malformed: return "malformed";
    case Errc::unavailable: return "unavailable";
    case Errc::not_answered: return "not_answered";
    case Errc::timeout: return "timeout";
    case Errc::cancelled: return "cancelled";
    case Errc::protocol: return "protocol";
    case Errc::internal: return "internal";
  }
  return "unknown";
}

}  // namespace e2ee
