// Must not compile: executing a command the store was not declared with.
// expect: this command type is not in the store's command list
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
struct Reset {
  static constexpr std::string_view name = "reset";
  int unused = 0;
  void apply(State& s, const prevalent::Context&) { s.n = 0; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Reset, unused)
};

int main() {
  prevalent::Store<State, Add> store(prevalent::in_memory);
  store.execute(Reset{});
}
