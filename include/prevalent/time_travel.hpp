// Time travel: the state of a store as it was after a given record, or at a given time, rebuilt
// read-only from its snapshots and journal (and the archive of older ones, if the store keeps
// one: store_options::archive_directory). A StoreView takes no lock and writes nothing (no
// temporary-file cleanup, no torn-tail cut, no new segment), so it can be opened beside the
// running store, on a backup, or on a read-only copy.
//
//   using Bank = prevalent::Store<Accounts, Deposit, Transfer>;
//   Bank::view then("/var/lib/bank", prevalent::as_of{.seq = 42});
//   long before = then.query([](const Accounts& a) { return a.balances.at("alice"); });
//
//   auto at_noon = prevalent::as_of{.time = noon};  // the last record stamped at or before noon
//
// It loads the newest snapshot at or before the target (skipping an unusable one, as an open
// does), then replays the records after it up to the target. Which targets can be reached:
// reachable_sequences() (history.hpp). A target outside them fails with errc::not_reachable,
// naming the reachable range. A StoreView is read-only: it has query(), no execute().
#pragma once

#include <filesystem>
#include <memory>
#include <type_traits>
#include <utility>

#include "prevalent/detail/history_core.hpp"
#include "prevalent/detail/store_access.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/history.hpp"
#include "prevalent/options.hpp"
#include "prevalent/store.hpp"

namespace prevalent {

template <class State, class... Commands>
class StoreView {
  using access = detail::store_access<State, Commands...>;

 public:
  // The store in directory `path` as of `when`. `options` supplies what reading needs: the
  // encryption key (and accept_unencrypted), max_record_bytes, archive_directory, log (a
  // skipped snapshot) and the file modes checked (insecure_modes). The directory must exist.
  StoreView(const std::filesystem::path& path, as_of when, const store_options& options = {})
      : StoreView(detail::History(path, options), when) {}
  // The same on any Directory; it is only read.
  StoreView(std::shared_ptr<Directory> dir, as_of when, const store_options& options = {})
      : StoreView(detail::History(std::move(dir), options), when) {}

  // Runs f(const State&) and returns its result. Any number of threads may query at once: the
  // state never changes.
  template <class F>
  auto query(F&& f) const {
    return std::forward<F>(f)(std::as_const(state_));
  }

  // The last record applied (0: the empty state).
  std::uint64_t sequence() const { return report_.seq; }
  // How the state was rebuilt: snapshot, records replayed, the last record's timestamp.
  const travel_report& report() const { return report_; }

  // A view of the past cannot change it.
  template <class C>
  void execute(const C&) const {
    static_assert(detail::always_false<C>,
                  "prevalent: a StoreView is a read-only view of a past state (time travel): it "
                  "has no execute(); open a Store on the directory to run commands");
  }

 private:
  StoreView(const detail::History& history, const as_of& when)
      : report_(history.travel(when, access::loader(state_), access::replayer(state_),
                               [this] { state_ = State{}; })) {}

  State state_{};
  travel_report report_;
};

}  // namespace prevalent
