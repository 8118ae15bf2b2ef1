// A peer in the benchmarks: RocksDB (Debian librocksdb-dev) with sync writes
// (WriteOptions::sync = true: every Put waits for its fsync of the WAL), one shared DB, which
// groups concurrent writers' WAL writes itself. Built only with -Drocksdb=enabled|auto.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace bench {

class rocksdb_peer {
 public:
  explicit rocksdb_peer(const std::filesystem::path& dir) {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    const rocksdb::Status s = rocksdb::DB::Open(options, dir.string(), &db);
    if (!s.ok()) throw std::runtime_error("rocksdb open " + dir.string() + ": " + s.ToString());
    db_.reset(db);
    write_.sync = true;
  }
  rocksdb_peer(const rocksdb_peer&) = delete;
  rocksdb_peer& operator=(const rocksdb_peer&) = delete;

  // One durable Put: returns once the WAL record is synced.
  void put(const std::string& key, const std::string& value) {
    const rocksdb::Status s = db_->Put(write_, key, value);
    if (!s.ok()) throw std::runtime_error("rocksdb put: " + s.ToString());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_;
};

}  // namespace bench
