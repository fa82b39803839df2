// `info` in three shapes: aligned text for people, one JSON object, and CSV rows of
// (section, name, value) so that every line of the text form has a parseable twin.
#include "info.hpp"

#include <fmt/format.h>

namespace vmi::cli {

namespace {

constexpr const char* kRegisters[] = {"cr3", "cr4", "rip", "rsp", "gs_base", "kernel_gs_base"};

std::uint64_t total_bytes(const std::vector<Range>& ranges) {
  std::uint64_t total = 0;
  for (const auto& range : ranges) total += range.size();
  return total;
}

void render_text(const InfoReport& report, std::ostream& out) {
  out << fmt::format("{:<32}{}\n", "image", report.image);
  out << fmt::format("{:<32}{}\n", "format", report.format);
  out << fmt::format("{:<32}{} range(s), {} MiB\n", "physical memory", report.ranges.size(),
                     total_bytes(report.ranges) >> 20);
  for (const auto& range : report.ranges)
    out << fmt::format("  {:#014x} - {:#014x}  ({} KiB)\n", range.begin, range.end, range.size() >> 10);
  for (const auto& [index, registers] : report.vcpus) {
    std::string line;
    for (const auto& [name, value] : registers) line += fmt::format("{}={:#x} ", name, value);
    out << fmt::format("{:<32}{}\n", fmt::format("vCPU {}", index), line);
  }
  for (const auto& [name, value] : report.image_facts) out << fmt::format("{:<32}{}\n", name, value);
  for (const auto& [name, value] : report.kernel_facts) out << fmt::format("{:<32}{}\n", name, value);
}

std::string json_object(const std::vector<std::pair<std::string, std::string>>& facts) {
  std::string text = "{";
  for (std::size_t i = 0; i < facts.size(); ++i)
    text += (i ? ", " : "") + json_string(facts[i].first) + ": " + json_string(facts[i].second);
  return text + "}";
}

void render_json(const InfoReport& report, std::ostream& out) {
  out << "{\n  \"image\": " << json_string(report.image) << ",\n  \"format\": " << json_string(report.format)
      << ",\n  \"physical bytes\": " << total_bytes(report.ranges) << ",\n  \"ranges\": [";
  for (std::size_t i = 0; i < report.ranges.size(); ++i)
    out << (i ? ", " : "") << "{\"begin\": " << report.ranges[i].begin << ", \"end\": " << report.ranges[i].end << "}";
  out << "],\n  \"vcpus\": [";
  for (std::size_t i = 0; i < report.vcpus.size(); ++i) {
    out << (i ? ", " : "") << "{\"index\": " << report.vcpus[i].first;
    for (const auto& [name, value] : report.vcpus[i].second) out << ", " << json_string(name) << ": " << value;
    out << "}";
  }
  out << "],\n  \"image facts\": " << json_object(report.image_facts) << ",\n  \"kernel\": ";
  out << (report.kernel_facts.empty() ? "null" : json_object(report.kernel_facts)) << "\n}\n";
}

void render_csv(const InfoReport& report, std::ostream& out) {
  auto row = [&](std::string_view section, const std::string& name, const std::string& value) {
    out << section << ',' << csv_field(name) << ',' << csv_field(value) << '\n';
  };
  out << "Section,Name,Value\n";
  row("image", "image", report.image);
  row("image", "format", report.format);
  row("image", "physical bytes", std::to_string(total_bytes(report.ranges)));
  for (const auto& range : report.ranges)
    row("range", fmt::format("{:#x}", range.begin), fmt::format("{:#x}", range.end));
  for (const auto& [index, registers] : report.vcpus) {
    for (const auto& [name, value] : registers) row(fmt::format("vcpu {}", index), name, fmt::format("{:#x}", value));
  }
  for (const auto& [name, value] : report.image_facts) row("image fact", name, value);
  for (const auto& [name, value] : report.kernel_facts) row("kernel", name, value);
}

}  // namespace

InfoReport image_report(const PhysicalImage& image) {
  InfoReport report;
  report.image = std::string(image.name());
  report.format = std::string(image.format());
  report.ranges.assign(image.ranges().begin(), image.ranges().end());
  for (const auto& cpu : image.cpu_states()) {
    auto& [index, registers] = report.vcpus.emplace_back();
    index = cpu.index;
    for (const char* name : kRegisters) {
      if (auto it = cpu.registers.find(name); it != cpu.registers.end()) registers.emplace_back(name, it->second);
    }
  }
  for (const auto& [name, value] : image.facts()) report.image_facts.emplace_back(name, value);
  return report;
}

void render_info(const InfoReport& report, Renderer renderer, std::ostream& out) {
  switch (renderer) {
    case Renderer::json:
      return render_json(report, out);
    case Renderer::csv:
      return render_csv(report, out);
    default:
      return render_text(report, out);
  }
}

}  // namespace vmi::cli
