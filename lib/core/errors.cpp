// Names of error codes, for messages and the CLI's exit-code table.
#include "vmi/expected.hpp"

namespace vmi {

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::io:
      return "I/O error";
    case Errc::bad_format:
      return "bad format";
    case Errc::truncated:
      return "truncated";
    case Errc::unmapped:
      return "unmapped";
    case Errc::not_found:
      return "not found";
    case Errc::profile_mismatch:
      return "profile mismatch";
    case Errc::limit_exceeded:
      return "limit exceeded";
    case Errc::unsupported:
      return "unsupported";
    case Errc::invalid_argument:
      return "invalid argument";
  }
  return "error";
}

}  // namespace vmi
