// Source audits for catalogue rows a black-box test cannot prove alone (S03, S28, M07):
// secrets compared in constant time, SQL text that never contains request data (values go as
// parameters; the only spliced parts are quoted identifiers and numbers), and migrations that
// close the public schema. Reads the source tree (TENANTD_SOURCE_DIR); needs no server.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef TENANTD_SOURCE_DIR
#error "TENANTD_SOURCE_DIR must name the source tree"
#endif

namespace tenantd::test {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Non-test C++ sources under src/.
std::vector<fs::path> server_sources() {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(TENANTD_SOURCE_DIR) / "src")) {
    const auto name = e.path().filename().string();
    if (e.path().extension() == ".cpp" && !name.ends_with("_test.cpp") && !name.ends_with("_pgtest.cpp"))
      out.push_back(e.path());
  }
  return out;
}

struct token {
  enum kind_t { literal, word, punct } kind;
  std::string text;  // a literal's content, a word, or the punctuation
};

// C++ tokens without comments; "::" and "->" are one token each; adjacent literals stay apart.
std::vector<token> tokenize(const std::string& s) {
  std::vector<token> out;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (s.compare(i, 2, "//") == 0) {
      i = s.find('\n', i);
      if (i == std::string::npos) break;
    } else if (s.compare(i, 2, "/*") == 0) {
      i = s.find("*/", i) + 2;
    } else if (c == 'R' && i + 1 < s.size() && s[i + 1] == '"') {
      const auto open = s.find('(', i);
      const std::string close = ")" + s.substr(i + 2, open - i - 2) + "\"";
      const auto end = s.find(close, open);
      out.push_back({token::literal, s.substr(open + 1, end - open - 1)});
      i = end + close.size();
    } else if (c == '"' || c == '\'') {
      std::string content;
      std::size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\\') ++j;
        content += s[j];
      }
      if (c == '"') out.push_back({token::literal, content});
      i = j + 1;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({token::word, s.substr(i, j - i)});
      i = j;
    } else if (s.compare(i, 2, "::") == 0 || s.compare(i, 2, "->") == 0) {
      out.push_back({token::punct, s.substr(i, 2)});
      i += 2;
    } else {
      out.push_back({token::punct, std::string(1, c)});
      ++i;
    }
  }
  return out;
}

const std::regex sql_start(
    R"(^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|GRANT|REVOKE|LISTEN|NOTIFY|COPY|TRUNCATE|LOCK|SET|BEGIN|COMMIT|ROLLBACK|WITH)\b)");

// What may be spliced into SQL text: results of PQescapeIdentifier/PQescapeLiteral
// (`quoted`, `r`, escape_* calls), decimal numbers (`key` = std::to_string of a lock key,
// to_string calls), names chosen between by a boolean (`from_template`, `lock`), and a
// compile-time channel name. Whatever the escaping and to_string calls receive comes out
// quoted or numeric, so their arguments are not inspected.
const std::set<std::string> harmless_operands = {"quoted",        "key",  "r",
                                                 "from_template", "lock", "db::master::invalidation_channel"};
const std::set<std::string> harmless_calls = {"escape_identifier", "escape_literal", "to_string", "template_name",
                                              "std::string"};

// Harmless variable names used as operands in the file being audited; their definitions are
// checked afterwards (they must come from an escaping call or std::to_string).
std::set<std::string> used_variables;

bool is_word(const std::vector<token>& st, std::size_t k) { return k < st.size() && st[k].kind == token::word; }
bool is_link(const std::vector<token>& st, std::size_t k) {
  return k < st.size() && (st[k].text == "::" || st[k].text == "->" || st[k].text == ".");
}

// Checks the parenthesised group st[open..close]: every word is a harmless operand, a
// harmless call (arguments skipped) or part of a ternary; literals are fine.
void check_group(const std::vector<token>& st, std::size_t open, std::size_t close, std::vector<std::string>& bad);

// The operand that starts at st[k] (reading right): a literal, a group, a name or a call.
void check_operand_right(const std::vector<token>& st, std::size_t k, std::vector<std::string>& bad) {
  if (k >= st.size() || st[k].kind == token::literal) return;
  if (st[k].text == "(") {
    int depth = 0;
    for (std::size_t j = k; j < st.size(); ++j) {
      if (st[j].text == "(") ++depth;
      if (st[j].text == ")" && --depth == 0) return check_group(st, k, j, bad);
    }
    return;
  }
  std::string chain, last;
  std::size_t j = k;
  while (is_word(st, j)) {
    last = st[j].text;
    chain += st[j].text;
    if (!is_link(st, j + 1) || !is_word(st, j + 2)) break;
    chain += st[j + 1].text;
    j += 2;
  }
  const bool call = j + 1 < st.size() && st[j + 1].text == "(";
  if (call ? !(harmless_calls.contains(last) || harmless_calls.contains(chain)) : !harmless_operands.contains(chain))
    bad.push_back(chain + (call ? "(...)" : ""));
  else if (!call)
    used_variables.insert(chain);
}

// The operand that ends at st[k] (reading left).
void check_operand_left(const std::vector<token>& st, std::size_t k, std::vector<std::string>& bad) {
  if (st[k].kind == token::literal) return;
  if (st[k].text == ")") {
    int depth = 0;
    std::size_t j = k;
    for (;; --j) {
      if (st[j].text == ")") ++depth;
      if (st[j].text == "(" && --depth == 0) break;
      if (j == 0) return;
    }
    if (j > 0 && is_word(st, j - 1)) {  // a call: find the start of its name
      std::size_t n = j - 1;
      while (n >= 2 && is_link(st, n - 1) && is_word(st, n - 2)) n -= 2;
      return check_operand_right(st, n, bad);
    }
    return check_group(st, j, k, bad);
  }
  std::size_t n = k;
  while (n >= 2 && is_link(st, n - 1) && is_word(st, n - 2)) n -= 2;
  check_operand_right(st, n, bad);
}

void check_group(const std::vector<token>& st, std::size_t open, std::size_t close, std::vector<std::string>& bad) {
  for (std::size_t j = open + 1; j < close; ++j) {
    if (st[j].kind != token::word) continue;
    if (j > open + 1 && is_link(st, j - 1)) continue;  // inside a chain already checked
    check_operand_right(st, j, bad);
    // Skip the rest of this operand (its chain and call arguments).
    while (is_link(st, j + 1) && is_word(st, j + 2)) j += 2;
    if (j + 1 < close && st[j + 1].text == "(") {
      int depth = 0;
      for (++j; j < close; ++j) {
        if (st[j].text == "(") ++depth;
        if (st[j].text == ")" && --depth == 0) break;
      }
    }
  }
}

// Statements (token runs between ';', '{', '}') that hold SQL text and a '+' splice: each
// operand of each '+' must be one of the harmless ones above.
TEST(source_audit, s28_sql_text_is_only_spliced_with_quoted_identifiers_and_numbers) {
  // Reviewed exceptions: file -> operands allowed there, and why.
  const std::map<std::string, std::set<std::string>> reviewed = {
      // "ALTER ROLE <name> ..." is advice printed for the operator, never executed.
      {"doctor.cpp", {"role.name", "runtime.name", "ddl.name", "ddl->name"}},
  };
  int statements_checked = 0;
  for (const auto& file : server_sources()) {
    const std::string source = read_text(file);
    const auto tokens = tokenize(source);
    used_variables.clear();
    std::size_t start = 0;
    for (std::size_t i = 0; i <= tokens.size(); ++i) {
      const bool boundary =
          i == tokens.size() ||
          (tokens[i].kind == token::punct && (tokens[i].text == ";" || tokens[i].text == "{" || tokens[i].text == "}"));
      if (!boundary) continue;
      const std::vector<token> st(tokens.begin() + static_cast<long>(start), tokens.begin() + static_cast<long>(i));
      start = i + 1;
      const bool has_sql = std::any_of(st.begin(), st.end(), [](const token& t) {
        return t.kind == token::literal && std::regex_search(t.text, sql_start);
      });
      if (!has_sql) continue;
      std::vector<std::string> bad;
      for (std::size_t k = 1; k + 1 < st.size(); ++k) {
        if (st[k].kind != token::punct || st[k].text != "+") continue;
        if (st[k + 1].text == "=") {  // `x += operand`
          check_operand_right(st, k + 2, bad);
          continue;
        }
        if (st[k - 1].text == "+" || st[k + 1].text == "+") continue;  // ++
        check_operand_left(st, k - 1, bad);
        check_operand_right(st, k + 1, bad);
      }
      if (std::any_of(st.begin(), st.end(), [](const token& t) { return t.text == "+"; })) ++statements_checked;
      const auto allowed_here = reviewed.find(file.filename().string());
      std::string text;
      for (const auto& t : st) text += (t.kind == token::literal ? "\"" + t.text + "\"" : t.text) + " ";
      for (const auto& operand : bad) {
        if (allowed_here != reviewed.end() && allowed_here->second.contains(operand)) continue;
        ADD_FAILURE() << file.string() << ": SQL text spliced with [" << operand << "]; pass it as a parameter, or "
                      << "quote it with escape_identifier and list it here after review:\n  " << text;
      }
    }
    for (const std::string name : {"quoted", "key", "r"}) {
      if (!used_variables.contains(name)) continue;
      const std::regex definition("(auto|std::string)\\s+" + name + "\\s*=\\s*[^;]*(escape_identifier|to_string)\\(");
      const std::regex any_definition("(auto|std::string)\\s+" + name + "\\s*=");
      const auto defs = std::distance(std::sregex_iterator(source.begin(), source.end(), any_definition), {});
      const auto safe = std::distance(std::sregex_iterator(source.begin(), source.end(), definition), {});
      EXPECT_TRUE(defs > 0 && defs == safe)
          << file.string() << ": [" << name << "] is spliced into SQL but not every definition of it is quoted";
    }
  }
  EXPECT_GE(statements_checked, 10) << "the audit found almost no spliced SQL: is the tokenizer broken?";
}

TEST(source_audit, s28_parameterised_calls_take_compile_time_sql) {
  const std::regex prepared(R"(exec_prepared\(\s*([A-Za-z_][\w:]*)\s*,)");
  const std::regex with_params(R"(exec_params\(\s*([^,]*),)");
  int calls = 0;
  for (const auto& file : server_sources()) {
    const std::string text = read_text(file);
    for (std::sregex_iterator it(text.begin(), text.end(), prepared), end; it != end; ++it) {
      ++calls;
      std::string name = (*it)[1];
      if (const auto colon = name.rfind("::"); colon != std::string::npos) name = name.substr(colon + 2);
      // A runner that forwards its caller's statement (db::pool to its pipelined or exclusive
      // connection): the constant is checked where that caller names it.
      if (name == "stmt" && text.find("exec_prepared(const statement& stmt,") != std::string::npos) continue;
      const bool constant = text.find("constexpr statement " + name + "{") != std::string::npos ||
                            text.find("constexpr db::statement " + name + "{") != std::string::npos;
      EXPECT_TRUE(constant) << file.string() << ": exec_prepared(" << name << ") is not a constexpr statement";
    }
    for (std::sregex_iterator it(text.begin(), text.end(), with_params), end; it != end; ++it) {
      const std::string arg = (*it)[1];
      if (arg.find("std::string_view sql") != std::string::npos) continue;  // the definition itself
      ++calls;
      const bool literal =
          !arg.empty() && arg.find_first_not_of(" \n") != std::string::npos && arg[arg.find_first_not_of(" \n")] == '"';
      const bool constant = text.find("constexpr const char* " + arg + " =") != std::string::npos;
      EXPECT_TRUE(literal || constant) << file.string() << ": exec_params(" << arg << ", ...) is not constant SQL";
    }
  }
  EXPECT_GE(calls, 40);
}

TEST(source_audit, s03_secrets_are_compared_in_constant_time) {
  // Every server source, not a chosen few: no comparison with a short-circuiting operator or
  // call has an operand named like a secret (a token, MAC, signature, password, secret).
  const std::regex secret_operand(
      R"(\b\w*(secret|signature|mac|token|password)\w*\s*(==|!=)|(==|!=)\s*[\w.>-]*(secret|signature|mac|token|password)\w*)");
  const std::regex plain_call(R"((^|[^_\w])(memcmp|strcmp|strncmp|bcmp)\s*\(([^;]*))");
  const std::regex secret_word(R"((secret|signature|mac|token|password))");
  // Reviewed exceptions: file -> the line's text, and why.
  const std::map<std::string, std::set<std::string>> reviewed = {
      // Start-up refusal of the example JWT_SECRET; no attacker input reaches it.
      {"config.cpp", {"if (c.jwt_secret == example_jwt_secret)"}},
  };
  std::set<std::string> constant_time_calls;
  int files = 0;
  for (const auto& file : server_sources()) {
    ++files;
    std::istringstream lines(read_text(file));
    for (std::string line; std::getline(lines, line);) {
      // std::regex is slow (sanitized builds above all): look closer only at lines that compare.
      const bool compares = line.find("==") != std::string::npos || line.find("!=") != std::string::npos ||
                            line.find("cmp(") != std::string::npos || line.find("crypto_") != std::string::npos;
      if (!compares) continue;
      // A null check compares a pointer, not a secret.
      const auto code = std::regex_replace(line.substr(0, line.find("//")), std::regex(R"(\s*[!=]=\s*nullptr)"), "");
      for (const char* call : {"crypto_verify_32(", "sodium_memcmp(", "crypto_pwhash_str_verify("})
        if (code.find(call) != std::string::npos) constant_time_calls.insert(call);
      std::smatch m;
      const bool secret_compare = std::regex_search(code, secret_operand);
      const bool secret_call = std::regex_search(code, m, plain_call) && std::regex_search(m[3].str(), secret_word);
      if (!secret_compare && !secret_call) continue;
      std::string trimmed = code.substr(code.find_first_not_of(' '));
      trimmed.erase(trimmed.find_last_not_of(' ') + 1);
      const auto it = reviewed.find(file.filename().string());
      if (it != reviewed.end() && it->second.contains(trimmed)) continue;
      ADD_FAILURE() << file.string() << ": a secret compared with a short-circuiting comparison:\n  " << trimmed;
    }
  }
  EXPECT_GT(files, 40) << "the audit read almost no sources";
  // And the constant-time primitives are where the secrets are checked: the JWT MAC, the
  // admin token, the password hashes.
  for (const char* call : {"crypto_verify_32(", "sodium_memcmp(", "crypto_pwhash_str_verify("})
    EXPECT_TRUE(constant_time_calls.contains(call)) << call << " is used nowhere in src/";
}

TEST(source_audit, m07_migrations_close_the_public_schema_and_define_no_unsafe_functions) {
  const fs::path migrations = fs::path(TENANTD_SOURCE_DIR) / "db" / "migrations";
  const std::string first_tenant = read_text(migrations / "tenant" / "V001__users.sql");
  EXPECT_NE(first_tenant.find("REVOKE CREATE ON SCHEMA public FROM PUBLIC"), std::string::npos);
  for (const auto& e : fs::recursive_directory_iterator(migrations)) {
    if (e.path().extension() != ".sql") continue;
    std::string text = read_text(e.path());
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
    for (auto pos = text.find("SECURITY DEFINER"); pos != std::string::npos;
         pos = text.find("SECURITY DEFINER", pos + 1)) {
      const auto statement_end = text.find(';', pos);
      const auto statement_start = text.rfind("CREATE", pos);
      EXPECT_NE(text.substr(statement_start, statement_end - statement_start).find("SET SEARCH_PATH"),
                std::string::npos)
          << e.path() << ": a SECURITY DEFINER function without SET search_path";
    }
  }
}

}  // namespace
}  // namespace tenantd::test
