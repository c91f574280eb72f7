// The module runtime behind the SDK's run_module() (include/rackd/module.hpp):
// attach to the segment the server names on the command line, set up the
// processor, then run the block loop; or print the module's description.
// The shipped modules use these names; out-of-tree modules use rackd::.
#pragma once

#include <rackd/module.hpp>

#include "shm/layout.hpp"
#include "shm/rt.hpp"

namespace rackd::runtime {

using rackd::Block;
using rackd::ParamView;
using rackd::Processor;
using rackd::SetupInfo;
using rackd::run_module;

}  // namespace rackd::runtime
