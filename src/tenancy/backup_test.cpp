// The backup directory is created (or tightened) to 0700: backups hold password hashes.
#include "tenancy/backup.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace tenantd::tenancy {
namespace {

TEST(prepare_backup_directory, creates_or_tightens_to_0700) {
  namespace fs = std::filesystem;
  const auto base = fs::temp_directory_path() / ("tenantd-backup-dir-" + std::to_string(::getpid()));
  fs::remove_all(base);
  const auto dir = base / "nested" / "backups";
  prepare_backup_directory(dir.string());
  EXPECT_EQ(fs::status(dir).permissions(), fs::perms::owner_all);
  fs::permissions(dir, fs::perms::all);
  prepare_backup_directory(dir.string());
  EXPECT_EQ(fs::status(dir).permissions(), fs::perms::owner_all);
  fs::remove_all(base);
}

}  // namespace
}  // namespace tenantd::tenancy
