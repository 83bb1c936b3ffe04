#pragma once
// What a decrypting EventStream (Chutes, field E2EE) holds between upstream reads: the events
// already decrypted and not yet taken, and the failure that ends the stream after them. One read
// can carry good events followed by a bad one; the client is owed the good ones first, whatever
// way the bytes were split into reads, and then the error (fail closed: nothing after it).

#include <deque>
#include <optional>
#include <utility>
#include <variant>

#include "http/sse.hpp"
#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {

class DecryptedEvents {
 public:
  using Next = std::variant<std::optional<http::SseEvent>, ProxyError>;

  // Only while no failure is recorded: nothing after a failure reaches the client.
  void push(http::SseEvent event) {
    if (!failure_) ready_.push_back(std::move(event));
  }
  // The first failure is the one reported.
  void fail(ProxyError error) {
    if (!failure_) failure_ = std::move(error);
  }
  bool failed() const noexcept { return failure_.has_value(); }
  // Forgets everything, for a retry from scratch (nothing was taken yet).
  void clear() noexcept {
    ready_.clear();
    failure_.reset();
  }

  // The next waiting event, if any.
  std::optional<http::SseEvent> take() {
    if (ready_.empty()) return std::nullopt;
    http::SseEvent event = std::move(ready_.front());
    ready_.pop_front();
    return event;
  }
  // What next() returns without reading upstream: a waiting event, else the failure; nullopt
  // when it has to read.
  std::optional<Next> settled() {
    if (auto event = take()) return Next(std::move(event));
    if (failure_) return Next(*failure_);
    return std::nullopt;
  }

 private:
  std::deque<http::SseEvent> ready_;
  std::optional<ProxyError> failure_;
};

}  // namespace e2ee::proxy
