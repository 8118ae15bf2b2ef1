// bench --only snapshot (issue 9, parts 2 and 3): writing and loading a snapshot of a
// 1,000,000-entry state (~100-byte values in a std::map) the streamed way and the whole-tree
// way, beside the disk's synced bandwidth for the same number of bytes (write + fdatasync in
// 1 MiB pieces, same directory, same run), and the resident memory of a process after it opened
// a store from that snapshot vs one that built the same state in memory.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <prevalent/cow_map.hpp>
#include <prevalent/prevalent.hpp>

#include "measure.hpp"
#include "prevalent/snapshot_store.hpp"
#include "prevalent/snapshot_writer.hpp"

namespace snapbench {

namespace fs = std::filesystem;

struct Session {
  std::string user;
  std::int64_t created = 0, expires = 0;
  std::string agent;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Session, user, created, expires, agent)
};
// The state with its big map as a std::map (nothing opts in: the writer takes the map out of
// the tree, the loader falls back to the tree) or as a cow_map (its parts are written and
// claimed without a tree of the map).
template <class Map>
struct StateOf {
  Map sessions;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(StateOf, sessions)
};
using StdState = StateOf<std::map<std::string, Session>>;
using CowState = StateOf<prevalent::cow_map<std::string, Session>>;
struct Touch {  // the store needs a command; the bench only opens
  static constexpr std::string_view name = "touch";
  template <class S>
  void apply(S&, const prevalent::Context&) const {}
};

template <class State>
State make_state(std::size_t n) {
  std::vector<std::pair<std::string, Session>> items;
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    char key[65];
    std::snprintf(key, sizeof key, "%064zx", i * 2654435761u);
    items.emplace_back(key,
                       Session{"user" + std::to_string(i % 50000), 1700000000 + std::int64_t(i),
                               1700003600 + std::int64_t(i), "Mozilla/5.0 (X11; Linux)"});
  }
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  State s;
  if constexpr (std::is_same_v<State, CowState>)
    s.sessions = decltype(s.sessions)::from_sorted(std::move(items));
  else
    s.sessions.insert(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  return s;
}

// Resident memory of this process, in MB (VmRSS).
inline double rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  return -1;
}

// A figure measured in a fresh process (this program run with --snapshot-child), so that its
// heap starts empty: "open" (seconds to open a store on the streamed snapshot), "whole" (seconds
// to load and decode the whole-tree way), "rss-open", "rss-whole" (resident MB after either, the
// whole-tree way without malloc_trim, as before issue 9), "rss-built" (resident MB after
// building the state in memory).
inline double child_figure(const std::string& what, const std::string& kind, const fs::path& dir,
                           prevalent::codec c, std::size_t n) {
  const std::string cmd = "/proc/" + std::to_string(::getpid()) + "/exe --snapshot-child " + what +
                          " " + kind + " '" + dir.string() + "' " + std::to_string(int(c)) + " " +
                          std::to_string(n);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  double v = -1;
  if (std::fscanf(p, "%lf", &v) != 1) v = -1;
  ::pclose(p);
  return v;
}

// The figure `what` (see child_figure) for a State.
template <class State>
double child_figure_of(const std::string& what, const fs::path& dir, prevalent::codec c,
                       std::size_t n) {
  using SnapStore = prevalent::Store<State, Touch>;
  auto whole_load = [&] {
    prevalent::SnapshotStore snaps(prevalent::open_posix_directory(dir), 1);
    auto loaded = snaps.load(snaps.list().front());
    State s = prevalent::decode(loaded.payload, c)->get<State>();
    return s;
  };
  double v = -1;
  auto t0 = bench::clock::now();
  if (what == "open") {
    SnapStore store(dir);
    v = store.query([](const State& s) { return s.sessions.size(); }) == n
            ? bench::seconds_since(t0)
            : -1;
  } else if (what == "whole") {
    v = whole_load().sessions.size() == n ? bench::seconds_since(t0) : -1;
  } else if (what == "rss-open") {
    SnapStore store(dir);
    v = store.query([](const State& s) { return s.sessions.size(); }) == n ? rss_mb() : -1;
  } else if (what == "rss-whole") {
    State s = whole_load();
    v = s.sessions.size() == n ? rss_mb() : -1;
  } else if (what == "rss-built") {
    State s = make_state<State>(n);
    v = rss_mb();
  }
  return v;
}

// main() of the child process: prints the figure.
inline int child_main(int argc, char** argv) {
  if (argc < 7) return 2;
  const std::string what = argv[2], kind = argv[3];
  const fs::path dir = argv[4];
  const auto c = static_cast<prevalent::codec>(std::stoi(argv[5]));
  const std::size_t n = std::stoull(argv[6]);
  const double v = kind == "cow" ? child_figure_of<CowState>(what, dir, c, n)
                                 : child_figure_of<StdState>(what, dir, c, n);
  std::printf("%f\n", v);
  return 0;
}

// write + fdatasync of `bytes` bytes in 1 MiB pieces: the disk's synced bandwidth.
inline double disk_seconds(const fs::path& dir, std::uintmax_t bytes) {
  const fs::path p = dir / "bandwidth.tmp";
  std::vector<char> block(1 << 20, 'x');
  auto t0 = bench::clock::now();
  const int fd = ::open(p.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  for (std::uintmax_t done = 0; done < bytes;) {
    const auto n = static_cast<std::size_t>(std::min<std::uintmax_t>(block.size(), bytes - done));
    if (::write(fd, block.data(), n) != static_cast<ssize_t>(n)) break;
    done += n;
  }
  ::fdatasync(fd);
  ::close(fd);
  const double s = bench::seconds_since(t0);
  fs::remove(p);
  return s;
}

inline std::uintmax_t snapshot_bytes(const fs::path& dir) {
  std::uintmax_t b = 0;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".snap") b = std::max(b, e.file_size());
  return b;
}

template <class State>
void run_state(const std::string& kind, const fs::path& root, std::size_t n, int runs,
               bench::results& out) {
  using prevalent::codec;
  std::printf("== streamed snapshots, %zu entries (~100-byte values, %s)\n", n,
              kind == "cow" ? "cow_map" : "std::map");
  for (codec c : {codec::json, codec::cbor}) {
    const std::string name = kind + " " + prevalent::codec_name(c);
    const auto format_codec = static_cast<prevalent::format::codec>(c);
    std::vector<double> whole_w, stream_w, disk_w, whole_l, stream_l;
    std::uintmax_t bytes = 0;
    const fs::path whole_dir = root / ("snap-whole-" + name),
                   stream_dir = root / ("snap-stream-" + name);
    {
      const State state = make_state<State>(n);
      for (int r = 0; r < runs; ++r) {
        fs::remove_all(whole_dir);
        fs::remove_all(stream_dir);
        prevalent::SnapshotStore whole(prevalent::open_posix_directory(whole_dir), 1);
        prevalent::SnapshotStore streamed(prevalent::open_posix_directory(stream_dir), 1);
        auto t0 = bench::clock::now();  // what Store::snapshot() did before issue 9
        {
          const std::string payload = prevalent::encode(nlohmann::json(state), c);
          whole.install(1, 0, prevalent::as_bytes(payload), format_codec);
        }
        whole_w.push_back(bench::seconds_since(t0));
        t0 = bench::clock::now();
        streamed.install_streamed(
            1, 0,
            [&](const prevalent::SnapshotStore::payload_sink& sink) {
              prevalent::detail::SnapshotWriter w(c);
              w.write([&] { return nlohmann::json(state); }, sink);
            },
            format_codec);
        stream_w.push_back(bench::seconds_since(t0));
        bytes = snapshot_bytes(stream_dir);
        if (bytes != snapshot_bytes(whole_dir)) std::printf("  !! sizes differ\n");
        disk_w.push_back(disk_seconds(root, bytes));
      }
    }
    // Loads in fresh processes, so that each starts from an empty heap.
    std::vector<double> rss_stream, rss_whole_untrimmed;
    for (int r = 0; r < runs; ++r) {
      stream_l.push_back(child_figure("open", kind, stream_dir, c, n));
      whole_l.push_back(child_figure("whole", kind, whole_dir, c, n));
      rss_stream.push_back(child_figure("rss-open", kind, stream_dir, c, n));
      rss_whole_untrimmed.push_back(child_figure("rss-whole", kind, whole_dir, c, n));
    }
    const double built = child_figure("rss-built", kind, whole_dir, c, n);
    const double w = bench::median(whole_w) * 1000, s = bench::median(stream_w) * 1000,
                 d = bench::median(disk_w) * 1000;
    out.add({"snapshot", "write " + name + ", whole tree", w, "ms", -1, -1,
             std::to_string(bytes / 1000000) + " MB"});
    out.add({"snapshot", "write " + name + ", streamed", s, "ms", -1, -1,
             bench::times(s, w) + " whole tree, " + bench::times(s, d) + " disk"});
    out.add({"snapshot", "write+fdatasync same bytes (disk)", d, "ms", -1, -1,
             std::to_string(static_cast<int>(bytes / 1e6 / (d / 1000))) + " MB/s"});
    const double lw = bench::median(whole_l) * 1000, ls = bench::median(stream_l) * 1000;
    out.add({"snapshot", "load " + name + ", whole tree", lw, "ms", -1, -1, ""});
    out.add({"snapshot", "open " + name + ", streamed loader", ls, "ms", -1, -1,
             bench::times(ls, lw) + " whole tree"});
    const double rs = bench::median(rss_stream), ru = bench::median(rss_whole_untrimmed);
    out.add({"snapshot", "RSS after open " + name, rs, "MB", -1, -1,
             bench::times(rs, built) + " built in memory (" + std::to_string(int(built)) + " MB)"});
    out.add({"snapshot", "RSS after whole-tree load, no trim", ru, "MB", -1, -1,
             bench::times(ru, built) + " built in memory"});
  }
}

inline void run(const fs::path& root, std::size_t n, int runs, bench::results& out) {
  run_state<StdState>("std", root, n, runs, out);
  run_state<CowState>("cow", root, n, runs, out);
}

}  // namespace snapbench
