// The breached-password list: what it holds, that lookup ignores ASCII case, and that
// passwords outside it (random, or short but unlisted) pass.
#include "domain/breached_passwords.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <string>

#include "domain/validation.hpp"

namespace tenantd::validation {
namespace {

TEST(breached_passwords, list_is_sorted_lower_case_and_holds_only_allowed_lengths) {
  const auto list = breached_password_list();
  EXPECT_GT(list.size(), 11000U);  // zxcvbn's 30,000 passwords, those of 8+ characters
  EXPECT_TRUE(std::is_sorted(list.begin(), list.end()));
  EXPECT_EQ(std::adjacent_find(list.begin(), list.end()), list.end()) << "no duplicates";
  for (const auto entry : list) {
    ASSERT_GE(entry.size(), 8U) << entry;
    ASSERT_LE(entry.size(), 64U) << entry;
    ASSERT_TRUE(std::none_of(entry.begin(), entry.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) << entry;
  }
}

TEST(breached_passwords, common_passwords_are_rejected_whatever_their_case) {
  for (const char* password : {"password1", "Password1", "PASSWORD1", "password123", "iloveyou1", "12345678",
                               "qwertyuiop", "trustno1", "TrustNo1", "sunshine", "Football"}) {
    EXPECT_TRUE(is_breached_password(password)) << password;
    const auto message = check_password(password);
    ASSERT_TRUE(message.has_value()) << password;
    EXPECT_NE(message->find("breaches"), std::string::npos) << *message;
  }
}

TEST(breached_passwords, unlisted_passwords_are_accepted) {
  EXPECT_FALSE(is_breached_password("82hq7fze"));  // 8 characters, not on the list
  EXPECT_FALSE(check_password("82hq7fze").has_value());
  EXPECT_FALSE(check_password("teal-owl-mosaic-9").has_value());
  ASSERT_GE(sodium_init(), 0);
  constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  for (int round = 0; round < 100; ++round) {
    std::string random(16, ' ');
    for (char& c : random) c = alphabet[randombytes_uniform(static_cast<std::uint32_t>(alphabet.size()))];
    EXPECT_FALSE(check_password(random).has_value()) << random;
  }
}

TEST(breached_passwords, short_long_and_non_ascii_candidates_are_not_listed) {
  EXPECT_FALSE(is_breached_password("passwor"));  // shorter entries were left out: API.md's minimum is 8
  EXPECT_FALSE(is_breached_password(""));
  EXPECT_FALSE(is_breached_password(std::string(300, 'a')));
  EXPECT_FALSE(is_breached_password("p\xc3\xa4ssword1"));
  EXPECT_FALSE(is_breached_password("password1 "));  // not trimmed
}

}  // namespace
}  // namespace tenantd::validation
