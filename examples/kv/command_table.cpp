#include "command_table.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "reply.hpp"

namespace kv {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

const std::vector<command_spec>& all_commands() {
  static const std::vector<command_spec> table = [] {
    std::vector<command_spec> t;
    add_string_commands(t);
    add_key_commands(t);
    add_hash_commands(t);
    add_server_commands(t);
    return t;
  }();
  return table;
}

const command_spec* find_command(std::string_view name) {
  static const std::unordered_map<std::string, const command_spec*> index = [] {
    std::unordered_map<std::string, const command_spec*> m;
    for (const auto& spec : all_commands()) m.emplace(std::string(spec.name), &spec);
    return m;
  }();
  if (name.size() > 32) return nullptr;
  const auto it = index.find(lower(name));
  return it == index.end() ? nullptr : it->second;
}

std::string arity_error(std::string_view name) {
  return reply::error_text("ERR wrong number of arguments for '" + std::string(name) + "' command");
}

namespace {
// printf("%.*s") of a Redis string: stops at a NUL byte.
std::string c_string(std::string_view s, std::size_t max) {
  s = s.substr(0, std::min(max, s.size()));
  if (const auto nul = s.find('\0'); nul != std::string_view::npos) s = s.substr(0, nul);
  return std::string(s);
}
}  // namespace

std::string unknown_command_error(const args& argv) {
  std::string list;
  for (std::size_t i = 1; i < argv.size() && list.size() < 128; ++i)
    list += "'" + c_string(argv[i], 128 - list.size()) + "' ";
  return reply::error_text("ERR unknown command '" + c_string(argv[0], 128) +
                           "', with args beginning with: " + list);
}

void run_read(const KvState& s, const args& argv, long long now_ms, std::string& out) {
  const command_spec* spec = find_command(argv[0]);
  if (spec == nullptr || spec->read == nullptr) {
    out += unknown_command_error(argv);
    return;
  }
  spec->read(s, argv, now_ms, out);
}

}  // namespace kv
