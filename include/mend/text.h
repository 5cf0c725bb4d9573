// Strings from outside are bytes: process names, cgroup and file names, mount points, socket
// requests can hold anything. They become text here, once, so that everything inside is valid
// UTF-8 and no library throws on it deep in the pipeline.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace mend {

// Valid UTF-8 sequences stay as they are; every byte that is not part of one becomes the four
// characters \xNN (lower-case hex). Nothing is lost and the same bytes always give the same
// text. Overlong forms, surrogates and code points past U+10FFFF count as invalid.
std::string to_utf8(std::string_view bytes);
bool is_valid_utf8(std::string_view s);

// For a terminal: control characters (C0 but newline and tab, DEL, C1) become \xNN, as
// journalctl and systemctl show them, so an escape sequence in a name cannot rewrite what an
// operator reads. Invalid UTF-8 is escaped too.
std::string terminal_safe(std::string_view s, bool keep_newlines = true);

// JSON text that never throws: a string that is not valid UTF-8 anywhere in `j` (keys too) is
// written as to_utf8() of it. indent < 0: one line.
std::string dump_json(const nlohmann::json& j, int indent = -1);
std::string dump_json(const nlohmann::ordered_json& j, int indent = -1);

// A number read back from mendd's own state (guardrails, SLO history, undo records): an integer
// in [lo, hi], never a float, a bool or a string; throws std::invalid_argument naming `what`
// otherwise (the caller treats the file as damaged).
int64_t json_int(const nlohmann::json& j, int64_t lo, int64_t hi, const char* what);
uint64_t json_uint(const nlohmann::json& j, const char* what);

}  // namespace mend
