// run_python / run_python_many against ordinary programs (exact output, exit codes) and against the
// hostile candidates a model can produce. Each hostile case asserts two things: the run is reported
// as not ok, and the effect was contained — checked from outside the sandbox (files, a listening
// socket, the process table), never from what the candidate claims. Where the Python audit hook could
// be what stops the candidate, the case runs again with the hook off to check the kernel layers alone;
// that second run is skipped (with the reason) when this machine lacks the layer it relies on.
#include "datasets/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"

namespace spikefm {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Processes whose command line contains `needle` (the test's own excluded), after waiting up to 2 s
// for the kernel to finish killing them.
int processes_with_cmdline(const std::string& needle) {
  int count = 0;
  for (int attempt = 0; attempt < 40; ++attempt) {
    count = 0;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::stoi(name) == ::getpid()) continue;
      std::string cmd = read_file(it->path() / "cmdline");
      for (char& c : cmd) c = c == '\0' ? ' ' : c;
      if (cmd.find(needle) != std::string::npos) ++count;
    }
    if (count == 0) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return count;
}

// Processes whose real uid lies in [first, first + n).
int processes_with_uid_in(uint32_t first, uint32_t n) {
  int count = 0;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream f(it->path() / "status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("Uid:", 0) == 0) {
        const uint64_t uid = std::stoull(line.substr(4));
        if (uid >= first && uid < uint64_t{first} + n) ++count;
        break;
      }
    }
  }
  return count;
}

std::string unique_token() {
  static std::atomic<int> counter{0};
  return std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("spikefm_sandbox_test_" + unique_token());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static SandboxLimits quick() {
    SandboxLimits l;
    l.wall_seconds = 5;
    l.cpu_seconds = 5;
    return l;
  }
  static SandboxLimits no_hook(SandboxLimits l) {
    l.python_audit_hook = false;
    return l;
  }

  fs::path dir_;
};

bool not_ok(const SandboxResult& r) { return r.status != SandboxStatus::ok; }

// For failure messages: everything the result says.
std::string describe(const SandboxResult& r) {
  return std::string("status ") + to_string(r.status) + ", exit " + std::to_string(r.exit_code) + ", signal " +
         std::to_string(r.signal) + ", " + std::to_string(r.wall_s) + " s, error '" + r.error_message +
         "', stdout '" + r.stdout_text.substr(0, 300) + "', stderr '" + r.stderr_text.substr(0, 600) + "'";
}

// ---- ordinary programs -------------------------------------------------------------------------

TEST_F(SandboxTest, CorrectProgramIsOkWithExactStdout) {
  // Expected output by arithmetic: sum(range(10)) = 45, 2**10 = 1024.
  const auto r = run_python("print('hello')\nprint(sum(range(10)))\nprint(2 ** 10, end='')\n", quick());
  EXPECT_EQ(r.status, SandboxStatus::ok) << r.stderr_text << r.error_message;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.stdout_text, "hello\n45\n1024");
  EXPECT_EQ(r.stderr_text, "");
  EXPECT_FALSE(r.stdout_truncated);
  EXPECT_FALSE(r.isolation.empty());
  EXPECT_FALSE(fs::exists(r.temp_dir)) << "temp dir left behind: " << r.temp_dir;
}

TEST_F(SandboxTest, HumanEvalStyleCandidateWithItsTests) {
  const std::string prompt = "def add(a, b):\n";
  const std::string tests =
      "\ndef check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
      "check(add)\n";
  EXPECT_EQ(run_python(prompt + "    return a + b\n" + tests, quick()).status, SandboxStatus::ok);
  const auto wrong = run_python(prompt + "    return a - b\n" + tests, quick());
  EXPECT_EQ(wrong.status, SandboxStatus::failed);
  EXPECT_NE(wrong.stderr_text.find("AssertionError"), std::string::npos) << wrong.stderr_text;
}

TEST_F(SandboxTest, FailingAssertIsFailedWithTraceback) {
  const auto r = run_python("x = 1 + 1\nassert x == 3, 'two is not three'\n", quick());
  EXPECT_EQ(r.status, SandboxStatus::failed);
  EXPECT_EQ(r.exit_code, 1);  // CPython's exit code for an uncaught exception
  EXPECT_NE(r.stderr_text.find("Traceback"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("AssertionError: two is not three"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("candidate.py\", line 2"), std::string::npos) << r.stderr_text;
}

TEST_F(SandboxTest, SyntaxErrorIsFailed) {
  const auto r = run_python("def f(:\n    return 1\n", quick());
  EXPECT_EQ(r.status, SandboxStatus::failed);
  EXPECT_NE(r.stderr_text.find("SyntaxError"), std::string::npos) << r.stderr_text;
}

TEST_F(SandboxTest, ExitCodeAndDeathBySignalAreReported) {
  const auto code = run_python("import sys\nsys.exit(7)\n", quick());
  EXPECT_EQ(code.status, SandboxStatus::failed);
  EXPECT_EQ(code.exit_code, 7);
  const auto sig = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", quick());
  EXPECT_EQ(sig.status, SandboxStatus::killed_by_signal) << sig.stderr_text << sig.error_message;
  EXPECT_EQ(sig.signal, SIGTERM);
  EXPECT_EQ(sig.exit_code, -1);
}

TEST_F(SandboxTest, OnlyPathHomeAndLangInTheEnvironmentAndWorkDirIsWritable) {
  const auto r = run_python(
      "import os\nprint(sorted(os.environ))\nprint(os.environ['PATH'], os.environ['LANG'])\n"
      "print(os.getcwd() == os.environ['HOME'])\n"
      "with open('note.txt', 'w') as f:\n    f.write('hi')\nprint(open('note.txt').read())\n",
      quick());
  EXPECT_EQ(r.status, SandboxStatus::ok) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "['HOME', 'LANG', 'PATH']\n/usr/bin:/bin C.UTF-8\nTrue\nhi\n");
}

TEST_F(SandboxTest, ChildClosingItsPipesThenExitingIsReportedNormally) {
  const auto r = run_python("import os, time\nos.close(1)\nos.close(2)\ntime.sleep(0.3)\nos._exit(3)\n", quick());
  EXPECT_EQ(r.status, SandboxStatus::failed);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_LT(r.wall_s, 4.0);
}

TEST_F(SandboxTest, TempDirIsRemovedEvenWhenTheCandidateLocksItsFilesAway) {
  const auto r = run_python("import os\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\n"
                            "os.chmod('a/b', 0)\nos.chmod('a', 0)\n",
                            quick());
  EXPECT_EQ(r.status, SandboxStatus::ok) << r.stderr_text;
  EXPECT_FALSE(fs::exists(r.temp_dir));
}

TEST_F(SandboxTest, InvalidLimitsAndWorkersThrowNamingTheField) {
  SandboxLimits l;
  l.cpu_seconds = 0;
  try {
    run_python("pass", l);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu_seconds"), std::string::npos) << e.what();
  }
  l = SandboxLimits{};
  l.max_processes = 1;
  EXPECT_THROW(run_python("pass", l), Error);
  l = SandboxLimits{};
  l.output_bytes = 0;
  EXPECT_THROW(run_python("pass", l), Error);
  try {
    run_python_many({"pass"}, SandboxLimits{}, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("workers"), std::string::npos) << e.what();
  }
}

TEST_F(SandboxTest, IsolationReportNamesEveryLayer) {
  const std::string report = sandbox_isolation_report();
  std::cout << report;
  for (const char* key : {"sandbox variant:", "processes:", "network:", "filesystem:", "identity:", "limits:"}) {
    EXPECT_NE(report.find(key), std::string::npos) << key;
  }
  EXPECT_FALSE(sandbox_isolation().python.empty());
  // On a root machine the probe must at least drop root (variant root-* or plain with a uid).
  if (::geteuid() == 0) {
    EXPECT_TRUE(sandbox_isolation().uid_dropped) << report;
  }
}

// ---- hostile candidates -------------------------------------------------------------------------

TEST_F(SandboxTest, InfiniteLoopTimesOutAndTheGroupIsKilled) {
  SandboxLimits l = quick();
  l.wall_seconds = 1.0;
  const auto r = run_python("while True:\n    pass\n", l);
  EXPECT_EQ(r.status, SandboxStatus::timeout);
  EXPECT_GE(r.wall_s, 1.0);
  EXPECT_LT(r.wall_s, 1.0 + 1.5);  // slack: kill, reap and a cold start on a busy 2-core machine
  EXPECT_EQ(processes_with_cmdline(r.temp_dir), 0);
  EXPECT_FALSE(fs::exists(r.temp_dir));
}

TEST_F(SandboxTest, CpuLimitEndsABusyLoopBeforeTheWallClock) {
  SandboxLimits l = quick();
  l.cpu_seconds = 1;
  l.wall_seconds = 20;
  const auto r = run_python("while True:\n    pass\n", l);
  EXPECT_EQ(r.status, SandboxStatus::timeout) << describe(r);
  // RLIMIT_CPU soft = 1 s of CPU sends SIGXCPU (hard = 2 s sends SIGKILL).
  EXPECT_TRUE(r.signal == SIGXCPU || r.signal == SIGKILL) << r.signal;
  EXPECT_LT(r.wall_s, 10.0);
}

TEST_F(SandboxTest, ForkBombIsContained) {
  const std::string bomb =
      "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
  const std::string normal = "print(sum(i * i for i in range(100)))\n";  // 328350 by the closed form
  const SandboxIsolation& iso = sandbox_isolation();
  for (bool hook : {true, false}) {
    SCOPED_TRACE(hook ? "audit hook on" : "audit hook off");
    if (!hook && !iso.private_uid) {
      std::cout << "skipping the kernel-only fork bomb: no private uid for RLIMIT_NPROC here\n";
      continue;
    }
    SandboxLimits l = quick();
    l.wall_seconds = 2.0;
    l.max_processes = 8;
    l.python_audit_hook = hook;
    // Watch this process's private uid range while the bomb runs beside an ordinary program.
    const uint32_t first = kSandboxUidBase + ((static_cast<uint32_t>(::getpid()) & 0x3FFFFFu) << 6);
    std::atomic<bool> stop{false};
    std::atomic<int> max_seen{0};
    std::thread watch([&] {
      while (!stop) {
        max_seen = std::max(max_seen.load(), processes_with_uid_in(first, kSandboxMaxConcurrentRuns));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    const auto rs = run_python_many({bomb, normal}, l, 2);
    stop = true;
    watch.join();
    EXPECT_TRUE(not_ok(rs[0])) << to_string(rs[0].status);
    EXPECT_EQ(rs[1].status, SandboxStatus::ok) << rs[1].stderr_text << rs[1].error_message;
    EXPECT_EQ(rs[1].stdout_text, "328350\n");
    std::cout << "fork bomb (hook " << (hook ? "on" : "off") << "): " << to_string(rs[0].status)
              << ", at most " << max_seen.load() << " processes of this test's sandbox uids seen\n";
    if (iso.private_uid) {
      // RLIMIT_NPROC per uid: the bomb's uid holds at most max_processes; the ordinary run adds its
      // own (python + init) under another slot's uid; a helper for the uid sweep may add one.
      EXPECT_LE(max_seen.load(), l.max_processes + 2 + (iso.pid_namespace ? 0 : 1));
      EXPECT_EQ(processes_with_uid_in(first, kSandboxMaxConcurrentRuns), 0);
    }
    EXPECT_EQ(processes_with_cmdline(rs[0].temp_dir), 0);
  }
  // The machine (and the test process) still works.
  EXPECT_EQ(run_python("print(1)\n", quick()).stdout_text, "1\n");
}

TEST_F(SandboxTest, MemoryBombIsStoppedByTheAddressSpaceLimit) {
  SandboxLimits l = quick();
  l.address_space_bytes = int64_t{256} << 20;
  for (const std::string& program :
       {std::string("x = bytearray(10**10)\n"),
        std::string("x = []\nwhile True:\n    x.append(bytearray(10**6))\n")}) {
    const auto r = run_python(program, l);
    EXPECT_TRUE(not_ok(r)) << program;
    const bool memory_error = r.status == SandboxStatus::failed &&
                              r.stderr_text.find("MemoryError") != std::string::npos;
    const bool killed = r.status == SandboxStatus::killed_by_signal;
    EXPECT_TRUE(memory_error || killed) << to_string(r.status) << ": " << r.stderr_text;
    EXPECT_LT(r.wall_s, 4.9);  // stopped by the limit, not by the wall clock
  }
}

TEST_F(SandboxTest, WritesOutsideTheTempDirAreContained) {
  // A world-writable target, so that only the sandbox (not file permissions) can stop the write.
  const fs::path target_dir = dir_ / "open";
  fs::create_directories(target_dir);
  ::chmod(target_dir.c_str(), 0777);
  const fs::path victim = target_dir / "victim.txt";
  { std::ofstream(victim) << "original"; }
  ::chmod(victim.c_str(), 0666);
  const fs::path created = target_dir / "created.txt";
  const fs::path in_tmp = fs::path("/tmp") / ("spikefm_sandbox_escape_" + unique_token());

  const SandboxIsolation& iso = sandbox_isolation();
  for (bool hook : {true, false}) {
    SCOPED_TRACE(hook ? "audit hook on" : "audit hook off");
    if (!hook && iso.landlock_abi == 0 && !iso.mount_namespace) {
      std::cout << "skipping kernel-only write checks: neither Landlock nor a mount namespace here\n";
      continue;
    }
    SandboxLimits l = quick();
    l.python_audit_hook = hook;
    const std::vector<std::string> programs = {
        "open('" + victim.string() + "', 'w').write('pwned')\n",
        "open('" + victim.string() + "', 'a').write('pwned')\n",
        "open('" + created.string() + "', 'x').write('pwned')\n",
        "import os\nos.remove('" + victim.string() + "')\n",
        "import os\nos.rename('" + victim.string() + "', 'stolen')\n",
        "import os\nfd = os.open('" + created.string() + "', os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'x')\n",
        "import os\nos.symlink('" + victim.string() + "', 'link')\nopen('link', 'w').write('pwned')\n",
        "open('" + in_tmp.string() + "', 'w').write('pwned')\n",
    };
    for (const auto& program : programs) {
      const auto r = run_python(program, l);
      EXPECT_TRUE(not_ok(r)) << program << "\n" << r.stderr_text;
      EXPECT_EQ(read_file(victim), "original") << program;
      EXPECT_FALSE(fs::exists(created)) << program;
      EXPECT_FALSE(fs::exists(in_tmp)) << program;
    }
  }
  std::error_code ec;
  fs::remove(in_tmp, ec);
}

TEST_F(SandboxTest, NoConnectionReachesAListenerOnLoopback) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  const SandboxIsolation& iso = sandbox_isolation();
  for (bool hook : {true, false}) {
    SCOPED_TRACE(hook ? "audit hook on" : "audit hook off");
    if (!hook && !iso.net_namespace && iso.landlock_abi < 4) {
      std::cout << "skipping the kernel-only network check: no network namespace or Landlock TCP here\n";
      continue;
    }
    SandboxLimits l = quick();
    l.python_audit_hook = hook;
    const auto r = run_python("import socket\ns = socket.create_connection(('127.0.0.1', " + port +
                                  "), timeout=2)\ns.sendall(b'hello')\n",
                              l);
    EXPECT_TRUE(not_ok(r)) << r.stdout_text << r.stderr_text;
    const int conn = ::accept(listener, nullptr, nullptr);
    EXPECT_LT(conn, 0) << "a connection from the sandbox arrived";
    if (conn >= 0) ::close(conn);
  }
  ::close(listener);
}

TEST_F(SandboxTest, TheCallersEnvironmentIsNotVisible) {
  const std::string secret = "s3cr3t_" + unique_token();
  ::setenv("SPIKEFM_SECRET", secret.c_str(), 1);
  // setenv changes only this process's copy; a root process started with the secret in its exec-time
  // environment makes /proc/<pid>/environ a real target too.
  const std::string env_entry = "SPIKEFM_SECRET=" + secret;
  char* const sleep_argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("30"), nullptr};
  char* const sleep_env[] = {const_cast<char*>(env_entry.c_str()), nullptr};
  pid_t holder = -1;
  ASSERT_EQ(::posix_spawn(&holder, "/bin/sleep", nullptr, nullptr, sleep_argv, sleep_env), 0);

  const SandboxIsolation& iso = sandbox_isolation();
  const bool proc_protected = iso.uid_dropped || iso.landlock_abi > 0;
  const std::string program =
      "import os, glob\n"
      "print(sorted(os.environ))\n"
      "for p in glob.glob('/proc/[0-9]*/environ'):\n"
      "    try:\n"
      "        data = open(p, 'rb').read()\n"
      "    except OSError:\n"
      "        continue\n"
      "    if b'SPIKEFM_SECRET' in data:\n"
      "        print('LEAK', p, data)\n"
      "assert os.environ.get('SPIKEFM_SECRET'), 'no secret found'\n";
  for (bool hook : {true, false}) {
    SCOPED_TRACE(hook ? "audit hook on" : "audit hook off");
    SandboxLimits l = quick();
    l.python_audit_hook = hook;
    const auto r = run_python(program, l);
    EXPECT_EQ(r.status, SandboxStatus::failed) << r.stderr_text;
    EXPECT_EQ(r.stdout_text.substr(0, r.stdout_text.find('\n')), "['HOME', 'LANG', 'PATH']");
    EXPECT_EQ(r.stdout_text.find(secret), std::string::npos) << r.stdout_text;
    EXPECT_EQ(r.stderr_text.find(secret), std::string::npos);
    if (proc_protected) {
      EXPECT_EQ(r.stdout_text.find("LEAK"), std::string::npos) << r.stdout_text;
    } else {
      std::cout << "not checking /proc/*/environ: neither a dropped uid nor Landlock here\n";
    }
  }
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::unsetenv("SPIKEFM_SECRET");
}

TEST_F(SandboxTest, HugeOutputIsTruncatedFlaggedAndStopped) {
  SandboxLimits l = quick();
  const auto r = run_python("import sys\nsys.stdout.write('x' * 10**7)\n", l);
  EXPECT_EQ(r.status, SandboxStatus::output_limit);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_text, std::string(static_cast<size_t>(l.output_bytes), 'x'));
  EXPECT_EQ(processes_with_cmdline(r.temp_dir), 0);

  const auto e = run_python("import sys\nwhile True:\n    sys.stderr.write('e' * 4096)\n", l);
  EXPECT_EQ(e.status, SandboxStatus::output_limit);
  EXPECT_TRUE(e.stderr_truncated);
  EXPECT_EQ(e.stderr_text.size(), static_cast<size_t>(l.output_bytes));

  // Exactly the limit is allowed: nothing truncated, status ok.
  const auto exact = run_python("import sys\nsys.stdout.write('y' * " + std::to_string(l.output_bytes) + ")\n", l);
  EXPECT_EQ(exact.status, SandboxStatus::ok) << exact.stderr_text;
  EXPECT_FALSE(exact.stdout_truncated);
  EXPECT_EQ(exact.stdout_text.size(), static_cast<size_t>(l.output_bytes));
}

TEST_F(SandboxTest, GrandchildThatOutlivesTheCandidateIsKilled) {
  const SandboxIsolation& iso = sandbox_isolation();
  for (bool hook : {true, false}) {
    SCOPED_TRACE(hook ? "audit hook on" : "audit hook off");
    if (!hook && !iso.pid_namespace && !iso.private_uid) {
      std::cout << "skipping the kernel-only grandchild check: no pid namespace or private uid here\n";
      continue;
    }
    // A sleep length nobody else uses marks the grandchild in the process table.
    const std::string marker = "29." + std::to_string(::getpid()) + (hook ? "1" : "2");
    SandboxLimits l = quick();
    l.python_audit_hook = hook;
    const auto r = run_python("import subprocess\nsubprocess.Popen(['/bin/sleep', '" + marker +
                                  "'], start_new_session=True)\nprint('spawned')\n",
                              l);
    if (hook) {
      EXPECT_TRUE(not_ok(r)) << r.stdout_text;  // the prelude refuses subprocess
    } else {
      EXPECT_EQ(r.stdout_text, "spawned\n") << r.stderr_text;  // it did spawn, and returned at once
    }
    EXPECT_LT(r.wall_s, 4.0);
    EXPECT_EQ(processes_with_cmdline(marker), 0) << "the grandchild outlived the run";
  }
}

TEST_F(SandboxTest, FilesAreBoundedBySizeAndTheWorkDirBySpace) {
  SandboxLimits l = quick();
  l.file_size_bytes = int64_t{1} << 20;
  l.temp_dir_bytes = int64_t{4} << 20;
  // One file of 2 MiB > RLIMIT_FSIZE (1 MiB): CPython ignores SIGXFSZ, so the write fails (EFBIG).
  const auto big = run_python("open('big', 'wb').write(b'x' * (2 << 20))\n", l);
  EXPECT_EQ(big.status, SandboxStatus::failed) << describe(big);
  EXPECT_NE(big.stderr_text.find("File too large"), std::string::npos) << describe(big);
  // A file of exactly 1 MiB is allowed.
  const auto exact = run_python("open('one', 'wb').write(b'x' * (1 << 20))\n", l);
  EXPECT_EQ(exact.status, SandboxStatus::ok) << describe(exact);
  if (!sandbox_isolation().mount_namespace) {
    std::cout << "skipping the work dir size check: no mount namespace (tmpfs) here\n";
    return;
  }
  // Eight files of 1 MiB - 1 need about 8 MiB > the 4 MiB tmpfs: ENOSPC before the last one.
  const auto fill = run_python("for i in range(8):\n    open('f%d' % i, 'wb').write(b'x' * ((1 << 20) - 1))\n", l);
  EXPECT_EQ(fill.status, SandboxStatus::failed) << describe(fill);
  EXPECT_NE(fill.stderr_text.find("No space left on device"), std::string::npos) << describe(fill);
}

TEST_F(SandboxTest, KillingTheSandboxInitLeavesNothingBehind) {
  const SandboxIsolation& iso = sandbox_isolation();
  if (!iso.pid_namespace && !iso.private_uid && iso.landlock_abi < 6) {
    std::cout << "skipping: without a pid namespace, a private uid or Landlock signal scoping a "
                 "candidate can kill its init and leave processes behind\n";
    return;
  }
  const std::string marker = "28." + std::to_string(::getpid()) + "3";
  SandboxLimits l = no_hook(quick());
  l.wall_seconds = 2;
  const auto r = run_python("import os, signal, subprocess, time\n"
                            "subprocess.Popen(['/bin/sleep', '" + marker + "'], start_new_session=True)\n"
                            "try:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError as e:\n"
                            "    print('refused', e.errno)\n"
                            "time.sleep(30)\n",
                            l);
  EXPECT_TRUE(not_ok(r)) << describe(r);
  EXPECT_LT(r.wall_s, 2 + 2.5) << describe(r);  // wall clock + the 1 s backstop + slack
  EXPECT_EQ(processes_with_cmdline(marker), 0) << describe(r);
  EXPECT_EQ(processes_with_cmdline(r.temp_dir), 0) << describe(r);
  EXPECT_FALSE(fs::exists(r.temp_dir));
}

// ---- many at once -------------------------------------------------------------------------------

TEST_F(SandboxTest, ManyInParallelMatchSerialRunsInInputOrder) {
  std::vector<std::string> programs;
  for (int i = 0; i < 20; ++i) {
    if (i % 5 == 3) {
      programs.push_back("assert " + std::to_string(i) + " == 0\n");
    } else if (i % 7 == 6) {
      programs.push_back("import sys\nsys.exit(" + std::to_string(i) + ")\n");
    } else {
      programs.push_back("import time\ntime.sleep(0.0" + std::to_string(i % 4) + ")\nprint(" +
                         std::to_string(i) + " * " + std::to_string(i) + ")\n");
    }
  }
  const SandboxLimits l = quick();
  const auto parallel = run_python_many(programs, l, 4);
  ASSERT_EQ(parallel.size(), programs.size());
  for (size_t i = 0; i < programs.size(); ++i) {
    SCOPED_TRACE("program " + std::to_string(i));
    const auto serial = run_python(programs[i], l);
    EXPECT_EQ(parallel[i].status, serial.status);
    EXPECT_EQ(parallel[i].exit_code, serial.exit_code);
    EXPECT_EQ(parallel[i].stdout_text, serial.stdout_text);
    // Tracebacks name the run's own temp dir; compare them with it blanked out.
    auto blank = [](std::string s, const std::string& dir) {
      for (size_t at; (at = s.find(dir)) != std::string::npos;) s.replace(at, dir.size(), "<tmp>");
      return s;
    };
    EXPECT_EQ(blank(parallel[i].stderr_text, parallel[i].temp_dir), blank(serial.stderr_text, serial.temp_dir));
    // And against first principles: i*i printed, exit code i, or a failed assert.
    const int n = static_cast<int>(i);
    if (n % 5 == 3) {
      EXPECT_EQ(parallel[i].status, SandboxStatus::failed);
    } else if (n % 7 == 6) {
      EXPECT_EQ(parallel[i].exit_code, n);
    } else {
      EXPECT_EQ(parallel[i].status, SandboxStatus::ok);
      EXPECT_EQ(parallel[i].stdout_text, std::to_string(n * n) + "\n");
    }
  }
}

}  // namespace
}  // namespace spikefm
