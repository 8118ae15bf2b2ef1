#include "metrics_http.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <prevalent/prometheus.hpp>
#include <string>

namespace kv {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(tcp::socket socket, const std::function<std::string()>& body)
      : stream_(std::move(socket)), body_(body) {}

  void run() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (!ec) self->answer();
                     });
  }

 private:
  void answer() {
    response_.version(request_.version());
    response_.keep_alive(false);
    response_.set(http::field::server, "prevalent-kv");
    const std::string target(request_.target().data(), request_.target().size());
    if (target != "/metrics" && target.rfind("/metrics?", 0) != 0) {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "not found: the metrics are at /metrics\n";
    } else if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET, HEAD");
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "method not allowed: use GET\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, prevalent::prometheus_content_type);
      response_.body() = body_();
    }
    response_.prepare_payload();
    if (request_.method() == http::verb::head) response_.body().clear();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code, std::size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      });
  }

  beast::tcp_stream stream_;
  const std::function<std::string()>& body_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

MetricsEndpoint::MetricsEndpoint(boost::asio::io_context& io, std::function<std::string()> body)
    : io_(io), body_(std::move(body)), acceptor_(io) {}

int MetricsEndpoint::start(const std::string& bind, int port) {
  const tcp::endpoint ep(boost::asio::ip::make_address(bind), static_cast<unsigned short>(port));
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(64);
  accept();
  return acceptor_.local_endpoint().port();
}

void MetricsEndpoint::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void MetricsEndpoint::accept() {
  acceptor_.async_accept(io_, [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed by stop()
    std::make_shared<Exchange>(std::move(socket), body_)->run();
    accept();
  });
}

}  // namespace kv
