// timeline: the times the snapshot's own objects carry, in one sorted list: when each process
// started, and the access, modification and change times of every file a process holds open.
// timeline_body writes the same as a bodyfile (The Sleuth Kit's mactime input). What Linux does
// not record is not invented: struct module keeps no load time, struct sock no creation time,
// and struct inode no birth time (a file system may, in its own inode: not read here).
#include <algorithm>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

struct Event {
  std::string plugin;  // the plugin that shows the object: pslist, lsof
  std::string description;
  Maybe<std::int64_t> created, modified, accessed, changed;  // ns since the epoch
  std::string body;                                          // the bodyfile line
};

// Volatility 3's timeliner columns.
constexpr auto kEventRow = declare_row(column<&Event::plugin>("Plugin"), column<&Event::description>("Description"),
                                       column<&Event::created, ColumnType::timestamp>("Created Date"),
                                       column<&Event::modified, ColumnType::timestamp>("Modified Date"),
                                       column<&Event::accessed, ColumnType::timestamp>("Accessed Date"),
                                       column<&Event::changed, ColumnType::timestamp>("Changed Date"));

constexpr auto kBodyRow = declare_row(column<&Event::body>("Bodyfile"));

// At most this many events are gathered (they are sorted before any is written).
constexpr std::size_t kMaxEvents = std::size_t{1} << 22;

template <class T>
Maybe<std::int64_t> time_of(const T& value) {
  if (const auto* known = std::get_if<std::int64_t>(&value)) return *known;
  return std::get<Absence>(value);
}
Maybe<std::int64_t> time_of(const std::optional<std::int64_t>& value) {
  if (value) return *value;
  return Absence::unreadable;
}

// The earliest time an event carries: its place in the timeline (events without one go last).
std::optional<std::int64_t> earliest(const Event& event) {
  std::optional<std::int64_t> first;
  for (const auto* time : {&event.created, &event.modified, &event.accessed, &event.changed}) {
    if (const auto* known = std::get_if<std::int64_t>(time); known && (!first || *known < *first)) first = *known;
  }
  return first;
}

// Whole seconds for the bodyfile (floor), 0 where the time is not known, as mactime expects.
std::string seconds(const Maybe<std::int64_t>& time) {
  const auto* known = std::get_if<std::int64_t>(&time);
  if (known == nullptr) return "0";
  constexpr std::int64_t kSecond = 1'000'000'000;
  return std::to_string(*known >= 0 ? *known / kSecond : -((-*known + kSecond - 1) / kSecond));
}

// The bodyfile line (TSK 3: MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime); '|' in
// the name would split it, so it is written as '/'.
std::string body_line(const Event& event, std::uint64_t inode) {
  std::string name = event.plugin + " - " + event.description;
  std::ranges::replace(name, '|', '/');
  return "0|" + name + "|" + std::to_string(inode) + "|0|0|0|0|" + seconds(event.accessed) + "|" +
         seconds(event.modified) + "|" + seconds(event.changed) + "|" + seconds(event.created);
}

class Timeline {
 public:
  explicit Timeline(PluginContext& context) : context_(context) {}

  Expected<void> gather() {
    std::optional<Error> failed;
    linux_objects::DescriptorBudget budget;
    VMI_TRY_VOID(linux_objects::for_each_task(*context_.kernel, false, context_.diagnostics, [&](auto&& task) {
      add_process(task);
      if (task.kernel_thread.value_or(false)) return room();
      const auto table = linux_objects::file_table_of(*context_.kernel, task, context_.diagnostics);
      if (!table || *table == 0) return room();
      auto walked = linux_objects::for_each_file_descriptor(*context_.kernel, task, *table, budget,
                                                            context_.diagnostics, [&](auto&& descriptor) {
                                                              add_file(task, descriptor);
                                                              return room();
                                                            });
      if (!walked) failed = walked.error();
      return !failed && room();
    }));
    if (failed) return *failed;
    if (!room())
      context_.diagnostics.warn("timeline: more than " + std::to_string(kMaxEvents) + " events; the rest are left out");
    // Earliest first; events without a time last, in the order found.
    std::ranges::stable_sort(events_, [](const Event& a, const Event& b) {
      const auto x = earliest(a);
      const auto y = earliest(b);
      return x && (!y || *x < *y);
    });
    return {};
  }

  std::vector<Event>& events() { return events_; }

 private:
  bool room() const { return events_.size() < kMaxEvents; }

  void add_process(const linux_objects::Task& task) {
    Event event;
    event.plugin = "pslist";
    event.description = "PID " + std::to_string(task.tgid) + " " + task.comm + " started" +
                        (task.ppid ? " (PPID " + std::to_string(*task.ppid) + ")" : "");
    event.created = time_of(task.creation_unix_ns);
    event.modified = event.accessed = event.changed = Absence::not_applicable;
    event.body = body_line(event, 0);
    events_.push_back(std::move(event));
  }

  void add_file(const linux_objects::Task& task, const linux_objects::FileDescriptor& descriptor) {
    Event event;
    event.plugin = "lsof";
    event.description = "PID " + std::to_string(task.tgid) + " " + task.comm + " fd " + std::to_string(descriptor.fd) +
                        " " + descriptor.path.value_or("-");
    event.created = Absence::not_applicable;  // struct inode keeps no birth time
    event.modified = time_of(descriptor.modified_ns);
    event.accessed = time_of(descriptor.accessed_ns);
    event.changed = time_of(descriptor.changed_ns);
    const auto* inode = std::get_if<std::uint64_t>(&descriptor.inode);
    event.body = body_line(event, inode ? *inode : 0);
    events_.push_back(std::move(event));
  }

  PluginContext& context_;
  std::vector<Event> events_;
};

// timeline and timeline_body: the same events, each row written through `declaration`.
template <const auto& declaration>
Expected<void> run_events(PluginContext& context) {
  Timeline timeline(context);
  VMI_TRY_VOID(timeline.gather());
  RowWriter rows(context.out, declaration);
  for (const Event& event : timeline.events())
    if (!rows.write(event)) break;
  return {};
}

}  // namespace

const Plugin kTimelinePlugin{.name = "linux.timeline",
                             .short_name = "timeline",
                             .os = "linux",
                             .aliases = {},
                             .description = "Process start times and open files' times, earliest first",
                             .needs = Requirement::kernel,
                             .columns = kEventRow.columns,
                             .tree = false,
                             .options = {},
                             .run = run_events<kEventRow>};

const Plugin kTimelineBodyPlugin{.name = "linux.timeline_body",
                                 .short_name = "timeline_body",
                                 .os = "linux",
                                 .aliases = {},
                                 .description = "The timeline as a bodyfile (mactime's input), one line an event",
                                 .needs = Requirement::kernel,
                                 .columns = kBodyRow.columns,
                                 .tree = false,
                                 .options = {},
                                 .run = run_events<kBodyRow>};

}  // namespace vmi
