#include "app/runtime.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <sys/resource.h>
#include <fstream>
#include <thread>

#include "common/encoding.hpp"
#include "common/log.hpp"

namespace e2ee::app {

std::optional<std::string> configure_logging(const CommandLine& cli) {
  log::Level level = log::Level::info;
  log::Format format = log::Format::text;
  if (auto v = cli.value("--log-level"); v && !log::parse_level(*v, level))
    return "invalid --log-level '" + *v + "' (error, warn, info, debug, trace)";
  if (auto v = cli.value("--log-format"); v && !log::parse_format(*v, format))
    return "invalid --log-format '" + *v + "' (text, json)";
  log::configure(level, format);
  return std::nullopt;
}

struct ShutdownSignals::Impl {
  Impl(boost::asio::io_context& ioc, std::function<void()> on_signal) : signals(ioc, SIGINT, SIGTERM), callback(std::move(on_signal)) {}
  void arm() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (++received > 1) {
        log::warn("second signal: exiting immediately");
        std::_Exit(1);
      }
      log::info("shutting down", {{"signal", signo}});
      callback();
      arm();
    });
  }
  boost::asio::signal_set signals;
  std::function<void()> callback;
  int received = 0;
};

ShutdownSignals::ShutdownSignals(boost::asio::io_context& ioc, std::function<void()> on_signal)
    : impl_(std::make_unique<Impl>(ioc, std::move(on_signal))) {
  impl_->arm();
}

ShutdownSignals::~ShutdownSignals() = default;

void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) log::warn("could not raise the open-file limit", {{"limit", std::to_string(limit.rlim_max)}});
}

void tune_allocator() {
  // Fixed values also switch off glibc's dynamic threshold adjustment (mallopt(3)).
  constexpr int kMmapBytes = 1 << 20;
  constexpr int kTrimBytes = 2 << 20;
  ::mallopt(M_MMAP_THRESHOLD, kMmapBytes);
  ::mallopt(M_TRIM_THRESHOLD, kTrimBytes);
}

void run_io(boost::asio::io_context& ioc, unsigned threads) {
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
}

std::string certificate_fingerprint(const std::string& chain_pem) {
  BIO* bio = BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size()));
  if (bio == nullptr) return {};
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const bool ok = X509_digest(cert, EVP_sha256(), md, &len) == 1;
  X509_free(cert);
  return ok ? hex_encode(ByteView(md, len)) : std::string();
}

std::filesystem::path default_state_dir(const std::string& program) {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg != '\0')
    return std::filesystem::path(xdg) / program;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::filesystem::path(home) / ".local" / "state" / program;
  return std::filesystem::path("/var/lib") / program;
}

Result<ListenerTls> make_listener_tls(const CommandLine& cli, const std::filesystem::path& state_dir) {
  ListenerTls out;
  const auto cert = cli.value("--tls-cert");
  const auto key = cli.value("--tls-key");
  if (cert || key) {
    if (!cert || !key) return make_error(Errc::invalid_argument, "--tls-cert and --tls-key (TLS_CERT, TLS_KEY) go together");
    auto ctx = http::TlsServerContext::from_files(*cert, *key, cli.value("--tls-ca").value_or(""));
    if (!ctx) return std::move(ctx).error();
    std::ifstream in(*cert);
    std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    out.context = std::move(*ctx);
    out.mode = "custom";
    out.fingerprint = certificate_fingerprint(pem);
    return out;
  }
  const std::string domain = cli.value("--tls-domain").value_or("localhost");
  Result<http::PemCertificate> pem = make_error(Errc::internal, "unset");
  if (cli.has("--tls-self-signed")) {
    pem = http::generate_self_signed(domain);
    if (!pem) return std::move(pem).error();
    // Only the certificate is written, so a client can be told to trust it; the key stays in memory.
    std::error_code ec;
    std::filesystem::create_directories(state_dir / "tls", ec);
    out.certificate_file = state_dir / "tls" / "ephemeral-cert.pem";
    std::ofstream(out.certificate_file) << pem->certificate_chain_pem;
    out.mode = "self-signed (new on every start)";
  } else {
    pem = http::load_or_create_self_signed(state_dir, domain);
    if (!pem) return std::move(pem).error();
    out.certificate_file = state_dir / "tls" / "cert.pem";
    out.mode = "self-signed (kept in " + (state_dir / "tls").string() + ")";
  }
  auto ctx = http::TlsServerContext::from_pem(*pem);
  if (!ctx) return std::move(ctx).error();
  out.context = std::move(*ctx);
  out.fingerprint = certificate_fingerprint(pem->certificate_chain_pem);
  return out;
}

}  // namespace e2ee::app
