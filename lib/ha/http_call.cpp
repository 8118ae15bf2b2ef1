#include "http_call.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <exception>
#include <optional>
#include <system_error>

#include "prevalent/ha/etcd_client.hpp"

namespace prevalent::ha::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::uint64_t max_response_bytes = 64U << 20U;

std::string describe(const http_request& r, const std::string& endpoint) {
  return "etcd at " + endpoint + ": " + (r.post ? "POST " : "GET ") + r.target;
}

}  // namespace

http_reply http_call(const http_request& request, std::chrono::milliseconds timeout,
                     const std::string& endpoint) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Declared first, destroyed last: what is still pending at the deadline is cancelled by the
  // stream's and resolver's destructors and dropped with the context.
  net::io_context ioc;
  net::ip::tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  const char* stage = "resolve";
  std::optional<http_reply> reply;
  std::exception_ptr failure;

  auto exchange = [&]() -> net::awaitable<void> {
    auto addresses =
        co_await resolver.async_resolve(request.host, request.port, net::use_awaitable);
    stage = "connect";
    co_await stream.async_connect(addresses, net::use_awaitable);
    http::request<http::string_body> req{request.post ? http::verb::post : http::verb::get,
                                         request.target, 11};
    req.set(http::field::host, request.host + ":" + request.port);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(false);
    req.body() = request.body;
    req.prepare_payload();
    stage = "send";
    co_await http::async_write(stream, req, net::use_awaitable);
    stage = "receive";
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_response_bytes);
    co_await http::async_read(stream, buffer, parser, net::use_awaitable);
    reply = http_reply{static_cast<int>(parser.get().result_int()), std::move(parser.get().body())};
  };
  net::co_spawn(ioc, exchange(), [&](const std::exception_ptr& e) { failure = e; });
  ioc.run_until(deadline);

  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      throw etcd_error(etcd_error::kind::connection, 0,
                       describe(request, endpoint) + ": " + stage + " failed: " + e.what());
    }
  }
  if (!reply) {
    throw etcd_error(etcd_error::kind::timeout, 0,
                     describe(request, endpoint) + ": no answer within " +
                         std::to_string(timeout.count()) + " ms (stuck at " + stage + ")");
  }
  return std::move(*reply);
}

}  // namespace prevalent::ha::detail
