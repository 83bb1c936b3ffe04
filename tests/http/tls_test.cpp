#include "http/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <fstream>
#include <random>

namespace e2ee::http {
namespace {

namespace fs = std::filesystem;

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr parse_cert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

std::string common_name(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("e2ee-tls-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST(SelfSigned, HasTheReferenceNamesAndModernParameters) {
  auto pem = generate_self_signed("proxy.example");
  ASSERT_TRUE(pem) << pem.error().message;
  auto cert = parse_cert(pem->certificate_chain_pem);
  ASSERT_TRUE(cert);

  EXPECT_EQ(common_name(cert.get()), "proxy.example");
  EXPECT_EQ(X509_check_host(cert.get(), "proxy.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_NE(X509_check_host(cert.get(), "other.example", 0, 0, nullptr), 1);

  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key, "EC"));
  char group[64] = {};
  size_t group_len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &group_len), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);  // a leaf

  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())), 1);
  EXPECT_GE(days, 365);
  EXPECT_LE(days, 366);
  EXPECT_EQ(X509_verify(cert.get(), key), 1);  // self-signed

  // The key is the certificate's.
  BIO* bio = BIO_new_mem_buf(pem->private_key_pem.data(), static_cast<int>(pem->private_key_pem.size()));
  EVP_PKEY* private_key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(private_key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), private_key), 1);
  EVP_PKEY_free(private_key);

  // Two certificates never share a serial or key.
  auto other = generate_self_signed("proxy.example");
  ASSERT_TRUE(other);
  EXPECT_NE(other->private_key_pem, pem->private_key_pem);
  auto other_cert = parse_cert(other->certificate_chain_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert.get()), X509_get0_serialNumber(other_cert.get())), 0);
}

TEST(SelfSigned, AnIpDomainGoesIntoAnIpSan) {
  auto pem = generate_self_signed("10.1.2.3");
  ASSERT_TRUE(pem) << pem.error().message;
  auto cert = parse_cert(pem->certificate_chain_pem);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.1.2.3", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
}

TEST(SelfSigned, RejectsDomainsThatAreNotNames) {
  for (const char* bad : {"", "a,DNS:evil.example", "has space", "x/y", "line\nbreak"}) {
    auto pem = generate_self_signed(bad);
    EXPECT_FALSE(pem) << bad;
    if (!pem) {
      EXPECT_EQ(pem.error().code, Errc::invalid_argument);
    }
  }
}

TEST(ServerContext, LoadsAPairAndRejectsAMismatchedKey) {
  auto a = generate_self_signed("a.example");
  auto b = generate_self_signed("b.example");
  ASSERT_TRUE(a && b);
  auto good = TlsServerContext::from_pem(*a);
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_NE(SSL_CTX_get0_certificate((*good)->native().native_handle()), nullptr);
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*good)->native().native_handle()), TLS1_2_VERSION);

  auto mismatched = TlsServerContext::from_pem(PemCertificate{a->certificate_chain_pem, b->private_key_pem});
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().code, Errc::invalid_argument);
  EXPECT_NE(mismatched.error().message.find("does not match"), std::string::npos) << mismatched.error().message;

  auto garbage = TlsServerContext::from_pem(PemCertificate{"not a certificate", a->private_key_pem});
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("certificate"), std::string::npos);
  auto no_key = TlsServerContext::from_pem(PemCertificate{a->certificate_chain_pem, "nope"});
  ASSERT_FALSE(no_key);
  EXPECT_NE(no_key.error().message.find("private key"), std::string::npos);
}

TEST(ServerContext, FromFilesAppendsTheCaAndNamesUnreadableFiles) {
  TempDir dir;
  auto leaf = generate_self_signed("leaf.example");
  auto ca = generate_self_signed("ca.example");
  ASSERT_TRUE(leaf && ca);
  write_text(dir.path() / "cert.pem", leaf->certificate_chain_pem);
  write_text(dir.path() / "key.pem", leaf->private_key_pem);
  write_text(dir.path() / "ca.pem", ca->certificate_chain_pem);

  auto with_ca = TlsServerContext::from_files(dir.path() / "cert.pem", dir.path() / "key.pem", dir.path() / "ca.pem");
  ASSERT_TRUE(with_ca) << with_ca.error().message;
  STACK_OF(X509)* chain = nullptr;
  ASSERT_EQ(SSL_CTX_get0_chain_certs((*with_ca)->native().native_handle(), &chain), 1);
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(sk_X509_num(chain), 1);

  auto without_ca = TlsServerContext::from_files(dir.path() / "cert.pem", dir.path() / "key.pem");
  ASSERT_TRUE(without_ca) << without_ca.error().message;

  auto missing = TlsServerContext::from_files(dir.path() / "nope.pem", dir.path() / "key.pem");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.pem"), std::string::npos) << missing.error().message;

  write_text(dir.path() / "other-key.pem", ca->private_key_pem);
  auto mismatched = TlsServerContext::from_files(dir.path() / "cert.pem", dir.path() / "other-key.pem");
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().message.find("does not match"), std::string::npos);
  EXPECT_NE(mismatched.error().message.find("other-key.pem"), std::string::npos) << mismatched.error().message;
}

TEST(LoadOrCreate, CreatesAPrivateKeyAndReusesIt) {
  TempDir dir;
  auto first = load_or_create_self_signed(dir.path(), "localhost");
  ASSERT_TRUE(first) << first.error().message;
  const fs::path key = dir.path() / "tls" / "key.pem";
  const fs::path cert = dir.path() / "tls" / "cert.pem";
  ASSERT_TRUE(fs::exists(key));
  ASSERT_TRUE(fs::exists(cert));
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(dir.path() / "tls"), 0700u);
  EXPECT_FALSE(fs::exists(dir.path() / "tls" / "key.pem.tmp"));

  auto second = load_or_create_self_signed(dir.path(), "localhost");
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->certificate_chain_pem, first->certificate_chain_pem);
  EXPECT_EQ(second->private_key_pem, first->private_key_pem);
  EXPECT_TRUE(TlsServerContext::from_pem(*second));
}

TEST(LoadOrCreate, RegeneratesForAnotherDomainOrABrokenPair) {
  TempDir dir;
  auto first = load_or_create_self_signed(dir.path(), "one.example");
  ASSERT_TRUE(first);
  auto other = load_or_create_self_signed(dir.path(), "two.example");
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_NE(other->certificate_chain_pem, first->certificate_chain_pem);
  EXPECT_EQ(common_name(parse_cert(other->certificate_chain_pem).get()), "two.example");
  EXPECT_EQ(mode_of(dir.path() / "tls" / "key.pem"), 0600u);

  write_text(dir.path() / "tls" / "cert.pem", "garbage");
  auto repaired = load_or_create_self_signed(dir.path(), "two.example");
  ASSERT_TRUE(repaired) << repaired.error().message;
  EXPECT_TRUE(parse_cert(repaired->certificate_chain_pem));
  auto again = load_or_create_self_signed(dir.path(), "two.example");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->certificate_chain_pem, repaired->certificate_chain_pem);
}

TEST(LoadOrCreate, RefusesAKeyOthersCanRead) {
  TempDir dir;
  ASSERT_TRUE(load_or_create_self_signed(dir.path(), "localhost"));
  const fs::path key = dir.path() / "tls" / "key.pem";
  const std::string before = [&] {
    std::ifstream in(key);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);

  auto refused = load_or_create_self_signed(dir.path(), "localhost");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::invalid_argument);
  EXPECT_NE(refused.error().message.find("0644"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos);
  // Neither used nor replaced.
  EXPECT_EQ(mode_of(key), 0644u);
  std::ifstream in(key);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), before);

  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  EXPECT_FALSE(load_or_create_self_signed(dir.path(), "localhost"));
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  EXPECT_TRUE(load_or_create_self_signed(dir.path(), "localhost"));
}

TEST(LoadOrCreate, RefusesASymlinkedKey) {
  TempDir dir;
  fs::create_directories(dir.path() / "tls");
  auto pem = generate_self_signed("localhost");
  ASSERT_TRUE(pem);
  write_text(dir.path() / "elsewhere.pem", pem->private_key_pem);
  ::chmod((dir.path() / "elsewhere.pem").c_str(), 0600);
  fs::create_symlink(dir.path() / "elsewhere.pem", dir.path() / "tls" / "key.pem");
  auto result = load_or_create_self_signed(dir.path(), "localhost");
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("key.pem"), std::string::npos) << result.error().message;
}

TEST(ClientContext, NamesAMissingCaFile) {
  auto context = TlsClientContext::create(TlsClientOptions{{"/nonexistent/ca.pem"}, true});
  ASSERT_FALSE(context);
  EXPECT_NE(context.error().message.find("/nonexistent/ca.pem"), std::string::npos);

  TempDir dir;
  write_text(dir.path() / "junk.pem", "not a certificate");
  auto junk = TlsClientContext::create(TlsClientOptions{{dir.path() / "junk.pem"}, true});
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message.find("junk.pem"), std::string::npos);

  auto fine = TlsClientContext::create(TlsClientOptions{});
  ASSERT_TRUE(fine) << fine.error().message;
  EXPECT_EQ(SSL_CTX_get_verify_mode((*fine)->native().native_handle()), SSL_VERIFY_PEER);
}

}  // namespace
}  // namespace e2ee::http
