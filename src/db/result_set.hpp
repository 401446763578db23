// Owning wrapper around a PGresult in text format, with typed accessors.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

typedef struct pg_result PGresult;

namespace tenantd::db {

class result_set {
 public:
  result_set() = default;
  explicit result_set(PGresult* owned);

  int rows() const noexcept;
  int columns() const noexcept;
  bool empty() const noexcept { return rows() == 0; }
  // Rows changed by INSERT/UPDATE/DELETE (PQcmdTuples), 0 if none.
  std::int64_t affected_rows() const noexcept;

  bool is_null(int row, int col) const noexcept;
  std::string_view text(int row, int col) const noexcept;  // "" for NULL
  std::string string(int row, int col) const { return std::string(text(row, col)); }
  std::optional<std::string> optional_string(int row, int col) const;
  std::int64_t int64(int row, int col) const;     // throws std::runtime_error if not an integer
  bool boolean(int row, int col) const noexcept;  // PostgreSQL text "t"/"f"

 private:
  struct deleter {
    void operator()(PGresult* r) const noexcept;
  };
  std::unique_ptr<PGresult, deleter> result_;
};

}  // namespace tenantd::db
