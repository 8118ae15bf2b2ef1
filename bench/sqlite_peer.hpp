// The peer in the benchmarks: SQLite in WAL mode with synchronous=FULL, one connection per
// thread, one upsert per transaction: what a user would otherwise reach for.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

class sqlite_peer {
 public:
  sqlite_peer(const std::filesystem::path& file, int connections) {
    for (int i = 0; i < connections; ++i) {
      sqlite3* db = nullptr;
      if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("sqlite3_open");
      sqlite3_busy_timeout(db, 60000);
      exec(db, "PRAGMA journal_mode=WAL");
      exec(db, "PRAGMA synchronous=FULL");
      if (i == 0) exec(db, "CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT)");
      sqlite3_stmt* st = nullptr;
      if (sqlite3_prepare_v2(db,
                             "INSERT INTO kv(k, v) VALUES(?1, ?2) "
                             "ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                             -1, &st, nullptr) != SQLITE_OK)
        throw std::runtime_error(sqlite3_errmsg(db));
      dbs_.push_back(db);
      stmts_.push_back(st);
    }
  }
  ~sqlite_peer() {
    for (auto* s : stmts_) sqlite3_finalize(s);
    for (auto* d : dbs_) sqlite3_close(d);
  }
  sqlite_peer(const sqlite_peer&) = delete;
  sqlite_peer& operator=(const sqlite_peer&) = delete;

  // One autocommit transaction on connection `i`.
  void upsert(int i, const std::string& key, const std::string& value) {
    sqlite3_stmt* st = stmts_[static_cast<std::size_t>(i)];
    sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_BUSY) sqlite3_reset(st);
    if (rc != SQLITE_DONE)
      throw std::runtime_error(sqlite3_errmsg(dbs_[static_cast<std::size_t>(i)]));
    sqlite3_reset(st);
  }

 private:
  static void exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "sqlite error";
      sqlite3_free(err);
      throw std::runtime_error(msg);
    }
  }
  std::vector<sqlite3*> dbs_;
  std::vector<sqlite3_stmt*> stmts_;
};

}  // namespace bench
