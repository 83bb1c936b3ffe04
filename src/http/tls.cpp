#include "http/tls.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace e2ee::http {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 keeps OpenSSL's defaults,
// which are all AEAD. This is the modern reading of the reference proxy's "HIGH:!aNULL:!MD5".
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr long kValidityDays = 365;

struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct PkeyCtxFree { void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); } };
struct ExtFree { void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); } };
struct BnFree { void operator()(BIGNUM* p) const { BN_free(p); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The most specific reason OpenSSL queued, then an empty queue so that the next call starts clean.
std::string openssl_reason() {
  unsigned long code = 0;
  unsigned long last = 0;
  while ((code = ERR_get_error()) != 0) last = code;
  if (last == 0) return "unknown OpenSSL error";
  char buffer[256];
  ERR_error_string_n(last, buffer, sizeof buffer);
  return buffer;
}

Error tls_error(Errc code, const std::string& what) {
  return make_error(code, what + ": " + openssl_reason());
}

// Encrypted keys are not supported: without this callback OpenSSL would prompt on the terminal.
int refuse_password(char*, int, int, void*) { return -1; }

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Result<std::string> read_file(const std::filesystem::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(Errc::invalid_argument,
                      std::string("cannot read ") + what + " " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_ip_literal(const std::string& text) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 || inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

// Host names only: anything else (',' in particular) would be read as syntax by the extension
// parser when the name is spliced into the subjectAltName text.
bool is_plausible_domain(const std::string& domain) {
  if (domain.empty() || domain.size() > 253) return false;
  if (is_ip_literal(domain)) return true;
  for (char c : domain) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Status add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) return tls_error(Errc::internal, "adding certificate extension");
  return {};
}

PkeyPtr generate_p256_key() {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") != 1) return nullptr;
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &key) != 1) return nullptr;
  return PkeyPtr(key);
}

// Does the stored certificate still serve `domain`: parses, matches the key, names the domain in
// both CN and subjectAltName, and has not expired?
bool certificate_fits(const PemCertificate& pem, const std::string& domain) {
  auto cert_bio = memory_bio(pem.certificate_chain_pem);
  auto key_bio = memory_bio(pem.private_key_pem);
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, refuse_password, nullptr));
  bool fits = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
  if (fits) {
    const int san_match = is_ip_literal(domain) ? X509_check_ip_asc(cert.get(), domain.c_str(), 0)
                                                : X509_check_host(cert.get(), domain.data(), domain.size(), 0, nullptr);
    fits = san_match == 1;
  }
  if (fits) {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    const ASN1_STRING* cn = index < 0 ? nullptr : X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    fits = cn && std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                                  static_cast<std::size_t>(ASN1_STRING_length(cn))) == domain;
  }
  if (fits) fits = X509_cmp_current_time(X509_get0_notAfter(cert.get())) > 0;
  ERR_clear_error();
  return fits;
}

// Writes through a fresh temporary file and renames it into place, so that a crash never leaves a
// half-written key, and the key file is born with its final mode (O_EXCL: never a file someone
// else prepared).
Status write_file_atomically(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  const std::string temporary = path.string() + ".tmp";
  if (::unlink(temporary.c_str()) != 0 && errno != ENOENT) {
    return make_error(Errc::unavailable, "cannot remove " + temporary + ": " + std::strerror(errno));
  }
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return make_error(Errc::unavailable, "cannot create " + temporary + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t written = 0;
  while (ok && written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ok = (::close(fd) == 0) && ok;
  if (ok && ::rename(temporary.c_str(), path.c_str()) == 0) return {};
  const std::string reason = std::strerror(ok ? errno : saved_errno);
  ::unlink(temporary.c_str());
  return make_error(Errc::unavailable, "cannot write " + path.string() + ": " + reason);
}

std::string octal_mode(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "%04o", static_cast<unsigned>(mode & 07777));
  return buffer;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server context

TlsServerContext::TlsServerContext() = default;
TlsServerContext::~TlsServerContext() = default;
ssl::context& TlsServerContext::native() const noexcept { return *ctx_; }

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::from_pem(const PemCertificate& pem) {
  std::shared_ptr<TlsServerContext> result(new TlsServerContext());
  try {
    result->ctx_ = std::make_unique<ssl::context>(ssl::context::tls_server);
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("creating TLS server context: ") + e.what());
  }
  SSL_CTX* ctx = result->ctx_->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // No compression (CRIME), no renegotiation (a client-driven CPU cost), and our cipher order.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) return tls_error(Errc::internal, "setting TLS ciphers");
  SSL_CTX_set_default_passwd_cb(ctx, refuse_password);

  auto chain = memory_bio(pem.certificate_chain_pem);
  X509Ptr leaf(PEM_read_bio_X509(chain.get(), nullptr, refuse_password, nullptr));
  if (!leaf) return tls_error(Errc::invalid_argument, "TLS certificate is not a PEM certificate");
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1) return tls_error(Errc::invalid_argument, "TLS certificate rejected");
  for (;;) {
    X509* extra = PEM_read_bio_X509(chain.get(), nullptr, refuse_password, nullptr);
    if (!extra) break;
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return tls_error(Errc::invalid_argument, "TLS chain certificate rejected");
    }
  }
  // The loop ends on "no more PEM blocks", which OpenSSL queues as an error; it is not one.
  ERR_clear_error();

  auto key_bio = memory_bio(pem.private_key_pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, refuse_password, nullptr));
  if (!key) {
    return tls_error(Errc::invalid_argument, "TLS private key is not an unencrypted PEM key");
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    return make_error(Errc::invalid_argument, "TLS private key does not match the certificate");
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return tls_error(Errc::invalid_argument, "TLS private key rejected");
  }
  return result;
}

Result<std::shared_ptr<TlsServerContext>> TlsServerContext::from_files(const std::filesystem::path& cert,
                                                                       const std::filesystem::path& key,
                                                                       const std::filesystem::path& ca) {
  auto cert_text = read_file(cert, "TLS certificate");
  if (!cert_text) return std::move(cert_text).error();
  auto key_text = read_file(key, "TLS key");
  if (!key_text) return std::move(key_text).error();
  PemCertificate pem{std::move(*cert_text), std::move(*key_text)};
  if (!ca.empty()) {
    auto ca_text = read_file(ca, "TLS CA");
    if (!ca_text) return std::move(ca_text).error();
    // Files without a final newline would glue two PEM blocks onto one line.
    if (!pem.certificate_chain_pem.empty() && pem.certificate_chain_pem.back() != '\n') pem.certificate_chain_pem += '\n';
    pem.certificate_chain_pem += *ca_text;
  }
  auto context = from_pem(pem);
  if (!context) {
    Error error = std::move(context).error();
    error.message += " (certificate " + cert.string() + ", key " + key.string() + ")";
    return error;
  }
  return context;
}

// ---------------------------------------------------------------------------------------------
// Certificates

Result<PemCertificate> generate_self_signed(const std::string& domain) {
  if (!is_plausible_domain(domain)) {
    return make_error(Errc::invalid_argument, "TLS domain '" + domain + "' is not a host name or IP address");
  }
  ERR_clear_error();
  PkeyPtr key = generate_p256_key();
  if (!key) return tls_error(Errc::internal, "generating P-256 key");
  X509Ptr cert(X509_new());
  if (!cert) return tls_error(Errc::internal, "allocating certificate");

  // 127-bit random serial: unique per certificate without state, positive as RFC 5280 requires.
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) return tls_error(Errc::internal, "random serial");
  serial_bytes[0] &= 0x7f;
  std::unique_ptr<BIGNUM, BnFree> serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  bool ok = serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr;
  ok = ok && X509_set_version(cert.get(), X509_VERSION_3) == 1;
  // Backdated a little so that a client whose clock is slightly behind still accepts it.
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -300) != nullptr;
  ok = ok && X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidityDays * 24 * 3600) != nullptr;
  X509_NAME* name = X509_get_subject_name(cert.get());
  ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(domain.c_str()), -1, -1, 0) == 1;
  ok = ok && X509_set_issuer_name(cert.get(), name) == 1;
  ok = ok && X509_set_pubkey(cert.get(), key.get()) == 1;
  if (!ok) return tls_error(Errc::internal, "building certificate");

  std::string san = is_ip_literal(domain) ? "IP:" + domain : "DNS:" + domain;
  if (domain != "localhost") san += ",DNS:localhost";
  if (domain != "127.0.0.1") san += ",IP:127.0.0.1";

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  // A leaf, not a CA: verifiers that forbid CA certificates as end entities accept it, and no
  // keyUsage extension, because OpenSSL treats a self-signed certificate whose keyUsage lacks
  // keyCertSign as not self-issued and then cannot use it as its own trust anchor.
  for (const auto& [nid, value] : {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:FALSE"},
                                   {NID_subject_key_identifier, "hash"},
                                   {NID_authority_key_identifier, "keyid:always"},
                                   {NID_ext_key_usage, "serverAuth"},
                                   {NID_subject_alt_name, san}}) {
    if (auto added = add_extension(cert.get(), &ctx, nid, value); !added) return std::move(added).error();
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return tls_error(Errc::internal, "signing certificate");

  BioPtr cert_out(BIO_new(BIO_s_mem()));
  BioPtr key_out(BIO_new(BIO_s_mem()));
  if (!cert_out || !key_out || PEM_write_bio_X509(cert_out.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return tls_error(Errc::internal, "encoding certificate");
  }
  return PemCertificate{bio_text(cert_out.get()), bio_text(key_out.get())};
}

Result<PemCertificate> load_or_create_self_signed(const std::filesystem::path& state_dir, const std::string& domain) {
  if (!is_plausible_domain(domain)) {
    return make_error(Errc::invalid_argument, "TLS domain '" + domain + "' is not a host name or IP address");
  }
  const std::filesystem::path dir = state_dir / "tls";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::unavailable, "cannot create " + dir.string() + ": " + ec.message());
  // The key lives here; keep the directory listing private too.
  ::chmod(dir.c_str(), 0700);
  const std::filesystem::path key_path = dir / "key.pem";
  const std::filesystem::path cert_path = dir / "cert.pem";

  // O_NOFOLLOW + fstat on the opened descriptor: the mode we check is the mode of the file we read.
  const int fd = ::open(key_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st {};
    const bool stat_ok = ::fstat(fd, &st) == 0;
    std::string key_text;
    if (stat_ok && S_ISREG(st.st_mode) && (st.st_mode & 077) == 0 && st.st_uid == ::geteuid()) {
      char buffer[4096];
      ssize_t n = 0;
      while ((n = ::read(fd, buffer, sizeof buffer)) > 0) key_text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!stat_ok || !S_ISREG(st.st_mode)) {
      return make_error(Errc::invalid_argument, "TLS key " + key_path.string() + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
      return make_error(Errc::invalid_argument,
                        "refusing to use TLS key " + key_path.string() + ": its mode is " + octal_mode(st.st_mode) +
                            ", so other users may read it; run 'chmod 600 " + key_path.string() +
                            "' (or delete it to generate a new certificate)");
    }
    if (st.st_uid != ::geteuid()) {
      return make_error(Errc::invalid_argument,
                        "refusing to use TLS key " + key_path.string() + ": it belongs to another user");
    }
    auto cert_text = read_file(cert_path, "TLS certificate");
    if (cert_text) {
      PemCertificate stored{std::move(*cert_text), std::move(key_text)};
      if (certificate_fits(stored, domain)) return stored;
    }
    // Missing, broken, expired or for another domain: fall through and replace the pair.
  } else if (errno != ENOENT) {
    return make_error(Errc::unavailable, "cannot open TLS key " + key_path.string() + ": " + std::strerror(errno));
  }

  auto fresh = generate_self_signed(domain);
  if (!fresh) return fresh;
  // Key first: a crash between the two renames leaves a pair that does not match, which the next
  // start detects and replaces.
  if (auto written = write_file_atomically(key_path, fresh->private_key_pem, 0600); !written) {
    return std::move(written).error();
  }
  if (auto written = write_file_atomically(cert_path, fresh->certificate_chain_pem, 0644); !written) {
    return std::move(written).error();
  }
  return fresh;
}

// ---------------------------------------------------------------------------------------------
// Client context

TlsClientContext::TlsClientContext() = default;
TlsClientContext::~TlsClientContext() = default;
ssl::context& TlsClientContext::native() const noexcept { return *ctx_; }

Result<std::shared_ptr<TlsClientContext>> TlsClientContext::create(const TlsClientOptions& options) {
  std::shared_ptr<TlsClientContext> result(new TlsClientContext());
  try {
    result->ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("creating TLS client context: ") + e.what());
  }
  SSL_CTX* ctx = result->ctx_->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Say "http/1.1" in ALPN so that a front end that could pick HTTP/2 does not.
  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  if (SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn) != 0) return tls_error(Errc::internal, "setting ALPN");

  if (!options.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return result;
  }
  // The system store. OpenSSL itself substitutes $SSL_CERT_FILE / $SSL_CERT_DIR when they are set.
  if (SSL_CTX_set_default_verify_paths(ctx) != 1) return tls_error(Errc::internal, "loading the system CA store");
  for (const auto& file : options.extra_ca_files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
      return make_error(Errc::invalid_argument, "CA file " + file.string() + " does not exist or is not a file");
    }
    if (SSL_CTX_load_verify_locations(ctx, file.c_str(), nullptr) != 1) {
      return tls_error(Errc::invalid_argument, "cannot load CA file " + file.string());
    }
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return result;
}

}  // namespace e2ee::http
