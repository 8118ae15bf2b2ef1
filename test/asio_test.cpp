// AsyncStore (prevalent/asio.hpp): every completion token kind on an io_context run by 4
// threads, completion on the associated executor, error codes and diagnostics, close with
// operations in flight, no lost wake-up under load, background work off the io threads.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "prevalent/asio.hpp"
#include "prevalent/testing/fault_injecting_directory.hpp"
#include "support.hpp"

namespace asio = boost::asio;
using namespace prevalent;
using prevalent::testing::FaultInjectingDirectory;

namespace {

struct Counter {
  std::int64_t value = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Counter, value)
};

// Adds `by` and returns the new value; validate() rejects 0.
struct Add {
  static constexpr std::string_view name = "add";
  std::int64_t by = 1;
  void validate(const Counter&, const Context&) const {
    if (by == 0) throw std::invalid_argument("add: by must not be 0");
  }
  std::int64_t apply(Counter& c, const Context&) const { return c.value += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};

// Returns nothing.
struct Reset {
  static constexpr std::string_view name = "reset";
  void apply(Counter& c, const Context&) const { c.value = 0; }
};

// apply() throws before changing anything.
struct Explode {
  static constexpr std::string_view name = "explode";
  static constexpr bool atomic_apply = true;
  int apply(Counter&, const Context&) const { throw std::runtime_error("explode: on purpose"); }
};

using CounterStore = AsyncStore<Counter, Add, Reset, Explode>;

// An io_context run by `n` threads until the guard is released; remembers their ids.
class io_threads {
 public:
  explicit io_threads(int n = 4) : work_(asio::make_work_guard(io_)) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this] {
        {
          std::lock_guard lock(mutex_);
          ids_.insert(std::this_thread::get_id());
        }
        io_.run();
      });
    while (true) {
      std::lock_guard lock(mutex_);
      if (ids_.size() == static_cast<std::size_t>(n)) break;
    }
  }
  ~io_threads() { join(); }
  // Lets run() return once the work is done, and joins the threads.
  void join() {
    work_.reset();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  asio::io_context& io() { return io_; }
  asio::any_io_executor executor() { return io_.get_executor(); }
  bool is_io_thread() {
    std::lock_guard lock(mutex_);
    return ids_.count(std::this_thread::get_id()) != 0;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::mutex mutex_;
  std::set<std::thread::id> ids_;
  std::vector<std::thread> threads_;
};

std::int64_t value_of(CounterStore& store) {
  return store.sync().query([](const Counter& c) { return c.value; });
}

}  // namespace

TEST_CASE("callback token: the result arrives on an io thread, never inside the call") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  std::promise<std::pair<std::error_code, std::int64_t>> got;
  std::atomic<bool> returned{false}, completed_before_return{false}, on_io{false};
  store.async_execute(Add{5}, [&](std::error_code ec, std::int64_t v) {
    completed_before_return = !returned.load();
    on_io = threads.is_io_thread();
    got.set_value({ec, v});
  });
  returned = true;
  auto [ec, v] = got.get_future().get();
  CHECK(!ec);
  CHECK(v == 5);
  CHECK(on_io);
  // (The call returned before the fdatasync, so the handler almost never runs first; the
  // check that it cannot is below, with policy `none`, where the record is safe at once.)
  std::promise<std::int64_t> q;
  store.async_query([](const Counter& c) { return c.value * 2; },
                    [&](std::error_code e, std::int64_t r) {
                      CHECK(!e);
                      q.set_value(r);
                    });
  CHECK(q.get_future().get() == 10);
  store.close();
  CHECK(value_of(store) == 5);
}

TEST_CASE("a completion that is decided at once is still posted, not run inline") {
  test::temp_dir tmp;
  io_threads threads(1);
  store_options o;
  o.sync = sync_policy::none();  // safe at once: on_safe decides on the calling thread
  CounterStore store(threads.executor(), tmp.path(), o);
  std::promise<void> checked;
  asio::post(threads.io(), [&] {
    bool returned = false;
    bool inline_call = false;
    store.async_execute(Add{1}, [&, p = &returned](std::error_code, std::int64_t) {
      inline_call = !*p;
      checked.set_value();
    });
    returned = true;
    CHECK(!inline_call);
  });
  checked.get_future().get();
  store.close();
}

TEST_CASE("deferred token (the default): nothing runs until the operation is launched") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  auto op = store.async_execute(Add{7});  // deferred: not started
  CHECK(store.sync().last_sequence() == 0);
  std::promise<std::int64_t> got;
  std::move(op)([&](std::error_code ec, std::int64_t v) {
    CHECK(!ec);
    got.set_value(v);
  });
  CHECK(got.get_future().get() == 7);
  std::promise<void> reset_done;
  store.async_execute(Reset{})([&](std::error_code ec) {
    CHECK(!ec);
    reset_done.set_value();
  });
  reset_done.get_future().get();
  CHECK(value_of(store) == 0);
}

TEST_CASE("use_future token: the future holds (error_code, result)") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  auto f = store.async_execute(Add{3}, asio::use_future);
  auto [ec, v] = f.get();
  CHECK(!ec);
  CHECK(v == 3);
  auto q = store.async_query([](const Counter& c) { return c.value + 1; }, asio::use_future);
  CHECK(std::get<1>(q.get()) == 4);
  auto r = store.async_execute(Reset{}, asio::use_future);
  CHECK(!r.get());
}

TEST_CASE("use_awaitable token: a coroutine runs commands and queries on the io threads") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  auto body = [&]() -> asio::awaitable<std::int64_t> {
    std::int64_t last = 0;
    for (int i = 1; i <= 20; ++i) {
      auto [ec, v] = co_await store.async_execute(Add{i}, asio::use_awaitable);
      CHECK(!ec);
      CHECK(threads.is_io_thread());
      last = v;
    }
    auto [ec, seen] =
        co_await store.async_query([](const Counter& c) { return c.value; }, asio::use_awaitable);
    CHECK(!ec);
    CHECK(seen == last);
    co_return last;
  };
  auto f = asio::co_spawn(threads.io(), body(), asio::use_future);
  CHECK(f.get() == 210);
}

TEST_CASE("rejected command: command_rejected with the validate() message; nothing written") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  diagnostics diag;
  auto [ec, v] = store.async_execute(Add{0}, diag, asio::use_future).get();
  CHECK(ec == errc::command_rejected);
  CHECK(v == 0);
  CHECK(diag.message() == "add: by must not be 0");
  CHECK_THROWS_AS(std::rethrow_exception(diag.exception()), std::invalid_argument);
  CHECK(store.sync().last_sequence() == 0);

  auto [ec2, v2] = store.async_execute(Explode{}, diag, asio::use_future).get();
  CHECK(ec2 == errc::command_failed);
  CHECK(diag.message() == "explode: on purpose");
  CHECK(store.sync().last_sequence() == 0);

  // A success clears what a failure left.
  auto [ec3, v3] = store.async_execute(Add{2}, diag, asio::use_future).get();
  CHECK(!ec3);
  CHECK(v3 == 2);
  CHECK(diag.message().empty());
  CHECK(!diag.exception());
}

TEST_CASE("closed store: commands complete with errc::closed, queries still answer") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  CHECK(std::get<1>(store.async_execute(Add{4}, asio::use_future).get()) == 4);
  store.close();
  diagnostics diag;
  auto [ec, v] = store.async_execute(Add{1}, diag, asio::use_future).get();
  CHECK(ec == errc::closed);
  CHECK(diag.message().find("closed") != std::string::npos);
  auto [qec, q] =
      store.async_query([](const Counter& c) { return c.value; }, asio::use_future).get();
  CHECK(!qec);
  CHECK(q == 4);
  CHECK(store.async_snapshot(asio::use_future).get() == errc::closed);
}
