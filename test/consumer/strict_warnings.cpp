// Compiled (not run) by tools/consumer-check, step 1, against the installed headers with the
// strict warnings some users build with (-Wconversion -Wsign-conversion -Werror): the headers
// are not -isystem for them, so a warning in a template is theirs. Instantiates what the
// public headers' templates hold: a store with JSON, CBOR and MessagePack commands, a
// cow_map state with capture(), a read-only view, the determinism check, a typed tool, and
// the replication templates (Replica, ReplicatedStore; prevalent-repl).
#include <prevalent/cow_map.hpp>
#include <prevalent/determinism.hpp>
#include <prevalent/prevalent.hpp>
#include <prevalent/prometheus.hpp>
#include <prevalent/repl/replica.hpp>
#include <prevalent/repl/replicated_store.hpp>
#include <prevalent/time_travel.hpp>
#include <prevalent/tool.hpp>

#include <map>
#include <string>

namespace {

struct Bank {
  static constexpr int version = 2;
  std::map<std::string, long> balances;
  prevalent::cow_map<std::string, long> limits;
  static void upgrade(nlohmann::json& state, int from_version) {
    if (from_version < 2) state["limits"] = nlohmann::json::object();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Bank, balances, limits)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  static constexpr int version = 2;
  static constexpr std::string_view aliases[] = {"add"};
  std::string account;
  long amount = 0;
  void validate(const Bank&, const prevalent::Context&) const {}
  long apply(Bank& b, const prevalent::Context&) const { return b.balances[account] += amount; }
  static void upgrade(nlohmann::json& args, int) { args["amount"] = 0; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

struct SetLimit {
  static constexpr std::string_view name = "set_limit";
  std::string account;
  long limit = 0;
  void apply(Bank& b, const prevalent::Context&) const {
    b.limits.insert_or_assign(account, limit);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SetLimit, account, limit)
};

struct Reset {
  static constexpr std::string_view name = "reset";
  void apply(Bank& b, const prevalent::Context&) const { b.balances.clear(); }
};

using Store = prevalent::Store<Bank, Deposit, SetLimit, Reset>;

}  // namespace

int main(int argc, char** argv) {
  prevalent::store_options o;
  o.codec = prevalent::codec::cbor;
  Store store{"/nonexistent/strict-warnings", o};
  store.execute(Deposit{"alice", 1});
  store.execute(SetLimit{"alice", 10});
  store.execute(Reset{});
  (void)store.query([](const Bank& b) { return b.balances.size() + b.limits.size(); });
  store.snapshot();
  (void)prevalent::prometheus_text(store.metrics());
  prevalent::StoreView<Bank, Deposit, SetLimit, Reset> view{"/nonexistent/strict-warnings",
                                                            prevalent::as_of{.seq = 1}};
  (void)view.query([](const Bank& b) { return b.balances.size(); });
  (void)prevalent::check_determinism<Store>("/nonexistent/strict-warnings");
  Store in_memory{prevalent::in_memory};
  in_memory.execute(Deposit{"bob", 2});
  prevalent::repl::ReplicationPrimary serving{store, 0};
  prevalent::repl::Replica<Bank, Deposit, SetLimit, Reset> replica{"/nonexistent/replica",
                                                                   "127.0.0.1:7000"};
  (void)replica.query([](const Bank& b) { return b.balances.size(); });
  (void)replica.lag().records_behind();
  prevalent::repl::ReplicatedStore<Bank, Deposit, SetLimit, Reset> node{"/nonexistent/node"};
  node.node().become_primary(1, 0);
  node.execute(Deposit{"carol", 3});
  (void)node.query([](const Bank& b) { return b.balances.size(); });
  return prevalent::tool_main<Store>(argc, argv);
}
