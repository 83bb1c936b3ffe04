#include "proxy/chutes/model_catalog.hpp"

#include <boost/json.hpp>

#include "common/log.hpp"
#include "proxy/async_event.hpp"

namespace e2ee::proxy::chutes {

namespace json = boost::json;

bool looks_like_uuid(std::string_view s) {
  // 8-4-4-4-12 hex digits, as the reference's is_uuid.
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = s[i];
    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string tee_refusal_message(std::string_view model) {
  return "model '" + std::string(model) +
         "' is not running in confidential compute (TEE). E2EE requires confidential compute to guarantee "
         "privacy. Set ALLOW_NON_CONFIDENTIAL=true to override.";
}

std::vector<ModelInfo> parse_model_list(std::string_view text) {
  std::vector<ModelInfo> out;
  json::error_code ec;
  const json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return out;
  const auto* data = doc.as_object().if_contains("data");
  if (data == nullptr || !data->is_array()) return out;
  for (const auto& entry : data->as_array()) {
    if (!entry.is_object()) continue;
    const auto& o = entry.as_object();
    const auto* id = o.if_contains("id");
    const auto* chute = o.if_contains("chute_id");
    if (id == nullptr || !id->is_string() || chute == nullptr || !chute->is_string()) continue;
    ModelInfo m;
    m.id = std::string(id->as_string());
    m.chute_id = std::string(chute->as_string());
    if (const auto* root = o.if_contains("root"); root != nullptr && root->is_string()) m.root = std::string(root->as_string());
    if (const auto* cc = o.if_contains("confidential_compute"); cc != nullptr && cc->is_bool()) m.confidential = cc->as_bool();
    if (const auto* created = o.if_contains("created"); created != nullptr && created->is_number())
      m.created = created->is_int64() ? created->as_int64() : static_cast<long long>(created->to_number<double>());
    out.push_back(std::move(m));
  }
  return out;
}

ModelCatalog::ModelCatalog(boost::asio::any_io_executor executor, http::Client& client, CatalogOptions options)
    : executor_(std::move(executor)), client_(client), options_(std::move(options)) {}

ModelCatalog::~ModelCatalog() = default;

std::optional<ModelInfo> ModelCatalog::lookup(std::string_view model) const {
  std::lock_guard lock(mutex_);
  for (const auto& m : models_)
    if (m.id == model) return m;
  for (const auto& m : models_)
    if (m.chute_id == model) return m;
  const ModelInfo* best = nullptr;
  for (const auto& m : models_)
    if (!m.root.empty() && m.root == model && (best == nullptr || m.created > best->created)) best = &m;
  if (best != nullptr) return *best;
  return std::nullopt;
}

boost::asio::awaitable<std::optional<ProxyError>> ModelCatalog::refresh(std::string_view api_key,
                                                                        std::string_view model) {
  // Single flight: the first caller fetches, later callers wait for its outcome.
  std::shared_ptr<AsyncEvent> wait_for;
  std::shared_ptr<std::optional<ProxyError>> outcome;
  {
    std::lock_guard lock(mutex_);
    if (refreshing_) {
      wait_for = refreshing_;
      outcome = refresh_outcome_;
    } else {
      refreshing_ = std::make_shared<AsyncEvent>(executor_);
      refresh_outcome_ = outcome = std::make_shared<std::optional<ProxyError>>();
    }
  }
  if (wait_for) {
    co_await wait_for->wait();
    co_return *outcome;
  }

  http::ClientRequest req;
  req.method = "GET";
  req.origin = options_.models_upstream;
  req.target = options_.models_upstream.target("/v1/models");
  if (!api_key.empty()) req.headers.set("Authorization", "Bearer " + std::string(api_key));
  req.headers.set("Accept", "application/json");
  auto response = co_await client_.send(std::move(req));

  std::optional<ProxyError> failure;
  const std::string prefix = "failed to resolve model '" + std::string(model) + "': ";
  if (!response) {
    failure = upstream_error(502, "model_list_unavailable", prefix + "model list request failed: " + response.error().message);
  } else if (response->status != 200) {
    failure = upstream_error(502, "model_list_unavailable",
                             prefix + "model list returned " + std::to_string(response->status));
  } else {
    auto models = parse_model_list(response->body);
    if (models.empty()) {
      failure = upstream_error(502, "model_list_invalid", prefix + "invalid model list response");
    } else {
      std::lock_guard lock(mutex_);
      models_ = std::move(models);
      fetched_at_ = std::chrono::steady_clock::now();
      log::debug("model list refreshed", {{"models", models_.size()}});
    }
  }
  std::shared_ptr<AsyncEvent> done;
  {
    std::lock_guard lock(mutex_);
    *refresh_outcome_ = failure;
    done = std::move(refreshing_);
    refreshing_.reset();
  }
  done->set();
  co_return failure;
}

boost::asio::awaitable<std::variant<ModelInfo, ProxyError>> ModelCatalog::resolve(std::string_view model,
                                                                                 std::string_view api_key) {
  if (model.empty()) co_return bad_request("missing_model", "missing 'model' field");
  bool stale;
  {
    std::lock_guard lock(mutex_);
    stale = models_.empty() || std::chrono::steady_clock::now() - fetched_at_ > options_.ttl;
  }
  std::optional<ModelInfo> found = stale ? std::nullopt : lookup(model);
  if (!found) {
    auto failure = co_await refresh(api_key, model);
    found = lookup(model);
    // A failed refresh falls back to the stale list, as the reference does.
    if (!found && failure) co_return *failure;
  }
  if (!found) {
    if (looks_like_uuid(model)) {
      if (!options_.allow_non_confidential)
        co_return ProxyError{404, "invalid_request_error", "model_not_verifiable",
                             "model '" + std::string(model) +
                                 "' is a chute id that the public model list does not include, so whether it runs in "
                                 "confidential compute (TEE) cannot be verified. Set ALLOW_NON_CONFIDENTIAL=true to "
                                 "send to it anyway.",
                             0};
      co_return ModelInfo{std::string(model), std::string(model), {}, false, 0};
    }
    co_return ProxyError{404, "invalid_request_error", "model_not_found", "model '" + std::string(model) + "' not found", 0};
  }
  if (!found->confidential && !options_.allow_non_confidential)
    co_return ProxyError{404, "invalid_request_error", "model_not_confidential", tee_refusal_message(model), 0};
  co_return *found;
}

}  // namespace e2ee::proxy::chutes
