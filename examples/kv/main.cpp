// prevalent-kv: a Redis-protocol (RESP2) key-value server whose every write is a prevalent
// command, journaled (and, with --sync always, on disk) before the client hears "OK".
//
//   prevalent-kv --dir DIR [--bind 127.0.0.1] [--port 6379] [--unixsocket PATH]
//                [--requirepass PW] [--sync always|interval:MS|none] [--metrics-port N]
//                [--repl-port N] [--acks local|replicated:K[:TIMEOUT_MS]]
//                [--replica-of HOST:PORT] [...]   (--help: all)
//   prevalent-kv --etcd URL --cluster NAME --node NAME --port N --repl-port M [--lease-ttl S]
//                [--advertise HOST] [...]   (a node of a cluster with automatic failover)
//
// Prints "ready port=N" on stdout once it accepts connections (and "repl_port=N" before it
// with --repl-port), progress on stderr. SIGTERM or SIGINT: stop accepting, finish the
// requests in flight, close the store, exit 0. A replica that must install its primary's
// snapshot (too far behind) closes its store, installs it and re-executes itself (same PID,
// same arguments).
#include <fcntl.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <prevalent/prometheus.hpp>

#include "metrics_http.hpp"
#include "replication.hpp"
#include "server.hpp"
#include "startup.hpp"

namespace {

prevalent::sync_policy parse_sync(const std::string& s) {
  if (s == "always") return prevalent::sync_policy::always();
  if (s == "none") return prevalent::sync_policy::none();
  if (s.rfind("interval:", 0) == 0) {
    const std::string digits = s.substr(9);
    long ms = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
    if (ec != std::errc() || end != digits.data() + digits.size() || ms <= 0 || ms > 3'600'000)
      throw std::invalid_argument(
          "--sync interval:MS needs MS a whole number of milliseconds "
          "from 1 to 3600000, not '" +
          digits + "'");
    return prevalent::sync_policy::interval(std::chrono::milliseconds(ms));
  }
  throw std::invalid_argument("--sync must be always, interval:MS or none, not '" + s + "'");
}

prevalent::codec parse_codec(const std::string& s) {
  if (s == "json") return prevalent::codec::json;
  if (s == "cbor") return prevalent::codec::cbor;
  if (s == "msgpack") return prevalent::codec::msgpack;
  throw std::invalid_argument("--codec must be json, cbor or msgpack, not '" + s + "'");
}

// --acks local | replicated:K[:TIMEOUT_MS] (default timeout 5000 ms).
prevalent::ack_policy parse_acks(const std::string& s) {
  if (s == "local") return prevalent::ack_policy::local();
  auto number = [&s](std::string_view digits, long lo, long hi) {
    long v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || end != digits.data() + digits.size() || v < lo || v > hi)
      throw std::invalid_argument(
          "--acks replicated:K[:TIMEOUT_MS] needs K from 1 to 100 and "
          "TIMEOUT_MS from 1 to 3600000, not '" +
          s + "'");
    return v;
  };
  if (s.rfind("replicated:", 0) == 0) {
    const std::string_view rest = std::string_view(s).substr(11);
    const auto colon = rest.find(':');
    const long k = number(rest.substr(0, colon), 1, 100);
    const long ms =
        colon == std::string_view::npos ? 5000 : number(rest.substr(colon + 1), 1, 3'600'000);
    return prevalent::ack_policy::replicated(static_cast<unsigned>(k),
                                             std::chrono::milliseconds(ms));
  }
  throw std::invalid_argument("--acks must be local or replicated:K[:TIMEOUT_MS], not '" + s + "'");
}

// Closes the store, runs `change` on its directory (a failure is logged: the store is as it
// was, or the change is finished by the next open) and re-executes this program with the same
// arguments (same PID), which opens the store again and rejoins. Descriptors are closed on
// exec, so the ports are free for the new image. Used by a replica's snapshot catch-up and
// cut-back (on its link's thread) and by a cluster node whose coordinator callback failed.
[[noreturn]] void close_change_reexec(kv::KvAsyncStore& store, const std::string& why,
                                      const std::function<void()>& change, char** argv) {
  std::cerr << "prevalent-kv: " << why << ": closing the store and restarting" << std::endl;
  try {
    store.close();
    if (change) change();
  } catch (const std::exception& e) {
    std::cerr << "prevalent-kv: " << why << " failed: " << e.what() << std::endl;
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const int fd = std::atoi(entry.path().filename().c_str());
    if (fd > 2) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  std::cout.flush();
  std::cerr.flush();
  ::execv("/proc/self/exe", argv);
  std::cerr << "prevalent-kv: re-executing failed: "
            << std::error_code(errno, std::generic_category()).message() << std::endl;
  std::_Exit(1);
}

// Snapshot catch-up of a replica: installs the primary's snapshot, then restarts.
[[noreturn]] void install_and_reexec(kv::KvAsyncStore& store, const std::string& dir,
                                     const prevalent::repl::detail::snapshot_file& file,
                                     char** argv) {
  close_change_reexec(
      store, "too far behind the primary: installing its snapshot " + file.name,
      [&] {
        prevalent::repl::detail::install_snapshot(prevalent::open_posix_directory(dir), file);
      },
      argv);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"prevalent-kv: a durable Redis-protocol key-value server on a prevalent store"};
  kv::server_options o;
  std::uint64_t snapshot_every_commands = 1'000'000, snapshot_every_bytes = 256ull << 20;
  unsigned snapshot_every_s = 0;
  unsigned keep_snapshots = 2;
  bool compress = false;
  std::size_t max_bulk = o.limits.max_bulk_bytes;
  // Checked after parsing rather than with ->required(): CLI11 reports a missing required
  // option before an unknown one, so a mistyped --dri would read "--dir is required".
  app.add_option("--dir", o.dir, "store directory (created if missing; required)");
  app.add_option("--bind", o.bind, "address to listen on")->capture_default_str();
  app.add_option("--port", o.port, "TCP port (0: any free port; -1: no TCP)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  app.add_option("--unixsocket", o.unixsocket, "also listen on this unix socket");
  app.add_option("--requirepass", o.requirepass, "password clients must AUTH with");
  app.add_option("--sync", o.sync, "always | interval:MS | none")->capture_default_str();
  app.add_option("--codec", o.codec, "journal and snapshot encoding: json | cbor | msgpack")
      ->capture_default_str();
  app.add_option("--snapshot-every-commands", snapshot_every_commands,
                 "snapshot after this many writes (0: off)")
      ->capture_default_str();
  app.add_option("--snapshot-every-bytes", snapshot_every_bytes,
                 "snapshot after this many journal bytes (0: off)")
      ->capture_default_str();
  app.add_option("--snapshot-every-seconds", snapshot_every_s,
                 "snapshot this often if anything changed (0: off)")
      ->capture_default_str();
  app.add_option("--keep-snapshots", keep_snapshots, "snapshots kept on disk")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  app.add_flag("--compress-snapshots", compress, "zstd-compress snapshots");
  std::uint64_t segment_bytes = 64ull << 20;
  app.add_option("--segment-bytes", segment_bytes,
                 "start a new journal segment past this size (small values let retention drop "
                 "segments sooner: tests of snapshot catch-up)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 40));
  bool no_verify = false;
  app.add_flag("--no-verify-encoding", no_verify,
               "apply commands as built, not as decoded from their journal bytes (faster; the "
               "store's verify_encoding off)");
  app.add_option("--max-bulk-bytes", max_bulk, "largest bulk string in a request")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1} << 20, std::size_t{1} << 30));
  app.add_option("--max-array-length", o.limits.max_array_length, "most elements in one request")
      ->capture_default_str();
  app.add_option("--max-inline-bytes", o.limits.max_inline_bytes,
                 "longest inline command or header line")
      ->capture_default_str();
  app.add_option("--max-pending-bytes", o.max_pending_bytes,
                 "unsent reply bytes per client before its requests are no longer read")
      ->capture_default_str();
  app.add_option("--max-pending-replies", o.max_pending_replies,
                 "requests in flight per client before its requests are no longer read")
      ->capture_default_str();
  app.add_option("--maxclients", o.max_clients, "most clients connected at once")
      ->capture_default_str();
  app.add_option("--timeout", o.idle_timeout_s, "close clients idle this many seconds (0: never)")
      ->capture_default_str();
  int metrics_port = -1;
  app.add_option("--metrics-port", metrics_port,
                 "serve Prometheus metrics over HTTP at /metrics on this port of --bind (0: any "
                 "free port; -1: off)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  int repl_port = -1;
  app.add_option("--repl-port", repl_port,
                 "serve replicas on 127.0.0.1 at this port (0: any free port, printed as "
                 "repl_port=N; -1: off)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  std::string acks = "local";
  app.add_option("--acks", acks,
                 "when a write is acknowledged: local | replicated:K[:TIMEOUT_MS] (K replicas "
                 "have it on disk; else an error after TIMEOUT_MS, default 5000)")
      ->capture_default_str();
  std::string replica_of;
  app.add_option("--replica-of", replica_of,
                 "follow the primary whose --repl-port is at HOST:PORT; writes are refused");
  kv::cluster_config cluster;
  app.add_option("--etcd", cluster.etcd,
                 "automatic failover: etcd's client URL (http://HOST:PORT); needs --cluster, "
                 "--node, a fixed --port and a fixed --repl-port");
  app.add_option("--cluster", cluster.cluster, "with --etcd: the cluster's name (etcd prefix)");
  app.add_option("--node", cluster.node, "with --etcd: this node's name, unique in the cluster");
  app.add_option("--lease-ttl", cluster.lease_ttl,
                 "with --etcd: the etcd lease's TTL in seconds (a dead primary is replaced "
                 "after about this long)")
      ->capture_default_str()
      ->check(CLI::Range(2u, 3600u));
  cluster.advertise = "127.0.0.1";
  app.add_option("--advertise", cluster.advertise,
                 "with --etcd: the host the other nodes and clients reach this node at")
      ->capture_default_str();
  bool show_progress = false;
  app.add_flag("--progress", show_progress,
               "report the open's progress (snapshot, journal) on stderr; on by default when "
               "stderr is a terminal");
  CLI11_PARSE(app, argc, argv);
  if (o.dir.empty()) {
    std::cerr << "prevalent-kv: --dir is required (the store's directory)\n"
              << "Run with --help for more information.\n";
    return 2;
  }
  const bool clustered = !cluster.etcd.empty();
  if (!clustered && (!cluster.cluster.empty() || !cluster.node.empty())) {
    std::cerr << "prevalent-kv: --cluster and --node need --etcd URL\n";
    return 2;
  }
  if (clustered) {
    std::string problem;
    if (cluster.cluster.empty() || cluster.node.empty())
      problem = "--etcd needs --cluster NAME and --node NAME";
    else if (cluster.cluster.find('/') != std::string::npos ||
             cluster.node.find('/') != std::string::npos)
      problem = "--cluster and --node must not contain '/' (they name etcd keys)";
    else if (!replica_of.empty())
      problem = "--etcd cannot be combined with --replica-of (etcd decides whom to follow)";
    else if (repl_port <= 0)
      problem =
          "--etcd needs a fixed --repl-port N with N > 0 (it is published in etcd for "
          "the other nodes)";
    else if (o.port <= 0)
      problem = "--etcd needs a fixed --port N with N > 0 (it is published in etcd for clients)";
    else if (cluster.etcd.rfind("http://", 0) != 0)
      problem = "--etcd must be an http:// URL (etcd's client URL), not '" + cluster.etcd + "'";
    if (!problem.empty()) {
      std::cerr << "prevalent-kv: " << problem << "\n";
      return 2;
    }
    cluster.repl_port = static_cast<std::uint16_t>(repl_port);
    cluster.client_port = o.port;
  }
  if (!replica_of.empty() && (repl_port >= 0 || acks != "local")) {
    std::cerr << "prevalent-kv: --replica-of cannot be combined with --repl-port or --acks (a "
                 "fixed replica neither serves replicas nor acknowledges writes)\n";
    return 2;
  }
  if (o.port < 0 && o.unixsocket.empty()) {
    std::cerr << "prevalent-kv: --port -1 (no TCP) needs --unixsocket: nothing to listen on\n";
    return 2;
  }

  try {
    o.limits.max_bulk_bytes = max_bulk;
    kv::max_string_bytes = static_cast<long long>(max_bulk);
    prevalent::store_options so;
    so.sync = parse_sync(o.sync);
    so.codec = so.snapshot_codec = parse_codec(o.codec);
    so.max_record_bytes = static_cast<std::uint32_t>(std::min<std::size_t>(
        std::size_t{1} << 30, std::max<std::size_t>(so.max_record_bytes, max_bulk + (1u << 20))));
    so.snapshots.every_commands = snapshot_every_commands;
    so.snapshots.every_journal_bytes = snapshot_every_bytes;
    so.snapshots.every = std::chrono::seconds(snapshot_every_s);
    so.keep_snapshots = keep_snapshots;
    so.segment_bytes = segment_bytes;
    so.compress_snapshots = compress;
    so.verify_encoding = !no_verify;
    so.acks = parse_acks(acks);
    if (so.acks.replicas > 0 && repl_port < 0)
      throw std::invalid_argument("--acks " + acks +
                                  " needs --repl-port (replicas must be able to connect)");
    // A replica that was installing its primary's snapshot when it stopped finishes first.
    if (!replica_of.empty() || clustered) {
      if (!replica_of.empty())
        prevalent::repl::endpoint::parse(replica_of);  // a malformed address fails here
      if (std::filesystem::exists(o.dir))
        prevalent::repl::detail::finish_catch_up(prevalent::open_posix_directory(o.dir));
    }
    so.log = [](const std::string& m) { std::cerr << "prevalent-kv: store: " << m << std::endl; };

    std::cerr << "prevalent-kv: opening " << o.dir << " (sync " << o.sync << ", codec " << o.codec
              << ")" << std::endl;
    kv::describe_store_dir(o.dir);
    const auto t0 = std::chrono::steady_clock::now();
    boost::asio::io_context io(1);
    if (show_progress || ::isatty(STDERR_FILENO)) so.on_recovery_progress = kv::print_progress;
    // Without a progress report, a line every 2 s says the open is still going.
    auto progress = so.on_recovery_progress ? nullptr : std::make_unique<kv::OpenProgress>();
    kv::KvAsyncStore store(io.get_executor(), o.dir, so);
    progress.reset();
    const auto& rec = store.sync().recovery();
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::cerr << "prevalent-kv: opened in " << ms << " ms: replayed " << rec.replayed << " of "
              << rec.records << " journal records"
              << (rec.replayed < rec.records ? " (the rest are in the snapshot)" : "")
              << ", last sequence " << store.sync().last_sequence() << ", "
              << store.sync().query([](const kv::KvState& s) { return s.size(); }) << " keys"
              << std::endl;

    kv::Server server(io, store, o);
    std::unique_ptr<kv::Replication> replication;
    if (clustered) {
      kv::cluster_hooks hooks;
      hooks.install = [&store, dir = o.dir, argv](const auto& file) {
        install_and_reexec(store, dir, file, argv);
      };
      hooks.cut = [&store, dir = o.dir, so, argv](std::uint64_t keep_through) {
        close_change_reexec(
            store,
            "holds records after " + std::to_string(keep_through) +
                " the new primary lacks: cutting them off (kept in .cut files)",
            [&] {
              prevalent::repl::detail::cut_back(prevalent::open_posix_directory(dir), keep_through,
                                                so);
            },
            argv);
      };
      hooks.restart = [&store, argv](const std::string& why) {
        close_change_reexec(store, why, nullptr, argv);
      };
      replication = std::make_unique<kv::Replication>(store, cluster, std::move(hooks));
      std::cerr << "prevalent-kv: node " << cluster.node << " of cluster " << cluster.cluster
                << " (etcd " << cluster.etcd << ", lease " << cluster.lease_ttl
                << " s, replicas on 127.0.0.1:" << repl_port << ", acks " << acks << ")"
                << std::endl;
      std::cout << "repl_port=" << repl_port << std::endl;
    } else if (repl_port >= 0) {
      replication = std::make_unique<kv::Replication>(store, static_cast<std::uint16_t>(repl_port));
      std::cerr << "prevalent-kv: serving replicas on 127.0.0.1:" << replication->repl_port()
                << " (acks " << acks << ")" << std::endl;
      std::cout << "repl_port=" << replication->repl_port() << std::endl;
    } else if (!replica_of.empty()) {
      replication = std::make_unique<kv::Replication>(
          store, replica_of, [&store, dir = o.dir, argv](const auto& file) {
            install_and_reexec(store, dir, file, argv);
          });
      std::cerr << "prevalent-kv: a read-only replica of " << replica_of << std::endl;
    }
    server.set_replication(replication.get());
    const int port = server.start();
    kv::MetricsEndpoint metrics(io, [&] {
      return prevalent::prometheus_text(store.sync().metrics()) + kv::server_metrics(server);
    });
    if (metrics_port >= 0) {
      const int mp = metrics.start(o.bind, metrics_port);
      std::cerr << "prevalent-kv: metrics at http://" << o.bind << ":" << mp << "/metrics"
                << std::endl;
      std::cout << "metrics port=" << mp << std::endl;
    }
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      std::cerr << "prevalent-kv: signal " << sig << ": finishing requests in flight" << std::endl;
      server.stop();
      metrics.stop();
    });
    std::cerr << "prevalent-kv: listening on " << o.bind << ":" << port
              << (o.unixsocket.empty() ? "" : " and " + o.unixsocket) << std::endl;
    if (replication) replication->start();  // a cluster node's coordinator
    std::cout << "ready port=" << port << std::endl;
    io.run();
    if (replication) replication->stop();  // before the store closes
    store.close();
    std::cerr << "prevalent-kv: store closed, exiting" << std::endl;
    return 0;
  } catch (const boost::system::system_error& e) {  // bind/listen: without Boost's source location
    std::cerr << "prevalent-kv: cannot listen on " << o.bind << ":" << o.port
              << (o.unixsocket.empty() ? "" : " or " + o.unixsocket) << ": " << e.code().message()
              << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "prevalent-kv: " << e.what() << std::endl;
    return 1;
  }
}
