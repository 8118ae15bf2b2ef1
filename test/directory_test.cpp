// The filesystem seam: the POSIX and in-memory directories, and the fault-injecting disk over
// either, behave alike; the fault-injecting disk keeps exactly what was synced.
#include <doctest/doctest.h>

#include <cerrno>

#include <prevalent/directory.hpp>
#include <prevalent/error.hpp>
#include <prevalent/testing/fault_injecting_directory.hpp>

#include "support.hpp"

using namespace prevalent;
using prevalent::testing::FaultInjectingDirectory;

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

TEST_CASE("fault-injecting directory over a posix and over a memory directory") {
  test::temp_dir tmp;
  auto over_posix = std::make_shared<FaultInjectingDirectory>(open_posix_directory(tmp.path()));
  exercise(*over_posix);
  CHECK(over_posix->path() == tmp.path().string());  // messages name the real directory
  auto over_memory = std::make_shared<FaultInjectingDirectory>();
  exercise(*over_memory);
  CHECK(over_memory->operations() == over_posix->operations());
}

TEST_CASE("the fault-injecting disk over a real directory keeps only what was synced") {
  test::temp_dir tmp;
  auto real = open_posix_directory(tmp.path());
  real->open("old", Directory::open_mode::create_new)->append(as_bytes("there before"));
  auto disk = std::make_shared<FaultInjectingDirectory>(real);
  auto a = disk->open("a", Directory::open_mode::create_new);
  a->append(as_bytes("hello"));
  a->sync();
  disk->sync();
  a->truncate(2);  // synced: cut, then grown back with zeros
  a->truncate(4);
  a->append(as_bytes("!"));
  a->sync();
  a->append(as_bytes(" unsynced"));
  disk->open("b", Directory::open_mode::create_new)->sync();  // its entry never synced
  disk->remove("old");                                        // nor this removal
  auto image = disk->power_loss(1, /*tear=*/false, /*reorder=*/false);
  auto names = image->list();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"a", "old"});
  CHECK(read_all(*image->open("a", Directory::open_mode::read)) == bytes{'h', 'e', 0, 0, '!'});
  CHECK(as_chars(read_all(*image->open("old", Directory::open_mode::read))) == "there before");
  // The real directory went on as told: the wrapper only remembers.
  CHECK(as_chars(read_all(*real->open("a", Directory::open_mode::read))) ==
        std::string("he\0\0! unsynced", 14));
  CHECK_THROWS_AS(real->open("old", Directory::open_mode::read), error);
}

TEST_CASE("fail_when fails what the rule picks, with EIO, and changes nothing") {
  using op = FaultInjectingDirectory::op;
  auto disk = std::make_shared<FaultInjectingDirectory>();
  auto f = disk->open("journal-1", Directory::open_mode::create_new);
  std::vector<std::pair<op, std::string>> asked;
  disk->fail_when([&](op kind, const std::string& name) {
    asked.emplace_back(kind, name);
    return kind == op::write && name == "journal-1";
  });
  try {
    f->append(as_bytes("x"));
    FAIL("the rule did not fail the append");
  } catch (const error& e) {
    CHECK(e.code() == std::errc::io_error);
  }
  CHECK(f->size() == 0);
  CHECK_NOTHROW(f->sync());
  CHECK_NOTHROW(disk->rename("journal-1", "journal-2"));
  CHECK(asked == std::vector<std::pair<op, std::string>>{
                     {op::write, "journal-1"}, {op::sync, "journal-1"}, {op::rename, "journal-2"}});
  disk->fail_when({});
  CHECK_NOTHROW(f->append(as_bytes("x")));
  CHECK(f->size() == 1);
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
