// A tenant's move from one database server to another (tenancy/mover.hpp) as master records
// it and the API shows it. Pure: no I/O here.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace tenantd {

enum class move_state {
  copying,      // target database made, the subscription copies the tables
  catching_up,  // initial copy done, replication follows the source
  cutover,      // writes held, source locked, target catching up to its last write; then the flip
  done,         // the tenant is served from the target
  aborted,      // given up: the tenant stays (or is back) on the source; `error` says why
};

// "copying", "catching_up", "cutover", "done", "aborted" (the text in master and in the API).
std::string_view to_string(move_state state) noexcept;
std::optional<move_state> parse_move_state(std::string_view text) noexcept;
// done or aborted: nothing more happens to it.
inline bool finished(move_state state) noexcept { return state == move_state::done || state == move_state::aborted; }

struct move_record {
  std::string id;
  std::string tenant_id;
  std::string from;  // server names
  std::string to;
  std::string database_name;
  move_state state{move_state::copying};
  std::optional<std::string> error;
  int attempts{0};                  // cut-overs tried
  std::optional<double> freeze_ms;  // the write freeze of the cut-over that flipped
  bool keep_source{false};
  bool flipped{false};  // the tenant's placement names the target
  std::string started_at;
  std::string updated_at;
  std::optional<std::string> finished_at;
  std::optional<std::string> source_dropped_at;
};

}  // namespace tenantd
