// Metrics (store.metrics(), prometheus_text) and recovery progress (on_recovery_progress):
// counts after known command sequences, histogram counts against command counts, sizes
// against the files on disk, a read while a writer waits for the state lock, the exposition
// format checked line by line, and progress that only grows and ends at the totals.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <prevalent/metrics.hpp>
#include <prevalent/prometheus.hpp>

#include "support.hpp"

using namespace prevalent;
using test::Deposit;
using test::LedgerStore;
using test::Transfer;

namespace {

std::uintmax_t journal_file_bytes(const std::filesystem::path& dir) {
  std::uintmax_t n = 0;
  for (auto& p : test::files_with_prefix(dir, "journal-")) n += std::filesystem::file_size(p);
  return n;
}

// Runs a known sequence: 5 deposits and 1 transfer applied, 2 transfers rejected by validate,
// 1 broken transfer whose apply throws.
void known_sequence(LedgerStore& store) {
  for (int i = 1; i <= 5; ++i) store.execute(Deposit{"alice", i});
  store.execute(Transfer{"alice", "bob", 3});
  CHECK_THROWS_AS(store.execute(Transfer{"alice", "bob", -1}), std::invalid_argument);
  CHECK_THROWS_AS(store.execute(Transfer{"nobody", "bob", 1}), std::invalid_argument);
  CHECK_THROWS_AS(store.execute(test::BrokenTransfer{"alice", "bob", 1}), std::runtime_error);
}

}  // namespace

TEST_CASE("commands are counted by outcome, and every applied one is in each latency histogram") {
  test::temp_dir tmp;
  store_options o;
  o.sync = sync_policy::always();
  LedgerStore store(tmp.path(), o);
  known_sequence(store);
  const store_metrics m = store.metrics();
  CHECK(m.commands_applied == 6);
  CHECK(m.commands_rejected == 2);
  CHECK(m.commands_failed == 1);
  CHECK(m.execute_queue_seconds.count == 6);
  CHECK(m.execute_apply_seconds.count == 6);
  CHECK(m.execute_durable_seconds.count == 6);
  CHECK(m.execute_durable_seconds.sum > 0);  // under always, every command waited for a sync
  // Cumulative buckets, ascending bounds, the last bucket at most the count.
  for (const histogram* h : {&m.execute_queue_seconds, &m.execute_apply_seconds,
                             &m.execute_durable_seconds, &m.records_per_sync}) {
    REQUIRE(h->counts.size() == h->upper_bounds.size());
    for (std::size_t i = 1; i < h->counts.size(); ++i) {
      CHECK(h->counts[i - 1] <= h->counts[i]);
      CHECK(h->upper_bounds[i - 1] < h->upper_bounds[i]);
    }
    CHECK(h->counts.back() <= h->count);
  }
  // Under always each durable record was made so by a counted sync: the records the syncs
  // covered add up to the records written.
  CHECK(m.journal_syncs > 0);
  CHECK(m.records_per_sync.count == m.journal_syncs);
  CHECK(m.records_per_sync.sum == 6);
  CHECK(m.journal_sync_seconds.count == m.journal_syncs);
  CHECK(m.durable_sequence == 6);
  CHECK(m.written_sequence == 6);
  CHECK(!m.failed);
  // The journal's size is the record bytes of its segments, as segments() says.
  std::uint64_t held = 0;
  for (const auto& s : store.segments()) held += s.bytes;
  CHECK(m.journal_bytes == held);
  CHECK(m.journal_segments == store.segments().size());
  CHECK(m.journal_written_bytes > 0);
  CHECK(m.journal_written_bytes < m.journal_bytes);  // the segment header is not a record
}

TEST_CASE("under sync_policy::none the durable phase is counted as 0 and nothing is synced") {
  store_options o;
  o.sync = sync_policy::none();
  LedgerStore store(in_memory, o);
  for (int i = 0; i < 20; ++i) store.execute(Deposit{"a", 1});
  const store_metrics m = store.metrics();
  CHECK(m.commands_applied == 20);
  CHECK(m.execute_durable_seconds.count == 20);
  CHECK(m.execute_durable_seconds.sum == 0);
  CHECK(m.execute_durable_seconds.counts.front() == 20);  // all in the first bucket
  CHECK(m.journal_syncs == 0);
  CHECK(m.records_per_sync.count == 0);
}

TEST_CASE("segments rolled and dropped show in the journal size and segment count") {
  test::temp_dir tmp;
  store_options o;
  o.segment_bytes = 512;
  o.preallocate_bytes = 0;
  o.keep_snapshots = 1;
  LedgerStore store(tmp.path(), o);
  for (int i = 0; i < 40; ++i) store.execute(Deposit{"account-" + std::to_string(i), i});
  auto m = store.metrics();
  CHECK(m.journal_segments > 3);
  CHECK(m.journal_segments == test::files_with_prefix(tmp.path(), "journal-").size());
  CHECK(m.journal_bytes == journal_file_bytes(tmp.path()));  // no preallocation: files = records
  store.snapshot();
  m = store.metrics();
  CHECK(m.journal_segments == 1);  // the snapshot covers all but the segment being written
  CHECK(m.journal_segments == test::files_with_prefix(tmp.path(), "journal-").size());
  CHECK(m.journal_bytes == journal_file_bytes(tmp.path()));
}

TEST_CASE("snapshots are counted with their file sizes and durations") {
  test::temp_dir tmp;
  LedgerStore store(tmp.path());
  for (int i = 0; i < 10; ++i) store.execute(Deposit{"a", i});
  store.snapshot();
  auto m = store.metrics();
  CHECK(m.snapshot_seconds.count == 1);
  CHECK(m.snapshot_bytes.count == 1);
  CHECK(m.snapshot_seconds.sum > 0);
  const auto files = test::files_with_prefix(tmp.path(), "snapshot-");
  REQUIRE(files.size() == 1);
  CHECK(m.snapshot_bytes.sum == static_cast<double>(std::filesystem::file_size(files[0])));
  CHECK(m.snapshot_failures == 0);
  store.execute(Deposit{"b", 1});
  store.snapshot();
  m = store.metrics();
  CHECK(m.snapshot_seconds.count == 2);
  CHECK(m.snapshot_bytes.count == 2);
}

TEST_CASE("the open's replay and a torn tail it cut are in the metrics") {
  test::temp_dir tmp;
  store_options o;
  o.preallocate_bytes = 0;
  {
    LedgerStore store(tmp.path(), o);
    for (int i = 0; i < 7; ++i) store.execute(Deposit{"a", i});
    const auto m = store.metrics();
    CHECK(m.recovery_replayed_records == 0);
    CHECK(m.recovery_torn_tails == 0);
  }
  // Tear the last record: cut 3 bytes off the end of the only segment.
  const auto segments = test::files_with_prefix(tmp.path(), "journal-");
  REQUIRE(segments.size() == 1);
  auto data = test::read_file(segments[0]);
  data.resize(data.size() - 3);
  test::write_file(segments[0], data);
  LedgerStore store(tmp.path(), o);
  const auto m = store.metrics();
  CHECK(m.recovery_replayed_records == 6);  // the seventh was torn
  CHECK(m.recovery_torn_tails == 1);
  CHECK(m.recovery_torn_bytes == store.recovery().torn_bytes);
  CHECK(m.recovery_torn_bytes > 0);
  CHECK(m.recovery_seconds > 0);
  CHECK(m.recovery_snapshot_seconds == 0);  // no snapshot to load
  CHECK(m.commands_applied == 0);           // counters start at the open
}

TEST_CASE("metrics() answers while a writer waits for the state lock a query holds") {
  LedgerStore store(in_memory);
  store.execute(Deposit{"a", 1});
  std::future<std::uint64_t> applied;
  std::future<void> writer;
  store.query([&](const test::Ledger&) {
    // The writer blocks on the exclusive lock; with the lock writer-preferring, any new
    // shared lock would now wait too. metrics() from another thread must still answer.
    writer = std::async(std::launch::async, [&] { store.execute(Deposit{"a", 1}); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it reach the lock
    applied = std::async(std::launch::async, [&] { return store.metrics().commands_applied; });
    CHECK(applied.get() == 1);  // would hang if metrics() took the state lock
    return 0;
  });
  writer.get();
  CHECK(store.metrics().commands_applied == 2);
}

// ---- the Prometheus text format ----

namespace {

// A strict reading of the text exposition format 0.0.4: every line is a # HELP, a # TYPE or
// a sample; each family's TYPE comes before its samples and once; sample names belong to the
// family (histograms: _bucket with le, _sum, _count); values are numbers; no series twice.
// Returns the samples by "name{labels}".
std::map<std::string, double> parse_strictly(const std::string& text) {
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n\\]*)");
  static const std::regex type(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? ([^ ]+))");
  std::map<std::string, std::string> types;
  std::map<std::string, double> out;
  std::string current;  // family of the last TYPE
  std::istringstream in(text);
  std::string line;
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  while (std::getline(in, line)) {
    std::smatch m;
    INFO("line: " << line);
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      REQUIRE(types.count(m[1]) == 0);
      types[m[1]] = m[2];
      current = m[1];
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample));
    const std::string name = m[1];
    REQUIRE(!current.empty());
    if (types[current] == "histogram") {
      REQUIRE(
          (name == current + "_bucket" || name == current + "_sum" || name == current + "_count"));
      if (name == current + "_bucket")
        REQUIRE(std::string(m[3]).find("le=\"") != std::string::npos);
    } else {
      REQUIRE(name == current);
    }
    const std::string value = m[4];
    double v = 0;
    if (value == "+Inf")
      v = HUGE_VAL;
    else {
      std::size_t used = 0;
      v = std::stod(value, &used);
      REQUIRE(used == value.size());
    }
    const std::string key = name + "{" + std::string(m[3]) + "}";
    REQUIRE(out.count(key) == 0);
    out[key] = v;
  }
  return out;
}

}  // namespace

TEST_CASE("the Prometheus exposition is well formed and carries the counts") {
  test::temp_dir tmp;
  LedgerStore store(tmp.path());
  known_sequence(store);
  store.snapshot();
  const std::string text = prometheus_text(store.metrics(), {{"store", "ledger \"main\"\n"}});
  const auto samples = parse_strictly(text);
  const std::string l = R"(store="ledger \"main\"\n")";
  CHECK(samples.at("prevalent_commands_total{" + l + ",outcome=\"applied\"}") == 6);
  CHECK(samples.at("prevalent_commands_total{" + l + ",outcome=\"rejected\"}") == 2);
  CHECK(samples.at("prevalent_commands_total{" + l + ",outcome=\"failed\"}") == 1);
  for (const char* phase : {"queue", "apply", "durable"}) {
    const std::string p = l + ",phase=\"" + phase + "\"";
    CHECK(samples.at("prevalent_execute_seconds_count{" + p + "}") == 6);
    CHECK(samples.at("prevalent_execute_seconds_bucket{" + p + ",le=\"+Inf\"}") == 6);
  }
  CHECK(samples.at("prevalent_snapshot_bytes_count{" + l + "}") == 1);
  CHECK(samples.at("prevalent_journal_syncs_total{" + l + "}") > 0);
  CHECK(samples.at("prevalent_failed{" + l + "}") == 0);
  CHECK(samples.at("prevalent_journal_segments{" + l + "}") == store.segments().size());
  // le values read back as the bounds, in order, and counts grow with them.
  const auto m = store.metrics();
  double last = -1;
  for (std::size_t i = 0; i < m.execute_apply_seconds.upper_bounds.size(); ++i) {
    const std::string key_prefix =
        "prevalent_execute_seconds_bucket{" + l + ",phase=\"apply\",le=\"";
    bool found = false;
    for (const auto& [key, v] : samples) {
      if (!key.starts_with(key_prefix)) continue;
      const std::string bound = key.substr(key_prefix.size(), key.size() - key_prefix.size() - 2);
      if (bound == "+Inf") continue;
      if (std::stod(bound) == m.execute_apply_seconds.upper_bounds[i]) {
        found = true;
        CHECK(v >= last);
        last = v;
      }
    }
    CHECK(found);
  }
  // Bounds print in their shortest form: 1 us is "1e-06", 1 ms "0.001", 1 KiB "1024".
  CHECK(text.find(",phase=\"queue\",le=\"1e-06\"}") != std::string::npos);
  CHECK(text.find("prevalent_snapshot_seconds_bucket{" + l + ",le=\"0.001\"}") !=
        std::string::npos);
  CHECK(text.find("prevalent_snapshot_bytes_bucket{" + l + ",le=\"1024\"}") != std::string::npos);
  CHECK_THROWS_AS(prometheus_text(m, {{"bad-name", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(prometheus_text(m, {{"__reserved", "x"}}), std::invalid_argument);
}

TEST_CASE("quantile_bound finds the bucket of a quantile") {
  histogram h;
  h.upper_bounds = {1, 2, 4, 8};
  h.counts = {10, 10, 90, 100};
  h.count = 100;
  CHECK(quantile_bound(h, 0.05) == 1);
  CHECK(quantile_bound(h, 0.5) == 4);
  CHECK(quantile_bound(h, 0.99) == 8);
  h.count = 200;  // half of them past the last bound
  CHECK(quantile_bound(h, 0.99) == 8);
  CHECK(quantile_bound(histogram{}, 0.5) == 0);
}

// ---- recovery progress ----

namespace {

// A deposit that takes at least 100 us to apply, so that a replay of 1,024 of them lasts past
// the 100 ms between progress reports.
struct SlowDeposit {
  static constexpr std::string_view name = "slow_deposit";
  std::int64_t amount = 0;
  void apply(test::Ledger& l, const Context&) const {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    l.balances["slow"] += amount;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SlowDeposit, amount)
};
using SlowStore = Store<test::Ledger, Deposit, SlowDeposit>;

struct progress_call {
  recovery_progress p;
  std::chrono::steady_clock::time_point at;
};

}  // namespace

TEST_CASE("recovery progress grows monotonically, at a bounded rate, and ends at the totals") {
  test::temp_dir tmp;
  constexpr int records = 2500;
  std::uintmax_t snapshot_size = 0;
  {
    store_options o;
    o.sync = sync_policy::none();
    o.verify_encoding = false;
    SlowStore store(tmp.path(), o);
    for (int i = 0; i < 100; ++i) store.execute(Deposit{"a", i});
    store.snapshot();  // covers the first 100
    for (int i = 0; i < records; ++i) store.execute(SlowDeposit{1});
  }
  snapshot_size = std::filesystem::file_size(test::files_with_prefix(tmp.path(), "snapshot-")[0]);
  const auto journal_size = journal_file_bytes(tmp.path());

  std::vector<progress_call> calls;
  store_options o;
  o.on_recovery_progress = [&](const recovery_progress& p) {
    calls.push_back({p, std::chrono::steady_clock::now()});
  };
  const auto opener = std::this_thread::get_id();
  std::thread::id seen;
  auto inner = o.on_recovery_progress;
  o.on_recovery_progress = [&](const recovery_progress& p) {
    seen = std::this_thread::get_id();
    inner(p);
  };
  SlowStore store(tmp.path(), o);
  CHECK(seen == opener);
  REQUIRE(calls.size() >= 3);  // the start, at least one during the replay (>= 250 ms), the end
  const auto& first = calls.front().p;
  CHECK(first.phase == recovery_phase::snapshot);
  CHECK(first.snapshot_bytes_loaded == 0);
  CHECK(first.snapshot_bytes_total == snapshot_size);
  CHECK(first.records_replayed == 0);
  CHECK(first.journal_bytes_read == 0);
  CHECK(first.journal_bytes_total == journal_size);
  const auto& last = calls.back().p;
  CHECK(last.phase == recovery_phase::done);
  CHECK(last.snapshot_bytes_loaded == snapshot_size);
  CHECK(last.records_replayed == static_cast<std::uint64_t>(records));
  CHECK(last.journal_bytes_read == journal_size);
  CHECK(last.journal_bytes_total == journal_size);
  int in_journal = 0;
  for (std::size_t i = 1; i < calls.size(); ++i) {
    const auto& a = calls[i - 1].p;
    const auto& b = calls[i].p;
    CHECK(static_cast<int>(a.phase) <= static_cast<int>(b.phase));
    CHECK(a.snapshot_bytes_loaded <= b.snapshot_bytes_loaded);
    CHECK(a.records_replayed <= b.records_replayed);
    CHECK(a.journal_bytes_read <= b.journal_bytes_read);
    CHECK(b.journal_bytes_read <= b.journal_bytes_total);
    if (b.phase == recovery_phase::journal) {
      ++in_journal;
      CHECK(b.snapshot_bytes_loaded == snapshot_size);
      CHECK(b.records_replayed > 0);
    }
    // The rate: every call but the last comes at least 100 ms after the one before.
    if (i + 1 < calls.size())
      CHECK(calls[i].at - calls[i - 1].at >= std::chrono::milliseconds(100));
  }
  CHECK(in_journal >= 1);
  CHECK(store.metrics().recovery_replayed_records == static_cast<std::uint64_t>(records));
  CHECK(store.metrics().recovery_snapshot_seconds > 0);
  CHECK(store.metrics().recovery_snapshot_seconds <= store.metrics().recovery_seconds);
}

TEST_CASE("a progress function that throws cancels the open and leaves the store intact") {
  test::temp_dir tmp;
  {
    store_options o;
    o.sync = sync_policy::none();
    SlowStore store(tmp.path(), o);
    for (int i = 0; i < 1500; ++i) store.execute(SlowDeposit{1});
  }
  for (const int throw_on : {1, 2}) {  // the first report (before anything is read), a later one
    CAPTURE(throw_on);
    int calls = 0;
    store_options o;
    o.on_recovery_progress = [&](const recovery_progress&) {
      if (++calls == throw_on) throw std::runtime_error("cancelled by the user");
    };
    CHECK_THROWS_WITH_AS(SlowStore(tmp.path(), o), "cancelled by the user", std::runtime_error);
    CHECK(calls == throw_on);
  }
  // The directory was released and nothing was lost.
  SlowStore store(tmp.path());
  CHECK(store.last_sequence() == 1500);
  CHECK(store.query([](const test::Ledger& l) { return l.balances.at("slow"); }) == 1500);
}
