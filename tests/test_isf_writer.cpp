// ISF writer: exact JSON text for a small profile and for the shipped dwarf2json file, escaping,
// producer and error cases.
#include <doctest/doctest.h>

#include "support.hpp"

#include <algorithm>
#include <sstream>
#include <string>

#include "vmi/isf.hpp"

using namespace vmi;

namespace {

Profile small_profile(std::string_view producer = "vmi-forensics btf", std::string_view os = "linux") {
  ProfileBuilder b;
  b.set_producer(producer);
  b.set_format_version("6.2.0");
  b.set_os(os);
  b.add_base_type("int", 4, BaseKind::integer, true);
  b.add_base_type("char", 1, BaseKind::character, true);
  b.add_base_type("unsigned int", 4, BaseKind::integer, false);
  b.add_base_type("void", 0, BaseKind::void_, false);
  const TypeId t_int = b.add_type(TypeKind::base, "int");
  const TypeId t_char = b.add_type(TypeKind::base, "char");
  const TypeId t_uint = b.add_type(TypeKind::base, "unsigned int");
  const TypeId t_list = b.add_type(TypeKind::struct_, "list_head");
  const TypeId t_list_ptr = b.add_type(TypeKind::pointer, {}, t_list);
  const TypeId t_comm = b.add_type(TypeKind::array, {}, t_char, 16);
  const TypeId t_flags = b.add_type(TypeKind::bitfield, {}, t_uint, 0, 3, 5);
  const TypeId t_fn = b.add_type(TypeKind::pointer, {}, b.add_type(TypeKind::function));
  const TypeId t_anon = b.add_type(TypeKind::union_, "unnamed_0123456789abcdef");
  const TypeId t_state = b.add_type(TypeKind::enum_, "state");
  const TypeId t_void = b.add_type(TypeKind::void_);
  const TypeId t_task = b.add_type(TypeKind::struct_, "task");

  b.begin_aggregate("task", TypeKind::struct_, 40);
  b.add_member("pid", 0, t_int, false);
  b.add_member("flags", 4, t_flags, false);
  b.add_member("comm", 8, t_comm, false);
  b.add_member("unnamed_field_0", 24, t_anon, true);
  b.add_member("fn", 32, t_fn, false);
  b.add_member("st", 36, t_state, false);
  b.begin_aggregate("list_head", TypeKind::struct_, 16);
  b.add_member("prev", 8, t_list_ptr, false);
  b.add_member("next", 0, t_list_ptr, false);
  b.begin_aggregate("unnamed_0123456789abcdef", TypeKind::union_, 8);
  b.add_member("a", 0, t_int, false);
  b.begin_enum("state", 4, "int");
  b.add_enumerator("RUNNING", 0);
  b.add_enumerator("DEAD", -1);
  b.add_symbol("linux_banner", 0xffffffff82161900ull, t_void, std::string_view("Linux version 6.1.0\n\0", 21));
  b.add_symbol("init_task", 0xffffffff82a1aa40ull, t_task);
  b.add_symbol("_text", 0xffffffff81000000ull);
  auto profile = std::move(b).build();
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  return std::move(*profile);
}

std::string write(const Profile& profile) {
  std::ostringstream out;
  auto written = write_isf(profile, out);
  REQUIRE_MESSAGE(written.has_value(), test::error_text(written));
  return out.str();
}

}  // namespace

TEST_CASE("ISF writer output is dwarf2json's layout, byte for byte") {
  const std::string expected = R"({
  "metadata": {
    "linux": {
      "symbols": [
        {
          "kind": "symtab",
          "name": "vmlinux-6.1.0"
        }
      ]
    },
    "producer": {
      "name": "vmi-forensics btf",
      "version": "0.1.0"
    },
    "format": "6.2.0"
  },
  "base_types": {
    "char": {
      "size": 1,
      "signed": true,
      "kind": "char",
      "endian": "little"
    },
    "int": {
      "size": 4,
      "signed": true,
      "kind": "int",
      "endian": "little"
    },
    "unsigned int": {
      "size": 4,
      "signed": false,
      "kind": "int",
      "endian": "little"
    },
    "void": {
      "size": 0,
      "signed": false,
      "kind": "void",
      "endian": "little"
    }
  },
  "user_types": {
    "list_head": {
      "size": 16,
      "fields": {
        "next": {
          "type": {
            "kind": "pointer",
            "subtype": {
              "kind": "struct",
              "name": "list_head"
            }
          },
          "offset": 0
        },
        "prev": {
          "type": {
            "kind": "pointer",
            "subtype": {
              "kind": "struct",
              "name": "list_head"
            }
          },
          "offset": 8
        }
      },
      "kind": "struct"
    },
    "task": {
      "size": 40,
      "fields": {
        "comm": {
          "type": {
            "count": 16,
            "kind": "array",
            "subtype": {
              "kind": "base",
              "name": "char"
            }
          },
          "offset": 8
        },
        "flags": {
          "type": {
            "bit_length": 5,
            "bit_position": 3,
            "kind": "bitfield",
            "type": {
              "kind": "base",
              "name": "unsigned int"
            }
          },
          "offset": 4
        },
        "fn": {
          "type": {
            "kind": "pointer",
            "subtype": {
              "kind": "function"
            }
          },
          "offset": 32
        },
        "pid": {
          "type": {
            "kind": "base",
            "name": "int"
          },
          "offset": 0
        },
        "st": {
          "type": {
            "kind": "enum",
            "name": "state"
          },
          "offset": 36
        },
        "unnamed_field_0": {
          "type": {
            "kind": "union",
            "name": "unnamed_0123456789abcdef"
          },
          "offset": 24,
          "anonymous": true
        }
      },
      "kind": "struct"
    },
    "unnamed_0123456789abcdef": {
      "size": 8,
      "fields": {
        "a": {
          "type": {
            "kind": "base",
            "name": "int"
          },
          "offset": 0
        }
      },
      "kind": "union"
    }
  },
  "enums": {
    "state": {
      "size": 4,
      "base": "int",
      "constants": {
        "DEAD": -1,
        "RUNNING": 0
      }
    }
  },
  "symbols": {
    "_text": {
      "address": 18446744071578845184
    },
    "init_task": {
      "type": {
        "kind": "struct",
        "name": "task"
      },
      "address": 18446744071606217280
    },
    "linux_banner": {
      "type": {
        "kind": "base",
        "name": "void"
      },
      "address": 18446744071597070592,
      "constant_data": "TGludXggdmVyc2lvbiA2LjEuMAoA"
    }
  }
})";
  const std::string text = write(small_profile());
  CHECK(text == expected);
  CHECK(write(small_profile()) == text);  // deterministic
}

TEST_CASE("ISF writer splits a '<name> <version>' producer and omits linux metadata for other systems") {
  const std::string dwarf2json = write(small_profile("dwarf2json 0.9.0"));
  CHECK(dwarf2json.find("\"producer\": {\n      \"name\": \"dwarf2json\",\n      \"version\": \"0.9.0\"\n    }") !=
        std::string::npos);
  const std::string windows = write(small_profile("vmi-forensics btf", "windows"));
  CHECK(windows.find("\"linux\"") == std::string::npos);
  CHECK(windows.find("{\n  \"metadata\": {\n    \"producer\": {") == 0);
}

TEST_CASE("ISF writer escapes names: quotes, backslashes, control bytes, invalid UTF-8") {
  ProfileBuilder b;
  b.set_os("linux");
  b.add_symbol(std::string_view("q\"b\\n\nt\tc\x01 \xc3\xa9 \xff\xc3", 16), 1);
  auto profile = std::move(b).build();
  REQUIRE(profile.has_value());
  const std::string text = write(*profile);
  // \xc3\xa9 is valid UTF-8 (e-acute) and kept; a lone \xff and a cut-off \xc3 are not.
  CHECK(text.find(R"("q\"b\\n\nt\tc\u0001 )"
                  "\xc3\xa9"
                  R"( \u00ff\u00c3": {)") != std::string::npos);
  CHECK(text.find("\"name\": \"vmlinux\"") != std::string::npos);  // no banner: a generic name
}

TEST_CASE("ISF writer errors: looping type references, failed stream") {
  ProfileBuilder b;
  const TypeId loop = b.add_type(TypeKind::pointer, {}, 0);  // type #0 points at itself
  b.add_symbol("p", 0, loop);
  auto profile = std::move(b).build();
  REQUIRE(profile.has_value());
  std::ostringstream out;
  auto looped = write_isf(*profile, out);
  REQUIRE_FALSE(looped.has_value());
  CHECK(looped.error().code == Errc::bad_format);
  CHECK(looped.error().message == "ISF writer: type reference #0 nests too deeply");

  std::ostringstream broken;
  broken.setstate(std::ios::badbit);
  auto failed = write_isf(small_profile(), broken);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code == Errc::io);
}

TEST_CASE("ISF writer output reads back through parse_isf and writes back byte for byte") {
  const Profile original = small_profile();
  const std::string text = write(original);
  auto reread = parse_isf(text, "roundtrip.json");
  REQUIRE_MESSAGE(reread.has_value(), test::error_text(reread));
  CHECK(write(*reread) == text);
  CHECK(reread->banner() == "Linux version 6.1.0");
  CHECK(reread->os() == "linux");
  auto a = reread->field("task", "a");  // through the anonymous union
  REQUIRE(a.has_value());
  CHECK(a->offset == 24);
  auto flags = reread->field("task", "flags");
  REQUIRE(flags.has_value());
  CHECK(reread->type(flags->type).kind == TypeKind::bitfield);
  CHECK(reread->type(flags->type).bit_position == 3);
  CHECK(reread->type(flags->type).bit_length == 5);
  CHECK(reread->symbol_address("init_task") == 0xffffffff82a1aa40ull);
  const EnumType* state = reread->find_enum("state");
  REQUIRE(state != nullptr);
  CHECK(reread->enumerators(*state).size() == 2);
}

TEST_CASE("ISF writer reproduces dwarf2json's file of Debian 6.1.0-56 byte for byte, apart from its source hashes") {
  auto profile = load_isf_file(test::shipped_profile());
  REQUIRE_MESSAGE(profile.has_value(), test::error_text(profile));
  const std::string ours = write(*profile);
  // dwarf2json's file decompressed and re-indented by Python's json module (two spaces, key order
  // as in the file, UTF-8 kept), without metadata.linux: the names and sha256 of the files
  // dwarf2json read, which a profile does not keep.
  constexpr const char* kReindent = R"(
import json, lzma, sys
with lzma.open(sys.argv[1], "rt", encoding="utf-8") as f:
    isf = json.load(f)
del isf["metadata"]["linux"]
sys.stdout.buffer.write(json.dumps(isf, indent=2, ensure_ascii=False).encode("utf-8"))
)";
  const auto reindented = test::run_command({"python3", "-c", kReindent, test::shipped_profile().string()});
  REQUIRE_MESSAGE(reindented.exit_code == 0, reindented.err);
  const std::string& expected = reindented.out;
  // Our metadata.linux only names the kernel; cut it out the same way.
  const auto linux_at = ours.find("\n    \"linux\": {");
  const auto producer_at = ours.find("\n    \"producer\": {");
  REQUIRE(linux_at != std::string::npos);
  REQUIRE(producer_at != std::string::npos);
  REQUIRE(linux_at < producer_at);
  const std::string comparable = ours.substr(0, linux_at) + ours.substr(producer_at);
  const auto [at, expected_at] = std::mismatch(comparable.begin(), comparable.end(), expected.begin(), expected.end());
  const auto offset = static_cast<std::size_t>(at - comparable.begin());
  const auto context = [&](const std::string& text) {
    const std::size_t from = offset < 300 ? 0 : offset - 300;
    return from < text.size() ? text.substr(from, 400) : std::string();
  };
  const bool identical = at == comparable.end() && expected_at == expected.end();
  CHECK_MESSAGE(identical, "first difference at byte ", offset, " of ", comparable.size(), " (expected ",
                expected.size(), ")\n--- ours:\n", context(comparable), "\n--- dwarf2json's:\n", context(expected));
  MESSAGE(comparable.size() << " bytes compared");
}
