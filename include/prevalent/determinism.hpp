// The determinism check: does replaying the journal rebuild the state the live store had?
// Replay is only correct if every command's apply() depends on nothing but the state, the
// command and its Context. check_determinism() loads an older snapshot, replays the journal up
// to a newer snapshot's last record, serializes the result in the newer snapshot's codec and
// compares its digest (XXH3-128) with the newer snapshot's own.
//
//   auto report = prevalent::check_determinism<Bank, Deposit, Transfer>("/var/lib/bank");
//   if (report.checked && !report.consistent) std::cerr << report.summary << '\n';
//
// On a mismatch it names the first command whose replay diverges (narrowing, README
// "Determinism check"): it replays from the oldest state it can reach at or before the older
// snapshot without any round trip through serialization on the way, and from the older
// snapshot's last record on applies each record twice, to that state and to a copy rebuilt
// from its serialization, comparing the serialized results. The first record whose two results
// differ is named (sequence number, command, arguments, and how the results differ). It runs
// only on a mismatch and costs three serializations of the state per record. What it catches:
// a command that reads the clock, a random source, a counter or anything else that changes
// between two applications, and one whose result depends on state that serialization does not
// carry (the iteration order of an unordered container, a cache, an address). What it cannot
// catch: a source that did not change during the check (a coarse clock, the environment, a
// file), hidden state already lost at the oldest state kept (keep more history:
// keep_snapshots, archive_directory), or commands whose code changed since the records were
// written; the report then says the replay differs without naming a command.
//
// Reads only: no lock, no writes (like time travel), so it can run beside the live store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "prevalent/command.hpp"
#include "prevalent/detail/command_envelope.hpp"
#include "prevalent/detail/history_core.hpp"
#include "prevalent/detail/store_access.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/error.hpp"
#include "prevalent/options.hpp"
#include "prevalent/state.hpp"
#include "prevalent/store.hpp"

namespace prevalent {

struct determinism_options {
  // The older snapshot, by the last record it covers (0: the empty state, which needs the
  // journal from record 1). Default: the second newest snapshot, or the empty state when there
  // is only one snapshot and the journal reaches back to record 1.
  std::optional<std::uint64_t> from{};
  // The newer snapshot, by the last record it covers. Default: the newest.
  std::optional<std::uint64_t> to{};
  // On a mismatch, look for the first command whose replay diverges.
  bool narrow = true;
};

// A command whose result is not determined by the state's serialization, the command and its
// context: applied to the state and to a copy rebuilt from the state's serialization, it gave
// different states.
struct diverging_command {
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::string name;  // as stored in the journal
  int version = 1;
  nlohmann::json args;  // as stored in the journal
  std::string file;     // the journal segment, full path
  std::uint64_t offset = 0;
  // How the two results differ: the first operations of a JSON patch (RFC 6902) that turns
  // the copy's result into the state's, as text (shortened, for messages) ...
  std::string difference;
  // ... and as JSON: the first (at most 3) operations of that patch, and how many it has.
  nlohmann::json patch = nlohmann::json::array();
  std::size_t patch_operations = 0;
};

struct determinism_report {
  bool checked = false;     // false: nothing to compare (see summary)
  bool consistent = false;  // the replay reproduced the newer snapshot exactly
  std::uint64_t from_seq = 0, to_seq = 0;
  std::string from_snapshot, to_snapshot;        // full paths ("" for the empty state)
  std::uint64_t replayed = 0;                    // records replayed from one to the other
  std::string expected_digest, replayed_digest;  // state_digest (XXH3-128), 32 hex digits
  // Narrowing: where the replay that carries no round trip started, and what it found.
  std::uint64_t narrowed_from = 0;
  std::optional<diverging_command> first_divergence;
  // The state's serialization is not canonical: serialized after this record, loaded and
  // serialized again, it gave other bytes (for example an unordered container written in
  // iteration order), so equal states may have different digests.
  std::optional<std::uint64_t> non_canonical_after;
  std::string summary;  // what was compared and found, in a few sentences
};

namespace detail {

template <class State, class... Commands>
class DeterminismCheck {
  using access = store_access<State, Commands...>;

 public:
  DeterminismCheck(const History& history, const determinism_options& options)
      : history_(history), options_(options) {}

  determinism_report run() {
    const auto& snapshots = history_.snapshots();
    const history_snapshot* newer = nullptr;
    if (options_.to) {
      newer = find(*options_.to, "to");
    } else if (!snapshots.empty()) {
      newer = &snapshots.front();
    }
    if (!newer) {
      report_.summary = "nothing to compare: " + history_.path() + " holds no snapshot";
      return report_;
    }
    const history_snapshot* older = nullptr;  // nullptr: the empty state
    if (options_.from) {
      if (*options_.from >= newer->last_seq)
        throw error(errc::invalid_option,
                    "determinism_options: from (" + std::to_string(*options_.from) +
                        ") must be older than to (" + std::to_string(newer->last_seq) + ")");
      if (*options_.from > 0) older = find(*options_.from, "from");
    } else {
      for (const auto& s : snapshots)
        if (s.last_seq < newer->last_seq) {
          older = &s;
          break;
        }
      if (!older && history_.journal_start() != std::optional<std::uint64_t>(1)) {
        report_.summary = "nothing to compare: " + newer->path +
                          " is the only snapshot and the journal does not reach back to record "
                          "1; keep more history (keep_snapshots, archive_directory)";
        return report_;
      }
    }
    report_.from_seq = older ? older->last_seq : 0;
    report_.to_seq = newer->last_seq;
    report_.from_snapshot = older ? older->path : std::string();
    report_.to_snapshot = newer->path;

    const snapshot_facts expected = history_.inspect(*newer);
    if (expected.state_version != state_version<State>()) {
      // The replay is serialized as this program's State; a snapshot of another state version
      // has other bytes whatever the commands did, so comparing would blame them wrongly.
      report_.summary = "not compared: " + newer->path + " holds state version " +
                        std::to_string(expected.state_version) + ", this program's state is " +
                        "version " + std::to_string(state_version<State>()) +
                        "; check snapshots written by this program (take one first, or "
                        "choose them with determinism_options::to)";
      return report_;
    }
    report_.checked = true;
    codec_ = expected.codec;
    State state{};
    if (older) history_.load(*older, access::loader(state));
    report_.replayed =
        history_.replay(report_.from_seq, report_.to_seq, std::nullopt, 0, access::replayer(state))
            .records;
    const digest128 replayed = state_digest(access::serialize(state, codec_));
    report_.expected_digest = to_hex(expected.digest);
    report_.replayed_digest = to_hex(replayed);
    report_.consistent = replayed == expected.digest;
    const std::string compared = "replaying records " + std::to_string(report_.from_seq + 1) +
                                 ".." + std::to_string(report_.to_seq) + " from " +
                                 (older ? older->path : std::string("the empty state"));
    if (report_.consistent) {
      report_.summary = compared + " reproduces " + newer->path + " exactly (digest " +
                        report_.expected_digest + ")";
      return report_;
    }
    report_.summary = compared + " gives digest " + report_.replayed_digest + ", but " +
                      newer->path + " has " + report_.expected_digest +
                      ": the replay does not rebuild the state the live store had.";
    if (options_.narrow) narrow();
    return report_;
  }

 private:
  const history_snapshot* find(std::uint64_t seq, const char* which) const {
    for (const auto& s : history_.snapshots())
      if (s.last_seq == seq) return &s;
    std::string have;
    for (const auto& s : history_.snapshots())
      have += (have.empty() ? "" : ", ") + std::to_string(s.last_seq);
    throw error(errc::not_reachable, std::string("determinism_options: ") + which +
                                         ": no snapshot covers exactly up to record " +
                                         std::to_string(seq) + " in " + history_.path() +
                                         " (snapshots: " + (have.empty() ? "none" : have) + ")");
  }

  // The oldest state at or before the older snapshot from which the journal continues, so
  // that the replay carries no round trip through serialization it can avoid.
  const history_snapshot* narrowing_base() const {
    if (history_.journal_start() == std::optional<std::uint64_t>(1)) return nullptr;
    const auto start = history_.journal_start();
    const auto& snapshots = history_.snapshots();
    for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it)
      if (it->last_seq <= report_.from_seq && start && it->last_seq + 1 >= *start) return &*it;
    return find(report_.from_seq, "from");
  }

  static std::string shortened(const nlohmann::json& patch) {
    nlohmann::json first = nlohmann::json::array();
    for (std::size_t i = 0; i < patch.size() && i < 3; ++i) first.push_back(patch[i]);
    std::string text = first.dump();
    if (text.size() > 400) text = text.substr(0, 400) + "...";
    if (patch.size() > 3) text += " (and " + std::to_string(patch.size() - 3) + " more)";
    return text;
  }

  static diverging_command describe(const record_view& r) {
    diverging_command d;
    d.seq = r.seq;
    d.timestamp_ns = r.timestamp_ns;
    d.file = r.file;
    d.offset = r.offset;
    if (auto envelope = decode(r.payload, r.codec); envelope && envelope->is_object()) {
      d.name = envelope->value("cmd", std::string());
      d.version = envelope->value("v", 1);
      if (auto args = envelope->find("args"); args != envelope->end()) d.args = *args;
    }
    return d;
  }

  void narrow() {
    const history_snapshot* base = narrowing_base();
    report_.narrowed_from = base ? base->last_seq : 0;
    State state{};
    if (base) history_.load(*base, access::loader(state));
    history_.replay(report_.narrowed_from, report_.from_seq, std::nullopt, 0,
                    access::replayer(state));
    bytes before = access::serialize(state, codec_);
    history_.for_each(report_.from_seq + 1, report_.to_seq, [&](const record_view& r) {
      State copy{};
      access::loader(copy)(
          before,
          snapshot_source{codec_, state_version<State>(),
                          "the state after record " + std::to_string(r.seq - 1), r.seq - 1});
      if (access::serialize(copy, codec_) != before) {
        report_.non_canonical_after = r.seq - 1;
        return false;
      }
      replay_command<State, Commands...>(state, r);
      replay_command<State, Commands...>(copy, r);
      bytes after = access::serialize(state, codec_);
      if (after != access::serialize(copy, codec_)) {
        diverging_command d = describe(r);
        const auto patch = nlohmann::json::diff(nlohmann::json(copy), nlohmann::json(state));
        d.difference = shortened(patch);
        for (std::size_t i = 0; i < patch.size() && i < 3; ++i) d.patch.push_back(patch[i]);
        d.patch_operations = patch.size();
        report_.first_divergence = std::move(d);
        return false;
      }
      before = std::move(after);
      return true;
    });
    const std::string from_text =
        report_.narrowed_from == 0
            ? std::string("the empty state")
            : "the snapshot of record " + std::to_string(report_.narrowed_from);
    if (const auto& d = report_.first_divergence) {
      report_.summary += " First diverging command: record " + std::to_string(d->seq) + " \"" +
                         d->name + "\" " + d->args.dump() + " (" + d->file + " at offset " +
                         std::to_string(d->offset) + "): applied to the state replayed from " +
                         from_text +
                         " and to a copy rebuilt from that state's serialization, it gave "
                         "different states: " +
                         d->difference +
                         ". Its apply() depends on something besides the state, the command and "
                         "its Context (the clock, a random source, the iteration order of an "
                         "unordered container, ...).";
    } else if (report_.non_canonical_after) {
      report_.summary += " The state's serialization is not canonical: after record " +
                         std::to_string(*report_.non_canonical_after) +
                         ", serializing the state, loading it and serializing it again gave "
                         "other bytes (an unordered container written in iteration order?), so "
                         "equal states can have different digests; make its to_json canonical "
                         "(sorted) to check determinism.";
    } else {
      report_.summary +=
          " No record of " + std::to_string(report_.from_seq + 1) + ".." +
          std::to_string(report_.to_seq) + " gave different results on the state replayed from " +
          from_text +
          " and on a copy rebuilt from its serialization. Possible causes: a non-deterministic "
          "source that did not change during the check (a coarse clock, the environment, a "
          "file), hidden state built before " +
          from_text +
          " (keep more history: keep_snapshots, archive_directory), commands whose code "
          "changed since the records were written, or a snapshot changed on disk.";
    }
  }

  const History& history_;
  determinism_options options_;
  determinism_report report_;
  codec codec_ = codec::json;
};

}  // namespace detail

// Checks that replaying the journal of the store in `path` from an older snapshot rebuilds a
// newer one exactly (see the top of this file). `options` supplies what reading needs
// (encryption key, archive_directory, max_record_bytes). Throws errc::not_reachable when a
// snapshot asked for does not exist or the journal between them is incomplete, and what
// loading and replaying throw (a damaged file, an unknown command).
// check_determinism<State, Commands...>(...), or check_determinism<StoreType>(...) with the
// store's type (a Store<State, Commands...>).
template <class State, class... Commands>
requires(sizeof...(Commands) > 0) determinism_report
    check_determinism(const std::filesystem::path& path, const determinism_options& check = {},
                      const store_options& options = {}) {
  const detail::History history(path, options);
  return detail::DeterminismCheck<State, Commands...>(history, check).run();
}

template <class State, class... Commands>
requires(sizeof...(Commands) > 0) determinism_report
    check_determinism(std::shared_ptr<Directory> dir, const determinism_options& check = {},
                      const store_options& options = {}) {
  const detail::History history(std::move(dir), options);
  return detail::DeterminismCheck<State, Commands...>(history, check).run();
}

namespace detail {
template <class>
struct store_types;
template <class State, class... Commands>
struct store_types<Store<State, Commands...>> {
  template <class Where>
  static determinism_report check(Where&& where, const determinism_options& check,
                                  const store_options& options) {
    return check_determinism<State, Commands...>(std::forward<Where>(where), check, options);
  }
};
}  // namespace detail

template <class StoreType>
requires requires { detail::store_types<StoreType>{}; }
determinism_report check_determinism(const std::filesystem::path& path,
                                     const determinism_options& check = {},
                                     const store_options& options = {}) {
  return detail::store_types<StoreType>::check(path, check, options);
}

template <class StoreType>
requires requires { detail::store_types<StoreType>{}; }
determinism_report check_determinism(std::shared_ptr<Directory> dir,
                                     const determinism_options& check = {},
                                     const store_options& options = {}) {
  return detail::store_types<StoreType>::check(std::move(dir), check, options);
}

}  // namespace prevalent
