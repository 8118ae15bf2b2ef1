// A consumer's own crash test, built by tools/consumer-check against an installed prevalent and
// prevalent_testing (pkg-config `prevalent-testing`, CMake `prevalent::testing`) or the meson
// subproject: a store on a FaultInjectingDirectory wrapping a real directory executes commands,
// the power is cut, and a store opened on what the disk could have kept must hold every
// acknowledged command. Exits 1 on any mismatch.
#include <prevalent/prevalent.hpp>
#include <prevalent/testing/fault_injecting_directory.hpp>

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
    std::cerr << "crash-consumer: FAILED: " << what << "\n";
    ++failures;
  }
}

}  // namespace

int main() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "prevalent-crash-consumer-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  try {
    auto disk = std::make_shared<prevalent::testing::FaultInjectingDirectory>(
        prevalent::open_posix_directory(std::filesystem::path(tmpl) / "store"));
    long acknowledged = 0;
    bool cut = false;
    {
      Store store{disk};
      for (int i = 0; i < 5; ++i) acknowledged = store.execute(Deposit{"alice", 10});
      disk->crash_after(1);  // the power goes out at the next disk operation
      try {
        store.execute(Deposit{"alice", 1000});
      } catch (const prevalent::error&) {
        cut = true;
      }
    }
    expect(cut, "the command after the power cut failed");
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      Store recovered{disk->power_loss(seed)};
      const long balance = recovered.query([](const Bank& b) {
        auto it = b.balances.find("alice");
        return it == b.balances.end() ? 0L : it->second;
      });
      expect(balance == acknowledged, "seed " + std::to_string(seed) + ": recovered " +
                                          std::to_string(balance) + ", acknowledged " +
                                          std::to_string(acknowledged));
    }
  } catch (const std::exception& e) {
    std::cerr << "crash-consumer: " << e.what() << "\n";
    ++failures;
  }
  std::filesystem::remove_all(tmpl);
  if (failures == 0) std::cout << "crash-consumer: ok, every acknowledged command survived\n";
  return failures == 0 ? 0 : 1;
}
