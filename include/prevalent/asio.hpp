// AsyncStore<State, Commands...>: a Store for Boost.Asio programs. Commands and queries are
// asynchronous operations in the completion-token style, so that no io_context thread ever
// waits for an fdatasync: the wait for durability is a notification from the journal.
//
//   boost::asio::io_context io;
//   prevalent::AsyncStore<Bank, Deposit> store{io.get_executor(), "/var/lib/bank"};
//   // in a coroutine:
//   Deposit deposit{"alice", 100};
//   auto [ec, balance] = co_await store.async_execute(deposit, boost::asio::use_awaitable);
//
// Opt-in: only programs that include this header need Boost.Asio (header-only, Boost >= 1.81).
//
// Operations. async_execute(command, token) and async_query(f, token) complete with
// void(std::error_code, R), or void(std::error_code) when R is void; async_snapshot(token)
// with void(std::error_code). Any Asio completion token works: a callback, use_awaitable,
// use_future, deferred (the default), as_tuple(...), bind_executor(...). Because the error is
// a std::error_code (not a boost::system::error_code), Boost 1.81's use_awaitable and
// use_future do not turn it into an exception: `co_await` yields std::tuple<std::error_code,
// R>, the future holds that tuple. GCC 12 miscompiles a braced temporary with a non-trivial
// member inside a co_await expression (`co_await s.async_execute(Put{key, value}, ...)` with
// std::string members frees a bitwise copy): build the command in a variable first.
//
// Where the work runs. The initiating call does what the synchronous API does before it
// waits: a command is encoded, validated and applied under the exclusive lock and queued for
// the journal (so commands started from one thread are applied in the order they were
// started); a query runs `f` under the shared lock. The initiating thread may therefore wait
// for the state lock, and, when more than store_options::max_queued_bytes are queued for the
// journal, for queue space (backpressure: the disk is slower than the producers). It never
// waits for a write or an fdatasync. A non-atomic command whose apply() throws rebuilds the
// state from disk on the initiating thread, as Store::execute does.
//
// Completion. The handler runs on its associated executor (default: get_executor()),
// through asio::post with outstanding work tracked from initiation to completion: never inside
// the initiating call, never on the journal's committer thread or on the store's background
// thread. (use_future's handler is associated with Asio's system executor: the future becomes
// ready on one of its threads.) A command completes once its record is as safe as the sync
// policy promises; a query once every command its result could reflect is (durable under
// `always`, written under `interval`): the same rules as Store::execute and Store::query.
// Under store_options::acks = replicated(k) (issue 11) a command completes once, in addition,
// k replicas acknowledged it, or with errc::replication_timeout after acks.timeout (applied
// and durable here all the same): one waiter thread of the store completes them in sequence
// order, so no io thread waits for replicas.
// Notifications arrive in sequence order and are posted in that order; on an io_context run
// by several threads, handlers posted in order may still run concurrently (use a strand for
// ordered completions).
//
// Errors (the std::error_code; `diagnostics` keeps the exception and its message):
//   errc::command_rejected  validate() threw; nothing changed, nothing was written.
//   errc::command_failed    apply() threw; nothing was journaled (the state was rebuilt from
//                           disk unless the command is atomic_apply).
//   errc::query_failed      the query's function threw.
//   other prevalent::errc   the prevalent::error the synchronous call would throw keeps its
//                           code: closed, store_failed, record_too_large, bad_command_payload;
//                           an I/O error keeps its errno (std::generic_category()).
// After an I/O error the store fails as the synchronous one does: the state drops what never
// became durable (that rebuild runs on the background thread before the error is reported).
//
// Cancellation (per-operation cancellation slots). A command is applied and queued before
// async_execute's initiating call returns, and a queued record cannot be taken back:
// async_execute does not support cancellation; a cancellation request is ignored and the
// operation completes normally with its result once the record is safe. async_query supports
// every cancellation type (terminal, partial, total): it has no side effects, so it completes
// at once with boost::asio::error::operation_aborted and its result is dropped. async_snapshot
// is not cancellable.
//
// Background work. A store-owned background thread runs what must not run on an io thread:
// snapshots (async_snapshot, and the periodic timer of async_options::snapshot_every, which
// waits on the store's executor) and the rebuild after an I/O error. close() stops the timer,
// lets a snapshot in progress finish, closes the store (writing and syncing what is queued, so
// that every pending operation completes) and joins the thread.
//
// Threads: every member may be called from any thread. The AsyncStore must outlive the
// operations started on it until close() or its destructor returns; operations still pending
// then complete (their handlers are posted) without touching it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "prevalent/error.hpp"
#include "prevalent/store.hpp"

namespace prevalent {

// What a failed async operation leaves besides its error_code (like Boost.MySQL's
// diagnostics): the exception the synchronous call would have thrown.
class diagnostics {
 public:
  // what() of the exception, "" if none (or if it was not a std::exception).
  const std::string& message() const noexcept { return message_; }
  // The exception object (e.g. the one validate() threw); null after a success.
  std::exception_ptr exception() const noexcept { return exception_; }
  void clear() noexcept {
    message_.clear();
    exception_ = nullptr;
  }
  void assign(std::exception_ptr e) {
    exception_ = std::move(e);
    message_.clear();
    try {
      if (exception_) std::rethrow_exception(exception_);
    } catch (const std::exception& x) {
      message_ = x.what();
    } catch (...) {
    }
  }

 private:
  std::string message_;
  std::exception_ptr exception_;
};

// What an AsyncStore adds to store_options.
struct async_options {
  // Take a snapshot this often (timed on the store's executor, taken on the background
  // thread), when commands ran since the last one. Zero: no periodic snapshots.
  std::chrono::steady_clock::duration snapshot_every{0};
};

namespace detail {

// The error code of an exception thrown at step `at` of a command.
inline std::error_code command_error_code(const std::exception_ptr& e, command_step at) {
  if (at == command_step::validate) return errc::command_rejected;
  if (at == command_step::apply) return errc::command_failed;
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& x) {
    return x.code();
  } catch (...) {
    // Encoding threw (the command's to_json): the command has no valid payload.
    return at == command_step::prepare ? std::error_code(errc::bad_command_payload)
                                       : std::error_code(errc::command_failed);
  }
}

// void(std::error_code, R), or void(std::error_code) for void R.
template <class R>
struct completion_signature {
  using type = void(std::error_code, R);
};
template <>
struct completion_signature<void> {
  using type = void(std::error_code);
};

// boost::asio::error::operation_aborted as a std::error_code.
inline std::error_code operation_aborted() {
  return static_cast<std::error_code>(
      boost::system::error_code(boost::asio::error::operation_aborted));
}

inline std::error_code exception_code(const std::exception_ptr& e, errc otherwise) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& x) {
    return x.code();
  } catch (...) {
    return otherwise;
  }
}

// One pending operation's handler and the work it keeps on the handler's executor. complete()
// posts the handler with its arguments (the first call wins; later calls do nothing), so it
// may be called from any thread.
template <class Handler, class IoExecutor>
class async_completion {
  using handler_executor = boost::asio::associated_executor_t<Handler, IoExecutor>;
  using work_executor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<const handler_executor&>(), boost::asio::execution::outstanding_work.tracked))>;

 public:
  async_completion(Handler handler, const IoExecutor& io)
      : work_(boost::asio::prefer(boost::asio::get_associated_executor(handler, io),
                                  boost::asio::execution::outstanding_work.tracked)),
        handler_(std::move(handler)) {}

  Handler& handler() noexcept { return handler_; }

  // Decides that this caller completes the operation: true for the first caller only.
  bool claim() noexcept { return !finished_.exchange(true); }
  bool finished() const noexcept { return finished_.load(); }

  // claim(), then post().
  template <class... Args>
  void complete(Args... args) {
    if (claim()) post(std::move(args)...);
  }

  // Posts the handler with `args` to its executor. Only after claim() returned true.
  template <class... Args>
  void post(Args... args) {
    work_executor work = std::move(work_);
    boost::asio::post(work, [h = std::move(handler_), ... args = std::move(args)]() mutable {
      // Asio's rule: the slot is cleared before the handler runs.
      boost::asio::get_associated_cancellation_slot(h).clear();
      std::move(h)(std::move(args)...);
    });
  }

 private:
  std::atomic<bool> finished_{false};
  work_executor work_;
  Handler handler_;
};

// A thread for the blocking work of an AsyncStore (snapshots, rebuilds after an I/O error),
// so that io threads never run it. run() queues a task; drain() waits until every task queued
// so far has run; stop() runs what is left and joins. After stop(), run() runs the task on the
// calling thread (only the rebuild of a query that meets a failed journal after close()).
class background_thread {
 public:
  background_thread() : work_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~background_thread() { stop(); }
  background_thread(const background_thread&) = delete;
  background_thread& operator=(const background_thread&) = delete;

  void run(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (!stopped_) {
        boost::asio::post(io_, std::move(task));
        return;
      }
    }
    task();
  }
  void drain() {
    std::promise<void> done;
    auto ready = done.get_future();
    run([&done] { done.set_value(); });
    ready.wait();
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    work_.reset();  // run() returns once the queue is empty
    if (thread_.joinable()) thread_.join();
  }
  bool running_here() const noexcept { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::mutex mutex_;
  bool stopped_ = false;
  std::thread thread_;
};

// Under acks = replicated(k): one thread that completes the commands already safe locally
// once k replicas acknowledged them, so that no io thread waits (issue 11). Commands arrive in
// sequence order (the journal's notifications are in that order) with a deadline each
// (arrival + acks.timeout); the thread waits for the oldest (StoreCore::wait_replicated with
// its deadline: the replication ack sink wakes it) and completes it, then the next: a later
// record acknowledged implies every earlier one, so the list drains in order. stop() lets the
// pending commands finish (acknowledged or timed out, at most one timeout) and joins.
class replication_waiter {
 public:
  using done_fn = std::function<void(std::exception_ptr)>;
  explicit replication_waiter(StoreCore& core) : core_(core), thread_([this] { run(); }) {}
  ~replication_waiter() { stop(); }
  replication_waiter(const replication_waiter&) = delete;
  replication_waiter& operator=(const replication_waiter&) = delete;

  void add(std::uint64_t seq, std::chrono::steady_clock::time_point deadline, done_fn done) {
    {
      std::lock_guard g(mutex_);
      pending_.push_back({seq, deadline, std::move(done)});
    }
    cv_.notify_one();
  }
  void stop() {
    {
      std::lock_guard g(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct entry {
    std::uint64_t seq;
    std::chrono::steady_clock::time_point deadline;
    done_fn done;
  };
  void run() {
    for (;;) {
      entry next;
      {
        std::unique_lock g(mutex_);
        cv_.wait(g, [this] { return stopping_ || !pending_.empty(); });
        if (pending_.empty()) return;  // stopping, nothing left
        next = std::move(pending_.front());
        pending_.pop_front();
      }
      std::exception_ptr failure;
      try {
        core_.wait_replicated(next.seq, next.deadline);
      } catch (...) {
        failure = std::current_exception();
      }
      next.done(failure);
    }
  }

  StoreCore& core_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<entry> pending_;
  bool stopping_ = false;
  std::thread thread_;  // last: it uses the members above
};

}  // namespace detail

template <class State, class... Commands>
class AsyncStore {
 public:
  using executor_type = boost::asio::any_io_executor;
  using store_type = Store<State, Commands...>;

  // Opens (creating if needed) the store in `dir`; completions default to `ex`.
  AsyncStore(executor_type ex, const std::filesystem::path& dir, store_options options = {})
      : AsyncStore(ex, store_type(dir, std::move(options)), async_options{}) {}
  AsyncStore(executor_type ex, const std::filesystem::path& dir, store_options options,
             async_options async)
      : AsyncStore(ex, store_type(dir, std::move(options)), async) {}
  // Wraps an open store.
  AsyncStore(executor_type ex, store_type store) : AsyncStore(ex, std::move(store), {}) {}
  AsyncStore(executor_type ex, store_type store, async_options async)
      : core_(std::make_unique<core>(std::move(ex), std::move(store), async)) {
    core_->start_timer();
  }

  // close(), best effort: an error goes to store_options::log.
  ~AsyncStore() {
    if (!core_) return;
    core_->join_closers();
    core_->close_quietly();
  }
  AsyncStore(AsyncStore&&) noexcept = default;
  AsyncStore& operator=(AsyncStore&&) noexcept = delete;
  AsyncStore(const AsyncStore&) = delete;
  AsyncStore& operator=(const AsyncStore&) = delete;

  executor_type get_executor() const noexcept { return core_->ex; }
  // The synchronous store underneath (its blocking calls must not run on io threads).
  store_type& sync() noexcept { return core_->store; }

  // Runs `command` (see Store::execute); completes with void(std::error_code, R) once its
  // record is as safe as the sync policy promises. Not cancellable (see the top of the file).
  template <class Command, class Token = boost::asio::deferred_t>
  auto async_execute(Command command, Token&& token = {}) {
    return start_execute(std::move(command), nullptr, std::forward<Token>(token));
  }
  // The same, leaving the exception and its message of a failure in `diag` (which must live
  // until the operation completes; it is written before the handler runs).
  template <class Command, class Token = boost::asio::deferred_t>
  auto async_execute(Command command, diagnostics& diag, Token&& token = {}) {
    return start_execute(std::move(command), &diag, std::forward<Token>(token));
  }

  // Runs f(const State&) (see Store::query); completes with void(std::error_code, R) once
  // what it saw may be handed out. Cancellable (operation_aborted, the result dropped).
  template <class F, class Token = boost::asio::deferred_t>
  auto async_query(F f, Token&& token = {}) {
    return start_query(std::move(f), nullptr, std::forward<Token>(token));
  }
  template <class F, class Token = boost::asio::deferred_t>
  auto async_query(F f, diagnostics& diag, Token&& token = {}) {
    return start_query(std::move(f), &diag, std::forward<Token>(token));
  }

  // Takes a snapshot (Store::snapshot) on the background thread; void(std::error_code).
  template <class Token = boost::asio::deferred_t>
  auto async_snapshot(Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [c = core_.get()](auto handler) { c->snapshot(std::move(handler)); }, token);
  }

  // Stops the periodic snapshot timer, lets a snapshot in progress finish, then closes the
  // store (Store::close: the closing snapshot if configured, then every queued record written
  // and synced) and stops the background thread. Blocks for that final sync: call it from a
  // thread that may block. Operations pending complete normally (their records were synced);
  // operations started later fail with errc::closed. Throws what Store::close throws. A
  // concurrent call waits for the first one to finish; later calls do nothing.
  void close() { core_->close(); }

  // close() without blocking the caller: it runs on a thread of its own (joined by the
  // destructor), then completes with void(std::error_code): what close() threw, or success.
  template <class Token = boost::asio::deferred_t>
  auto async_close(Token&& token = {}) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [c = core_.get()](auto handler) { c->close_then(std::move(handler)); }, token);
  }

 private:
  template <class Command, class Token>
  auto start_execute(Command command, diagnostics* diag, Token&& token) {
    if constexpr (!(std::is_same_v<Command, Commands> || ...)) {
      static_assert(detail::always_false<Command>,
                    "prevalent: this command type is not in the store's command list "
                    "(add it to AsyncStore<State, Commands...>)");
    } else {
      using result_t = apply_result_t<Command, State>;
      static_assert(std::is_void_v<result_t> || std::is_default_constructible_v<result_t>,
                    "prevalent: async_execute completes with (error_code, R) and passes R{} "
                    "on an error: apply()'s result must be default-constructible (return a "
                    "std::optional otherwise)");
      using signature = typename detail::completion_signature<result_t>::type;
      return boost::asio::async_initiate<Token, signature>(
          [c = core_.get()](auto handler, Command cmd, diagnostics* d) {
            c->execute(std::move(handler), std::move(cmd), d);
          },
          token, std::move(command), diag);
    }
  }

  template <class F, class Token>
  auto start_query(F f, diagnostics* diag, Token&& token) {
    using result_t = std::decay_t<std::invoke_result_t<F&, const State&>>;
    static_assert(std::is_void_v<result_t> || std::is_default_constructible_v<result_t>,
                  "prevalent: async_query completes with (error_code, R) and passes R{} on an "
                  "error: the query's result must be default-constructible");
    using signature = typename detail::completion_signature<result_t>::type;
    return boost::asio::async_initiate<Token, signature>(
        [c = core_.get()](auto handler, F fn, diagnostics* d) {
          c->query(std::move(handler), std::move(fn), d);
        },
        token, std::move(f), diag);
  }

  // Everything at a fixed address: pending operations and the timer point into it.
  struct core {
    executor_type ex;
    store_type store;
    const async_options async;
    detail::background_thread background;
    std::mutex mutex;                 // guards the two flags below
    bool accepting_snapshots = true;  // false once close() began
    bool closed = false;
    std::mutex close_mutex;  // held for the whole of close()
    // The threads of async_close(), joined by the AsyncStore's destructor.
    std::mutex closers_mutex;
    std::vector<std::thread> closers;
    std::uint64_t last_snapshot_seq = 0;  // background thread only
    // The periodic snapshot timer, shared with its pending wait: it may outlive the core.
    struct timer_state {
      timer_state(const executor_type& ex, std::chrono::steady_clock::duration every)
          : strand(boost::asio::make_strand(ex)), timer(strand), period(every) {}
      boost::asio::strand<executor_type> strand;
      boost::asio::steady_timer timer;  // used on the strand only
      const std::chrono::steady_clock::duration period;
      // Set by close(). The handler reaches into the core only while holding `mutex` with
      // `stopped` false, so after close() has set it the core may go away.
      std::mutex mutex;
      bool stopped = false;
    };
    std::shared_ptr<timer_state> timer;
    // Under acks = replicated(k): completes commands once k replicas have them (else null).
    std::unique_ptr<detail::replication_waiter> replicated;

    core(executor_type e, store_type s, async_options a)
        : ex(std::move(e)), store(std::move(s)), async(a) {
      last_snapshot_seq = store.last_sequence();
      if (impl().core.options().acks.replicas > 0)
        replicated = std::make_unique<detail::replication_waiter>(impl().core);
    }

    typename store_type::impl& impl() { return *store.impl_; }

    // ---- async_execute ----
    template <class Handler, class Command>
    void execute(Handler handler, Command command, diagnostics* diag) {
      using result_t = apply_result_t<Command, State>;
      using slot_t = detail::result_slot<result_t>;
      using completion = detail::async_completion<Handler, executor_type>;
      if (diag) diag->clear();
      auto done = std::make_shared<completion>(std::move(handler), ex);
      auto fail = [done, diag](std::error_code code, std::exception_ptr e) {
        if (diag) diag->assign(e);
        if constexpr (std::is_void_v<result_t>)
          done->complete(code);
        else
          done->complete(code, result_t{});
      };
      detail::command_step at{};
      std::uint64_t seq = 0;
      std::optional<slot_t> result;
      detail::StoreCore::metrics_clock::time_point queued_at;
      try {
        auto queued = impl().apply_and_queue(command, at, queued_at);
        seq = queued.first;
        result = std::move(queued.second);
      } catch (...) {
        const auto e = std::current_exception();
        return fail(detail::command_error_code(e, at), e);
      }
      // The result waits with the handler; std::function needs a copyable callback.
      auto value = std::make_shared<slot_t>(std::move(*result));
      impl().core.on_safe(seq, [this, done, value, fail, queued_at, seq](std::exception_ptr e) {
        if (!e) {
          impl().core.command_safe(queued_at);
          auto succeed = [done, value] {
            if constexpr (std::is_void_v<result_t>)
              done->complete(std::error_code{});
            else
              done->complete(std::error_code{}, std::move(*value));
          };
          if (!replicated) return succeed();
          // acks = replicated(k): the waiter thread completes it once k replicas have it, or
          // fails it with errc::replication_timeout (applied and durable here all the same).
          const auto deadline =
              std::chrono::steady_clock::now() + impl().core.options().acks.timeout;
          replicated->add(seq, deadline, [succeed, fail](std::exception_ptr r) {
            if (!r) return succeed();
            fail(detail::exception_code(r, errc::replication_timeout), r);
          });
          return;
        }
        // The state must drop what never became durable before anyone hears of the failure.
        background.run([this, e, fail] {
          try {
            impl().core.roll_back_after_failure();
          } catch (...) {  // the store is failed either way; the journal's error is the answer
          }
          fail(detail::exception_code(e, errc::store_failed), e);
        });
      });
    }

    // ---- async_query ----
    template <class Handler, class F, class R>
    struct query_op {
      detail::async_completion<Handler, executor_type> done;
      F f;
      diagnostics* diag;
      std::optional<R> result;  // set by the run that will be handed out
      query_op(Handler h, const executor_type& ex, F fn, diagnostics* d)
          : done(std::move(h), ex), f(std::move(fn)), diag(d) {}
      void fail(std::error_code code, std::exception_ptr e) {
        if (!done.claim()) return;  // cancelled already
        if (diag) diag->assign(e);
        if constexpr (std::is_same_v<R, std::monostate>)
          done.post(code);
        else
          done.post(code, R{});
      }
      void succeed() {
        if constexpr (std::is_same_v<R, std::monostate>)
          done.complete(std::error_code{});
        else
          done.complete(std::error_code{}, std::move(*result));
      }
    };

    template <class Handler, class F>
    void query(Handler handler, F f, diagnostics* diag) {
      using result_t = std::decay_t<std::invoke_result_t<F&, const State&>>;
      using op_t = query_op<Handler, F, detail::result_slot<result_t>>;
      if (diag) diag->clear();
      auto op = std::make_shared<op_t>(std::move(handler), ex, std::move(f), diag);
      auto slot = boost::asio::get_associated_cancellation_slot(op->done.handler());
      if (slot.is_connected()) {
        // Nothing to undo: any cancellation type completes the query at once. A weak
        // pointer: the slot's handler lives in the caller's signal.
        std::weak_ptr<op_t> weak = op;
        slot.assign([weak](boost::asio::cancellation_type type) {
          if (type == boost::asio::cancellation_type::none) return;
          if (auto o = weak.lock()) o->fail(detail::operation_aborted(), nullptr);
        });
      }
      run_query(op, false);
    }

    template <class Op>
    void run_query(const std::shared_ptr<Op>& op, bool retried) {
      using result_t = std::decay_t<std::invoke_result_t<decltype(op->f)&, const State&>>;
      auto& i = impl();
      std::uint64_t seen = 0;
      bool in_f = false;
      try {
        std::shared_lock lock(i.core);
        i.core.check_state_valid();
        seen = i.core.last_applied();
        in_f = true;
        if constexpr (std::is_void_v<result_t>) {
          op->f(std::as_const(i.state));
          op->result.emplace();
        } else {
          op->result.emplace(op->f(std::as_const(i.state)));
        }
      } catch (...) {
        const auto e = std::current_exception();
        return op->fail(in_f ? std::error_code(errc::query_failed)
                             : detail::exception_code(e, errc::query_failed),
                        e);
      }
      i.core.on_visible(seen, [this, op, retried](std::exception_ptr e) {
        if (!e) return op->succeed();
        background.run([this, op, retried, e] {
          bool again = false;
          try {
            again = impl().core.roll_back_after_failure() && !retried;
          } catch (...) {
          }
          if (again) return run_query(op, true);
          op->fail(detail::exception_code(e, errc::store_failed), e);
        });
      });
    }

    // ---- snapshots ----
    template <class Handler>
    void snapshot(Handler handler) {
      auto done = std::make_shared<detail::async_completion<Handler, executor_type>>(
          std::move(handler), ex);
      std::lock_guard lock(mutex);
      if (!accepting_snapshots) {
        done->complete(std::error_code(errc::closed));
        return;
      }
      background.run([this, done] {
        try {
          take_snapshot();
          done->complete(std::error_code{});
        } catch (...) {
          done->complete(detail::exception_code(std::current_exception(), errc::store_failed));
        }
      });
    }

    // On the background thread.
    void take_snapshot() {
      const std::uint64_t at = store.last_sequence();
      store.snapshot();
      last_snapshot_seq = std::max(last_snapshot_seq, at);
    }

    void start_timer() {
      if (async.snapshot_every <= std::chrono::steady_clock::duration::zero()) return;
      timer = std::make_shared<timer_state>(ex, async.snapshot_every);
      boost::asio::post(timer->strand, [c = this, t = timer] { arm(c, t); });
    }

    // On the timer's strand. Touches the core `c` only under the rule of timer_state::mutex.
    static void arm(core* c, const std::shared_ptr<timer_state>& t) {
      {
        std::lock_guard lock(t->mutex);
        if (t->stopped) return;
      }
      t->timer.expires_after(t->period);
      t->timer.async_wait([c, t](const boost::system::error_code& ec) {
        {
          std::lock_guard lock(t->mutex);
          if (ec || t->stopped) return;
          c->periodic_snapshot();  // only queues it for the background thread
        }
        arm(c, t);
      });
    }

    void periodic_snapshot() {
      std::lock_guard lock(mutex);
      if (!accepting_snapshots) return;
      background.run([this] {
        if (store.last_sequence() == last_snapshot_seq) return;  // nothing changed
        try {
          take_snapshot();
        } catch (const std::exception& e) {
          if (store.options().log)
            store.options().log(std::string("periodic snapshot failed: ") + e.what());
        }
      });
    }

    void close() {
      // A second caller waits here until the first one has closed the store.
      std::lock_guard one_at_a_time(close_mutex);
      {
        std::lock_guard lock(mutex);
        if (closed) return;
        closed = true;
        accepting_snapshots = false;
      }
      if (timer) {
        {
          std::lock_guard lock(timer->mutex);  // waits for a handler inside the core
          timer->stopped = true;
        }
        // The timer object belongs to its strand: cancel it there (its handler then sees
        // `stopped`, or operation_aborted, and ends).
        boost::asio::post(timer->strand, [t = timer] { t->timer.cancel(); });
      }
      background.drain();  // a snapshot in progress finishes before the store closes
      std::exception_ptr failure;
      try {
        store.close();  // pending operations' notifications fire here, or already did
      } catch (...) {
        failure = std::current_exception();
      }
      background.stop();  // rebuilds queued by failures in that final sync run first
      // Commands waiting for replicas finish: acknowledged, or timed out (at most one timeout).
      if (replicated) replicated->stop();
      if (failure) std::rethrow_exception(failure);
    }

    // async_close(): close() on a thread of its own, then the handler.
    template <class Handler>
    void close_then(Handler handler) {
      auto done = std::make_shared<detail::async_completion<Handler, executor_type>>(
          std::move(handler), ex);
      std::lock_guard lock(closers_mutex);
      closers.emplace_back([this, done] {
        try {
          close();
          done->complete(std::error_code{});
        } catch (...) {
          done->complete(detail::exception_code(std::current_exception(), errc::store_failed));
        }
      });
    }

    void join_closers() {
      std::vector<std::thread> joining;
      {
        std::lock_guard lock(closers_mutex);
        joining.swap(closers);
      }
      for (auto& t : joining) t.join();
    }

    void close_quietly() noexcept {
      try {
        close();
      } catch (const std::exception& e) {
        try {
          if (store.options().log)
            store.options().log(std::string("async store did not close cleanly: ") + e.what());
        } catch (...) {
        }
      } catch (...) {
      }
    }
  };

  std::unique_ptr<core> core_;
};

}  // namespace prevalent
