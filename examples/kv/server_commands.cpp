// The server commands of a connection: PING, ECHO, SELECT, AUTH, HELLO, CLIENT, CONFIG,
// COMMAND, TIME, LASTSAVE, INFO, SAVE/BGSAVE, MULTI/EXEC/DISCARD, WATCH/UNWATCH, RESET, and
// SCAN with its cursors.
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "connection.hpp"
#include "glob.hpp"
#include "redis_number.hpp"
#include "replication.hpp"
#include "reply.hpp"
#include "scan.hpp"
#include "server.hpp"

namespace kv {
namespace {

constexpr std::string_view redis_version = "7.0.15";

std::string err(std::string_view message) { return reply::error_text(message); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string unknown_subcommand(const args& a) {
  std::string sub = a[1].substr(0, 128);
  sub = sub.c_str();
  return err("ERR unknown subcommand '" + sub + "'. Try " + upper(a[0]) + " HELP.");
}

std::string command_info(const command_spec& spec) {
  std::string out;
  reply::array(out, 10);
  reply::bulk(out, spec.name);
  reply::integer(out, spec.arity);
  std::vector<std::string_view> flags;
  for (std::size_t at = 0; at < spec.flags.size();) {
    std::size_t end = spec.flags.find(' ', at);
    if (end == std::string_view::npos) end = spec.flags.size();
    if (end > at) flags.push_back(spec.flags.substr(at, end - at));
    at = end + 1;
  }
  reply::array(out, flags.size());
  for (auto f : flags) reply::simple(out, f);
  reply::integer(out, spec.first_key);
  reply::integer(out, spec.last_key);
  reply::integer(out, spec.key_step);
  for (int i = 0; i < 4; ++i) reply::array(out, 0);  // ACL categories, tips, key specs, subcommands
  return out;
}

std::string time_reply() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::string out;
  reply::array(out, 2);
  reply::bulk(out, std::to_string(us / 1000000));
  reply::bulk(out, std::to_string(us % 1000000));
  return out;
}

bool valid_client_name(const std::string& name) {
  for (const char c : name)
    if (c < '!' || c > '~') return false;
  return true;
}

}  // namespace

long long wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// INFO's text for the sections asked for; `keys`/`expiring` from a query.
std::string info_text(Server& server, const args& a, std::size_t keys, std::size_t expiring) {
  auto wanted = [&](std::string_view section) {
    if (a.size() == 1) return true;
    for (std::size_t i = 1; i < a.size(); ++i)
      if (iequals(a[i], section) || iequals(a[i], "all") || iequals(a[i], "everything") ||
          iequals(a[i], "default"))
        return true;
    return false;
  };
  const auto& o = server.options();
  const auto& st = server.stats();
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now() - server.started())
                      .count();
  std::string s;
  auto section = [&](std::string_view name) {
    if (!s.empty()) s += "\r\n";
    s += "# ";
    s += name;
    s += "\r\n";
  };
  auto field = [&](std::string_view k, const std::string& v) {
    s += k;
    s += ':';
    s += v;
    s += "\r\n";
  };
  if (wanted("server")) {
    section("Server");
    field("redis_version", std::string(redis_version));
    field("redis_mode", "standalone");
    field("arch_bits", "64");
    field("multiplexing_api", "epoll");
    field("process_id", std::to_string(::getpid()));
    field("tcp_port", std::to_string(server.port()));
    field("uptime_in_seconds", std::to_string(up));
    field("uptime_in_days", std::to_string(up / 86400));
    field("executable", "prevalent-kv");
    field("config_file", "");
  }
  if (wanted("clients")) {
    section("Clients");
    field("connected_clients", std::to_string(server.connection_count()));
    field("blocked_clients", "0");
    field("maxclients", std::to_string(o.max_clients));
  }
  if (wanted("persistence")) {
    section("Persistence");
    field("loading", "0");
    field("rdb_changes_since_last_save", std::to_string(st.changes_since_save));
    field("rdb_bgsave_in_progress", st.save_in_progress ? "1" : "0");
    field("rdb_last_save_time", std::to_string(st.last_save_unix));
    field("rdb_last_bgsave_status", st.last_save_ok ? "ok" : "err");
    field("aof_enabled", "1");
    field("aof_last_write_status", st.last_write_error.empty() ? "ok" : "err");
    field("prevalent_dir", o.dir);
    field("prevalent_sync", o.sync);
    field("prevalent_codec", o.codec);
    field("prevalent_last_sequence", std::to_string(server.store().sync().last_sequence()));
    field("prevalent_durable_sequence", std::to_string(server.store().sync().durable_sequence()));
    if (!st.last_write_error.empty()) field("prevalent_write_error", st.last_write_error);
  }
  if (wanted("stats")) {
    section("Stats");
    field("total_connections_received", std::to_string(st.connections_received));
    field("total_commands_processed", std::to_string(st.commands_processed));
    field("instantaneous_ops_per_sec", "0");
    field("rejected_connections", std::to_string(st.rejected_connections));
    field("expired_keys", std::to_string(st.expired_keys));
    field("evicted_keys", "0");
    field("keyspace_hits", "0");
    field("keyspace_misses", "0");
    // The store's metrics (prevalent/metrics.hpp; all of them over HTTP with --metrics-port).
    const prevalent::store_metrics m = server.store().sync().metrics();
    auto usec = [](double seconds) {
      return std::to_string(static_cast<long long>(seconds * 1e6));
    };
    field("prevalent_commands_applied", std::to_string(m.commands_applied));
    field("prevalent_commands_rejected", std::to_string(m.commands_rejected));
    field("prevalent_commands_failed", std::to_string(m.commands_failed));
    field("prevalent_execute_durable_p99_usec",
          usec(prevalent::quantile_bound(m.execute_durable_seconds, 0.99)));
    field("prevalent_journal_syncs", std::to_string(m.journal_syncs));
    field("prevalent_journal_written_bytes", std::to_string(m.journal_written_bytes));
    field("prevalent_journal_bytes", std::to_string(m.journal_bytes));
    field("prevalent_journal_segments", std::to_string(m.journal_segments));
    field("prevalent_snapshots", std::to_string(m.snapshot_seconds.count));
    field("prevalent_recovery_ms",
          std::to_string(static_cast<long long>(m.recovery_seconds * 1e3)));
  }
  if (wanted("replication")) {
    section("Replication");
    auto put = [&](std::string_view k, const std::string& v) { field(k, v); };
    if (server.replication() != nullptr)
      server.replication()->info(put);
    else
      standalone_info(server.store(), put);
  }
  if (wanted("keyspace")) {
    section("Keyspace");
    if (keys > 0)
      field("db0",
            "keys=" + std::to_string(keys) + ",expires=" + std::to_string(expiring) + ",avg_ttl=0");
  }
  return s;
}

// WAIT's refusals, Redis 7.0's texts (nullopt: it may wait).
std::optional<std::string> Connection::wait_error(const args& a) {
  if (server_.read_only())
    return err(
        "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 "
        "if a replica is configured to be writable (which is not the default) writes to "
        "replicas are just local and are not propagated.");
  const auto n = parse_ll(a[1]);
  if (!n) return err(reply::not_integer);
  const auto timeout = parse_ll(a[2]);
  if (!timeout) return err("ERR timeout is not an integer or out of range");
  if (*timeout < 0) return err("ERR timeout is negative");
  return std::nullopt;
}

std::optional<std::string> Connection::server_reply(const command_spec& spec, args& a,
                                                    std::size_t slot) {
  const std::string_view name = spec.name;
  if (name == "ping") {
    if (a.size() > 2) return arity_error("ping");
    if (a.size() == 2) return "$" + std::to_string(a[1].size()) + "\r\n" + a[1] + "\r\n";
    return "+PONG\r\n";
  }
  if (name == "echo") return "$" + std::to_string(a[1].size()) + "\r\n" + a[1] + "\r\n";
  if (name == "select") {
    const auto db = parse_ll(a[1]);
    if (!db) return err(reply::not_integer);
    if (*db != 0) return err("ERR DB index is out of range");
    return "+OK\r\n";
  }
  if (name == "time") return time_reply();
  if (name == "lastsave") return ":" + std::to_string(server_.stats().last_save_unix) + "\r\n";
  if (name == "auth") {
    if (a.size() > 3) return err(reply::syntax);
    const std::string& pass = a.back();
    const bool user_ok = a.size() == 2 || a[1] == "default";
    const auto& required = server_.options().requirepass;
    if (required.empty() && a.size() == 2)
      return err(
          "ERR AUTH <password> called without any password configured for the default user. "
          "Are you sure your configuration is correct?");
    if (!user_ok || (!required.empty() && pass != required))
      return err("WRONGPASS invalid username-password pair or user is disabled.");
    authenticated_ = true;
    parser_.set_unauthenticated(false);
    return "+OK\r\n";
  }
  if (name == "hello") {
    std::size_t j = 1;
    if (a.size() >= 2) {
      const auto ver = parse_ll(a[1]);
      if (!ver) return err("ERR Protocol version is not an integer or out of range");
      if (*ver != 2) return err("NOPROTO unsupported protocol version");
      j = 2;
    }
    const std::string *user = nullptr, *pass = nullptr, *setname = nullptr;
    for (; j < a.size(); ++j) {
      const std::size_t more = a.size() - 1 - j;
      if (iequals(a[j], "auth") && more >= 2) {
        user = &a[j + 1];
        pass = &a[j + 2];
        j += 2;
      } else if (iequals(a[j], "setname") && more >= 1) {
        setname = &a[++j];
      } else {
        return err("ERR Syntax error in HELLO option '" + std::string(a[j].c_str()) + "'");
      }
    }
    if (user != nullptr) {
      const auto& required = server_.options().requirepass;
      if (*user != "default" || (!required.empty() && *pass != required))
        return err("WRONGPASS invalid username-password pair or user is disabled.");
      authenticated_ = true;
      parser_.set_unauthenticated(false);
    }
    if (!authenticated_)
      return err(
          "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
          "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
          "select the RESP protocol version at the same time");
    if (setname != nullptr) {
      if (!valid_client_name(*setname))
        return err("ERR Client names cannot contain spaces, newlines or special characters.");
      name_ = *setname;
    }
    std::string out;
    reply::array(out, 14);
    reply::bulk(out, "server");
    reply::bulk(out, "redis");
    reply::bulk(out, "version");
    reply::bulk(out, redis_version);
    reply::bulk(out, "proto");
    reply::integer(out, 2);
    reply::bulk(out, "id");
    reply::integer(out, static_cast<long long>(id_));
    reply::bulk(out, "mode");
    reply::bulk(out, "standalone");
    reply::bulk(out, "role");
    reply::bulk(out, server_.read_only() ? "replica" : "master");
    reply::bulk(out, "modules");
    reply::array(out, 0);
    return out;
  }
  if (name == "client") {
    const std::string sub = lower(a[1]);
    if (sub == "id")
      return a.size() == 2 ? ":" + std::to_string(id_) + "\r\n" : arity_error("client|id");
    if (sub == "getname") {
      if (a.size() != 2) return arity_error("client|getname");
      if (name_.empty()) return "$-1\r\n";
      return "$" + std::to_string(name_.size()) + "\r\n" + name_ + "\r\n";
    }
    if (sub == "setname") {
      if (a.size() != 3) return arity_error("client|setname");
      if (!valid_client_name(a[2]))
        return err("ERR Client names cannot contain spaces, newlines or special characters.");
      name_ = a[2];
      return "+OK\r\n";
    }
    if (sub == "info" || sub == "list") {
      std::string line = "id=" + std::to_string(id_) + " name=" + name_ +
                         " db=0 multi=" + (in_multi_ ? std::to_string(queued_.size()) : "-1") +
                         " cmd=client|" + sub + "\n";
      return "$" + std::to_string(line.size()) + "\r\n" + line + "\r\n";
    }
    return unknown_subcommand(a);
  }
  if (name == "config") {
    const std::string sub = lower(a[1]);
    if (sub == "get") {
      if (a.size() < 3) return arity_error("config|get");
      const auto& o = server_.options();
      const std::vector<std::pair<std::string, std::string>> params = {
          {"save", ""},
          {"appendonly", "yes"},
          {"appendfsync", o.sync == "always" ? "always"
                          : o.sync == "none" ? "no"
                                             : "everysec"},
          {"databases", "1"},
          {"port", std::to_string(server_.port())},
          {"bind", o.bind},
          {"dir", o.dir},
          {"maxclients", std::to_string(o.max_clients)},
          {"timeout", std::to_string(o.idle_timeout_s)},
          {"maxmemory", "0"},
          {"proto-max-bulk-len", std::to_string(o.limits.max_bulk_bytes)},
          {"unixsocket", o.unixsocket},
      };
      std::vector<const std::pair<std::string, std::string>*> found;
      for (const auto& p : params)
        for (std::size_t i = 2; i < a.size(); ++i)
          if (glob_match(lower(a[i]), p.first)) {
            found.push_back(&p);
            break;
          }
      std::string out;
      reply::array(out, found.size() * 2);
      for (const auto* p : found) {
        reply::bulk(out, p->first);
        reply::bulk(out, p->second);
      }
      return out;
    }
    if (sub == "set") {
      if (a.size() < 4) return arity_error("config|set");
      return err("ERR Unknown option or number of arguments for CONFIG SET - '" +
                 std::string(a[2].c_str()) + "'");
    }
    if (sub == "resetstat") return "+OK\r\n";
    return unknown_subcommand(a);
  }
  if (name == "command") {
    const auto& all = all_commands();
    if (a.size() == 1) {
      std::string out;
      reply::array(out, all.size());
      for (const auto& c : all) out += command_info(c);
      return out;
    }
    const std::string sub = lower(a[1]);
    if (sub == "count") {
      if (a.size() != 2) return arity_error("command|count");
      return ":" + std::to_string(all.size()) + "\r\n";
    }
    if (sub == "info" || sub == "docs") {
      std::vector<const command_spec*> specs;
      if (a.size() == 2) {
        for (const auto& c : all) specs.push_back(&c);
      } else {
        for (std::size_t i = 2; i < a.size(); ++i) specs.push_back(find_command(a[i]));
      }
      std::string out;
      if (sub == "info") {
        reply::array(out, specs.size());
        for (const auto* c : specs) {
          if (c == nullptr)
            reply::null_bulk(out);
          else
            out += command_info(*c);
        }
      } else {  // DOCS: a map of name -> (empty) doc, for the commands known
        std::size_t n = 0;
        for (const auto* c : specs) n += c != nullptr;
        reply::array(out, 2 * n);
        for (const auto* c : specs)
          if (c != nullptr) {
            reply::bulk(out, c->name);
            reply::array(out, 0);
          }
      }
      return out;
    }
    if (sub == "list") {
      std::string out;
      reply::array(out, all.size());
      for (const auto& c : all) reply::bulk(out, c.name);
      return out;
    }
    return unknown_subcommand(a);
  }
  if (name == "multi") return err("ERR MULTI calls can not be nested");  // only inside MULTI
  if (name == "bgsave" && a.size() > 1 && (a.size() > 2 || !iequals(a[1], "schedule")))
    return err(reply::syntax);
  if (name == "save" || name == "bgsave") {
    // Inside MULTI (or as BGSAVE): start it, answer at once.
    if (server_.stats().save_in_progress) return err("ERR Background save already in progress");
    server_.save([](std::string) {});
    return "+Background saving started\r\n";
  }
  if (name == "info") return "$0\r\n\r\n";  // inside MULTI only; see run_server
  if (name == "role") {
    if (server_.replication() != nullptr) return server_.replication()->role_reply();
    std::string out;
    reply::array(out, 3);
    reply::bulk(out, "master");
    reply::integer(out, static_cast<long long>(server_.store().sync().last_sequence()));
    reply::array(out, 0);
    return out;
  }
  if (name == "wait") {  // inside MULTI: the count now, without waiting (as Redis does)
    if (auto refused = wait_error(a)) return refused;
    const Replication* r = server_.replication();
    return ":" + std::to_string(r ? r->replicas_at(last_write_seq_) : 0) + "\r\n";
  }
  (void)slot;
  return err("ERR unknown command");
}

void Connection::run_server(const command_spec& spec, args& a, std::size_t slot) {
  const std::string_view name = spec.name;
  if (name == "multi") {
    if (in_multi_) return fill(slot, err("ERR MULTI calls can not be nested"));
    in_multi_ = true;
    multi_failed_ = false;
    queued_.clear();
    return fill(slot, "+OK\r\n");
  }
  if (name == "exec") {
    if (!in_multi_) return fill(slot, err("ERR EXEC without MULTI"));
    in_multi_ = false;
    if (multi_failed_) {
      queued_.clear();
      watched_.clear();
      return fill(slot, err("EXECABORT Transaction discarded because of previous errors."));
    }
    return run_exec(slot);
  }
  if (name == "discard") {
    if (!in_multi_) return fill(slot, err("ERR DISCARD without MULTI"));
    in_multi_ = false;
    queued_.clear();
    watched_.clear();
    return fill(slot, "+OK\r\n");
  }
  if (name == "unwatch") {
    watched_.clear();
    return fill(slot, "+OK\r\n");
  }
  if (name == "reset") {
    in_multi_ = false;
    queued_.clear();
    watched_.clear();
    name_.clear();
    authenticated_ = server_.options().requirepass.empty();
    parser_.set_unauthenticated(!authenticated_);
    return fill(slot, "+RESET\r\n");
  }
  if (name == "watch") {
    if (in_multi_) return fill(slot, err("ERR WATCH inside MULTI is not allowed"));
    // The versions are read under the store's lock in the initiating call (AsyncStore runs a
    // query's function there), so a pipelined EXEC right after sees them.
    auto versions = std::make_shared<std::vector<std::pair<std::string, std::uint64_t>>>();
    const long long now = wall_ms();
    args keys(a.begin() + 1, a.end());
    server_.store().async_query(
        [versions, keys, now](const KvState& s) {
          versions->clear();
          for (const auto& k : keys) versions->emplace_back(k, key_version(s, k, now));
          return 0;
        },
        [self = shared_from_this(), slot](std::error_code ec, int) {
          self->fill(slot, ec ? err("ERR " + ec.message()) : "+OK\r\n");
        });
    watched_.insert(watched_.end(), versions->begin(), versions->end());
    return;
  }
  if (name == "save") {
    server_.save([self = shared_from_this(), slot](std::string error) {
      self->fill(slot, error.empty() ? "+OK\r\n" : err("ERR " + error));
    });
    return;
  }
  if (name == "wait") {
    if (auto refused = wait_error(a)) return fill(slot, std::move(*refused));
    const long long timeout = *parse_ll(a[2]);
    // 0, or more than ~30 years (which would overflow the clock): no limit.
    const auto deadline =
        timeout == 0 || timeout > 1'000'000'000'000LL
            ? std::chrono::steady_clock::time_point::max()
            : std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
    return run_wait(*parse_ll(a[1]), deadline, slot);
  }
  if (name == "info") {
    const long long now = wall_ms();
    auto argv = std::make_shared<args>(a);
    server_.store().async_query(
        [now](const KvState& s) { return std::make_pair(s.live_size(now), s.expiring()); },
        [self = shared_from_this(), slot, argv](std::error_code ec,
                                                std::pair<std::size_t, std::size_t> counts) {
          if (ec) return self->fill(slot, err("ERR " + ec.message()));
          std::string text = info_text(self->server_, *argv, counts.first, counts.second);
          self->fill(slot, "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n");
        });
    return;
  }
  auto r = server_reply(spec, a, slot);
  fill(slot, r ? std::move(*r) : std::string("+OK\r\n"));
}

}  // namespace kv
