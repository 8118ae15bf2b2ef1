// The thread-local hooks of include/prevalent/detail/snapshot_parts.hpp. Until the streaming
// snapshot writer and loader set them, every container serializes as one tree.
#include "prevalent/detail/snapshot_parts.hpp"

namespace prevalent::detail {

namespace {
thread_local snapshot_writing* current_writing = nullptr;
thread_local snapshot_reading* current_reading = nullptr;
}  // namespace

snapshot_writing* snapshot_writing::current() noexcept { return current_writing; }
snapshot_reading* snapshot_reading::current() noexcept { return current_reading; }

}  // namespace prevalent::detail
