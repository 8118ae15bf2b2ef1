// Sets snapshot_writing::current() / snapshot_reading::current() (detail/snapshot_parts.hpp)
// for the calling thread while a scope lives, restoring the previous value after. The
// streaming snapshot writer and loader use them; tests use them to drive a container's hooks.
#pragma once

#include "prevalent/detail/snapshot_parts.hpp"

namespace prevalent::detail {

class writing_scope {
 public:
  explicit writing_scope(snapshot_writing* w) noexcept;
  ~writing_scope();
  writing_scope(const writing_scope&) = delete;
  writing_scope& operator=(const writing_scope&) = delete;

 private:
  snapshot_writing* previous_;
};

class reading_scope {
 public:
  explicit reading_scope(snapshot_reading* r) noexcept;
  ~reading_scope();
  reading_scope(const reading_scope&) = delete;
  reading_scope& operator=(const reading_scope&) = delete;

 private:
  snapshot_reading* previous_;
};

}  // namespace prevalent::detail
