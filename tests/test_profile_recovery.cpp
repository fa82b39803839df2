// Profiles recovered from the snapshot itself (kallsyms + BTF, no profile file): checked against
// the guest's own /proc, the vmlinux's BTF, dwarf2json's ISF of the same build and the real
// System.map symbols that ISF carries.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <span>
#include <sstream>

#include "samples.hpp"
#include "support.hpp"
#include "vmi/isf.hpp"
#include "vmi/kallsyms.hpp"
#include "vmi/profile_recovery.hpp"
#include "vmi/profile_store.hpp"
#include "vmi/session.hpp"
#include "vmi/vmlinux.hpp"

using namespace vmi;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kRecoveredNote = "profile recovered from snapshot: ";

// A session that has no profile file to try, so the kernel's profile must come from the image.
Session open_without_profiles(const fs::path& image, const fs::path& cache) {
  SessionOptions options;
  static const fs::path no_profiles = test::scratch_dir("no-profiles");
  options.profile_paths = {no_profiles};
  options.cache = CacheOptions{true, cache};
  auto session = Session::open(image, options);
  REQUIRE_MESSAGE(session.has_value(), test::error_text(session));
  return std::move(*session);
}

std::string profile_source(Session& session) {
  auto kernel = session.kernel();
  REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
  for (const auto& [name, value] : (*kernel)->facts()) {
    if (name == "profile") return value;
  }
  return {};
}

// The GNU build id of an ELF file, as binutils' readelf prints it.
std::string readelf_build_id(const fs::path& elf) {
  const auto result = test::run_command({"readelf", "-n", elf.string()});
  const auto at = result.out.find("Build ID: ");
  if (at == std::string::npos) return {};
  return result.out.substr(at + 10, result.out.find('\n', at) - at - 10);
}

std::size_t type_count(const Profile& profile) {
  return profile.aggregates.size() + profile.enums.size() + profile.base_types.size();
}

// How often each name occurs among the core kernel's lines of the guest's /proc/kallsyms.
std::map<std::string, std::size_t> kallsyms_name_counts(const test::Sample& sample) {
  std::map<std::string, std::size_t> counts;
  std::istringstream in(test::read_file(sample.dir / "truth/kallsyms"));
  for (std::string line; std::getline(in, line);) {
    if (line.find('[') != std::string::npos) continue;  // module symbols are not in the core table
    ++counts[line.substr(line.rfind(' ') + 1)];
  }
  return counts;
}

// The names of a profile's symbols.
std::set<std::string> symbol_names(const Profile& profile) {
  std::set<std::string> names;
  for (const Symbol& symbol : profile.symbols) names.emplace(profile.str(symbol.name));
  return names;
}

// The profile recovered from a sample's raw image, with no profile file at all.
RecoveredProfile recover_from(const test::Sample& sample) {
  auto image = open_image(sample.dir / "memory.raw");
  REQUIRE(image.has_value());
  auto recovered = recover_linux_profile(std::shared_ptr<const PhysicalImage>(std::move(*image)));
  REQUIRE_MESSAGE(recovered.has_value(), test::error_text(recovered));
  return std::move(*recovered);
}

}  // namespace

TEST_CASE("with no profile file, pslist and pstree equal /proc on every sample kernel through a recovered profile") {
  auto samples = test::load_samples();
  const auto others = test::load_recovery_samples();
  REQUIRE(samples.size() >= 2);
  // cloud-amd64, rt-amd64, the older 6.1.0-55 ABI and the 6.12 backport (kallsyms in the 6.4+
  // order): kernels the repository ships no profile for.
  REQUIRE(others.size() == 4);
  samples.insert(samples.end(), others.begin(), others.end());
  for (const auto& sample : samples) {
    CAPTURE(sample.name);
    const fs::path cache = test::scratch_dir("recovered-" + sample.name);
    std::set<std::string> kallsyms_names;
    for (const auto& entry : kallsyms_name_counts(sample)) kallsyms_names.insert(entry.first);
    for (const char* image : {"memory.raw", "memory.elf"}) {
      CAPTURE(image);
      Session session = open_without_profiles(sample.dir / image, cache);
      CHECK(profile_source(session).starts_with("profile recovered from snapshot"));
      REQUIRE(session.diagnostics().notes().size() == 1);
      const std::string& note = session.diagnostics().notes().front();
      CHECK(note.starts_with(kRecoveredNote));
      // The first image recovers, the second (same kernel, same boot) loads the cached entry.
      CHECK(note.ends_with(std::string(image) == "memory.raw" ? " symbols" : " symbols (from cache)"));
      auto kernel = session.kernel();
      REQUIRE(kernel.has_value());
      CHECK((*kernel)->banner().find(sample.release) != std::string_view::npos);
      CHECK(std::to_string((*kernel)->kernel_layer().mode().levels) == sample.env.at("PAGING_LEVELS"));
      CHECK(note == std::string(kRecoveredNote) + std::to_string(type_count((*kernel)->profile())) + " types, " +
                        std::to_string((*kernel)->profile().symbols.size()) + " symbols" +
                        (std::string(image) == "memory.raw" ? "" : " (from cache)"));
      // One profile symbol per distinct name of the kernel's own symbol table, as the guest lists it.
      const auto names = symbol_names((*kernel)->profile());
      CHECK((*kernel)->profile().symbols.size() == names.size());
      CHECK_MESSAGE(names == kallsyms_names, "only in the profile: ", test::names_missing(names, kallsyms_names),
                    "; only in /proc/kallsyms: ", test::names_missing(kallsyms_names, names));
      test::check_pslist_equals_proc(session, sample);
      test::check_threads_equal_proc(session, sample);
      test::check_pstree_matches_parents(session, sample);
      CHECK(session.diagnostics().warnings().empty());
      // CREATION TIME (the wall clock from tk_core, which BTF leaves untyped) for every row.
      auto table = vmi::run_plugin(session, "pslist");
      REQUIRE(table.has_value());
      constexpr std::size_t kCreation = 12;
      for (const Row& row : table->rows) CHECK(std::holds_alternative<std::int64_t>(row.cells.at(kCreation)));
      if (sample.env.count("PROFILE_SHIPPED") == 0) {  // the same instants as with dwarf2json's profile
        Session reference = test::open_sample(sample.dir / image, test::profile_for(sample));
        auto expected = vmi::run_plugin(reference, "pslist");
        REQUIRE(expected.has_value());
        REQUIRE(expected->rows.size() == table->rows.size());
        for (std::size_t i = 0; i < table->rows.size(); ++i) CHECK(table->rows[i].cells == expected->rows[i].cells);
      }
    }
  }
}

TEST_CASE("the recovered profile holds exactly the vmlinux's BTF types and the kernel's build id") {
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  const auto& sample = samples.front();
  const fs::path kernel_dir = sample.env.at("KERNEL_DIR");
  const auto recovered = std::make_optional(recover_from(sample));
  auto from_vmlinux = build_profile_from_vmlinux(kernel_dir / "vmlinux", kernel_dir / "System.map");
  REQUIRE(from_vmlinux.has_value());
  // Type by type: every user type with its kind, size and every member (name, offset, anonymous,
  // type), every enum with its size, base and every constant by name and value, every base type.
  // The symbols (kallsyms against System.map) and the producer ("vmi-forensics snapshot" against
  // "vmi-forensics btf") differ by design; the symbols are checked elsewhere.
  auto types_of = [](const Profile& profile) {
    test::IsfModel model = test::isf_model_of(profile);
    model.symbols.clear();
    model.producer.clear();
    return model;
  };
  const auto differences = test::isf_model_differences(types_of(recovered->profile), types_of(*from_vmlinux));
  for (const auto& difference : differences) MESSAGE(difference);
  CHECK(differences.empty());
  CHECK(recovered->types == type_count(recovered->profile));
  CHECK(recovered->profile.banner() == from_vmlinux->banner());
  // The BTF blob in guest memory is the vmlinux's .BTF section (readelf): same size, same bytes, at
  // the section's link-time address moved by the boot's KASLR shift (the guest's own _text).
  const auto sections = test::readelf_sections(kernel_dir / "vmlinux");
  REQUIRE(sections.contains(".BTF"));
  REQUIRE(sections.contains(".text"));
  const test::ElfSection& btf = sections.at(".BTF");
  CHECK(recovered->btf_bytes == btf.size);
  const Addr guest_text = std::stoull(sample.guest.at("KALLSYMS__text"), nullptr, 16);
  CHECK(recovered->btf_virtual - guest_text == btf.address - sections.at(".text").address);
  std::string file_bytes(btf.size, '\0');
  std::ifstream vmlinux(kernel_dir / "vmlinux", std::ios::binary);
  vmlinux.seekg(static_cast<std::streamoff>(btf.offset));
  const bool file_read = static_cast<bool>(vmlinux.read(file_bytes.data(), static_cast<std::streamsize>(btf.size)));
  REQUIRE(file_read);
  Session session = test::open_sample(sample.dir / "memory.raw", test::profile_for(sample));
  auto kernel = session.kernel();
  REQUIRE_MESSAGE(kernel.has_value(), test::error_text(kernel));
  std::string memory_bytes(btf.size, '\0');
  REQUIRE(read_exact((*kernel)->kernel_layer(), recovered->btf_virtual,
                     std::as_writable_bytes(std::span(memory_bytes.data(), memory_bytes.size())))
              .has_value());
  const bool same_bytes = memory_bytes == file_bytes;
  CHECK(same_bytes);
  CHECK(recovered->build_id.size() == 40);
  CHECK(recovered->build_id == readelf_build_id(kernel_dir / "vmlinux"));
  CHECK(recovered->paging->levels == std::stoi(sample.env.at("PAGING_LEVELS")));
  MESSAGE(sample.name << ": " << recovered->types << " types, " << recovered->symbols << " symbols, BTF "
                      << recovered->btf_bytes << " bytes at " << hex(recovered->btf_virtual) << ", build id "
                      << recovered->build_id);
}

TEST_CASE("a recovered profile is cached under banner and build id, and a damaged or foreign entry is rebuilt") {
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  const auto& sample = samples.back();
  const fs::path image = sample.dir / "memory.raw";
  const fs::path cache = test::scratch_dir("recovered-cache");
  const fs::path entries = cache / "recovered";
  const std::string build_id = readelf_build_id(fs::path(sample.env.at("KERNEL_DIR")) / "vmlinux");
  REQUIRE(build_id.size() == 40);
  auto only_entry = [&] {
    std::vector<fs::path> files;
    for (const auto& file : fs::directory_iterator(entries)) files.push_back(file.path());
    REQUIRE(files.size() == 1);
    return files.front();
  };
  auto note_of = [&](Session& session) {
    REQUIRE(session.kernel().has_value());
    REQUIRE(session.diagnostics().notes().size() == 1);
    return session.diagnostics().notes().front();
  };

  Session first = open_without_profiles(image, cache);
  CHECK_FALSE(note_of(first).ends_with("(from cache)"));
  const fs::path entry = only_entry();
  CHECK(entry.filename().string().size() == 16 + 1 + 40 + 8);
  CHECK(entry.filename().string().substr(17, 40) == build_id);
  // The header alone lets detection probe for the kernel: linux_banner's distance from _text.
  const auto info = read_cached_info(entry);
  REQUIRE(info.has_value());
  const Profile& recovered = (*first.kernel())->profile();
  CHECK(info->banner == recovered.banner());
  CHECK(info->banner_offset == *recovered.symbol_address("linux_banner") - *recovered.symbol_address("_text"));

  SUBCASE("the second session loads the entry") {
    Session second = open_without_profiles(image, cache);
    CHECK(note_of(second).ends_with(" symbols (from cache)"));
    test::check_pslist_equals_proc(second, sample);
  }
  SUBCASE("a damaged entry is reported, not trusted, and rewritten") {
    std::string bytes = test::read_file(entry);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
    test::write_file(entry, bytes);
    Session second = open_without_profiles(image, cache);
    CHECK_FALSE(note_of(second).ends_with("(from cache)"));
    REQUIRE(second.diagnostics().warnings().size() == 1);
    CHECK(second.diagnostics().warnings().front().starts_with("ignoring damaged recovered-profile cache entry: "));
    test::check_pslist_equals_proc(second, sample);
    Session third = open_without_profiles(image, cache);
    CHECK(note_of(third).ends_with("(from cache)"));
  }
  SUBCASE("an entry whose build id differs from the kernel's is not used") {
    const fs::path foreign = entries / (entry.filename().string().substr(0, 17) + std::string(40, '0') + ".vmiprof");
    fs::rename(entry, foreign);
    Session second = open_without_profiles(image, cache);
    CHECK_FALSE(note_of(second).ends_with("(from cache)"));
    CHECK(fs::exists(entry));  // the right entry was written again
  }
}

TEST_CASE("BTF from the snapshot, BTF from vmlinux, our DWARF import and dwarf2json agree on the investigation types") {
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  const auto& sample = samples.front();
  REQUIRE_MESSAGE(sample.env.at("PINNED") == "1", "needs the pinned kernel, which the dwarf2json ISF describes");
  const fs::path kernel_dir = sample.env.at("KERNEL_DIR");
  const auto snapshot = std::make_optional(recover_from(sample));
  auto vmlinux = build_profile_from_vmlinux(kernel_dir / "vmlinux", kernel_dir / "System.map");
  REQUIRE(vmlinux.has_value());
  auto dwarf = load_isf_file(test::shipped_profile());
  REQUIRE(dwarf.has_value());

  const Profile& debug = test::debug_vmlinux_profile(sample);  // DWARF of the -dbg vmlinux
  const Profile* profiles[] = {&snapshot->profile, &*vmlinux, &debug, &*dwarf};
  // The reference: dwarf2json's file as written, read with simdjson rather than our ISF reader.
  const test::IsfModel& isf = test::shipped_isf_model();
  for (const char* type : {"task_struct", "mm_struct", "files_struct", "file", "dentry", "inode", "module", "cred",
                           "list_head", "sock", "inet_sock", "net"}) {
    CAPTURE(type);
    const auto reference = isf.user_types.find(type);
    REQUIRE(reference != isf.user_types.end());
    for (const Profile* profile : profiles) {
      const Aggregate* aggregate = profile->find_aggregate(type);
      REQUIRE(aggregate != nullptr);
      CHECK(aggregate->size == reference->second.size);
      CHECK(aggregate->member_count == reference->second.fields.size());
    }
    // Every field dwarf2json names (anonymous members flattened into their parent, as lookups
    // see them), at the same offset with the same size in all four.
    const auto fields = test::isf_named_fields(isf, type);
    MESSAGE(type << ": " << fields.size() << " fields");
    for (const auto& [name, field] : fields) {
      CAPTURE(name);
      const auto expected_size = test::isf_size_of(isf, field.type);
      for (const Profile* profile : profiles) {
        const auto found = profile->find_field(*profile->find_aggregate(type), name);
        REQUIRE(found.has_value());
        CHECK(found->offset == field.offset);
        CHECK(profile->size_of(found->type) == expected_size);
      }
    }
  }
}

TEST_CASE("kallsyms from the snapshot equals System.map plus the KASLR shift for every symbol in both") {
  const auto samples = test::load_samples();
  REQUIRE(!samples.empty());
  for (const auto& sample : samples) {
    CAPTURE(sample.name);
    REQUIRE_MESSAGE(sample.env.at("PINNED") == "1", "the dwarf2json ISF carries the pinned build's System.map");
    // The shipped ISF's symbols are the -dbg package's System.map: an independent source, read
    // here with simdjson rather than our ISF reader. The KASLR shift is the guest's own: _text as
    // its /proc/kallsyms gave it (truth/guest.env) minus the link-time _text.
    const test::IsfModel& isf = test::shipped_isf_model();
    const Addr guest_text = std::stoull(sample.guest.at("KALLSYMS__text"), nullptr, 16);
    const std::uint64_t shift = guest_text - isf.symbols.at("_text").address;
    Session session = test::open_sample(sample.dir / "memory.raw", test::shipped_profile());
    auto kernel = session.kernel();
    REQUIRE(kernel.has_value());
    auto recovered = recover_kallsyms((*kernel)->kernel_layer(), *(*kernel)->symbol("_text"));
    REQUIRE_MESSAGE(recovered.has_value(), test::error_text(recovered));
    // Static symbols repeat a name with different addresses; compare the names kallsyms has once.
    std::map<std::string_view, std::size_t> occurrences;
    for (const auto& symbol : recovered->symbols) ++occurrences[symbol.name];
    std::set<std::string> in_both;
    std::size_t mismatches = 0, only_kallsyms = 0;
    for (const auto& symbol : recovered->symbols) {
      if (occurrences[symbol.name] != 1) continue;
      const auto linked = isf.symbols.find(std::string(symbol.name));
      if (linked == isf.symbols.end()) {
        ++only_kallsyms;
        continue;
      }
      in_both.emplace(symbol.name);
      // Per-CPU symbols are offsets and do not move; everything else moves by the shift.
      const Addr expected =
          symbol.address < 0xffff800000000000ull ? linked->second.address : linked->second.address + shift;
      if (symbol.address != expected && ++mismatches <= 5) {
        MESSAGE(symbol.name << ": kallsyms " << hex(symbol.address) << ", System.map + shift " << hex(expected));
      }
    }
    // Which names those must be, from the guest's /proc/kallsyms and the ISF alone.
    std::set<std::string> expected_in_both;
    for (const auto& [name, count] : kallsyms_name_counts(sample)) {
      if (count == 1 && isf.symbols.contains(name)) expected_in_both.insert(name);
    }
    MESSAGE(sample.name << ": " << in_both.size() << " symbols in both, " << only_kallsyms << " only in kallsyms, "
                        << recovered->symbols.size() << " kallsyms entries");
    CHECK(mismatches == 0);
    CHECK_MESSAGE(in_both == expected_in_both,
                  "compared, not expected: ", test::names_missing(in_both, expected_in_both),
                  "; expected, not compared: ", test::names_missing(expected_in_both, in_both));
    CHECK(only_kallsyms == 0);
  }
}
