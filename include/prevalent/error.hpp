// Errors of prevalent: an error-code enum with its own category, and the exception that carries
// one. Every layer reports failures as `prevalent::error` (a std::system_error), whose message
// names the file, byte offset and record involved where there is one. OS failures keep their
// errno in std::generic_category(), wrapped with the file they concern.
#pragma once

#include <string>
#include <system_error>

namespace prevalent {

enum class errc {
  corrupt_record = 1,     // a journal record failed verification outside the torn tail
  corrupt_segment,        // a journal segment header is damaged or inconsistent
  sequence_gap,           // sequence numbers are not contiguous across records or segments
  corrupt_snapshot,       // a snapshot file failed verification
  no_usable_snapshot,     // no snapshot plus journal combination can rebuild the state
  directory_in_use,       // another store holds the directory lock
  unknown_command,        // a journal record names a command this store does not know
  bad_command_payload,    // a journal record's payload does not decode into its command
  record_too_large,       // a record exceeds the configured maximum size
  store_failed,           // an earlier write or sync failed; the store accepts no commands
  invalid_option,         // an option is out of range
  closed,                 // the journal (or store) has been closed
  compression_failed,     // zstd could not compress a snapshot
  insecure_permissions,   // the store directory or a file in it is open to group or others
  encryption_mismatch,    // a file is encrypted with another key, or encrypted and no key was
                          // given, or not encrypted though a key was given
  authentication_failed,  // an encrypted record or snapshot whose checksum matches does not
                          // authenticate: changed by someone without the key
  command_rejected,       // a command's validate() threw: nothing changed (asio.hpp)
  command_failed,         // a command's apply() threw: nothing was journaled (asio.hpp)
  query_failed,           // the function of an async_query threw (asio.hpp)
  incompatible_version,   // a snapshot's state version or a record's command version that this
                          // program cannot read: newer than its types, or older without an
                          // upgrade() (README, "Changing a command or the state")
  not_reachable,          // time travel: the state asked for is outside the history kept
  stale_epoch,            // a record or a store of an older epoch than the journal's last
                          // record (replication: epochs never decrease along the journal)
  too_far_behind,         // replication: the records asked for were already dropped
  read_only_replica,      // a command sent to a replica: only its primary accepts commands
  replication_timeout,    // acks = replicated(k): fewer than k replicas reported the command
                          // durable in time (it is applied and durable locally)
};

const std::error_category& error_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// The one exception type prevalent throws for its own failures.
class error : public std::system_error {
 public:
  error(std::error_code code, const std::string& what) : std::system_error(code, what) {}
  error(errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
};

// Throws `error` for an OS failure `err` (an errno value), naming the operation and path.
[[noreturn]] void throw_os_error(int err, const std::string& operation, const std::string& path);

}  // namespace prevalent

template <>
struct std::is_error_code_enum<prevalent::errc> : std::true_type {};
