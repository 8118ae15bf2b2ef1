// A program outside the project, built by tools/consumer-check against an installed prevalent
// (pkg-config, CMake) or prevalent as a meson subproject: it opens a real store in a new
// directory, executes commands and takes a snapshot, reopens the store and checks that
// snapshot plus journal replay give back the same state. Exits 1 on any mismatch.
#include <prevalent/prevalent.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

namespace {

struct Bank {
  std::map<std::string, long> balances;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Bank, balances)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  long amount = 0;
  long apply(Bank& b, const prevalent::Context&) const { return b.balances[account] += amount; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

using Store = prevalent::Store<Bank, Deposit>;

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "consumer: FAILED: " << what << "\n";
    ++failures;
  }
}

}  // namespace

int main() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "prevalent-consumer-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  const std::filesystem::path dir = std::filesystem::path(tmpl) / "store";
  try {
    {
      Store store{dir};
      expect(store.execute(Deposit{"alice", 100}) == 100, "execute returns the new balance");
      store.snapshot();
      expect(store.execute(Deposit{"alice", 5}) == 105, "execute after the snapshot");
      store.execute(Deposit{"bob", 7});
    }
    expect(!std::filesystem::is_empty(dir), "the store wrote files to " + dir.string());
    Store reopened{dir};  // loads the snapshot, replays the two commands after it
    const auto balances = reopened.query([](const Bank& b) { return b.balances; });
    expect(balances == std::map<std::string, long>{{"alice", 105}, {"bob", 7}},
           "reopened state is alice=105 bob=7");
  } catch (const std::exception& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    ++failures;
  }
  std::filesystem::remove_all(tmpl);
  if (failures == 0) std::cout << "consumer: ok, state replayed from " << dir.string() << "\n";
  return failures == 0 ? 0 : 1;
}
