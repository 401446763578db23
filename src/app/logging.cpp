// spdlog configuration with a message flag that escapes CR/LF (text) or JSON-escapes (json).
#include "app/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <iterator>
#include <memory>

namespace tenantd::app {
namespace {

bool json_mode = false;
// Set while log_access emits a JSON access line: the message is already a list of
// `"key":value` members, escaped field by field, and is written as is.
thread_local bool message_is_json_fields = false;

// Escapes `text` for a JSON string (json) or escapes CR, LF and other control characters (text).
void append_escaped(spdlog::memory_buf_t& dest, std::string_view text, bool json) {
  for (char c : text) {
    switch (c) {
      case '\n': dest.append(std::string_view("\\n")); break;
      case '\r': dest.append(std::string_view("\\r")); break;
      case '"':
        if (json)
          dest.append(std::string_view("\\\""));
        else
          dest.push_back(c);
        break;
      case '\\':
        if (json)
          dest.append(std::string_view("\\\\"));
        else
          dest.push_back(c);
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          const int n = std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          dest.append(std::string_view(buf, static_cast<std::size_t>(n)));
        } else {
          dest.push_back(c);
        }
    }
  }
}

// The %* flag: the message, escaped. In JSON mode it writes `"msg":"..."`, or an access
// line's prepared members.
class escaped_message final : public spdlog::custom_flag_formatter {
 public:
  explicit escaped_message(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (!json_) {
      append_escaped(dest, payload, false);
      return;
    }
    if (message_is_json_fields) {
      dest.append(payload);
      return;
    }
    dest.append(std::string_view("\"msg\":\""));
    append_escaped(dest, payload, true);
    dest.push_back('"');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<escaped_message>(json_); }

 private:
  bool json_;
};

void append_json_string(spdlog::memory_buf_t& out, std::string_view key, std::string_view value) {
  out.push_back(',');
  out.push_back('"');
  out.append(key);
  out.append(std::string_view("\":\""));
  append_escaped(out, value, true);
  out.push_back('"');
}

}  // namespace

void setup_logging(const std::string& format, const std::string& level) {
  json_mode = format == "json";
  auto logger = std::make_shared<spdlog::logger>("tenantd", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<escaped_message>('*', json_mode);
  if (json_mode)
    formatter->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%*})");
  else
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %*");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

void log_access(const api::access_entry& e) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  const double ms = static_cast<double>(e.duration.count()) / 1000.0;
  const auto dash = [](std::string_view v) { return v.empty() ? std::string_view("-") : v; };
  if (!json_mode) {
    spdlog::info(
        "access method={} route={} status={} duration_ms={:.3f} bytes={} request_id={} tenant={} user={} "
        "client={}",
        e.method, e.route, e.status, ms, e.bytes, e.request_id, dash(e.tenant_id), dash(e.user_id), e.client_address);
    return;
  }
  spdlog::memory_buf_t fields;
  fields.append(std::string_view("\"msg\":\"access\""));
  append_json_string(fields, "method", e.method);
  append_json_string(fields, "route", e.route);
  fmt::format_to(std::back_inserter(fields), ",\"status\":{},\"duration_ms\":{:.3f},\"bytes\":{}", e.status, ms,
                 e.bytes);
  append_json_string(fields, "request_id", e.request_id);
  if (!e.tenant_id.empty()) append_json_string(fields, "tenant_id", e.tenant_id);
  if (!e.user_id.empty()) append_json_string(fields, "user_id", e.user_id);
  append_json_string(fields, "client", e.client_address);
  message_is_json_fields = true;
  spdlog::info(std::string_view(fields.data(), fields.size()));
  message_is_json_fields = false;
}

}  // namespace tenantd::app
