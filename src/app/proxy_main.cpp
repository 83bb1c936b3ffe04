// e2ee-proxy: the local end-to-end-encrypting proxy (see README.md).

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>

#include "app/cli.hpp"
#include "app/runtime.hpp"
#include "api/api_error.hpp"
#include "app/self_check_command.hpp"
#include "common/log.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/tls.hpp"
#include "proxy/chutes/chutes_provider.hpp"
#include "proxy/field/field_provider.hpp"
#include "proxy/proxy_service.hpp"

using namespace e2ee;

namespace {

std::vector<app::OptionSpec> option_specs() {
  return {
      {"--listen", "URL", "where clients connect: https://HOST:PORT (TLS) or http://HOST:PORT (plain, e.g. for local containers)", "", true, "https://127.0.0.1:8443"},
      {"--provider", "NAME",
       "the E2EE protocol to speak: chutes (whole-request ML-KEM envelopes), venice (Venice AI), nearai (NEAR AI Cloud) "
       "or dstack (Phala dstack vllm-proxy, and e2ee-gateway)",
       "", false, "chutes"},
      {"--upstream", "URL",
       "the provider's API base: chutes https://api.chutes.ai, venice https://api.venice.ai, nearai "
       "https://cloud-api.near.ai; dstack has no default (the vllm-proxy or e2ee-gateway to use)",
       "", false, "per provider"},
      {"--models-upstream", "URL", "where GET /v1/models (and Chutes' model resolution) go", "", false,
       "https://llm.chutes.ai for chutes, else --upstream"},
      {"--upstream-ca", "FILE", "extra CA certificate(s) trusted for upstream TLS, besides the system store and SSL_CERT_FILE", "", true, ""},
      {"--api-key", "KEY", "provider API key used only for requests that carry none of their own", "E2EE_API_KEY", false, ""},
      {"--allow-non-confidential", "", "also send to models that do not run in confidential compute (TEE)", "ALLOW_NON_CONFIDENTIAL", false, ""},
      {"--nearai-signing-algo", "ALGO", "nearai: the key type, ecdsa (secp256k1, AES-GCM) or ed25519", "", false, "ecdsa"},
      {"--nearai-encryption-version", "N",
       "nearai with ed25519: 1 (NaCl box) or 2 (HKDF + XChaCha20-Poly1305), sent as X-Encryption-Version", "", false, "2"},
      {"--nearai-encrypt-all-fields", "BOOL",
       "nearai: send X-Encrypt-All-Fields so tool definitions, tool calls, names and refusals are encrypted too; "
       "false leaves them in plaintext",
       "", false, "true"},
      {"--dstack-signing-algo", "ALGO", "dstack: the key type, ecdsa (secp256k1) or ed25519 (X25519), both with AES-GCM", "", false,
       "ecdsa"},
      {"--dstack-version", "N",
       "dstack: 2 (per-field AAD, X-E2EE-Nonce and X-E2EE-Timestamp replay protection) or 1 (no AAD, as NEAR)", "", false, "2"},
      {"--dstack-encrypt-all-fields", "",
       "dstack: also encrypt tool definitions and tool calls (X-Encrypt-All-Fields; e2ee-gateway understands it, Phala's "
       "vllm-proxy does not and would hand the ciphertext to the model)",
       "", false, ""},
      {"--allow-missing-quote", "",
       "venice, nearai, dstack: trust a model key whose attestation report has no TDX quote (a gateway you run yourself outside a "
       "TEE); the key is then bound to nothing",
       "E2EE_ALLOW_MISSING_QUOTE", false, ""},
      {"--session-ttl", "SECONDS", "venice, nearai, dstack: how long one key pair and attested model key are used before "
       "attesting again", "", false, "3600"},
      {"--tls-cert", "FILE", "TLS certificate chain (PEM) for https listeners", "TLS_CERT", false, ""},
      {"--tls-key", "FILE", "TLS private key (PEM) for --tls-cert", "TLS_KEY", false, ""},
      {"--tls-ca", "FILE", "CA certificate appended to the served chain", "TLS_CA", false, ""},
      {"--tls-self-signed", "", "generate a fresh self-signed certificate on every start", "TLS_SELF_SIGNED", false, ""},
      {"--allowed-host", "NAMES",
       "host names the proxy answers to besides IP addresses, localhost, the --listen host and --tls-domain "
       "(comma-separated or repeated; '*' for any): requests for other names are refused as DNS rebinding",
       "E2EE_ALLOWED_HOSTS", true, ""},
      {"--cors-origin", "ORIGINS",
       "web origins (scheme://host[:port], comma-separated or repeated, or '*') allowed to call the proxy from a "
       "browser; without it any origin may when no --api-key is stored, and none may when one is",
       "E2EE_CORS_ORIGINS", true, ""},
      {"--tls-domain", "NAME", "the name in generated certificates (plus localhost and 127.0.0.1)", "TLS_DOMAIN", false, "localhost"},
      {"--state-dir", "DIR", "where the persistent self-signed certificate is kept", "", false, "$XDG_STATE_HOME/e2ee-proxy or ~/.local/state/e2ee-proxy"},
      {"--threads", "N", app::kThreadsHelp, "", false, "1"},
      {"--upstream-timeout", "SECONDS",
       "how long the provider may stay silent (not one byte, e.g. during a long prefill) before the request fails "
       "with 504 or, mid-stream, an error event",
       "", false, "300"},
      {"--gzip-level", "N", "gzip level for request bodies, 1 (fastest) to 9", "", false, "1"},
      {"--discoveries-per-minute", "N", "pace of instance discoveries per API key (the Chutes API allows 10)", "", false, "10"},
      {"--log-level", "LEVEL", "error, warn, info, debug or trace (no level ever logs prompts, completions or keys)", "", false, "info"},
      {"--log-format", "FORMAT", "text or json", "", false, "text"},
      {"--self-check", "", "verify every cryptographic primitive against published known answers and exit", "", false, ""},
      {"--version", "", "print the version and exit", "", false, ""},
      {"--help", "", "this text", "", false, ""},
  };
}

int fail(const std::string& line) {
  std::fprintf(stderr, "e2ee-proxy: %s\n", line.c_str());
  return 2;
}

Result<http::Url> url_option(const app::CommandLine& cli, const char* name, const char* fallback) {
  auto parsed = http::Url::parse(cli.value(name).value_or(fallback));
  if (!parsed) return make_error(Errc::invalid_argument, std::string(name) + ": " + parsed.error().message);
  return parsed;
}

}  // namespace

int main(int argc, char** argv) {
  app::CommandLine cli("e2ee-proxy",
                       "Runs next to you: OpenAI and Anthropic clients talk to it in plaintext, and it encrypts each\n"
                       "request end to end to a GPU instance inside a TEE, then decrypts the (streamed) answer.",
                       option_specs());
  if (auto error = cli.parse(argc, argv)) return fail(*error);
  if (cli.has("--help")) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  if (cli.has("--version")) {
    std::printf("e2ee-proxy %s\n", E2EE_VERSION);
    return 0;
  }
  if (cli.has("--self-check")) return app::run_self_check_command();
  if (auto error = app::configure_logging(cli)) return fail(*error);

  const std::string provider_name = cli.value("--provider").value_or("chutes");
  const char* default_upstream = nullptr;
  if (provider_name == "chutes") default_upstream = "https://api.chutes.ai";
  else if (provider_name == "venice") default_upstream = "https://api.venice.ai";
  else if (provider_name == "nearai") default_upstream = "https://cloud-api.near.ai";
  else if (provider_name == "dstack") default_upstream = "";
  else return fail("unknown --provider '" + provider_name + "' (chutes, venice, nearai or dstack)");
  if (provider_name == "dstack" && !cli.value("--upstream"))
    return fail("--provider dstack needs --upstream URL (the dstack vllm-proxy or e2ee-gateway to talk to)");
  auto upstream = url_option(cli, "--upstream", default_upstream);
  if (!upstream) return fail(upstream.error().message);
  auto models_upstream = provider_name == "chutes" || cli.value("--models-upstream")
                             ? url_option(cli, "--models-upstream", "https://llm.chutes.ai")
                             : upstream;
  if (!models_upstream) return fail(models_upstream.error().message);

  proxy::field::FieldOptions field_options;
  field_options.upstream = *upstream;
  field_options.models_upstream = *models_upstream;
  field_options.allow_missing_quote = cli.has("--allow-missing-quote");
  {
    auto algo_option = [&](const char* name, protocol::field::Algo& out) -> std::optional<std::string> {
      const std::string v = cli.value(name).value_or("ecdsa");
      if (v == "ecdsa") out = protocol::field::Algo::ecdsa;
      else if (v == "ed25519") out = protocol::field::Algo::ed25519;
      else return std::string(name) + " must be ecdsa or ed25519";
      return std::nullopt;
    };
    auto version_option = [&](const char* name, int& out) -> std::optional<std::string> {
      const std::string v = cli.value(name).value_or("2");
      if (v == "1") out = 1;
      else if (v == "2") out = 2;
      else return std::string(name) + " must be 1 or 2";
      return std::nullopt;
    };
    std::optional<std::string> problem;
    if (provider_name == "venice") {
      field_options.kind = proxy::field::ProviderKind::venice;
    } else if (provider_name == "nearai") {
      field_options.kind = proxy::field::ProviderKind::nearai;
      if (!problem) problem = algo_option("--nearai-signing-algo", field_options.algo);
      if (!problem) problem = version_option("--nearai-encryption-version", field_options.version);
      const std::string all = cli.value("--nearai-encrypt-all-fields").value_or("true");
      if (app::truthy(all)) field_options.encrypt_all_fields = true;
      else if (all == "false" || all == "0" || all == "no") field_options.encrypt_all_fields = false;
      else problem = "--nearai-encrypt-all-fields must be true or false";
    } else if (provider_name == "dstack") {
      field_options.kind = proxy::field::ProviderKind::dstack;
      if (!problem) problem = algo_option("--dstack-signing-algo", field_options.algo);
      if (!problem) problem = version_option("--dstack-version", field_options.version);
      field_options.encrypt_all_fields = cli.has("--dstack-encrypt-all-fields");
    }
    if (problem) return fail(*problem);
    try {
      if (auto v = cli.value("--session-ttl")) field_options.session_ttl = std::chrono::seconds(std::stol(*v));
    } catch (const std::exception&) {
      return fail("--session-ttl takes a number of seconds");
    }
    if (field_options.session_ttl.count() <= 0) return fail("--session-ttl must be positive");
  }

  std::vector<http::Url> listen_urls;
  auto listen_values = cli.values("--listen");
  if (listen_values.empty()) listen_values.push_back("https://127.0.0.1:8443");
  for (const auto& v : listen_values) {
    auto u = http::Url::parse(v);
    if (!u) return fail("--listen " + v + ": " + u.error().message);
    listen_urls.push_back(*u);
  }

  unsigned threads = app::kDefaultThreads;
  int gzip_level = 1;
  std::size_t discoveries = 10;
  unsigned long upstream_timeout_s = 300;
  try {
    if (auto v = cli.value("--upstream-timeout")) upstream_timeout_s = std::stoul(*v);
    if (auto v = cli.value("--threads")) threads = static_cast<unsigned>(std::stoul(*v));
    if (auto v = cli.value("--gzip-level")) gzip_level = std::stoi(*v);
    if (auto v = cli.value("--discoveries-per-minute")) discoveries = std::stoul(*v);
  } catch (const std::exception&) {
    return fail("--threads, --gzip-level, --discoveries-per-minute and --upstream-timeout take numbers");
  }
  if (threads == 0 || gzip_level < 1 || gzip_level > 9 || discoveries == 0 || upstream_timeout_s == 0)
    return fail("--threads, --discoveries-per-minute and --upstream-timeout must be positive and --gzip-level 1..9");

  http::TlsClientOptions client_tls_options;
  for (const auto& f : cli.values("--upstream-ca")) client_tls_options.extra_ca_files.emplace_back(f);
  auto client_tls = http::TlsClientContext::create(client_tls_options);
  if (!client_tls) return fail("upstream TLS: " + client_tls.error().message);

  std::optional<app::ListenerTls> listener_tls;
  const auto state_dir = cli.value("--state-dir").value_or(app::default_state_dir("e2ee-proxy").string());
  for (const auto& u : listen_urls) {
    if (u.tls && !listener_tls) {
      auto made = app::make_listener_tls(cli, state_dir);
      if (!made) return fail("TLS: " + made.error().message);
      listener_tls = std::move(*made);
    }
  }

  boost::asio::io_context ioc(static_cast<int>(threads));
  http::ClientOptions client_options;
  client_options.tls = *client_tls;
  client_options.read_timeout = std::chrono::seconds(upstream_timeout_s);
  http::Client client(ioc.get_executor(), client_options);

  proxy::chutes::ChutesOptions chutes;
  chutes.api_upstream = *upstream;
  chutes.models_upstream = *models_upstream;
  chutes.allow_non_confidential = cli.has("--allow-non-confidential");
  chutes.gzip_level = gzip_level;
  chutes.discoveries_per_minute = discoveries;
  std::unique_ptr<proxy::Provider> provider;
  if (provider_name == "chutes") provider = std::make_unique<proxy::chutes::ChutesProvider>(ioc.get_executor(), client, chutes);
  else provider = std::make_unique<proxy::field::FieldProvider>(ioc.get_executor(), client, field_options);

  proxy::ProxyOptions proxy_options;
  if (auto key = cli.value("--api-key"); key && !key->empty()) proxy_options.default_api_key = *key;
  proxy_options.browser.key_stored = proxy_options.default_api_key.has_value();
  const auto add_names = [](std::vector<std::string>& to, std::string_view list) {
    for (auto& name : proxy::split_list(list)) to.push_back(std::move(name));
  };
  for (const auto& v : cli.values("--allowed-host")) add_names(proxy_options.browser.allowed_hosts, v);
  for (const auto& u : listen_urls) add_names(proxy_options.browser.allowed_hosts, u.host);
  add_names(proxy_options.browser.allowed_hosts, cli.value("--tls-domain").value_or("localhost"));
  for (const auto& v : cli.values("--cors-origin")) add_names(proxy_options.browser.cors_origins, v);
  proxy::ProxyService service(*provider, proxy_options);

  http::ServerLimits limits;
  limits.one_thread = threads == 1;
  // The server's own errors (body too large, malformed request) in the dialect the path implies.
  limits.error_responder = [](int status, std::string_view message, const http::Request* head) {
    const bool anthropic = head != nullptr && head->path.rfind("/v1/messages", 0) == 0;
    const api::ApiError error{status, status >= 500 ? "server_error" : "invalid_request_error",
                              status == 413 ? "request_too_large" : "invalid_request", std::string(message), 0};
    http::Response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = anthropic ? api::anthropic_error_json(error) : api::openai_error_json(error);
    return r;
  };
  http::Server server(
      ioc.get_executor(),
      [&service](http::Request& req, http::ResponseWriter& writer) { return service.handle(req, writer); }, limits);
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
  std::string provider_detail;
  if (provider_name == "nearai" || provider_name == "dstack") {
    // NEAR's version applies to ed25519 only; dstack's to both.
    const bool versioned = provider_name == "dstack" || field_options.algo == protocol::field::Algo::ed25519;
    provider_detail = std::string(", ") + std::string(protocol::field::algo_name(field_options.algo)) +
                      (versioned ? " v" + std::to_string(field_options.version) : std::string()) +
                      (field_options.encrypt_all_fields ? ", all fields" : "");
  }
  std::printf("e2ee-proxy %s listening on %s; provider %s%s via %s (models: %s)%s%s%s\n", E2EE_VERSION, where.c_str(),
              provider_name.c_str(), provider_detail.c_str(), upstream->origin().c_str(), models_upstream->origin().c_str(),
              listener_tls ? ("; TLS " + listener_tls->mode + ", certificate sha256 " + listener_tls->fingerprint).c_str() : "",
              provider_name == "chutes" && chutes.allow_non_confidential ? "; NON-CONFIDENTIAL MODELS ALLOWED" : "",
              provider_name != "chutes" && field_options.allow_missing_quote ? "; KEYS WITHOUT A TDX QUOTE ALLOWED" : "");
  if (listener_tls && !listener_tls->certificate_file.empty())
    std::printf("  trust it: curl --cacert %s | NODE_EXTRA_CA_CERTS=%s | SSL_CERT_FILE=%s\n",
                listener_tls->certificate_file.c_str(), listener_tls->certificate_file.c_str(),
                listener_tls->certificate_file.c_str());
  std::fflush(stdout);

  app::raise_open_file_limit();
  app::tune_allocator();
  app::run_io(ioc, threads);
  return 0;
}
