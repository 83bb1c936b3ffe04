#include "proxy/chutes/nonce_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "crypto/hash.hpp"
#include "proxy/async_event.hpp"

namespace e2ee::proxy::chutes {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// Pools are keyed by a hash of the API key so the raw key is not duplicated into map keys.
std::string user_of(std::string_view api_key) { return hex_encode(crypto::sha256(as_bytes(api_key))); }

constexpr std::size_t kMaxAffinityEntries = 4096;

}  // namespace

std::optional<Discovery> parse_discovery(std::string_view text) {
  json::error_code ec;
  const json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return std::nullopt;
  const auto& root = doc.as_object();
  const auto* instances = root.if_contains("instances");
  if (instances == nullptr || !instances->is_array()) return std::nullopt;
  Discovery out;
  if (const auto* in = root.if_contains("nonce_expires_in"); in != nullptr && in->is_number())
    out.expires_in_seconds = in->is_int64() ? static_cast<long>(in->as_int64()) : static_cast<long>(in->to_number<double>());
  for (const auto& item : instances->as_array()) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    const auto* id = o.if_contains("instance_id");
    const auto* pk = o.if_contains("e2e_pubkey");
    const auto* nonces = o.if_contains("nonces");
    if (id == nullptr || !id->is_string() || pk == nullptr || !pk->is_string() || nonces == nullptr ||
        !nonces->is_array())
      continue;
    DiscoveredInstance inst{std::string(id->as_string()), std::string(pk->as_string()), {}};
    for (const auto& n : nonces->as_array())
      if (n.is_string() && !n.as_string().empty()) inst.nonces.emplace_back(n.as_string());
    out.instances.push_back(std::move(inst));
  }
  return out;
}

NoncePools::NoncePools(boost::asio::any_io_executor executor, http::Client& client, PoolOptions options)
    : executor_(std::move(executor)), client_(client), options_(std::move(options)) {}

NoncePools::~NoncePools() = default;

std::size_t NoncePools::discoveries_sent() const {
  std::lock_guard lock(mutex_);
  return discoveries_sent_;
}

std::size_t NoncePools::valid_nonces_locked(Pool& pool, Clock::time_point now) const {
  std::size_t n = 0;
  for (auto& inst : pool.instances) {
    while (!inst.nonces.empty() && inst.nonces.front().expires <= now) inst.nonces.pop_front();
    n += inst.nonces.size();
  }
  return n;
}

std::optional<Lease> NoncePools::take_locked(Pool& pool, std::uint64_t affinity, Clock::time_point now) {
  valid_nonces_locked(pool, now);  // drops expired nonces
  Instance* chosen = nullptr;
  if (auto it = pool.affinity.find(affinity); it != pool.affinity.end()) {
    for (auto& inst : pool.instances)
      if (inst.id == it->second && !inst.nonces.empty()) chosen = &inst;
  }
  if (chosen == nullptr) {
    // A new conversation (or its instance ran dry): the instance with the most nonces left.
    for (auto& inst : pool.instances)
      if (!inst.nonces.empty() && (chosen == nullptr || inst.nonces.size() > chosen->nonces.size())) chosen = &inst;
    if (chosen == nullptr) return std::nullopt;
    if (pool.affinity.size() >= kMaxAffinityEntries) pool.affinity.clear();
    pool.affinity[affinity] = chosen->id;
  }
  Lease lease{chosen->id, chosen->key, std::move(chosen->nonces.front().value)};
  chosen->nonces.pop_front();
  return lease;
}

int NoncePools::reserve_discovery_locked(const std::string& user, Clock::time_point now) {
  auto& window = rates_[user];
  while (!window.sent.empty() && now - window.sent.front() >= std::chrono::minutes(1)) window.sent.pop_front();
  if (now < window.blocked_until)
    return static_cast<int>(std::chrono::ceil<std::chrono::seconds>(window.blocked_until - now).count());
  if (window.sent.size() >= options_.discoveries_per_minute)
    return static_cast<int>(
        std::chrono::ceil<std::chrono::seconds>(window.sent.front() + std::chrono::minutes(1) - now).count());
  window.sent.push_back(now);
  return 0;
}

std::pair<std::shared_ptr<AsyncEvent>, std::shared_ptr<std::optional<ProxyError>>> NoncePools::start_discovery_locked(
    Pool& pool, const std::string& pool_key, std::string api_key, std::string chute_id) {
  if (!pool.discovering) {
    pool.discovering = std::make_shared<AsyncEvent>(executor_);
    pool.outcome = std::make_shared<std::optional<ProxyError>>();
    ++discoveries_sent_;
    // On its own strand: the HTTP client's deadlines assume the calling coroutine is not run by
    // several threads at once.
    boost::asio::co_spawn(boost::asio::make_strand(executor_), run_discovery(pool_key, std::move(api_key), std::move(chute_id)),
                          boost::asio::detached);
  }
  return {pool.discovering, pool.outcome};
}

boost::asio::awaitable<std::variant<Lease, ProxyError>> NoncePools::acquire(std::string_view api_key,
                                                                           std::string_view chute_id,
                                                                           std::uint64_t affinity) {
  const std::string user = user_of(api_key);
  const std::string pool_key = user + '\n' + std::string(chute_id);
  // Take from the pool, else wait for a discovery and try again. Under a burst, other requests
  // may drain a fresh batch before this one gets back to it, so a few rounds are allowed; each
  // round that starts a discovery spends one of the user's paced discoveries, so the bound also
  // keeps one request from using up the rate window.
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    std::shared_ptr<AsyncEvent> wait_for;
    std::shared_ptr<std::optional<ProxyError>> outcome;
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      Pool& pool = pools_[pool_key];
      if (auto lease = take_locked(pool, affinity, now)) {
        // Refill ahead of need so the next requests find nonces waiting.
        const auto left = valid_nonces_locked(pool, now);
        const auto watermark = static_cast<std::size_t>(static_cast<double>(pool.last_batch) * options_.refill_fraction);
        if (!pool.discovering && left <= watermark && reserve_discovery_locked(user, now) == 0)
          start_discovery_locked(pool, pool_key, std::string(api_key), std::string(chute_id));
        co_return std::move(*lease);
      }
      if (!pool.discovering) {
        if (const int wait = reserve_discovery_locked(user, now); wait > 0) {
          co_return ProxyError{429, "rate_limit_error", "discovery_rate_limited",
                               "no unused nonces are left for this model and the Chutes API allows only " +
                                   std::to_string(options_.discoveries_per_minute) +
                                   " instance discoveries per minute per API key; retry in " + std::to_string(wait) +
                                   " s",
                               wait};
        }
      }
      std::tie(wait_for, outcome) = start_discovery_locked(pool, pool_key, std::string(api_key), std::string(chute_id));
    }
    co_await wait_for->wait();
    if (*outcome) co_return **outcome;
  }
  co_return ProxyError{503, "upstream_error", "no_nonces",
                       "no nonces available for chute " + std::string(chute_id) +
                           ": every fresh batch was used up by concurrent requests; retry shortly",
                       2};
}

boost::asio::awaitable<void> NoncePools::run_discovery(std::string pool_key, std::string api_key, std::string chute_id) {
  http::ClientRequest req;
  req.method = "GET";
  req.origin = options_.api_upstream;
  req.target = options_.api_upstream.target("/e2e/instances/" + chute_id);
  req.headers.set("Authorization", "Bearer " + api_key);
  req.headers.set("Cache-Control", "no-cache, no-store");
  req.headers.set("Accept", "application/json");
  const auto started = Clock::now();
  auto response = co_await client_.send(std::move(req));

  std::optional<ProxyError> failure;
  std::optional<Discovery> discovery;
  if (!response) {
    failure = ProxyError{503, "upstream_error", "discovery_failed", "instance discovery failed: " + response.error().message, 0};
  } else if (response->status == 429) {
    failure = ProxyError{429, "rate_limit_error", "discovery_rate_limited",
                         "the Chutes API refused instance discovery (rate limit: 10 per minute per API key); retry "
                         "in about a minute",
                         60};
  } else if (response->status == 401 || response->status == 403) {
    failure = ProxyError{401, "authentication_error", "invalid_api_key",
                         "the provider rejected the API key during instance discovery (HTTP " +
                             std::to_string(response->status) + ")",
                         0};
  } else if (response->status != 200) {
    failure = ProxyError{503, "upstream_error", "discovery_failed",
                         "instance discovery returned " + std::to_string(response->status) + ": " +
                             response->body.substr(0, 200),
                         0};
  } else {
    discovery = parse_discovery(response->body);
    if (!discovery)
      failure = ProxyError{503, "upstream_error", "discovery_invalid",
                           "invalid instance discovery response: " + response->body.substr(0, 200), 0};
  }

  // Parse new keys outside the lock (expanding an ML-KEM key costs ~20 µs each); keys already
  // known for the same instance and bytes are reused.
  std::vector<Instance> fresh;
  if (discovery) {
    std::map<std::string, std::shared_ptr<const crypto::mlkem768::EncapsulationKey>> known;
    {
      std::lock_guard lock(mutex_);
      for (const auto& inst : pools_[pool_key].instances) known[inst.id + '\n' + inst.pubkey_base64] = inst.key;
    }
    const auto expires_in = discovery->expires_in_seconds > 0 ? std::chrono::seconds(discovery->expires_in_seconds)
                                                              : options_.default_expires_in;
    for (auto& d : discovery->instances) {
      std::shared_ptr<const crypto::mlkem768::EncapsulationKey> key;
      if (auto it = known.find(d.instance_id + '\n' + d.pubkey_base64); it != known.end()) {
        key = it->second;
      } else {
        const auto raw = base64_decode_public(d.pubkey_base64);
        auto parsed = raw ? crypto::mlkem768::EncapsulationKey::parse(*raw)
                          : Result<crypto::mlkem768::EncapsulationKey>(make_error(Errc::malformed, "not base64"));
        if (!parsed) {
          log::warn("discovery: ignoring instance with an invalid ML-KEM key",
                    {{"instance", d.instance_id}, {"reason", parsed.error().message}});
          continue;
        }
        key = std::make_shared<const crypto::mlkem768::EncapsulationKey>(std::move(*parsed));
      }
      Instance inst{d.instance_id, d.pubkey_base64, key, {}};
      // Stop using a nonce a little before the server forgets it (the request still has to get
      // there): the configured margin, but never more than a quarter of the lifetime, so a short
      // nonce_expires_in still leaves usable nonces.
      const auto margin = std::min<std::chrono::steady_clock::duration>(options_.expiry_margin, expires_in / 4);
      for (auto& n : d.nonces) inst.nonces.push_back(Nonce{std::move(n), started + expires_in - margin});
      fresh.push_back(std::move(inst));
    }
    if (fresh.empty())
      failure = ProxyError{503, "upstream_error", "no_instances", "instance discovery returned no usable instances", 0};
  }

  std::shared_ptr<AsyncEvent> done;
  {
    std::lock_guard lock(mutex_);
    Pool& pool = pools_[pool_key];
    if (failure && failure->status == 429) {
      auto& window = rates_[pool_key.substr(0, pool_key.find('\n'))];
      window.blocked_until = Clock::now() + std::chrono::seconds(failure->retry_after_seconds);
    }
    if (!failure) {
      std::size_t batch = 0;
      for (auto& inst : fresh) {
        batch += inst.nonces.size();
        auto existing = std::find_if(pool.instances.begin(), pool.instances.end(),
                                     [&](const Instance& i) { return i.id == inst.id; });
        if (existing != pool.instances.end() && existing->pubkey_base64 == inst.pubkey_base64) {
          for (auto& n : inst.nonces) existing->nonces.push_back(std::move(n));
        } else if (existing != pool.instances.end()) {
          *existing = std::move(inst);  // same instance, new key: old nonces are worthless
        } else {
          pool.instances.push_back(std::move(inst));
        }
      }
      pool.last_batch = batch;
      log::debug("discovery", {{"instances", fresh.size()}, {"nonces", batch}});
    } else {
      log::warn("discovery failed", {{"status", failure->status}, {"code", failure->code}});
    }
    if (pool.outcome) *pool.outcome = failure;
    done = std::move(pool.discovering);
    pool.discovering.reset();
    pool.outcome.reset();
  }
  if (done) done->set();
}

void NoncePools::invalidate(std::string_view api_key, std::string_view chute_id) {
  std::lock_guard lock(mutex_);
  auto it = pools_.find(user_of(api_key) + '\n' + std::string(chute_id));
  if (it != pools_.end())
    for (auto& inst : it->second.instances) inst.nonces.clear();
}

void NoncePools::drop_instance(std::string_view api_key, std::string_view chute_id, std::string_view instance_id) {
  std::lock_guard lock(mutex_);
  auto it = pools_.find(user_of(api_key) + '\n' + std::string(chute_id));
  if (it == pools_.end()) return;
  auto& instances = it->second.instances;
  instances.erase(std::remove_if(instances.begin(), instances.end(), [&](const Instance& i) { return i.id == instance_id; }),
                  instances.end());
}

}  // namespace e2ee::proxy::chutes
