// The small replicated state the replication tests share (replica_test, replica_cut_test,
// replication_node_test): a Bank of balances and its one command, the stores over it, and the
// helpers that compare two nodes (a state digest as a snapshot would record it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <prevalent/state_digest.hpp>
#include <prevalent/store.hpp>

namespace replication_bank {

struct Bank {
  std::map<std::string, long> balances;
  long total = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Bank, balances, total)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  long amount = 0;
  long apply(Bank& b, const prevalent::Context&) const {
    b.total += amount;
    return b.balances[account] += amount;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

using BankStore = prevalent::Store<Bank, Deposit>;

// Deadlines only bound a test when something is lost; nothing here is timed.
inline std::chrono::steady_clock::time_point deadline() {
  return std::chrono::steady_clock::now() + std::chrono::seconds(60);
}

inline std::string address(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// The digest of a node's state (anything with query(f)) as a snapshot of it would record it.
template <class S>
prevalent::digest128 digest_of(const S& store) {
  return store.query([&](const Bank& b) {
    return prevalent::state_digest(
        prevalent::detail::store_access<Bank, Deposit>::serialize(b, prevalent::codec::json));
  });
}

}  // namespace replication_bank
