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
  boost::asio::ssl::context& native() noexcept;

 private:
  TlsServerContext();
  std::unique_ptr<boost::asio::ssl::context> ctx_;
};

// A fresh self-signed certificate (ECDSA P-256, SHA-256, valid 365 days) with CN = `domain` and
// subjectAltName DNS:<domain>, DNS:localhost, IP:127.0.0.1 (the reference proxy's SANs).
Result<PemCertificate> generate_self_signed(const std::string& domain);

// Loads <dir>/tls/cert.pem + key.pem when present (and the key file is 0600), else generates and
// stores them (key written 0600) so that the trust a user granted survives restarts.
Result<PemCertificate> load_or_create_self_signed(const std::filesystem::path& state_dir, const std::string& domain);

// The upstream (client) side: verification against the system store, plus extra CA files
// (--upstream-ca, SSL_CERT_FILE), with hostname verification and SNI done per connection.
struct TlsClientOptions {
  std::vector<std::filesystem::path> extra_ca_files;
  bool verify = true;  // tests only; never exposed as a flag
};

class TlsClientContext {
 public:
  static Result<std::shared_ptr<TlsClientContext>> create(const TlsClientOptions& options);
  ~TlsClientContext();
  boost::asio::ssl::context& native() noexcept;

 private:
  TlsClientContext();
  std::unique_ptr<boost::asio::ssl::context> ctx_;
};

}  // namespace e2ee::http
