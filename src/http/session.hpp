// Internal to http/: the state a server shares with its sessions (options, callbacks,
// counters, the registry used by close_all) and the entry point that starts one session.
#pragma once
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "domain/lane.hpp"
#include "http/server.hpp"

namespace tenantd::http {

class session;

struct server_state {
  server_state(server_options opts, request_handler on_request, error_responder on_reject)
      : options(std::move(opts)), handler(std::move(on_request)), on_error(std::move(on_reject)) {}

  const server_options options;
  const request_handler handler;
  const error_responder on_error;
  std::atomic<std::size_t> open_connections{0};  // counted from accept until the socket closes
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> stopping{false};  // set by stop_accepting: replies carry Connection: close

  // Thread-safe; each posts to the session's executor (its lane or its strand). Sessions that are gone are skipped.
  void close_all_sessions();
  void close_idle_sessions();

  std::mutex registry_mutex;
  std::unordered_map<std::uint64_t, std::weak_ptr<session>> registry;  // guarded by registry_mutex
  std::atomic<std::uint64_t> next_session_id{0};
};

// Takes over an accepted socket (bound to its lane or its own strand; already counted in
// open_connections) and runs its session there until the connection closes. `lane`: the
// index of the socket's I/O lane (tenantd::this_threads_lane() on its thread), or no_lane.
void start_session(const std::shared_ptr<server_state>& state, boost::asio::ip::tcp::socket socket,
                   std::size_t lane = no_lane);

}  // namespace tenantd::http
