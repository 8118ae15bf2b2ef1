// The RESP2 request parser of prevalent-kv (examples/kv/resp_parser.hpp): multibulk and
// inline requests fed whole and byte by byte, Redis 7.0's protocol error texts, and the limits.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "redis_number.hpp"
#include "resp_parser.hpp"

namespace {

using args = std::vector<std::string>;

struct outcome {
  std::vector<args> requests;
  std::string error;     // empty: no protocol error
  std::size_t left = 0;  // bytes not consumed at the end
};

// Feeds `input` in chunks of `chunk` bytes (0: all at once), keeping unconsumed bytes the way a
// connection does.
outcome run(const std::string& input, std::size_t chunk = 0, kv::resp_limits limits = {}) {
  kv::RequestParser parser(limits);
  outcome out;
  std::string buffer;
  std::size_t fed = 0;
  while (true) {
    const std::size_t n = chunk == 0 ? input.size() - fed : std::min(chunk, input.size() - fed);
    buffer.append(input, fed, n);
    fed += n;
    for (;;) {
      std::size_t consumed = 0;
      const auto s = parser.parse(buffer, consumed);
      buffer.erase(0, consumed);
      if (s == kv::RequestParser::status::request) {
        out.requests.push_back(parser.take_request());
        continue;
      }
      if (s == kv::RequestParser::status::error) {
        out.error = parser.error();
        out.left = buffer.size();
        return out;
      }
      break;
    }
    if (fed == input.size()) break;
  }
  out.left = buffer.size();
  return out;
}

}  // namespace

TEST_CASE("kv parser: multibulk requests, whole and byte by byte") {
  const std::string in =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$"
      "0\r\n\r\n";
  for (std::size_t chunk : {0, 1, 2, 3, 7}) {
    CAPTURE(chunk);
    const auto out = run(in, chunk);
    CHECK(out.error.empty());
    REQUIRE(out.requests.size() == 3);
    CHECK(out.requests[0] == args{"SET", "k", "he\r\nl"});
    CHECK(out.requests[1] == args{"PING"});
    CHECK(out.requests[2] == args{"GET", ""});
    CHECK(out.left == 0);
  }
}

TEST_CASE("kv parser: an incomplete request is kept until the rest arrives") {
  const auto out = run("*2\r\n$3\r\nGET\r\n$3\r\nab");
  CHECK(out.requests.empty());
  CHECK(out.error.empty());
}

TEST_CASE("kv parser: inline commands split like Redis") {
  const auto out = run("SET a \"x y\\n\\x41\" 'it\\'s'\r\n\r\nPING\n   \nGET  b  \r\n", 1);
  CHECK(out.error.empty());
  REQUIRE(out.requests.size() == 3);
  CHECK(out.requests[0] == args{"SET", "a", "x y\nA", "it's"});
  CHECK(out.requests[1] == args{"PING"});
  CHECK(out.requests[2] == args{"GET", "b"});
}

TEST_CASE("kv parser: empty multibulk requests are skipped") {
  const auto out = run("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
  REQUIRE(out.requests.size() == 1);
  CHECK(out.requests[0] == args{"PING"});
}

TEST_CASE("kv parser: protocol errors carry Redis's texts") {
  CHECK(run("*x\r\n").error == "Protocol error: invalid multibulk length");
  CHECK(run("*3000000000\r\n").error == "Protocol error: invalid multibulk length");
  CHECK(run("*1\r\nx\r\n").error == "Protocol error: expected '$', got 'x'");
  CHECK(run("*1\r\n\r\n\r\n").error == "Protocol error: expected '$', got ' '");
  CHECK(run("*1\r\n$-1\r\n").error == "Protocol error: invalid bulk length");
  CHECK(run("*1\r\n$01\r\n").error == "Protocol error: invalid bulk length");
  CHECK(run("*1\r\n$600000000\r\n").error == "Protocol error: invalid bulk length");
  CHECK(run("SET a \"b\r\n").error == "Protocol error: unbalanced quotes in request");
  CHECK(run("SET a \"b\"c\r\n").error == "Protocol error: unbalanced quotes in request");
  CHECK(run(std::string(70000, 'a')).error == "Protocol error: too big inline request");
  CHECK(run("*" + std::string(70000, '1')).error == "Protocol error: too big mbulk count string");
  CHECK(run("*1\r\n$" + std::string(70000, '1')).error ==
        "Protocol error: too big bulk count string");
}

TEST_CASE("kv parser: requests before a protocol error are still delivered") {
  const auto out = run("PING\r\n*1\r\n$4\r\nECHO\r\n*1\r\n?\r\n");
  CHECK(out.requests.size() == 2);
  CHECK(out.error == "Protocol error: expected '$', got '?'");
}

TEST_CASE("kv parser: limits on bulk length, array length and inline length") {
  kv::resp_limits limits;
  limits.max_bulk_bytes = 10;
  limits.max_array_length = 3;
  limits.max_inline_bytes = 16;
  CHECK(run("*1\r\n$10\r\n0123456789\r\n", 0, limits).error.empty());
  CHECK(run("*1\r\n$11\r\n", 0, limits).error == "Protocol error: invalid bulk length");
  CHECK(run("*3\r\n", 0, limits).error.empty());
  CHECK(run("*4\r\n", 0, limits).error == "Protocol error: invalid multibulk length");
  CHECK(run(std::string(17, 'a'), 0, limits).error == "Protocol error: too big inline request");
  CHECK(run(std::string(16, 'a'), 0, limits).error.empty());
}

TEST_CASE("kv parser: unauthenticated clients get Redis's smaller limits") {
  kv::RequestParser parser;
  parser.set_unauthenticated(true);
  std::size_t consumed = 0;
  CHECK(parser.parse("*11\r\n", consumed) == kv::RequestParser::status::error);
  CHECK(parser.error() == "Protocol error: unauthenticated multibulk length");
  kv::RequestParser parser2;
  parser2.set_unauthenticated(true);
  CHECK(parser2.parse("*1\r\n$16385\r\n", consumed) == kv::RequestParser::status::error);
  CHECK(parser2.error() == "Protocol error: unauthenticated bulk length");
}

TEST_CASE("kv parser: a large bulk is consumed as it arrives") {
  kv::RequestParser parser;
  std::size_t consumed = 0;
  const std::string header = "*1\r\n$1000000\r\n";
  CHECK(parser.parse(header, consumed) == kv::RequestParser::status::need_more);
  CHECK(consumed == header.size());
  const std::string part(4096, 'v');
  CHECK(parser.parse(part, consumed) == kv::RequestParser::status::need_more);
  CHECK(consumed == part.size());
}

TEST_CASE("kv numbers: integers and floats as Redis reads and writes them") {
  CHECK(kv::parse_ll("0") == 0);
  CHECK(kv::parse_ll("-12") == -12);
  CHECK(kv::parse_ll("9223372036854775807") == 9223372036854775807LL);
  CHECK(kv::parse_ll("-9223372036854775808") == (-9223372036854775807LL - 1));
  CHECK_FALSE(kv::parse_ll("9223372036854775808"));
  CHECK_FALSE(kv::parse_ll("-0"));
  CHECK_FALSE(kv::parse_ll("01"));
  CHECK_FALSE(kv::parse_ll("+1"));
  CHECK_FALSE(kv::parse_ll(" 1"));
  CHECK_FALSE(kv::parse_ll(""));
  CHECK(kv::parse_ld("1.5") == 1.5L);
  CHECK_FALSE(kv::parse_ld(" 1"));
  CHECK_FALSE(kv::parse_ld("nan"));
  CHECK_FALSE(kv::parse_ld("1x"));
  CHECK(kv::format_ld(10.5L) == "10.5");
  CHECK(kv::format_ld(3.0L) == "3");
  CHECK(kv::format_ld(-0.0L) == "0");
  CHECK(kv::format_ld(5.0e3L) == "5000");
}

TEST_CASE("kv parser: a NUL byte hides a line end, as strchr() does in Redis") {
  CHECK(run(std::string("PI\0NG\r\n", 7)).requests.empty());
  CHECK(run(std::string("*1\0\r\n$4\r\nPING\r\n", 15)).requests.empty());
  const auto out = run(std::string("*1\r\n$4\r\nPI\0G\r\n", 14));
  REQUIRE(out.requests.size() == 1);
  CHECK(out.requests[0][0] == std::string("PI\0G", 4));
}

TEST_CASE("kv numbers: a NUL byte inside a float makes it no number, as in Redis") {
  CHECK_FALSE(kv::parse_ld(std::string("-18\0 4.8", 8)));
  CHECK_FALSE(kv::parse_ld(std::string("\0", 1)));
  CHECK(kv::parse_ld(std::string("1.5", 3)) == 1.5L);
}
