// Outside strings are bytes: one place makes them text (issue 14).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "correlate/correlator.h"
#include "correlate/incident_json.h"
#include "mend/text.h"
#include "sensors/bpf_decode.h"
#include "sensors/event_json.h"

using namespace mend;

TEST(Text, InvalidBytesAreEscapedAndValidTextKept) {
  EXPECT_EQ(to_utf8("nginx"), "nginx");
  EXPECT_EQ(to_utf8("caf\xc3\xa9"), "caf\xc3\xa9");  // é stays
  EXPECT_EQ(to_utf8("\xff\xfe"
                    "bad"),
            "\\xff\\xfebad");                                          // the process name
  EXPECT_EQ(to_utf8("a\xc3"), "a\\xc3");                               // truncated sequence
  EXPECT_EQ(to_utf8("\xc0\xaf"), "\\xc0\\xaf");                        // overlong '/'
  EXPECT_EQ(to_utf8("\xed\xa0\x80"), "\\xed\\xa0\\x80");               // a UTF-16 surrogate
  EXPECT_EQ(to_utf8("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");      // past U+10FFFF
  EXPECT_EQ(to_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));  // NUL is valid UTF-8
  // The same bytes always give the same text, and the text is valid.
  const std::string junk = "\x80\x81 \xe2\x82 ok \xf0\x9f\x98\x80";
  EXPECT_EQ(to_utf8(junk), to_utf8(junk));
  EXPECT_TRUE(is_valid_utf8(to_utf8(junk)));
  EXPECT_FALSE(is_valid_utf8(junk));
}

TEST(Text, TerminalSafeEscapesControlCharacters) {
  // An escape sequence that would clear the line and print something else.
  EXPECT_EQ(terminal_safe("app\x1b[2K\rok.service"), "app\\x1b[2K\\x0dok.service");
  EXPECT_EQ(terminal_safe("line\n\tnext"), "line\n\tnext");
  EXPECT_EQ(terminal_safe("a\x7f"
                          "b"),
            "a\\x7fb");
  EXPECT_EQ(terminal_safe("\xc2\x9b"
                          "31m"),
            "\\u009b31m");  // C1 CSI
  EXPECT_EQ(terminal_safe("\xff"), "\\xff");
  EXPECT_EQ(terminal_safe("x\ny", /*keep_newlines=*/false), "x\\x0ay");
}

TEST(Text, DumpJsonNeverThrows) {
  nlohmann::json j = {{"comm", "\xff\xfe"}, {"\xc3", {"\x80", 1}}};
  EXPECT_THROW(j.dump(), nlohmann::json::type_error);
  std::string out;
  ASSERT_NO_THROW(out = dump_json(j));
  EXPECT_TRUE(is_valid_utf8(out));
  EXPECT_NE(out.find("\\\\xff\\\\xfe"), std::string::npos) << out;
  EXPECT_EQ(dump_json(nlohmann::json{{"a", 1}}), "{\"a\":1}");
}

TEST(Text, KernelStringsBecomeTextAtDecode) {
  mend_oom_event e{};
  const char name[] =
      "\xff\xfe"
      "bad";
  memcpy(e.comm, name, sizeof name);
  OomKill k = decode_oom(e, "");
  EXPECT_EQ(k.comm, "\\xff\\xfebad");
}

TEST(Text, AnEventNamedWithInvalidBytesPassesThePipeline) {
  // Before: the correlator's sort key dump() threw type_error.316 and aborted mendd.
  FsEnospc x;
  x.pid = 7;
  x.comm =
      "\xff\xfe"
      "bad";  // as if a decoder had let it through
  x.mount = "/srv/\xff";
  x.device = "7:1";
  x.err = 28;
  Correlator c;
  ASSERT_NO_THROW(c.push(Event{1, x}));
  ASSERT_NO_THROW(c.flush());
  ASSERT_EQ(c.incidents().size(), 1u);
  std::string j;
  ASSERT_NO_THROW(j = dump_json(to_json(*c.incidents().front())));
  EXPECT_TRUE(is_valid_utf8(j));
  ASSERT_NO_THROW((void)to_json_line(Event{1, x}));
  EXPECT_TRUE(is_valid_utf8(to_json_line(Event{1, x})));
}
