// Raw Argon2id rate of this machine with the server's parameters: THREADS threads each verify
// one hash (crypto_pwhash_str_verify, as a login does) in a loop for SECONDS; prints the rate.
// Usage: argon2_rate [threads=2] [seconds=5] [memory_kib=19456] [iterations=2]
// Built by bench/run: g++ -std=c++20 -O2 bench/argon2_rate.cpp -lsodium -pthread
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const unsigned threads = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 2U;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
  const unsigned long long memory_kib = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 19456ULL;
  const unsigned long long iterations = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 2ULL;
  if (sodium_init() < 0 || threads == 0 || seconds <= 0) return 2;

  const std::string password = "bench-password-1";
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(hash, password.data(), password.size(), iterations, memory_kib * 1024U,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    return 1;

  std::atomic<bool> stop{false};
  std::atomic<unsigned long> done{0};
  std::vector<std::thread> pool;
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 0; i < threads; ++i)
    pool.emplace_back([&] {
      while (!stop.load()) {
        if (crypto_pwhash_str_verify(hash, password.data(), password.size()) != 0) std::abort();
        done.fetch_add(1);
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("argon2id verify m=%llu KiB t=%llu p=1 threads=%u: %lu in %.2f s = %.1f/s\n", memory_kib, iterations,
              threads, done.load(), took, static_cast<double>(done.load()) / took);
  return 0;
}
