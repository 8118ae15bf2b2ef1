// The key commands: reads (EXISTS, TYPE, TTL/PTTL/EXPIRETIME/PEXPIRETIME, KEYS, SCAN,
// RANDOMKEY, DBSIZE) and the parsers of the writes (DEL/UNLINK, the EXPIRE family, PERSIST,
// RENAME/RENAMENX, FLUSHALL/FLUSHDB).
#include <climits>
#include <cstring>
#include <random>

#include "command_table.hpp"
#include "glob.hpp"
#include "redis_number.hpp"
#include "reply.hpp"
#include "scan.hpp"

namespace kv {
namespace {

void exists(const KvState& s, const args& a, long long now, std::string& out) {
  long long n = 0;
  for (std::size_t i = 1; i < a.size(); ++i)
    if (s.find(a[i], now) != nullptr) ++n;
  reply::integer(out, n);
}

void type(const KvState& s, const args& a, long long now, std::string& out) {
  const Entry* e = s.find(a[1], now);
  reply::simple(out, e == nullptr ? "none" : e->is_string() ? "string" : "hash");
}

void ttl_generic(const KvState& s, const args& a, long long now, std::string& out, bool ms,
                 bool absolute) {
  const Entry* e = s.find(a[1], now);
  if (e == nullptr) return reply::integer(out, -2);
  if (e->expire_at == no_expiry) return reply::integer(out, -1);
  long long t = absolute ? e->expire_at : e->expire_at - now;
  if (t < 0) t = 0;
  reply::integer(out, ms ? t : (t + 500) / 1000);
}
void ttl(const KvState& s, const args& a, long long now, std::string& out) {
  ttl_generic(s, a, now, out, false, false);
}
void pttl(const KvState& s, const args& a, long long now, std::string& out) {
  ttl_generic(s, a, now, out, true, false);
}
void expiretime(const KvState& s, const args& a, long long now, std::string& out) {
  ttl_generic(s, a, now, out, false, true);
}
void pexpiretime(const KvState& s, const args& a, long long now, std::string& out) {
  ttl_generic(s, a, now, out, true, true);
}

void keys(const KvState& s, const args& a, long long now, std::string& out) {
  const bool all = a[1] == "*";
  std::vector<const std::string*> found;
  for (const auto& [slot, e] : s.keys()) {
    if (e.expire_at != no_expiry && e.expire_at <= now) continue;
    if (all || glob_match(a[1], slot.name)) found.push_back(&slot.name);
  }
  reply::array(out, found.size());
  for (const auto* k : found) reply::bulk(out, *k);
}

void randomkey(const KvState& s, const args&, long long now, std::string& out) {
  const std::size_t n = s.size();
  if (n == 0) return reply::null_bulk(out);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  // A random point of the hash order (keys are ordered by hash), then the next live key.
  auto it = s.keys().lower_bound(key_probe{rng(), {}});
  if (it == s.keys().end()) it = s.keys().begin();
  for (std::size_t tried = 0; tried < n; ++tried) {
    if (it->second.expire_at == no_expiry || it->second.expire_at > now)
      return reply::bulk(out, it->first.name);
    if (++it == s.keys().end()) it = s.keys().begin();
  }
  reply::null_bulk(out);
}

void dbsize(const KvState& s, const args&, long long now, std::string& out) {
  reply::integer(out, static_cast<long long>(s.live_size(now)));
}

void scan(const KvState& s, const args& a, long long now, std::string& out) {
  scan_request r;
  if (auto err = parse_scan(a, r)) return reply::error(out, *err);
  const scan_page page = kv::scan(s, r, now);
  reply::array(out, 2);
  reply::bulk(out, std::to_string(page.next_cursor));
  reply::array(out, page.keys.size());
  for (const auto& k : page.keys) reply::bulk(out, k);
}

parsed_write parse_del(const args& a, long long) {
  DelCommand c;
  c.keys.assign(a.begin() + 1, a.end());
  return {write_op(std::move(c)), {}};
}

// Up to the first NUL, as Redis's "%s" shows it.
std::string c_str(const std::string& s) { return std::string(s.c_str()); }

parsed_write parse_expire_generic(const args& a, long long now, std::string_view name,
                                  long long unit, bool absolute) {
  ExpireCommand c;
  bool nx = false, xx = false, gt = false, lt = false;
  for (std::size_t j = 3; j < a.size(); ++j) {
    if (iequals(a[j], "nx"))
      nx = true;
    else if (iequals(a[j], "xx"))
      xx = true;
    else if (iequals(a[j], "gt"))
      gt = true;
    else if (iequals(a[j], "lt"))
      lt = true;
    else
      return parse_error("ERR Unsupported option " + c_str(a[j]));
  }
  if ((nx && xx) || (nx && gt) || (nx && lt))
    return parse_error("ERR NX and XX, GT or LT options at the same time are not compatible");
  if (gt && lt) return parse_error("ERR GT and LT options at the same time are not compatible");
  c.flags = (nx ? ExpireCommand::nx : 0) | (xx ? ExpireCommand::xx : 0) |
            (gt ? ExpireCommand::gt : 0) | (lt ? ExpireCommand::lt : 0);
  const auto v = parse_ll(a[2]);
  if (!v) return parse_error(reply::not_integer);
  const std::string invalid = "ERR invalid expire time in '" + std::string(name) + "' command";
  long long when = *v;
  if (unit == 1000) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) return parse_error(invalid);
    when *= 1000;
  }
  const long long base = absolute ? 0 : now;
  if (when > LLONG_MAX - base) return parse_error(invalid);
  c.key = a[1];
  c.when = when;
  c.absolute = absolute;
  return {write_op(std::move(c)), {}};
}
parsed_write parse_expire(const args& a, long long now) {
  return parse_expire_generic(a, now, "expire", 1000, false);
}
parsed_write parse_pexpire(const args& a, long long now) {
  return parse_expire_generic(a, now, "pexpire", 1, false);
}
parsed_write parse_expireat(const args& a, long long now) {
  return parse_expire_generic(a, now, "expireat", 1000, true);
}
parsed_write parse_pexpireat(const args& a, long long now) {
  return parse_expire_generic(a, now, "pexpireat", 1, true);
}

parsed_write parse_persist(const args& a, long long) {
  PersistCommand c;
  c.key = a[1];
  return {write_op(std::move(c)), {}};
}

parsed_write parse_rename_generic(const args& a, bool nx) {
  RenameCommand c;
  c.from = a[1];
  c.to = a[2];
  c.nx = nx;
  return {write_op(std::move(c)), {}};
}
parsed_write parse_rename(const args& a, long long) { return parse_rename_generic(a, false); }
parsed_write parse_renamenx(const args& a, long long) { return parse_rename_generic(a, true); }

parsed_write parse_flush(const args& a, long long) {
  if (a.size() > 2 || (a.size() == 2 && !iequals(a[1], "sync") && !iequals(a[1], "async")))
    return parse_error(reply::syntax);
  return {write_op(FlushallCommand{}), {}};
}

}  // namespace

void add_key_commands(std::vector<command_spec>& t) {
  using k = command_kind;
  t.push_back({"exists", -2, k::read, exists, nullptr, "readonly fast", 1, -1, 1});
  t.push_back({"type", 2, k::read, type, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"ttl", 2, k::read, ttl, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"pttl", 2, k::read, pttl, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"expiretime", 2, k::read, expiretime, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"pexpiretime", 2, k::read, pexpiretime, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"keys", 2, k::read, keys, nullptr, "readonly", 0, 0, 0});
  t.push_back({"scan", -2, k::read, scan, nullptr, "readonly", 0, 0, 0});
  t.push_back({"randomkey", 1, k::read, randomkey, nullptr, "readonly", 0, 0, 0});
  t.push_back({"dbsize", 1, k::read, dbsize, nullptr, "readonly fast", 0, 0, 0});
  t.push_back({"del", -2, k::write, nullptr, parse_del, "write", 1, -1, 1});
  t.push_back({"unlink", -2, k::write, nullptr, parse_del, "write fast", 1, -1, 1});
  t.push_back({"expire", -3, k::write, nullptr, parse_expire, "write fast", 1, 1, 1});
  t.push_back({"pexpire", -3, k::write, nullptr, parse_pexpire, "write fast", 1, 1, 1});
  t.push_back({"expireat", -3, k::write, nullptr, parse_expireat, "write fast", 1, 1, 1});
  t.push_back({"pexpireat", -3, k::write, nullptr, parse_pexpireat, "write fast", 1, 1, 1});
  t.push_back({"persist", 2, k::write, nullptr, parse_persist, "write fast", 1, 1, 1});
  t.push_back({"rename", 3, k::write, nullptr, parse_rename, "write", 1, 2, 1});
  t.push_back({"renamenx", 3, k::write, nullptr, parse_renamenx, "write fast", 1, 2, 1});
  t.push_back({"flushall", -1, k::write, nullptr, parse_flush, "write", 0, 0, 0});
  t.push_back({"flushdb", -1, k::write, nullptr, parse_flush, "write", 0, 0, 0});
}

}  // namespace kv
