// The typed prevalent commands of prevalent-kv: one per kind of write (SET with its options,
// DEL, INCRBY, HSET, the EXPIRE family, RENAME, FLUSHALL, ...), `exec` holding a whole MULTI
// batch as one journaled record, and `expire_due`, issued by the server's timer to drop keys
// whose deadline passed. Each command's run() returns the RESP reply Redis 7.0 gives; an error
// reply leaves the state as it was. check() finds the errors that depend on the state
// (WRONGTYPE, a value that is not a number, ...) so that validate() rejects them before
// anything is journaled. The time is the Context's, so replay rebuilds the same keys.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <prevalent/command.hpp>

#include "kv_state.hpp"

namespace kv {

using args = std::vector<std::string>;

// Thrown by validate(): the error reply (without "-" and CRLF), e.g. "WRONGTYPE ...".
struct rejected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Largest string SETRANGE and APPEND may build (Redis's proto-max-bulk-len); set at startup.
inline long long max_string_bytes = 512ll << 20;

inline write_context context_of(const prevalent::Context& c) {
  return {c.timestamp_ns() / 1'000'000, c.sequence()};
}

// validate() and apply() in terms of check() and run(); the fields are serialized through
// visit_fields(f), f(name, member) for each member.
template <class Derived>
struct write_command {
  static constexpr bool atomic_apply = true;  // run() changes nothing when it fails
  void validate(const KvState& s, const prevalent::Context& c) const {
    if (auto e = static_cast<const Derived&>(*this).check(s, context_of(c))) throw rejected(*e);
  }
  std::string apply(KvState& s, const prevalent::Context& c) const {
    return static_cast<const Derived&>(*this).run(s, context_of(c));
  }
  std::optional<std::string> check(const KvState&, const write_context&) const { return {}; }
};

enum class set_condition : int { none = 0, nx = 1, xx = 2 };
enum class expiry_kind : int {
  clear = 0,
  keep = 1,
  relative = 2,
  absolute = 3,
  persist = 4,
  invalid = 5
};

struct SetCommand : write_command<SetCommand> {
  static constexpr std::string_view name = "set";
  enum reply_kind : int { ok = 0, integer = 1, old_value = 2 };  // SET, SETNX, SET GET/GETSET
  std::string key, value;
  int condition = 0;   // set_condition
  int expiry = 0;      // expiry_kind (clear, keep, relative, absolute)
  long long when = 0;  // ms: relative to the Context's time, or absolute
  int reply = ok;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("v", value), f("c", condition), f("e", expiry), f("w", when), f("r", reply);
  }
};

struct MsetCommand : write_command<MsetCommand> {
  static constexpr std::string_view name = "mset";
  std::vector<std::string> pairs;  // key, value, key, value, ...
  bool nx = false;                 // MSETNX
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("p", pairs), f("nx", nx);
  }
};

struct DelCommand : write_command<DelCommand> {
  static constexpr std::string_view name = "del";
  std::vector<std::string> keys;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", keys);
  }
};

struct GetdelCommand : write_command<GetdelCommand> {
  static constexpr std::string_view name = "getdel";
  std::string key;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key);
  }
};

struct GetexCommand : write_command<GetexCommand> {
  static constexpr std::string_view name = "getex";
  std::string key;
  int expiry = 0;      // expiry_kind: keep, relative, absolute, persist, or invalid (then
  long long when = 0;  // when 1: not an integer, 0: out of range)
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("e", expiry), f("w", when);
  }
};

struct IncrbyCommand : write_command<IncrbyCommand> {
  static constexpr std::string_view name = "incrby";
  std::string key;
  long long by = 0;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("by", by);
  }
};

struct IncrbyfloatCommand : write_command<IncrbyfloatCommand> {
  static constexpr std::string_view name = "incrbyfloat";
  std::string key, by;  // the increment as the client wrote it
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("by", by);
  }
};

struct AppendCommand : write_command<AppendCommand> {
  static constexpr std::string_view name = "append";
  std::string key, value;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("v", value);
  }
};

struct SetrangeCommand : write_command<SetrangeCommand> {
  static constexpr std::string_view name = "setrange";
  std::string key;
  long long offset = 0;
  std::string value;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("o", offset), f("v", value);
  }
};

struct ExpireCommand : write_command<ExpireCommand> {
  static constexpr std::string_view name = "expire";
  enum flag : int { nx = 1, xx = 2, gt = 4, lt = 8 };
  std::string key;
  long long when = 0;  // ms
  bool absolute = false;
  int flags = 0;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("w", when), f("a", absolute), f("f", flags);
  }
};

struct PersistCommand : write_command<PersistCommand> {
  static constexpr std::string_view name = "persist";
  std::string key;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key);
  }
};

struct RenameCommand : write_command<RenameCommand> {
  static constexpr std::string_view name = "rename";
  std::string from, to;
  bool nx = false;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("f", from), f("t", to), f("nx", nx);
  }
};

struct FlushallCommand : write_command<FlushallCommand> {
  static constexpr std::string_view name = "flushall";
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&&) {}
};

struct HsetCommand : write_command<HsetCommand> {
  static constexpr std::string_view name = "hset";
  enum reply_kind : int { added = 0, ok = 1, setnx = 2 };  // HSET, HMSET, HSETNX
  std::string key;
  std::vector<std::string> pairs;  // field, value, ...
  int reply = added;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("p", pairs), f("r", reply);
  }
};

struct HdelCommand : write_command<HdelCommand> {
  static constexpr std::string_view name = "hdel";
  std::string key;
  std::vector<std::string> fields;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("f", fields);
  }
};

struct HincrbyCommand : write_command<HincrbyCommand> {
  static constexpr std::string_view name = "hincrby";
  std::string key, field;
  long long by = 0;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("f", field), f("by", by);
  }
};

struct HincrbyfloatCommand : write_command<HincrbyfloatCommand> {
  static constexpr std::string_view name = "hincrbyfloat";
  std::string key, field, by;
  std::optional<std::string> check(const KvState& s, const write_context& c) const;
  std::string run(KvState& s, const write_context& c) const;
  template <class F>
  void visit_fields(F&& f) {
    f("k", key), f("f", field), f("by", by);
  }
};

// Any single write, as parsed from a request.
using write_op = std::variant<SetCommand, MsetCommand, DelCommand, GetdelCommand, GetexCommand,
                              IncrbyCommand, IncrbyfloatCommand, AppendCommand, SetrangeCommand,
                              ExpireCommand, PersistCommand, RenameCommand, FlushallCommand,
                              HsetCommand, HdelCommand, HincrbyCommand, HincrbyfloatCommand>;

// A read inside a MULTI batch: run at the batch's time by the read handler of argv[0].
struct read_op {
  args argv;
};
// A command of a batch whose reply was known when it was queued (e.g. a syntax error).
struct fixed_reply {
  std::string reply;
};
using batch_item = std::variant<write_op, read_op, fixed_reply>;

// EXEC: the whole batch in one record, so it is atomic across a crash as well as live. If a
// watched key changed since WATCH (its version differs), validate() rejects it with "WATCHED"
// and nothing is written: the client gets a null array.
struct ExecCommand {
  static constexpr std::string_view name = "exec";
  static constexpr bool atomic_apply = true;
  std::vector<batch_item> items;
  std::vector<std::pair<std::string, std::uint64_t>> watched;  // key, version seen (0: absent)
  void validate(const KvState& s, const prevalent::Context& c) const;
  std::string apply(KvState& s, const prevalent::Context& c) const;
};
void to_json(nlohmann::json& j, const ExecCommand& c);
void from_json(const nlohmann::json& j, ExecCommand& c);
inline constexpr std::string_view watched_changed = "WATCHED";

// Consecutive writes one client pipelined (no MULTI), journaled as one record: each runs as
// its own command would (an error leaves the state as it was and is that command's reply) and
// the replies come back one per write. Fewer records and completions per pipelined request;
// the batch is also atomic across a crash, which no client relies on.
struct BatchCommand {
  static constexpr std::string_view name = "batch";
  static constexpr bool atomic_apply = true;
  std::vector<write_op> ops;
  std::vector<std::string> apply(KvState& s, const prevalent::Context& c) const;
};
void to_json(nlohmann::json& j, const BatchCommand& c);
void from_json(const nlohmann::json& j, BatchCommand& c);

// Issued by the server's timer: removes up to `limit` keys whose deadline has passed at the
// Context's time. Rejected (nothing written) when none has.
struct ExpireDueCommand {
  static constexpr std::string_view name = "expire_due";
  static constexpr bool atomic_apply = true;
  long long limit = 10000;
  void validate(const KvState& s, const prevalent::Context& c) const;
  long long apply(KvState& s, const prevalent::Context& c) const;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(ExpireDueCommand, limit)
};

// The version WATCH records for `key` at `now_ms` (0: absent).
std::uint64_t key_version(const KvState& s, std::string_view key, long long now_ms);

// Serialization of the commands with visit_fields: byte strings through bytes_to_json.
template <class C>
requires requires(C& c) {
  c.visit_fields([](const char*, auto&) {});
}
void to_json(nlohmann::json& j, const C& c) {
  j = nlohmann::json::object();
  const_cast<C&>(c).visit_fields([&](const char* name, auto& member) {
    using M = std::decay_t<decltype(member)>;
    if constexpr (std::is_same_v<M, std::string>) {
      j[name] = bytes_to_json(member);
    } else if constexpr (std::is_same_v<M, std::vector<std::string>>) {
      auto& arr = j[name] = nlohmann::json::array();
      for (const auto& s : member) arr.push_back(bytes_to_json(s));
    } else {
      j[name] = member;
    }
  });
}
template <class C>
requires requires(C& c) {
  c.visit_fields([](const char*, auto&) {});
}
void from_json(const nlohmann::json& j, C& c) {
  c.visit_fields([&](const char* name, auto& member) {
    using M = std::decay_t<decltype(member)>;
    const auto& v = j.at(name);
    if constexpr (std::is_same_v<M, std::string>) {
      member = bytes_from_json(v);
    } else if constexpr (std::is_same_v<M, std::vector<std::string>>) {
      member.clear();
      for (const auto& s : v) member.push_back(bytes_from_json(s));
    } else {
      v.get_to(member);
    }
  });
}

}  // namespace kv
