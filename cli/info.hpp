// `info`: what the image is and what kernel it holds, rendered as text, JSON or CSV.
#pragma once

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "render.hpp"
#include "vmi/session.hpp"

namespace vmi::cli {

// Everything `info` reports, gathered once and rendered by any renderer.
struct InfoReport {
  std::string image;
  std::string format;
  std::vector<Range> ranges;
  std::vector<std::pair<unsigned, std::vector<std::pair<std::string, std::uint64_t>>>> vcpus;
  std::vector<std::pair<std::string, std::string>> image_facts;
  std::vector<std::pair<std::string, std::string>> kernel_facts;  // empty when no kernel was found
};

// Reads the image's side of the report; the kernel's facts are added by the caller once detected.
InfoReport image_report(const PhysicalImage& image);
void render_info(const InfoReport& report, Renderer renderer, std::ostream& out);

}  // namespace vmi::cli
