// Everything a user of prevalent needs: Store, commands, options and errors.
#pragma once

#include "prevalent/command.hpp"
#include "prevalent/error.hpp"
#include "prevalent/options.hpp"
#include "prevalent/store.hpp"
