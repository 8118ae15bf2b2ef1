// main() of the ha suite: skips (exit 77, meson's "skipped") when etcd is not installed,
// otherwise runs the doctest cases.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>

#include "etcd_process.hpp"

int main(int argc, char** argv) {
  const std::string etcd = prevalent::ha::test::etcd_binary();
  if (::access(etcd.c_str(), X_OK) != 0) {
    std::printf("%s not found (install Debian etcd-server, or set PREVALENT_ETCD): skipped\n",
                etcd.c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
