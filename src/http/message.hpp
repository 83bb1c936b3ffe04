#pragma once
// The request and response values the server hands to handlers and the client returns. Bodies of
// requests are complete (they are bounded JSON documents); streaming responses go through
// ResponseWriter (server side) and ResponseStream (client side).

#include <string>

#include "http/headers.hpp"

namespace e2ee::http {

struct Request {
  std::string method;   // "GET", "POST", …
  std::string target;   // as received: path plus optional "?query"
  std::string path;     // target without the query, percent-decoding NOT applied
  std::string query;    // after '?', may be empty
  Headers headers;
  std::string body;
  std::string remote_address;  // peer IP, for logs
  bool tls = false;            // arrived on a TLS listener
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
};

}  // namespace e2ee::http
