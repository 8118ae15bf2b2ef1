// One HTTP/1.1 request and its response over a new loopback or LAN connection, within a
// deadline (Boost.Beast on a private io_context): what EtcdClient sends to etcd's gateway.
#pragma once

#include <chrono>
#include <string>

namespace prevalent::ha::detail {

struct http_reply {
  int status = 0;
  std::string body;
};

struct http_request {
  std::string host;
  std::string port;
  bool post = true;  // false: GET
  std::string target;
  std::string body;  // JSON
};

// Throws etcd_error: kind::timeout when no complete response came before `timeout`,
// kind::connection when resolving, connecting, sending or receiving failed. `endpoint` names
// the server in those messages.
http_reply http_call(const http_request& request, std::chrono::milliseconds timeout,
                     const std::string& endpoint);

}  // namespace prevalent::ha::detail
