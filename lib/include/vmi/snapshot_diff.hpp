// Snapshot diff: what changed in one guest between two of its snapshots. Processes started and
// exited, command lines changed, file descriptors and sockets opened and closed, kernel modules
// loaded and unloaded, as plugin-shaped rows so every renderer shows them.
#pragma once

#include <span>

#include "vmi/expected.hpp"
#include "vmi/plugin.hpp"

namespace vmi {

class Session;

// The diff's columns: Change, Object, PID, Start Time, Name, Before, After.
std::span<const Column> snapshot_diff_columns();

// Compares `before` with `after`, two snapshots of one running guest with `before` taken first,
// and streams one row per change to `out`, grouped by object in this order:
//   process  exited / started   matched by PID and start time (since boot), so a reused PID
//                               shows as an exit and a start
//   cmdline  changed            a process in both whose argument bytes differ
//   fd       closed / opened    per process, by descriptor number and what it names (lsof's
//                               path); a process that exited closed them all, a new one opened its own
//   socket   closed / opened    by socket inode, with its endpoints and state
//   module   unloaded / loaded  by name and load address
// Fails when either snapshot has no Linux kernel, or when they hold different kernels; snapshots
// of different boots of one kernel are compared with a warning (their start times do not
// correspond). What a walk could not read is a warning in that snapshot's diagnostics, and
// a field unreadable in either snapshot is not compared.
Expected<void> diff_snapshots(Session& before, Session& after, RowSink& out);

}  // namespace vmi
