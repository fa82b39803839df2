// Lists the processes in a memory image through the installed library's public API.
#include <iostream>
#include <variant>

#include "vmi/linux.hpp"
#include "vmi/session.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: list_processes IMAGE [PROFILE]\n";
    return 1;
  }
  vmi::SessionOptions options;
  if (argc > 2) options.profile_paths.emplace_back(argv[2]);
  auto session = vmi::Session::open(argv[1], options);
  if (!session) {
    std::cerr << session.error().message << '\n';
    return 2;
  }
  auto kernel = session->kernel();
  if (!kernel) {
    std::cerr << kernel.error().message << '\n';
    return 3;
  }
  // Typed values straight from the OS layer, rather than the rendered plugin table.
  auto tasks = vmi::linux_objects::list_tasks(**kernel, false, session->diagnostics());
  if (!tasks) {
    std::cerr << tasks.error().message << '\n';
    return 4;
  }
  // Fields the reader could not read are empty (and named in session.diagnostics()).
  for (const auto& task : *tasks) {
    std::cout << task.tgid << '\t' << (task.ppid ? std::to_string(*task.ppid) : "-") << '\t'
              << (task.name ? *task.name : "-") << '\n';
  }
  return 0;
}
