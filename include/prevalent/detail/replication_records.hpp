// Records as the journal stores them and the report of a journal cut (issue 11,
// docs/REPLICATION.md): not API. Installed because the templates of include/prevalent/repl/
// (Replica, ReplicatedStore) pass them between the replication link and the store core; the
// journal side that makes and takes them (RecordStream, cut_journal) is internal
// (lib/include/prevalent/replication_log.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"

namespace prevalent {

// One journal record as stored: what a replica needs to store the same record. The record's
// framing (run index, checksums seeded with the segment's salt) is the writer's own and is not
// carried; the payload and its checksum are the same on every copy.
struct raw_record {
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::uint64_t epoch = 0;  // of the primary that wrote it (its segment's)
  prevalent::codec codec = prevalent::codec::json;
  // The payload is sealed (an encrypted segment): it stays sealed, and a replica stores it
  // as is. Only records of an epoch >= 1 (version 3 segments) can be stored elsewhere: their
  // associated data names the epoch and the record, not the segment (docs/FORMAT.md).
  bool sealed = false;
  bytes payload;
};

// What cut_journal() did.
struct cut_report {
  std::uint64_t records_cut = 0;   // records after keep_through that were in the journal
  std::vector<std::string> moved;  // the files now holding them (and the snapshots moved)
};

}  // namespace prevalent
