#pragma once
// The engine call a translated request (Messages or Responses → chat completions) becomes: one
// place, so the translating dialects cannot drift apart in what they send.

#include <string>
#include <utility>

#include "proxy/provider.hpp"

namespace e2ee::proxy {

// `Translated` has chat_json, model and stream (api::anthropic / api::responses TranslatedRequest).
template <class Translated>
E2eeCall chat_completions_call(const Translated& translated, std::string api_key) {
  E2eeCall call;
  call.path = "/v1/chat/completions";
  call.body = translated.chat_json;
  call.model = translated.model;
  call.stream = translated.stream;
  call.api_key = std::move(api_key);
  return call;
}

}  // namespace e2ee::proxy
