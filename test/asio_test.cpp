// AsyncStore (prevalent/asio.hpp): every completion token kind on an io_context run by 4
// threads, completion on the associated executor, error codes and diagnostics, close with
// operations in flight, no lost wake-up under load, background work off the io threads.
#include <doctest/doctest.h>

#include <algorithm>
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
#include "prevalent/format.hpp"
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

// Carries a string (short ones in place, long ones on the heap): a command that is not
// trivially copyable, through every token kind.
struct Note {
  static constexpr std::string_view name = "note";
  std::string text;
  std::int64_t apply(Counter& c, const Context&) const {
    return c.value += static_cast<std::int64_t>(text.size());
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Note, text)
};

using CounterStore = AsyncStore<Counter, Add, Reset, Explode, Note>;

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
  bool is_io_thread() { return is_io_thread_id(std::this_thread::get_id()); }
  bool is_io_thread_id(std::thread::id id) {
    std::lock_guard lock(mutex_);
    return ids_.count(id) != 0;
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
    // The default token, deferred, is awaitable too.
    auto [dec, dv] = co_await store.async_execute(Add{1});
    CHECK(!dec);
    CHECK(dv == last + 1);
    co_return dv;
  };
  auto f = asio::co_spawn(threads.io(), body(), asio::use_future);
  CHECK(f.get() == 211);
}

TEST_CASE("commands with string members, through every token kind") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  const std::string long_text(100, 'x');
  std::promise<std::int64_t> by_callback;
  store.async_execute(Note{"short"}, [&](std::error_code ec, std::int64_t v) {
    CHECK(!ec);
    by_callback.set_value(v);
  });
  CHECK(by_callback.get_future().get() == 5);
  CHECK(std::get<1>(store.async_execute(Note{long_text}, asio::use_future).get()) == 105);
  std::promise<std::int64_t> by_deferred;
  auto op = store.async_execute(Note{long_text});
  std::move(op)([&](std::error_code ec, std::int64_t v) {
    CHECK(!ec);
    by_deferred.set_value(v);
  });
  CHECK(by_deferred.get_future().get() == 205);
  auto body = [&]() -> asio::awaitable<std::int64_t> {
    // Named, not a braced temporary inside the co_await: GCC 12 miscompiles the latter.
    Note note{long_text};
    auto [ec, v] = co_await store.async_execute(std::move(note), asio::use_awaitable);
    CHECK(!ec);
    co_return v;
  };
  CHECK(asio::co_spawn(threads.io(), body(), asio::use_future).get() == 305);
  CHECK(value_of(store) == 305);
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

  // A query whose function throws: query_failed, with the message.
  auto [qec, q] =
      store
          .async_query([](const Counter&) -> int { throw std::out_of_range("no such key"); }, diag,
                       asio::use_future)
          .get();
  CHECK(qec == errc::query_failed);
  CHECK(q == 0);
  CHECK(diag.message() == "no such key");

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

TEST_CASE("completion on the associated executor: a strand's handlers run inside the strand") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  auto strand = asio::make_strand(threads.io());
  constexpr int n = 200;
  std::atomic<int> in_strand{0}, done{0};
  std::promise<void> all;
  auto count = [&](bool inside) {
    if (inside) ++in_strand;
    if (++done == 2 * n) all.set_value();
  };
  for (int i = 0; i < n; ++i) {
    store.async_execute(Add{1}, asio::bind_executor(strand, [&](std::error_code ec, std::int64_t) {
                          CHECK(!ec);
                          count(strand.running_in_this_thread());
                        }));
    store.async_query([](const Counter& c) { return c.value; },
                      asio::bind_executor(strand, [&](std::error_code ec, std::int64_t) {
                        CHECK(!ec);
                        count(strand.running_in_this_thread());
                      }));
  }
  all.get_future().get();
  CHECK(in_strand == 2 * n);
  CHECK(value_of(store) == n);
}

TEST_CASE("a journal sync fails: the command completes with EIO, the store fails and rolls back") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  CounterStore store(threads.executor(), CounterStore::store_type(faulty));
  CHECK(std::get<1>(store.async_execute(Add{3}, asio::use_future).get()) == 3);
  // Injected: every later fdatasync of a journal segment fails with EIO.
  faulty->fail_when([](FaultInjectingDirectory::op o, const std::string& name) {
    return o == FaultInjectingDirectory::op::sync && name.rfind("journal-", 0) == 0;
  });
  diagnostics diag;
  std::atomic<bool> on_io{false};
  std::promise<std::error_code> got;
  store.async_execute(Add{4}, diag, [&](std::error_code ec, std::int64_t v) {
    on_io = threads.is_io_thread();
    CHECK(v == 0);
    got.set_value(ec);
  });
  const auto ec = got.get_future().get();
  CHECK(ec == std::errc::io_error);
  CHECK(on_io);
  CHECK(!diag.message().empty());
  CHECK(store.sync().failed());
  // Verified: the state dropped the command that never became durable.
  CHECK(value_of(store) == 3);
  auto [qec, q] =
      store.async_query([](const Counter& c) { return c.value; }, asio::use_future).get();
  CHECK(!qec);
  CHECK(q == 3);
  auto [ec2, v2] = store.async_execute(Add{1}, asio::use_future).get();
  CHECK(ec2 == errc::store_failed);
  faulty->fail_when({});
}

TEST_CASE("a query that saw a command whose sync fails answers again from the durable state") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  CounterStore store(threads.executor(), CounterStore::store_type(faulty));
  CHECK(std::get<1>(store.async_execute(Add{3}, asio::use_future).get()) == 3);
  // Injected: the next journal fdatasync waits until the query has run, then fails with EIO.
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> armed{true};
  faulty->fail_when([&](FaultInjectingDirectory::op o, const std::string& name) {
    if (o != FaultInjectingDirectory::op::sync || name.rfind("journal-", 0) != 0) return false;
    if (armed.exchange(false)) {
      entered.set_value();
      released.wait();
    }
    return true;
  });
  auto write = store.async_execute(Add{4}, asio::use_future);
  entered.get_future().wait();  // Add{4} is applied and queued; its sync has begun
  auto read = store.async_query([](const Counter& c) { return c.value; }, asio::use_future);
  release.set_value();
  CHECK(std::get<0>(write.get()) == std::errc::io_error);
  auto [qec, q] = read.get();
  CHECK(!qec);
  CHECK(q == 3);  // verified: the query's first answer (7) was never handed out
  faulty->fail_when({});
}

TEST_CASE("close while operations are in flight: every handler runs exactly once, on io") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  CounterStore store(threads.executor(), CounterStore::store_type(faulty));
  // Injected: a slow disk; every journal fdatasync takes 5 ms (and succeeds).
  faulty->fail_when([](FaultInjectingDirectory::op o, const std::string& name) {
    if (o == FaultInjectingDirectory::op::sync && name.rfind("journal-", 0) == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return false;
  });
  constexpr int n = 2000;
  std::vector<std::atomic<int>> calls(n);
  std::atomic<int> ok{0}, closed{0}, other{0}, off_io{0};
  std::promise<void> all;
  std::atomic<int> finished{0};
  std::thread producer([&] {
    for (int i = 0; i < n; ++i)
      store.async_execute(Add{1}, [&, i](std::error_code ec, std::int64_t) {
        ++calls[i];
        if (!threads.is_io_thread()) ++off_io;
        if (!ec)
          ++ok;
        else if (ec == errc::closed)
          ++closed;
        else
          ++other;
        if (++finished == n) all.set_value();
      });
  });
  while (store.sync().last_sequence() < 100) std::this_thread::yield();
  store.close();  // from a thread that is not an io thread, with commands in flight
  producer.join();
  all.get_future().get();
  for (auto& c : calls) CHECK(c.load() == 1);
  CHECK(off_io == 0);
  CHECK(other == 0);
  CHECK(ok + closed == n);
  CHECK(ok >= 100);
  // Verified: every command that succeeded is in the state, and on disk: reopen and count.
  INFO("ok=" << ok << " closed=" << closed << " last=" << store.sync().last_sequence()
             << " failed=" << store.sync().failed());
  CHECK(value_of(store) == ok);
  faulty->fail_when({});
  CounterStore::store_type reopened(faulty);
  CHECK(reopened.query([](const Counter& c) { return c.value; }) == ok);
}

TEST_CASE("no lost wake-up: 20,000 concurrent durable commands all complete") {
  test::temp_dir tmp;
  io_threads threads;
  store_options o;
  o.sync = sync_policy::always();
  CounterStore store(threads.executor(), tmp.path(), o);
  constexpr int n = 20000;
  std::atomic<int> done{0}, errors{0};
  std::atomic<std::int64_t> sum_of_results{0};
  std::promise<void> all;
  // Started from the io threads themselves, as a server would.
  for (int t = 0; t < 4; ++t)
    asio::post(threads.io(), [&] {
      for (int i = 0; i < n / 4; ++i)
        store.async_execute(Add{1}, [&](std::error_code ec, std::int64_t v) {
          if (ec) ++errors;
          sum_of_results += v;
          if (++done == n) all.set_value();
        });
    });
  all.get_future().get();
  CHECK(errors == 0);
  CHECK(value_of(store) == n);
  // Each command saw a distinct value 1..n: their sum is n(n+1)/2.
  CHECK(sum_of_results == std::int64_t{n} * (n + 1) / 2);
  CHECK(store.sync().durable_sequence() == n);
}

TEST_CASE("query cancellation: the query completes with operation_aborted, the write goes on") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  CounterStore store(threads.executor(), CounterStore::store_type(faulty));
  // Injected: the next journal fdatasync waits until the test releases it (then succeeds).
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> armed{true};
  faulty->fail_when([&](FaultInjectingDirectory::op o, const std::string& name) {
    if (o == FaultInjectingDirectory::op::sync && name.rfind("journal-", 0) == 0 &&
        armed.exchange(false)) {
      entered.set_value();
      released.wait();
    }
    return false;
  });
  auto strand = asio::make_strand(threads.io());
  asio::cancellation_signal query_signal, command_signal;
  std::promise<std::pair<std::error_code, std::int64_t>> query_result, command_result;
  asio::post(strand, [&] {
    store.async_execute(Add{5},
                        asio::bind_cancellation_slot(
                            command_signal.slot(),
                            asio::bind_executor(strand, [&](std::error_code ec, std::int64_t v) {
                              command_result.set_value({ec, v});
                            })));
  });
  entered.get_future().wait();  // Add{5} is queued, its sync is held
  asio::post(strand, [&] {
    store.async_query([](const Counter& c) { return c.value; },
                      asio::bind_cancellation_slot(
                          query_signal.slot(),
                          asio::bind_executor(strand, [&](std::error_code ec, std::int64_t v) {
                            query_result.set_value({ec, v});
                          })));
    // On the strand, as Asio requires of a signal and its slot.
    query_signal.emit(asio::cancellation_type::total);
    command_signal.emit(asio::cancellation_type::terminal);
  });
  auto [qec, q] = query_result.get_future().get();
  CHECK(qec == std::errc::operation_canceled);
  CHECK(q == 0);  // the value it saw (5, not durable yet) was dropped
  release.set_value();
  // Verified: the command ignored its cancellation and completed with its result.
  auto [cec, c] = command_result.get_future().get();
  CHECK(!cec);
  CHECK(c == 5);
  faulty->fail_when({});
}

TEST_CASE("snapshots run on the background thread: async_snapshot and the periodic timer") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  std::mutex mutex;
  std::set<std::thread::id> snapshot_writers;
  // Injected: nothing fails; the rule records which threads write snapshot files.
  faulty->fail_when([&](FaultInjectingDirectory::op, const std::string& name) {
    if (name.rfind("snapshot", 0) == 0) {
      std::lock_guard lock(mutex);
      snapshot_writers.insert(std::this_thread::get_id());
    }
    return false;
  });
  async_options every;
  every.snapshot_every = std::chrono::milliseconds(5);
  CounterStore store(threads.executor(), CounterStore::store_type(faulty), every);
  auto snapshots = [&] {
    int n = 0;
    for (auto& name : faulty->list())
      if (name.rfind("snapshot-", 0) == 0 && name.find(".tmp") == std::string::npos) ++n;
    return n;
  };
  CHECK(std::get<1>(store.async_execute(Add{1}, asio::use_future).get()) == 1);
  CHECK(!store.async_snapshot(asio::use_future).get());
  CHECK(snapshots() >= 1);
  // The timer snapshots after further commands, without being asked.
  CHECK(std::get<1>(store.async_execute(Add{1}, asio::use_future).get()) == 2);
  auto has = [&](const std::string& name) {
    auto names = faulty->list();
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  // (A bound, not a speed requirement: the timer fires every 5 ms.)
  for (int i = 0; i < 30000 && !has(format::snapshot_file_name(2)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(has(format::snapshot_file_name(2)));
  store.close();  // stops the timer
  std::lock_guard lock(mutex);
  CHECK(!snapshot_writers.empty());
  for (auto id : snapshot_writers) CHECK(!threads.is_io_thread_id(id));
}

TEST_CASE("no completion runs on a non-io thread, whatever completes it") {
  // Completions decided on the committer thread (syncs), on the initiating thread (rejections,
  // an already-durable query), on the background thread (snapshots, the rollback after an I/O
  // error) and on the closing thread (the final sync of close()) must all be posted to io.
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  CounterStore store(threads.executor(), CounterStore::store_type(faulty));
  // Injected: a slow disk, every journal fdatasync takes 2 ms (and succeeds).
  faulty->fail_when([](FaultInjectingDirectory::op o, const std::string& name) {
    if (o == FaultInjectingDirectory::op::sync && name.rfind("journal-", 0) == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return false;
  });
  std::atomic<int> started{0}, finished{0}, off_io{0};
  auto record = [&] {
    if (!threads.is_io_thread()) ++off_io;
    ++finished;
  };
  for (int i = 0; i < 300; ++i) {
    started += 3;
    store.async_execute(Add{1}, [&](std::error_code, std::int64_t) { record(); });
    store.async_execute(Add{0}, [&](std::error_code ec, std::int64_t) {
      CHECK(ec == errc::command_rejected);
      record();
    });
    store.async_query([](const Counter& c) { return c.value; },
                      [&](std::error_code, std::int64_t) { record(); });
    if (i % 100 == 0) {
      ++started;
      store.async_snapshot([&](std::error_code ec) {
        CHECK(!ec);
        record();
      });
    }
  }
  store.close();  // from the test's thread, with commands still waiting for their sync
  // After close: errors decided at once on this thread.
  started += 2;
  store.async_execute(Add{1}, [&](std::error_code ec, std::int64_t) {
    CHECK(ec == errc::closed);
    record();
  });
  store.async_snapshot([&](std::error_code ec) {
    CHECK(ec == errc::closed);
    record();
  });
  threads.join();  // returns once every handler has run (they hold work on the io_context)
  CHECK(finished == started.load());
  CHECK(off_io == 0);
  faulty->fail_when({});
}

TEST_CASE("a completion never comes before the safety its sync policy promises") {
  // Each Add{1} on an empty counter returns its own sequence number, so its handler can check
  // the journal's marks: durable under `always`, written under `interval`.
  for (bool always : {true, false}) {
    CAPTURE(always);
    test::temp_dir tmp;
    io_threads threads;
    store_options o;
    o.sync = always ? sync_policy::always() : sync_policy::interval(std::chrono::milliseconds(5));
    CounterStore store(threads.executor(), tmp.path(), o);
    constexpr int n = 2000;
    std::atomic<int> done{0}, early{0}, early_queries{0};
    std::promise<void> all;
    auto mark = [&] {
      return always ? store.sync().durable_sequence() : store.sync().written_sequence();
    };
    for (int i = 0; i < n; ++i) {
      store.async_execute(Add{1}, [&](std::error_code ec, std::int64_t seq) {
        CHECK(!ec);
        if (mark() < static_cast<std::uint64_t>(seq)) ++early;
        if (++done == 2 * n) all.set_value();
      });
      // The query saw every command started before it: it may answer only once they are safe.
      store.async_query([](const Counter& c) { return c.value; },
                        [&](std::error_code ec, std::int64_t seen) {
                          CHECK(!ec);
                          if (mark() < static_cast<std::uint64_t>(seen)) ++early_queries;
                          if (++done == 2 * n) all.set_value();
                        });
    }
    all.get_future().get();
    CHECK(early == 0);
    CHECK(early_queries == 0);
  }
}

TEST_CASE("async_close: the store closes off the io threads while commands are in flight") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads(1);
  auto store = std::make_unique<CounterStore>(threads.executor(), CounterStore::store_type(faulty));
  // Injected: a slow disk, every journal fdatasync takes 5 ms (and succeeds).
  faulty->fail_when([](FaultInjectingDirectory::op o, const std::string& name) {
    if (o == FaultInjectingDirectory::op::sync && name.rfind("journal-", 0) == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return false;
  });
  std::atomic<int> ok{0}, closed_after{0};
  std::promise<std::error_code> closed;
  std::atomic<bool> close_on_io{false};
  // From the only io thread: start commands, then close without blocking that thread.
  asio::post(threads.io(), [&] {
    for (int i = 0; i < 500; ++i)
      store->async_execute(Add{1}, [&](std::error_code ec, std::int64_t) {
        if (!ec) ++ok;
      });
    store->async_close([&](std::error_code ec) {
      close_on_io = threads.is_io_thread();
      // Every command started before async_close completed before its handler.
      closed_after = ok.load();
      closed.set_value(ec);
    });
  });
  CHECK(!closed.get_future().get());
  CHECK(close_on_io);
  CHECK(closed_after == 500);
  CHECK(value_of(*store) == 500);
  store.reset();  // joins the closing thread
  faulty->fail_when({});
  CounterStore::store_type reopened(faulty);
  CHECK(reopened.query([](const Counter& c) { return c.value; }) == 500);
}

TEST_CASE("the final sync of close() fails: every pending command completes with the error") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  io_threads threads;
  CounterStore store(threads.executor(), CounterStore::store_type(faulty));
  CHECK(std::get<1>(store.async_execute(Add{1}, asio::use_future).get()) == 1);
  // Injected: journal fdatasyncs block until close() has begun, then fail with EIO.
  std::atomic<bool> closing{false};
  faulty->fail_when([&](FaultInjectingDirectory::op o, const std::string& name) {
    if (o != FaultInjectingDirectory::op::sync || name.rfind("journal-", 0) != 0) return false;
    while (!closing) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return true;
  });
  constexpr int n = 200;
  std::atomic<int> calls{0}, io_errors{0}, others{0}, off_io{0};
  std::promise<void> all;
  for (int i = 0; i < n; ++i)
    store.async_execute(Add{1}, [&](std::error_code ec, std::int64_t) {
      if (!threads.is_io_thread()) ++off_io;
      if (ec == std::errc::io_error)
        ++io_errors;
      else
        ++others;
      if (++calls == n) all.set_value();
    });
  closing = true;
  CHECK_THROWS_AS(store.close(), std::system_error);  // reports the failed final sync
  all.get_future().get();
  CHECK(calls == n);
  CHECK(io_errors == n);  // none of them became durable
  CHECK(others == 0);
  CHECK(off_io == 0);
  // Verified: the live state dropped every command that never became durable.
  CHECK(value_of(store) == 1);
  faulty->fail_when({});
}

TEST_CASE("async_execute counts in the metrics: applied with its durable wait, rejected, failed") {
  test::temp_dir tmp;
  io_threads threads;
  CounterStore store(threads.executor(), tmp.path());
  for (int i = 1; i <= 4; ++i) {
    auto [ec, v] = store.async_execute(Add{i}, asio::use_future).get();
    CHECK(!ec);
  }
  auto [rejected, r0] = store.async_execute(Add{0}, asio::use_future).get();
  CHECK(rejected == errc::command_rejected);
  auto [failed, f0] = store.async_execute(Explode{}, asio::use_future).get();
  CHECK(failed == errc::command_failed);
  const store_metrics m = store.sync().metrics();
  CHECK(m.commands_applied == 4);
  CHECK(m.commands_rejected == 1);
  CHECK(m.commands_failed == 1);
  // The completion of each applied command recorded its durable wait (on the committer
  // thread) before its handler ran.
  CHECK(m.execute_durable_seconds.count == 4);
  CHECK(m.execute_durable_seconds.sum > 0);  // under always, each waited for an fdatasync
  CHECK(m.execute_apply_seconds.count == 4);
}
