// A shared mutex that lets a waiting writer in before new readers. glibc's default
// reader-writer lock (behind std::shared_mutex) prefers readers, so a steady stream of queries
// starves execute() indefinitely: measured here, 4 writers managed 47 commands in 2 seconds
// against 4 busy readers. Meets the standard SharedMutex requirements, so std::unique_lock and
// std::shared_lock work with it.
#pragma once

#include <pthread.h>

#include <system_error>

namespace prevalent {

class writer_preferring_mutex {
 public:
  writer_preferring_mutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_rwlock_init");
  }
  ~writer_preferring_mutex() { pthread_rwlock_destroy(&lock_); }
  writer_preferring_mutex(const writer_preferring_mutex&) = delete;
  writer_preferring_mutex& operator=(const writer_preferring_mutex&) = delete;

  void lock() { check(pthread_rwlock_wrlock(&lock_)); }
  bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() { pthread_rwlock_unlock(&lock_); }

  void lock_shared() { check(pthread_rwlock_rdlock(&lock_)); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  static void check(int rc) {
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_rwlock");
  }
  pthread_rwlock_t lock_;
};

}  // namespace prevalent
