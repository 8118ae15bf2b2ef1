// The thread-local hooks of include/prevalent/detail/snapshot_parts.hpp and their scopes
// (lib/include/prevalent/snapshot_parts_scope.hpp).
#include "prevalent/detail/snapshot_parts.hpp"

#include "prevalent/snapshot_parts_scope.hpp"

namespace prevalent::detail {

namespace {
thread_local snapshot_writing* current_writing = nullptr;
thread_local snapshot_reading* current_reading = nullptr;
}  // namespace

snapshot_writing* snapshot_writing::current() noexcept { return current_writing; }
snapshot_reading* snapshot_reading::current() noexcept { return current_reading; }

writing_scope::writing_scope(snapshot_writing* w) noexcept : previous_(current_writing) {
  current_writing = w;
}
writing_scope::~writing_scope() { current_writing = previous_; }

reading_scope::reading_scope(snapshot_reading* r) noexcept : previous_(current_reading) {
  current_reading = r;
}
reading_scope::~reading_scope() { current_reading = previous_; }

}  // namespace prevalent::detail
