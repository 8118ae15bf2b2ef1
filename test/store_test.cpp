// Store<State, Commands...>: round trips, replay equals live state, snapshots and their
// fallback, rejected and failing commands, unknown commands, locking, transient mode.
#include <doctest/doctest.h>

#include <optional>

#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "support.hpp"
#include "thrown_error.hpp"

using namespace prevalent;
using test::Deposit;
using test::LedgerStore;
using test::thrown_error;
using test::Transfer;

namespace {

store_options small_segments() {
  store_options o;
  o.segment_bytes = 512;
  return o;
}

std::uintmax_t journal_bytes(const std::filesystem::path& dir) {
  std::uintmax_t n = 0;
  for (auto& p : test::files_with_prefix(dir, "journal-")) n += std::filesystem::file_size(p);
  return n;
}

}  // namespace

TEST_CASE("commands survive a reopen, with their results, sequence numbers and timestamps") {
  test::temp_dir tmp;
  {
    LedgerStore store(tmp.path());
    CHECK(store.last_sequence() == 0);
    CHECK(store.execute(Deposit{"alice", 100}) == 100);
    CHECK(store.execute(Deposit{"alice", 50}) == 150);
    store.execute(Transfer{"alice", "bob", 30});
    CHECK(store.last_sequence() == 3);
  }
  LedgerStore store(tmp.path());
  CHECK(store.last_sequence() == 3);
  CHECK(store.recovery().records == 3);
  auto balances = store.query([](const test::Ledger& l) { return l.balances; });
  CHECK(balances.at("alice") == 120);
  CHECK(balances.at("bob") == 30);
  CHECK(store.query([](const test::Ledger& l) { return l.applied; }) ==
        std::vector<std::uint64_t>{1, 2, 3});
  CHECK(store.execute(Deposit{"carol", 1}) == 1);
  CHECK(store.last_sequence() == 4);
}

TEST_CASE("replay rebuilds exactly the live state for a random command sequence") {
  test::temp_dir tmp;
  std::mt19937 rng(20261123);
  const char* accounts[] = {"a", "b", "c", "d", "e"};
  std::string live;
  int rejected = 0;
  {
    LedgerStore store(tmp.path(), small_segments());
    for (int i = 0; i < 600; ++i) {
      std::string from = accounts[rng() % 5], to = accounts[rng() % 5];
      std::int64_t amount = static_cast<std::int64_t>(rng() % 120);
      try {
        if (rng() % 3 == 0)
          store.execute(Deposit{from, amount});
        else
          store.execute(Transfer{from, to, amount});
      } catch (const std::invalid_argument&) {
        ++rejected;
      }
      if (i == 300) store.snapshot();
    }
    live = test::dump_state(store);
  }
  CHECK(rejected > 0);
  CHECK(test::files_with_prefix(tmp.path(), "journal-").size() > 1);
  LedgerStore reopened(tmp.path(), small_segments());
  CHECK(test::dump_state(reopened) == live);
}

TEST_CASE("a snapshot bounds the journal and recovery replays only the tail") {
  test::temp_dir tmp;
  std::string live;
  {
    LedgerStore store(tmp.path(), small_segments());
    for (int i = 0; i < 100; ++i) store.execute(Deposit{"acct" + std::to_string(i % 7), i});
    store.snapshot();
    for (int i = 0; i < 100; ++i) store.execute(Deposit{"x", 1});
    auto before = test::files_with_prefix(tmp.path(), "journal-").size();
    store.snapshot();  // two snapshots kept: the journal is cut back to the older one
    CHECK(test::files_with_prefix(tmp.path(), "journal-").size() < before);
    for (int i = 0; i < 10; ++i) store.execute(Deposit{"tail", 1});
    live = test::dump_state(store);
  }
  auto snaps = test::files_with_prefix(tmp.path(), "snapshot-");
  REQUIRE(snaps.size() == 2);
  CHECK(snaps.back().filename() == format::snapshot_file_name(200));
  LedgerStore store(tmp.path(), small_segments());
  CHECK(test::dump_state(store) == live);
  CHECK(store.last_sequence() == 210);
  // Replay began after the snapshot: the first journal segment starts after sequence 1.
  CHECK(format::parse_segment_file_name(
            test::files_with_prefix(tmp.path(), "journal-").front().filename().string()) > 1u);
}

TEST_CASE("a damaged newest snapshot falls back to the older one when the journal covers the gap") {
  test::temp_dir tmp;
  std::string live;
  {
    LedgerStore store(tmp.path(), small_segments());
    for (int i = 0; i < 50; ++i) store.execute(Deposit{"a", 1});
    store.snapshot();
    for (int i = 0; i < 50; ++i) store.execute(Deposit{"b", 2});
    store.snapshot();
    for (int i = 0; i < 5; ++i) store.execute(Deposit{"c", 3});
    live = test::dump_state(store);
  }
  auto newest = tmp / format::snapshot_file_name(100);
  SUBCASE("payload damaged") { test::flip_byte(newest, format::snapshot_header_size + 3); }
  SUBCASE("header damaged") { test::flip_byte(newest, 18); }
  SUBCASE("truncated") {
    auto b = test::read_file(newest);
    b.resize(b.size() / 2);
    test::write_file(newest, b);
  }
  std::vector<std::string> logs;
  auto options = small_segments();
  options.log = [&](const std::string& m) { logs.push_back(m); };
  LedgerStore store(tmp.path(), options);
  CHECK(test::dump_state(store) == live);
  bool named = false;
  for (auto& m : logs) named = named || m.find(newest.string()) != std::string::npos;
  CHECK(named);
}

TEST_CASE("a damaged only snapshot without the journal behind it fails open clearly") {
  test::temp_dir tmp;
  auto options = small_segments();
  options.keep_snapshots = 1;
  {
    LedgerStore store(tmp.path(), options);
    for (int i = 0; i < 60; ++i) store.execute(Deposit{"a", 1});
    store.snapshot();
    store.execute(Deposit{"a", 1});
  }
  test::flip_byte(tmp / format::snapshot_file_name(60), format::snapshot_header_size + 1);
  auto e = thrown_error([&] { LedgerStore store(tmp.path(), options); });
  CHECK(e.code() == errc::no_usable_snapshot);
  CHECK(std::string(e.what()).find("payload checksum mismatch") != std::string::npos);
  CHECK(std::string(e.what()).find(format::snapshot_file_name(60)) != std::string::npos);
}

TEST_CASE("a deleted last segment holding the newest snapshot's records is reported or refused") {
  test::temp_dir tmp;
  auto options = small_segments();
  std::vector<std::string> logged;
  options.log = [&](const std::string& m) { logged.push_back(m); };
  SUBCASE("no segment left: the store goes on from the snapshot and says what may be lost") {
    options.keep_snapshots = 1;
    {
      LedgerStore store(tmp.path(), options);
      for (int i = 0; i < 60; ++i) store.execute(Deposit{"a", 1});
      store.snapshot();
      store.execute(Deposit{"a", 1});
      REQUIRE(store.segments().front().first_seq <= 60);  // every segment before 60's was dropped
    }
    for (auto& p : test::files_with_prefix(tmp.path(), "journal-")) std::filesystem::remove(p);
    LedgerStore store(tmp.path(), options);
    CHECK(store.recovery().segments_missing);
    CHECK(store.last_sequence() == 60);  // record 61 is lost
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("reaches sequence number 60") != std::string::npos);
    CHECK(logged[0].find(tmp.path().string()) != std::string::npos);
    CHECK(store.execute(Deposit{"a", 1}) == 61);
  }
  SUBCASE("a deleted last segment holding only records after the snapshot is not noticed") {
    // The limit of what the files can tell: the journal left ends after the snapshot.
    options.keep_snapshots = 1;
    std::string last;
    {
      LedgerStore store(tmp.path(), options);
      for (int i = 0; i < 60; ++i) store.execute(Deposit{"a", 1});
      store.snapshot();
      while (store.segments().back().first_seq <= 61) store.execute(Deposit{"a", 1});
      last = store.segments().back().file;
    }
    const auto lost_from = *format::parse_segment_file_name(last);
    std::filesystem::remove(tmp / last);
    LedgerStore store(tmp.path(), options);
    CHECK(!store.recovery().segments_missing);
    CHECK(logged.empty());
    CHECK(store.last_sequence() == lost_from - 1);
  }
  SUBCASE("older segments end before the snapshot: open fails naming both ends") {
    options.keep_snapshots = 2;
    std::string last, before_last;
    {
      LedgerStore store(tmp.path(), options);
      for (int i = 0; i < 50; ++i) store.execute(Deposit{"a", 1});
      store.snapshot();
      for (int i = 0; i < 50; ++i) store.execute(Deposit{"a", 1});
      store.snapshot();
      auto segs = store.segments();
      REQUIRE(segs.size() > 2);
      REQUIRE(segs.back().first_seq <= 100);
      last = segs.back().file;
      before_last = segs[segs.size() - 2].file;
    }
    std::filesystem::remove(tmp / last);
    auto e = thrown_error([&] { LedgerStore store(tmp.path(), options); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(std::string(e.what()).find("but the snapshot covers up to 100") != std::string::npos);
    CHECK(std::string(e.what()).find(before_last) != std::string::npos);
  }
}

TEST_CASE("a command rejected by validate changes nothing and writes nothing") {
  test::temp_dir tmp;
  LedgerStore store(tmp.path());
  store.execute(Deposit{"alice", 10});
  const auto state = test::dump_state(store);
  const auto bytes = journal_bytes(tmp.path());
  CHECK_THROWS_WITH_AS(store.execute(Transfer{"alice", "bob", 11}), "insufficient funds in alice",
                       std::invalid_argument);
  CHECK(test::dump_state(store) == state);
  CHECK(journal_bytes(tmp.path()) == bytes);
  CHECK(store.last_sequence() == 1);
  CHECK(store.execute(Deposit{"bob", 1}) == 1);
  CHECK(store.last_sequence() == 2);
}

TEST_CASE("a command whose apply throws half-way leaves state and journal as if never sent") {
  test::temp_dir tmp;
  std::string after;
  {
    LedgerStore store(tmp.path());
    store.execute(Deposit{"alice", 10});
    store.snapshot();
    store.execute(Deposit{"alice", 5});
    const auto state = test::dump_state(store);
    const auto bytes = journal_bytes(tmp.path());
    CHECK_THROWS_WITH_AS(store.execute(test::BrokenTransfer{"alice", "bob", 7}),
                         "injected failure half-way through apply", std::runtime_error);
    CHECK(test::dump_state(store) == state);  // the debit was undone by the rebuild
    CHECK(journal_bytes(tmp.path()) == bytes);
    CHECK(!store.failed());
    store.execute(Deposit{"alice", 1});
    CHECK(store.last_sequence() == 3);  // no gap where the failed command was
    after = test::dump_state(store);
  }
  LedgerStore store(tmp.path());
  CHECK(test::dump_state(store) == after);
}

TEST_CASE("replay of an unknown command name fails open with the record and offset") {
  test::temp_dir tmp;
  {
    LedgerStore store(tmp.path());
    store.execute(Deposit{"a", 1});
    store.execute(Transfer{"a", "b", 1});
  }
  using DepositsOnly = Store<test::Ledger, Deposit>;
  auto e = thrown_error([&] { DepositsOnly store(tmp.path()); });
  CHECK(e.code() == errc::unknown_command);
  std::string msg = e.what();
  CHECK(msg.find("record 2") != std::string::npos);
  CHECK(msg.find("\"transfer\"") != std::string::npos);
  CHECK(msg.find(format::segment_file_name(1)) != std::string::npos);
  CHECK(msg.find("at offset ") != std::string::npos);
  CHECK(msg.find("this store knows: deposit") != std::string::npos);
}

namespace {
// The same name as test::Transfer but arguments that do not decode from its records.
struct StrictTransfer {
  static constexpr std::string_view name = "transfer";
  static constexpr int version = 2;
  std::vector<int> from;
  void apply(test::Ledger&, const Context&) {}
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(StrictTransfer, from)
};
struct OldTransfer {  // version 1: older than what the journal holds
  static constexpr std::string_view name = "transfer";
  std::string from, to;
  std::int64_t amount = 0;
  void apply(test::Ledger&, const Context&) {}
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(OldTransfer, from, to, amount)
};
}  // namespace

TEST_CASE("replay of a payload that does not decode, or of a newer version, is an error") {
  test::temp_dir tmp;
  {
    LedgerStore store(tmp.path());
    store.execute(Deposit{"a", 1});
    store.execute(Transfer{"a", "b", 1});
  }
  auto e = thrown_error([&] { Store<test::Ledger, Deposit, StrictTransfer> s(tmp.path()); });
  CHECK(e.code() == errc::bad_command_payload);
  CHECK(std::string(e.what()).find("record 2") != std::string::npos);
  auto v = thrown_error([&] { Store<test::Ledger, Deposit, OldTransfer> s(tmp.path()); });
  CHECK(v.code() == errc::incompatible_version);
  CHECK(std::string(v.what()).find("version 2, newer than this program's 1") != std::string::npos);
}

namespace {
struct Renamed {  // version 2 renamed "qty" to "amount"; upgrade() reads version-1 records
  static constexpr std::string_view name = "deposit";
  static constexpr int version = 2;
  std::string account;
  std::int64_t qty = 0;
  static void upgrade(nlohmann::json& args, int from_version) {
    if (from_version < 2) args["qty"] = args.at("amount");
  }
  void apply(test::Ledger& l, const Context&) { l.balances[account] += qty * 10; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Renamed, account, qty)
};
}  // namespace

TEST_CASE("an upgrade hook reads records written by an older command version") {
  test::temp_dir tmp;
  {
    LedgerStore store(tmp.path());
    store.execute(Deposit{"a", 4});
  }
  Store<test::Ledger, Renamed> store(tmp.path());
  CHECK(store.query([](const test::Ledger& l) { return l.balances.at("a"); }) == 40);
}

namespace {
// Two commands with distinct names and effects that do not commute: replay must dispatch each
// record to the command that wrote it, or the replayed number differs from the live one.
struct Counter {
  std::int64_t n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Counter, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  std::int64_t by = 0;
  std::int64_t apply(Counter& c, const Context&) const { return c.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};
struct Multiply {
  static constexpr std::string_view name = "multiply";
  std::int64_t by = 1;
  std::int64_t apply(Counter& c, const Context&) const { return c.n *= by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Multiply, by)
};
// No fields and no serialization code: encoded as {} and decoded from an object.
struct Reset {
  static constexpr std::string_view name = "reset";
  void apply(Counter& c, const Context&) const { c.n = 0; }
};
using CounterStore = Store<Counter, Add, Multiply, Reset>;

std::int64_t counter(const CounterStore& s) {
  return s.query([](const Counter& c) { return c.n; });
}
}  // namespace

TEST_CASE("replay runs the command that wrote each record, by its name") {
  test::temp_dir tmp;
  {
    CounterStore store(tmp.path());
    CHECK(store.execute(Add{3}) == 3);
    CHECK(store.execute(Multiply{2}) == 6);
    CHECK(store.execute(Add{1}) == 7);
  }
  // Replaying multiply as add would give 6, add as multiply 0.
  CounterStore store(tmp.path());
  CHECK(counter(store) == 7);
  CHECK(store.recovery().replayed == 3);
}

TEST_CASE("a command with no fields needs no serialization code, in every codec") {
  for (codec c : {codec::json, codec::cbor, codec::msgpack}) {
    CAPTURE(format::codec_name(c));
    test::temp_dir tmp;
    store_options o;
    o.codec = c;
    {
      CounterStore store(tmp.path(), o);
      store.execute(Add{5});
      store.execute(Reset{});
      store.execute(Add{2});
      CHECK(counter(store) == 2);
    }
    if (c == codec::json) {  // its arguments are stored as an empty object
      auto bytes = test::read_file(test::files_with_prefix(tmp.path(), "journal-").at(0));
      CHECK(std::string(bytes.begin(), bytes.end()).find(R"({"cmd":"reset","v":1,"args":{}})") !=
            std::string::npos);
    }
    CounterStore store(tmp.path(), o);
    CHECK(counter(store) == 2);  // 5 without the reset replayed
    CHECK(store.recovery().replayed == 3);
  }
}

namespace {
// Writes "reset" records whose arguments are a number, not an object.
struct BadReset {
  static constexpr std::string_view name = "reset";
  void apply(Counter&, const Context&) const {}
  friend void to_json(nlohmann::json& j, const BadReset&) { j = 5; }
  friend void from_json(const nlohmann::json&, BadReset&) {}
};
}  // namespace

TEST_CASE("an empty command's arguments must decode from an object") {
  test::temp_dir tmp;
  {
    Store<Counter, BadReset> store(tmp.path());
    store.execute(BadReset{});
  }
  auto e = thrown_error([&] { CounterStore s(tmp.path()); });
  CHECK(e.code() == errc::bad_command_payload);
  CHECK(std::string(e.what()).find("arguments of \"reset\" do not decode") != std::string::npos);
}

TEST_CASE("a second store on the same directory is refused, in this process and another") {
  test::temp_dir tmp;
  LedgerStore first(tmp.path());
  auto e = thrown_error([&] { LedgerStore second(tmp.path()); });
  CHECK(e.code() == errc::directory_in_use);
  CHECK(std::string(e.what()).find(tmp.path().string()) != std::string::npos);

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      LedgerStore other(tmp.path());
      ::_exit(0);
    } catch (const error& err) {
      ::_exit(err.code() == errc::directory_in_use ? 42 : 1);
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
}

TEST_CASE("out-of-range options are rejected at open with a clear message") {
  test::temp_dir tmp;
  store_options o;
  o.segment_bytes = 0;
  auto e = thrown_error([&] { LedgerStore s(tmp.path(), o); });
  CHECK(e.code() == errc::invalid_option);
  CHECK(std::string(e.what()).find("segment_bytes") != std::string::npos);
  store_options k;
  k.keep_snapshots = 0;
  CHECK(thrown_error([&] { LedgerStore s(tmp.path(), k); }).code() == errc::invalid_option);
  // A bad codec is reported under the option that holds it.
  for (bool snapshot : {false, true}) {
    CAPTURE(snapshot);
    store_options c;
    (snapshot ? c.snapshot_codec : c.codec) = static_cast<codec>(99);
    auto ce = thrown_error([&] { LedgerStore s(tmp.path(), c); });
    CHECK(ce.code() == errc::invalid_option);
    CHECK(std::string(ce.what()).rfind(snapshot ? "snapshot_codec 99 " : "codec 99 ", 0) == 0);
  }
}

namespace {
// A command whose serialization forgets a field: live and replayed behaviour differ unless
// the store applies the command as decoded from its own bytes.
struct Forgetful {
  static constexpr std::string_view name = "forgetful";
  std::string account;
  std::int64_t amount = 0;  // not serialized: the bug
  void apply(test::Ledger& l, const Context&) { l.balances[account] += amount; }
  friend void to_json(nlohmann::json& j, const Forgetful& f) { j = {{"account", f.account}}; }
  friend void from_json(const nlohmann::json& j, Forgetful& f) {
    j.at("account").get_to(f.account);
  }
};
using ForgetfulStore = Store<test::Ledger, Forgetful>;
}  // namespace

TEST_CASE("verify_encoding makes a forgotten field show at once") {
  CHECK(store_options{}.verify_encoding);  // on by default in every build, NDEBUG or not
  test::temp_dir tmp;
  for (bool verify : {true, false}) {
    CAPTURE(verify);
    std::filesystem::remove_all(tmp / "s");
    store_options o;
    o.verify_encoding = verify;
    std::string live;
    {
      ForgetfulStore store(tmp / "s", o);
      store.execute(Forgetful{"a", 5});
      live = test::dump_state(store);
    }
    ForgetfulStore store(tmp / "s", o);
    // With verification the live state already shows the bug (amount lost) and equals the
    // replay; without it, live and replay disagree.
    CHECK((test::dump_state(store) == live) == verify);
  }
  ForgetfulStore transient(in_memory);  // transient stores always verify
  transient.execute(Forgetful{"a", 5});
  CHECK(transient.query([](const test::Ledger& l) { return l.balances.at("a"); }) == 0);
}

namespace {
// A to_json that produces a value no codec can write back (a "discarded" json value).
struct Unencodable {
  static constexpr std::string_view name = "unencodable";
  void apply(test::Ledger& l, const Context&) { l.balances["u"] += 1; }
  friend void to_json(nlohmann::json& j, const Unencodable&) {
    j = nlohmann::json(nlohmann::json::value_t::discarded);
  }
  friend void from_json(const nlohmann::json&, Unencodable&) {}
};
// A from_json that does not read what to_json wrote.
struct Mismatched {
  static constexpr std::string_view name = "mismatched";
  std::int64_t amount = 0;
  void apply(test::Ledger& l, const Context&) { l.balances["m"] += amount; }
  friend void to_json(nlohmann::json& j, const Mismatched& m) { j = {{"amount", m.amount}}; }
  friend void from_json(const nlohmann::json& j, Mismatched& m) { j.at("amt").get_to(m.amount); }
};
}  // namespace

TEST_CASE("verify_encoding refuses a command whose own encoding does not decode") {
  for (codec c : {codec::json, codec::cbor, codec::msgpack}) {
    CAPTURE(format::codec_name(c));
    test::temp_dir tmp;
    store_options o;
    o.codec = c;
    {
      Store<test::Ledger, Unencodable, Mismatched> store(tmp.path(), o);
      auto e = thrown_error([&] { store.execute(Unencodable{}); });
      CHECK(e.code() == errc::bad_command_payload);
      CHECK(std::string(e.what()).find("\"unencodable\" does not decode from its own encoding") !=
            std::string::npos);
      auto m = thrown_error([&] { store.execute(Mismatched{4}); });
      CHECK(m.code() == errc::bad_command_payload);
      CHECK(std::string(m.what()).find("\"mismatched\"") != std::string::npos);
      CHECK(store.last_sequence() == 0);  // nothing applied, nothing written
      CHECK(!store.failed());
    }
    Store<test::Ledger, Unencodable, Mismatched> reopened(tmp.path(), o);  // no bad record
    CHECK(reopened.last_sequence() == 0);
  }
}

TEST_CASE("a transient store runs with no disk and shares nothing between instances") {
  LedgerStore a(in_memory);
  LedgerStore b(in_memory);
  CHECK(a.execute(Deposit{"x", 3}) == 3);
  CHECK(a.execute(Deposit{"x", 4}) == 7);
  a.snapshot();
  CHECK(b.query([](const test::Ledger& l) { return l.balances.size(); }) == 0);
  CHECK_THROWS_AS(a.execute(Transfer{"x", "y", 100}), std::invalid_argument);
  CHECK(a.last_sequence() == 2);
}

TEST_CASE("a store on a shared memory directory reopens from it") {
  auto dir = make_memory_directory();
  {
    LedgerStore s(dir);
    s.execute(Deposit{"m", 9});
  }
  LedgerStore s(dir);
  CHECK(s.query([](const test::Ledger& l) { return l.balances.at("m"); }) == 9);
}

TEST_CASE("close() makes everything durable, reports errors, and refuses later commands") {
  auto dir = make_memory_directory();
  std::uint64_t durable_at_close = 0;
  {
    store_options o;
    o.sync = sync_policy::none();  // nothing waits for the disk before close
    LedgerStore store(dir, o);
    for (int i = 1; i <= 20; ++i) store.execute(Deposit{"a", i});
    store.close();
    durable_at_close = store.durable_sequence();
    CHECK_NOTHROW(store.close());  // a second close does nothing
    auto e = [&] {
      try {
        store.execute(Deposit{"a", 1});
      } catch (const error& err) {
        return err.code();
      }
      return std::error_code{};
    }();
    CHECK(e == errc::closed);
    CHECK(store.query([](const test::Ledger& l) { return l.total(); }) == 210);  // still answers
  }
  CHECK(durable_at_close == 20);
  LedgerStore reopened(dir);  // close() released the directory
  CHECK(reopened.last_sequence() == 20);
}

TEST_CASE("a Store moves: a service can hold one in a member and hand it over") {
  auto dir = make_memory_directory();
  store_options o;
  o.snapshots.every_commands = 5;  // the snapshot thread must follow the move too
  std::optional<LedgerStore> holder;
  {
    LedgerStore first(dir, o);
    first.execute(Deposit{"a", 1});
    holder.emplace(std::move(first));
  }  // the moved-from store is destroyed here and must not close the directory
  for (int i = 0; i < 20; ++i) holder->execute(Deposit{"a", 1});
  LedgerStore other(make_memory_directory());
  other = std::move(*holder);                   // move assignment closes the store it replaces
  CHECK(other.execute(Deposit{"a", 1}) == 22);  // the balance: 22 deposits of 1
  CHECK(other.last_sequence() == 22);
  holder.reset();
  CHECK(!other.failed());
  other.close();  // releases the directory while `other` still lives
  LedgerStore reopened(dir, o);
  CHECK(reopened.query([](const test::Ledger& l) { return l.total(); }) == 22);
  static_assert(std::is_nothrow_move_constructible_v<LedgerStore>);
  static_assert(!std::is_copy_constructible_v<LedgerStore>);
}

namespace {
// Promises atomic_apply, and breaks the promise on purpose: its debit stays visible exactly
// when the store skipped the rebuild.
struct PromisedAtomicTransfer {
  static constexpr std::string_view name = "promised_atomic_transfer";
  static constexpr bool atomic_apply = true;
  std::string from;
  std::int64_t amount = 0;
  void apply(test::Ledger& l, const Context&) const {
    l.balances[from] -= amount;
    throw std::runtime_error("refused after the debit");
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(PromisedAtomicTransfer, from, amount)
};
}  // namespace

TEST_CASE("a command that promises atomic_apply skips the rebuild when it throws") {
  Store<test::Ledger, Deposit, PromisedAtomicTransfer> store(make_memory_directory());
  store.execute(Deposit{"alice", 10});
  CHECK_THROWS_AS(store.execute(PromisedAtomicTransfer{"alice", 3}), std::runtime_error);
  // No rebuild ran: the (broken) promise's partial change is still there. Without the
  // promise the rebuild would have restored 10, as the half-way test above checks.
  CHECK(store.query([](const test::Ledger& l) { return l.balances.at("alice"); }) == 7);
  CHECK(!store.failed());
  static_assert(atomic_apply<PromisedAtomicTransfer>() && !atomic_apply<Deposit>());
}
