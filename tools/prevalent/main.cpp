// The installed `prevalent` program: the tool without any store's types (docs/TOOL.md).
#include "prevalent/tool.hpp"

int main(int argc, char** argv) { return prevalent::tool::run(argc, argv); }
