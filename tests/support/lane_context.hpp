// An I/O lane for tests (as app::serve makes them): an io_context for one thread, whose
// services the test shuts down before any lane is destroyed, since an operation of one lane
// may hold an object of another (an accept holds the socket it hands to the next lane).
#pragma once
#include <boost/asio/io_context.hpp>

namespace tenantd::test {

class lane_context : public boost::asio::io_context {
 public:
  lane_context() : boost::asio::io_context(1) {}
  using boost::asio::execution_context::shutdown;
};

}  // namespace tenantd::test
