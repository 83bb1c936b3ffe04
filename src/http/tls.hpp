#pragma once
// TLS contexts for listeners and for the upstream client, and certificate generation for the
// self-signed modes. OpenSSL stays behind this header.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace boost::asio::ssl {
class context;
}

namespace e2ee::http {

struct PemCertificate {
  std::string certificate_chain_pem;  // leaf first
  std::string private_key_pem;
};

// A server-side TLS context: TLS 1.2+, modern ciphers, the given chain and key.
class TlsServerContext {
 public:
  static Result<std::shared_ptr<TlsServerContext>> from_pem(const PemCertificate& pem);
  // TLS_CERT + TLS_KEY (+ TLS_CA appended to the chain), as the reference proxy's custom mode.
  static Result<std::shared_ptr<TlsServerContext>> from_files(const std::filesystem::path& cert,
                                                              const std::filesystem::path& key,
                                                              const std::filesystem::path& ca = {});
  ~TlsServerContext();
  // Const because an SSL_CTX is only read once configured: OpenSSL creates connections from a
  // shared context concurrently, and listeners hold the context as shared_ptr<const>.
  boost::asio::ssl::context& native() const noexcept;

 private:
  TlsServerContext();
  std::unique_ptr<boost::asio::ssl::context> ctx_;
};

// A fresh self-signed certificate (ECDSA P-256, SHA-256, valid 365 days) with CN = `domain` and
// subjectAltName DNS:<domain>, DNS:localhost, IP:127.0.0.1 (the reference proxy's SANs).
Result<PemCertificate> generate_self_signed(const std::string& domain);

// Loads <state_dir>/tls/cert.pem + key.pem when present, else generates and stores them (key
// written 0600) so that the trust a user granted survives restarts. An existing key file that
// group or others can access, or that another user owns, is refused with an error (never used,
// never overwritten). A stored pair that does not parse, does not match, has expired, or was made
// for another domain is replaced by a new one.
Result<PemCertificate> load_or_create_self_signed(const std::filesystem::path& state_dir, const std::string& domain);

// The upstream (client) side: verification against the system store, plus extra CA files
// (--upstream-ca), with hostname verification and SNI done per connection. SSL_CERT_FILE and
// SSL_CERT_DIR, when set, replace the system file and directory (OpenSSL reads them itself).
struct TlsClientOptions {
  std::vector<std::filesystem::path> extra_ca_files;
  bool verify = true;  // tests only; never exposed as a flag
};

class TlsClientContext {
 public:
  static Result<std::shared_ptr<TlsClientContext>> create(const TlsClientOptions& options);
  ~TlsClientContext();
  boost::asio::ssl::context& native() const noexcept;

 private:
  TlsClientContext();
  std::unique_ptr<boost::asio::ssl::context> ctx_;
};

}  // namespace e2ee::http
