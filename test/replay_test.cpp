// The replay pipeline (lib/replay_pipeline.cpp) and fast envelope decoding
// (command_envelope.hpp): a pipelined replay gives exactly the state and the errors of a
// sequential one, at every batch boundary, in every codec, with upgraded older versions; the
// fast path and the generic fallback agree on hand-written envelopes.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <prevalent/journal.hpp>
#include <prevalent/replay_pipeline.hpp>

#include "support.hpp"
#include "thrown_error.hpp"

using namespace prevalent;
using test::thrown_error;

namespace {

// A state on which order matters: `n` under non-commuting commands, and every command's
// sequence number and timestamp as applied.
struct Book {
  std::map<std::string, std::int64_t> balances;
  std::int64_t n = 1;
  std::vector<std::uint64_t> seqs;
  std::vector<std::int64_t> times;
  void note(const Context& ctx) {
    seqs.push_back(ctx.sequence());
    times.push_back(ctx.timestamp_ns());
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Book, balances, n, seqs, times)
};

struct Credit {
  static constexpr std::string_view name = "credit";
  std::string account;
  std::int64_t amount = 0;
  void apply(Book& b, const Context& ctx) const {
    b.balances[account] += amount;
    b.n += amount;
    b.note(ctx);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Credit, account, amount)
};

// Version 2 renamed version 1's "factor" to "by".
struct Scale {
  static constexpr std::string_view name = "scale";
  static constexpr int version = 2;
  std::int64_t by = 1;
  static void upgrade(nlohmann::json& args, int from) {
    if (from < 2) args["by"] = args.at("factor");
  }
  void apply(Book& b, const Context& ctx) const {
    b.n = b.n * by % 1000003;
    b.note(ctx);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Scale, by)
};
struct ScaleV1 {
  static constexpr std::string_view name = "scale";
  std::int64_t factor = 1;
  void apply(Book& b, const Context& ctx) const {
    b.n = b.n * factor % 1000003;
    b.note(ctx);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(ScaleV1, factor)
};

// No fields, no serialization code.
struct Clear {
  static constexpr std::string_view name = "clear";
  void apply(Book& b, const Context& ctx) const {
    b.balances.clear();
    b.note(ctx);
  }
};

// Throws in apply when told to: a replay must stop there.
struct Fail {
  static constexpr std::string_view name = "fail";
  bool now = false;
  void apply(Book& b, const Context& ctx) const {
    if (now) throw std::runtime_error("apply failed at " + std::to_string(ctx.sequence()));
    b.note(ctx);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Fail, now)
};

using BookStore = Store<Book, Credit, Scale, Clear>;
using OldBookStore = Store<Book, Credit, ScaleV1, Clear>;

std::string dump(const Book& b) { return nlohmann::json(b).dump(); }

store_options fast(codec c) {
  store_options o;
  o.codec = c;
  o.sync = sync_policy::none();
  o.segment_bytes = 64 * 1024;  // several segments: batches span segment boundaries
  return o;
}

// Runs `n` random commands (seeded) on `store`.
template <class S, class ScaleCmd>
void run_random(S& store, std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    switch (rng() % 8) {
      case 0: store.execute(Clear{}); break;
      case 1:
      case 2: {
        ScaleCmd s;
        if constexpr (requires { s.by; })
          s.by = 2 + rng() % 7;
        else
          s.factor = 2 + rng() % 7;
        store.execute(s);
        break;
      }
      default:
        store.execute(Credit{"acct" + std::to_string(rng() % 20),
                             static_cast<std::int64_t>(rng() % 1000) - 300});
    }
  }
}

// Replays the journal in `dir` one record at a time, as before the pipeline.
Book sequential_replay(const std::shared_ptr<Directory>& dir, codec c) {
  Book b;
  journal_options o;
  o.codec = c;
  o.segment_bytes = 64 * 1024;
  auto j = Journal::open(dir, o, 1, 1, [&](const record_view& r) {
    replay_command<Book, Credit, Scale, Clear>(b, r);
  });
  j->close();
  return b;
}

// A journal record built by hand, kept alive with its payload.
struct owned_record {
  std::uint64_t seq;
  std::string payload;
  std::string file = "hand-made";
  record_view view(codec c) const {
    return record_view{
        seq,
        static_cast<std::int64_t>(seq) * 1000,
        byte_view(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
        c,
        file,
        seq * 100,
        seq / 3};  // an epoch that changes along the records
  }
};

using PipeSlots = decoded_slots<Book, Credit, Scale, Clear, Fail>;

detail::replay_hooks hooks_for(Book& b) {
  return {
      [&b](const record_view& r) { replay_command<Book, Credit, Scale, Clear, Fail>(b, r); },
      [&b]() -> std::unique_ptr<detail::command_slots> { return std::make_unique<PipeSlots>(b); }};
}

// Records 1..n of random commands; record `bad` (if any) gets payload `bad_payload`.
std::vector<owned_record> make_records(std::size_t n, codec c, std::uint32_t seed,
                                       std::size_t bad = 0, std::string bad_payload = {}) {
  std::mt19937 rng(seed);
  std::vector<owned_record> out;
  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    std::string p;
    switch (rng() % 4) {
      case 0: p = encode_command(Clear{}, c); break;
      case 1: p = encode_command(Scale{static_cast<std::int64_t>(2 + rng() % 5)}, c); break;
      default:
        p = encode_command(
            Credit{"a" + std::to_string(rng() % 9), static_cast<std::int64_t>(1 + rng() % 50)}, c);
    }
    out.push_back({seq, seq == bad ? bad_payload : p});
  }
  return out;
}

struct outcome {
  std::string state;
  std::string error;  // code and message, empty when none
  std::int64_t last_ts = 0;
  std::size_t wrong_epochs = 0;  // records applied with another epoch than they were given
};

outcome replay_sequentially(const std::vector<owned_record>& records, codec c) {
  Book b;
  outcome o;
  try {
    for (const auto& r : records) {
      replay_command<Book, Credit, Scale, Clear, Fail>(b, r.view(c));
      o.last_ts = r.view(c).timestamp_ns;
    }
  } catch (const prevalent::error& e) {
    o.error = e.code().message() + ": " + e.what();
  } catch (const std::exception& e) {
    o.error = e.what();
  }
  o.state = dump(b);
  return o;
}

outcome replay_pipelined(const std::vector<owned_record>& records, codec c,
                         detail::replay_pipeline_options options, bool* threaded = nullptr) {
  Book b;
  outcome o;
  {
    detail::ReplayPipeline pipe(
        hooks_for(b),
        [&](const record_view& r) {
          o.last_ts = r.timestamp_ns;
          o.wrong_epochs += r.epoch != r.seq / 3;
        },
        options);
    try {
      for (const auto& r : records) pipe.push(r.view(c));
      pipe.settle();
    } catch (const prevalent::error& e) {
      o.error = e.code().message() + ": " + e.what();
    } catch (const std::exception& e) {
      o.error = e.what();
    }
    if (threaded) *threaded = pipe.threaded();
  }  // threads joined: the state is final
  o.state = dump(b);
  return o;
}

const codec all_codecs[] = {codec::json, codec::cbor, codec::msgpack};

// The length of Credit's envelope before its arguments.
std::size_t credit_prefix_size(codec c) {
  return c == codec::json ? json_envelope_prefix<Credit>().size()
                          : binary_envelope_prefix<Credit>(c).size();
}

}  // namespace

TEST_CASE("a reopened store equals the live one and a sequential replay, around batch sizes") {
  // The store's pipeline replays the first 1024 records inline, then batches of 256 records
  // on threads with at least 16 batches in flight: sizes on and around those boundaries, a
  // full ring (1024 + 16 * 256 = 5120) and past it.
  for (codec c : all_codecs) {
    for (std::size_t n : {0u, 1u, 255u, 1023u, 1024u, 1025u, 1279u, 1280u, 1281u, 1536u, 5119u,
                          5120u, 5121u, 9000u}) {
      CAPTURE(codec_name(c));
      CAPTURE(n);
      auto dir = make_memory_directory();
      std::string live;
      {
        BookStore store(dir, fast(c));
        run_random<BookStore, Scale>(store, n, static_cast<std::uint32_t>(n));
        live = store.query([](const Book& b) { return dump(b); });
      }
      BookStore reopened(dir, fast(c));
      CHECK(reopened.recovery().replayed == n);
      CHECK(reopened.last_sequence() == n);
      CHECK(reopened.query([](const Book& b) { return dump(b); }) == live);
      reopened.close();
      CHECK(dump(sequential_replay(dir, c)) == live);
    }
  }
}

TEST_CASE("older command versions in a long journal are upgraded by the pipeline") {
  for (codec c : all_codecs) {
    CAPTURE(codec_name(c));
    auto dir = make_memory_directory();
    {
      OldBookStore old(dir, fast(c));  // version-1 "scale" records: the generic path
      run_random<OldBookStore, ScaleV1>(old, 1500, 7);
    }
    std::string live;
    {
      BookStore store(dir, fast(c));  // version-2 records after them: the fast path
      CHECK(store.recovery().replayed == 1500);
      run_random<BookStore, Scale>(store, 1500, 8);
      live = store.query([](const Book& b) { return dump(b); });
    }
    BookStore reopened(dir, fast(c));
    CHECK(reopened.recovery().replayed == 3000);
    CHECK(reopened.query([](const Book& b) { return dump(b); }) == live);
  }
}

TEST_CASE("the pipeline equals a sequential replay for small batches, few and many threads") {
  for (codec c : all_codecs) {
    for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 17u, 100u}) {
      for (unsigned decoders : {1u, 3u}) {
        CAPTURE(codec_name(c));
        CAPTURE(n);
        CAPTURE(decoders);
        auto records = make_records(n, c, static_cast<std::uint32_t>(n * 31 + decoders));
        const outcome expected = replay_sequentially(records, c);
        REQUIRE(expected.error.empty());
        bool threaded = false;
        const outcome got = replay_pipelined(records, c, {2, 3, 1 << 20, decoders, 2}, &threaded);
        CHECK(threaded == (n > 2));
        CHECK(got.error == "");
        CHECK(got.state == expected.state);
        CHECK(got.last_ts == expected.last_ts);
        CHECK(got.wrong_epochs == 0);  // each record's epoch goes through the pipeline
      }
    }
  }
}

TEST_CASE("a short replay starts no thread") {
  auto records = make_records(300, codec::cbor, 3);
  bool threaded = true;
  const outcome got = replay_pipelined(records, codec::cbor, {}, &threaded);
  CHECK_FALSE(threaded);
  CHECK(got.state == replay_sequentially(records, codec::cbor).state);
}

TEST_CASE("a bad record in a batch stops the replay there, with the sequential error and state") {
  // Injected: at record `bad`, a payload that is not an envelope, an unknown command, arguments
  // that do not decode, a version newer than the program's, and an apply() that throws.
  // Verified: the pipeline throws the same error (code and message naming file, offset and
  // record) and the state holds exactly the records before it, wherever it falls in a batch.
  for (codec c : all_codecs) {
    const std::string bad_payloads[] = {
        std::string("\xff\x00 not an envelope", 18),
        c == codec::json ? R"({"cmd":"nope","v":1,"args":{}})"
                         : encode(nlohmann::json{{"cmd", "nope"}, {"v", 1}, {"args", nullptr}}, c),
        encode_command(Credit{"x", 1}, c).substr(0, 8) + std::string("garbage"),
        encode(nlohmann::json{{"cmd", "credit"}, {"v", 1}, {"args", {{"account", 5}}}}, c),
        encode(nlohmann::json{{"cmd", "clear"}, {"v", 9}, {"args", nlohmann::json::object()}}, c),
        encode_command(Fail{true}, c),
    };
    for (const auto& payload : bad_payloads) {
      for (std::size_t bad : {1u, 2u, 3u, 4u, 6u, 8u, 9u, 10u, 40u}) {
        CAPTURE(codec_name(c));
        CAPTURE(bad);
        CAPTURE(payload);
        auto records = make_records(40, c, static_cast<std::uint32_t>(bad), bad, payload);
        const outcome expected = replay_sequentially(records, c);
        REQUIRE_FALSE(expected.error.empty());
        const outcome got = replay_pipelined(records, c, {2, 3, 1 << 20, 2, 2});
        CHECK(got.error == expected.error);
        CHECK(got.state == expected.state);
        CHECK(got.last_ts == expected.last_ts);
      }
    }
  }
}

TEST_CASE("a store whose long journal holds an unknown command fails open naming that record") {
  auto dir = make_memory_directory();
  using Wider = Store<Book, Credit, Scale, Clear, Fail>;
  {
    Wider store(dir, fast(codec::cbor));
    run_random<Wider, Scale>(store, 2100, 1);
    store.execute(Fail{false});  // record 2101: a command the narrower store does not know
    run_random<Wider, Scale>(store, 900, 2);
  }
  auto e = thrown_error([&] { BookStore store(dir, fast(codec::cbor)); });
  CHECK(e.code() == errc::unknown_command);
  const std::string msg = e.what();
  CHECK(msg.find(": record 2101: unknown command \"fail\"") != std::string::npos);
  CHECK(msg.find(" at offset ") != std::string::npos);
}

TEST_CASE("a record that does not decode is reported before later corruption, and no tail is cut") {
  // Injected: a command the store does not know at record 1500, a flipped byte in record 2500
  // of the same segment, and the last record cut in half (a torn tail). Verified: the open
  // fails with the unknown command, as a sequential replay would (it never reaches the
  // corruption), and the torn tail is left as it was (the file is not truncated).
  test::temp_dir tmp;
  using Wider = Store<Book, Credit, Scale, Clear, Fail>;
  store_options o = fast(codec::cbor);
  o.segment_bytes = 64 << 20;  // one segment
  {
    Wider store(tmp.path(), o);
    run_random<Wider, Scale>(store, 1499, 1);
    store.execute(Fail{false});
    run_random<Wider, Scale>(store, 1500, 2);
  }
  std::vector<std::uint64_t> offsets;
  {
    journal_options jo;
    auto j = Journal::open(open_posix_directory(tmp.path()), jo, 1, 1,
                           [&](const record_view& r) { offsets.push_back(r.offset); });
    j->close();
  }
  REQUIRE(offsets.size() == 3000);
  const auto segment = test::files_with_prefix(tmp.path(), "journal-").at(0);
  test::flip_byte(segment, offsets[2499] + 30);
  const auto records_end = offsets.back() + 10;  // inside the last record's header
  {
    auto bytes = test::read_file(segment);
    bytes.resize(records_end);
    test::write_file(segment, bytes);
  }
  // The corruption alone fails open as corruption (so the test injected what it says).
  auto corrupt = thrown_error([&] { Wider store(tmp.path(), o); });
  CHECK(corrupt.code() == errc::corrupt_record);
  CHECK(std::filesystem::file_size(segment) == records_end);
  // The store's message says what to run next, and names the code's message once.
  const std::string said = corrupt.what();
  CHECK(said.find("prevalent repair --salvage " + tmp.path().string()) != std::string::npos);
  const std::string code_message = ": " + corrupt.code().message();
  CHECK(said.find(code_message) == said.rfind(code_message));

  auto e = thrown_error([&] { BookStore store(tmp.path(), o); });
  CHECK(e.code() == errc::unknown_command);
  CHECK(std::string(e.what()).find("record 1500") != std::string::npos);
  CHECK(std::filesystem::file_size(segment) == records_end);
}

TEST_CASE("a rebuild after a throwing apply replays a long journal through the pipeline") {
  for (codec c : all_codecs) {
    CAPTURE(codec_name(c));
    using Wider = Store<Book, Credit, Scale, Clear, Fail>;
    Wider store(make_memory_directory(), fast(c));
    run_random<Wider, Scale>(store, 3000, 5);
    const std::string before = store.query([](const Book& b) { return dump(b); });
    CHECK_THROWS_AS(store.execute(Fail{true}), std::runtime_error);
    CHECK_FALSE(store.failed());
    CHECK(store.query([](const Book& b) { return dump(b); }) == before);
    store.execute(Credit{"after", 1});
    CHECK(store.last_sequence() == 3001);
  }
}

TEST_CASE("the fast envelope path and the generic one agree on hand-written envelopes") {
  using Cmd = decoded_command<Credit, Scale, Clear, Fail>;
  auto describe = [](const Cmd& cmd) {
    return std::visit(
        []<class C>(const C& x) -> std::string {
          if constexpr (std::is_same_v<C, std::monostate>)
            return "none";
          else
            return std::string(C::name) + " " + command_args(x).dump();
        },
        cmd);
  };
  // What decoding gives, as text: the command and its arguments, or the error.
  auto result = [&](auto&& decode_fn, const record_view& r) -> std::string {
    Cmd cmd;
    try {
      decode_fn(r, cmd);
      return describe(cmd);
    } catch (const prevalent::error& e) {
      return std::string("error ") + e.code().message() + ": " + e.what();
    }
  };
  for (codec c : all_codecs) {
    CAPTURE(codec_name(c));
    std::vector<std::pair<std::string, bool>> cases;  // payload, taken by the fast path
    cases.push_back({encode_command(Credit{"alice", 5}, c), true});
    cases.push_back({encode_command(Scale{3}, c), true});
    cases.push_back({encode_command(Clear{}, c), true});
    cases.push_back({encode_command(Fail{true}, c), true});
    nlohmann::ordered_json reordered = {
        {"args", {{"amount", 5}, {"account", "bob"}}}, {"v", 1}, {"cmd", "credit"}};
    cases.push_back({encode(nlohmann::json(reordered), c), false});  // sorted keys: args first
    nlohmann::ordered_json old_version = {{"cmd", "scale"}, {"v", 1}, {"args", {{"factor", 4}}}};
    std::string old = c == codec::json ? old_version.dump() : "";
    if (c == codec::cbor) nlohmann::ordered_json::to_cbor(old_version, old);
    if (c == codec::msgpack) nlohmann::ordered_json::to_msgpack(old_version, old);
    cases.push_back({old, false});  // version 1: upgraded by the generic path
    nlohmann::ordered_json extra = {
        {"cmd", "credit"}, {"v", 1}, {"args", {{"account", "c"}, {"amount", 1}}}, {"x", 1}};
    std::string four = c == codec::json ? extra.dump() : "";
    if (c == codec::cbor) nlohmann::ordered_json::to_cbor(extra, four);
    if (c == codec::msgpack) nlohmann::ordered_json::to_msgpack(extra, four);
    cases.push_back({four, false});  // a fourth member: not the fast form
    // The canonical prefix, then arguments that do not decode into the command.
    cases.push_back({encode_command(Credit{"d", 1}, c).substr(0, credit_prefix_size(c)) +
                         encode(nlohmann::json{{"account", 7}}, c) + (c == codec::json ? "}" : ""),
                     false});
    // Trailing bytes after the arguments.
    cases.push_back({encode_command(Credit{"e", 1}, c) + "  ", false});
    cases.push_back({encode_command(Credit{"f", 1}, c) + "\x01", false});
    if (c == codec::json) {
      cases.push_back(
          {R"({ "cmd" : "credit" , "v" : 1 , "args" : {"account":"g","amount":2} })", false});
      cases.push_back({R"({"cmd":"credit","v":1,"args": {"account":"h","amount":3} })", true});
      cases.push_back({R"({"cmd":"credit","v":1,"args":{"account":"i","amount":3},"v":2})", false});
      cases.push_back({R"({"cmd":"credit","v":1,"args":{"account":"j"} , "cmd":"scale"})", false});
      cases.push_back({R"({"cmd":"credit","v":1,"args":{"account":"k","amount":1})", false});
    }
    for (const auto& [payload, fast_form] : cases) {
      CAPTURE(payload);
      owned_record rec{9, payload};
      const record_view r = rec.view(c);
      const std::string generic =
          result([](const record_view& v, Cmd& out) { decode_command_generic(v, out); }, r);
      const std::string chosen =
          result([](const record_view& v, Cmd& out) { decode_command(v, out); }, r);
      CHECK(chosen == generic);
      Cmd probe;
      CHECK(decode_command_fast(r, probe) == fast_form);
    }
  }
}
