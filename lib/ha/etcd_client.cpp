#include "prevalent/ha/etcd_client.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>

#include "base64.hpp"
#include "http_call.hpp"

namespace prevalent::ha {

namespace {

using json = nlohmann::json;

// "http://host:port" -> host, port.
void parse_endpoint(const std::string& endpoint, std::string& host, std::string& port) {
  const std::string scheme = "http://";
  if (endpoint.rfind(scheme, 0) != 0) {
    throw std::invalid_argument("etcd endpoint \"" + endpoint +
                                "\": expected http://HOST:PORT (https is not supported)");
  }
  std::string rest = endpoint.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size() ||
      rest.find('/') != std::string::npos) {
    throw std::invalid_argument("etcd endpoint \"" + endpoint + "\": expected http://HOST:PORT");
  }
  host = rest.substr(0, colon);
  port = rest.substr(colon + 1);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  for (char c : port) {
    if (c < '0' || c > '9') {
      throw std::invalid_argument("etcd endpoint \"" + endpoint + "\": port is not a number");
    }
  }
}

// The first key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// The gateway writes int64 fields as strings, and leaves out fields that are 0 or false.
std::int64_t int_field(const json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_string()) return std::stoll(it->get<std::string>());
  return it->get<std::int64_t>();
}

etcd_kv to_kv(const json& j) {
  etcd_kv kv;
  kv.key = detail::base64_decode(j.value("key", ""), "a key in etcd's answer");
  kv.value = detail::base64_decode(j.value("value", ""), "a value in etcd's answer");
  kv.create_revision = int_field(j, "create_revision");
  kv.mod_revision = int_field(j, "mod_revision");
  kv.version = int_field(j, "version");
  kv.lease = int_field(j, "lease");
  return kv;
}

etcd_range_result to_range(const json& j) {
  etcd_range_result r;
  if (const auto h = j.find("header"); h != j.end()) r.revision = int_field(*h, "revision");
  if (const auto kvs = j.find("kvs"); kvs != j.end()) {
    for (const auto& kv : *kvs) r.kvs.push_back(to_kv(kv));
  }
  return r;
}

json range_request(const std::string& key, bool prefix) {
  json j{{"key", detail::base64_encode(key)}};
  if (prefix) j["range_end"] = detail::base64_encode(prefix_end(key));
  return j;
}

json put_request(const std::string& key, const std::string& value, std::int64_t lease) {
  json j{{"key", detail::base64_encode(key)}, {"value", detail::base64_encode(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  return j;
}

json op_request(const etcd_op& op) {
  switch (op.what) {
    case etcd_op::type::put: return {{"request_put", put_request(op.key, op.value, op.lease)}};
    case etcd_op::type::get: return {{"request_range", range_request(op.key, false)}};
    case etcd_op::type::get_prefix: return {{"request_range", range_request(op.key, true)}};
    case etcd_op::type::del: return {{"request_delete_range", range_request(op.key, false)}};
  }
  throw std::invalid_argument("etcd_op: unknown type");
}

json compare_request(const etcd_compare& c) {
  static constexpr const char* targets[] = {"VERSION", "CREATE", "MOD", "VALUE"};
  static constexpr const char* results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json j{{"key", detail::base64_encode(c.key)},
         {"target", targets[static_cast<int>(c.what)]},
         {"result", results[static_cast<int>(c.op)]}};
  switch (c.what) {
    case etcd_compare::target::version: j["version"] = std::to_string(c.number); break;
    case etcd_compare::target::create_revision:
      j["create_revision"] = std::to_string(c.number);
      break;
    case etcd_compare::target::mod_revision: j["mod_revision"] = std::to_string(c.number); break;
    case etcd_compare::target::value: j["value"] = detail::base64_encode(c.value); break;
  }
  return j;
}

}  // namespace

EtcdClient::EtcdClient(etcd_options options) : options_(std::move(options)) {
  parse_endpoint(options_.endpoint, host_, port_);
  if (options_.timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("etcd_options::timeout must be positive");
  }
}

EtcdClient EtcdClient::with_timeout(std::chrono::milliseconds timeout) const {
  etcd_options o = options_;
  o.timeout = timeout;
  return EtcdClient(std::move(o));
}

namespace {

// POSTs `body` to the gateway path and returns the parsed answer, or throws etcd_error.
json call(const std::string& host, const std::string& port, const etcd_options& options,
          const std::string& path, const json& body) {
  const detail::http_request request{host, port, true, path, body.dump()};
  const auto reply = detail::http_call(request, options.timeout, options.endpoint);
  const std::string where = "etcd at " + options.endpoint + ": POST " + path;
  json answer;
  try {
    answer = json::parse(reply.body);
  } catch (const json::exception& e) {
    throw etcd_error(etcd_error::kind::bad_response, 0,
                     where + ": HTTP " + std::to_string(reply.status) +
                         " with a body that is not JSON (" + e.what() +
                         "): " + reply.body.substr(0, 200));
  }
  // Streamed endpoints (lease keepalive) wrap each message in {"result": ...} or {"error": ...}.
  const json* error = nullptr;
  if (answer.is_object() && answer.contains("error")) {
    error = answer["error"].is_object() ? &answer["error"] : &answer;
  }
  if (reply.status != 200 || error != nullptr) {
    const json& e = error != nullptr ? *error : answer;
    const std::string message =
        e.is_object() ? e.value("message", e.value("error", std::string("no message"))) : "";
    const int code = e.is_object() ? e.value("code", 0) : 0;
    throw etcd_error(etcd_error::kind::status, code,
                     where + ": HTTP " + std::to_string(reply.status) + ", code " +
                         std::to_string(code) + ": " + message);
  }
  if (!answer.is_object()) {
    throw etcd_error(etcd_error::kind::bad_response, 0,
                     where + ": the answer is not a JSON object: " + reply.body.substr(0, 200));
  }
  if (answer.contains("result")) return answer["result"];
  return answer;
}

}  // namespace

etcd_lease EtcdClient::grant(std::int64_t ttl_seconds) const {
  if (ttl_seconds <= 0) throw std::invalid_argument("etcd lease TTL must be positive seconds");
  const json a =
      call(host_, port_, options_, "/v3/lease/grant", {{"TTL", std::to_string(ttl_seconds)}});
  etcd_lease lease{int_field(a, "ID"), int_field(a, "TTL")};
  if (lease.id == 0 || lease.ttl <= 0) {
    throw etcd_error(etcd_error::kind::bad_response, 0,
                     "etcd at " + options_.endpoint + ": POST /v3/lease/grant: no lease in " +
                         a.dump().substr(0, 200));
  }
  return lease;
}

std::int64_t EtcdClient::keepalive(std::int64_t lease_id) const {
  const json a =
      call(host_, port_, options_, "/v3/lease/keepalive", {{"ID", std::to_string(lease_id)}});
  return int_field(a, "TTL");
}

void EtcdClient::revoke(std::int64_t lease_id) const {
  call(host_, port_, options_, "/v3/lease/revoke", {{"ID", std::to_string(lease_id)}});
}

std::int64_t EtcdClient::put(const std::string& key, const std::string& value,
                             std::int64_t lease) const {
  const json a = call(host_, port_, options_, "/v3/kv/put", put_request(key, value, lease));
  return int_field(a.value("header", json::object()), "revision");
}

std::optional<etcd_kv> EtcdClient::get(const std::string& key) const {
  auto r = to_range(call(host_, port_, options_, "/v3/kv/range", range_request(key, false)));
  if (r.kvs.empty()) return std::nullopt;
  return std::move(r.kvs.front());
}

etcd_range_result EtcdClient::get_prefix(const std::string& prefix) const {
  return to_range(call(host_, port_, options_, "/v3/kv/range", range_request(prefix, true)));
}

std::int64_t EtcdClient::del(const std::string& key) const {
  return int_field(call(host_, port_, options_, "/v3/kv/deleterange", range_request(key, false)),
                   "deleted");
}

std::int64_t EtcdClient::del_prefix(const std::string& prefix) const {
  return int_field(call(host_, port_, options_, "/v3/kv/deleterange", range_request(prefix, true)),
                   "deleted");
}

etcd_txn_result EtcdClient::txn(const std::vector<etcd_compare>& compares,
                                const std::vector<etcd_op>& success,
                                const std::vector<etcd_op>& failure) const {
  json body{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) body["compare"].push_back(compare_request(c));
  for (const auto& op : success) body["success"].push_back(op_request(op));
  for (const auto& op : failure) body["failure"].push_back(op_request(op));
  const json a = call(host_, port_, options_, "/v3/kv/txn", body);
  etcd_txn_result result;
  result.succeeded = a.value("succeeded", false);
  result.revision = int_field(a.value("header", json::object()), "revision");
  if (const auto responses = a.find("responses"); responses != a.end()) {
    for (const auto& r : *responses) {
      const auto range = r.find("response_range");
      result.ranges.push_back(range != r.end() ? to_range(*range) : etcd_range_result{});
    }
  }
  return result;
}

bool EtcdClient::healthy() const noexcept {
  try {
    const detail::http_request request{host_, port_, false, "/health", ""};
    const auto reply = detail::http_call(request, options_.timeout, options_.endpoint);
    if (reply.status != 200) return false;
    const json a = json::parse(reply.body);
    return a.value("health", "") == "true";
  } catch (...) {
    return false;
  }
}

}  // namespace prevalent::ha
