// A leaf of prevalent::cow_map (cow_map.hpp) and the counted reference that shares it between
// copies of a map. Not an API of its own.
//
// Why not std::shared_ptr: a map writes a leaf in place only when it holds the only reference.
// The other references belong to copies that other threads read (a snapshot being written) and
// then drop. shared_ptr::use_count() is a relaxed load, so seeing 1 does not order the writes
// that follow after the other thread's reads (a data race, and TSan says so). unique() below
// is an acquire load that pairs with the release of the dropping thread's decrement. The count
// lives in the leaf, which also saves shared_ptr's control block.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>
#include <vector>

namespace prevalent::detail {

template <class Value>
struct cow_leaf {
  std::atomic<std::size_t> refs{1};
  std::vector<Value> items;  // sorted by key, never empty while in a map

  cow_leaf() = default;
  explicit cow_leaf(std::vector<Value> v) : items(std::move(v)) {}
};

template <class Value>
class cow_leaf_ref {
 public:
  using leaf = cow_leaf<Value>;

  cow_leaf_ref() noexcept = default;
  explicit cow_leaf_ref(leaf* adopted) noexcept : p_(adopted) {}
  cow_leaf_ref(const cow_leaf_ref& o) noexcept : p_(o.p_) {
    if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  cow_leaf_ref(cow_leaf_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  cow_leaf_ref& operator=(const cow_leaf_ref& o) noexcept {
    cow_leaf_ref copy(o);
    std::swap(p_, copy.p_);
    return *this;
  }
  // Inline and branch-light: a split shifts half of a map's references by move assignment.
  cow_leaf_ref& operator=(cow_leaf_ref&& o) noexcept {
    leaf* old = std::exchange(p_, std::exchange(o.p_, nullptr));
    if (old != nullptr && old->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete old;
    return *this;
  }
  ~cow_leaf_ref() { reset(); }

  void reset() noexcept {
    if (p_ && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete p_;
    p_ = nullptr;
  }
  // True when no other reference exists: the holder may then write the leaf. Acquire, so
  // that the reads made through references dropped before happen before those writes.
  bool unique() const noexcept { return p_->refs.load(std::memory_order_acquire) == 1; }
  std::size_t use_count() const noexcept {
    return p_ ? p_->refs.load(std::memory_order_relaxed) : 0;
  }

  leaf* get() const noexcept { return p_; }
  leaf* operator->() const noexcept { return p_; }
  leaf& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  leaf* p_ = nullptr;
};

}  // namespace prevalent::detail
