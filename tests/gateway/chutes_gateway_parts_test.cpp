#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <filesystem>
#include <sys/stat.h>

#include "gateway/chutes_gateway.hpp"
#include "gateway/instance_identity.hpp"
#include "gateway/nonce_store.hpp"

namespace e2ee::gateway {
namespace {

// Runs one coroutine to completion on `ioc` and returns its result (Result<T> has no default
// constructor, so use_future is not an option).
template <typename T>
T run(boost::asio::io_context& ioc, boost::asio::awaitable<T> work) {
  std::optional<T> out;
  boost::asio::co_spawn(
      ioc, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(work)); }, boost::asio::detached);
  ioc.restart();
  ioc.run();
  return std::move(*out);
}

TEST(E2ePaths, OnlyTheCordsChutesExposes) {
  EXPECT_TRUE(e2e_path_allowed("/v1/chat/completions"));
  EXPECT_TRUE(e2e_path_allowed("/tokenize"));
  EXPECT_FALSE(e2e_path_allowed("/v1/models"));
  EXPECT_FALSE(e2e_path_allowed("/v1/chat/completions/../admin"));
  EXPECT_FALSE(e2e_path_allowed("/"));
}

TEST(IncludeUsage, AddsOrMergesStreamOptionsKeepingEverythingElse) {
  EXPECT_EQ(*force_include_usage(R"({"model":"m","stream":true})"),
            R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(*force_include_usage(R"({"stream_options": {"continuous_usage_stats": true}, "seed": 18446744073709551616})"),
            R"({"stream_options": {"continuous_usage_stats": true,"include_usage":true}, "seed": 18446744073709551616})");
  EXPECT_EQ(*force_include_usage(R"({"stream_options":{"include_usage":false}})"),
            R"({"stream_options":{"include_usage":true}})");
}

TEST(MemoryNonceStore, SingleUseExpiryAndCapacity) {
  boost::asio::io_context ioc;
  MemoryNonceStore store(3);
  EXPECT_TRUE(run(ioc, store.put({"a", "b"}, "inst", std::chrono::seconds(60))));
  auto first = run(ioc, store.take("a"));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, std::optional<std::string>("inst"));
  auto again = run(ioc, store.take("a"));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again) << "a nonce must be usable once";
  auto never = run(ioc, store.take("never-issued"));
  ASSERT_TRUE(never);
  EXPECT_FALSE(*never);
  // Full: refuses rather than evicting live entries.
  EXPECT_TRUE(run(ioc, store.put({"c", "d"}, "x", std::chrono::seconds(60))));
  auto full = run(ioc, store.put({"e"}, "x", std::chrono::seconds(60)));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::limit_exceeded);
  // Expired entries do not count and cannot be taken.
  MemoryNonceStore short_lived;
  EXPECT_TRUE(run(ioc, short_lived.put({"z"}, "x", std::chrono::seconds(0))));
  EXPECT_FALSE(*run(ioc, short_lived.take("z")));
}

TEST(MemoryNonceStore, ClaimDetectsReplaysAndRefusesWhenFullInsteadOfEvicting) {
  boost::asio::io_context ioc;
  MemoryNonceStore store(2);
  EXPECT_TRUE(*run(ioc, store.claim("a", std::chrono::seconds(60))));
  EXPECT_FALSE(*run(ioc, store.claim("a", std::chrono::seconds(60)))) << "a replay must be detected";
  EXPECT_TRUE(*run(ioc, store.claim("b", std::chrono::seconds(60))));
  auto full = run(ioc, store.claim("c", std::chrono::seconds(60)));
  ASSERT_FALSE(full) << "evicting a live entry would reopen its replay window";
  EXPECT_EQ(full.error().code, Errc::limit_exceeded);
  EXPECT_FALSE(*run(ioc, store.claim("a", std::chrono::seconds(60))));
  MemoryNonceStore expiring;
  EXPECT_TRUE(*run(ioc, expiring.claim("z", std::chrono::seconds(0))));
  EXPECT_TRUE(*run(ioc, expiring.claim("z", std::chrono::seconds(60)))) << "an expired claim no longer blocks";
}

TEST(InstanceIdentity, KeyDirPersistsKeysWith0600AndRefusesReadableFiles) {
  const auto dir = std::filesystem::temp_directory_path() / ("e2ee-id-" + random_uuid_v4());
  auto first = load_or_create_identity(dir);
  ASSERT_TRUE(first) << first.error().message;
  struct stat st {};
  ASSERT_EQ(::stat((dir / "chutes-mlkem768.seed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = load_or_create_identity(dir);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->instance_id, second->instance_id);
  EXPECT_EQ(first->public_key_base64, second->public_key_base64);
  ::chmod((dir / "chutes-mlkem768.seed").c_str(), 0644);
  auto refused = load_or_create_identity(dir);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("readable by other users"), std::string::npos);
  auto fresh = load_or_create_identity(std::nullopt);
  ASSERT_TRUE(fresh);
  EXPECT_NE(fresh->public_key_base64, first->public_key_base64);
  std::filesystem::remove_all(dir);
}

TEST(InstanceIdentity, UuidV4Shape) {
  const auto id = random_uuid_v4();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
  EXPECT_NE(id, random_uuid_v4());
}

}  // namespace
}  // namespace e2ee::gateway
