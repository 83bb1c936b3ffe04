#pragma once
// The gateway's front door: /health, then the Chutes routes (/v1/models, /e2e/*) and the field-E2EE
// routes (dstack / NEAR / Venice), then 404; one access-log line per request, metadata only.

#include <boost/asio/awaitable.hpp>

#include "gateway/chutes_gateway.hpp"
#include "gateway/field_gateway.hpp"
#include "http/server.hpp"

namespace e2ee::gateway {

class GatewayService {
 public:
  GatewayService(ChutesGateway& chutes, FieldGateway& field) : chutes_(chutes), field_(field) {}
  boost::asio::awaitable<void> handle(http::Request& request, http::ResponseWriter& writer);

 private:
  ChutesGateway& chutes_;
  FieldGateway& field_;
};

}  // namespace e2ee::gateway
