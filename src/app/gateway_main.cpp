// e2ee-gateway: the TEE side, in front of an OpenAI-compatible engine (see README.md).

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>

#include "app/cli.hpp"
#include "app/runtime.hpp"
#include "app/self_check_command.hpp"
#include "common/json_text.hpp"
#include "common/encoding.hpp"
#include "gateway/chutes_gateway.hpp"
#include "gateway/gateway_service.hpp"
#include "gateway/instance_identity.hpp"
#include "gateway/nonce_store.hpp"
#include "gateway/redis_store.hpp"
#include "http/client.hpp"
#include "http/server.hpp"

using namespace e2ee;

namespace {

std::vector<app::OptionSpec> option_specs() {
  return {
      {"--listen", "URL", "where clients (or the provider's API) connect: http://HOST:PORT or https://HOST:PORT", "", true, "http://127.0.0.1:8000"},
      {"--backend", "URL", "the engine's base URL (vLLM, SGLang, llama.cpp server, …)", "", false, "required"},
      {"--backend-timeout", "SECONDS",
       "how long the engine may stay silent (not one byte, e.g. during a long prefill) before the request fails",
       "", false, "1800"},
      {"--model", "NAME", "a model name to serve; without it the engine's /v1/models is used", "", true, ""},
      {"--chute-id", "UUID", "what /v1/models reports as chute_id and /e2e/instances/{id} answers to", "", false, "kept in --key-dir, else random"},
      {"--confidential", "true|false", "what /v1/models reports as confidential_compute: say true only inside a TEE", "", false, "false"},
      {"--key-dir", "DIR", "keep the instance key and id here (files 0600); without it keys are fresh on every start", "", false, ""},
      {"--nonces-per-discovery", "N", "nonces handed out per /e2e/instances call", "", false, "10"},
      {"--replay-window", "SECONDS", "dstack v2: accepted clock skew of X-E2EE-Timestamp; nonces are remembered twice as long", "", false, "300"},
      {"--allow-plaintext", "", "also forward chat requests that carry no E2EE headers (off: refused)", "", false, ""},
      {"--tsm-dir", "DIR", "the configfs-tsm directory the TDX quote comes from", "", false, "/sys/kernel/config/tsm"},
      {"--redis", "URL", "shared nonce and replay state for several replicas: redis://[:password@]host[:port][/db]", "", false, "in memory"},
      {"--tls-cert", "FILE", "TLS certificate chain (PEM) for https listeners", "TLS_CERT", false, ""},
      {"--tls-key", "FILE", "TLS private key (PEM)", "TLS_KEY", false, ""},
      {"--tls-ca", "FILE", "CA certificate appended to the served chain", "TLS_CA", false, ""},
      {"--tls-self-signed", "", "generate a fresh self-signed certificate on every start", "TLS_SELF_SIGNED", false, ""},
      {"--tls-domain", "NAME", "the name in generated certificates", "TLS_DOMAIN", false, "localhost"},
      {"--state-dir", "DIR", "where a persistent self-signed certificate is kept", "", false, "$XDG_STATE_HOME/e2ee-gateway"},
      {"--threads", "N", app::kThreadsHelp, "", false, "1"},
      {"--log-level", "LEVEL", "error, warn, info, debug or trace (no level ever logs prompts, completions or keys)", "", false, "info"},
      {"--log-format", "FORMAT", "text or json", "", false, "text"},
      {"--self-check", "", "verify every cryptographic primitive against published known answers and exit", "", false, ""},
      {"--version", "", "print the version and exit", "", false, ""},
      {"--help", "", "this text", "", false, ""},
  };
}

int fail(const std::string& line) {
  std::fprintf(stderr, "e2ee-gateway: %s\n", line.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  app::CommandLine cli("e2ee-gateway",
                       "Runs inside the TEE in front of an OpenAI-compatible engine: publishes its keys, decrypts\n"
                       "requests, forwards them to the engine on loopback and encrypts every response byte.",
                       option_specs());
  if (auto error = cli.parse(argc, argv)) return fail(*error);
  if (cli.has("--help")) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  if (cli.has("--version")) {
    std::printf("e2ee-gateway %s\n", E2EE_VERSION);
    return 0;
  }
  if (cli.has("--self-check")) return app::run_self_check_command();
  if (auto error = app::configure_logging(cli)) return fail(*error);

  auto backend_text = cli.value("--backend");
  if (!backend_text) return fail("--backend URL is required (the engine, e.g. http://127.0.0.1:8001)");
  auto backend = http::Url::parse(*backend_text);
  if (!backend) return fail("--backend: " + backend.error().message);

  gateway::ChutesGatewayOptions options;
  options.backend = *backend;
  options.models = cli.values("--model");
  const std::string confidential = cli.value("--confidential").value_or("false");
  if (confidential != "true" && confidential != "false") return fail("--confidential takes true or false");
  options.confidential = confidential == "true";
  unsigned threads = app::kDefaultThreads;
  unsigned long backend_timeout_s = 1800;  // long generations (production: 1800 s)
  try {
    if (auto v = cli.value("--nonces-per-discovery")) options.nonces_per_discovery = std::stoul(*v);
    if (auto v = cli.value("--threads")) threads = static_cast<unsigned>(std::stoul(*v));
    if (auto v = cli.value("--backend-timeout")) backend_timeout_s = std::stoul(*v);
  } catch (const std::exception&) {
    return fail("--nonces-per-discovery, --threads and --backend-timeout take numbers");
  }
  if (options.nonces_per_discovery == 0 || options.nonces_per_discovery > 10000 || threads == 0 || backend_timeout_s == 0)
    return fail("--nonces-per-discovery must be 1..10000, --threads and --backend-timeout positive");

  std::optional<std::filesystem::path> key_dir;
  if (auto v = cli.value("--key-dir")) key_dir = *v;
  auto identity = gateway::load_or_create_identity(key_dir);
  if (!identity) return fail("instance key: " + identity.error().message);
  if (auto v = cli.value("--chute-id")) {
    options.chute_id = *v;
  } else if (key_dir) {
    auto stored = gateway::read_private_file(*key_dir / "chutes-chute-id");
    if (stored && stored->size() >= 36) {
      options.chute_id = stored->substr(0, 36);
    } else {
      options.chute_id = gateway::random_uuid_v4();
      if (auto s = gateway::write_private_file(*key_dir / "chutes-chute-id", options.chute_id + "\n"); !s)
        return fail(s.error().message);
    }
  } else {
    options.chute_id = gateway::random_uuid_v4();
  }

  std::vector<http::Url> listen_urls;
  auto listen_values = cli.values("--listen");
  if (listen_values.empty()) listen_values.push_back("http://127.0.0.1:8000");
  for (const auto& v : listen_values) {
    auto u = http::Url::parse(v);
    if (!u) return fail("--listen " + v + ": " + u.error().message);
    listen_urls.push_back(*u);
  }
  std::optional<app::ListenerTls> listener_tls;
  const auto state_dir = cli.value("--state-dir").value_or(app::default_state_dir("e2ee-gateway").string());
  for (const auto& u : listen_urls) {
    if (u.tls && !listener_tls) {
      auto made = app::make_listener_tls(cli, state_dir);
      if (!made) return fail("TLS: " + made.error().message);
      listener_tls = std::move(*made);
    }
  }

  boost::asio::io_context ioc(static_cast<int>(threads));
  http::ClientOptions engine_options;
  if (backend->tls) {
    auto tls = http::TlsClientContext::create({});
    if (!tls) return fail("backend TLS: " + tls.error().message);
    engine_options.tls = *tls;
  }
  engine_options.read_timeout = std::chrono::seconds(backend_timeout_s);
  http::Client engine(ioc.get_executor(), engine_options);
  std::unique_ptr<gateway::NonceStore> nonces;
  std::string store_description = "in memory";
  if (auto url = cli.value("--redis")) {
    auto redis_options = gateway::parse_redis_url(*url);
    if (!redis_options) return fail("--redis: " + redis_options.error().message);
    auto redis = std::make_unique<gateway::RedisNonceStore>(*redis_options);
    if (auto ok = redis->ping(); !ok) return fail("--redis: " + ok.error().message);
    nonces = std::move(redis);
    store_description = "Redis " + redis_options->host + ":" + std::to_string(redis_options->port);
  } else {
    nonces = std::make_unique<gateway::MemoryNonceStore>();
  }
  gateway::ChutesGateway chutes_service(engine, *nonces, *identity, options);
  auto field_keys = gateway::load_or_create_field_keys(key_dir);
  if (!field_keys) return fail("field E2EE keys: " + field_keys.error().message);
  gateway::QuoteSource quotes(cli.value("--tsm-dir").value_or("/sys/kernel/config/tsm"));
  gateway::FieldGatewayOptions field_options;
  field_options.backend = *backend;
  field_options.models = options.models;
  field_options.allow_plaintext = cli.has("--allow-plaintext");
  try {
    if (auto v = cli.value("--replay-window")) field_options.replay_window = std::chrono::seconds(std::stol(*v));
  } catch (const std::exception&) {
    return fail("--replay-window takes a number of seconds");
  }
  if (field_options.replay_window.count() <= 0) return fail("--replay-window must be positive");
  gateway::FieldGateway field_service(engine, *nonces, *field_keys, quotes, field_options);
  gateway::GatewayService service(chutes_service, field_service);

  http::ServerLimits limits;
  limits.one_thread = threads == 1;
  // The server's own errors in the Chutes API's shape, like every other gateway error.
  limits.error_responder = [](int status, std::string_view message, const http::Request*) {
    http::Response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = "{\"detail\":" + json_text::quote(message) + "}";
    return r;
  };
  http::Server server(ioc.get_executor(),
                      [&service](http::Request& req, http::ResponseWriter& writer) { return service.handle(req, writer); },
                      limits);
  for (const auto& u : listen_urls) {
    http::Listener l{u, u.tls ? listener_tls->context : nullptr};
    if (auto status = server.listen(l); !status) return fail("cannot listen on " + u.origin() + ": " + status.error().message);
  }
  // Before the start line: whoever reads it may send SIGTERM at once.
  app::ShutdownSignals signals(ioc, [&] {
    boost::asio::co_spawn(ioc, server.shutdown(std::chrono::seconds(10)), [&](std::exception_ptr) { ioc.stop(); });
  });
  std::string where;
  for (const auto& u : server.bound()) where += (where.empty() ? "" : ", ") + u.origin();
  std::printf("e2ee-gateway %s listening on %s; engine %s; chute %s; instance %s; ML-KEM-768 key sha256 %s; "
              "secp256k1 %s; ed25519 %s; TEE quotes %s; confidential_compute=%s; keys %s; nonces %s\n",
              E2EE_VERSION, where.c_str(), backend->origin().c_str(), options.chute_id.c_str(),
              identity->instance_id.c_str(), identity->fingerprint.c_str(),
              gateway::checksum_address(field_keys->ecdsa.ethereum_address()).c_str(),
              hex_encode(field_keys->ed25519.public_raw()).c_str(), quotes.available() ? "configfs-tsm" : "unavailable (not in a TEE)",
              options.confidential ? "true" : "false", key_dir ? ("kept in " + key_dir->string()).c_str() : "fresh (no --key-dir)",
              store_description.c_str());
  std::fflush(stdout);

  app::raise_open_file_limit();
  app::tune_allocator();
  app::run_io(ioc, threads);
  return 0;
}
