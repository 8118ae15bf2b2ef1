// A small etcd v3 client over etcd's JSON gateway (HTTP/1.1, POST /v3/...), for failover
// coordination (prevalent/ha/coordinator.hpp) and for services of your own that keep a few keys
// in etcd. In the library prevalent-ha (pkg-config `prevalent-ha`, CMake `prevalent::ha`).
//
// Every call opens one connection, sends one request and reads one response within a deadline
// (etcd_options::timeout, or the `timeout` argument): a stuck etcd (stopped, partitioned, slow
// disk) makes the call fail with etcd_error::kind::timeout, never hang. Errors name the
// endpoint, the gateway path and what failed. A call that timed out or lost its connection has
// an unknown outcome, like a failed COMMIT: etcd may still have received and applied it (a
// stopped etcd applies what waits in its socket once it runs again). Keys and values are bytes
// (std::string), sent base64-encoded as the gateway wants. An EtcdClient holds no connection and no
// lock: one client may be used from several threads at once.
//
// Watches are not offered: etcd's gateway streams them, and a poll of a key's mod_revision
// (range() with its header revision) serves the coordinator at its refresh rate.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace prevalent::ha {

struct etcd_options {
  // "http://127.0.0.1:2379" (http only; host and port; no path).
  std::string endpoint = "http://127.0.0.1:2379";
  // The deadline of each call: connect, send, receive.
  std::chrono::milliseconds timeout{2000};
};

// What a call could not do. what() names the endpoint, the gateway path and the cause.
class etcd_error : public std::runtime_error {
 public:
  enum class kind {
    timeout,      // no complete answer before the deadline
    connection,   // could not connect, or the connection broke
    status,       // etcd answered with an error (HTTP status or gRPC code)
    bad_response  // an answer that is not what the gateway sends
  };
  etcd_error(kind k, int grpc_code, const std::string& message)
      : std::runtime_error(message), kind_(k), grpc_code_(grpc_code) {}
  kind error_kind() const noexcept { return kind_; }
  // The gRPC status code etcd gave (5: not found, ...) for kind::status, else 0.
  int grpc_code() const noexcept { return grpc_code_; }

 private:
  kind kind_;
  int grpc_code_;
};

struct etcd_kv {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;  // 0: none
};

struct etcd_range_result {
  std::int64_t revision = 0;  // the store's revision when it was read
  std::vector<etcd_kv> kvs;
};

struct etcd_lease {
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // seconds, as granted
};

// One condition of a transaction, on one key. A key that does not exist has create_revision,
// mod_revision and version 0 (so "create only if absent" is create_revision == 0).
struct etcd_compare {
  enum class target { version, create_revision, mod_revision, value };
  enum class result { equal, greater, less, not_equal };
  std::string key;
  target what = target::create_revision;
  result op = result::equal;
  std::int64_t number = 0;  // for version and the revisions
  std::string value;        // for target::value

  static etcd_compare create_revision_is(std::string key, std::int64_t revision) {
    return {std::move(key), target::create_revision, result::equal, revision, {}};
  }
  static etcd_compare mod_revision_is(std::string key, std::int64_t revision) {
    return {std::move(key), target::mod_revision, result::equal, revision, {}};
  }
  static etcd_compare value_is(std::string key, std::string value) {
    return {std::move(key), target::value, result::equal, 0, std::move(value)};
  }
};

// One operation of a transaction's branch.
struct etcd_op {
  enum class type { put, get, get_prefix, del };
  type what = type::get;
  std::string key;
  std::string value;       // put
  std::int64_t lease = 0;  // put

  static etcd_op put(std::string key, std::string value, std::int64_t lease = 0) {
    return {type::put, std::move(key), std::move(value), lease};
  }
  static etcd_op get(std::string key) { return {type::get, std::move(key), {}, 0}; }
  static etcd_op get_prefix(std::string prefix) {
    return {type::get_prefix, std::move(prefix), {}, 0};
  }
  static etcd_op del(std::string key) { return {type::del, std::move(key), {}, 0}; }
};

struct etcd_txn_result {
  bool succeeded = false;     // the compares held: the success branch ran
  std::int64_t revision = 0;  // the store's revision after the transaction
  // One entry per operation of the branch that ran; filled for get and get_prefix, empty
  // (revision 0) for put and del.
  std::vector<etcd_range_result> ranges;
};

class EtcdClient {
 public:
  explicit EtcdClient(etcd_options options);

  const etcd_options& options() const noexcept { return options_; }

  // Leases. keepalive() sends one refresh and returns the TTL etcd gave (seconds), 0 when the
  // lease no longer exists (expired or revoked). revoke() deletes the keys attached to it.
  etcd_lease grant(std::int64_t ttl_seconds) const;
  std::int64_t keepalive(std::int64_t lease_id) const;
  void revoke(std::int64_t lease_id) const;

  // Keys. put() returns the revision it wrote. get() returns nullopt when the key is absent.
  std::int64_t put(const std::string& key, const std::string& value, std::int64_t lease = 0) const;
  std::optional<etcd_kv> get(const std::string& key) const;
  etcd_range_result get_prefix(const std::string& prefix) const;
  // Deletes a key (del) or every key under a prefix; returns how many were deleted.
  std::int64_t del(const std::string& key) const;
  std::int64_t del_prefix(const std::string& prefix) const;

  // If every compare holds, runs `success`, else `failure`, atomically.
  etcd_txn_result txn(const std::vector<etcd_compare>& compares,
                      const std::vector<etcd_op>& success,
                      const std::vector<etcd_op>& failure = {}) const;

  // True when GET /health answers {"health":"true"} within the deadline.
  bool healthy() const noexcept;

  // With a deadline other than options().timeout, for this call only.
  EtcdClient with_timeout(std::chrono::milliseconds timeout) const;

 private:
  etcd_options options_;
  std::string host_;
  std::string port_;
};

}  // namespace prevalent::ha
