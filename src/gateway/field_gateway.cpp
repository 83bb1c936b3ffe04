#include "gateway/field_gateway.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <ctime>

#include "common/encoding.hpp"
#include "common/json_text.hpp"
#include "common/log.hpp"
#include "crypto/random.hpp"
#include "gateway/instance_identity.hpp"
#include "http/cancel_on_disconnect.hpp"
#include "http/sse.hpp"

namespace e2ee::gateway {

namespace net = boost::asio;
namespace json = boost::json;
namespace field = protocol::field;

namespace {

http::Response json_reply(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

// application/x-www-form-urlencoded value of `name` in a query string ("" when absent).
std::string query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string out;
    const std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size()) {
        auto byte = hex_decode(raw.substr(i + 1, 2));
        if (byte) {
          out += static_cast<char>((*byte)[0]);
          i += 2;
        } else {
          out += raw[i];
        }
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  return {};
}

Result<field::KeyPair> load_or_create_key(field::Algo algo, const std::optional<std::filesystem::path>& dir,
                                          const char* file) {
  if (dir) {
    const auto path = *dir / file;
    if (std::filesystem::exists(path)) {
      auto text = read_private_file(path);
      if (!text) return std::move(text).error();
      auto secret = hex_decode(std::string_view(*text).substr(0, 64));
      crypto::secure_wipe(text->data(), text->size());
      if (!secret || secret->size() != 32) return make_error(Errc::invalid_key, path.string() + " does not hold a 32-byte hex key");
      auto key = field::KeyPair::from_secret(algo, *secret);
      crypto::secure_wipe(secret->data(), secret->size());
      return key;
    }
  }
  // A uniformly random 32-byte secret is a valid secp256k1 scalar except with probability ~2^-128;
  // the loop makes "except" impossible.
  for (;;) {
    auto secret = crypto::random_secret<32>();
    auto key = field::KeyPair::from_secret(algo, ByteView(secret.data(), secret.size()));
    if (!key) continue;
    if (dir) {
      std::error_code ec;
      std::filesystem::create_directories(*dir, ec);
      std::string hex = hex_encode(ByteView(secret.data(), secret.size())) + "\n";
      auto written = write_private_file(*dir / file, hex);
      crypto::secure_wipe(hex.data(), hex.size());
      if (!written) return std::move(written).error();
    }
    return key;
  }
}

std::string e2ee_error(const FieldError& e) { return field_error_json(e); }

}  // namespace

Result<FieldKeys> load_or_create_field_keys(const std::optional<std::filesystem::path>& key_dir) {
  auto ecdsa = load_or_create_key(field::Algo::ecdsa, key_dir, "field-ecdsa.key");
  if (!ecdsa) return std::move(ecdsa).error();
  auto ed25519 = load_or_create_key(field::Algo::ed25519, key_dir, "field-ed25519.seed");
  if (!ed25519) return std::move(ed25519).error();
  return FieldKeys{std::move(*ecdsa), std::move(*ed25519)};
}

FieldGateway::FieldGateway(http::Client& engine, NonceStore& replay, const FieldKeys& keys, const QuoteSource& quotes,
                           FieldGatewayOptions options)
    : engine_(engine), replay_(replay), keys_(keys), quotes_(quotes), options_(std::move(options)) {}

FieldGateway::~FieldGateway() { blocking_.join(); }

boost::asio::awaitable<bool> FieldGateway::handle(http::Request& request, http::ResponseWriter& writer, int& status) {
  const std::string_view path = request.path;
  if (path == "/v1/attestation/report" && request.method == "GET") {
    status = co_await report(request, writer, false);
  } else if (path == "/api/v1/tee/attestation" && request.method == "GET") {
    status = co_await report(request, writer, true);
  } else if (path == "/api/v1/models" && request.method == "GET") {
    status = co_await venice_models(writer);
  } else if ((path == "/v1/chat/completions" || path == "/api/v1/chat/completions") && request.method == "POST") {
    status = co_await chat(request, writer);
  } else if (path == "/v1/completions" && request.method == "POST") {
    for (const char* h : {"X-Signing-Algo", "X-Client-Pub-Key", "X-Model-Pub-Key", "X-E2EE-Version", "X-E2EE-Nonce",
                          "X-E2EE-Timestamp", "X-Venice-TEE-Client-Pub-Key"}) {
      if (request.headers.has(h)) {
        const FieldError e{400, "invalid_e2ee_request", "E2EE is only supported on /v1/chat/completions"};
        status = 400;
        co_await writer.send(json_reply(400, e2ee_error(e)));
        co_return true;
      }
    }
    const FieldError e{400, "e2ee_required", "this gateway accepts only end-to-end encrypted chat completions"};
    status = 400;
    co_await writer.send(json_reply(400, e2ee_error(e)));
  } else {
    co_return false;
  }
  co_return true;
}

boost::asio::awaitable<Result<Bytes>> FieldGateway::quote_for(const std::array<std::uint8_t, 64>& report_data) {
  auto work = [this, report_data]() -> net::awaitable<std::optional<Result<Bytes>>> { co_return quotes_.quote(report_data); };
  auto result = co_await net::co_spawn(blocking_.get_executor(), std::move(work), net::use_awaitable);
  co_return std::move(*result);
}

boost::asio::awaitable<int> FieldGateway::report(const http::Request& request, http::ResponseWriter& writer, bool venice) {
  const std::string algo_name = venice ? "ecdsa" : query_param(request.query, "signing_algo");
  if (!algo_name.empty() && algo_name != "ecdsa" && algo_name != "ed25519") {
    const FieldError e{400, "invalid_signing_algo", "signing_algo must be ecdsa or ed25519"};
    co_await writer.send(json_reply(400, e2ee_error(e)));
    co_return 400;
  }
  const bool ecdsa = algo_name.empty() || algo_name == "ecdsa";
  const field::KeyPair& key = ecdsa ? keys_.ecdsa : keys_.ed25519;

  // The client's nonce binds the quote to this request; without one (dstack allows that) a random one.
  std::array<std::uint8_t, 32> nonce{};
  const std::string nonce_text = query_param(request.query, "nonce");
  if (nonce_text.empty()) {
    crypto::random_bytes(nonce);
  } else {
    auto bytes = hex_decode(nonce_text.substr(0, 2) == "0x" ? nonce_text.substr(2) : nonce_text);
    if (!bytes || bytes->size() != 32) {
      const std::string detail = venice ? "Nonce must be exactly 32 bytes" : (bytes ? "Nonce must be 32 bytes" : "Nonce must be hex-encoded");
      co_await writer.send(json_reply(400, "{\"detail\":" + json_text::quote(detail) + "}"));
      co_return 400;
    }
    std::copy(bytes->begin(), bytes->end(), nonce.begin());
  }

  // report_data = identity, zero-padded to 32 bytes, ‖ nonce.
  std::array<std::uint8_t, 64> report_data{};
  const Bytes public_raw = key.public_raw();
  std::string address;
  if (ecdsa) {
    const auto addr = key.ethereum_address();
    std::copy(addr.begin(), addr.end(), report_data.begin());
    address = checksum_address(addr);
  } else {
    std::copy(public_raw.begin(), public_raw.end(), report_data.begin());
    address = hex_encode(public_raw);
  }
  std::copy(nonce.begin(), nonce.end(), report_data.begin() + 32);

  auto quote = co_await quote_for(report_data);
  const json::value quote_hex = quote ? json::value(hex_encode(*quote)) : json::value(nullptr);
  const std::string quote_error = quote ? std::string() : quote.error().message;
  const std::string model = query_param(request.query, "model");

  json::object body;
  if (venice) {
    // The gateway cannot verify its own quote (that takes Intel's DCAP collateral), so it does
    // not claim to: tdx.valid stays false and the client verifies the quote itself.
    json::object tdx{{"valid", false},
                     {"error", quote ? "not verified by the gateway; verify the quote with DCAP" : quote_error}};
    body = json::object{
        {"verified", static_cast<bool>(quote)},
        {"nonce", hex_encode(nonce)},
        {"model", model},
        {"tee_provider", "e2ee-gateway"},
        {"tee_hardware", quote ? "intel-tdx" : "none"},
        {"intel_quote", quote_hex},
        {"nvidia_payload", nullptr},
        {"signing_key", hex_encode(key.public_uncompressed())},
        {"signing_public_key", hex_encode(key.public_uncompressed())},
        {"signing_address", address},
        {"signing_algo", "ecdsa"},
        {"report_data", hex_encode(report_data)},
        {"server_verification",
         json::object{{"tdx", std::move(tdx)},
                      {"signingAddressBinding", json::object{{"bound", true}, {"reportDataAddress", address}}},
                      {"nonceBinding", json::object{{"bound", true}, {"method", "raw"}}}}}};
    if (!quote) body["quote_error"] = quote_error;
  } else {
    json::object report{{"signing_address", address},
                        {"signing_algo", ecdsa ? "ecdsa" : "ed25519"},
                        {"signing_public_key", hex_encode(public_raw)},
                        {"request_nonce", hex_encode(nonce)},
                        {"report_data", hex_encode(report_data)},
                        {"intel_quote", quote_hex},
                        {"quote", quote_hex},
                        {"nvidia_payload", nullptr},
                        {"event_log", nullptr},
                        {"vm_config", nullptr},
                        {"info", json::object{{"app_name", "e2ee-gateway"}, {"tee", quote ? quotes_.provider() : "none"}}}};
    if (!quote) report["quote_error"] = quote_error;
    body = report;
    body["all_attestations"] = json::array{report};
    // NEAR's gateway shape: one attestation per model.
    json::array per_model;
    std::vector<std::string> names = options_.models;
    if (!model.empty()) names = {model};
    for (const auto& m : names) {
      json::object entry = report;
      entry["model"] = m;
      per_model.push_back(std::move(entry));
    }
    body["model_attestations"] = std::move(per_model);
  }
  http::Response r = json_reply(200, json::serialize(body));
  r.headers.set("Cache-Control", "no-store");
  co_await writer.send(std::move(r));
  co_return 200;
}

boost::asio::awaitable<int> FieldGateway::venice_models(http::ResponseWriter& writer) {
  json::array data;
  for (const auto& m : options_.models) {
    data.push_back(json::object{{"id", m},
                                {"type", "text"},
                                {"model_spec", json::object{{"capabilities", json::object{{"supportsE2EE", true},
                                                                                          {"supportsTeeAttestation", true}}}}}});
  }
  const std::string body = json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
  co_await writer.send(json_reply(200, body));
  co_return 200;
}

boost::asio::awaitable<int> FieldGateway::chat(http::Request& request, http::ResponseWriter& writer) {
  auto fail = [&](const FieldError& e) -> net::awaitable<int> {
    co_await writer.send(json_reply(e.status, e2ee_error(e)));
    co_return e.status;
  };
  auto negotiated = negotiate_field_e2ee(request.headers, keys_, options_.replay_window);
  if (auto* e = std::get_if<FieldError>(&negotiated)) co_return co_await fail(*e);
  if (std::holds_alternative<std::monostate>(negotiated) && !options_.allow_plaintext) {
    const FieldError e{400, "e2ee_required",
                       "this gateway accepts only end-to-end encrypted requests: send X-Signing-Algo, X-Client-Pub-Key "
                       "and X-Model-Pub-Key (or Venice's X-Venice-TEE-* headers)"};
    co_return co_await fail(e);
  }
  if (!json_text::validate(request.body)) {
    const FieldError e{400, "invalid_request", "the request body is not valid JSON"};
    co_return co_await fail(e);
  }

  std::string body = std::move(request.body);
  FieldSession* session = std::get_if<FieldSession>(&negotiated);
  if (session != nullptr) {
    const field::KeyPair& own = session->algo == field::Algo::ecdsa ? keys_.ecdsa : keys_.ed25519;
    Result<std::string> opened = make_error(Errc::internal, "no scheme");
    for (std::size_t i = 0; i < session->schemes.size(); ++i) {
      session->policy.scheme = session->schemes[i];
      opened = field::decrypt_request(body, session->policy, own);
      // Only a failed tag means "maybe the other wire format"; anything else is final.
      if (opened || opened.error().code != Errc::authentication_failed) break;
    }
    if (!opened) {
      log::info("e2ee request did not open", {{"reason", to_string(opened.error().code)}});
      const FieldError e = request_open_error(opened.error());
      co_return co_await fail(e);
    }
    body = std::move(*opened);
    if (session->policy.v2) {
      // Claimed on the nonce alone (not nonce+timestamp, which let one nonce be reused with another
      // timestamp), for twice the window (so a timestamp at the window's edge cannot outlive it).
      auto claimed = co_await replay_.claim("v2:" + session->policy.v2->nonce, 2 * options_.replay_window);
      if (!claimed) {
        const FieldError e{503, "e2ee_replay_store_unavailable",
                           "the replay-protection store is unavailable; retry later"};
        co_return co_await fail(e);
      }
      if (!*claimed) {
        const FieldError e{400, "e2ee_replay_detected", "Replay detected: duplicated X-E2EE-Nonce"};
        co_return co_await fail(e);
      }
    }
  }

  const bool stream = json_text::member_value(body, "stream") == "true";
  http::ClientRequest req;
  req.method = "POST";
  req.origin = options_.backend;
  req.target = options_.backend.target("/v1/chat/completions");
  req.headers.set("Content-Type", "application/json");
  req.headers.set("Accept", stream ? "text/event-stream" : "application/json");
  req.body = std::move(body);
  req.cancel = http::cancel_on_disconnect(writer);  // a gone client must stop the engine, even mid-prefill
  auto upstream = co_await engine_.open(std::move(req));
  if (!upstream) {
    log::warn("engine unreachable", {{"reason", upstream.error().message}});
    const FieldError e{502, "upstream_error", "the engine is unreachable"};
    co_return co_await fail(e);
  }
  const int engine_status = (*upstream)->status();
  if (engine_status != 200) {
    // The engine's own error text can quote the prompt, and this answer is not encrypted: only the
    // status crosses the network.
    auto ignored = co_await (*upstream)->read_all();
    (void)ignored;
    const FieldError e{engine_status >= 500 ? 502 : engine_status, "upstream_error",
                       "the engine returned HTTP " + std::to_string(engine_status)};
    co_return co_await fail(e);
  }

  http::Headers headers;
  if (session != nullptr) {
    headers.set("X-E2EE-Applied", "true");
    headers.set("X-E2EE-Version", std::to_string(session->version));
    headers.set("X-E2EE-Algo", std::string(field::algo_name(session->algo)));
  } else {
    headers.set("X-E2EE-Applied", "false");
  }
  std::optional<field::ResponseSealer> sealer;
  if (session != nullptr) sealer.emplace(session->policy, session->client, session->one_ephemeral);

  if (!stream) {
    auto payload = co_await (*upstream)->read_all();
    if (!payload) {
      const FieldError e{502, "upstream_error", "reading the engine's answer failed"};
      co_return co_await fail(e);
    }
    std::string out = std::move(*payload);
    if (sealer) {
      auto sealed = sealer->encrypt(out);
      if (!sealed) {
        log::warn("response encryption failed", {{"reason", to_string(sealed.error().code)}});
        const FieldError e{500, "e2ee_encryption_failed", "the response could not be encrypted, so it is withheld"};
        co_return co_await fail(e);
      }
      out = std::move(*sealed);
    }
    http::Response r = json_reply(200, std::move(out));
    for (const auto& [k, v] : headers.fields()) r.headers.set(k, v);
    co_await writer.send(std::move(r));
    co_return 200;
  }

  headers.set("Content-Type", "text/event-stream");
  headers.set("Cache-Control", "no-cache");
  headers.set("X-Accel-Buffering", "no");
  if (auto sent = co_await writer.start_stream(200, std::move(headers)); !sent) co_return 499;
  http::SseParser parser;
  std::vector<http::SseEvent> events;
  static constexpr std::string_view kDone = "data: [DONE]\n\n";
  auto stream_error = [&](std::string_view type, std::string_view message) -> net::awaitable<void> {
    const FieldError e{500, std::string(type), std::string(message)};
    const std::string event = "data: " + e2ee_error(e) + "\n\n";
    co_await writer.write(event);
    co_await writer.write(kDone);
    co_await writer.finish();
  };
  for (;;) {
    auto chunk = co_await (*upstream)->read_some();
    if (!chunk) {
      co_await stream_error("upstream_error", "the engine's stream failed before it finished");
      co_return 502;
    }
    const bool end = chunk->empty();
    if (end) {
      if (auto last = parser.finish()) events.push_back(std::move(*last));
    } else if (!parser.feed(*chunk, events)) {
      co_await stream_error("upstream_error", "the engine sent an oversized event");
      co_return 502;
    }
    for (auto& ev : events) {
      if (ev.data.empty()) continue;
      if (ev.data == "[DONE]") {
        if (auto sent = co_await writer.write(kDone); !sent) co_return 499;
        continue;
      }
      std::string data = std::move(ev.data);
      if (sealer) {
        auto sealed = sealer->encrypt(data);
        if (!sealed) {
          // Fail closed: the chunk is withheld and the stream ends with an error, never plaintext.
          log::warn("stream chunk encryption failed", {{"reason", to_string(sealed.error().code)}});
          co_await stream_error("e2ee_encryption_failed", "a response chunk could not be encrypted, so the stream stops");
          co_return 500;
        }
        data = std::move(*sealed);
      }
      const std::string out = "data: " + data + "\n\n";
      if (auto sent = co_await writer.write(out); !sent) co_return 499;
    }
    events.clear();
    if (end) break;
  }
  co_await writer.finish();
  co_return 200;
}

}  // namespace e2ee::gateway
