// Must not compile: a command type without a stable name.
// expect: every command needs `static constexpr std::string_view name
#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  int by = 0;
  void apply(State& s, const prevalent::Context&) { s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};

int main() { prevalent::Store<State, Add> store(prevalent::in_memory); }
