// EXEC: a MULTI batch as one journaled command (validate checks WATCH; apply runs each queued
// command at the batch's time and concatenates the replies), and its serialization.
#include "command_table.hpp"
#include "reply.hpp"

namespace kv {
namespace {

template <std::size_t I = 0>
void op_from_json(const std::string& name, const nlohmann::json& a, write_op& op) {
  if constexpr (I < std::variant_size_v<write_op>) {
    using C = std::variant_alternative_t<I, write_op>;
    if (name == C::name) {
      op = a.get<C>();
      return;
    }
    op_from_json<I + 1>(name, a, op);
  } else {
    throw std::invalid_argument("kv: unknown command in an exec batch: " + name);
  }
}

nlohmann::json op_to_json(const write_op& op) {
  nlohmann::json out;
  std::visit([&](const auto& cmd) { out = {{"w", cmd.name}, {"a", cmd}}; }, op);
  return out;
}

write_op op_from_json(const nlohmann::json& item) {
  write_op op;
  op_from_json(item.at("w").get<std::string>(), item.at("a"), op);
  return op;
}

std::string run_op(const write_op& op, KvState& s, const write_context& ctx) {
  return std::visit(
      [&](const auto& cmd) {
        if (auto err = cmd.check(s, ctx)) return reply::error_text(*err);
        return cmd.run(s, ctx);
      },
      op);
}

}  // namespace

std::vector<std::string> BatchCommand::apply(KvState& s, const prevalent::Context& c) const {
  const write_context ctx = context_of(c);
  std::vector<std::string> replies;
  replies.reserve(ops.size());
  for (const auto& op : ops) replies.push_back(run_op(op, s, ctx));
  return replies;
}

void to_json(nlohmann::json& j, const BatchCommand& c) {
  j = nlohmann::json::array();
  for (const auto& op : c.ops) j.push_back(op_to_json(op));
}

void from_json(const nlohmann::json& j, BatchCommand& c) {
  c.ops.clear();
  for (const auto& item : j) c.ops.push_back(op_from_json(item));
}

void ExecCommand::validate(const KvState& s, const prevalent::Context& c) const {
  const long long now = context_of(c).now_ms;
  for (const auto& [key, version] : watched)
    if (key_version(s, key, now) != version) throw rejected(std::string(watched_changed));
}

std::string ExecCommand::apply(KvState& s, const prevalent::Context& c) const {
  const write_context ctx = context_of(c);
  std::string out;
  reply::array(out, items.size());
  for (const auto& item : items) {
    if (const auto* op = std::get_if<write_op>(&item)) {
      out += run_op(*op, s, ctx);
    } else if (const auto* read = std::get_if<read_op>(&item)) {
      run_read(s, read->argv, ctx.now_ms, out);
    } else {
      out += std::get<fixed_reply>(item).reply;
    }
  }
  return out;
}

void to_json(nlohmann::json& j, const ExecCommand& c) {
  auto items = nlohmann::json::array();
  for (const auto& item : c.items) {
    if (const auto* op = std::get_if<write_op>(&item)) {
      items.push_back(op_to_json(*op));
    } else if (const auto* read = std::get_if<read_op>(&item)) {
      auto argv = nlohmann::json::array();
      for (const auto& a : read->argv) argv.push_back(bytes_to_json(a));
      items.push_back({{"r", std::move(argv)}});
    } else {
      items.push_back({{"f", bytes_to_json(std::get<fixed_reply>(item).reply)}});
    }
  }
  auto watched = nlohmann::json::array();
  for (const auto& [key, version] : c.watched) watched.push_back({bytes_to_json(key), version});
  j = {{"items", std::move(items)}, {"watched", std::move(watched)}};
}

void from_json(const nlohmann::json& j, ExecCommand& c) {
  c.items.clear();
  for (const auto& item : j.at("items")) {
    if (item.contains("w")) {
      c.items.emplace_back(op_from_json(item));
    } else if (item.contains("r")) {
      read_op r;
      for (const auto& a : item.at("r")) r.argv.push_back(bytes_from_json(a));
      c.items.emplace_back(std::move(r));
    } else {
      c.items.emplace_back(fixed_reply{bytes_from_json(item.at("f"))});
    }
  }
  c.watched.clear();
  for (const auto& w : j.at("watched"))
    c.watched.emplace_back(bytes_from_json(w.at(0)), w.at(1).get<std::uint64_t>());
}

}  // namespace kv
