#pragma once
// Ties an upstream request's lifetime to the downstream client: the one place the proxy and the
// gateway connect ResponseWriter::on_client_gone to a CancelToken.

#include <memory>

#include "http/client.hpp"
#include "http/server.hpp"

namespace e2ee::http {

// A token that is cancelled when the client behind `writer` disconnects, so the upstream request
// it is attached to (ClientRequest::cancel) is cut and the engine stops generating for nobody.
inline std::shared_ptr<CancelToken> cancel_on_disconnect(ResponseWriter& writer) {
  auto token = std::make_shared<CancelToken>();
  writer.on_client_gone([token] { token->cancel(); });
  return token;
}

}  // namespace e2ee::http
