// run() and check() of the commands that write keys as a whole: DEL/UNLINK, the EXPIRE
// family, PERSIST, RENAME/RENAMENX, FLUSHALL/FLUSHDB, and the timer's expire_due.
#include "kv_commands.hpp"
#include "reply.hpp"

namespace kv {

std::string DelCommand::run(KvState& s, const write_context& c) const {
  long long n = 0;
  for (const auto& key : keys)
    if (s.find(key, c) != nullptr && s.erase(key, c.sequence)) ++n;
  return ":" + std::to_string(n) + "\r\n";
}

std::string ExpireCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e == nullptr) return ":0\r\n";
  const long long at = absolute ? when : c.now_ms + when;
  const long long current = e->expire_at;
  if ((flags & nx) && current != no_expiry) return ":0\r\n";
  if ((flags & xx) && current == no_expiry) return ":0\r\n";
  if ((flags & gt) && (current == no_expiry || at <= current)) return ":0\r\n";
  if ((flags & lt) && current != no_expiry && at >= current) return ":0\r\n";
  if (at <= c.now_ms) {
    s.erase(key, c.sequence);
  } else {
    s.set_expiry(key, *e, at);
    KvState::touch(*e, c);
  }
  return ":1\r\n";
}

std::string PersistCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(key, c);
  if (e == nullptr || e->expire_at == no_expiry) return ":0\r\n";
  s.set_expiry(key, *e, no_expiry);
  KvState::touch(*e, c);
  return ":1\r\n";
}

std::optional<std::string> RenameCommand::check(const KvState& s, const write_context& c) const {
  if (s.find(from, c.now_ms) == nullptr) return std::string(reply::no_such_key);
  return std::nullopt;
}

std::string RenameCommand::run(KvState& s, const write_context& c) const {
  Entry* e = s.find(from, c);
  if (e == nullptr) return reply::error_text(reply::no_such_key);
  if (from == to) return nx ? ":0\r\n" : "+OK\r\n";
  if (nx && s.find(to, c) != nullptr) return ":0\r\n";
  Entry moved = std::move(*e);
  const long long at = moved.expire_at;
  s.erase(from, c.sequence);
  s.erase(to, c.sequence);
  bool created = false;
  Entry& target = s.upsert(to, c, created);
  target.value = std::move(moved.value);
  s.set_expiry(to, target, at);
  KvState::touch(target, c);
  return nx ? ":1\r\n" : "+OK\r\n";
}

std::string FlushallCommand::run(KvState& s, const write_context&) const {
  s.clear();
  return "+OK\r\n";
}

void ExpireDueCommand::validate(const KvState& s, const prevalent::Context& c) const {
  const long long next = s.next_deadline();
  if (next == no_expiry || next > context_of(c).now_ms) throw rejected("nothing due");
}

long long ExpireDueCommand::apply(KvState& s, const prevalent::Context& c) const {
  return static_cast<long long>(
      s.expire_due(context_of(c).now_ms, static_cast<std::size_t>(limit), c.sequence()));
}

std::uint64_t key_version(const KvState& s, std::string_view key, long long now_ms) {
  const Entry* e = s.find(key, now_ms);
  return e == nullptr ? s.tombstone(key) : e->version;
}

}  // namespace kv
