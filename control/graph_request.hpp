// Live graph requests as OSC messages: /rackd/module/add, /rackd/module/remove,
// /rackd/connect, /rackd/disconnect, /rackd/patch/load, /rackd/patch/save,
// decoded into graph::Edit values. [control] thread; allocates.
//
//   /rackd/module/add   s:name s:type s:toml          [s:"fade" f:ms]
//   /rackd/module/remove s:name [i:rewire]            [s:"fade" f:ms]
//   /rackd/connect      s:from s:to [f:gain_db]       [s:"fade" f:ms]
//   /rackd/disconnect   s:from s:to                   [s:"fade" f:ms]
//   /rackd/patch/load   s:path (absolute)             [s:"fade" f:ms]
//   /rackd/patch/save   s:path (absolute)
#pragma once

#include <string>

#include "control/osc_arg.hpp"
#include "graph/edit.hpp"

namespace rackd::control {

// True with `out` filled, or false with a reason a user can act on.
bool parse_graph_request(const OscMessage& m, graph::Edit& out, std::string& why);

}  // namespace rackd::control
