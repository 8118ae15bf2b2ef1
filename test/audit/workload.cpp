// The workload of the syscall-order audit (tools/audit_syscalls.py runs it under strace): one
// writer executes deposits on a store with small segments and automatic snapshots, and writes
// "ack <sequence>\n" to stdout with a bare write(2) right after each execute returns, so the
// trace shows exactly when each command was acknowledged.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <prevalent/prevalent.hpp>
#include <string>

#include "../support.hpp"

namespace {
struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  std::int64_t amount = 0;
  std::uint64_t apply(test::Ledger& l, const prevalent::Context& ctx) const {
    l.balances[account] += amount;
    return ctx.sequence();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: audit_workload DIR COMMANDS\n");
    return 2;
  }
  prevalent::store_options o;
  o.segment_bytes = 4096;           // several segment rolls (R2, docs/RELIABILITY.md)
  o.snapshots.every_commands = 60;  // several snapshots and segment drops (R3)
  o.keep_snapshots = 1;
  prevalent::Store<test::Ledger, Deposit> store(prevalent::open_posix_directory(argv[1]), o);
  const int n = std::atoi(argv[2]);
  for (int i = 0; i < n; ++i) {
    const auto seq = store.execute(Deposit{"acct" + std::to_string(i % 7), i});
    const std::string ack = "ack " + std::to_string(seq) + "\n";
    if (::write(1, ack.data(), ack.size()) != static_cast<ssize_t>(ack.size())) return 1;
  }
  return 0;
}
