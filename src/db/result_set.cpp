// Owning PGresult wrapper: bounds-checked text access and typed conversions.
#include "db/result_set.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <stdexcept>

namespace tenantd::db {

void result_set::deleter::operator()(PGresult* r) const noexcept { PQclear(r); }

result_set::result_set(PGresult* owned) : result_(owned) {}

int result_set::rows() const noexcept { return result_ ? PQntuples(result_.get()) : 0; }

int result_set::columns() const noexcept { return result_ ? PQnfields(result_.get()) : 0; }

std::int64_t result_set::affected_rows() const noexcept {
  if (!result_) return 0;
  const std::string_view tuples = PQcmdTuples(result_.get());
  std::int64_t count = 0;
  const auto [end, ec] = std::from_chars(tuples.data(), tuples.data() + tuples.size(), count);
  return ec == std::errc{} && end == tuples.data() + tuples.size() ? count : 0;
}

bool result_set::is_null(int row, int col) const noexcept {
  if (row < 0 || col < 0 || row >= rows() || col >= columns()) return true;
  return PQgetisnull(result_.get(), row, col) != 0;
}

std::string_view result_set::text(int row, int col) const noexcept {
  if (is_null(row, col)) return {};
  const auto length = PQgetlength(result_.get(), row, col);
  return {PQgetvalue(result_.get(), row, col), static_cast<std::size_t>(length)};
}

std::optional<std::string> result_set::optional_string(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  return string(row, col);
}

std::int64_t result_set::int64(int row, int col) const {
  if (is_null(row, col))
    throw std::runtime_error("column " + std::to_string(col) + " of row " + std::to_string(row) +
                             " is NULL or absent, not an integer");
  const auto value = text(row, col);
  std::int64_t number = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec != std::errc{} || end != value.data() + value.size())
    throw std::runtime_error("not an integer: '" + std::string(value) + "'");
  return number;
}

bool result_set::boolean(int row, int col) const noexcept { return text(row, col) == "t"; }

}  // namespace tenantd::db
