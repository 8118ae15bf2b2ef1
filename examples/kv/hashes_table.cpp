// The hash commands: reads (HGET, HMGET, HGETALL, HKEYS, HVALS, HLEN, HEXISTS, HSTRLEN) and
// the parsers of the writes (HSET, HMSET, HSETNX, HDEL, HINCRBY, HINCRBYFLOAT).
#include "command_table.hpp"
#include "redis_number.hpp"
#include "reply.hpp"

namespace kv {
namespace {

// The hash at a[1]; false (with the reply written) if missing or of another type.
const Hash* hash_or_reply(const KvState& s, const args& a, long long now, std::string& out,
                          void (*missing)(std::string&)) {
  const Entry* e = s.find(a[1], now);
  if (e == nullptr) {
    missing(out);
    return nullptr;
  }
  if (!e->is_hash()) {
    reply::error(out, reply::wrong_type);
    return nullptr;
  }
  return &e->hash();
}
void zero(std::string& out) { reply::integer(out, 0); }
void empty_array(std::string& out) { reply::array(out, 0); }

void hget(const KvState& s, const args& a, long long now, std::string& out) {
  const Hash* h = hash_or_reply(s, a, now, out, reply::null_bulk);
  if (h == nullptr) return;
  if (const std::string* v = h->find(a[2]))
    reply::bulk(out, *v);
  else
    reply::null_bulk(out);
}

void hmget(const KvState& s, const args& a, long long now, std::string& out) {
  const Entry* e = s.find(a[1], now);
  if (e != nullptr && !e->is_hash()) return reply::error(out, reply::wrong_type);
  reply::array(out, a.size() - 2);
  for (std::size_t i = 2; i < a.size(); ++i) {
    const std::string* v = e == nullptr ? nullptr : e->hash().find(a[i]);
    if (v != nullptr)
      reply::bulk(out, *v);
    else
      reply::null_bulk(out);
  }
}

void hgetall_generic(const KvState& s, const args& a, long long now, std::string& out, bool fields,
                     bool values) {
  const Hash* h = hash_or_reply(s, a, now, out, empty_array);
  if (h == nullptr) return;
  reply::array(out, h->size() * ((fields ? 1 : 0) + (values ? 1 : 0)));
  for (const auto& [f, v] : h->items()) {
    if (fields) reply::bulk(out, f);
    if (values) reply::bulk(out, v);
  }
}
void hgetall(const KvState& s, const args& a, long long now, std::string& out) {
  hgetall_generic(s, a, now, out, true, true);
}
void hkeys(const KvState& s, const args& a, long long now, std::string& out) {
  hgetall_generic(s, a, now, out, true, false);
}
void hvals(const KvState& s, const args& a, long long now, std::string& out) {
  hgetall_generic(s, a, now, out, false, true);
}

void hlen(const KvState& s, const args& a, long long now, std::string& out) {
  if (const Hash* h = hash_or_reply(s, a, now, out, zero))
    reply::integer(out, static_cast<long long>(h->size()));
}
void hexists(const KvState& s, const args& a, long long now, std::string& out) {
  if (const Hash* h = hash_or_reply(s, a, now, out, zero))
    reply::integer(out, h->find(a[2]) != nullptr ? 1 : 0);
}
void hstrlen(const KvState& s, const args& a, long long now, std::string& out) {
  if (const Hash* h = hash_or_reply(s, a, now, out, zero)) {
    const std::string* v = h->find(a[2]);
    reply::integer(out, v == nullptr ? 0 : static_cast<long long>(v->size()));
  }
}

parsed_write hset_generic(const args& a, std::size_t expected_parity, std::string_view name,
                          int reply_kind) {
  if (a.size() % 2 != expected_parity) return {std::nullopt, arity_error(name)};
  HsetCommand c;
  c.key = a[1];
  c.pairs.assign(a.begin() + 2, a.end());
  c.reply = reply_kind;
  return {write_op(std::move(c)), {}};
}
parsed_write parse_hset(const args& a, long long) {
  return hset_generic(a, 0, "hset", HsetCommand::added);
}
parsed_write parse_hmset(const args& a, long long) {
  return hset_generic(a, 0, "hmset", HsetCommand::ok);
}
parsed_write parse_hsetnx(const args& a, long long) {
  return hset_generic(a, 0, "hsetnx", HsetCommand::setnx);
}

parsed_write parse_hdel(const args& a, long long) {
  HdelCommand c;
  c.key = a[1];
  c.fields.assign(a.begin() + 2, a.end());
  return {write_op(std::move(c)), {}};
}

parsed_write parse_hincrby(const args& a, long long) {
  const auto by = parse_ll(a[3]);
  if (!by) return parse_error(reply::not_integer);
  HincrbyCommand c;
  c.key = a[1];
  c.field = a[2];
  c.by = *by;
  return {write_op(std::move(c)), {}};
}

parsed_write parse_hincrbyfloat(const args& a, long long) {
  HincrbyfloatCommand c;
  c.key = a[1];
  c.field = a[2];
  c.by = a[3];
  return {write_op(std::move(c)), {}};
}

}  // namespace

void add_hash_commands(std::vector<command_spec>& t) {
  using k = command_kind;
  t.push_back({"hget", 3, k::read, hget, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"hmget", -3, k::read, hmget, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"hgetall", 2, k::read, hgetall, nullptr, "readonly", 1, 1, 1});
  t.push_back({"hkeys", 2, k::read, hkeys, nullptr, "readonly", 1, 1, 1});
  t.push_back({"hvals", 2, k::read, hvals, nullptr, "readonly", 1, 1, 1});
  t.push_back({"hlen", 2, k::read, hlen, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"hexists", 3, k::read, hexists, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"hstrlen", 3, k::read, hstrlen, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"hset", -4, k::write, nullptr, parse_hset, "write denyoom fast", 1, 1, 1});
  t.push_back({"hmset", -4, k::write, nullptr, parse_hmset, "write denyoom fast", 1, 1, 1});
  t.push_back({"hsetnx", 4, k::write, nullptr, parse_hsetnx, "write denyoom fast", 1, 1, 1});
  t.push_back({"hdel", -3, k::write, nullptr, parse_hdel, "write fast", 1, 1, 1});
  t.push_back({"hincrby", 4, k::write, nullptr, parse_hincrby, "write denyoom fast", 1, 1, 1});
  t.push_back(
      {"hincrbyfloat", 4, k::write, nullptr, parse_hincrbyfloat, "write denyoom fast", 1, 1, 1});
}

void add_server_commands(std::vector<command_spec>& t) {
  using k = command_kind;
  for (auto [name, arity, flags] :
       std::initializer_list<std::tuple<std::string_view, int, std::string_view>>{
           {"ping", -1, "fast"},
           {"echo", 2, "fast"},
           {"quit", -1, "fast"},
           {"select", 2, "loading stale fast"},
           {"auth", -2, "noscript loading stale fast"},
           {"hello", -1, "noscript loading stale fast"},
           {"client", -2, ""},
           {"config", -2, ""},
           {"command", -1, "loading stale"},
           {"info", -1, "loading stale"},
           {"time", 1, "loading stale fast"},
           {"save", 1, "admin noscript"},
           {"bgsave", -1, "admin noscript"},
           {"lastsave", 1, "loading stale fast"},
           {"multi", 1, "noscript loading stale fast"},
           {"exec", 1, "noscript loading stale"},
           {"discard", 1, "noscript loading stale fast"},
           {"watch", -2, "noscript loading stale fast"},
           {"unwatch", 1, "noscript loading stale fast"},
           {"reset", 1, "noscript loading stale fast"},
           {"wait", 3, "noscript"},
           {"role", 1, "noscript loading stale fast"}})
    t.push_back({name, arity, k::server, nullptr, nullptr, flags, 0, 0, 0});
}

}  // namespace kv
