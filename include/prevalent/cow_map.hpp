// prevalent::cow_map: an ordered map for the large parts of a State, whose copy shares every
// entry with the original and which copies only what is written while a copy is alive. A
// State holding its large maps as cow_maps is captured for a snapshot in O(leaves) (its plain
// copy; no capture() needed), and writers then pay for one leaf per write that touches a leaf
// the snapshot still holds. It serializes exactly as std::map<Key, T, Compare> does, so a
// State switches between the two without changing its snapshots; while a snapshot is written
// or loaded by the store, its entries go through the snapshot's parts (detail/
// snapshot_parts.hpp), in chunks, on several threads.
//
// Structure: a sorted vector of leaves, each a sorted vector of at most MaxLeaf entries,
// shared between copies by reference count. A write to a leaf another copy also holds clones
// that leaf first (copy on write). Cost model, iterator invalidation and measurements: README,
// "Large states: cow_map".
//
// Thread safety: like a standard container (concurrent const access is safe; a write needs
// exclusive access to that object). Distinct copies may be used on different threads at once,
// whatever they share: one thread may write a map while others read or destroy its copies.
//
// Iterators are const (entries are std::pair<Key, T>; change a value with operator[],
// find_mutable(), mutate() or modify()). Every insertion or erasure invalidates all iterators,
// references and pointers into the map; so does a mutable access (it may clone the leaf), but
// only for that leaf. Const access and copies of the map invalidate nothing. A reference got
// from a mutable access must not be written through after the map has been copied.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "prevalent/detail/cow_leaf.hpp"
#include "prevalent/detail/cow_map_parts.hpp"

namespace prevalent {

template <class Key, class T, class Compare = std::less<Key>, std::size_t MaxLeaf = 64>
class cow_map {
  static_assert(MaxLeaf >= 8, "cow_map: MaxLeaf must be at least 8");

 public:
  using key_type = Key;
  using mapped_type = T;
  using value_type = std::pair<Key, T>;
  using key_compare = Compare;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = const value_type&;
  using const_reference = const value_type&;

  static constexpr std::size_t max_leaf = MaxLeaf;

  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = cow_map::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    const_iterator() = default;
    reference operator*() const { return *cur_; }
    pointer operator->() const { return cur_; }
    const_iterator& operator++() {
      if (++cur_ == end_) set(leaf_ + 1, 0);
      return *this;
    }
    const_iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    const_iterator& operator--() {
      if (cur_ == nullptr) {
        set(map_->leaves_.size() - 1, map_->leaves_.back()->items.size() - 1);
      } else if (cur_ == map_->leaves_[leaf_]->items.data()) {
        set(leaf_ - 1, map_->leaves_[leaf_ - 1]->items.size() - 1);
      } else {
        --cur_;
      }
      return *this;
    }
    const_iterator operator--(int) {
      auto old = *this;
      --*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.cur_ == b.cur_;
    }

   private:
    friend class cow_map;
    const_iterator(const cow_map* m, std::size_t leaf, std::size_t pos) : map_(m) {
      set(leaf, pos);
    }
    void set(std::size_t leaf, std::size_t pos) {
      leaf_ = leaf;
      if (leaf >= map_->leaves_.size()) {
        cur_ = end_ = nullptr;
        return;
      }
      const auto& items = map_->leaves_[leaf]->items;
      cur_ = items.data() + pos;
      end_ = items.data() + items.size();
    }
    std::size_t pos() const { return cur_ - map_->leaves_[leaf_]->items.data(); }

    const cow_map* map_ = nullptr;
    std::size_t leaf_ = 0;
    const value_type* cur_ = nullptr;  // nullptr at end()
    const value_type* end_ = nullptr;
  };
  using iterator = const_iterator;

  cow_map() = default;
  explicit cow_map(const Compare& comp) : comp_(comp) {}
  cow_map(std::initializer_list<value_type> init, const Compare& comp = Compare()) : comp_(comp) {
    for (const auto& v : init) insert(v);
  }
  // Copies share every leaf; the new map's leaf_clones() starts at 0.
  cow_map(const cow_map& o) : comp_(o.comp_), leaves_(o.leaves_), size_(o.size_) {}
  cow_map(cow_map&& o) noexcept
      : comp_(std::move(o.comp_)),
        leaves_(std::move(o.leaves_)),
        size_(std::exchange(o.size_, 0)),
        clones_(std::exchange(o.clones_, 0)) {}
  cow_map& operator=(const cow_map& o) {
    if (this != &o) {
      comp_ = o.comp_;
      leaves_ = o.leaves_;
      size_ = o.size_;
    }
    return *this;
  }
  cow_map& operator=(cow_map&& o) noexcept {
    comp_ = std::move(o.comp_);
    leaves_ = std::move(o.leaves_);
    size_ = std::exchange(o.size_, 0);
    clones_ = std::exchange(o.clones_, 0);
    return *this;
  }
  ~cow_map() = default;

  // Builds a map from entries sorted by strictly increasing key (under `comp`) in O(n);
  // throws std::invalid_argument naming the first position out of order.
  static cow_map from_sorted(std::vector<value_type> items, const Compare& comp = Compare()) {
    cow_map m(comp);
    for (std::size_t i = 1; i < items.size(); ++i) {
      if (!comp(items[i - 1].first, items[i].first))
        throw std::invalid_argument("cow_map::from_sorted: the key at position " +
                                    std::to_string(i) + " is not greater than the one before");
    }
    m.adopt_sorted(std::move(items));
    return m;
  }

  // Size and order.
  size_type size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  key_compare key_comp() const { return comp_; }
  const_iterator begin() const { return const_iterator(this, 0, 0); }
  const_iterator end() const { return const_iterator(this, leaves_.size(), 0); }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  // Lookup. The templates take any key the comparator accepts when it is transparent.
  const_iterator find(const Key& k) const { return find_impl(k); }
  template <class K>
  requires detail::transparent<Compare> const_iterator find(const K& k)
  const { return find_impl(k); }
  bool contains(const Key& k) const { return find_impl(k) != end(); }
  template <class K>
  requires detail::transparent<Compare>
  bool contains(const K& k) const { return find_impl(k) != end(); }
  size_type count(const Key& k) const { return contains(k) ? 1 : 0; }
  template <class K>
  requires detail::transparent<Compare> size_type count(const K& k)
  const { return contains(k) ? 1 : 0; }
  const T& at(const Key& k) const {
    auto it = find_impl(k);
    if (it == end()) throw std::out_of_range("cow_map::at: no such key");
    return it->second;
  }
  const_iterator lower_bound(const Key& k) const { return lower_bound_impl(k); }
  template <class K>
  requires detail::transparent<Compare> const_iterator lower_bound(const K& k)
  const { return lower_bound_impl(k); }
  const_iterator upper_bound(const Key& k) const { return upper_bound_impl(k); }
  template <class K>
  requires detail::transparent<Compare> const_iterator upper_bound(const K& k)
  const { return upper_bound_impl(k); }

  // Mutable access to one value: clones its leaf if a copy shares it.
  T* find_mutable(const Key& k) { return find_mutable_impl(k); }
  template <class K>
  requires detail::transparent<Compare> T* find_mutable(const K& k) { return find_mutable_impl(k); }
  // The value `it` points to, writable (it must be an iterator of this map, not end()).
  T& mutate(const_iterator it) {
    const std::size_t pos = it.pos();
    return writable(it.leaf_).items[pos].second;
  }
  // Calls f(T&) on the value of `k` if present; returns whether it was.
  template <class K, class F>
  bool modify(const K& k, F&& f) {
    T* v = find_mutable_impl(k);
    if (!v) return false;
    std::forward<F>(f)(*v);
    return true;
  }
  T& operator[](const Key& k) { return value_at(try_emplace_impl(k)); }
  T& operator[](Key&& k) { return value_at(try_emplace_impl(std::move(k))); }

  // Insertion: like std::map's, returning a const_iterator.
  std::pair<const_iterator, bool> insert(const value_type& v) { return emplace(v); }
  std::pair<const_iterator, bool> insert(value_type&& v) { return emplace(std::move(v)); }
  template <class... Args>
  std::pair<const_iterator, bool> emplace(Args&&... args) {
    value_type v(std::forward<Args>(args)...);
    return to_iter(try_emplace_impl(std::move(v.first), std::move(v.second)));
  }
  template <class... Args>
  std::pair<const_iterator, bool> try_emplace(const Key& k, Args&&... args) {
    return to_iter(try_emplace_impl(k, std::forward<Args>(args)...));
  }
  template <class... Args>
  std::pair<const_iterator, bool> try_emplace(Key&& k, Args&&... args) {
    return to_iter(try_emplace_impl(std::move(k), std::forward<Args>(args)...));
  }
  template <class M>
  std::pair<const_iterator, bool> insert_or_assign(const Key& k, M&& m) {
    auto r = try_emplace_impl(k, std::forward<M>(m));
    if (!r.inserted) value_at(r) = std::forward<M>(m);
    return to_iter(r);
  }
  template <class M>
  std::pair<const_iterator, bool> insert_or_assign(Key&& k, M&& m) {
    auto r = try_emplace_impl(std::move(k), std::forward<M>(m));
    if (!r.inserted) value_at(r) = std::forward<M>(m);
    return to_iter(r);
  }

  // Erasure. erase(it) returns the iterator after the erased entry.
  size_type erase(const Key& k) {
    auto it = find_impl(k);
    if (it == end()) return 0;
    erase(it);
    return 1;
  }
  const_iterator erase(const_iterator it) {
    auto [leaf, pos] = erase_at(it.leaf_, it.pos());
    return const_iterator(this, leaf, pos);
  }
  void clear() noexcept {
    leaves_.clear();
    size_ = 0;
  }
  // Removes every entry for which pred(const value_type&) holds; only leaves with such an
  // entry are written (cloned if shared). Returns how many were removed.
  template <class Pred>
  friend size_type erase_if(cow_map& m, Pred pred) {
    return m.erase_if_impl(pred);
  }

  friend bool operator==(const cow_map& a, const cow_map& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

  void swap(cow_map& o) noexcept {
    using std::swap;
    swap(comp_, o.comp_);
    swap(leaves_, o.leaves_);
    swap(size_, o.size_);
    swap(clones_, o.clones_);
  }
  friend void swap(cow_map& a, cow_map& b) noexcept { a.swap(b); }

  // Cheap statistics, for tests and tuning: leaves, leaves also held by a copy (O(leaves)),
  // and leaves this object has cloned (or merged from a shared neighbour) since it was made.
  std::size_t leaf_count() const noexcept { return leaves_.size(); }
  std::size_t shared_leaf_count() const noexcept {
    std::size_t n = 0;
    for (const auto& l : leaves_) n += l.use_count() > 1 ? 1 : 0;
    return n;
  }
  std::size_t leaf_clones() const noexcept { return clones_; }

  // Serialization with an element encoding of the caller's: j becomes an array whose elements
  // are encode(entry) in key order (written through the snapshot's parts while one is being
  // written). from_json_array is its inverse: decode(const nlohmann::json&) -> value_type,
  // called on the loader's threads; entries out of order are inserted one by one (the first
  // of equal keys wins).
  template <class Encode>
  void to_json_array(nlohmann::json& j, Encode encode) const {
    detail::cow_map_json<cow_map>::to_array(j, *this, encode);
  }
  template <class Decode>
  void from_json_array(const nlohmann::json& j, Decode decode) {
    detail::cow_map_json<cow_map>::from_array(j, *this, decode);
  }

  // As nlohmann serializes std::map<Key, T, Compare>: an object when std::string can be made
  // from Key, else an array of [key, value] pairs.
  friend void to_json(nlohmann::json& j, const cow_map& m) {
    detail::cow_map_json<cow_map>::to_json(j, m);
  }
  friend void from_json(const nlohmann::json& j, cow_map& m) {
    detail::cow_map_json<cow_map>::from_json(j, m);
  }

 private:
  friend struct detail::cow_map_json<cow_map>;
  using leaf_ref = detail::cow_leaf_ref<value_type>;
  using leaf = typename leaf_ref::leaf;

  // Leaves built in bulk are filled to this, so that the first inserts do not split them.
  static constexpr std::size_t bulk_fill = MaxLeaf - MaxLeaf / 8;
  // ... with room for a full leaf: a bulk leaf reallocated on its first insert leaves a hole
  // of its old size in the heap for each leaf; after loading 1,000,000 sessions and replaying
  // 100,000 more, those holes held 54 MB of RSS that malloc_trim could not return (bench/scale).
  static constexpr std::size_t bulk_capacity = MaxLeaf + 1;
  // A leaf left with fewer entries than this after an erase is merged with a neighbour.
  static constexpr std::size_t min_fill = MaxLeaf / 4;

  // The leaf that holds k if anything does: the last whose first key is not above k.
  template <class K>
  std::size_t leaf_for(const K& k) const {
    auto it = std::upper_bound(
        leaves_.begin(), leaves_.end(), k,
        [&](const K& key, const leaf_ref& l) { return comp_(key, l->items.front().first); });
    return it == leaves_.begin() ? 0 : static_cast<std::size_t>(it - leaves_.begin()) - 1;
  }
  template <class K>
  std::size_t pos_in(const leaf& l, const K& k) const {
    auto it =
        std::lower_bound(l.items.begin(), l.items.end(), k,
                         [&](const value_type& v, const K& key) { return comp_(v.first, key); });
    return static_cast<std::size_t>(it - l.items.begin());
  }
  template <class K>
  const_iterator find_impl(const K& k) const {
    if (leaves_.empty()) return end();
    const std::size_t li = leaf_for(k);
    const leaf& l = *leaves_[li];
    const std::size_t pos = pos_in(l, k);
    if (pos == l.items.size() || comp_(k, l.items[pos].first)) return end();
    return const_iterator(this, li, pos);
  }
  template <class K>
  const_iterator lower_bound_impl(const K& k) const {
    if (leaves_.empty()) return end();
    const std::size_t li = leaf_for(k);
    const std::size_t pos = pos_in(*leaves_[li], k);
    return pos == leaves_[li]->items.size() ? const_iterator(this, li + 1, 0)
                                            : const_iterator(this, li, pos);
  }
  template <class K>
  const_iterator upper_bound_impl(const K& k) const {
    auto it = lower_bound_impl(k);
    if (it != end() && !comp_(k, it->first)) ++it;
    return it;
  }
  template <class K>
  T* find_mutable_impl(const K& k) {
    auto it = find_impl(k);
    return it == end() ? nullptr : &mutate(it);
  }

  // Leaf li, cloned first if another copy holds it.
  leaf& writable(std::size_t li) {
    leaf_ref& r = leaves_[li];
    if (!r.unique()) {
      leaf_ref fresh(new leaf(r->items));
      r = std::move(fresh);
      ++clones_;
    }
    return *r;
  }

  // Inserts (k, T(args...)) if k is absent. Returns where the entry is and whether it was
  // inserted. Finding the key writes nothing.
  struct place {
    std::size_t leaf, pos;
    bool inserted;
  };
  template <class K, class... Args>
  place try_emplace_impl(K&& k, Args&&... args) {
    if (leaves_.empty()) {
      leaf_ref fresh(new leaf);
      fresh->items.reserve(4);
      fresh->items.emplace_back(std::piecewise_construct, std::forward_as_tuple(std::forward<K>(k)),
                                std::forward_as_tuple(std::forward<Args>(args)...));
      leaves_.push_back(std::move(fresh));
      size_ = 1;
      return {0, 0, true};
    }
    std::size_t li = leaf_for(k);
    std::size_t pos = pos_in(*leaves_[li], k);
    {
      const leaf& l = *leaves_[li];
      if (pos < l.items.size() && !comp_(k, l.items[pos].first)) return {li, pos, false};
    }
    leaf& l = writable(li);
    if (l.items.size() == l.items.capacity())
      l.items.reserve(std::min(MaxLeaf + 1, l.items.size() + l.items.size() / 4 + 4));
    l.items.emplace(l.items.begin() + static_cast<std::ptrdiff_t>(pos), std::piecewise_construct,
                    std::forward_as_tuple(std::forward<K>(k)),
                    std::forward_as_tuple(std::forward<Args>(args)...));
    ++size_;
    if (l.items.size() > MaxLeaf) {
      split(li);
      const std::size_t left = leaves_[li]->items.size();
      if (pos >= left) {
        ++li;
        pos -= left;
      }
    }
    return {li, pos, true};
  }
  std::pair<const_iterator, bool> to_iter(place p) const {
    return {const_iterator(this, p.leaf, p.pos), p.inserted};
  }
  T& value_at(place p) { return writable(p.leaf).items[p.pos].second; }

  // Splits the (unique) leaf li in two halves, each with a snug capacity. Everything that
  // can fail to allocate does so before an entry moves.
  void split(std::size_t li) {
    auto& items = leaves_[li]->items;
    const std::size_t half = items.size() / 2;
    std::vector<value_type> left;
    left.reserve(half + half / 4);
    leaf_ref right(new leaf);
    right->items.reserve(items.size() - half + half / 4);
    leaves_.reserve(leaves_.size() + 1);
    const auto mid = items.begin() + static_cast<std::ptrdiff_t>(half);
    std::move(items.begin(), mid, std::back_inserter(left));
    std::move(mid, items.end(), std::back_inserter(right->items));
    items = std::move(left);
    leaves_.insert(leaves_.begin() + static_cast<std::ptrdiff_t>(li) + 1, std::move(right));
  }

  // Erases entry pos of leaf li; returns where the next entry is (leaf, position).
  std::pair<std::size_t, std::size_t> erase_at(std::size_t li, std::size_t pos) {
    leaf& l = writable(li);
    l.items.erase(l.items.begin() + static_cast<std::ptrdiff_t>(pos));
    --size_;
    if (l.items.empty()) {
      leaves_.erase(leaves_.begin() + static_cast<std::ptrdiff_t>(li));
      return {li, 0};
    }
    merge_small(li, pos);
    if (pos == leaves_[li]->items.size()) return {li + 1, 0};
    return {li, pos};
  }

  // If the (unique) leaf li is under min_fill, takes in a neighbour whose entries fit, and
  // adjusts (li, pos) to keep naming the same place. The neighbour's entries are moved when no
  // copy holds it, else copied (counted as a clone). erase_if takes only the left neighbour,
  // whose entries it has already checked.
  void merge_small(std::size_t& li, std::size_t& pos, bool right_too = true) {
    auto& items = leaves_[li]->items;
    if (items.size() >= min_fill) return;
    const std::size_t fits = MaxLeaf / 2;
    if (right_too && li + 1 < leaves_.size() &&
        items.size() + leaves_[li + 1]->items.size() <= fits) {
      take(items, li + 1, items.end());
    } else if (li > 0 && items.size() + leaves_[li - 1]->items.size() <= fits) {
      pos += leaves_[li - 1]->items.size();
      take(items, li - 1, items.begin());
      --li;
    }
  }
  void take(std::vector<value_type>& into, std::size_t from,
            typename std::vector<value_type>::iterator at) {
    leaf_ref& r = leaves_[from];
    if (r.unique()) {
      into.insert(at, std::make_move_iterator(r->items.begin()),
                  std::make_move_iterator(r->items.end()));
    } else {
      into.insert(at, r->items.begin(), r->items.end());
      ++clones_;
    }
    leaves_.erase(leaves_.begin() + static_cast<std::ptrdiff_t>(from));
  }

  template <class Pred>
  size_type erase_if_impl(Pred& pred) {
    size_type removed = 0;
    for (std::size_t li = 0; li < leaves_.size();) {
      const auto& items = leaves_[li]->items;
      if (std::none_of(items.begin(), items.end(), [&](const value_type& v) { return pred(v); })) {
        ++li;
        continue;
      }
      leaf& l = writable(li);
      const std::size_t n = std::erase_if(l.items, [&](const value_type& v) { return pred(v); });
      removed += n;
      size_ -= n;
      if (l.items.empty()) {
        leaves_.erase(leaves_.begin() + static_cast<std::ptrdiff_t>(li));
        continue;
      }
      std::size_t pos = 0;
      merge_small(li, pos, false);
      ++li;
    }
    return removed;
  }

  // Replaces the contents with `items`, sorted and unique, cut into leaves of bulk_fill.
  void adopt_sorted(std::vector<value_type>&& items) {
    clear();
    append_sorted(items);
  }
  void append_sorted(std::vector<value_type>& items) {
    for (std::size_t at = 0; at < items.size(); at += bulk_fill) {
      const std::size_t n = std::min(bulk_fill, items.size() - at);
      std::vector<value_type> chunk;
      chunk.reserve(bulk_capacity);
      auto first = items.begin() + static_cast<std::ptrdiff_t>(at);
      std::move(first, first + static_cast<std::ptrdiff_t>(n), std::back_inserter(chunk));
      leaves_.push_back(leaf_ref(new leaf(std::move(chunk))));
    }
    size_ += items.size();
  }

  [[no_unique_address]] Compare comp_{};
  std::vector<leaf_ref> leaves_;
  size_type size_ = 0;
  std::size_t clones_ = 0;
};

}  // namespace prevalent
