// Must not compile: running a command on a read-only view of a past state (time travel).
// expect: a StoreView is a read-only view of a past state
#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  int by = 0;
  void apply(State& s, const prevalent::Context&) { s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};

int main() {
  prevalent::Store<State, Add>::view then("/nonexistent", prevalent::as_of{.seq = 1});
  then.execute(Add{1});
}
