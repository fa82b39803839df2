// Declarations of the built-in plugins, each defined in its own file.
#pragma once

#include "vmi/plugin.hpp"

namespace vmi {

extern const Plugin kPslistPlugin;
extern const Plugin kPstreePlugin;
extern const Plugin kWindowsPslistPlugin;
extern const Plugin kWindowsPstreePlugin;
extern const Plugin kWindowsModulesPlugin;
extern const Plugin kWindowsDlllistPlugin;
extern const Plugin kWindowsCmdlinePlugin;
extern const Plugin kWindowsPsscanPlugin;
extern const Plugin kWindowsHandlesPlugin;
extern const Plugin kLsmodPlugin;
extern const Plugin kLsofPlugin;
extern const Plugin kSockstatPlugin;
extern const Plugin kCpusPlugin;
extern const Plugin kSyscallsPlugin;
extern const Plugin kSyscallLogPlugin;
extern const Plugin kTimelinePlugin;
extern const Plugin kTimelineBodyPlugin;
extern const Plugin kPsauxPlugin;
extern const Plugin kEnvarsPlugin;
extern const Plugin kMapsPlugin;
extern const Plugin kCapabilitiesPlugin;
extern const Plugin kKmsgPlugin;
extern const Plugin kMountinfoPlugin;
extern const Plugin kElfsPlugin;
extern const Plugin kMalfindPlugin;
extern const Plugin kCheckSyscallPlugin;
extern const Plugin kCheckIdtPlugin;
extern const Plugin kHiddenModulesPlugin;
extern const Plugin kModxviewPlugin;
extern const Plugin kCheckCredsPlugin;
extern const Plugin kPsscanPlugin;
extern const Plugin kPidhashtablePlugin;
extern const Plugin kCheckAfinfoPlugin;
extern const Plugin kTtyCheckPlugin;
extern const Plugin kKeyboardNotifiersPlugin;

// The carving plugins' --jobs: how many threads scan memory, 0 (one per core) when absent; the
// error says the option takes one number from 1 to 1024.
Expected<std::size_t> scan_jobs(const PluginArgs& args);

}  // namespace vmi
