// The order pstree shows processes in, for any OS: each under its parent, in PID order at each
// level; processes whose parent is absent (or unreadable, or themselves) at the top level.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "vmi/diagnostics.hpp"
#include "vmi/plugin.hpp"

namespace vmi {

struct ProcessNode {
  std::int64_t pid = 0;
  std::optional<std::int64_t> parent;  // empty when unreadable: shown at the top level
  std::size_t row = 0;                 // the caller's row for this process
};

// Calls visit(node, depth) for every node once, in tree order. Nodes caught in a parent cycle are
// reachable from no root: they come last, at depth 0, with in_cycle set. Iterative and bounded in
// depth, so a hostile image cannot exhaust the stack.
void visit_process_tree(std::vector<ProcessNode> nodes,
                        const std::function<void(const ProcessNode& node, std::uint32_t depth, bool in_cycle)>& visit);

// Hands `rows` (rows[node.row] for each node) to `out` in tree order with their depths, freeing
// each as it goes; a process in a parent cycle is a warning naming it ("task 42", "process 4").
void write_process_tree(std::vector<ProcessNode> nodes, std::vector<Row>& rows, RowSink& out, Diagnostics& diagnostics,
                        std::string_view noun);

}  // namespace vmi
