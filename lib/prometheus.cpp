// The Prometheus text exposition format (prometheus.hpp).
#include "prevalent/prometheus.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace prevalent {

namespace {

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// A float as Prometheus reads it: the shortest form that reads back exactly, +Inf, NaN.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

class writer {
 public:
  explicit writer(const prometheus_labels& labels) {
    for (const auto& [name, value] : labels) {
      if (!valid_label_name(name))
        throw std::invalid_argument("prometheus label name \"" + name +
                                    "\" is not valid: it must match [a-zA-Z_][a-zA-Z0-9_]* and "
                                    "not start with __");
      if (!common_.empty()) common_ += ',';
      common_ += name;
      common_ += "=\"";
      escape(common_, value);
      common_ += '"';
    }
  }

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // plain text without backslashes or newlines
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // One sample; `extra` is a label pair already formatted (name="value"), or empty.
  void sample(std::string_view name, std::string_view extra, const std::string& value) {
    out_ += name;
    if (!common_.empty() || !extra.empty()) {
      out_ += '{';
      out_ += common_;
      if (!common_.empty() && !extra.empty()) out_ += ',';
      out_ += extra;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view extra, std::uint64_t value) {
    sample(name, extra, std::to_string(value));
  }

  void scalar(std::string_view name, std::string_view type, std::string_view help,
              const std::string& value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  void scalar(std::string_view name, std::string_view type, std::string_view help,
              std::uint64_t value) {
    scalar(name, type, help, std::to_string(value));
  }

  // The samples of one histogram (the family line is the caller's, so that several label
  // sets can share it). `extra`: a label pair for all of them, or empty.
  void histogram_samples(std::string_view name, std::string_view extra, const histogram& h) {
    const std::string base(name);
    const std::string prefix = extra.empty() ? std::string() : std::string(extra) + ",";
    for (std::size_t i = 0; i < h.upper_bounds.size(); ++i)
      sample(base + "_bucket", prefix + "le=\"" + number(h.upper_bounds[i]) + "\"", h.counts[i]);
    sample(base + "_bucket", prefix + "le=\"+Inf\"", h.count);
    sample(base + "_sum", extra, number(h.sum));
    sample(base + "_count", extra, h.count);
  }
  void histogram_family(std::string_view name, std::string_view help, const histogram& h) {
    family(name, "histogram", help);
    histogram_samples(name, {}, h);
  }

  std::string take() { return std::move(out_); }

 private:
  static void escape(std::string& out, std::string_view v) {
    for (const char c : v) {
      if (c == '\\')
        out += "\\\\";
      else if (c == '"')
        out += "\\\"";
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
  }

  std::string common_;
  std::string out_;
};

}  // namespace

std::string prometheus_text(const store_metrics& m, const prometheus_labels& labels) {
  writer w(labels);
  w.family("prevalent_commands_total", "counter",
           "Commands by outcome: applied (and queued for the journal), rejected (validate "
           "threw), failed (apply threw or the store refused it).");
  w.sample("prevalent_commands_total", "outcome=\"applied\"", m.commands_applied);
  w.sample("prevalent_commands_total", "outcome=\"rejected\"", m.commands_rejected);
  w.sample("prevalent_commands_total", "outcome=\"failed\"", m.commands_failed);

  w.family("prevalent_execute_seconds", "histogram",
           "Latency of applied commands by phase: queue (waiting for the state lock), apply "
           "(validate, apply, queue the record), durable (until as safe as the sync policy "
           "promises).");
  w.histogram_samples("prevalent_execute_seconds", "phase=\"queue\"", m.execute_queue_seconds);
  w.histogram_samples("prevalent_execute_seconds", "phase=\"apply\"", m.execute_apply_seconds);
  w.histogram_samples("prevalent_execute_seconds", "phase=\"durable\"", m.execute_durable_seconds);

  w.scalar("prevalent_journal_written_bytes_total", "counter",
           "Journal record bytes written since the store opened.", m.journal_written_bytes);
  w.scalar("prevalent_journal_syncs_total", "counter",
           "fdatasyncs of the journal that made records durable.", m.journal_syncs);
  w.histogram_family("prevalent_journal_sync_records", "Records made durable by each sync.",
                     m.records_per_sync);
  w.histogram_family("prevalent_journal_sync_seconds", "Duration of each journal sync.",
                     m.journal_sync_seconds);
  w.scalar("prevalent_journal_bytes", "gauge",
           "Record bytes in the journal's segments on disk (without preallocated space).",
           m.journal_bytes);
  w.scalar("prevalent_journal_segments", "gauge", "Journal segments on disk.", m.journal_segments);
  w.scalar("prevalent_written_sequence", "gauge",
           "Sequence number of the last record written to the OS.", m.written_sequence);
  w.scalar("prevalent_durable_sequence", "gauge",
           "Sequence number of the last record on stable storage.", m.durable_sequence);

  w.histogram_family("prevalent_snapshot_seconds",
                     "Duration of each snapshot, from the capture of the state to the durable "
                     "file.",
                     m.snapshot_seconds);
  w.histogram_family("prevalent_snapshot_bytes", "Size of each snapshot file written.",
                     m.snapshot_bytes);
  w.scalar("prevalent_snapshot_failures_total", "counter", "Snapshots that failed.",
           m.snapshot_failures);

  w.scalar("prevalent_recovery_seconds", "gauge",
           "Duration of the open: snapshot load and journal replay.", number(m.recovery_seconds));
  w.scalar("prevalent_recovery_snapshot_seconds", "gauge",
           "Part of the open spent loading the snapshot.", number(m.recovery_snapshot_seconds));
  w.scalar("prevalent_recovery_replayed_records", "gauge", "Journal records replayed by the open.",
           m.recovery_replayed_records);
  w.scalar("prevalent_recovery_torn_tails", "gauge",
           "1 if the open cut a torn tail (an unfinished write) off the journal, else 0.",
           m.recovery_torn_tails);
  w.scalar("prevalent_recovery_torn_bytes", "gauge", "Bytes the open cut off the journal.",
           m.recovery_torn_bytes);
  w.scalar("prevalent_failed", "gauge",
           "1 once an I/O error or a failed rebuild stopped the store from accepting commands.",
           std::uint64_t{m.failed ? 1u : 0u});
  return w.take();
}

}  // namespace prevalent
