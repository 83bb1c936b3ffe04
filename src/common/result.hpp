#pragma once
// Result<T>: a value or an Error, for every operation that a peer or the environment can make
// fail. No exceptions on the data path; exceptions stay for start-up and configuration.

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace e2ee {

// What went wrong, stable enough to map onto HTTP statuses and client-visible error types.
enum class Errc {
  invalid_argument,     // caller passed something malformed (bad hex, bad JSON, …)
  invalid_length,       // a byte string has the wrong size
  invalid_key,          // a key failed validation (off-curve point, modulus or hash check)
  authentication_failed,// an AEAD tag did not verify
  limit_exceeded,       // a size limit was hit (decompression bomb, body too large)
  malformed,            // structurally broken input (truncated gzip, bad envelope)
  unavailable,          // a dependency is down or refused (peer, Redis, TEE device)
  not_answered,         // a reused keep-alive connection closed before any response byte; the
                        // request was not replayed (it may have been acted on): resend it with
                        // fresh single-use values if that is safe
  timeout,              // a deadline passed (connect, read, idle)
  cancelled,            // the operation was abandoned (client went away, shutdown)
  protocol,             // a peer broke its protocol (bad HTTP, TLS failure, unexpected framing)
  internal,             // a library call failed where it should not
};

const char* to_string(Errc code) noexcept;

// Error messages never contain secret material (keys, plaintext): they are logged.
struct Error {
  Errc code;
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(state_); }
  const T& value() const& { assert(has_value()); return std::get<0>(state_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { assert(!has_value()); return std::get<1>(state_); }
  Error&& error() && { assert(!has_value()); return std::get<1>(std::move(state_)); }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  const Error& error() const& { assert(failed_); return error_; }
  Error&& error() && { assert(failed_); return std::move(error_); }

 private:
  Error error_{Errc::internal, {}};
  bool failed_ = false;
};

using Status = Result<void>;

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace e2ee
