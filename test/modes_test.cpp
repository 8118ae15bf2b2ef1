// File modes on a real disk: a store's directory is 0700 and its files 0600 (or the configured
// modes) whatever the umask, after create, roll, snapshot and a repaired torn tail; a directory
// or file more open than that is warned about, refused or ignored as insecure_modes says.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support.hpp"
#include "thrown_error.hpp"

using namespace prevalent;
using test::Deposit;
using test::LedgerStore;
using test::thrown_error;

namespace {

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return static_cast<unsigned>(st.st_mode) & 07777u;
}

// Sets the process umask for one test and restores the old one.
class umask_guard {
 public:
  explicit umask_guard(mode_t mask) : old_(::umask(mask)) {}
  ~umask_guard() { ::umask(old_); }
  umask_guard(const umask_guard&) = delete;
  umask_guard& operator=(const umask_guard&) = delete;

 private:
  mode_t old_;
};

// Every regular file in `dir` has `file` and the directory has `directory`; returns how many
// files were checked.
std::size_t check_modes(const std::filesystem::path& dir, unsigned file, unsigned directory) {
  CHECK(mode_of(dir) == directory);
  std::size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    INFO(e.path().string());
    CHECK(mode_of(e.path()) == file);
    ++n;
  }
  return n;
}

store_options rolling() {
  store_options o;
  o.segment_bytes = 256;
  o.preallocate_bytes = 0;
  return o;
}

void deposit(LedgerStore& s, int n) {
  for (int i = 0; i < n; ++i) s.execute(Deposit{"acct" + std::to_string(i % 7), 1});
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a new store: directory 0700, LOCK and segment 0600 under the usual umask 022") {
  umask_guard mask(022);
  test::temp_dir tmp;
  auto dir = tmp / "a" / "store";  // parents are created too
  LedgerStore store(dir);
  deposit(store, 1);
  CHECK(std::filesystem::exists(dir / "LOCK"));
  CHECK(check_modes(dir, 0600, 0700) == 2);  // LOCK and the first segment
}

TEST_CASE("umask 0 does not loosen the defaults: create, roll, snapshot") {
  umask_guard mask(0);
  test::temp_dir tmp;
  auto dir = tmp / "store";
  LedgerStore store(dir, rolling());
  deposit(store, 40);
  REQUIRE(store.segments().size() > 2);  // rolled
  store.snapshot();
  REQUIRE(!test::files_with_prefix(dir, "snapshot-").empty());
  deposit(store, 20);  // segments created after the snapshot too
  store.snapshot();
  CHECK(check_modes(dir, 0600, 0700) >= 4);
  store.close();
  CHECK(check_modes(dir, 0600, 0700) >= 4);
}

TEST_CASE("a reopen that cuts a torn tail leaves every file 0600") {
  umask_guard mask(0);
  test::temp_dir tmp;
  auto dir = tmp / "store";
  {
    store_options o;
    o.preallocate_bytes = 0;
    LedgerStore store(dir, o);
    deposit(store, 3);
  }
  auto segments = test::files_with_prefix(dir, "journal-");
  REQUIRE(!segments.empty());
  auto data = test::read_file(segments.back());
  data.insert(data.end(), {0x17, 0x2a, 0x00, 0x00, 0x05});  // the start of a record header
  test::write_file(segments.back(), data);
  ::chmod(segments.back().c_str(), 0600);  // whatever write_file did, the test starts at 0600

  std::vector<std::string> log;
  store_options o;
  o.preallocate_bytes = 0;
  o.log = [&](const std::string& m) { log.push_back(m); };
  LedgerStore store(dir, o);
  CHECK(store.recovery().torn_bytes == 5);
  CHECK(store.last_sequence() == 3);
  deposit(store, 1);
  CHECK(check_modes(dir, 0600, 0700) >= 2);
  for (auto& m : log) CHECK_MESSAGE(!contains(m, "insecure"), m);
}

TEST_CASE("custom modes are set exactly, even where the umask would remove bits") {
  umask_guard mask(077);
  test::temp_dir tmp;
  auto dir = tmp / "store";
  store_options o = rolling();
  o.file_mode = 0640;
  o.directory_mode = 0750;
  std::vector<std::string> log;
  o.log = [&](const std::string& m) { log.push_back(m); };
  {
    LedgerStore store(dir, o);
    deposit(store, 20);
    store.snapshot();
    CHECK(check_modes(dir, 0640, 0750) >= 3);
  }
  LedgerStore again(dir, o);  // its own modes are not insecure
  CHECK(check_modes(dir, 0640, 0750) >= 3);
  for (auto& m : log) CHECK_MESSAGE(!contains(m, "insecure"), m);
}

TEST_CASE("a 0755 directory and a 0644 file: warned, refused or ignored, naming the path") {
  test::temp_dir tmp;
  auto dir = tmp / "store";
  {
    LedgerStore store(dir);
    deposit(store, 2);
  }
  auto segment = test::files_with_prefix(dir, "journal-").at(0);
  std::filesystem::permissions(dir, std::filesystem::perms(0755));
  std::filesystem::permissions(segment, std::filesystem::perms(0644));

  std::vector<std::string> log;
  store_options o;
  o.log = [&](const std::string& m) { log.push_back(m); };

  SUBCASE("warn (the default): one line per path, and the store opens") {
    {
      LedgerStore store(dir, o);
      CHECK(store.last_sequence() == 2);
    }
    std::vector<std::string> warnings;
    for (auto& m : log)
      if (contains(m, "insecure")) warnings.push_back(m);
    REQUIRE(warnings.size() == 2);
    bool dir_named = false, file_named = false;
    for (auto& w : warnings) {
      if (contains(w, "store directory " + dir.string() + " has mode 0755, expected 0700"))
        dir_named = true;
      if (contains(w, "file " + segment.string() + " has mode 0644, expected 0600"))
        file_named = true;
    }
    CHECK_MESSAGE(dir_named, warnings[0]);
    CHECK_MESSAGE(file_named, warnings[1]);
    CHECK(mode_of(segment) == 0644);  // warned about, not changed behind the owner's back
  }

  SUBCASE("refuse: the open fails with insecure_permissions naming both paths") {
    o.insecure_modes = modes_policy::refuse;
    auto e = thrown_error([&] { LedgerStore store(dir, o); });
    CHECK(e.code() == errc::insecure_permissions);
    std::string what = e.what();
    CHECK_MESSAGE(contains(what, dir.string() + " has mode 0755, expected 0700"), what);
    CHECK_MESSAGE(contains(what, segment.string() + " has mode 0644, expected 0600"), what);

    // Fixed by the owner, the same options open it.
    std::filesystem::permissions(dir, std::filesystem::perms(0700));
    std::filesystem::permissions(segment, std::filesystem::perms(0600));
    LedgerStore store(dir, o);
    CHECK(store.last_sequence() == 2);
  }

  SUBCASE("refuse: only group read on a file is enough") {
    std::filesystem::permissions(dir, std::filesystem::perms(0700));
    std::filesystem::permissions(segment, std::filesystem::perms(0640));
    o.insecure_modes = modes_policy::refuse;
    auto e = thrown_error([&] { LedgerStore store(dir, o); });
    CHECK(e.code() == errc::insecure_permissions);
    CHECK(contains(e.what(), segment.string() + " has mode 0640"));
    CHECK(!contains(e.what(), "store directory"));
  }

  SUBCASE("ignore: nothing logged") {
    o.insecure_modes = modes_policy::ignore;
    LedgerStore store(dir, o);
    for (auto& m : log) CHECK_MESSAGE(!contains(m, "insecure"), m);
  }
}

TEST_CASE("modes out of range fail the open before anything is created") {
  test::temp_dir tmp;
  auto dir = tmp / "store";
  auto refused = [&](unsigned file, unsigned directory, const std::string& option) {
    store_options o;
    o.file_mode = file;
    o.directory_mode = directory;
    auto e = thrown_error([&] { LedgerStore store(dir, o); });
    CHECK(e.code() == errc::invalid_option);
    CHECK_MESSAGE(contains(e.what(), option), e.what());
    CHECK(!std::filesystem::exists(dir));
  };
  refused(0400, 0700, "file_mode 0400");       // the owner must write
  refused(0600, 0600, "directory_mode 0600");  // and search the directory
  refused(0602, 0700, "file_mode 0602");       // others must not write
  refused(0600, 0777, "directory_mode 0777");
  refused(04600, 0700, "file_mode 04600");  // permission bits only

  store_options o;
  o.insecure_modes = static_cast<modes_policy>(7);
  auto e = thrown_error([&] { LedgerStore store(dir, o); });
  CHECK(e.code() == errc::invalid_option);
  CHECK(contains(e.what(), "insecure_modes"));

  // The same check applies to a directory opened on its own.
  posix_modes m;
  m.file = 0200;
  auto e2 = thrown_error([&] { open_posix_directory(dir, m); });
  CHECK(e2.code() == errc::invalid_option);
  CHECK(!std::filesystem::exists(dir));
}
