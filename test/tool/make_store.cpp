// Makes and damages the stores that test/tool/tool_test.py runs the `prevalent` tool on, with
// the ledger model and the byte surgery of test/support.hpp:
//   make_store journal DIR N [--segment B] [--cbor] [--key FILE] [--snapshot-at S]...
//                            [--preallocate P] [--epoch E]
//       N ledger commands (deposits, then transfers), segments of B bytes (default 2048),
//       a snapshot after each S given (keep_snapshots 2), encrypted with the key in FILE,
//       the active segment zero-filled P bytes ahead (default 0), written with replication
//       epoch E (store_options::epoch, default 0)
//   make_store flip FILE OFFSET        flips the byte at OFFSET (test::flip_byte)
//   make_store truncate FILE SIZE      cuts FILE to SIZE bytes
//   make_store epoch FILE E            rewrites the epoch of a version 3 segment's header
//                                      (header checksum recomputed; records untouched)
//   make_store check DIR               opens the store (LedgerStore) and prints
//                                      {"last_seq":..,"applied":..,"total":..} on stdout
//   make_store hold DIR                opens the store, prints "ready", holds the directory
//                                      lock until stdin closes
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <prevalent/format.hpp>

#include "../support.hpp"

namespace {

prevalent::store_options options(const std::string& key_file) {
  prevalent::store_options o;
  o.sync = prevalent::sync_policy::none();
  o.preallocate_bytes = 0;
  o.keep_snapshots = 2;
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    std::string hex;
    in >> hex;
    o.encryption_key = prevalent::encryption_key::from_hex(hex);
  }
  return o;
}

int usage() {
  (void)std::fprintf(stderr,
                     "usage: make_store journal|flip|truncate|check|hold ... (see the source)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) return usage();
  const std::string& what = args[0];
  if (what == "journal" && args.size() >= 3) {
    const std::string dir = args[1];
    const std::uint64_t n = std::stoull(args[2]);
    std::string key_file;
    std::uint64_t segment = 2048;
    bool cbor = false;
    std::uint64_t preallocate = 0;
    std::vector<std::uint64_t> snapshot_at;
    std::uint64_t epoch = 0;
    for (std::size_t i = 3; i < args.size(); ++i) {
      if (args[i] == "--segment" && i + 1 < args.size())
        segment = std::stoull(args[++i]);
      else if (args[i] == "--cbor")
        cbor = true;
      else if (args[i] == "--key" && i + 1 < args.size())
        key_file = args[++i];
      else if (args[i] == "--preallocate" && i + 1 < args.size())
        preallocate = std::stoull(args[++i]);
      else if (args[i] == "--snapshot-at" && i + 1 < args.size())
        snapshot_at.push_back(std::stoull(args[++i]));
      else if (args[i] == "--epoch" && i + 1 < args.size())
        epoch = std::stoull(args[++i]);
      else
        return usage();
    }
    auto o = options(key_file);
    o.segment_bytes = segment;
    o.preallocate_bytes = preallocate;
    o.epoch = epoch;
    if (cbor) {
      o.codec = prevalent::codec::cbor;
      o.snapshot_codec = prevalent::codec::cbor;
    }
    test::LedgerStore store(dir, o);
    for (std::uint64_t i = 1; i <= n; ++i) {
      if (i % 3 != 0) {
        store.execute(test::Deposit{"acct" + std::to_string(i % 7), 100});
      } else {  // from the account the record before paid into
        store.execute(test::Transfer{"acct" + std::to_string((i - 1) % 7),
                                     "acct" + std::to_string((i + 1) % 7), 1});
      }
      for (auto s : snapshot_at)
        if (s == store.last_sequence()) store.snapshot();
    }
    store.close();
    return 0;
  }
  if (what == "flip" && args.size() == 3) {
    test::flip_byte(args[1], std::stoull(args[2]));
    return 0;
  }
  if (what == "epoch" && args.size() == 3) {
    auto data = test::read_file(args[1]);
    std::string why;
    auto h = prevalent::format::decode_segment_header(data, why);
    if (!h || h->epoch == 0) {
      (void)std::fprintf(stderr, "make_store epoch: not a version 3 segment: %s\n", why.c_str());
      return 2;
    }
    h->epoch = std::stoull(args[2]);
    const auto header = prevalent::format::encode_segment_header(*h);
    std::copy(header.begin(), header.end(), data.begin());
    test::write_file(args[1], data);
    return 0;
  }
  if (what == "truncate" && args.size() == 3) {
    auto data = test::read_file(args[1]);
    data.resize(std::stoull(args[2]));
    test::write_file(args[1], data);
    return 0;
  }
  if (what == "check" && args.size() >= 2) {
    test::LedgerStore store(args[1], options(args.size() > 2 ? args[2] : ""));
    const auto applied = store.query([](const test::Ledger& l) { return l.applied.size(); });
    const auto total = store.query([](const test::Ledger& l) { return l.total(); });
    std::printf("{\"last_seq\":%llu,\"applied\":%zu,\"total\":%lld}\n",
                static_cast<unsigned long long>(store.last_sequence()), applied,
                static_cast<long long>(total));
    return 0;
  }
  if (what == "hold" && args.size() >= 2) {
    test::LedgerStore store(args[1], options(""));
    std::printf("ready\n");
    (void)std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
  }
  return usage();
} catch (const std::exception& e) {
  (void)std::fprintf(stderr, "make_store: %s\n", e.what());
  return 1;
}
