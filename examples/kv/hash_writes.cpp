// run() and check() of the hash commands that write: HSET/HMSET/HSETNX, HDEL, HINCRBY,
// HINCRBYFLOAT. A hash left empty is removed, as in Redis.
#include <cmath>

#include "kv_commands.hpp"
#include "redis_number.hpp"
#include "reply.hpp"

namespace kv {
namespace {

std::optional<std::string> must_be_hash(const KvState& s, std::string_view key, long long now) {
  const Entry* e = s.find(key, now);
  if (e != nullptr && !e->is_hash()) return std::string(reply::wrong_type);
  return std::nullopt;
}

// The hash at `key`, created if absent; nullptr if the key holds a string.
Hash* hash_for_write(KvState& s, std::string_view key, const write_context& c) {
  Entry* e = s.find(key, c);
  if (e != nullptr) return e->is_hash() ? &e->hash() : nullptr;
  bool created = false;
  Entry& fresh = s.upsert(key, c, created);
  fresh.value = Hash{};
  return &fresh.hash();
}

void touch(KvState& s, std::string_view key, const write_context& c) {
  if (Entry* e = s.find(key, c)) KvState::touch(*e, c);
}

}  // namespace

std::optional<std::string> HsetCommand::check(const KvState& s, const write_context& c) const {
  return must_be_hash(s, key, c.now_ms);
}

std::string HsetCommand::run(KvState& s, const write_context& c) const {
  Hash* h = hash_for_write(s, key, c);
  if (h == nullptr) return reply::error_text(reply::wrong_type);
  long long added = 0;
  if (reply == setnx && h->find(pairs[0]) != nullptr) return ":0\r\n";
  for (std::size_t i = 0; i + 1 < pairs.size(); i += 2)
    if (h->set(pairs[i], pairs[i + 1])) ++added;
  touch(s, key, c);
  if (reply == ok) return "+OK\r\n";
  return ":" + std::to_string(added) + "\r\n";
}

std::optional<std::string> HdelCommand::check(const KvState& s, const write_context& c) const {
  return must_be_hash(s, key, c.now_ms);
}

std::string HdelCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e == nullptr) return ":0\r\n";
  if (!e->is_hash()) return reply::error_text(reply::wrong_type);
  long long n = 0;
  for (const auto& f : fields)
    if (e->hash().erase(f)) ++n;
  if (e->hash().empty())
    s.erase(key, c.sequence);
  else if (n > 0)
    KvState::touch(*e, c);
  return ":" + std::to_string(n) + "\r\n";
}

std::optional<std::string> HincrbyCommand::check(const KvState& s, const write_context& c) const {
  const Entry* e = s.find(key, c.now_ms);
  if (e == nullptr) return std::nullopt;
  if (!e->is_hash()) return std::string(reply::wrong_type);
  const std::string* v = e->hash().find(field);
  if (v == nullptr) return std::nullopt;
  const auto cur = parse_ll(*v);
  if (!cur) return std::string("ERR hash value is not an integer");
  if ((by < 0 && *cur < 0 && by < (LLONG_MIN - *cur)) ||
      (by > 0 && *cur > 0 && by > (LLONG_MAX - *cur)))
    return std::string("ERR increment or decrement would overflow");
  return std::nullopt;
}

std::string HincrbyCommand::run(KvState& s, const write_context& c) const {
  if (auto err = check(s, c)) return reply::error_text(*err);
  Hash* h = hash_for_write(s, key, c);
  const std::string* v = h->find(field);
  const long long result = (v == nullptr ? 0 : *parse_ll(*v)) + by;
  h->set(field, std::to_string(result));
  touch(s, key, c);
  return ":" + std::to_string(result) + "\r\n";
}

namespace {
std::optional<long double> hash_incremented(const Entry* e, const std::string& field,
                                            const std::string& by, std::string& err) {
  const auto inc = parse_ld(by);
  if (!inc) return err = reply::not_float, std::nullopt;
  if (std::isnan(*inc) || std::isinf(*inc))
    return err = "ERR value is NaN or Infinity", std::nullopt;
  long double v = 0;
  if (e != nullptr) {
    if (!e->is_hash()) return err = reply::wrong_type, std::nullopt;
    if (const std::string* cur = e->hash().find(field)) {
      const auto parsed = parse_ld(*cur);
      if (!parsed) return err = "ERR hash value is not a float", std::nullopt;
      v = *parsed;
    }
  }
  v += *inc;
  if (std::isnan(v) || std::isinf(v))
    return err = "ERR increment would produce NaN or Infinity", std::nullopt;
  return v;
}
}  // namespace

std::optional<std::string> HincrbyfloatCommand::check(const KvState& s,
                                                      const write_context& c) const {
  std::string err;
  if (!hash_incremented(s.find(key, c.now_ms), field, by, err)) return err;
  return std::nullopt;
}

std::string HincrbyfloatCommand::run(KvState& s, const write_context& c) const {
  std::string err;
  const auto v = hash_incremented(s.find(key, c), field, by, err);
  if (!v) return reply::error_text(err);
  Hash* h = hash_for_write(s, key, c);
  std::string text = format_ld(*v);
  h->set(field, text);
  touch(s, key, c);
  std::string out;
  reply::bulk(out, text);
  return out;
}

}  // namespace kv
