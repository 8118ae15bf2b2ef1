// prevalent-kv: a Redis-protocol (RESP2) key-value server whose every write is a prevalent
// command, journaled (and, with --sync always, on disk) before the client hears "OK".
//
//   prevalent-kv --dir DIR [--bind 127.0.0.1] [--port 6379] [--unixsocket PATH]
//                [--requirepass PW] [--sync always|interval:MS|none] [--metrics-port N]
//                [...]   (--help: all)
//
// Prints "ready port=N" on stdout once it accepts connections, progress on stderr. SIGTERM or
// SIGINT: stop accepting, finish the requests in flight, close the store, exit 0.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <iostream>
#include <prevalent/prometheus.hpp>

#include "metrics_http.hpp"
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
    so.compress_snapshots = compress;
    so.verify_encoding = !no_verify;
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
    std::cout << "ready port=" << port << std::endl;
    io.run();
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
