#include "gateway/tee_quote.hpp"

#include <fstream>
#include <mutex>
#include <thread>

#include "crypto/random.hpp"
#include "common/encoding.hpp"

namespace e2ee::gateway {

namespace fs = std::filesystem;

QuoteSource::QuoteSource(fs::path tsm_dir) : report_dir_(std::move(tsm_dir) / "report") {}

bool QuoteSource::available() const {
  std::error_code ec;
  return fs::is_directory(report_dir_, ec);
}

Result<Bytes> QuoteSource::quote(const std::array<std::uint8_t, 64>& report_data) const {
  if (!available())
    return make_error(Errc::unavailable, "no TEE quote interface (" + report_dir_.string() + " is absent): not running in a TDX guest");
  // One entry per request, removed afterwards; a random name keeps concurrent requests apart.
  std::uint8_t rnd[8];
  crypto::random_bytes(rnd);
  const fs::path entry = report_dir_ / ("e2ee-" + hex_encode(rnd));
  std::error_code ec;
  if (!fs::create_directory(entry, ec)) return make_error(Errc::unavailable, "cannot create " + entry.string() + ": " + ec.message());
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove(path, ignored);  // configfs entries are removed with rmdir
    }
  } cleanup{entry};
  {
    std::ofstream in(entry / "inblob", std::ios::binary);
    in.write(reinterpret_cast<const char*>(report_data.data()), static_cast<std::streamsize>(report_data.size()));
    if (!in) return make_error(Errc::unavailable, "cannot write the report data to " + (entry / "inblob").string());
  }
  if (std::ifstream p(entry / "provider"); p) std::getline(p, provider_);
  // The kernel produces the quote when outblob is read. Allow a moment for implementations that
  // fill it asynchronously.
  for (int attempt = 0; attempt < 40; ++attempt) {
    std::ifstream out(entry / "outblob", std::ios::binary);
    Bytes quote((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
    if (!quote.empty()) return quote;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return make_error(Errc::unavailable, "the TEE produced no quote in " + (entry / "outblob").string());
}

}  // namespace e2ee::gateway
