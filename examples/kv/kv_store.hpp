// The prevalent store of prevalent-kv: KvState and every typed write command.
#pragma once

#include <prevalent/prevalent.hpp>

#include "kv_commands.hpp"

namespace kv {

using KvStore = prevalent::Store<KvState, SetCommand, MsetCommand, DelCommand, GetdelCommand,
                                 GetexCommand, IncrbyCommand, IncrbyfloatCommand, AppendCommand,
                                 SetrangeCommand, ExpireCommand, PersistCommand, RenameCommand,
                                 FlushallCommand, HsetCommand, HdelCommand, HincrbyCommand,
                                 HincrbyfloatCommand, ExecCommand, BatchCommand, ExpireDueCommand>;

}  // namespace kv
