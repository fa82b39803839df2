// modxview: each module by the three routes that find it — the `modules` list (/proc/modules),
// /sys/module and a scan of the module area — and Suspicious when one route misses it.
#include <map>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct ViewRow {
  Maybe<std::string> name;
  Addr address = 0;
  bool in_procfs = false, in_sysfs = false, in_scan = false;
  Maybe<std::string> taints;
  bool suspicious = false;
};

// Volatility 3's Modxview columns, then Suspicious: true exactly when a route misses the module.
constexpr auto kViewRow =
    declare_row(column<&ViewRow::name>("Name"), column<&ViewRow::address, ColumnType::address>("Address"),
                column<&ViewRow::in_procfs>("In procfs"), column<&ViewRow::in_sysfs>("In sysfs"),
                column<&ViewRow::in_scan>("In scan"), column<&ViewRow::taints>("Taints"),
                column<&ViewRow::suspicious>("Suspicious"));

Expected<void> run_modxview(PluginContext& context) {
  const Kernel& kernel = *context.kernel;
  std::map<Addr, ViewRow> views;
  auto describe = [&](const linux_objects::Module& module, ViewRow& row) {
    row.name = module.name;
    row.taints = module.taints ? Maybe<std::string>(*module.taints) : Absence::unreadable;
  };
  VMI_TRY_VOID(linux_objects::for_each_module(kernel, context.diagnostics, [&](linux_objects::Module&& module) {
    ViewRow& row = views[module.address];
    row.address = module.address;
    row.in_procfs = true;
    describe(module, row);
    return true;
  }));
  for (Addr address : VMI_TRY(linux_objects::sysfs_modules(kernel, context.diagnostics))) {
    views[address].address = address;
    views[address].in_sysfs = true;
  }
  for (Addr address : VMI_TRY(linux_objects::scan_for_modules(kernel, context.diagnostics))) {
    views[address].address = address;
    views[address].in_scan = true;
  }
  RowWriter rows(context.out, kViewRow);
  for (auto& [address, row] : views) {
    if (!row.in_procfs) {
      if (auto module = linux_objects::read_module(kernel, address, context.diagnostics)) {
        describe(*module, row);
      } else {
        row.name = row.taints = Absence::unreadable;
        context.diagnostics.warn("module at " + hex(address) + ": " + module.error().message);
      }
    }
    row.suspicious = !(row.in_procfs && row.in_sysfs && row.in_scan);
    if (!rows.write(row)) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kModxviewAliases[] = {"linux.modxview.Modxview", "linux.malware.modxview.Modxview"};
const Plugin kModxviewPlugin{.name = "linux.modxview",
                             .short_name = "modxview",
                             .os = "linux",
                             .aliases = kModxviewAliases,
                             .description = "Each module by the list, /sys/module and a memory scan",
                             .needs = Requirement::kernel,
                             .columns = kViewRow.columns,
                             .tree = false,
                             .options = {},
                             .run = run_modxview};

}  // namespace vmi
