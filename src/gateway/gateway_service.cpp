#include "gateway/gateway_service.hpp"

#include <chrono>

#include "common/log.hpp"

namespace e2ee::gateway {

boost::asio::awaitable<void> GatewayService::handle(http::Request& request, http::ResponseWriter& writer) {
  const auto started = std::chrono::steady_clock::now();
  const std::string path = request.path;
  int status = 0;
  bool handled = false;
  if (path == "/health") {
    http::Response r;
    r.headers.set("Content-Type", "application/json");
    r.body = "{\"status\":\"ok\"}\n";
    co_await writer.send(std::move(r));
    status = 200;
    handled = true;
  }
  if (!handled) handled = co_await field_.handle(request, writer, status);
  if (!handled) handled = co_await chutes_.handle(request, writer, status);
  if (!handled) {
    http::Response r;
    r.status = 404;
    r.headers.set("Content-Type", "application/json");
    r.body = "{\"detail\":\"Not Found\"}";
    co_await writer.send(std::move(r));
    status = 404;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  log::info("request", {{"method", request.method}, {"path", path.substr(0, 100)}, {"status", status}, {"ms", ms}});
}

}  // namespace e2ee::gateway
