// The prevalent error category and helpers.
#include "prevalent/error.hpp"

#include <cstring>

namespace prevalent {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "prevalent"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::corrupt_record: return "corrupt journal record";
      case errc::corrupt_segment: return "corrupt journal segment";
      case errc::sequence_gap: return "gap in journal sequence numbers";
      case errc::corrupt_snapshot: return "corrupt snapshot";
      case errc::no_usable_snapshot: return "no usable snapshot";
      case errc::directory_in_use: return "store directory is in use";
      case errc::unknown_command: return "unknown command";
      case errc::bad_command_payload: return "command payload does not decode";
      case errc::record_too_large: return "record too large";
      case errc::store_failed: return "store failed after an I/O error";
      case errc::invalid_option: return "invalid option";
      case errc::closed: return "closed";
      case errc::compression_failed: return "snapshot compression failed";
      case errc::insecure_permissions: return "insecure file permissions";
      case errc::command_rejected: return "command rejected by its validate()";
      case errc::command_failed: return "command failed in its apply()";
      case errc::query_failed: return "query function threw";
      case errc::encryption_mismatch: return "encryption key does not match the file";
      case errc::authentication_failed: return "encrypted data does not authenticate";
      case errc::incompatible_version:
        return "stored state or command version this program cannot read";
      case errc::not_reachable: return "state not reachable in the history kept";
      case errc::stale_epoch: return "record or store of an older epoch than the journal's";
      case errc::too_far_behind: return "records asked for were already dropped";
      case errc::read_only_replica: return "a replica refuses commands";
      case errc::replication_timeout:
        return "too few replicas acknowledged the command in time (it is durable locally)";
    }
    return "unknown prevalent error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category_impl instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

void throw_os_error(int err, const std::string& operation, const std::string& path) {
  std::error_code code(err, std::generic_category());
  throw error(code, operation + " " + path);  // system_error appends code.message()
}

}  // namespace prevalent
