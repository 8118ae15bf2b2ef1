// prevalent-kv's state and typed commands (examples/kv) on a real store, without the server:
// replies as Redis gives them, rejected commands journal nothing, an EXEC batch is one
// record, WATCH, expiry from the Context's time, and replay (JSON and MessagePack, binary
// keys) rebuilding exactly the live keyspace.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "command_table.hpp"
#include "kv_store.hpp"
#include "support.hpp"

namespace {

using kv::args;

// Runs one request the way the server does, synchronously.
std::string run(kv::KvStore& store, const args& argv, long long now = 1'000'000) {
  const kv::command_spec* spec = kv::find_command(argv[0]);
  REQUIRE(spec != nullptr);
  if (!kv::arity_ok(*spec, argv.size())) return kv::arity_error(spec->name);
  if (spec->kind == kv::command_kind::read)
    return store.query([&](const kv::KvState& s) {
      std::string out;
      kv::run_read(s, argv, now, out);
      return out;
    });
  kv::parsed_write parsed = spec->parse(argv, now);
  if (!parsed.op) return parsed.error;
  try {
    return std::visit([&](auto& cmd) { return store.execute(cmd); }, *parsed.op);
  } catch (const kv::rejected& e) {
    return "-" + std::string(e.what()) + "\r\n";
  }
}

std::string dump(kv::KvStore& store) {
  return store.query([](const kv::KvState& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  });
}

}  // namespace

TEST_CASE("kv commands: strings, hashes and their errors") {
  kv::KvStore store{prevalent::in_memory};
  CHECK(run(store, {"SET", "a", "1"}) == "+OK\r\n");
  CHECK(run(store, {"INCRBY", "a", "41"}) == ":42\r\n");
  CHECK(run(store, {"GET", "a"}) == "$2\r\n42\r\n");
  CHECK(run(store, {"SET", "a", "x", "NX"}) == "$-1\r\n");
  CHECK(run(store, {"SET", "a", "x", "XX", "GET"}) == "$2\r\n42\r\n");
  CHECK(run(store, {"SET", "a", "x", "EX", "0"}) ==
        "-ERR invalid expire time in 'set' command\r\n");
  CHECK(run(store, {"SET", "a", "x", "FOO"}) == "-ERR syntax error\r\n");
  CHECK(run(store, {"HSET", "h", "f", "1", "g", "2"}) == ":2\r\n");
  CHECK(run(store, {"HGETALL", "h"}) == "*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n");
  CHECK(run(store, {"HSET", "h", "f"}) == "-ERR wrong number of arguments for 'hset' command\r\n");
  CHECK(run(store, {"INCRBYFLOAT", "fl", "10.5"}) == "$4\r\n10.5\r\n");
  CHECK(run(store, {"INCR", "big"}) == ":1\r\n");
  CHECK(run(store, {"DECRBY", "big", "-9223372036854775807"}) ==
        "-ERR increment or decrement would overflow\r\n");
}

TEST_CASE("kv commands: a wrong type is rejected before anything is journaled") {
  kv::KvStore store{prevalent::in_memory};
  run(store, {"HSET", "h", "f", "v"});
  const auto before = store.last_sequence();
  CHECK(run(store, {"GET", "h"}) ==
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  CHECK(run(store, {"INCR", "h"}) ==
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  CHECK(run(store, {"APPEND", "h", "x"}) ==
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  CHECK(run(store, {"RENAME", "nokey", "x"}) == "-ERR no such key\r\n");
  CHECK(store.last_sequence() == before);
}

TEST_CASE("kv commands: an EXEC batch is one record; WATCH sees a change") {
  kv::KvStore store{prevalent::in_memory};
  run(store, {"SET", "n", "1"});
  const auto before = store.last_sequence();
  kv::ExecCommand exec;
  for (const args& a : {args{"INCR", "n"}, args{"HSET", "n", "f", "v"}, args{"INCR", "n"}})
    exec.items.emplace_back(*kv::find_command(a[0])->parse(a, 0).op);
  exec.items.emplace_back(kv::read_op{{"GET", "n"}});
  CHECK(store.execute(exec) ==
        "*4\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        ":3\r\n$1\r\n3\r\n");
  CHECK(store.last_sequence() == before + 1);

  const auto version = store.query([](const kv::KvState& s) { return kv::key_version(s, "n", 0); });
  kv::ExecCommand watched;
  watched.watched = {{"n", version}};
  watched.items.emplace_back(kv::fixed_reply{"+PONG\r\n"});
  CHECK(store.execute(watched) == "*1\r\n+PONG\r\n");  // unchanged: runs
  run(store, {"SET", "n", "9"});
  CHECK_THROWS_AS(store.execute(watched), kv::rejected);  // changed since: rejected
}

TEST_CASE("kv commands: expiry follows the Context's time and expire_due reclaims keys") {
  kv::KvStore store{prevalent::in_memory};
  const long long now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  CHECK(run(store, {"SET", "gone", "v", "PXAT", std::to_string(now - 1)}, now) == "+OK\r\n");
  CHECK(run(store, {"SET", "stays", "v", "EX", "1000"}, now) == "+OK\r\n");
  CHECK(run(store, {"GET", "gone"}, now) == "$-1\r\n");
  CHECK(run(store, {"TTL", "stays"}, now) == ":1000\r\n");
  CHECK(store.query([](const kv::KvState& s) { return s.size(); }) == 2);
  CHECK(store.execute(kv::ExpireDueCommand{}) == 1);
  CHECK(store.query([](const kv::KvState& s) { return s.size(); }) == 1);
  CHECK_THROWS_AS(store.execute(kv::ExpireDueCommand{}), kv::rejected);  // nothing due
}

TEST_CASE("kv commands: replay rebuilds the same keyspace, binary keys included") {
  for (auto codec : {prevalent::codec::json, prevalent::codec::msgpack}) {
    CAPTURE(static_cast<int>(codec));
    test::temp_dir dir;
    prevalent::store_options o;
    o.codec = o.snapshot_codec = codec;
    std::string live;
    const std::string binary("k\xff\x00\xfe", 4);
    {
      kv::KvStore store(dir.path(), o);
      run(store, {"SET", binary, std::string("v\x80\x00", 3)});
      run(store, {"HSET", "h", binary, "x", "g", "y"});
      run(store, {"SET", "t", "v", "EX", "100"});
      run(store, {"APPEND", "t", "w"});
      run(store, {"RENAME", "t", "t2"});
      store.snapshot();
      run(store, {"HINCRBYFLOAT", "h", "n", "1.5"});
      run(store, {"DEL", "h"});
      run(store, {"MSET", "a", "1", binary, "2"});
      live = dump(store);
    }
    kv::KvStore reopened(dir.path(), o);
    CHECK(dump(reopened) == live);
    CHECK(run(reopened, {"GET", binary}) == "$1\r\n2\r\n");
    CHECK(run(reopened, {"GET", "t2"}) == "$2\r\nvw\r\n");
  }
}

TEST_CASE("kv commands: WATCH sees a key created and removed again, not a no-op GETEX PERSIST") {
  kv::KvStore store{prevalent::in_memory};
  const auto version = [&](const std::string& k) {
    return store.query([&](const kv::KvState& s) { return kv::key_version(s, k, 0); });
  };
  run(store, {"SET", "k", "v"});
  const auto before = version("k");
  run(store, {"GETEX", "k", "PERSIST"});  // no TTL: nothing changes
  CHECK(version("k") == before);
  const auto absent = version("gone");
  run(store, {"SET", "gone", "v"});
  run(store, {"DEL", "gone"});
  CHECK(version("gone") != absent);  // absent at both times, but touched in between
}

TEST_CASE("kv commands: a SCAN iteration returns every key present throughout exactly once") {
  kv::KvStore store{prevalent::in_memory};
  for (int i = 0; i < 500; ++i) run(store, {"SET", "key:" + std::to_string(i), "v"});
  std::multiset<std::string> seen;
  std::string cursor = "0";
  int pages = 0, added = 0;
  do {
    const std::string reply = run(store, {"SCAN", cursor, "COUNT", "7"});
    // *2 $len cursor *n ($len key)...
    std::size_t at = reply.find('$');
    const std::size_t len = std::stoul(reply.substr(at + 1));
    at = reply.find("\r\n", at) + 2;
    cursor = reply.substr(at, len);
    at = reply.find('*', at);
    const std::size_t n = std::stoul(reply.substr(at + 1));
    at = reply.find("\r\n", at) + 2;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t klen = std::stoul(reply.substr(at + 1));
      at = reply.find("\r\n", at) + 2;
      seen.insert(reply.substr(at, klen));
      at += klen + 2;
    }
    run(store, {"SET", "new:" + std::to_string(added++), "v"});  // keys added meanwhile
    ++pages;
  } while (cursor != "0" && pages < 10000);
  CHECK(pages > 50);
  for (int i = 0; i < 500; ++i) CHECK(seen.count("key:" + std::to_string(i)) == 1);
}

TEST_CASE("kv commands: a batch of pipelined writes is one record, replayed the same") {
  test::temp_dir dir;
  std::string live;
  {
    kv::KvStore store(dir.path(), {});
    kv::BatchCommand batch;
    for (const args& a : {args{"SET", "a", "1"}, args{"INCR", "a"}, args{"HSET", "a", "f", "v"},
                          args{"APPEND", "b", "x"}})
      batch.ops.push_back(*kv::find_command(a[0])->parse(a, 0).op);
    const auto before = store.last_sequence();
    const auto replies = store.execute(batch);
    CHECK(store.last_sequence() == before + 1);
    REQUIRE(replies.size() == 4);
    CHECK(replies[1] == ":2\r\n");
    CHECK(replies[2] == "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    CHECK(replies[3] == ":1\r\n");
    live = dump(store);
  }
  kv::KvStore reopened(dir.path(), {});
  CHECK(dump(reopened) == live);
}

TEST_CASE("kv: a large keyspace (a cow_map) snapshots and reopens with its keys and deadlines") {
  test::temp_dir dir;
  const long long now = 1'000'000;
  std::string live;
  {
    kv::KvStore store(dir.path());
    args mset{"MSET"};
    for (int i = 0; i < 5000; ++i) {
      mset.push_back("key:" + std::to_string(i));
      mset.push_back("value " + std::to_string(i));
    }
    CHECK(run(store, mset, now) == "+OK\r\n");
    CHECK(run(store, {"HSET", "h", "f", "1", "g", "2"}, now) == ":2\r\n");
    // Two deadlines: one passed by the time expire_due runs after the reopen, one far ahead.
    CHECK(run(store, {"SET", "soon", "v", "PXAT", std::to_string(now + 10)}, now) == "+OK\r\n");
    CHECK(run(store, {"SET", "later", "v", "PXAT", std::to_string(4'000'000'000'000LL)}, now) ==
          "+OK\r\n");
    // The capture (the keys only, shared) serializes exactly as the state does.
    CHECK(store.query(
        [](const kv::KvState& s) { return nlohmann::json(s.capture()) == nlohmann::json(s); }));
    store.snapshot();
    live = dump(store);
  }
  kv::KvStore reopened(dir.path());
  CHECK(dump(reopened) == live);
  CHECK(reopened.query([](const kv::KvState& s) { return s.size(); }) == 5003);
  CHECK(run(reopened, {"GET", "key:4321"}, now) == "$10\r\nvalue 4321\r\n");
  CHECK(run(reopened, {"HGET", "h", "g"}, now) == "$1\r\n2\r\n");
  // The deadlines were rebuilt from the snapshot: expire_due finds the one that passed.
  CHECK(reopened.query([](const kv::KvState& s) { return s.expiring(); }) == 2);
  CHECK(reopened.query([](const kv::KvState& s) { return s.next_deadline(); }) == now + 10);
  CHECK(reopened.execute(kv::ExpireDueCommand{}) == 1);
  CHECK(run(reopened, {"EXISTS", "soon", "later"}) == ":1\r\n");
}

TEST_CASE("kv: replay is deterministic (the determinism check passes), JSON and MessagePack") {
  for (auto codec : {prevalent::codec::json, prevalent::codec::msgpack}) {
    CAPTURE(static_cast<int>(codec));
    test::temp_dir dir;
    prevalent::store_options o;
    o.codec = o.snapshot_codec = codec;
    {
      kv::KvStore store(dir.path(), o);
      run(store, {"SET", "a", "1"});
      run(store, {"HSET", "h", "f", "x", "g", "y"});
      run(store, {"SET", "t", "v", "EX", "100"});
      store.snapshot();
      run(store, {"INCRBY", "a", "41"});
      run(store, {"HINCRBYFLOAT", "h", "n", "1.5"});
      run(store, {"APPEND", "t", "w"});
      run(store, {"RENAME", "t", "t2"});
      run(store, {"MSET", "b", "1", "c", "2"});
      run(store, {"DEL", "b"});
      store.snapshot();
    }
    const auto report = prevalent::check_determinism<kv::KvStore>(dir.path(), {}, o);
    INFO(report.summary);
    CHECK(report.checked);
    CHECK(report.consistent);
    CHECK(report.replayed == 6);
  }
}
