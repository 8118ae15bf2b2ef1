// thrown_error(f): the prevalent::error that f() throws, for tests that check its code and
// message; fails the doctest case when f() throws nothing.
#pragma once
#include <doctest/doctest.h>

#include <system_error>

#include <prevalent/error.hpp>

namespace test {

template <class F>
prevalent::error thrown_error(F&& f) {
  try {
    f();
  } catch (const prevalent::error& e) {
    return e;
  }
  FAIL("no prevalent::error was thrown");
  return prevalent::error(std::error_code(), "");  // not reached: FAIL throws
}

}  // namespace test
