// The `prevalent` tool with the sessions example's types (include/prevalent/tool.hpp): every
// types-free subcommand, plus `compact DIR`, which needs the commands to take a snapshot.
//   sessions-tool compact DIR [--keep N] [--key-file FILE]
#include <prevalent/tool.hpp>

#include "sessions_model.hpp"

int main(int argc, char** argv) { return prevalent::tool_main<sessions::Store>(argc, argv); }
