#include "gateway/instance_identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "common/encoding.hpp"
#include "crypto/hash.hpp"
#include "crypto/random.hpp"

namespace e2ee::gateway {

namespace fs = std::filesystem;

std::string random_uuid_v4() {
  std::uint8_t b[16];
  crypto::random_bytes(b);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string h = hex_encode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

Status write_private_file(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Errc::unavailable, "cannot create " + tmp.string());
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(Errc::unavailable, "cannot write " + tmp.string());
    }
    done += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return make_error(Errc::unavailable, "cannot rename to " + path.string());
  return {};
}

Result<std::string> read_private_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return make_error(Errc::unavailable, "cannot read " + path.string());
  if ((st.st_mode & 077) != 0)
    return make_error(Errc::invalid_argument, path.string() + " is readable by other users (mode " +
                                                  std::to_string(st.st_mode & 0777) +
                                                  "); refusing to use it — chmod 600 it or delete it");
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {

Result<InstanceIdentity> make_identity(std::string instance_id, crypto::mlkem768::DecapsulationKey key) {
  const auto& ek = key.encapsulation_key().bytes();
  InstanceIdentity id{std::move(instance_id), std::move(key), base64_encode(ek), hex_encode(crypto::sha256(ek)).substr(0, 16)};
  return id;
}

}  // namespace

Result<InstanceIdentity> load_or_create_identity(const std::optional<fs::path>& key_dir) {
  if (!key_dir) return make_identity(random_uuid_v4(), crypto::mlkem768::DecapsulationKey::generate());
  std::error_code ec;
  fs::create_directories(*key_dir, ec);
  ::chmod(key_dir->c_str(), 0700);
  const fs::path seed_file = *key_dir / "chutes-mlkem768.seed";
  const fs::path id_file = *key_dir / "chutes-instance-id";
  if (fs::exists(seed_file)) {
    auto seed_hex = read_private_file(seed_file);
    if (!seed_hex) return std::move(seed_hex).error();
    auto seed = hex_decode(std::string_view(*seed_hex).substr(0, 128));
    if (!seed || seed->size() != 64) return make_error(Errc::invalid_key, seed_file.string() + " does not hold a 64-byte hex seed");
    auto key = crypto::mlkem768::DecapsulationKey::from_seed(*seed);
    crypto::secure_wipe(seed->data(), seed->size());
    crypto::secure_wipe(seed_hex->data(), seed_hex->size());
    if (!key) return std::move(key).error();
    std::ifstream in(id_file);
    std::string instance_id;
    std::getline(in, instance_id);
    if (instance_id.size() != 36) instance_id = random_uuid_v4();
    return make_identity(std::move(instance_id), std::move(*key));
  }
  auto seed = crypto::random_secret<64>();
  std::string seed_hex = hex_encode(ByteView(seed.data(), seed.size())) + "\n";
  auto status = write_private_file(seed_file, seed_hex);
  crypto::secure_wipe(seed_hex.data(), seed_hex.size());
  if (!status) return std::move(status).error();
  std::string instance_id = random_uuid_v4();
  if (auto written = write_private_file(id_file, instance_id + "\n"); !written) return std::move(written).error();
  auto key = crypto::mlkem768::DecapsulationKey::from_seed(ByteView(seed.data(), seed.size()));
  if (!key) return std::move(key).error();
  return make_identity(std::move(instance_id), std::move(*key));
}

}  // namespace e2ee::gateway
