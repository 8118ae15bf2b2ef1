// Codecs: round trips, and decoding of hostile input without exceptions.
#include <doctest/doctest.h>

#include <prevalent/codec.hpp>

using namespace prevalent;

TEST_CASE("each codec round trips a value") {
  nlohmann::json v = {{"cmd", "add"}, {"v", 2}, {"args", {{"key", "a"}, {"by", -3}}}};
  for (auto c : {codec::json, codec::cbor, codec::msgpack}) {
    auto back = decode(as_bytes(encode(v, c)), c);
    REQUIRE(back);
    CHECK(*back == v);
  }
}

TEST_CASE("bad input decodes to nothing and never throws") {
  // Regression (found by fuzz_store): a CBOR map header claiming 2^63 entries made nlohmann
  // throw out_of_range even with allow_exceptions=false.
  const bytes huge_map = {0xbb, 0xa3, 0x63, 0x63, 0x6d, 0x64, 0x63, 0x61, 0x64};
  CHECK_NOTHROW(CHECK(!decode(huge_map, codec::cbor)));
  const bytes huge_msgpack_map = {0xdf, 0xff, 0xff, 0xff, 0xff};
  CHECK_NOTHROW(CHECK(!decode(huge_msgpack_map, codec::msgpack)));
  CHECK(!decode(as_bytes("{\"cmd\":"), codec::json));
  CHECK(!decode(as_bytes(""), codec::cbor));
}
