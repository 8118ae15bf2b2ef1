// How a typed command becomes a journal payload and back: the envelope
// {"cmd": name, "v": version, "args": <the command as nlohmann serializes it>} in the store's
// codec (docs/FORMAT.md), and dispatch on the stored name during replay.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "prevalent/codec.hpp"
#include "prevalent/command.hpp"
#include "prevalent/detail/replay_hooks.hpp"
#include "prevalent/error.hpp"
#include "prevalent/journal_info.hpp"

namespace prevalent {

// The binary envelope's bytes before the arguments, the same for every command of type C:
// a 3-entry map holding "cmd" and "v", then the key "args". Built once per type and codec, so
// that encoding a command builds no envelope tree.
template <class C>
const std::string& binary_envelope_prefix(codec c) {
  static const std::array<std::string, 2> prefixes = [] {
    std::array<std::string, 2> out;
    const codec codecs[2] = {codec::cbor, codec::msgpack};
    for (std::size_t i = 0; i < 2; ++i) {
      out[i] = encode({{"cmd", std::string_view(C::name)}, {"v", command_version<C>()}}, codecs[i]);
      out[i][0] = static_cast<char>(out[i][0] + 1);  // fixmap of 2 -> 3 (0xa2/0x82 -> 0xa3/0x83)
      encode_to(out[i], "args", codecs[i]);
    }
    return out;
  }();
  return prefixes[c == codec::cbor ? 0 : 1];
}

// The arguments of `command` as nlohmann serializes it; {} for an empty command without a
// serializer of its own.
template <class C>
nlohmann::json command_args(const C& command) {
  if constexpr (json_serializable<C>)
    return nlohmann::json(command);
  else
    return nlohmann::json::object();
}

// The JSON envelope's bytes before the arguments: {"cmd":"<name>","v":<version>,"args":
template <class C>
const std::string& json_envelope_prefix() {
  static const std::string prefix = "{\"cmd\":" + nlohmann::json(std::string_view(C::name)).dump() +
                                    ",\"v\":" + std::to_string(command_version<C>()) + ",\"args\":";
  return prefix;
}

template <class C>
std::string encode_command(const C& command, codec c) {
  std::string out;
  if (c == codec::json) {
    // {"cmd":"<name>","v":<version>,"args":<command>}, by hand so no envelope tree is built.
    out = json_envelope_prefix<C>();
    out += command_args(command).dump();
    out += '}';
    return out;
  }
  out = binary_envelope_prefix<C>(c);
  encode_to(out, command_args(command), c);
  return out;
}

// Decodes the arguments of command C, upgrading them first if they come from an older version.
template <class C>
C decode_command_args(nlohmann::json args, int version) {
  if constexpr (upgradable<C>) {
    if (version < command_version<C>()) C::upgrade(args, version);
  }
  if constexpr (json_serializable<C>) {
    return args.template get<C>();
  } else {
    // Empty command: its arguments must be an object (throws json::type_error otherwise);
    // members are ignored, as NLOHMANN_DEFINE_TYPE_* ignores unknown ones.
    (void)args.template get_ref<const nlohmann::json::object_t&>();
    return C{};
  }
}

// "<file> at offset <n>: record <seq>", for messages.
inline std::string describe_record(const record_view& r) {
  return r.file + " at offset " + std::to_string(r.offset) + ": record " + std::to_string(r.seq);
}

// Throws errc::incompatible_version, naming the record and both versions, unless a record of
// command C (stored under `stored_name`) at `version` can be read: the command's own version,
// or an older one that C::upgrade() takes.
template <class C>
void check_command_version(const record_view& r, const std::string& stored_name, int version) {
  constexpr int ours = command_version<C>();
  if (version == ours || (version < ours && upgradable<C>)) return;
  std::string what = describe_record(r) + ": command \"" + stored_name + "\"";
  if (stored_name != std::string_view(C::name)) what += " (now \"" + std::string(C::name) + "\")";
  what += " has version " + std::to_string(version) + ", ";
  if (version > ours)
    what += "newer than this program's " + std::to_string(ours) +
            "; open the store with the program that wrote it, or a newer one";
  else
    what += "older than this program's " + std::to_string(ours) +
            ", and the command has no `static void upgrade(nlohmann::json& args, int "
            "from_version)` to read it";
  throw error(errc::incompatible_version, what);
}

// What one journal record decodes into before it is applied: one alternative per command
// type (std::monostate: nothing decoded).
template <class... Commands>
using decoded_command = std::variant<std::monostate, Commands...>;

// Decodes record `r` the generic way: the whole envelope becomes a tree, "cmd" picks the
// command type, older versions are upgraded. Serves every form a writer may have produced
// (any key order, whitespace, older versions). Throws errc::unknown_command or
// errc::bad_command_payload naming the record.
template <class... Commands>
void decode_command_generic(const record_view& r, decoded_command<Commands...>& out) {
  auto envelope = decode(r.payload, r.codec);
  auto not_an_envelope = [&] {
    return error(errc::bad_command_payload,
                 describe_record(r) + ": payload is not a command envelope {cmd, v, args} in " +
                     codec_name(r.codec));
  };
  if (!envelope || !envelope->is_object()) throw not_an_envelope();
  // find(), once per member: operator[] would insert a missing member.
  const auto cmd = envelope->find("cmd"), args = envelope->find("args"), v = envelope->find("v");
  if (cmd == envelope->end() || !cmd->is_string() || args == envelope->end())
    throw not_an_envelope();
  const std::string& name = cmd->template get_ref<const std::string&>();
  const int version = v != envelope->end() && v->is_number_integer() ? v->template get<int>() : 1;

  auto try_one = [&]<class C>(C*) {
    if (!command_answers_to<C>(name)) return false;
    check_command_version<C>(r, name, version);
    try {
      // Moved, not copied: the envelope is thrown away after this record.
      out.template emplace<C>(decode_command_args<C>(std::move(*args), version));
    } catch (const nlohmann::json::exception& e) {
      throw error(errc::bad_command_payload, describe_record(r) + ": arguments of \"" + name +
                                                 "\" do not decode: " + e.what());
    }
    return true;
  };
  if (!(try_one(static_cast<Commands*>(nullptr)) || ...)) {
    std::string known;
    ((known += (known.empty() ? "" : ", ") + std::string(Commands::name)), ...);
    throw error(errc::unknown_command, describe_record(r) + ": unknown command \"" + name +
                                           "\" (this store knows: " + known + ")");
  }
}

// The envelope bytes before the arguments of every command of the store at its current
// version, per codec: what encode_command writes. Built once per store type.
template <class... Commands>
struct envelope_prefixes {
  std::array<std::string, sizeof...(Commands)> json{json_envelope_prefix<Commands>()...};
  std::array<std::string, sizeof...(Commands)> cbor{
      binary_envelope_prefix<Commands>(codec::cbor)...};
  std::array<std::string, sizeof...(Commands)> msgpack{
      binary_envelope_prefix<Commands>(codec::msgpack)...};

  static const envelope_prefixes& get() {
    static const envelope_prefixes table;
    return table;
  }
  const std::array<std::string, sizeof...(Commands)>* of(codec c) const {
    switch (c) {
      case codec::json: return &json;
      case codec::cbor: return &cbor;
      case codec::msgpack: return &msgpack;
    }
    return nullptr;
  }
};

// Decodes record `r` the fast way, if it has the form encode_command writes for one of the
// commands at its current version: the envelope's leading bytes are compared with that
// command's (envelope_prefixes), and only the arguments are decoded, straight into the command
// type. Returns false, with `out` untouched, for any other form and for arguments that do not
// decode: decode_command_generic then decides (and words the error exactly as it always has).
template <class... Commands>
bool decode_command_fast(const record_view& r, decoded_command<Commands...>& out) {
  const auto* prefixes = envelope_prefixes<Commands...>::get().of(r.codec);
  if (!prefixes) return false;
  const byte_view payload = r.payload;
  std::size_t index = 0;
  bool decoded = false;
  auto try_one = [&]<class C>(C*) {
    const std::string& prefix = (*prefixes)[index++];
    // JSON: the arguments, then the envelope's closing brace, last.
    const std::size_t tail = r.codec == codec::json ? 1 : 0;
    if (payload.size() <= prefix.size() + tail ||
        std::memcmp(payload.data(), prefix.data(), prefix.size()) != 0)
      return false;                                  // not this command: try the next
    if (tail && payload.back() != '}') return true;  // this command, but another form
    auto args =
        decode(payload.subspan(prefix.size(), payload.size() - prefix.size() - tail), r.codec);
    if (!args) return true;  // not a single value: another form, or damage
    try {
      out.template emplace<C>(decode_command_args<C>(std::move(*args), command_version<C>()));
      decoded = true;
    } catch (const nlohmann::json::exception&) {
      out.template emplace<std::monostate>();
    }
    return true;
  };
  (try_one(static_cast<Commands*>(nullptr)) || ...);
  return decoded;
}

// Decodes record `r`: the fast way where it can, the generic way otherwise.
template <class... Commands>
void decode_command(const record_view& r, decoded_command<Commands...>& out) {
  if (!decode_command_fast(r, out)) decode_command_generic(r, out);
}

// Applies a decoded command to `state` with r's context; nothing for an empty one.
template <class State, class... Commands>
void apply_decoded(State& state, decoded_command<Commands...>& command, const record_view& r) {
  const Context ctx(r.seq, r.timestamp_ns);
  std::visit(
      [&]<class C>(C& c) {
        if constexpr (!std::is_same_v<C, std::monostate>) c.apply(state, ctx);
      },
      command);
}

// Replays one journal record onto `state` by dispatching on the stored command name. Throws
// errc::unknown_command or errc::bad_command_payload naming the record.
template <class State, class... Commands>
void replay_command(State& state, const record_view& r) {
  decoded_command<Commands...> command;
  decode_command(r, command);
  apply_decoded(state, command, r);
}

// The slots the replay pipeline decodes a batch of records into (replay_hooks.hpp), for a
// store of State and Commands: reused from batch to batch.
template <class State, class... Commands>
class decoded_slots final : public detail::command_slots {
 public:
  explicit decoded_slots(State& state) : state_(state) {}
  void reserve(std::size_t n) override {
    if (slots_.size() < n) slots_.resize(n);
  }
  void decode(std::size_t i, const record_view& r) override {
    try {
      decode_command(r, slots_[i]);
    } catch (...) {
      slots_[i].template emplace<std::monostate>();
      throw;
    }
  }
  // The command stays in its slot until the next decode into it destroys it, usually on a
  // decoder thread: applying, which every record waits for, frees nothing.
  void apply(std::size_t i, const record_view& r) override { apply_decoded(state_, slots_[i], r); }
  void clear() override {
    for (auto& s : slots_) s.template emplace<std::monostate>();
  }

 private:
  State& state_;
  std::vector<decoded_command<Commands...>> slots_;
};

}  // namespace prevalent
