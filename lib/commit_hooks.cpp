// commit_queue: the completion hooks of on_safe(), for callers that cannot spend a thread per
// command waiting (the Asio adapter). The committer calls them between batches.
#include <utility>

#include "commit_queue.hpp"
#include "prevalent/error.hpp"

namespace prevalent::detail {
namespace {

// A hook that throws would unwind the committer mid-batch; make that a crash at the culprit.
void call(const commit_queue::completion& done, const std::exception_ptr& e) noexcept { done(e); }

}  // namespace

void commit_queue::on_safe(std::uint64_t seq, completion done) {
  const auto* mark = safe_mark();
  if (mark == nullptr || mark->load() >= seq) return call(done, nullptr);
  std::exception_ptr failure;
  {
    std::lock_guard h(hooks_mutex_);
    // Count first, then read the mark and the failure: the committer moves the mark before
    // it reads the count, so one of the two sees the other (both are sequentially consistent).
    hook_count_.fetch_add(1);
    if (mark->load() < seq && !failed_.load()) {
      hooks_.emplace(seq, std::move(done));
      return;
    }
    hook_count_.fetch_sub(1);
    if (failed_.load() && mark->load() < seq) failure = this->failure();
  }
  call(done, failure);
}

void commit_queue::run_hooks(std::uint64_t through) {
  if (hook_count_.load() == 0) return;
  {
    std::lock_guard h(hooks_mutex_);
    auto end = hooks_.upper_bound(through);
    for (auto it = hooks_.begin(); it != end; ++it) due_.push_back(std::move(it->second));
    hooks_.erase(hooks_.begin(), end);
    hook_count_.fetch_sub(due_.size());
  }
  // Outside the lock: a hook may register another.
  for (auto& done : due_) call(done, nullptr);
  due_.clear();
}

void commit_queue::fail_hooks(const std::exception_ptr& e) {
  std::multimap<std::uint64_t, completion> failed;
  {
    std::lock_guard h(hooks_mutex_);
    failed.swap(hooks_);
    hook_count_ = 0;
  }
  for (auto& [seq, done] : failed) call(done, e);
}

void commit_queue::close_hooks() {
  const auto closed = std::make_exception_ptr(error(errc::closed, name_ + " is closed"));
  if (auto e = failure()) return fail_hooks(e);
  fail_hooks(closed);
}

}  // namespace prevalent::detail
