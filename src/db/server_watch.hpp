// Whether a database server still answers, for the calls waiting on it. A server that stops
// answering without closing its connections (a paused or hung host, a network that drops
// packets) would otherwise hold every call until the call's own deadline (statement timeout
// + 1 s). The connections of one server share a watch: a call that has waited
// `suspect_after` for an answer asks for a probe (a new connection that only waits for the
// server's first byte, no authentication); when the probe gets nothing within
// `probe_timeout` and no connection to that server heard anything since the probe began,
// the server is down: waiting calls give up with unavailable_error (503 with Retry-After)
// and new ones fail at once, until a probe, repeated every `probe_every`, is answered again.
// A slow statement on a server that answers probes is never cut short. Thread-safe.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace tenantd::db {

struct server_watch_settings {
  std::string server;  // its name, for messages and logs
  std::chrono::milliseconds suspect_after{500};
  std::chrono::milliseconds probe_timeout{1000};
  std::chrono::milliseconds probe_every{250};      // while down
  std::chrono::milliseconds probe_every_up{1000};  // at most, while it answers
};

class server_watch : public std::enable_shared_from_this<server_watch> {
 public:
  static std::shared_ptr<server_watch> create(boost::asio::any_io_executor executor, server_watch_settings settings);

  // A call on a connection with `conninfo` has been waiting `waited` for the server: may
  // start a probe (on the watch's executor).
  void waiting(std::chrono::steady_clock::duration waited, const std::string& conninfo);
  // Something arrived from the server on one of its connections.
  void heard() noexcept;
  bool down() const noexcept { return down_.load(std::memory_order_relaxed); }
  // What a call that gives up because of it says ("database server pg3 is not answering ...").
  std::string down_message() const;
  // Times the server was found down, since start.
  std::uint64_t outages() const noexcept { return outages_.load(); }
  // Ends probing (the registry is shutting down); the watch says up from now on.
  void stop() noexcept;

 private:
  server_watch(boost::asio::any_io_executor executor, server_watch_settings settings);
  boost::asio::awaitable<void> probe_loop(std::shared_ptr<server_watch> self);

  boost::asio::any_io_executor executor_;
  server_watch_settings settings_;
  std::atomic<bool> down_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<std::int64_t> last_heard_{0};  // steady_clock ticks
  std::atomic<std::uint64_t> outages_{0};
  std::mutex mutex_;
  bool probing_{false};
  std::string conninfo_;
  std::chrono::steady_clock::time_point last_probe_{};
  std::chrono::steady_clock::time_point down_since_{};
};

}  // namespace tenantd::db
