// How a typed command becomes a journal payload and back: the envelope
// {"cmd": name, "v": version, "args": <the command as nlohmann serializes it>} in the store's
// codec (docs/FORMAT.md), and dispatch on the stored name during replay.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "prevalent/codec.hpp"
#include "prevalent/command.hpp"
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
    for (int i = 0; i < 2; ++i) {
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

template <class C>
std::string encode_command(const C& command, codec c) {
  std::string out;
  if (c == codec::json) {
    // {"cmd":"<name>","v":<version>,"args":<command>}, by hand so no envelope tree is built.
    out = "{\"cmd\":";
    out += nlohmann::json(std::string_view(C::name)).dump();
    out += ",\"v\":" + std::to_string(command_version<C>()) + ",\"args\":";
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

// Replays one journal record onto `state` by dispatching on the stored command name. Throws
// errc::unknown_command or errc::bad_command_payload naming the record.
template <class State, class... Commands>
void replay_command(State& state, const record_view& r) {
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
  const Context ctx(r.seq, r.timestamp_ns);

  auto try_one = [&]<class C>(C*) {
    if (name != std::string_view(C::name)) return false;
    if (version > command_version<C>())
      throw error(errc::bad_command_payload, describe_record(r) + ": command \"" + name +
                                                 "\" has version " + std::to_string(version) +
                                                 ", newer than this program's " +
                                                 std::to_string(command_version<C>()));
    C command = [&] {
      try {
        // Moved, not copied: the envelope is thrown away after this record.
        return decode_command_args<C>(std::move(*args), version);
      } catch (const nlohmann::json::exception& e) {
        throw error(errc::bad_command_payload, describe_record(r) + ": arguments of \"" + name +
                                                   "\" do not decode: " + e.what());
      }
    }();
    command.apply(state, ctx);
    return true;
  };
  if (!(try_one(static_cast<Commands*>(nullptr)) || ...)) {
    std::string known;
    ((known += (known.empty() ? "" : ", ") + std::string(Commands::name)), ...);
    throw error(errc::unknown_command, describe_record(r) + ": unknown command \"" + name +
                                           "\" (this store knows: " + known + ")");
  }
}

}  // namespace prevalent
