// Move states as text.
#include "domain/move.hpp"

#include <array>
#include <utility>

namespace tenantd {
namespace {

constexpr std::array<std::pair<move_state, std::string_view>, 5> names{{
    {move_state::copying, "copying"},
    {move_state::catching_up, "catching_up"},
    {move_state::cutover, "cutover"},
    {move_state::done, "done"},
    {move_state::aborted, "aborted"},
}};

}  // namespace

std::string_view to_string(move_state state) noexcept {
  for (const auto& [s, name] : names)
    if (s == state) return name;
  return "aborted";
}

std::optional<move_state> parse_move_state(std::string_view text) noexcept {
  for (const auto& [s, name] : names)
    if (name == text) return s;
  return std::nullopt;
}

}  // namespace tenantd
