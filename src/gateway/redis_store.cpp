#include "gateway/redis_store.hpp"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <string_view>
#include <variant>

#include "common/log.hpp"

namespace e2ee::gateway {

namespace net = boost::asio;

struct RedisNonceStore::Connection {
  redisContext* context = nullptr;
  ~Connection() {
    if (context != nullptr) redisFree(context);
  }
};

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Reply command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

Error outage(const std::string& what) { return make_error(Errc::unavailable, "Redis unavailable: " + what); }

}  // namespace

Result<RedisOptions> parse_redis_url(std::string_view url) {
  RedisOptions o;
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, scheme.size()) != scheme) return make_error(Errc::invalid_argument, "expected redis://[:password@]host[:port][/db]");
  std::string_view rest = url.substr(scheme.size());
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    if (auto colon = auth.find(':'); colon != std::string_view::npos) auth = auth.substr(colon + 1);
    o.password = std::string(auth);
    rest = rest.substr(at + 1);
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      try {
        o.database = std::stoi(std::string(db));
      } catch (const std::exception&) {
        return make_error(Errc::invalid_argument, "database must be a number");
      }
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    try {
      o.port = std::stoi(std::string(rest.substr(colon + 1)));
    } catch (const std::exception&) {
      return make_error(Errc::invalid_argument, "port must be a number");
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return make_error(Errc::invalid_argument, "missing host");
  if (o.port <= 0 || o.port > 65535) return make_error(Errc::invalid_argument, "port out of range");
  o.host = std::string(rest);
  return o;
}

namespace {

// Blocks SIGPIPE in the calling thread while alive; threads created meanwhile inherit the mask.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
  ~SigpipeBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

// The server closed the connection (EOF, reset, broken pipe) — as opposed to a timeout, after
// which the command may still have run, so that repeating it could turn a first use into a replay.
bool closed_by_server(const redisContext* c) {
  if (c->err == REDIS_ERR_EOF) return true;
  if (c->err != REDIS_ERR_IO) return false;
  const std::string_view what = c->errstr;
  return what.find("reset") != std::string_view::npos || what.find("Broken pipe") != std::string_view::npos;
}

}  // namespace

RedisNonceStore::RedisNonceStore(RedisOptions options, std::size_t threads) : options_(std::move(options)) {
  const SigpipeBlocked blocked;  // inherited by the pool's threads
  pool_ = std::make_unique<net::thread_pool>(threads);
}

RedisNonceStore::~RedisNonceStore() { pool_->join(); }

std::unique_ptr<RedisNonceStore::Connection> RedisNonceStore::acquire(std::string& error, bool& reused) {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      reused = true;
      return c;
    }
  }
  reused = false;
  auto c = std::make_unique<Connection>();
  c->context = redisConnectWithTimeout(options_.host.c_str(), options_.port, to_timeval(options_.timeout));
  if (c->context == nullptr || c->context->err != 0) {
    error = c->context != nullptr ? c->context->errstr : "cannot allocate a connection";
    return nullptr;
  }
  redisSetTimeout(c->context, to_timeval(options_.timeout));
  if (!options_.password.empty()) {
    auto r = command(c->context, {"AUTH", options_.password});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      error = "authentication failed";
      return nullptr;
    }
  }
  if (options_.database != 0) {
    auto r = command(c->context, {"SELECT", std::to_string(options_.database)});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      error = "cannot select database " + std::to_string(options_.database);
      return nullptr;
    }
  }
  return c;
}

void RedisNonceStore::release(std::unique_ptr<Connection> connection) {
  // A connection that failed may be half-way through a reply: drop it, the next call reconnects.
  if (connection == nullptr || connection->context == nullptr || connection->context->err != 0) return;
  std::lock_guard lock(mutex_);
  if (idle_.size() < 8) idle_.push_back(std::move(connection));
}

template <typename T, typename Attempt>
Result<T> RedisNonceStore::with_connection(Attempt&& attempt) {
  for (;;) {
    std::string error;
    bool reused = false;
    auto c = acquire(error, reused);
    if (!c) return outage(error);
    Result<T> result = attempt(*c);
    // A pooled connection the server closed while it sat idle (a restart, the server's idle
    // timeout) fails on its first command; that says nothing about Redis now, so try a fresh
    // connection. Dead pooled connections are dropped one by one, so this ends.
    if (!result && reused && closed_by_server(c->context)) continue;
    release(std::move(c));
    return result;
  }
}

Status RedisNonceStore::ping() {
  const SigpipeBlocked blocked;
  auto pong = with_connection<std::monostate>([](Connection& c) -> Result<std::monostate> {
    auto r = command(c.context, {"PING"});
    if (!r) return outage(c.context->errstr);
    if (r->type == REDIS_REPLY_ERROR) return outage(r->str);
    return std::monostate{};
  });
  if (!pong) return std::move(pong).error();
  return {};
}

// Each operation runs its blocking hiredis calls on the private pool; the awaiting coroutine
// resumes on its own executor. std::optional wraps the result because co_spawn needs a default
// constructible value.
boost::asio::awaitable<Status> RedisNonceStore::put(const std::vector<std::string>& keys, const std::string& value,
                                                    std::chrono::seconds ttl) {
  auto work = [this, keys, value, ttl]() -> net::awaitable<std::optional<Status>> {
    auto done = with_connection<std::monostate>([&](Connection& c) -> Result<std::monostate> {
      const std::string seconds = std::to_string(std::max<long long>(1, ttl.count()));
      for (const auto& k : keys) {
        const std::string key = options_.key_prefix + "nonce:" + k;
        const char* argv[] = {"SET", key.data(), value.data(), "NX", "EX", seconds.data()};
        const std::size_t lens[] = {3, key.size(), value.size(), 2, 2, seconds.size()};
        redisAppendCommandArgv(c.context, 6, argv, lens);
      }
      for (std::size_t i = 0; i < keys.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(c.context, &raw) != REDIS_OK) return outage(c.context->errstr);
        Reply r(static_cast<redisReply*>(raw));
        if (r->type == REDIS_REPLY_ERROR) return outage(r->str);
      }
      return std::monostate{};
    });
    if (!done) co_return Status(std::move(done).error());
    co_return Status{};
  };
  auto result = co_await net::co_spawn(pool_->get_executor(), std::move(work), net::use_awaitable);
  co_return std::move(*result);
}

boost::asio::awaitable<Result<std::optional<std::string>>> RedisNonceStore::take(const std::string& key) {
  using Out = Result<std::optional<std::string>>;
  auto work = [this, key]() -> net::awaitable<std::optional<Out>> {
    co_return with_connection<std::optional<std::string>>([&](Connection& c) -> Out {
      auto r = command(c.context, {"GETDEL", options_.key_prefix + "nonce:" + key});
      if (!r) return outage(c.context->errstr);
      if (r->type == REDIS_REPLY_ERROR) return outage(r->str);
      std::optional<std::string> value;
      if (r->type == REDIS_REPLY_STRING) value = std::string(r->str, r->len);
      return value;
    });
  };
  auto result = co_await net::co_spawn(pool_->get_executor(), std::move(work), net::use_awaitable);
  co_return std::move(*result);
}

boost::asio::awaitable<Result<bool>> RedisNonceStore::claim(const std::string& key, std::chrono::seconds ttl) {
  auto work = [this, key, ttl]() -> net::awaitable<std::optional<Result<bool>>> {
    co_return with_connection<bool>([&](Connection& c) -> Result<bool> {
      auto r = command(c.context, {"SET", options_.key_prefix + "replay:" + key, "1", "NX", "EX",
                                   std::to_string(std::max<long long>(1, ttl.count()))});
      if (!r) return outage(c.context->errstr);
      if (r->type == REDIS_REPLY_ERROR) return outage(r->str);
      return r->type == REDIS_REPLY_STATUS;  // "OK"; NX refusal is a nil reply
    });
  };
  auto result = co_await net::co_spawn(pool_->get_executor(), std::move(work), net::use_awaitable);
  co_return std::move(*result);
}

}  // namespace e2ee::gateway
