#include "common/file_bytes.h"

#include <gtest/gtest.h>

#include <string>

#include "common/error.h"
#include "tests/test_tmp.h"

namespace spikefm {
namespace {

TEST(FileBytes, ReadsEveryByteAndRefusesMissingDirectoriesAndOversizedFiles) {
  test::TempDir d;
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  test::spit(d / "f.bin", data);
  const std::vector<uint8_t> got = read_file_bytes(d / "f.bin", 1000, "reading f.bin");
  EXPECT_EQ(std::string(got.begin(), got.end()), data);
  const std::string big = test::error_of([&] { read_file_bytes(d / "f.bin", 999, "reading f.bin"); });
  EXPECT_NE(big.find("1000 bytes, more than the limit of 999"), std::string::npos) << big;
  EXPECT_NE(big.find("reading f.bin"), std::string::npos) << big;
  const std::string missing = test::error_of([&] { read_file_bytes(d / "nope", 10, "reading nope", "install it"); });
  EXPECT_NE(missing.find("does not exist"), std::string::npos) << missing;
  EXPECT_NE(missing.find("install it"), std::string::npos) << missing;
  EXPECT_NE(test::error_of([&] { read_file_bytes(d.path(), 10, "reading a dir"); }).find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace spikefm
