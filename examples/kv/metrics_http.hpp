// prevalent-kv's metrics endpoint (--metrics-port): a small HTTP/1.1 server (Boost.Beast) on
// the server's io_context that answers GET /metrics with the Prometheus text exposition of
// the store's metrics and the server's own counters, for Prometheus to scrape. One request per
// connection (each reply says Connection: close); other paths answer 404, other methods 405.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

namespace kv {

class MetricsEndpoint {
 public:
  // `body` builds the exposition at each scrape (on the io_context's thread).
  MetricsEndpoint(boost::asio::io_context& io, std::function<std::string()> body);
  // Binds and listens on `bind`:`port` (0: any free port); returns the port.
  int start(const std::string& bind, int port);
  // Stops accepting; requests in flight finish (each has a 10 s deadline).
  void stop();

 private:
  void accept();

  boost::asio::io_context& io_;
  std::function<std::string()> body_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace kv
