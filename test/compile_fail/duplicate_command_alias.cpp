// Must not compile: a command's alias (an earlier name, read by replay) is another command's
// name. Replay could not tell which command a record under that name is.
// expect: two commands in the store's list have the same name (or a name and an alias are equal)
#include <array>

#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  static constexpr std::array<std::string_view, 1> aliases{"increment"};
  int by = 0;
  int apply(State& s, const prevalent::Context&) { return s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};
struct Increment {
  static constexpr std::string_view name = "increment";  // Add's old name, taken again
  void apply(State& s, const prevalent::Context&) { ++s.n; }
};

int main() { prevalent::Store<State, Add, Increment> store(prevalent::in_memory); }
