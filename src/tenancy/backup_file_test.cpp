// The backup file format: the rows survive a round trip, a file is written 0600 and read
// back with its archive, and anything that is not a backup of this format is refused.
#include "tenancy/backup_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tenantd::tenancy {
namespace {

namespace fs = std::filesystem;

backup_rows sample_rows() {
  backup_rows rows;
  rows.created_at = "2026-01-02T03:04:05Z";
  rows.tenant = {"acme", "Acme Ltd", "active", "open", 3, "2025-12-01 10:00:00+00"};
  rows.members.push_back({"0b9e6c1e-0000-4000-8000-000000000001", "ann@example.com", "$argon2id$v=19$...", "Ann", "Lee",
                          "owner", "2025-12-01 10:00:01+00"});
  rows.invitations.push_back({"0b9e6c1e-0000-4000-8000-000000000002", "bob@example.com", "member", "abcdef",
                              std::nullopt, "2025-12-02 10:00:00+00", "2025-12-09 10:00:00+00"});
  rows.invitations.push_back({"0b9e6c1e-0000-4000-8000-000000000003", "cy@example.com", "viewer", "012345",
                              std::string("0b9e6c1e-0000-4000-8000-000000000001"), "2025-12-03 10:00:00+00",
                              "2025-12-10 10:00:00+00"});
  return rows;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class scratch_dir {
 public:
  scratch_dir() : path_(fs::temp_directory_path() / ("tenantd-backup-file-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch_dir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

TEST(backup_file, rows_survive_a_round_trip) {
  const auto rows = sample_rows();
  const auto decoded = decode_backup_rows(encode_backup_rows(rows));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->created_at, rows.created_at);
  EXPECT_EQ(decoded->tenant.id, "acme");
  EXPECT_EQ(decoded->tenant.name, "Acme Ltd");
  EXPECT_EQ(decoded->tenant.registration, "open");
  EXPECT_EQ(decoded->tenant.schema_version, 3);
  ASSERT_EQ(decoded->members.size(), 1u);
  EXPECT_EQ(decoded->members[0].password_hash, "$argon2id$v=19$...");
  EXPECT_EQ(decoded->members[0].joined_at, "2025-12-01 10:00:01+00");
  ASSERT_EQ(decoded->invitations.size(), 2u);
  EXPECT_FALSE(decoded->invitations[0].invited_by);
  EXPECT_EQ(decoded->invitations[1].invited_by, "0b9e6c1e-0000-4000-8000-000000000001");
  EXPECT_EQ(decoded->invitations[1].token_hash_hex, "012345");
}

TEST(backup_file, json_of_another_format_or_without_a_tenant_is_refused) {
  EXPECT_FALSE(decode_backup_rows("not json"));
  EXPECT_FALSE(decode_backup_rows("[]"));
  EXPECT_FALSE(decode_backup_rows(R"({"format":2,"tenant":{"id":"a","name":"A"},"members":[],"invitations":[]})"));
  EXPECT_FALSE(decode_backup_rows(R"({"format":1,"tenant":{"id":"a"},"members":[],"invitations":[]})"));
  EXPECT_FALSE(decode_backup_rows(R"({"format":1,"tenant":{"id":"a","name":"A"},"members":[{"email":1}],)"
                                  R"("invitations":[]})"));
  const auto oldest = decode_backup_rows(R"({"format":1,"tenant":{"id":"a","name":"A"},"members":[],)"
                                         R"("invitations":[]})");
  ASSERT_TRUE(oldest);
  EXPECT_EQ(oldest->tenant.registration, "invite");
}

TEST(backup_file, a_written_file_is_private_and_reads_back_with_its_archive) {
  const scratch_dir dir;
  const auto archive = dir.file("archive");
  {
    std::ofstream out(archive, std::ios::binary);
    out << std::string("PGDMP\0archive bytes", 19);
  }
  const auto json = encode_backup_rows(sample_rows());
  const auto path = dir.file("acme.tntd");
  const auto bytes = write_backup_file(path, json, archive);
  EXPECT_EQ(bytes, 16 + json.size() + 19);
  EXPECT_EQ(fs::status(path).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_FALSE(fs::exists(path + ".partial"));

  auto loaded = read_backup_file(path);
  ASSERT_FALSE(loaded.refused);
  const temporary_file copied{loaded.archive_path};
  EXPECT_EQ(loaded.rows_json, json);
  EXPECT_EQ(read_all(loaded.archive_path), std::string("PGDMP\0archive bytes", 19));
}

TEST(backup_file, a_missing_file_is_not_found_and_other_files_are_invalid_input) {
  const scratch_dir dir;
  const auto missing = read_backup_file(dir.file("missing"));
  ASSERT_TRUE(missing.refused);
  EXPECT_EQ(missing.refused->code, errc::not_found);

  const auto text = dir.file("text");
  std::ofstream(text) << "hello, this is not a backup at all";
  const auto refused = read_backup_file(text);
  ASSERT_TRUE(refused.refused);
  EXPECT_EQ(refused.refused->code, errc::invalid_input);

  const auto truncated = dir.file("truncated");
  {
    std::ofstream out(truncated, std::ios::binary);
    out << "TNTDBK01" << std::string("\0\0\0\0\0\0\1\0", 8) << "{}";
  }
  const auto cut = read_backup_file(truncated);
  ASSERT_TRUE(cut.refused);
  EXPECT_EQ(cut.refused->code, errc::invalid_input);
}

}  // namespace
}  // namespace tenantd::tenancy
