// Every configuration variable in one table: its name, default, range or choices, and what
// it means. load_config (config.cpp) takes defaults and ranges from here; README.md's
// configuration table and .env.example are checked against it by config_table_test.cpp,
// so a default written anywhere else fails a test when it drifts.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tenantd::app {

enum class setting_type {
  text,          // any text (URLs, lists and secrets are checked by load_config itself)
  whole_number,  // a whole number within [min, max]
  choice,        // one of `choices` ("a|b"), case-insensitive
};

struct setting {
  std::string_view name;
  setting_type type{setting_type::text};
  // The default as it is written in .env (empty: unset, required, or computed from other
  // settings, which `default_note` then describes).
  std::string_view fallback;
  std::int64_t min{0};  // whole numbers only
  std::int64_t max{0};
  std::string_view choices;  // choice only: "template|migrations"
  // README's default column: with a fallback, words after it ("all cores"); without one,
  // the whole column ("twice the rate", "unset", "— (required)").
  std::string_view default_note;
  std::string_view description;  // README's meaning column (Markdown)
};

// In README order.
std::span<const setting> config_table();
// The entry named `name`; throws std::out_of_range for a name not in the table.
const setting& setting_named(std::string_view name);
// README's row for a setting: "| `NAME` | default | description |".
std::string readme_row(const setting& s);

}  // namespace tenantd::app
