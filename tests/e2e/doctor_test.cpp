// `tenantd doctor` against the private cluster: all ok on a healthy installation, FAIL lines
// naming an orphan database and an unreachable server, with what to do.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

namespace tenantd::test {
namespace {

struct doctor_run {
  int exit_code{-1};
  std::string output;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `tenantd doctor` with only `env` (plus PATH and sanitizer options), in an empty
// directory so no .env is read.
doctor_run run_doctor(const std::map<std::string, std::string>& env) {
  const auto dir = std::filesystem::temp_directory_path() / unique_name("doctor_");
  std::filesystem::create_directories(dir);
  std::string command = "cd " + shell_quote(dir.string()) + " && env -i";
  for (const char* inherited : {"PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"})
    if (const char* v = std::getenv(inherited)) command += std::string(" ") + inherited + "=" + shell_quote(v);
  for (const auto& [k, v] : env) command += " " + k + "=" + shell_quote(v);
  command += " " + shell_quote(TENANTD_BINARY) + " doctor 2>&1";
  doctor_run run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  while (const auto n = std::fread(buf, 1, sizeof buf, pipe)) run.output.append(buf, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::filesystem::remove_all(dir);
  return run;
}

// The line of `output` that starts with `verdict` and names `check`, or "".
std::string line_for(const std::string& output, std::string_view verdict, std::string_view check) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line))
    if (line.starts_with(verdict) && line.find(std::string(check) + ":") != std::string::npos) return line;
  return "";
}

class doctor : public e2e_test {
 protected:
  std::map<std::string, std::string> doctor_env() {
    return {{"MASTER_DATABASE_URL", app_url(server().master_database())},
            {"JWT_SECRET", server().jwt_secret()},
            {"TENANT_DB_PREFIX", server().tenant_db_prefix()}};
  }
};

TEST_F(doctor, healthy_installation_is_all_ok) {
  ASSERT_TRUE(server().wait_ready());  // serve migrated master and prepared the template
  (void)tenant_with_owner("doctor_co");
  const auto run = run_doctor(doctor_env());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* check : {"configuration", "postgresql", "role privileges", "master migrations", "tenant template",
                            "tenant schemas", "orphan databases", "tenant databases"})
    EXPECT_NE(line_for(run.output, "ok", check), "") << check << " is not ok:\n" << run.output;
  EXPECT_EQ(run.output.find("FAIL"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find(server().jwt_secret()), std::string::npos) << "the secret was printed";
}

TEST_F(doctor, orphan_database_is_a_failure_naming_it) {
  ASSERT_TRUE(server().wait_ready());
  const std::string orphan = server().tenant_db_prefix() + "orphan1";
  admin_exec("CREATE DATABASE " + orphan);
  const auto run = run_doctor(doctor_env());
  admin_exec("DROP DATABASE IF EXISTS " + orphan);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  const auto line = line_for(run.output, "FAIL", "orphan databases");
  EXPECT_NE(line.find(orphan), std::string::npos) << run.output;
  EXPECT_NE(line.find("fix:"), std::string::npos) << line;
}

TEST_F(doctor, missing_tenant_database_is_a_failure) {
  ASSERT_TRUE(server().wait_ready());
  (void)create_tenant("gone_co");
  admin_exec("DROP DATABASE " + server().tenant_database("gone_co") + " WITH (FORCE)");
  const auto run = run_doctor(doctor_env());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(line_for(run.output, "FAIL", "tenant databases").find("gone_co"), std::string::npos) << run.output;
}

TEST_F(doctor, unreachable_database_fails_with_a_hint) {
  auto env = doctor_env();
  env["MASTER_DATABASE_URL"] = "postgresql://nobody:secret@127.0.0.1:1/nowhere";
  const auto run = run_doctor(env);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  const auto line = line_for(run.output, "FAIL", "postgresql");
  EXPECT_NE(line.find("fix:"), std::string::npos) << run.output;
  EXPECT_NE(line.find("pg_isready"), std::string::npos) << line;
  EXPECT_EQ(run.output.find("secret"), std::string::npos) << "the password was printed:\n" << run.output;
}

TEST_F(doctor, bad_configuration_fails_naming_the_variable) {
  auto env = doctor_env();
  env.erase("JWT_SECRET");
  const auto run = run_doctor(env);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(line_for(run.output, "FAIL", "configuration").find("JWT_SECRET"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace tenantd::test
