// Backup file format version 1 (see backup_file.hpp): header, JSON rows, pg_dump archive.
#include "tenancy/backup_file.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace tenantd::tenancy {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr char magic[8] = {'T', 'N', 'T', 'D', 'B', 'K', '0', '1'};
constexpr std::uint64_t max_json_bytes = 512ULL * 1024 * 1024;
constexpr int format_version = 1;

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

std::string text_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  return std::string(std::string_view(v->as_string()));  // throws for a non-string
}

}  // namespace

// Creates (or truncates) `path` with mode 0600 exactly.
void create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  const int changed = ::fchmod(fd, 0600);
  ::close(fd);
  if (changed != 0) throw std::runtime_error("cannot set the mode of " + path + ": " + std::strerror(errno));
}

temporary_file::~temporary_file() {
  if (!path.empty()) remove_quietly(path);
}

std::string encode_backup_rows(const backup_rows& rows) {
  json::object doc;
  doc["format"] = format_version;
  doc["created_at"] = rows.created_at;
  doc["tenant"] = json::object{{"id", rows.tenant.id},
                               {"name", rows.tenant.name},
                               {"status", rows.tenant.status},
                               {"registration", rows.tenant.registration},
                               {"schema_version", rows.tenant.schema_version},
                               {"created_at", rows.tenant.created_at}};
  json::array members;
  for (const auto& m : rows.members)
    members.push_back(json::object{{"account_id", m.account_id},
                                   {"email", m.email},
                                   {"password_hash", m.password_hash},
                                   {"first_name", m.first_name},
                                   {"last_name", m.last_name},
                                   {"role", m.role},
                                   {"joined_at", m.joined_at}});
  json::array invitations;
  for (const auto& i : rows.invitations) {
    json::object row{{"id", i.id},
                     {"email", i.email},
                     {"role", i.role},
                     {"token_hash", i.token_hash_hex},
                     {"created_at", i.created_at},
                     {"expires_at", i.expires_at}};
    row["invited_by"] = i.invited_by ? json::value(*i.invited_by) : json::value(nullptr);
    invitations.push_back(std::move(row));
  }
  doc["members"] = std::move(members);
  doc["invitations"] = std::move(invitations);
  return json::serialize(doc);
}

std::optional<backup_rows> decode_backup_rows(std::string_view json_text) {
  boost::system::error_code parse_error;
  const auto doc = json::parse(json_text, parse_error);
  if (parse_error || !doc.is_object()) return std::nullopt;
  try {
    const auto& o = doc.as_object();
    if (o.at("format").to_number<int>() != format_version) return std::nullopt;
    backup_rows rows;
    rows.created_at = text_of(o, "created_at");
    const auto& t = o.at("tenant").as_object();
    rows.tenant.id = text_of(t, "id");
    rows.tenant.name = text_of(t, "name");
    rows.tenant.status = text_of(t, "status");
    rows.tenant.registration = text_of(t, "registration");
    if (const auto* v = t.if_contains("schema_version"); v != nullptr && v->is_number())
      rows.tenant.schema_version = v->to_number<int>();
    rows.tenant.created_at = text_of(t, "created_at");
    for (const auto& m : o.at("members").as_array()) {
      const auto& mo = m.as_object();
      rows.members.push_back({text_of(mo, "account_id"), text_of(mo, "email"), text_of(mo, "password_hash"),
                              text_of(mo, "first_name"), text_of(mo, "last_name"), text_of(mo, "role"),
                              text_of(mo, "joined_at")});
    }
    for (const auto& i : o.at("invitations").as_array()) {
      const auto& io = i.as_object();
      auto invited_by = text_of(io, "invited_by");
      rows.invitations.push_back({text_of(io, "id"), text_of(io, "email"), text_of(io, "role"),
                                  text_of(io, "token_hash"),
                                  invited_by.empty() ? std::nullopt : std::optional(std::move(invited_by)),
                                  text_of(io, "created_at"), text_of(io, "expires_at")});
    }
    if (rows.tenant.id.empty() || rows.tenant.name.empty()) return std::nullopt;
    if (rows.tenant.registration.empty()) rows.tenant.registration = "invite";
    return rows;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::uintmax_t write_backup_file(const std::string& path, const std::string& rows_json,
                                 const std::string& archive_path) {
  temporary_file bundle{path + ".partial"};
  create_private_file(bundle.path);
  {
    std::ofstream out(bundle.path, std::ios::binary | std::ios::trunc);
    std::ifstream in(archive_path, std::ios::binary);
    if (!out || !in) throw std::runtime_error("cannot write " + bundle.path);
    out.write(magic, sizeof magic);
    std::array<char, 8> length{};
    const auto n = static_cast<std::uint64_t>(rows_json.size());
    for (std::size_t i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (56 - 8 * i)) & 0xff);
    out.write(length.data(), length.size());
    out.write(rows_json.data(), static_cast<std::streamsize>(rows_json.size()));
    out << in.rdbuf();
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + bundle.path + " (disk full?)");
  }
  fs::rename(bundle.path, path);
  bundle.path.clear();
  return fs::file_size(path);
}

loaded_backup read_backup_file(const std::string& path) {
  loaded_backup out;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    out.refused = make_error(errc::not_found, "no such backup");
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  char head[16];
  if (!in.read(head, sizeof head) || std::memcmp(head, magic, sizeof magic) != 0) {
    out.refused = make_error(errc::invalid_input, "the file is not a tenantd backup");
    return out;
  }
  std::uint64_t n = 0;
  for (std::size_t i = 8; i < 16; ++i) n = (n << 8) | static_cast<unsigned char>(head[i]);
  if (n == 0 || n > max_json_bytes) {
    out.refused = make_error(errc::invalid_input, "the backup has a damaged header");
    return out;
  }
  out.rows_json.assign(static_cast<std::size_t>(n), '\0');
  if (!in.read(out.rows_json.data(), static_cast<std::streamsize>(n))) {
    out.refused = make_error(errc::invalid_input, "the backup is truncated");
    return out;
  }
  boost::system::error_code parse_error;
  const auto parsed = json::parse(out.rows_json, parse_error);
  if (parse_error || !parsed.is_object()) {
    out.refused = make_error(errc::invalid_input, "the backup holds damaged metadata");
    return out;
  }
  char dump_path[] = "/tmp/tenantd-restore-XXXXXX";
  const int fd = ::mkostemp(dump_path, O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  out.archive_path = dump_path;
  std::ofstream dump(out.archive_path, std::ios::binary | std::ios::trunc);
  dump << in.rdbuf();
  dump.flush();
  if (!dump) {
    remove_quietly(out.archive_path);
    throw std::runtime_error("cannot write " + out.archive_path + " (disk full?)");
  }
  return out;
}

}  // namespace tenantd::tenancy
