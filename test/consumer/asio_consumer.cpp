// A program outside the project that uses the installed Asio adapter (prevalent/asio.hpp),
// built by tools/consumer-check where Boost.Asio is there: an AsyncStore on a one-thread
// io_context executes commands and a query through callbacks, closes, and a reopened
// synchronous store must hold the same state. Exits 1 on any mismatch.
#include <prevalent/asio.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

#include <boost/asio/io_context.hpp>

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

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "asio-consumer: FAILED: " << what << "\n";
    ++failures;
  }
}

}  // namespace

int main() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "prevalent-asio-consumer-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  const std::filesystem::path dir = std::filesystem::path(tmpl) / "store";
  try {
    boost::asio::io_context io;
    prevalent::AsyncStore<Bank, Deposit> store(io.get_executor(), dir);
    long last = 0, queried = 0;
    int completions = 0;
    store.async_execute(Deposit{"alice", 100}, [&](std::error_code ec, long balance) {
      expect(!ec, "async_execute succeeds");
      ++completions;
      store.async_execute(Deposit{"alice", 5}, [&](std::error_code ec2, long b2) {
        expect(!ec2, "the second async_execute succeeds");
        ++completions;
        last = b2;
        store.async_query([](const Bank& b) { return b.balances.at("alice"); },
                          [&](std::error_code ec3, long q) {
                            expect(!ec3, "async_query succeeds");
                            ++completions;
                            queried = q;
                          });
      });
      expect(balance == 100, "the first deposit returns 100");
    });
    io.run();  // returns once every operation completed
    store.close();
    expect(completions == 3, "three handlers ran");
    expect(last == 105 && queried == 105, "the balance is 105");
    prevalent::Store<Bank, Deposit> reopened{dir};
    expect(reopened.query([](const Bank& b) { return b.balances.at("alice"); }) == 105,
           "reopened state is alice=105");
  } catch (const std::exception& e) {
    std::cerr << "asio-consumer: " << e.what() << "\n";
    ++failures;
  }
  std::filesystem::remove_all(tmpl);
  if (failures == 0) std::cout << "asio-consumer: ok\n";
  return failures == 0 ? 0 : 1;
}
