// FieldProvider against an in-process fake of each provider (loopback HTTP, real envelopes): the
// request reaches the model decrypted, answers come back decrypted, a refused attestation sends
// nothing, and the recoveries happen exactly once — 421 → re-attest and retry, an answer that does
// not open before anything was relayed → new session and retry — while a plaintext answer or
// missing E2EE confirmation ends the request with an error (fail closed).

#include "http/test_support.hpp"

#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include "common/encoding.hpp"
#include "http/client.hpp"
#include "protocol/field/fields.hpp"
#include "proxy/field/field_provider.hpp"

namespace e2ee::proxy::field {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using http::testing::listen_local;
using http::testing::run;
using protocol::field::KeyPair;
using protocol::field::Scheme;

Bytes quote_for(ByteView identity, ByteView nonce, bool debug) {
  Bytes q(1024, 0x5c);
  q[0] = 4;
  q[1] = 0;
  q[2] = 2;
  q[3] = 0;
  q[4] = 0x81;
  q[5] = q[6] = q[7] = 0;
  std::fill(q.begin() + 168, q.begin() + 176, 0);
  if (debug) q[168] = 1;
  std::fill(q.begin() + 568, q.begin() + 632, 0);
  std::copy(identity.begin(), identity.end(), q.begin() + 568);
  std::copy(nonce.begin(), nonce.end(), q.begin() + 600);
  return q;
}

std::string query_value(std::string_view query, std::string_view key) {
  const std::string needle = std::string(key) + "=";
  std::size_t at = 0;
  while ((at = query.find(needle, at)) != std::string_view::npos) {
    if (at == 0 || query[at - 1] == '&') {
      const auto end = query.find('&', at);
      return std::string(query.substr(at + needle.size(), end == std::string_view::npos ? std::string_view::npos : end - at - needle.size()));
    }
    ++at;
  }
  return {};
}

// One fake provider speaking `kind`'s protocol with a fixed model key.
struct Fake {
  ProviderKind kind;
  Algo algo;
  int version;  // nearai ed25519 / dstack
  KeyPair model;
  std::string model_name = "test-model";

  // Knobs.
  bool debug_quote = false;
  int answer_421 = 0;                // the next N chat requests get HTTP 421
  int seal_to_stranger = 0;          // the next N answers are sealed to a key that is not the client's
  bool plaintext_answer = false;     // answer in plaintext (dstack: while claiming X-E2EE-Applied: true)
  bool omit_applied = false;         // dstack: no X-E2EE-Applied header

  // Observations.
  int reports = 0;
  int chats = 0;
  std::vector<std::string> decrypted_requests;
  std::vector<http::Headers> request_headers;

  Fake(ProviderKind k, Algo a, int v) : kind(k), algo(a), version(v), model(KeyPair::generate(a)) {}

  Bytes identity() const {
    auto peer = PeerKey::parse(algo, model.public_raw());
    return key_identity(*peer);
  }

  std::string report(std::string_view nonce_hex) const {
    const Bytes nonce = *hex_decode(nonce_hex);
    const Bytes id = identity();
    json::object r;
    r["signing_algo"] = std::string(protocol::field::algo_name(algo));
    r["request_nonce"] = std::string(nonce_hex);
    r["signing_public_key"] = hex_encode(model.public_raw());
    r["signing_address"] = algo == Algo::ecdsa ? "0x" + hex_encode(id) : hex_encode(id);
    r["intel_quote"] = hex_encode(quote_for(id, nonce, debug_quote));
    if (kind == ProviderKind::dstack) return json::serialize(r);
    if (kind == ProviderKind::nearai) {
      r["model_name"] = model_name;
      json::object doc;
      doc["model_attestations"] = json::array{r};
      return json::serialize(doc);
    }
    r["verified"] = true;
    r["nonce"] = std::string(nonce_hex);
    r["model"] = model_name;
    r["server_verification"] = json::object{{"tdx", json::object{{"valid", true}}}, {"nonceBinding", true}, {"signingAddressBinding", true}};
    return json::serialize(r);
  }

  protocol::field::FieldPolicy policy_of(const http::Headers& h) const {
    protocol::field::FieldPolicy p;
    if (algo == Algo::ecdsa) p.scheme = Scheme::ecdsa;
    else if (kind == ProviderKind::dstack) p.scheme = Scheme::ed25519_aes_gcm;
    else p.scheme = version == 1 ? Scheme::ed25519_box : Scheme::ed25519_xchacha;
    p.all_fields = h.get("X-Encrypt-All-Fields").value_or("") == "true";
    if (auto n = h.get("X-E2EE-Nonce")) p.v2 = protocol::field::V2Context{std::string(*n), std::stoll(std::string(h.get("X-E2EE-Timestamp").value_or("0")))};
    return p;
  }

  std::string client_key_header() const {
    return kind == ProviderKind::venice ? "X-Venice-TEE-Client-Pub-Key" : "X-Client-Pub-Key";
  }

  http::Handler handler() {
    return [this](http::Request& req, http::ResponseWriter& w) -> net::awaitable<void> {
      const bool venice = kind == ProviderKind::venice;
      const std::string report_path = venice ? "/api/v1/tee/attestation" : "/v1/attestation/report";
      const std::string chat_path = venice ? "/api/v1/chat/completions" : "/v1/chat/completions";
      if (req.method == "GET" && req.path == report_path) {
        ++reports;
        co_await w.send(http::testing::reply(200, report(query_value(req.query, "nonce"))));
        co_return;
      }
      if (req.method != "POST" || req.path != chat_path) {
        co_await w.send(http::testing::reply(404, "{}"));
        co_return;
      }
      ++chats;
      request_headers.push_back(req.headers);
      if (answer_421 > 0) {
        --answer_421;
        co_await w.send(http::testing::reply(421, R"({"error":{"type":"provider_error","message":"The encryption key is no longer valid."}})"));
        co_return;
      }
      const auto policy = policy_of(req.headers);
      auto plain = protocol::field::decrypt_request(req.body, policy, model);
      if (!plain) {
        co_await w.send(http::testing::reply(400, R"({"error":{"message":"Decryption failed","type":"e2ee_decryption_failed"}})"));
        co_return;
      }
      decrypted_requests.push_back(*plain);
      const bool stream = json::parse(*plain).as_object().at("stream") == json::value(true);

      Bytes client_raw = *hex_decode(req.headers.get(client_key_header()).value_or(""));
      if (seal_to_stranger > 0) {
        --seal_to_stranger;
        client_raw = KeyPair::generate(algo).public_raw();
      }
      auto client_key = PeerKey::parse(algo, client_raw);
      protocol::field::ResponseSealer sealer(policy, *client_key, kind == ProviderKind::dstack);
      const auto seal = [&](const std::string& text) { return plaintext_answer ? text : *sealer.encrypt(text); };

      http::Headers headers;
      if (kind == ProviderKind::dstack && !omit_applied) {
        headers.set("X-E2EE-Applied", "true");
        headers.set("X-E2EE-Version", std::string(req.headers.get("X-E2EE-Version").value_or("1")));
        headers.set("X-E2EE-Algo", std::string(protocol::field::algo_name(algo)));
      }
      if (!stream) {
        headers.set("Content-Type", "application/json");
        http::Response r;
        r.headers = headers;
        r.body = seal(R"({"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"test-model","choices":[{"index":0,"message":{"role":"assistant","content":"the answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})");
        co_await w.send(std::move(r));
        co_return;
      }
      headers.set("Content-Type", "text/event-stream");
      co_await w.start_stream(200, headers);
      for (const char* delta : {"the ", "answer"}) {
        json::object chunk{{"id", "chatcmpl-9"}, {"object", "chat.completion.chunk"}, {"created", 1}, {"model", "test-model"}};
        chunk["choices"] = json::array{json::object{{"index", 0}, {"delta", json::object{{"content", delta}}}}};
        const std::string event = "data: " + seal(json::serialize(chunk)) + "\n\n";
        co_await w.write(event);
      }
      const std::string usage = "data: " + seal(R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"test-model","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})") + "\n\n";
      co_await w.write(usage);
      co_await w.write("data: [DONE]\n\n");
      co_await w.finish();
    };
  }
};

struct Harness {
  net::io_context ioc;
  Fake fake;
  http::Server server;
  http::Url url;
  http::Client client;
  FieldProvider provider;

  Harness(ProviderKind kind, Algo algo, int version, bool all_fields = false)
      : fake(kind, algo, version),
        server(ioc.get_executor(), fake.handler()),
        url(listen_local(server)),
        client(ioc.get_executor(), http::ClientOptions{}),
        provider(ioc.get_executor(), client, options(kind, algo, version, all_fields, url)) {}

  static FieldOptions options(ProviderKind kind, Algo algo, int version, bool all_fields, const http::Url& url) {
    FieldOptions o;
    o.kind = kind;
    o.algo = algo;
    o.version = version;
    o.encrypt_all_fields = all_fields;
    o.upstream = url;
    o.models_upstream = url;
    return o;
  }

  E2eeCall call(bool stream, std::string body = {}) const {
    E2eeCall c;
    c.path = "/v1/chat/completions";
    c.model = fake.model_name;
    c.stream = stream;
    c.api_key = "sk-test";
    c.body = body.empty() ? std::string(R"({"model":"test-model","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"the secret question"}],"stream":)") +
                                (stream ? "true" : "false") + "}"
                          : std::move(body);
    return c;
  }

  void stop() {
    net::co_spawn(ioc, server.shutdown(0ms), net::detached);
  }
};

// Drains a stream: the decrypted data of each event, or the error that ended it.
net::awaitable<std::variant<std::vector<std::string>, ProxyError>> drain(EventStream& events) {
  std::vector<std::string> out;
  for (;;) {
    auto next = co_await events.next();
    if (auto* e = std::get_if<ProxyError>(&next)) co_return *e;
    auto& ev = std::get<std::optional<http::SseEvent>>(next);
    if (!ev) co_return out;
    out.push_back(ev->data);
  }
}

std::string content_of(const std::vector<std::string>& events) {
  std::string out;
  for (const auto& e : events) {
    if (e == "[DONE]") continue;
    const auto doc = json::parse(e).as_object();
    for (const auto& c : doc.at("choices").as_array())
      if (const auto* d = c.as_object().at("delta").as_object().if_contains("content"); d && d->is_string()) out += std::string(d->as_string());
  }
  return out;
}

struct Case {
  ProviderKind kind;
  Algo algo;
  int version;
};

class Flow : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& param) {
  const Case& c = param.param;
  return std::string(c.kind == ProviderKind::venice ? "venice" : c.kind == ProviderKind::nearai ? "nearai" : "dstack") + "_" +
         std::string(protocol::field::algo_name(c.algo)) + "_v" + std::to_string(c.version);
}

TEST_P(Flow, StreamsAndAnswersDecrypted) {
  const Case p = GetParam();
  Harness h(p.kind, p.algo, p.version);
  std::string streamed, answered;
  run(h.ioc, [&]() -> net::awaitable<void> {
    auto result = co_await h.provider.call(h.call(true));
    if (auto* e = std::get_if<ProxyError>(&result)) ADD_FAILURE() << e->message;
    else {
      auto events = co_await drain(*std::get<CallResult>(result).events);
      if (auto* failed = std::get_if<ProxyError>(&events)) ADD_FAILURE() << failed->message;
      else {
        EXPECT_EQ(std::get<std::vector<std::string>>(events).back(), "[DONE]");
        streamed = content_of(std::get<std::vector<std::string>>(events));
      }
    }
    auto second = co_await h.provider.call(h.call(false));
    if (auto* e = std::get_if<ProxyError>(&second)) ADD_FAILURE() << e->message;
    else answered = std::get<CallResult>(second).body;
    h.stop();
  });
  EXPECT_EQ(streamed, "the answer");
  const auto doc = json::parse(answered).as_object();
  EXPECT_EQ(doc.at("object"), json::value("chat.completion"));
  EXPECT_EQ(doc.at("choices").at(0).at("message").at("content"), json::value("the answer"));
  EXPECT_EQ(doc.at("usage").at("total_tokens"), json::value(5));
  EXPECT_EQ(h.fake.reports, 1);  // one session for both requests
  ASSERT_EQ(h.fake.decrypted_requests.size(), 2u);
  const auto seen = json::parse(h.fake.decrypted_requests[0]).as_object();
  EXPECT_EQ(seen.at("messages").at(1).at("content"), json::value("the secret question"));
  // Venice always streams upstream, even for the non-stream client.
  const auto second_seen = json::parse(h.fake.decrypted_requests[1]).as_object();
  EXPECT_EQ(second_seen.at("stream"), json::value(p.kind == ProviderKind::venice));
}

INSTANTIATE_TEST_SUITE_P(
    Providers, Flow,
    ::testing::Values(Case{ProviderKind::venice, Algo::ecdsa, 1}, Case{ProviderKind::nearai, Algo::ecdsa, 2},
                      Case{ProviderKind::nearai, Algo::ed25519, 1}, Case{ProviderKind::nearai, Algo::ed25519, 2},
                      Case{ProviderKind::dstack, Algo::ecdsa, 1}, Case{ProviderKind::dstack, Algo::ecdsa, 2},
                      Case{ProviderKind::dstack, Algo::ed25519, 1}, Case{ProviderKind::dstack, Algo::ed25519, 2}),
    case_name);

TEST(FlowRefusals, DebugQuoteSendsNothing) {
  Harness h(ProviderKind::dstack, Algo::ecdsa, 2);
  h.fake.debug_quote = true;
  std::optional<ProxyError> error;
  run(h.ioc, [&]() -> net::awaitable<void> {
    auto result = co_await h.provider.call(h.call(true));
    if (auto* e = std::get_if<ProxyError>(&result)) error = *e;
    h.stop();
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "attestation_failed");
  EXPECT_NE(error->message.find("debug"), std::string::npos);
  EXPECT_EQ(h.fake.chats, 0);
}

TEST(FlowRefusals, OnlyChatCompletionsIsCarried) {
  Harness h(ProviderKind::nearai, Algo::ecdsa, 2);
  std::optional<ProxyError> error;
  run(h.ioc, [&]() -> net::awaitable<void> {
    auto c = h.call(false);
    c.path = "/v1/completions";
    auto result = co_await h.provider.call(std::move(c));
    if (auto* e = std::get_if<ProxyError>(&result)) error = *e;
    h.stop();
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "unsupported_endpoint");
  EXPECT_EQ(h.fake.reports + h.fake.chats, 0);
}

TEST(FlowRefusals, DstackPlaintextOrUnconfirmedAnswersAreRefused) {
  for (int variant = 0; variant < 3; ++variant) {
    Harness h(ProviderKind::dstack, Algo::ed25519, 2);
    if (variant == 0) h.fake.omit_applied = true;
    else h.fake.plaintext_answer = true;
    std::optional<ProxyError> error;
    run(h.ioc, [&]() -> net::awaitable<void> {
      auto result = co_await h.provider.call(h.call(variant != 2));
      if (auto* e = std::get_if<ProxyError>(&result)) error = *e;
      else if (auto& r = std::get<CallResult>(result); r.events) {
        auto events = co_await drain(*r.events);
        if (auto* failed = std::get_if<ProxyError>(&events)) error = *failed;
      }
      h.stop();
    });
    ASSERT_TRUE(error) << variant;
    EXPECT_EQ(error->code, variant == 0 ? "e2ee_not_applied" : "response_decryption_failed") << variant;
  }
}

TEST(FlowRecovery, Http421ReattestsAndRetriesOnce) {
  Harness h(ProviderKind::nearai, Algo::ed25519, 2, true);
  h.fake.answer_421 = 1;
  std::string body;
  run(h.ioc, [&]() -> net::awaitable<void> {
    auto result = co_await h.provider.call(h.call(false));
    if (auto* e = std::get_if<ProxyError>(&result)) ADD_FAILURE() << e->message;
    else body = std::get<CallResult>(result).body;
    h.stop();
  });
  EXPECT_EQ(h.fake.reports, 2);
  EXPECT_EQ(h.fake.chats, 2);
  EXPECT_NE(body.find("the answer"), std::string::npos);
  ASSERT_EQ(h.fake.request_headers.size(), 2u);
  EXPECT_EQ(h.fake.request_headers[0].get("X-Encrypt-All-Fields").value_or(""), "true");
  // The retry carries a new client key (a new session).
  EXPECT_NE(h.fake.request_headers[0].get("X-Client-Pub-Key"), h.fake.request_headers[1].get("X-Client-Pub-Key"));
}

TEST(FlowRecovery, Http421TwiceIsAnError) {
  Harness h(ProviderKind::nearai, Algo::ecdsa, 2, true);
  h.fake.answer_421 = 5;
  std::optional<ProxyError> error;
  run(h.ioc, [&]() -> net::awaitable<void> {
    auto result = co_await h.provider.call(h.call(true));
    if (auto* e = std::get_if<ProxyError>(&result)) error = *e;
    h.stop();
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "e2ee_model_key_rejected");
  EXPECT_EQ(h.fake.chats, 2);
}

TEST(FlowRecovery, UndecryptableAnswerRenewsTheSessionAndRetriesOnce) {
  for (bool stream : {true, false}) {
    Harness h(ProviderKind::dstack, Algo::ecdsa, 2);
    h.fake.seal_to_stranger = 1;
    std::string content;
    run(h.ioc, [&]() -> net::awaitable<void> {
      auto result = co_await h.provider.call(h.call(stream));
      if (auto* e = std::get_if<ProxyError>(&result)) ADD_FAILURE() << e->message;
      else if (auto& r = std::get<CallResult>(result); r.events) {
        auto events = co_await drain(*r.events);
        if (auto* failed = std::get_if<ProxyError>(&events)) ADD_FAILURE() << failed->message;
        else content = content_of(std::get<std::vector<std::string>>(events));
      } else {
        content = std::string(json::parse(r.body).at("choices").at(0).at("message").at("content").as_string());
      }
      h.stop();
    });
    EXPECT_EQ(content, "the answer") << stream;
    EXPECT_EQ(h.fake.reports, 2) << stream;
    EXPECT_EQ(h.fake.chats, 2) << stream;
  }
}

TEST(FlowRecovery, UndecryptableTwiceIsAnError) {
  Harness h(ProviderKind::venice, Algo::ecdsa, 1);
  h.fake.seal_to_stranger = 2;
  std::optional<ProxyError> error;
  run(h.ioc, [&]() -> net::awaitable<void> {
    auto result = co_await h.provider.call(h.call(false));
    if (auto* e = std::get_if<ProxyError>(&result)) error = *e;
    h.stop();
  });
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, "response_decryption_failed");
  EXPECT_EQ(h.fake.chats, 2);
}

TEST(FlowModels, ListIsPassedThrough) {
  Harness h(ProviderKind::venice, Algo::ecdsa, 1);
  http::Response got;
  run(h.ioc, [&]() -> net::awaitable<void> {
    http::Request req;
    req.method = "GET";
    req.path = "/v1/models";
    const std::string key = "sk";
    got = co_await h.provider.list_models(req, key);
    h.stop();
  });
  EXPECT_EQ(got.status, 404);  // the fake has no /api/v1/models: its answer comes back as it is
  EXPECT_EQ(got.body, "{}");
}

}  // namespace
}  // namespace e2ee::proxy::field
