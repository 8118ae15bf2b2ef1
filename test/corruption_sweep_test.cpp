// Corruption sweeps: for a small journal and a small snapshot, flip every byte in turn and cut
// the file at every length. Opening must then either recover a valid prefix of the commands
// (a torn tail) or fail with a prevalent::error naming the file and an offset; it must never
// crash, hang, read out of bounds (run under ASan in CI) or return a state that is not the
// state after some prefix. The same sweeps run on an encrypted store (fewer commands, to keep
// the suite's time): a flip or a cut there must be caught as on a plain store (the CRC framing
// is over the sealed bytes), never as a record that fails to authenticate.
#include <doctest/doctest.h>

#include <map>

#include "support.hpp"

using namespace prevalent;
using test::Deposit;
using test::LedgerStore;

namespace {

// The store options and the number of commands of a sweep.
struct sweep {
  store_options options;
  int commands = 12;
};

sweep plain_sweep() { return {}; }

sweep encrypted_sweep() {
  sweep s;
  s.options.encryption_key = test::test_key();
  s.commands = 4;  // sealed records are 40 bytes longer: about half the plain sweep's bytes
  return s;
}

// The state after each prefix of the workload, as the store serializes it.
std::map<std::string, int> prefix_states(const std::filesystem::path& dir, const sweep& sw) {
  std::map<std::string, int> states;
  LedgerStore store(dir, sw.options);
  states[test::dump_state(store)] = 0;
  for (int i = 1; i <= sw.commands; ++i) {
    store.execute(Deposit{"acct" + std::to_string(i % 3), i});
    states[test::dump_state(store)] = i;
  }
  return states;
}

struct outcome {
  int recovered = 0, refused = 0;
};

// Opens the damaged copy and checks the verdict. `file` is the damaged file's name.
void check_open(const std::filesystem::path& dir, const std::string& file, const sweep& sw,
                const std::map<std::string, int>& states, int at_least, outcome& out) {
  try {
    LedgerStore store(dir, sw.options);
    auto it = states.find(test::dump_state(store));
    REQUIRE_MESSAGE(it != states.end(), "recovered a state that is no prefix of the commands");
    CHECK(it->second >= at_least);
    CHECK(store.last_sequence() == static_cast<std::uint64_t>(it->second));
    ++out.recovered;
  } catch (const error& e) {
    const std::string msg = e.what();
    // Nobody tampered: every damage is caught by a checksum before any tag is tried.
    CHECK_MESSAGE(e.code() != errc::authentication_failed, msg);
    CHECK_MESSAGE(msg.find(file) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("offset") != std::string::npos, msg);
    ++out.refused;
  }
}

}  // namespace

TEST_CASE("every byte flip and every truncation of a journal segment") {
  sweep sw;
  SUBCASE("plain") { sw = plain_sweep(); }
  SUBCASE("encrypted") { sw = encrypted_sweep(); }
  test::temp_dir tmp;
  const auto states = prefix_states(tmp / "orig", sw);
  const std::string seg = format::segment_file_name(1);
  auto original = test::read_file(tmp / "orig" / seg);
  // Drop the preallocated zero fill: the sweep is over bytes that carry records.
  std::size_t end = original.size();
  while (end > 0 && original[end - 1] == 0) --end;
  end = format::aligned(end);
  original.resize(end);
  REQUIRE(original.size() > 500);

  outcome flips, cuts;
  for (std::size_t at = 0; at < original.size(); ++at) {
    CAPTURE(at);
    test::copy_dir(tmp / "orig", tmp / "bad");
    auto b = original;
    b[at] ^= 0x21;
    test::write_file(tmp / "bad" / seg, b);
    // A flip can only cost the record it hits and what follows it if that record is last.
    check_open(tmp / "bad", seg, sw, states, 0, flips);
  }
  for (std::size_t len = 0; len < original.size(); ++len) {
    CAPTURE(len);
    test::copy_dir(tmp / "orig", tmp / "bad");
    test::write_file(tmp / "bad" / seg, {original.begin(), original.begin() + len});
    check_open(tmp / "bad", seg, sw, states, 0, cuts);
  }
  MESSAGE("flips: ", flips.recovered, " recovered, ", flips.refused,
          " refused; cuts: ", cuts.recovered, " recovered, ", cuts.refused, " refused");
  CHECK(cuts.recovered > 0);
  CHECK(flips.refused > 0);
}

TEST_CASE("every byte flip and every truncation of a snapshot") {
  sweep sw;
  SUBCASE("plain") { sw = plain_sweep(); }
  SUBCASE("encrypted") { sw = encrypted_sweep(); }
  test::temp_dir tmp;
  auto states = prefix_states(tmp / "orig", sw);
  {
    store_options o = sw.options;
    o.keep_snapshots = 1;
    LedgerStore store(tmp / "orig", o);
    store.snapshot();
  }
  const std::string snap = format::snapshot_file_name(static_cast<std::uint64_t>(sw.commands));
  const auto original = test::read_file(tmp / "orig" / snap);
  outcome flips, cuts;
  for (std::size_t at = 0; at < original.size(); ++at) {
    CAPTURE(at);
    test::copy_dir(tmp / "orig", tmp / "bad");
    auto b = original;
    b[at] ^= 0x21;
    test::write_file(tmp / "bad" / snap, b);
    // The journal still holds every record, so a damaged snapshot is skipped and the full
    // state comes back from the journal.
    check_open(tmp / "bad", snap, sw, states, sw.commands, flips);
  }
  for (std::size_t len = 0; len < original.size(); ++len) {
    CAPTURE(len);
    test::copy_dir(tmp / "orig", tmp / "bad");
    test::write_file(tmp / "bad" / snap, {original.begin(), original.begin() + len});
    check_open(tmp / "bad", snap, sw, states, sw.commands, cuts);
  }
  CHECK(flips.recovered == static_cast<int>(original.size()));
  CHECK(cuts.recovered == static_cast<int>(original.size()));
}
