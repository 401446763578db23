// Private to db/: waits for one asynchronous operation or a deadline, whichever comes first,
// safely on an io_context run by several threads.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <utility>

namespace tenantd::db::detail {

struct deadline_result {
  boost::system::error_code ec;  // the operation's own completion (operation_aborted after a timeout)
  bool timed_out{false};
};

// `start(handler)` must start one operation completing with void(error_code) that honours
// terminal cancellation through the handler's cancellation slot. When `deadline` passes first,
// the operation is cancelled and the result says timed_out. The operation completes on the
// awaiting coroutine's executor.
//
// Not asio::experimental::parallel_group: in Boost 1.81 it registers its cancellation handler
// after launching the operations, which races with a completion on another thread. Here the
// timer and the cancellation signal are only touched under one mutex, and the signal is only
// emitted while the operation has not completed.
template <class Start>
boost::asio::awaitable<deadline_result> with_deadline(Start start, std::chrono::steady_clock::time_point deadline) {
  namespace net = boost::asio;
  struct shared_state {
    explicit shared_state(net::any_io_executor executor) : timer(std::move(executor)) {}
    std::mutex mutex;
    net::steady_timer timer;
    net::cancellation_signal cancel;
    bool done{false};
    bool timed_out{false};
  };
  const auto executor = co_await net::this_coro::executor;
  // Named, not a temporary in the co_await expression: GCC 12 destroys such temporaries twice.
  auto initiation = [&start, deadline, executor](auto handler) {
    auto state = std::make_shared<shared_state>(executor);
    auto handler_executor = net::get_associated_executor(handler, executor);
    start(net::bind_cancellation_slot(state->cancel.slot(),
                                      net::bind_executor(handler_executor, [state, handler = std::move(handler)](
                                                                               boost::system::error_code ec) mutable {
                                        deadline_result result{ec, false};
                                        {
                                          std::lock_guard lock(state->mutex);
                                          state->done = true;
                                          result.timed_out = state->timed_out;
                                          state->timer.cancel();
                                        }
                                        std::move(handler)(result);
                                      })));
    std::lock_guard lock(state->mutex);
    if (state->done) return;
    state->timer.expires_at(deadline);
    state->timer.async_wait([state](boost::system::error_code ec) {
      std::lock_guard timer_lock(state->mutex);
      if (ec || state->done) return;
      state->timed_out = true;
      state->cancel.emit(net::cancellation_type::terminal);  // completions are posted, never run inline
    });
  };
  co_return co_await net::async_initiate<const net::use_awaitable_t<>, void(deadline_result)>(initiation,
                                                                                              net::use_awaitable);
}

}  // namespace tenantd::db::detail
