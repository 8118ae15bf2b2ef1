// What a running store measures about itself, for dashboards and alerts: commands by outcome,
// execute latency by phase, journal writes and syncs, snapshots, the last recovery, and the
// journal's size. Store::metrics() returns a store_metrics: a plain value, copied out of
// counters that the store keeps with relaxed atomics, so reading it never takes the state
// lock and never waits for a command, a write or a sync (prometheus.hpp turns it into the
// Prometheus text format). The counters start at zero when the store opens.
#pragma once

#include <cstdint>
#include <vector>

namespace prevalent {

// A histogram as Prometheus has it: `counts[i]` observations were <= `upper_bounds[i]`
// (cumulative; the bounds ascend by factors of 2), `count` observations in all (the bucket
// +Inf), adding up to `sum`. Seconds for durations, bytes for sizes.
struct histogram {
  std::vector<double> upper_bounds;
  std::vector<std::uint64_t> counts;
  std::uint64_t count = 0;
  double sum = 0;
};

// The upper bound of the bucket that holds the `q` quantile (0 < q <= 1) of `h`: an estimate
// within a factor of 2 above. 0 for an empty histogram; the largest bound if the quantile
// lies past it.
double quantile_bound(const histogram& h, double q);

struct store_metrics {
  // ---- commands, counted when execute() (or async_execute) is done with them ----
  std::uint64_t commands_applied = 0;   // validated, applied and queued for the journal
  std::uint64_t commands_rejected = 0;  // validate() threw: nothing changed or written
  // apply() threw, or the store refused the command (closed, failed, too large, does not
  // encode) or could not queue it: nothing written
  std::uint64_t commands_failed = 0;
  // Each applied command's execute, in three phases that add up to its latency (encoding the
  // command before them is not counted): `queue` from asking for the state lock until it
  // held it (waiting behind other writers), `apply` from there until its record was queued
  // for the journal (validate, apply, and the wait for queue space), `durable` from there
  // until the record was as safe as the sync policy promises (0 under `none`, which does not
  // wait). A command whose record failed to become safe is not in `durable`.
  histogram execute_queue_seconds, execute_apply_seconds, execute_durable_seconds;

  // ---- journal ----
  std::uint64_t journal_written_bytes = 0;  // record bytes written since the open
  std::uint64_t journal_syncs = 0;          // fdatasyncs that made records durable
  histogram records_per_sync;               // records each of those syncs made durable
  histogram journal_sync_seconds;           // how long each took
  std::uint64_t journal_bytes = 0;          // the segments' record bytes now (no zero fill)
  std::uint64_t journal_segments = 0;       // segments on disk now
  std::uint64_t written_sequence = 0;       // last record written to the OS
  std::uint64_t durable_sequence = 0;       // last record on stable storage

  // ---- snapshots published since the open (explicit, automatic, closing) ----
  histogram snapshot_seconds;  // from the capture of the state to the durable file
  histogram snapshot_bytes;    // file sizes (after compression and encryption)
  std::uint64_t snapshot_failures = 0;

  // ---- the open ----
  double recovery_seconds = 0;           // the whole open: snapshot load and replay
  double recovery_snapshot_seconds = 0;  // of which loading the snapshot
  std::uint64_t recovery_replayed_records = 0;
  std::uint64_t recovery_torn_tails = 0;  // 1 if the open cut a torn tail (or unfinished
                                          // segment) off the journal
  std::uint64_t recovery_torn_bytes = 0;  // bytes it cut

  // An I/O error or a failed rebuild stopped commands (Store::failed()).
  bool failed = false;
};

}  // namespace prevalent
