// The string commands: reads (GET, MGET, STRLEN, GETRANGE) and the parsers of the writes.
#include <climits>

#include "command_table.hpp"
#include "redis_number.hpp"
#include "reply.hpp"

namespace kv {
namespace {

void get(const KvState& s, const args& a, long long now, std::string& out) {
  const Entry* e = s.find(a[1], now);
  if (e == nullptr) return reply::null_bulk(out);
  if (!e->is_string()) return reply::error(out, reply::wrong_type);
  reply::bulk(out, e->str());
}

void mget(const KvState& s, const args& a, long long now, std::string& out) {
  reply::array(out, a.size() - 1);
  for (std::size_t i = 1; i < a.size(); ++i) {
    const Entry* e = s.find(a[i], now);
    if (e == nullptr || !e->is_string())
      reply::null_bulk(out);
    else
      reply::bulk(out, e->str());
  }
}

void strlen_(const KvState& s, const args& a, long long now, std::string& out) {
  const Entry* e = s.find(a[1], now);
  if (e == nullptr) return reply::integer(out, 0);
  if (!e->is_string()) return reply::error(out, reply::wrong_type);
  reply::integer(out, static_cast<long long>(e->str().size()));
}

void getrange(const KvState& s, const args& a, long long now, std::string& out) {
  auto start = parse_ll(a[2]), end = parse_ll(a[3]);
  if (!start || !end) return reply::error(out, reply::not_integer);
  const Entry* e = s.find(a[1], now);
  if (e == nullptr) return reply::bulk(out, "");
  if (!e->is_string()) return reply::error(out, reply::wrong_type);
  const long long len = static_cast<long long>(e->str().size());
  long long b = *start, f = *end;
  if (b < 0 && f < 0 && b > f) return reply::bulk(out, "");
  if (b < 0) b = len + b;
  if (f < 0) f = len + f;
  if (b < 0) b = 0;
  if (f < 0) f = 0;
  if (f >= len) f = len - 1;
  if (b > f || len == 0) return reply::bulk(out, "");
  reply::bulk(out, std::string_view(e->str()).substr(static_cast<std::size_t>(b),
                                                     static_cast<std::size_t>(f - b + 1)));
}

std::string expire_error(std::string_view command) {
  return "ERR invalid expire time in '" + std::string(command) + "' command";
}

// The expiry of SET/SETEX/PSETEX/GETEX from its argument, as Redis checks it. `unit` 1000 for
// seconds; relative times must not overflow when added to now.
std::optional<std::string> read_expire(const std::string& arg, long long unit, bool relative,
                                       long long now, std::string_view command, long long& ms) {
  const auto v = parse_ll(arg);
  if (!v) return std::string(reply::not_integer);
  if (*v <= 0 || (unit == 1000 && *v > LLONG_MAX / 1000)) return expire_error(command);
  ms = *v * unit;
  if (relative && ms > LLONG_MAX - now) return expire_error(command);
  return std::nullopt;
}

// Options of SET (from argv[3]) and GETEX (from argv[2]), Redis's parseExtendedStringArguments.
struct string_options {
  int condition = 0;
  bool get = false, keepttl = false, persist = false;
  char unit = 0;  // 'e' EX, 'p' PX, 'E' EXAT, 'P' PXAT
  const std::string* expire = nullptr;
};

bool parse_string_options(const args& a, std::size_t from, bool is_set, string_options& o) {
  for (std::size_t j = from; j < a.size(); ++j) {
    const std::string& opt = a[j];
    const bool has_next = j + 1 < a.size();
    const bool timed = o.unit != 0;
    if (is_set && iequals(opt, "nx") && o.condition != 2) {
      o.condition = 1;
    } else if (is_set && iequals(opt, "xx") && o.condition != 1) {
      o.condition = 2;
    } else if (is_set && iequals(opt, "get")) {
      o.get = true;
    } else if (is_set && iequals(opt, "keepttl") && !timed) {
      o.keepttl = true;
    } else if (!is_set && iequals(opt, "persist") && !timed) {
      o.persist = true;
    } else if (has_next && !o.keepttl && !o.persist &&
               ((iequals(opt, "ex") && (o.unit == 0 || o.unit == 'e')) ||
                (iequals(opt, "px") && (o.unit == 0 || o.unit == 'p')) ||
                (iequals(opt, "exat") && (o.unit == 0 || o.unit == 'E')) ||
                (iequals(opt, "pxat") && (o.unit == 0 || o.unit == 'P')))) {
      o.unit = iequals(opt, "ex")     ? 'e'
               : iequals(opt, "px")   ? 'p'
               : iequals(opt, "exat") ? 'E'
                                      : 'P';
      o.expire = &a[++j];
    } else {
      return false;
    }
  }
  return true;
}

parsed_write make_set(const args& a, long long now, std::string_view command,
                      const string_options& o, int reply_kind) {
  SetCommand c;
  c.key = a[1];
  c.value = a[2];
  c.condition = o.condition;
  c.reply = o.get ? SetCommand::old_value : reply_kind;
  c.expiry = static_cast<int>(o.keepttl ? expiry_kind::keep : expiry_kind::clear);
  if (o.unit != 0) {
    const bool relative = o.unit == 'e' || o.unit == 'p';
    const long long unit = (o.unit == 'e' || o.unit == 'E') ? 1000 : 1;
    if (auto err = read_expire(*o.expire, unit, relative, now, command, c.when))
      return parse_error(*err);
    c.expiry = static_cast<int>(relative ? expiry_kind::relative : expiry_kind::absolute);
  }
  return {write_op(std::move(c)), {}};
}

parsed_write parse_set(const args& a, long long now) {
  string_options o;
  if (!parse_string_options(a, 3, true, o)) return parse_error(reply::syntax);
  return make_set(a, now, "set", o, SetCommand::ok);
}

parsed_write parse_setnx(const args& a, long long now) {
  string_options o;
  o.condition = 1;
  return make_set(a, now, "setnx", o, SetCommand::integer);
}

parsed_write parse_setex_generic(const args& a, long long now, std::string_view name, char unit) {
  string_options o;
  o.unit = unit;
  o.expire = &a[2];
  const args reordered{a[0], a[1], a[3]};
  return make_set(reordered, now, name, o, SetCommand::ok);
}
parsed_write parse_setex(const args& a, long long now) {
  return parse_setex_generic(a, now, "setex", 'e');
}
parsed_write parse_psetex(const args& a, long long now) {
  return parse_setex_generic(a, now, "psetex", 'p');
}

parsed_write parse_getset(const args& a, long long now) {
  string_options o;
  o.get = true;
  return make_set(a, now, "getset", o, SetCommand::old_value);
}

parsed_write parse_getex(const args& a, long long now) {
  string_options o;
  if (!parse_string_options(a, 2, false, o)) return parse_error(reply::syntax);
  GetexCommand c;
  c.key = a[1];
  c.expiry = static_cast<int>(o.persist ? expiry_kind::persist : expiry_kind::keep);
  if (o.unit != 0) {
    const bool relative = o.unit == 'e' || o.unit == 'p';
    const long long unit = (o.unit == 'e' || o.unit == 'E') ? 1000 : 1;
    if (read_expire(*o.expire, unit, relative, now, "getex", c.when)) {
      // Redis checks the expire time only after finding the key: an invalid one is an error
      // for an existing string key, nil for a missing key.
      const auto v = parse_ll(*o.expire);
      c.expiry = static_cast<int>(expiry_kind::invalid);
      c.when = v ? 0 : 1;  // 1: not an integer at all
    } else {
      c.expiry = static_cast<int>(relative ? expiry_kind::relative : expiry_kind::absolute);
    }
  }
  return {write_op(std::move(c)), {}};
}

parsed_write parse_getdel(const args& a, long long) {
  GetdelCommand c;
  c.key = a[1];
  return {write_op(std::move(c)), {}};
}

parsed_write parse_mset_generic(const args& a, bool nx) {
  if (a.size() % 2 == 0) return {std::nullopt, arity_error(nx ? "msetnx" : "mset")};
  MsetCommand c;
  c.pairs.assign(a.begin() + 1, a.end());
  c.nx = nx;
  return {write_op(std::move(c)), {}};
}
parsed_write parse_mset(const args& a, long long) { return parse_mset_generic(a, false); }
parsed_write parse_msetnx(const args& a, long long) { return parse_mset_generic(a, true); }

parsed_write incr_by(const std::string& key, long long by) {
  IncrbyCommand c;
  c.key = key;
  c.by = by;
  return {write_op(std::move(c)), {}};
}
parsed_write parse_incr(const args& a, long long) { return incr_by(a[1], 1); }
parsed_write parse_decr(const args& a, long long) { return incr_by(a[1], -1); }
parsed_write parse_incrby(const args& a, long long) {
  const auto by = parse_ll(a[2]);
  if (!by) return parse_error(reply::not_integer);
  return incr_by(a[1], *by);
}
parsed_write parse_decrby(const args& a, long long) {
  const auto by = parse_ll(a[2]);
  if (!by) return parse_error(reply::not_integer);
  if (*by == LLONG_MIN) return parse_error("ERR decrement would overflow");
  return incr_by(a[1], -*by);
}

parsed_write parse_incrbyfloat(const args& a, long long) {
  IncrbyfloatCommand c;
  c.key = a[1];
  c.by = a[2];
  return {write_op(std::move(c)), {}};
}

parsed_write parse_append(const args& a, long long) {
  AppendCommand c;
  c.key = a[1];
  c.value = a[2];
  return {write_op(std::move(c)), {}};
}

parsed_write parse_setrange(const args& a, long long) {
  const auto offset = parse_ll(a[2]);
  if (!offset) return parse_error(reply::not_integer);
  if (*offset < 0) return parse_error("ERR offset is out of range");
  SetrangeCommand c;
  c.key = a[1];
  c.offset = *offset;
  c.value = a[3];
  return {write_op(std::move(c)), {}};
}

}  // namespace

void add_string_commands(std::vector<command_spec>& t) {
  using k = command_kind;
  t.push_back({"get", 2, k::read, get, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"mget", -2, k::read, mget, nullptr, "readonly fast", 1, -1, 1});
  t.push_back({"strlen", 2, k::read, strlen_, nullptr, "readonly fast", 1, 1, 1});
  t.push_back({"getrange", 4, k::read, getrange, nullptr, "readonly", 1, 1, 1});
  t.push_back({"substr", 4, k::read, getrange, nullptr, "readonly", 1, 1, 1});
  t.push_back({"set", -3, k::write, nullptr, parse_set, "write denyoom", 1, 1, 1});
  t.push_back({"setnx", 3, k::write, nullptr, parse_setnx, "write denyoom fast", 1, 1, 1});
  t.push_back({"setex", 4, k::write, nullptr, parse_setex, "write denyoom", 1, 1, 1});
  t.push_back({"psetex", 4, k::write, nullptr, parse_psetex, "write denyoom", 1, 1, 1});
  t.push_back({"getset", 3, k::write, nullptr, parse_getset, "write denyoom fast", 1, 1, 1});
  t.push_back({"getex", -2, k::write, nullptr, parse_getex, "write fast", 1, 1, 1});
  t.push_back({"getdel", 2, k::write, nullptr, parse_getdel, "write fast", 1, 1, 1});
  t.push_back({"mset", -3, k::write, nullptr, parse_mset, "write denyoom", 1, -1, 2});
  t.push_back({"msetnx", -3, k::write, nullptr, parse_msetnx, "write denyoom", 1, -1, 2});
  t.push_back({"incr", 2, k::write, nullptr, parse_incr, "write denyoom fast", 1, 1, 1});
  t.push_back({"decr", 2, k::write, nullptr, parse_decr, "write denyoom fast", 1, 1, 1});
  t.push_back({"incrby", 3, k::write, nullptr, parse_incrby, "write denyoom fast", 1, 1, 1});
  t.push_back({"decrby", 3, k::write, nullptr, parse_decrby, "write denyoom fast", 1, 1, 1});
  t.push_back(
      {"incrbyfloat", 3, k::write, nullptr, parse_incrbyfloat, "write denyoom fast", 1, 1, 1});
  t.push_back({"append", 3, k::write, nullptr, parse_append, "write denyoom", 1, 1, 1});
  t.push_back({"setrange", 4, k::write, nullptr, parse_setrange, "write denyoom", 1, 1, 1});
}

}  // namespace kv
