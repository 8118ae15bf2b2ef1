// Everything a user of prevalent needs: Store, commands, options and errors.
#pragma once

#include "prevalent/command.hpp"
#include "prevalent/determinism.hpp"
#include "prevalent/error.hpp"
#include "prevalent/options.hpp"
#include "prevalent/store.hpp"
#include "prevalent/time_travel.hpp"
