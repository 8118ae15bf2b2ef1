// The filesystem seam: the POSIX and in-memory directories behave alike.
#include <doctest/doctest.h>

#include <cerrno>

#include <prevalent/directory.hpp>
#include <prevalent/error.hpp>

#include "support.hpp"

using namespace prevalent;

namespace {

void exercise(Directory& dir) {
  {
    auto f = dir.open("a", Directory::open_mode::create_new);
    f->append(as_bytes("hello "));
    f->append(as_bytes("world"));
    f->sync();
    CHECK(f->size() == 11);
    bytes out(5);
    CHECK(f->read_at(6, out) == 5);
    CHECK(as_chars(out) == "world");
    CHECK(f->read_at(9, out) == 2);
    f->truncate(5);
    f->append(as_bytes("!"));
    CHECK(as_chars(read_all(*f)) == "hello!");
  }
  CHECK_THROWS_AS(dir.open("a", Directory::open_mode::create_new), error);
  CHECK_THROWS_AS(dir.open("missing", Directory::open_mode::read), error);
  dir.rename("a", "b");
  dir.sync();
  auto names = dir.list();
  CHECK(std::find(names.begin(), names.end(), "b") != names.end());
  CHECK(std::find(names.begin(), names.end(), "a") == names.end());
  CHECK(as_chars(read_all(*dir.open("b", Directory::open_mode::read))) == "hello!");
  dir.remove("b");
  CHECK_THROWS_AS(dir.remove("b"), error);

  auto held = dir.lock("LOCK");
  try {
    dir.lock("LOCK");
    FAIL("second lock was granted");
  } catch (const error& e) {
    CHECK(e.code() == errc::directory_in_use);
    CHECK(std::string(e.what()).find("in use") != std::string::npos);
  }
  held.reset();
  CHECK_NOTHROW(dir.lock("LOCK"));
}

}  // namespace

TEST_CASE("posix directory") {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp / "sub" / "dir");
  exercise(*dir);
}

TEST_CASE("memory directory") {
  auto dir = make_memory_directory();
  exercise(*dir);
}

TEST_CASE("OS errors name the path") {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp.path());
  try {
    dir->open("nope", Directory::open_mode::read);
    FAIL("opened a missing file");
  } catch (const error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()).find((tmp / "nope").string()) != std::string::npos);
    // The operation, the path and the OS's reason, each once.
    CHECK(std::string(e.what()) ==
          "open " + (tmp / "nope").string() + ": " + std::generic_category().message(ENOENT));
  }
}
