// When a command counts as safe, and so when execute() returns.
//
//   always()       execute returns once the record is durable (fdatasync done); concurrent
//                  commands share one write and one fdatasync.
//   interval(t)    execute returns once the record is written to the OS: a crash of the
//                  process loses nothing; a power loss loses at most the last t of
//                  acknowledged commands (an fdatasync runs at least every t while there is
//                  unsynced data).
//   none()         execute returns at once; the committer writes in the background and the OS
//                  decides when to sync. A process crash loses the acknowledged commands not
//                  yet written: at most store_options::max_queued_bytes of them (256 KiB by
//                  default; bench/ measured about 1 ms of commands with 64 MiB segments, 24 ms
//                  with 16 KiB segments, whose rolls fsync). For tests and caches.
#pragma once

#include <chrono>

namespace prevalent {

class sync_policy {
 public:
  enum class kind { always, interval, none };

  static sync_policy always() { return {kind::always, {}}; }
  static sync_policy interval(std::chrono::nanoseconds period) { return {kind::interval, period}; }
  static sync_policy none() { return {kind::none, {}}; }

  kind mode() const { return mode_; }
  std::chrono::nanoseconds period() const { return period_; }

 private:
  sync_policy(kind mode, std::chrono::nanoseconds period) : mode_(mode), period_(period) {}
  kind mode_;
  std::chrono::nanoseconds period_;
};

}  // namespace prevalent
