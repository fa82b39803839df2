// check_creds: credentials shared by tasks of different processes. copy_creds() gives every child
// that is not a thread its own struct cred, so two processes holding one cred means someone
// pointed a task at another's (a rootkit granting root by borrowing init's credentials).
#include <map>
#include <set>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct CredRow {
  Addr cred = 0;
  std::string pids;  // the processes holding it, "1, 42"
  std::int64_t processes = 0;
  bool suspicious = false;
};

// Volatility 3's column (PIDs), after the cred's address; then how many processes share it and
// Suspicious, true exactly when more than one does.
constexpr auto kCredRow =
    declare_row(column<&CredRow::cred, ColumnType::address>("Cred"), column<&CredRow::pids>("PIDs"),
                column<&CredRow::processes>("Processes"), column<&CredRow::suspicious>("Suspicious"));

constexpr PluginOption kOptions[] = {{"all", OptionType::flag, "show every cred, not only shared ones"}};

Expected<void> run_check_creds(PluginContext& context) {
  const bool all = context.args.flag("all");
  const Kernel& kernel = *context.kernel;
  std::map<Addr, std::set<std::int32_t>> holders;  // cred -> thread-group ids
  std::optional<Error> failed;
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, true, context.diagnostics, [&](const linux_objects::Task& task) {
    auto cred = linux_objects::credentials_of(kernel, task, context.diagnostics);
    if (!cred) {
      failed = cred.error();
      return false;
    }
    if (*cred) holders[**cred].insert(task.tgid);
    return true;
  }));
  if (failed) return *failed;
  RowWriter rows(context.out, kCredRow);
  for (const auto& [cred, pids] : holders) {
    CredRow row{
        .cred = cred, .pids = {}, .processes = static_cast<std::int64_t>(pids.size()), .suspicious = pids.size() > 1};
    if (!row.suspicious && !all) continue;
    for (std::int32_t pid : pids) row.pids += (row.pids.empty() ? "" : ", ") + std::to_string(pid);
    if (!rows.write(row)) break;
  }
  return {};
}

}  // namespace

constexpr std::string_view kCheckCredsAliases[] = {"linux.check_creds.Check_creds",
                                                   "linux.malware.check_creds.Check_creds"};
const Plugin kCheckCredsPlugin{.name = "linux.check_creds",
                               .short_name = "check_creds",
                               .os = "linux",
                               .aliases = kCheckCredsAliases,
                               .description = "Credentials shared by different processes (--all: every cred)",
                               .needs = Requirement::kernel,
                               .columns = kCredRow.columns,
                               .tree = false,
                               .options = kOptions,
                               .run = run_check_creds};

}  // namespace vmi
