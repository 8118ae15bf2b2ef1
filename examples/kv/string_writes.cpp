// run() and check() of the string commands that write: SET (and SETNX, SETEX, PSETEX, GETSET),
// MSET/MSETNX, GETDEL, GETEX, INCRBY (INCR, DECR, DECRBY), INCRBYFLOAT, APPEND, SETRANGE.
#include <cmath>

#include "kv_commands.hpp"
#include "redis_number.hpp"
#include "reply.hpp"

namespace kv {
namespace {

std::optional<std::string> must_be_string(const KvState& s, std::string_view key, long long now) {
  const Entry* e = s.find(key, now);
  if (e != nullptr && !e->is_string()) return std::string(reply::wrong_type);
  return std::nullopt;
}

std::string error(std::string_view message) { return reply::error_text(message); }

long long deadline(int expiry, long long when, const write_context& c) {
  return expiry == static_cast<int>(expiry_kind::relative) ? c.now_ms + when : when;
}

// Stores `value` under `key` as a string; keep_ttl keeps the deadline of an existing key.
void store_string(KvState& s, std::string_view key, std::string value, bool keep_ttl,
                  const write_context& c) {
  bool created = false;
  Entry& e = s.upsert(key, c, created);
  e.value = std::move(value);
  if (!keep_ttl) s.set_expiry(key, e, no_expiry);
  KvState::touch(e, c);
}

std::optional<std::string> check_length(long long offset, std::size_t add) {
  const long long total = offset + static_cast<long long>(add);
  if (total > max_string_bytes || total < offset)
    return std::string("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  return std::nullopt;
}

}  // namespace

std::optional<std::string> SetCommand::check(const KvState& s, const write_context& c) const {
  if (reply == old_value) return must_be_string(s, key, c.now_ms);
  return std::nullopt;
}

std::string SetCommand::run(KvState& s, const write_context& c) const {
  std::string out;
  Entry* e = s.find(key, c);
  if (reply == old_value) {
    if (e != nullptr && !e->is_string()) return error(reply::wrong_type);
    if (e == nullptr)
      reply::null_bulk(out);
    else
      reply::bulk(out, e->str());
  }
  const bool found = e != nullptr;
  if ((condition == static_cast<int>(set_condition::nx) && found) ||
      (condition == static_cast<int>(set_condition::xx) && !found)) {
    if (reply == ok) reply::null_bulk(out);
    if (reply == integer) reply::integer(out, 0);
    return out;
  }
  store_string(s, key, value, expiry == static_cast<int>(expiry_kind::keep), c);
  if (expiry == static_cast<int>(expiry_kind::relative) ||
      expiry == static_cast<int>(expiry_kind::absolute)) {
    Entry* placed = s.find(key, c);
    s.set_expiry(key, *placed, deadline(expiry, when, c));
  }
  if (reply == ok) reply::ok(out);
  if (reply == integer) reply::integer(out, 1);
  return out;
}

std::string MsetCommand::run(KvState& s, const write_context& c) const {
  if (nx) {
    for (std::size_t i = 0; i < pairs.size(); i += 2)
      if (s.find(pairs[i], c) != nullptr) return ":0\r\n";
  }
  for (std::size_t i = 0; i + 1 < pairs.size(); i += 2)
    store_string(s, pairs[i], pairs[i + 1], false, c);
  return nx ? ":1\r\n" : "+OK\r\n";
}

std::optional<std::string> GetdelCommand::check(const KvState& s, const write_context& c) const {
  return must_be_string(s, key, c.now_ms);
}

std::string GetdelCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e == nullptr) return "$-1\r\n";
  if (!e->is_string()) return error(reply::wrong_type);
  std::string out;
  reply::bulk(out, e->str());
  s.erase(key, c.sequence);
  return out;
}

std::optional<std::string> GetexCommand::check(const KvState& s, const write_context& c) const {
  if (auto err = must_be_string(s, key, c.now_ms)) return err;
  if (expiry == static_cast<int>(expiry_kind::invalid) && s.find(key, c.now_ms) != nullptr)
    return when == 1 ? std::string(reply::not_integer)
                     : std::string("ERR invalid expire time in 'getex' command");
  return std::nullopt;
}

std::string GetexCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e == nullptr) return "$-1\r\n";
  if (auto err = check(s, c)) return error(*err);
  std::string out;
  reply::bulk(out, e->str());
  if (expiry == static_cast<int>(expiry_kind::keep)) return out;
  if (expiry == static_cast<int>(expiry_kind::persist)) {
    if (e->expire_at == no_expiry) return out;  // nothing changed: WATCH must not see it
    s.set_expiry(key, *e, no_expiry);
  } else if (expiry == static_cast<int>(expiry_kind::absolute) && when <= c.now_ms) {
    s.erase(key, c.sequence);  // Redis deletes a key given a deadline already passed
    return out;
  } else {
    s.set_expiry(key, *e, deadline(expiry, when, c));
  }
  KvState::touch(*e, c);
  return out;
}

std::optional<std::string> IncrbyCommand::check(const KvState& s, const write_context& c) const {
  const Entry* e = s.find(key, c.now_ms);
  if (e == nullptr) return std::nullopt;
  if (!e->is_string()) return std::string(reply::wrong_type);
  const auto v = parse_ll(e->str());
  if (!v) return std::string(reply::not_integer);
  if ((by < 0 && *v < 0 && by < (LLONG_MIN - *v)) || (by > 0 && *v > 0 && by > (LLONG_MAX - *v)))
    return std::string("ERR increment or decrement would overflow");
  return std::nullopt;
}

std::string IncrbyCommand::run(KvState& s, const write_context& c) const {
  if (auto e = check(s, c)) return error(*e);
  Entry* e = s.find(key, c);
  const long long v = (e == nullptr ? 0 : *parse_ll(e->str())) + by;
  store_string(s, key, std::to_string(v), true, c);
  return ":" + std::to_string(v) + "\r\n";
}

namespace {
std::optional<long double> incremented(const Entry* e, const std::string& by, std::string& err) {
  long double v = 0;
  if (e != nullptr) {
    if (!e->is_string()) return err = reply::wrong_type, std::nullopt;
    const auto cur = parse_ld(e->str());
    if (!cur) return err = reply::not_float, std::nullopt;
    v = *cur;
  }
  const auto inc = parse_ld(by);
  if (!inc) return err = reply::not_float, std::nullopt;
  v += *inc;
  if (std::isnan(v) || std::isinf(v))
    return err = "ERR increment would produce NaN or Infinity", std::nullopt;
  return v;
}
}  // namespace

std::optional<std::string> IncrbyfloatCommand::check(const KvState& s,
                                                     const write_context& c) const {
  std::string err;
  if (!incremented(s.find(key, c.now_ms), by, err)) return err;
  return std::nullopt;
}

std::string IncrbyfloatCommand::run(KvState& s, const write_context& c) const {
  std::string err;
  const auto v = incremented(s.find(key, c), by, err);
  if (!v) return error(err);
  std::string text = format_ld(*v);
  store_string(s, key, text, true, c);
  std::string out;
  reply::bulk(out, text);
  return out;
}

std::optional<std::string> AppendCommand::check(const KvState& s, const write_context& c) const {
  const Entry* e = s.find(key, c.now_ms);
  if (e == nullptr) return std::nullopt;
  if (!e->is_string()) return std::string(reply::wrong_type);
  return check_length(static_cast<long long>(e->str().size()), value.size());
}

std::string AppendCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e != nullptr && !e->is_string()) return error(reply::wrong_type);
  bool created = false;
  Entry& target = s.upsert(key, c, created);
  target.str().append(value);
  KvState::touch(target, c);
  return ":" + std::to_string(target.str().size()) + "\r\n";
}

std::optional<std::string> SetrangeCommand::check(const KvState& s, const write_context& c) const {
  const Entry* e = s.find(key, c.now_ms);
  if (e != nullptr && !e->is_string()) return std::string(reply::wrong_type);
  if (value.empty()) return std::nullopt;
  return check_length(offset, value.size());
}

std::string SetrangeCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e == nullptr && value.empty()) return ":0\r\n";
  if (e != nullptr && !e->is_string()) return error(reply::wrong_type);
  if (e != nullptr && value.empty()) return ":" + std::to_string(e->str().size()) + "\r\n";
  bool created = false;
  Entry& target = s.upsert(key, c, created);
  std::string& str = target.str();
  const std::size_t end = static_cast<std::size_t>(offset) + value.size();
  if (str.size() < end) str.resize(end, '\0');
  str.replace(static_cast<std::size_t>(offset), value.size(), value);
  KvState::touch(target, c);
  return ":" + std::to_string(str.size()) + "\r\n";
}

}  // namespace kv
