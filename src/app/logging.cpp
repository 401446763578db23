// spdlog configuration with a message flag that escapes CR/LF (text) or JSON-escapes (json).
#include "app/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace tenantd::app {
namespace {

bool json_mode = false;

class escaped_message final : public spdlog::custom_flag_formatter {
 public:
  explicit escaped_message(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '"':
          if (json_) dest.append(std::string_view("\\\""));
          else dest.push_back(c);
          break;
        case '\\':
          if (json_) dest.append(std::string_view("\\\\"));
          else dest.push_back(c);
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            const int n = std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            dest.append(std::string_view(buf, static_cast<std::size_t>(n)));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<escaped_message>(json_); }

 private:
  bool json_;
};

}  // namespace

void setup_logging(const std::string& format, const std::string& level) {
  json_mode = format == "json";
  auto logger = std::make_shared<spdlog::logger>("tenantd", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<escaped_message>('*', json_mode);
  if (json_mode)
    formatter->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"})");
  else
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %*");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

void log_access(const api::access_entry& e) {
  const double ms = static_cast<double>(e.duration.count()) / 1000.0;
  const auto dash = [](std::string_view v) { return v.empty() ? std::string_view("-") : v; };
  spdlog::info("access method={} route={} status={} duration_ms={:.3f} bytes={} request_id={} tenant={} user={} "
               "client={}",
               e.method, e.route, e.status, ms, e.bytes, e.request_id, dash(e.tenant_id), dash(e.user_id),
               e.client_address);
}

}  // namespace tenantd::app
