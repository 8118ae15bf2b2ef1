// RequestParser: the RESP2 request side of the Redis protocol, incremental over a byte buffer.
//
// A client sends either multibulk requests ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or inline
// commands ("GET k\r\n", split like redis-cli input, with "double" and 'single' quotes). The
// parser is fed whatever bytes have arrived; it takes what it can and says how many bytes it
// consumed, so the caller drops them and keeps the rest for the next call. Bulk payloads are
// consumed as they arrive (a 64 MiB value does not need 64 MiB of unparsed buffer first).
//
// Protocol errors carry Redis 7.0's texts ("Protocol error: invalid bulk length", ...); after
// one the stream cannot be resynchronised: reply with the error and close the connection, as
// Redis does. Limits bound what one request may hold (bulk length, array length, inline line
// length); a header that announces more than a limit is an error before any payload is read.
// Not thread-safe; one parser per connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kv {

struct resp_limits {
  std::size_t max_bulk_bytes = 512u << 20;   // Redis's proto-max-bulk-len
  std::size_t max_array_length = 1u << 20;   // elements of one multibulk request
  std::size_t max_inline_bytes = 64u << 10;  // Redis's PROTO_INLINE_MAX_SIZE; also line headers
};

class RequestParser {
 public:
  enum class status { need_more, request, error };

  explicit RequestParser(resp_limits limits = {}) : limits_(limits) {}

  // Parses from the start of `in` and sets `consumed` to the bytes taken (the caller drops
  // them). need_more: everything usable was taken, feed more. request: one request is complete,
  // take it with take_request() (bytes after it are untouched). error: error() says why; the
  // connection must be closed after replying "-ERR " + error().
  // Empty requests (a blank inline line, "*0", "*-1") are skipped, as Redis does.
  status parse(std::string_view in, std::size_t& consumed);

  std::vector<std::string> take_request() {
    std::vector<std::string> out;
    out.swap(args_);  // args_ is left empty, not moved-from
    return out;
  }
  const std::string& error() const { return error_; }

  // Before AUTH on a server with a password, Redis allows at most 10 elements and 16 KiB per
  // bulk ("Protocol error: unauthenticated multibulk length" / "... bulk length").
  void set_unauthenticated(bool on) { unauthenticated_ = on; }
  const resp_limits& limits() const { return limits_; }

 private:
  status fail(std::string message);
  status parse_inline(std::string_view in, std::size_t& consumed);

  resp_limits limits_;
  bool unauthenticated_ = false;
  bool in_multibulk_ = false;
  long long elements_left_ = 0;  // of the current multibulk
  long long bulk_left_ = -1;     // payload bytes (plus the 2 terminator bytes) still expected
  std::vector<std::string> args_;
  std::string error_;
};

// Splits an inline command line like Redis's sdssplitargs; false on unbalanced quotes.
bool split_inline_args(std::string_view line, std::vector<std::string>& out);

}  // namespace kv
