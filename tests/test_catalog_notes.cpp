// What the profile catalog meets on the way reaches session.diagnostics() whichever profile is
// chosen; a named profile that is not there is an error; a recovered profile of a kernel without
// a build id in memory is still found again in the cache.
#include <doctest/doctest.h>

#include <algorithm>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/object.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

bool said(Session& session, const std::string& text) {
  auto has = [&](const std::vector<std::string>& lines) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& line) { return line.find(text) != std::string::npos; });
  };
  return has(session.diagnostics().warnings()) || has(session.diagnostics().notes());
}

const test::Sample& pinned_sample() {
  static const auto samples = test::load_samples();
  REQUIRE_MESSAGE(!samples.empty(), "samples/build-samples.sh builds the samples this test reads");
  return samples.front();
}

Session session_over(const fs::path& image, const std::vector<fs::path>& profiles, const fs::path& cache) {
  auto opened = open_image(image);
  REQUIRE_MESSAGE(opened.has_value(), test::error_text(opened));
  SessionOptions options;
  options.profile_paths = profiles;
  options.cache = CacheOptions{true, cache};
  return Session::over(std::shared_ptr<const PhysicalImage>(std::move(*opened)), options);
}

}  // namespace

TEST_CASE("catalog notes reach diagnostics when a profile file matches") {
  const auto& sample = pinned_sample();
  const auto image = sample.dir / "memory.raw";

  SUBCASE("a damaged cache entry is rebuilt and said") {
    const auto cache = test::scratch_dir("notes-damaged-cache");
    {
      Session first = session_over(image, {test::shipped_profile()}, cache);
      REQUIRE(first.kernel().has_value());
    }
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(cache / "profiles")) entries.push_back(entry.path());
    REQUIRE(entries.size() == 1);
    std::string bytes = test::read_file(entries.front());
    REQUIRE(bytes.size() > 4096);
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2),
              bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2 + 1024), '\xa5');
    test::write_file(entries.front(), bytes);

    Session second = session_over(image, {test::shipped_profile()}, cache);
    REQUIRE(second.kernel().has_value());
    CHECK(said(second, "rebuilding damaged profile cache entry"));
  }
  SUBCASE("a cache that cannot be written is said") {
    const auto dir = test::scratch_dir("notes-unwritable-cache");
    test::write_file(dir / "cache", "a file where the cache directory should be");
    Session session = session_over(image, {test::shipped_profile()}, dir / "cache");
    REQUIRE(session.kernel().has_value());
    CHECK(said(session, "profile cache not written"));
  }
  SUBCASE("a search path that cannot be read is said") {
    const auto dir = test::scratch_dir("notes-search-path");
    Session session = session_over(image, {test::shipped_profile(), dir / "missing"}, dir / "cache");
    REQUIRE(session.kernel().has_value());
    CHECK(said(session, "profile search path '" + (dir / "missing").string() + "' cannot be read"));
  }
}

TEST_CASE("a named profile that does not exist is an error naming it, not a recovered profile") {
  const auto& sample = pinned_sample();
  const auto missing = test::scratch_dir("notes-missing-profile") / "typo.json.xz";
  SessionOptions options;
  options.profile_paths = {missing};
  auto session = Session::open(sample.dir / "memory.raw", options);
  REQUIRE_FALSE(session.has_value());
  CHECK(session.error().message == "profile '" + missing.string() + "': No such file or directory");
}

TEST_CASE("a recovered profile of a kernel without a build id in memory is reused from the cache") {
  const auto& sample = pinned_sample();
  const auto image = sample.dir / "memory.raw";
  // Where the build id note lies, from the shipped profile placed in this image.
  Session reference = test::open_sample(image, test::shipped_profile());
  const Kernel* kernel = *reference.kernel();
  const auto start = kernel->symbol("__start_notes");
  const auto stop = kernel->symbol("__stop_notes");
  REQUIRE(start.has_value());
  REQUIRE(stop.has_value());
  std::vector<Range> notes;
  for (Addr at = *start & ~Addr{0xfff}; at < *stop; at += 0x1000) {
    const auto physical = kernel->kernel_layer().translate(at);
    REQUIRE(physical.has_value());
    const Addr begin = std::max(at, *start) - at + physical->physical;
    notes.push_back({begin, std::min(at + 0x1000, *stop) - at + physical->physical});
  }

  const auto dir = test::scratch_dir("notes-no-build-id");
  const auto no_profiles = dir / "profiles";
  fs::create_directories(no_profiles);
  auto open_without_build_id = [&] {
    auto opened = open_image(image);
    REQUIRE(opened.has_value());
    auto masked = std::make_shared<test::MaskedLayer>(std::shared_ptr<const Layer>(std::move(*opened)), notes,
                                                      test::MaskedLayer::Mask::zeros);
    SessionOptions options;
    options.profile_paths = {no_profiles};
    options.cache = CacheOptions{true, dir / "cache"};
    return Session::over_layer(masked, options);
  };
  {
    Session first = open_without_build_id();
    REQUIRE_MESSAGE(first.kernel().has_value(), test::error_text(first.kernel()));
    CHECK(said(first, "profile recovered from snapshot"));
    CHECK_FALSE(said(first, "(from cache)"));
    CHECK_FALSE(said(first, "not cached"));
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir / "cache" / "recovered"))
    names.push_back(entry.path().filename().string());
  REQUIRE(names.size() == 1);
  CHECK(names.front().find("-btf-") != std::string::npos);

  Session second = open_without_build_id();
  REQUIRE(second.kernel().has_value());
  CHECK(said(second, "(from cache)"));
}
