#pragma once
// A one-shot event that many coroutines can wait for, across the threads of an io_context: the
// single-flight primitive behind "one discovery at a time per nonce pool, everyone else waits
// for its result". All state is touched only on a private strand, so set() and wait() may race.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

namespace e2ee::proxy {

class AsyncEvent : public std::enable_shared_from_this<AsyncEvent> {
 public:
  explicit AsyncEvent(boost::asio::any_io_executor executor)
      : strand_(boost::asio::make_strand(executor)),
        timer_(strand_, boost::asio::steady_timer::time_point::max()) {}

  // Wakes every current and future waiter.
  void set() {
    boost::asio::post(strand_, [self = shared_from_this()] {
      self->set_ = true;
      self->timer_.cancel();
    });
  }

  boost::asio::awaitable<void> wait() {
    // The check and the timer wait run as one step on strand_, in a coroutine of their own; the
    // caller resumes on its own executor afterwards. (`co_await post(strand_)` is not enough: it
    // resumes the caller on the caller's executor — a request's strand — so the check and the
    // wait ran off strand_, racing set() on the flag and the timer, and a set() between them was
    // missed: the waiter slept forever. tests/proxy/async_event_concurrency_test.cpp.)
    auto self = shared_from_this();  // the event must outlive its waiters' suspension
    co_await boost::asio::co_spawn(strand_, wait_on_strand(self), boost::asio::use_awaitable);
  }

 private:
  static boost::asio::awaitable<void> wait_on_strand(std::shared_ptr<AsyncEvent> self) {
    if (self->set_) co_return;
    // Cancellation by set() completes the wait with operation_aborted: that is the signal.
    co_await self->timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer timer_;
  bool set_ = false;  // touched only on strand_
};

}  // namespace e2ee::proxy
