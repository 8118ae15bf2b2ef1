// Shared helpers for the tests: a temporary directory, file byte surgery, and the ledger model
// (accounts whose total is conserved by transfers) used by store-level tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <prevalent/format.hpp>
#include <prevalent/prevalent.hpp>

namespace test {

// A fresh directory under $TMPDIR (or /tmp), removed at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/prevalent-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::filesystem::path& p, const std::vector<std::uint8_t>& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline void flip_byte(const std::filesystem::path& p, std::size_t offset) {
  auto data = read_file(p);
  data.at(offset) ^= 0x5a;
  write_file(p, data);
}

// Files in `dir` whose names start with `prefix`, sorted.
inline std::vector<std::filesystem::path> files_with_prefix(const std::filesystem::path& dir,
                                                            const std::string& prefix) {
  std::vector<std::filesystem::path> out;
  for (auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

inline void copy_dir(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::create_directories(to);
  for (auto& e : std::filesystem::directory_iterator(from))
    if (e.path().filename() != "LOCK")
      std::filesystem::copy_file(e.path(), to / e.path().filename());
}

// ---- encrypted variants of the crash and corruption tests ----

// A fixed test key (the tests check behaviour, not secrecy).
inline prevalent::encryption_key test_key() {
  std::vector<std::uint8_t> k(prevalent::encryption_key::size);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(0x40 + i);
  return prevalent::encryption_key(k);
}

// Whether trial `seed` of a randomized crash test runs on an encrypted store: every third one
// by default; PREVALENT_ENCRYPT=all or =none makes it every or no trial.
inline bool encrypted_trial(std::uint64_t seed) {
  const char* env = std::getenv("PREVALENT_ENCRYPT");
  if (env && std::string(env) == "all") return true;
  if (env && std::string(env) == "none") return false;
  return seed % 3 == 0;
}

// ---- the ledger model ----

struct Ledger {
  std::map<std::string, std::int64_t> balances;
  std::vector<std::uint64_t> applied;  // sequence number of every command applied, in order
  std::int64_t total() const {
    std::int64_t t = 0;
    for (auto& [_, b] : balances) t += b;
    return t;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Ledger, balances, applied)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  std::int64_t amount = 0;
  std::int64_t apply(Ledger& l, const prevalent::Context& ctx) const {
    l.applied.push_back(ctx.sequence());
    return l.balances[account] += amount;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

struct Transfer {
  static constexpr std::string_view name = "transfer";
  static constexpr int version = 2;
  std::string from, to;
  std::int64_t amount = 0;
  void validate(const Ledger& l, const prevalent::Context&) const {
    if (amount <= 0) throw std::invalid_argument("amount must be positive");
    auto it = l.balances.find(from);
    if (it == l.balances.end() || it->second < amount)
      throw std::invalid_argument("insufficient funds in " + from);
  }
  void apply(Ledger& l, const prevalent::Context& ctx) const {
    l.balances[from] -= amount;
    l.balances[to] += amount;
    l.applied.push_back(ctx.sequence());
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Transfer, from, to, amount)
};

// Debits, then throws before crediting: an apply() that fails half-way.
struct BrokenTransfer {
  static constexpr std::string_view name = "broken_transfer";
  std::string from, to;
  std::int64_t amount = 0;
  void apply(Ledger& l, const prevalent::Context&) const {
    l.balances[from] -= amount;
    throw std::runtime_error("injected failure half-way through apply");
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(BrokenTransfer, from, to, amount)
};

using LedgerStore = prevalent::Store<Ledger, Deposit, Transfer, BrokenTransfer>;

template <class S>
std::string dump_state(const S& store) {
  return store.query([](const auto& state) { return nlohmann::json(state).dump(); });
}

}  // namespace test
