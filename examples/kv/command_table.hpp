// The command table of prevalent-kv: for each Redis command its name, arity (Redis's
// convention: n exactly, -n at least n, counting the name), kind, and what runs it. Reads run
// in a query (or inside an EXEC batch) against a const state; writes are parsed from the
// request into a typed command (kv_commands.hpp) or an error reply, checked against nothing
// but the arguments, so nothing is journaled for a malformed request. Server commands (PING,
// MULTI, INFO, ...) are run by the connection itself.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv_commands.hpp"

namespace kv {

enum class command_kind { read, write, server };

using read_handler = void (*)(const KvState&, const args&, long long now_ms, std::string& out);

// A parsed write: the command to run, or the error reply to send instead.
struct parsed_write {
  std::optional<write_op> op;
  std::string error;  // a whole reply ("-ERR ...\r\n") when op is empty
};
using write_parser = parsed_write (*)(const args&, long long now_ms);

struct command_spec {
  std::string_view name;  // lower case
  int arity;
  command_kind kind;
  read_handler read = nullptr;
  write_parser parse = nullptr;
  std::string_view flags;  // as COMMAND lists them, space-separated
  int first_key = 0, last_key = 0, key_step = 0;
};

// The command named `name` (any case), or nullptr.
const command_spec* find_command(std::string_view name);
const std::vector<command_spec>& all_commands();
// Whether argv has the arity `spec` wants.
inline bool arity_ok(const command_spec& spec, std::size_t argc) {
  return spec.arity >= 0 ? argc == static_cast<std::size_t>(spec.arity)
                         : argc >= static_cast<std::size_t>(-spec.arity);
}
std::string arity_error(std::string_view name);       // "-ERR wrong number of arguments ..."
std::string unknown_command_error(const args& argv);  // "-ERR unknown command ..."

// Runs the read `argv` (a known read command with a good arity) into `out`.
void run_read(const KvState& s, const args& argv, long long now_ms, std::string& out);

// The groups, each in its own file.
void add_string_commands(std::vector<command_spec>& table);
void add_key_commands(std::vector<command_spec>& table);
void add_hash_commands(std::vector<command_spec>& table);
void add_server_commands(std::vector<command_spec>& table);

// Helpers for the parsers.
std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
inline parsed_write parse_error(std::string_view message) {
  return {std::nullopt, "-" + std::string(message) + "\r\n"};
}

}  // namespace kv
