// libFuzzer target: prevalent-kv's RESP2 request parser (examples/kv/resp_parser.hpp) on
// arbitrary bytes. Checks that it never reads out of bounds (ASan), never consumes more than
// it was given, gives the same requests and the same error whether the input arrives at once
// or in chunks (sizes taken from the first byte), and that each request it returns, written
// back as a multibulk, parses to itself.
#include <cstdlib>
#include <string>
#include <vector>

#include "resp_parser.hpp"

namespace {

struct result {
  std::vector<std::vector<std::string>> requests;
  std::string error;
};

result parse_all(std::string_view in, std::size_t chunk, const kv::resp_limits& limits) {
  kv::RequestParser parser(limits);
  result out;
  std::string buffer;
  std::size_t fed = 0;
  for (;;) {
    const std::size_t n = std::min(chunk, in.size() - fed);
    buffer.append(in.substr(fed, n));
    fed += n;
    for (;;) {
      std::size_t consumed = 0;
      const auto s = parser.parse(buffer, consumed);
      if (consumed > buffer.size()) std::abort();
      buffer.erase(0, consumed);
      if (s == kv::RequestParser::status::request) {
        auto request = parser.take_request();
        if (request.empty()) std::abort();  // empty requests are skipped, never returned
        out.requests.push_back(std::move(request));
      } else if (s == kv::RequestParser::status::error) {
        out.error = parser.error();
        return out;
      } else {
        break;
      }
    }
    if (fed == in.size()) return out;
  }
}

std::string multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  kv::resp_limits limits;
  limits.max_bulk_bytes = 1000;
  limits.max_array_length = 50;
  limits.max_inline_bytes = 200;
  const std::size_t chunk = 1 + data[0] % 17;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const result whole = parse_all(in, in.size() + 1, limits);
  const result pieces = parse_all(in, chunk, limits);
  // A line-length error depends on how much was buffered when it was noticed; only compare
  // the requests before it, as far as both got.
  const std::size_t common = std::min(whole.requests.size(), pieces.requests.size());
  for (std::size_t i = 0; i < common; ++i)
    if (whole.requests[i] != pieces.requests[i]) std::abort();
  if (whole.error.empty() && pieces.error.empty() &&
      whole.requests.size() != pieces.requests.size())
    std::abort();
  for (const auto& request : whole.requests) {
    const result again = parse_all(multibulk(request), 1 << 20, kv::resp_limits{});
    if (!again.error.empty() || again.requests.size() != 1 || again.requests[0] != request)
      std::abort();
  }
  return 0;
}
