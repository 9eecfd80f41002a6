// TextCorpus: .jsonl documents per line (blank lines skipped), .txt whole-file documents or
// documents cut at a separator line, empty documents skipped, and bad input (missing file,
// unsupported type, invalid JSON, missing or non-string field) rejected naming file:line.
#include "foundry/data/text_corpus.h"

#include "data_testing.h"
#include "testing.h"

namespace foundry::testing {
namespace {

std::vector<std::string> all_documents(TextCorpus& c, std::vector<std::string>* where = nullptr) {
  std::vector<std::string> docs;
  std::string s;
  while (c.next(s)) {
    docs.push_back(s);
    if (where) where->push_back(c.location());
  }
  return docs;
}

TEST(TextCorpus, JsonlOneDocumentPerLine) {
  const std::string dir = scratch_dir();
  write_text(dir + "/a.jsonl",
             "{\"text\": \"first\\nline\", \"id\": 1}\n"
             "\n"
             "{\"text\": \"caf\\u00e9 \\\"quoted\\\"\"}\n"
             "{\"text\": \"\"}\n"
             "{\"text\": \"last, no newline\"}");
  TextCorpus c({dir + "/a.jsonl"});
  std::vector<std::string> where;
  EXPECT_EQ(all_documents(c, &where),
            (std::vector<std::string>{"first\nline", "caf\xc3\xa9 \"quoted\"", "last, no newline"}));
  EXPECT_EQ(where, (std::vector<std::string>{dir + "/a.jsonl:1", dir + "/a.jsonl:3", dir + "/a.jsonl:5"}));
  EXPECT_EQ(c.empty_documents(), 1);
  EXPECT_EQ(c.documents(), 3);
  EXPECT_EQ(c.bytes_read(), c.total_bytes() + 1);  // + the missing final newline
}

TEST(TextCorpus, OtherJsonKey) {
  const std::string dir = scratch_dir();
  write_text(dir + "/a.json", "{\"content\": \"x\", \"text\": 3}\n");
  TextCorpus c({dir + "/a.json"}, {.json_key = "content"});
  EXPECT_EQ(all_documents(c), (std::vector<std::string>{"x"}));
}

TEST(TextCorpus, TxtIsOneDocumentPerFile) {
  const std::string dir = scratch_dir();
  write_text(dir + "/a.txt", "hello\nworld\n");
  write_text(dir + "/empty.txt", "");
  write_text(dir + "/b.txt", "%\nno separator here");
  TextCorpus c({dir + "/a.txt", dir + "/empty.txt", dir + "/b.txt"});
  EXPECT_EQ(all_documents(c), (std::vector<std::string>{"hello\nworld\n", "%\nno separator here"}));
  EXPECT_EQ(c.empty_documents(), 1);
}

TEST(TextCorpus, TxtSplitOnSeparatorLines) {
  const std::string dir = scratch_dir();
  write_text(dir + "/fortunes.txt", "A penny saved.\n%\nTwo\nlines.\r\n%\r\n%\nLast one");
  TextCorpus c({dir + "/fortunes.txt"}, {.document_separator = "%"});
  std::vector<std::string> where;
  EXPECT_EQ(all_documents(c, &where), (std::vector<std::string>{"A penny saved.\n", "Two\nlines.\r\n", "Last one"}));
  EXPECT_EQ(where[1], dir + "/fortunes.txt:3");
  EXPECT_EQ(where[2], dir + "/fortunes.txt:7");
  EXPECT_EQ(c.empty_documents(), 1);
}

TEST(TextCorpus, MixedFilesInOrder) {
  const std::string dir = scratch_dir();
  write_text(dir + "/a.txt", "one");
  write_text(dir + "/b.jsonl", "{\"text\": \"two\"}\n{\"text\": \"three\"}\n");
  write_text(dir + "/c.txt", "four");
  TextCorpus c({dir + "/a.txt", dir + "/b.jsonl", dir + "/c.txt"});
  EXPECT_EQ(all_documents(c), (std::vector<std::string>{"one", "two", "three", "four"}));
  std::string s;
  EXPECT_FALSE(c.next(s));
}

TEST(TextCorpus, BadInputNamesFileAndLine) {
  const std::string dir = scratch_dir();
  EXPECT_ERROR_MENTIONS(TextCorpus({dir + "/missing.jsonl"}), "missing.jsonl", "does not exist");
  write_text(dir + "/a.csv", "x");
  EXPECT_ERROR_MENTIONS(TextCorpus({dir + "/a.csv"}), "a.csv", "unsupported");
  EXPECT_ERROR_MENTIONS(TextCorpus({}), "no input");

  const auto first_error = [&](const std::string& content) {
    write_text(dir + "/bad.jsonl", "{\"text\": \"ok\"}\n" + content + "\n");
    TextCorpus c({dir + "/bad.jsonl"});
    return error_of([&] { all_documents(c); });
  };
  std::string e = first_error("{\"text\": \"unterminated}");
  EXPECT_NE(e.find(dir + "/bad.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid JSON"), std::string::npos) << e;
  e = first_error("[1, 2]");
  EXPECT_NE(e.find("bad.jsonl:2: expected a JSON object"), std::string::npos) << e;
  e = first_error("{\"body\": \"x\"}");
  EXPECT_NE(e.find("bad.jsonl:2: no \"text\" field"), std::string::npos) << e;
  e = first_error("{\"text\": 5}");
  EXPECT_NE(e.find("bad.jsonl:2: field \"text\" is not a string"), std::string::npos) << e;
}

}  // namespace
}  // namespace foundry::testing
