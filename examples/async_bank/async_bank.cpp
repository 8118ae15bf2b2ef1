// The README's async example as a program: a coroutine on an io_context run by two threads
// deposits into an AsyncStore (prevalent/asio.hpp), reads the balance back, takes a snapshot
// and closes. Each deposit completes once it is durable; no io thread waits for the disk.
//
//   async_bank DIR     prints the balances after the deposits (they add up across runs)
#include <cstdio>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <prevalent/asio.hpp>

namespace asio = boost::asio;

struct Bank {
  std::map<std::string, long> balances;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Bank, balances)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  long amount = 0;
  void validate(const Bank&, const prevalent::Context&) const {
    if (amount <= 0) throw std::invalid_argument("amount must be positive");
  }
  long apply(Bank& b, const prevalent::Context&) const { return b.balances[account] += amount; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

using BankStore = prevalent::AsyncStore<Bank, Deposit>;

asio::awaitable<void> run(BankStore& store) {
  for (const char* who : {"alice", "bob", "alice"}) {
    // (error_code, result): std::error_code is not turned into an exception by use_awaitable.
    // Built before the co_await, not inside it: GCC 12 destroys a braced temporary with a
    // std::string member in a co_await expression twice (clang is fine).
    Deposit deposit{who, 100};
    auto [ec, balance] = co_await store.async_execute(std::move(deposit), asio::use_awaitable);
    if (ec) throw std::system_error(ec);
    std::printf("%s now has %ld (durable)\n", who, balance);
  }
  prevalent::diagnostics diag;
  Deposit negative{"bob", -5};
  auto [ec, ignored] = co_await store.async_execute(std::move(negative), diag, asio::use_awaitable);
  std::printf("a negative deposit: %s (%s)\n", ec.message().c_str(), diag.message().c_str());
  auto [qec, total] = co_await store.async_query(
      [](const Bank& b) {
        long t = 0;
        for (auto& [_, v] : b.balances) t += v;
        return t;
      },
      asio::use_awaitable);
  std::printf("total %ld\n", total);
  // The snapshot's disk work runs on the store's background thread, not here.
  if (auto sec = co_await store.async_snapshot(asio::use_awaitable)) throw std::system_error(sec);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: async_bank DIR\n";
    return 2;
  }
  asio::io_context io;
  BankStore store(io.get_executor(), argv[1]);
  auto done = asio::co_spawn(io, run(store), asio::use_future);
  std::thread second([&io] { io.run(); });
  io.run();
  second.join();
  done.get();  // rethrows what the coroutine threw
  store.close();
  return 0;
}
