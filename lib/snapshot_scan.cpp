#include "prevalent/snapshot_scan.hpp"

#include <algorithm>
#include <cstring>

namespace prevalent::detail {

namespace {

// What the three scanners share: the entries of the open containers on one stack, and the
// large containers closed so far.
class scanner {
 public:
  scanner(byte_view in, std::size_t threshold) : in_(in), threshold_(threshold) {}

  std::vector<scanned_part> parts;

 protected:
  // A container starts at `begin`; returns the mark that close() takes.
  std::size_t open() const { return stack_.size(); }
  void entry(const scanned_entry& e) { stack_.push_back(e); }
  void close(std::size_t mark, bool object, std::uint64_t begin, std::uint64_t end) {
    if (stack_.size() - mark < threshold_) {
      stack_.resize(mark);
      return;
    }
    while (!parts.empty() && parts.back().begin > begin)
      parts.pop_back();  // nested: outermost wins
    scanned_part p;
    p.object = object;
    p.begin = begin;
    p.end = end;
    p.entries.assign(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    parts.push_back(std::move(p));
  }

  byte_view in_;
  std::size_t pos_ = 0;

 private:
  std::size_t threshold_;
  std::vector<scanned_entry> stack_;
};

class json_scanner : public scanner {
 public:
  using scanner::scanner;
  bool run() {
    if (!value(0)) return false;
    skip_space();
    return pos_ == in_.size();
  }

 private:
  bool at_end() const { return pos_ >= in_.size(); }
  std::uint8_t peek() const { return in_[pos_]; }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\n' || peek() == '\r' || peek() == '\t'))
      ++pos_;
  }
  bool string() {
    if (at_end() || peek() != '"') return false;
    ++pos_;
    for (;;) {
      // Jump to the next quote or backslash.
      const void* hit_quote = std::memchr(in_.data() + pos_, '"', in_.size() - pos_);
      if (!hit_quote) return false;
      const auto quote =
          static_cast<std::size_t>(static_cast<const std::uint8_t*>(hit_quote) - in_.data());
      const void* hit_slash = std::memchr(in_.data() + pos_, '\\', quote - pos_);
      if (!hit_slash) {
        pos_ = quote + 1;
        return true;
      }
      pos_ = static_cast<std::size_t>(static_cast<const std::uint8_t*>(hit_slash) - in_.data()) + 2;
      if (pos_ > in_.size()) return false;
    }
  }
  bool scalar() {
    const std::size_t start = pos_;
    while (!at_end()) {
      const auto c = peek();
      if (c == ',' || c == ']' || c == '}' || c == ':' || c == ' ' || c == '\n' || c == '\r' ||
          c == '\t' || c == '"' || c == '[' || c == '{')
        break;
      ++pos_;
    }
    return pos_ > start;
  }
  bool value(int depth) {
    skip_space();
    if (at_end()) return false;
    switch (peek()) {
      case '{': return container(depth, true);
      case '[': return container(depth, false);
      case '"': return string();
      default: return scalar();
    }
  }
  bool container(int depth, bool object) {
    if (depth >= max_scan_depth) return false;
    const std::uint64_t begin = pos_;
    const std::size_t mark = open();
    ++pos_;
    skip_space();
    if (!at_end() && peek() == (object ? '}' : ']')) {
      ++pos_;
      close(mark, object, begin, pos_);
      return true;
    }
    for (;;) {
      skip_space();
      scanned_entry e;
      e.key = e.key_end = pos_;
      if (object) {
        if (!string()) return false;
        e.key_end = pos_;
        skip_space();
        if (at_end() || peek() != ':') return false;
        ++pos_;
        skip_space();
      }
      e.value = pos_;
      if (!value(depth + 1)) return false;
      e.end = pos_;
      entry(e);
      skip_space();
      if (at_end()) return false;
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != (object ? '}' : ']')) return false;
      ++pos_;
      close(mark, object, begin, pos_);
      return true;
    }
  }
};

// Both binary scanners: big-endian arguments read with bounds checks.
class binary_scanner : public scanner {
 public:
  using scanner::scanner;

 protected:
  // Whether an item starting with byte `initial` is (or may wrap) an array or a map.
  virtual bool starts_container(std::uint8_t initial) const = 0;
  bool read_uint(int bytes, std::uint64_t& v) {
    if (in_.size() - pos_ < static_cast<std::size_t>(bytes)) return false;
    v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | in_[pos_++];
    return true;
  }
  bool skip(std::uint64_t n) {
    if (in_.size() - pos_ < n) return false;
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  // `n` entries (pairs for an object), each item checked to start inside the payload.
  template <class Item>
  bool entries(std::uint64_t n, bool object, int depth, std::uint64_t begin, Item&& item) {
    const std::size_t mark = open();
    for (std::uint64_t k = 0; k < n; ++k) {
      scanned_entry e;
      e.key = e.key_end = pos_;
      if (object) {
        // nlohmann takes only string keys. A container in key position must not become a part
        // (its placeholder string would turn an invalid payload valid): no scan, the whole-tree
        // decode reports it. Another scalar is left to the entry's decode, which names it.
        if (pos_ >= in_.size() || starts_container(in_[pos_]) || !item(depth + 1)) return false;
        e.key_end = pos_;
      }
      e.value = pos_;
      if (!item(depth + 1)) return false;
      e.end = pos_;
      entry(e);
    }
    close(mark, object, begin, pos_);
    return true;
  }
};

class cbor_scanner : public binary_scanner {
 public:
  using binary_scanner::binary_scanner;
  bool run() { return item(0) && pos_ == in_.size(); }

 private:
  bool starts_container(std::uint8_t initial) const override {
    return initial >> 5 >= 4 && initial >> 5 <= 6;  // array, map, tag
  }
  bool item(int depth) {
    if (depth >= max_scan_depth || pos_ >= in_.size()) return false;
    const std::uint64_t begin = pos_;
    const std::uint8_t ib = in_[pos_++];
    const int major = ib >> 5, info = ib & 31;
    std::uint64_t arg = 0;
    if (info < 24)
      arg = static_cast<std::uint64_t>(info);
    else if (info <= 27) {
      if (!read_uint(1 << (info - 24), arg)) return false;
    } else {
      return false;  // indefinite lengths and reserved values: nlohmann writes neither
    }
    switch (major) {
      case 0:
      case 1: return true;
      case 2:
      case 3: return skip(arg);
      case 4:
      case 5: return entries(arg, major == 5, depth, begin, [this](int d) { return item(d); });
      case 6: return item(depth + 1);  // a tag, then its item (binary with a subtype)
      default: return true;            // major 7: simple values and floats, arg already read
    }
  }
};

class msgpack_scanner : public binary_scanner {
 public:
  using binary_scanner::binary_scanner;
  bool run() { return item(0) && pos_ == in_.size(); }

 private:
  bool starts_container(std::uint8_t initial) const override {
    return (initial >= 0x80 && initial <= 0x9f) || (initial >= 0xdc && initial <= 0xdf);
  }
  bool item(int depth) {
    if (depth >= max_scan_depth || pos_ >= in_.size()) return false;
    const std::uint64_t begin = pos_;
    const std::uint8_t b = in_[pos_++];
    std::uint64_t n = 0;
    auto each = [this](int d) { return item(d); };
    if (b <= 0x7f || b >= 0xe0) return true;  // fixints
    if (b <= 0x8f) return entries(b & 0x0f, true, depth, begin, each);
    if (b <= 0x9f) return entries(b & 0x0f, false, depth, begin, each);
    if (b <= 0xbf) return skip(b & 0x1f);  // fixstr
    switch (b) {
      case 0xc0:
      case 0xc2:
      case 0xc3: return true;
      case 0xc4: return read_uint(1, n) && skip(n);             // bin 8
      case 0xc5: return read_uint(2, n) && skip(n);             // bin 16
      case 0xc6: return read_uint(4, n) && skip(n);             // bin 32
      case 0xc7: return read_uint(1, n) && skip(1) && skip(n);  // ext 8
      case 0xc8: return read_uint(2, n) && skip(1) && skip(n);  // ext 16
      case 0xc9: return read_uint(4, n) && skip(1) && skip(n);  // ext 32
      case 0xca: return skip(4);                                // float 32
      case 0xcb: return skip(8);                                // float 64
      case 0xcc: return skip(1);                                // uint 8
      case 0xcd: return skip(2);                                // uint 16
      case 0xce: return skip(4);                                // uint 32
      case 0xcf: return skip(8);                                // uint 64
      case 0xd0: return skip(1);                                // int 8
      case 0xd1: return skip(2);                                // int 16
      case 0xd2: return skip(4);                                // int 32
      case 0xd3: return skip(8);                                // int 64
      case 0xd4: return skip(2);                                // fixext 1
      case 0xd5: return skip(3);                                // fixext 2
      case 0xd6: return skip(5);                                // fixext 4
      case 0xd7: return skip(9);                                // fixext 8
      case 0xd8: return skip(17);                               // fixext 16
      case 0xd9: return read_uint(1, n) && skip(n);             // str 8
      case 0xda: return read_uint(2, n) && skip(n);             // str 16
      case 0xdb: return read_uint(4, n) && skip(n);             // str 32
      case 0xdc: return read_uint(2, n) && entries(n, false, depth, begin, each);
      case 0xdd: return read_uint(4, n) && entries(n, false, depth, begin, each);
      case 0xde: return read_uint(2, n) && entries(n, true, depth, begin, each);
      case 0xdf: return read_uint(4, n) && entries(n, true, depth, begin, each);
      default: return false;  // 0xc1: never used
    }
  }
};

}  // namespace

std::optional<std::vector<scanned_part>> scan_large_containers(byte_view payload, codec c,
                                                               std::size_t threshold) {
  threshold = std::max<std::size_t>(threshold, 1);
  switch (c) {
    case codec::json: {
      json_scanner s(payload, threshold);
      if (!s.run()) return std::nullopt;
      return std::move(s.parts);
    }
    case codec::cbor: {
      cbor_scanner s(payload, threshold);
      if (!s.run()) return std::nullopt;
      return std::move(s.parts);
    }
    case codec::msgpack: {
      msgpack_scanner s(payload, threshold);
      if (!s.run()) return std::nullopt;
      return std::move(s.parts);
    }
  }
  return std::nullopt;
}

}  // namespace prevalent::detail
