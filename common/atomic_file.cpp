#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "common/error.h"

namespace spikefm {

namespace {

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const std::filesystem::path& p, int flags) {
  int fd = ::open(p.c_str(), flags);
  if (fd < 0) throw Error("opening " + p.string() + " for fsync", errno_text());
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    throw Error("fsync of " + p.string(), errno_text());
  }
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  std::filesystem::path dir = target_.parent_path();
  if (dir.empty()) dir = ".";
  if (!std::filesystem::is_directory(dir)) {
    throw Error("writing " + target_.string(), "directory " + dir.string() + " does not exist",
                "create it first");
  }
  std::random_device rd;
  temp_ = target_;
  temp_ += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  fsync_path(temp_, O_RDONLY);
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    throw Error("renaming " + temp_.string() + " to " + target_.string(), errno_text());
  }
  committed_ = true;
  std::filesystem::path dir = target_.parent_path();
  fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

void write_file_atomic(const std::filesystem::path& target, std::string_view data) {
  AtomicFile file(target);
  int fd = ::open(file.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw Error("creating " + file.temp_path().string(), errno_text());
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = errno_text();
      ::close(fd);
      throw Error("writing " + file.temp_path().string(), why);
    }
    off += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) throw Error("closing " + file.temp_path().string(), errno_text());
  file.commit();
}

}  // namespace spikefm
