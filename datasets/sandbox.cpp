#include "datasets/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"

namespace spikefm {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Kernel interfaces not (all) in Debian 12's headers, spelled out from the kernel UAPI.

// Landlock (include/uapi/linux/landlock.h).
constexpr long kSysLandlockCreateRuleset = 444;
constexpr long kSysLandlockAddRule = 445;
constexpr long kSysLandlockRestrictSelf = 446;
constexpr long kSysMountSetattr = 442;
constexpr long kSysPidfdOpen = 434;
constexpr long kSysCloseRange = 436;
constexpr uint32_t kLandlockCreateRulesetVersion = 1u << 0;
constexpr int kLandlockRulePathBeneath = 1;

constexpr uint64_t kLlWriteFile = 1ull << 1;
constexpr uint64_t kLlRemoveDir = 1ull << 4;
constexpr uint64_t kLlRemoveFile = 1ull << 5;
constexpr uint64_t kLlMakeChar = 1ull << 6;
constexpr uint64_t kLlMakeDir = 1ull << 7;
constexpr uint64_t kLlMakeReg = 1ull << 8;
constexpr uint64_t kLlMakeSock = 1ull << 9;
constexpr uint64_t kLlMakeFifo = 1ull << 10;
constexpr uint64_t kLlMakeBlock = 1ull << 11;
constexpr uint64_t kLlMakeSym = 1ull << 12;
constexpr uint64_t kLlRefer = 1ull << 13;     // ABI 2
constexpr uint64_t kLlTruncate = 1ull << 14;  // ABI 3
constexpr uint64_t kLlNetBindTcp = 1ull << 0;     // ABI 4
constexpr uint64_t kLlNetConnectTcp = 1ull << 1;  // ABI 4
constexpr uint64_t kLlScopeAbstractUnix = 1ull << 0;  // ABI 6
constexpr uint64_t kLlScopeSignal = 1ull << 1;        // ABI 6

struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI >= 4
  uint64_t scoped;              // ABI >= 6
};
struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

// mount_setattr (include/uapi/linux/mount.h).
constexpr uint64_t kMountAttrRdonly = 0x1;
constexpr uint64_t kMountAttrNosuid = 0x2;
constexpr unsigned kAtRecursive = 0x8000;
struct MountAttr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

// ---------------------------------------------------------------------------------------------
// What the child needs, prepared before the clone: the child only reads it and makes raw system
// calls (no allocation, no locks, no glibc functions that keep state across threads).

enum ChildStep : int32_t {
  kStepSetsid = 1,
  kStepUserMap,
  kStepMountPrivate,
  kStepMountReadOnly,
  kStepMountTmpfs,
  kStepFds,
  kStepChdir,
  kStepRlimit,
  kStepDropUid,
  kStepNoNewPrivs,
  kStepLandlock,
  kStepForkPython,
  kStepExec,
  kStepSignals,
  kStepSubreaper,
};

const char* step_name(int32_t step) {
  switch (step) {
    case kStepSetsid: return "setsid";
    case kStepUserMap: return "writing the user namespace id maps";
    case kStepMountPrivate: return "making the mount tree private";
    case kStepMountReadOnly: return "remounting / read-only (mount_setattr)";
    case kStepMountTmpfs: return "mounting the tmpfs work dir";
    case kStepFds: return "setting up stdin/stdout/stderr";
    case kStepChdir: return "entering the work dir";
    case kStepRlimit: return "setting rlimits";
    case kStepDropUid: return "dropping root (setgroups/setresgid/setresuid)";
    case kStepNoNewPrivs: return "PR_SET_NO_NEW_PRIVS";
    case kStepLandlock: return "installing the Landlock ruleset";
    case kStepForkPython: return "forking python inside the pid namespace";
    case kStepExec: return "executing python";
    case kStepSignals: return "resetting signal handlers";
    case kStepSubreaper: return "PR_SET_CHILD_SUBREAPER";
    default: return "an unknown step";
  }
}

constexpr int32_t kMsgSetupError = 1;  // step, err: where and why the set-up failed
constexpr int32_t kMsgPythonExit = 2;  // step: kShim* flags, err: 1 when wait_status is python's
constexpr int32_t kMsgPythonStarted = 3;  // wait_status: python's pid (and process group)
constexpr int32_t kShimTimedOut = 1;   // the init's own wall clock expired
constexpr int32_t kShimStopped = 2;    // the parent asked it (SIGTERM) to stop the run
struct ChildMsg {
  int32_t kind;
  int32_t step;
  int32_t err;
  int32_t wait_status;
};
constexpr int kChildSetupExit = 127;

struct ChildLimit {
  int resource;
  rlim_t value_soft;
  rlim_t value_hard;
};

struct ChildPlan {
  bool new_user = false, new_pid = false, new_mnt = false;
  bool drop_uid = false;
  bool kill_uid = false;        // the uid is private: the init may kill(-1) as it
  int64_t wall_ns = 0;          // the init's own deadline, measured from its start
  uid_t uid = 0;
  gid_t gid = 0;
  int go_r = -1;  // user namespace: the parent writes our id maps, then one byte here
  const char* work_dir = nullptr;
  const char* tmpfs_options = nullptr;
  int landlock_abi = 0;
  uint64_t ll_fs = 0, ll_net = 0, ll_scoped = 0, ll_dev_null = 0;
  ChildLimit limits[6] = {};
  int out_w = -1, err_w = -1, status_w = -1;
  const char* python = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

void write_all_raw(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

[[noreturn]] void child_fail(int status_fd, int32_t step) {
  const ChildMsg m{kMsgSetupError, step, errno, 0};
  write_all_raw(status_fd, &m, sizeof m);
  _exit(kChildSetupExit);
}

void close_from(unsigned first) {
  if (::syscall(kSysCloseRange, first, ~0u, 0) == 0) return;
  for (unsigned fd = first; fd < 4096; ++fd) ::close(static_cast<int>(fd));
}

// Raw fork: no glibc atfork handlers, no locks taken (other threads of the parent may hold them).
long raw_fork() { return ::syscall(SYS_clone, static_cast<unsigned long>(SIGCHLD), 0, 0, 0, 0); }

// Landlock for python only (not the init), so that signal scoping also protects the init.
void apply_landlock(const ChildPlan& p, int sfd) {
  if (p.landlock_abi <= 0) return;
  LandlockRulesetAttr attr{p.ll_fs, p.ll_net, p.ll_scoped};
  const size_t size = p.landlock_abi >= 6 ? 24 : p.landlock_abi >= 4 ? 16 : 8;
  const int rs = static_cast<int>(::syscall(kSysLandlockCreateRuleset, &attr, size, 0));
  if (rs < 0) child_fail(sfd, kStepLandlock);
  const int work = ::open(p.work_dir, O_PATH | O_CLOEXEC);
  const int nul = ::open("/dev/null", O_PATH | O_CLOEXEC);
  if (work < 0 || nul < 0) child_fail(sfd, kStepLandlock);
  LandlockPathBeneathAttr rule_work{p.ll_fs, work};
  LandlockPathBeneathAttr rule_nul{p.ll_dev_null, nul};
  if (::syscall(kSysLandlockAddRule, rs, kLandlockRulePathBeneath, &rule_work, 0) != 0 ||
      ::syscall(kSysLandlockAddRule, rs, kLandlockRulePathBeneath, &rule_nul, 0) != 0 ||
      ::syscall(kSysLandlockRestrictSelf, rs, 0) != 0) {
    child_fail(sfd, kStepLandlock);
  }
  ::close(work);
  ::close(nul);
  ::close(rs);
}

[[noreturn]] void child_main(const ChildPlan& p) {
  int sfd = p.status_w;

  // Handlers set by the parent must not run here; every signal back to its default.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    ::sigaction(sig, &sa, nullptr);  // fails harmlessly for the signals glibc reserves
  }

  if (::setsid() < 0) child_fail(sfd, kStepSetsid);

  if (p.new_user) {
    // Only the parent, still in the parent namespace, may map a uid other than its own (root's
    // private uids); it writes /proc/<pid>/{setgroups,uid_map,gid_map} and then releases us.
    char go = 0;
    ssize_t n;
    while ((n = ::read(p.go_r, &go, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) {
      if (n == 0) errno = EPIPE;
      child_fail(sfd, kStepUserMap);
    }
  }

  if (p.new_mnt) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) child_fail(sfd, kStepMountPrivate);
    MountAttr attr{kMountAttrRdonly | kMountAttrNosuid, 0, 0, 0};
    if (::syscall(kSysMountSetattr, AT_FDCWD, "/", kAtRecursive, &attr, sizeof attr) != 0) {
      child_fail(sfd, kStepMountReadOnly);
    }
    if (::mount("tmpfs", p.work_dir, "tmpfs", MS_NOSUID | MS_NODEV, p.tmpfs_options) != 0) {
      child_fail(sfd, kStepMountTmpfs);
    }
  }

  // fds: first lift every pipe end above 10 so the dup2s below cannot clobber one another.
  {
    const int nul = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul < 0) child_fail(sfd, kStepFds);
    const int n = ::fcntl(nul, F_DUPFD_CLOEXEC, 10);
    const int o = ::fcntl(p.out_w, F_DUPFD_CLOEXEC, 10);
    const int e = ::fcntl(p.err_w, F_DUPFD_CLOEXEC, 10);
    const int s = ::fcntl(sfd, F_DUPFD_CLOEXEC, 10);
    if (n < 0 || o < 0 || e < 0 || s < 0) child_fail(sfd, kStepFds);
    sfd = s;
    if (::dup2(n, 0) < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0 || ::dup3(s, 3, O_CLOEXEC) < 0) {
      child_fail(sfd, kStepFds);
    }
    sfd = 3;
    close_from(4);
  }

  if (::chdir(p.work_dir) != 0) child_fail(sfd, kStepChdir);

  if (p.drop_uid) {
    // Raw system calls: glibc's setuid() would try to signal the parent's other threads.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 || ::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0 ||
        ::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) {
      child_fail(sfd, kStepDropUid);
    }
  }

  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(sfd, kStepNoNewPrivs);

  // The rest of the child is a tiny init: it forks python, reaps every orphan (pid 1 of a pid
  // namespace, or a child subreaper without one), enforces the wall clock on its own, cleans up and
  // reports python's wait status. With a pid namespace its exit makes the kernel SIGKILL everything
  // left in the namespace; without one it kills what is left itself (kill(-1) as the private uid, or
  // python's process group) and reaps it, so nothing is left to the machine's pid 1.
  if (!p.new_pid && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) child_fail(sfd, kStepSubreaper);
  timespec start{};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  const long pid = raw_fork();
  if (pid < 0) child_fail(sfd, kStepForkPython);
  if (pid == 0) {
    if (!p.new_pid) ::setpgid(0, 0);  // python's own group, which the init can kill without itself
    // rlimits for python only: the init is a copy of the caller (which may map far more than
    // RLIMIT_AS allows) and RLIMIT_NPROC is checked by the forking process against its uid's count.
    for (const ChildLimit& l : p.limits) {
      const struct rlimit rl{l.value_soft, l.value_hard};
      if (::setrlimit(static_cast<__rlimit_resource_t>(l.resource), &rl) != 0) child_fail(sfd, kStepRlimit);
    }
    apply_landlock(p, sfd);
    sigset_t none;
    sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(sfd, kStepSignals);
    ::execve(p.python, p.argv, p.envp);
    child_fail(sfd, kStepExec);
  }
  const ChildMsg started{kMsgPythonStarted, 0, 0, static_cast<int32_t>(pid)};
  write_all_raw(sfd, &started, sizeof started);
  ::close(0);
  ::close(1);
  ::close(2);

  // Every signal is still blocked (the parent blocked them around the clone): wait synchronously.
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);
  sigaddset(&wake, SIGTERM);
  const int64_t deadline_ns = int64_t{start.tv_sec} * 1000000000 + start.tv_nsec + p.wall_ns;
  bool known = false;
  int py_status = 0;
  int32_t flags = 0;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(-1, &st, WNOHANG);
    if (r == static_cast<pid_t>(pid)) {
      known = true;
      py_status = st;
      break;
    }
    if (r > 0) continue;  // an orphan reaped
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;  // ECHILD: cannot happen while python is ours
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const int64_t left_ns = deadline_ns - (int64_t{now.tv_sec} * 1000000000 + now.tv_nsec);
    if (left_ns <= 0) {
      flags |= kShimTimedOut;
      break;
    }
    const timespec wait{static_cast<time_t>(left_ns / 1000000000), static_cast<long>(left_ns % 1000000000)};
    if (::sigtimedwait(&wake, nullptr, &wait) == SIGTERM) {
      flags |= kShimStopped;
      break;
    }
  }
  if (!p.new_pid) {
    if (p.kill_uid) {
      // Everything of this uid but us, until nothing is left to reap (orphans come to us).
      for (;;) {
        ::kill(-1, SIGKILL);
        int st = 0;
        const pid_t r = ::waitpid(-1, &st, 0);
        if (r == static_cast<pid_t>(pid) && !known) {
          known = true;
          py_status = st;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
      }
    } else {
      ::kill(-static_cast<pid_t>(pid), SIGKILL);
      int st = 0;
      if (!known) {
        pid_t r;
        while ((r = ::waitpid(static_cast<pid_t>(pid), &st, 0)) < 0 && errno == EINTR) {
        }
        if (r == static_cast<pid_t>(pid)) {
          known = true;
          py_status = st;
        }
      }
      while (::waitpid(-1, &st, WNOHANG) > 0) {
      }
    }
  }
  const ChildMsg m{kMsgPythonExit, flags, known ? 1 : 0, py_status};
  write_all_raw(sfd, &m, sizeof m);
  _exit(0);
}

// ---------------------------------------------------------------------------------------------
// Variants and the machine probe.

struct Variant {
  const char* name;
  bool user, pid, net, mnt, drop_uid;
};

struct Machine {
  SandboxIsolation iso;
  Variant variant{};
  bool euid_root = false;
  uid_t outer_uid = 0;
  gid_t outer_gid = 0;
};

std::string errno_text(int e) { return std::string(std::strerror(e)) + " (errno " + std::to_string(e) + ")"; }

std::string resolve_python() {
  for (const char* cand : {"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"}) {
    std::error_code ec;
    const fs::path real = fs::canonical(cand, ec);
    if (!ec && ::access(real.c_str(), X_OK) == 0) return real.string();
  }
  throw Error("starting the code sandbox", "python3 was not found in /usr/bin, /usr/local/bin or /bin",
              "install the Debian package python3 (scripts/setup-deps.sh)");
}

int landlock_abi() {
  const long abi = ::syscall(kSysLandlockCreateRuleset, nullptr, 0, kLandlockCreateRulesetVersion);
  return abi > 0 ? static_cast<int>(abi) : 0;
}

// True when ids [first, first + count) are all mapped in this process's user namespace.
bool ids_mapped(const char* map_file, uint64_t first, uint64_t count) {
  std::ifstream f(map_file);
  uint64_t inside = 0, outside = 0, n = 0;
  while (f >> inside >> outside >> n) {
    if (first >= inside && first + count <= inside + n) return true;
  }
  return false;
}

class SlotPool {
 public:
  int acquire() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return !used_.all(); });
    for (int i = 0; i < kSandboxMaxConcurrentRuns; ++i) {
      if (!used_[static_cast<size_t>(i)]) {
        used_.set(static_cast<size_t>(i));
        return i;
      }
    }
    return 0;  // unreachable
  }
  void release(int slot) {
    {
      std::lock_guard<std::mutex> lock(m_);
      used_.reset(static_cast<size_t>(slot));
    }
    cv_.notify_one();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::bitset<kSandboxMaxConcurrentRuns> used_;
};

SlotPool& slot_pool() {
  static SlotPool pool;
  return pool;
}

struct SlotGuard {
  int slot;
  SlotGuard() : slot(slot_pool().acquire()) {}
  ~SlotGuard() { slot_pool().release(slot); }
  SlotGuard(const SlotGuard&) = delete;
  SlotGuard& operator=(const SlotGuard&) = delete;
};

// Removes a tree the candidate may have chmod-ed to 000: make directories ours again, then retry.
void make_dirs_traversable(const fs::path& dir) {
  ::chmod(dir.c_str(), 0700);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISDIR(st.st_mode)) make_dirs_traversable(it->path());
  }
}

bool remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) return true;
  make_dirs_traversable(dir);
  ec.clear();
  fs::remove_all(dir, ec);
  return !ec;
}

struct TempDir {
  fs::path path;
  ~TempDir() {
    if (!path.empty()) remove_tree(path);
  }
};

// A Python bytes literal holding `s` exactly (every byte escaped), decoded with os.fsdecode.
std::string py_bytes_literal(const std::string& s) {
  std::string out = "b'";
  char buf[8];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  }
  return out + "'";
}

// run.py: reads the candidate, optionally installs the audit hook, runs it as __main__.
std::string runner_source(const std::string& work_dir, const std::string& candidate, bool hook) {
  std::string s;
  s += "import sys\n";
  s += "def _spikefm_sandbox_start():\n";
  s += "    import os\n";
  s += "    work = os.fsdecode(" + py_bytes_literal(work_dir) + ")\n";
  s += "    cand = os.fsdecode(" + py_bytes_literal(candidate) + ")\n";
  s += "    with open(cand, 'rb') as f:\n";
  s += "        source = f.read()\n";
  s += "    sys.argv = [cand]\n";
  s += "    sys.path[0] = work\n";
  if (hook) {
    s += R"PY(    realpath, fsdecode, fspath, getpid = os.path.realpath, os.fsdecode, os.fspath, os.getpid
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    def inside(path):
        if path is None or isinstance(path, int):
            return True  # an fd the program already holds, or no path at all
        try:
            p = realpath(fsdecode(fspath(path)))
        except Exception:
            return False
        return p == work or p.startswith(work + '/') or p == '/dev/null'
    denied = frozenset((
        'os.system', 'os.exec', 'os.posix_spawn', 'os.spawn', 'os.fork', 'os.forkpty', 'os.killpg',
        'subprocess.Popen', 'pty.spawn', 'signal.pthread_kill', 'resource.setrlimit', 'resource.prlimit',
        'socket.__new__', 'socket.connect', 'socket.bind', 'socket.sendto', 'socket.sendmsg',
        'socket.getaddrinfo', 'socket.gethostbyname', 'socket.gethostbyaddr', 'socket.getnameinfo',
        'urllib.Request', 'http.client.connect', 'ftplib.connect', 'smtplib.connect',
        'webbrowser.open'))
    path_args = {'os.remove': (0,), 'os.rmdir': (0,), 'os.mkdir': (0,), 'os.rename': (0, 1),
                 'os.link': (0, 1), 'os.symlink': (1,), 'os.truncate': (0,), 'os.chmod': (0,),
                 'os.chown': (0,), 'os.utime': (0,), 'os.chflags': (0,), 'os.lchflags': (0,),
                 'os.setxattr': (0,), 'os.removexattr': (0,), 'shutil.rmtree': (0,),
                 'shutil.copyfile': (1,), 'shutil.copymode': (1,), 'shutil.copystat': (1,),
                 'shutil.move': (0, 1), 'shutil.chown': (0,)}
    blocked_imports = frozenset(('ctypes', '_ctypes', '_posixsubprocess', 'pty'))
    def hook(event, args):
        if event in denied or event.startswith('ctypes.'):
            raise PermissionError('spikefm sandbox: ' + event + ' is not allowed')
        if event == 'open':
            if len(args) > 2 and isinstance(args[2], int) and args[2] & write_flags and not inside(args[0]):
                raise PermissionError('spikefm sandbox: writing outside the work dir is not allowed')
        elif event in path_args:
            for i in path_args[event]:
                if i < len(args) and not inside(args[i]):
                    raise PermissionError('spikefm sandbox: ' + event + ' outside the work dir is not allowed')
        elif event == 'os.kill':
            if args[0] != getpid():
                raise PermissionError('spikefm sandbox: os.kill of another process is not allowed')
        elif event == 'import':
            if args[0] in blocked_imports:
                raise PermissionError('spikefm sandbox: importing ' + args[0] + ' is not allowed')
    sys.addaudithook(hook)
)PY";
  }
  s += "    return compile(source, cand, 'exec'), cand\n";
  s += "_spikefm_code, _spikefm_cand = _spikefm_sandbox_start()\n";
  s += "del _spikefm_sandbox_start\n";
  s += "import types as _spikefm_types\n";
  s += "_spikefm_main = _spikefm_types.ModuleType('__main__')\n";
  s += "_spikefm_main.__file__ = _spikefm_cand\n";
  s += "sys.modules['__main__'] = _spikefm_main\n";
  s += "exec(_spikefm_code, _spikefm_main.__dict__)\n";
  return s;
}

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (!f) throw Error("writing " + path.string(), "the write failed", "check free space in the temp dir");
}

void validate(const SandboxLimits& l) {
  auto bad = [](const std::string& field, const std::string& rule, const std::string& got) {
    throw Error("checking SandboxLimits", field + " must be " + rule + " (got " + got + ")");
  };
  if (!std::isfinite(l.cpu_seconds) || l.cpu_seconds <= 0 || l.cpu_seconds > 1e6) {
    bad("cpu_seconds", "in (0, 1e6]", std::to_string(l.cpu_seconds));
  }
  if (!std::isfinite(l.wall_seconds) || l.wall_seconds <= 0 || l.wall_seconds > 1e6) {
    bad("wall_seconds", "in (0, 1e6]", std::to_string(l.wall_seconds));
  }
  if (l.address_space_bytes < (int64_t{16} << 20)) {
    bad("address_space_bytes", ">= 16 MiB", std::to_string(l.address_space_bytes));
  }
  if (l.file_size_bytes < 0) bad("file_size_bytes", ">= 0", std::to_string(l.file_size_bytes));
  if (l.temp_dir_bytes < (int64_t{1} << 20)) bad("temp_dir_bytes", ">= 1 MiB", std::to_string(l.temp_dir_bytes));
  if (l.max_processes < 2) {
    bad("max_processes", ">= 2 (python and the sandbox's init process)", std::to_string(l.max_processes));
  }
  if (l.output_bytes <= 0) bad("output_bytes", "> 0", std::to_string(l.output_bytes));
}

// A pipe whose ends close on exec, read by the parent without blocking. The parent never writes
// to a pipe (no SIGPIPE can reach the caller's process).
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw Error("starting the code sandbox", "pipe2: " + errno_text(errno));
    r = fds[0];
    w = fds[1];
    ::fcntl(r, F_SETFL, ::fcntl(r, F_GETFL) | O_NONBLOCK);
  }
  ~Pipe() {
    close_r();
    close_w();
  }
  void close_r() {
    if (r >= 0) ::close(r);
    r = -1;
  }
  void close_w() {
    if (w >= 0) ::close(w);
    w = -1;
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

// kill(-1, SIGKILL) as `uid`: every process of that uid, wherever it went (setsid, reparenting).
void kill_all_of_uid(uid_t uid) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const long pid = raw_fork();
  if (pid == 0) {
    if (::syscall(SYS_setresuid, uid, uid, uid) == 0) ::kill(-1, SIGKILL);
    _exit(0);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid > 0) {
    int st = 0;
    while (::waitpid(static_cast<pid_t>(pid), &st, 0) < 0 && errno == EINTR) {
    }
  }
}

const Machine& machine();

void kill_pid_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

std::string summary(const Machine& m, bool hook) {
  std::string s = m.variant.name;
  if (m.iso.landlock_abi > 0) s += "+landlock" + std::to_string(m.iso.landlock_abi);
  if (m.iso.private_uid) {
    s += "+private-uid";
  } else if (m.iso.uid_dropped) {
    s += "+nobody";
  }
  s += "+rlimits";
  if (hook) s += "+audit-hook";
  return s;
}

// One run under a given variant (the probe calls it before `machine()` exists).
SandboxResult run_variant(const std::string& program, const SandboxLimits& limits, const Machine& m) {
  SlotGuard slot;
  const Variant& v = m.variant;
  const bool private_uid = m.iso.private_uid && v.drop_uid;
  uid_t uid = 65534;
  gid_t gid = 65534;
  if (private_uid) {
    const uint32_t id = kSandboxUidBase + ((static_cast<uint32_t>(::getpid()) & 0x3FFFFFu) << 6) +
                        static_cast<uint32_t>(slot.slot);
    uid = id;
    gid = id;
  }

  // Temp dir: run.py and candidate.py read-only for the candidate, work/ its own.
  TempDir tmp;
  {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string templ = (base / "spikefm_sandbox_XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw Error("creating a temp dir in " + base.string(), errno_text(errno), "check TMPDIR and free space");
    }
    tmp.path = fs::canonical(templ, ec);
    if (ec) tmp.path = templ;
    ::chmod(tmp.path.c_str(), 0755);
  }
  const fs::path work = tmp.path / "work";
  const fs::path candidate = tmp.path / "candidate.py";
  const fs::path runner = tmp.path / "run.py";
  if (::mkdir(work.c_str(), 0700) != 0) throw Error("creating " + work.string(), errno_text(errno));
  if (v.drop_uid && ::chown(work.c_str(), uid, gid) != 0) {
    throw Error("handing " + work.string() + " to uid " + std::to_string(uid), errno_text(errno));
  }
  write_text_file(candidate, program);
  write_text_file(runner, runner_source(work.string(), candidate.string(), limits.python_audit_hook));
  ::chmod(candidate.c_str(), 0644);
  ::chmod(runner.c_str(), 0644);

  // Everything the child reads, prepared now.
  const std::string python = m.iso.python;
  std::vector<std::string> args = {python, "-I", "-B", "-u", runner.string()};
  std::vector<std::string> env = {"PATH=/usr/bin:/bin", "HOME=" + work.string(), "LANG=C.UTF-8"};
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  // User namespace maps. Not root: the caller's ids map to themselves (python, a non-zero uid in
  // the namespace, loses every capability at exec). Root (CAP_SETUID in the parent namespace): the
  // run's uid maps to itself and the child drops to it, as in the root variants.
  const uid_t map_uid = m.euid_root ? uid : m.outer_uid;
  const gid_t map_gid = m.euid_root ? gid : m.outer_gid;
  const std::string uid_map = std::to_string(map_uid) + " " + std::to_string(map_uid) + " 1\n";
  const std::string gid_map = std::to_string(map_gid) + " " + std::to_string(map_gid) + " 1\n";
  const uid_t owner_uid = v.drop_uid ? uid : m.outer_uid;
  const gid_t owner_gid = v.drop_uid ? gid : m.outer_gid;
  const std::string tmpfs_options = "size=" + std::to_string(limits.temp_dir_bytes) +
                                    ",nr_inodes=4096,mode=0700,uid=" + std::to_string(owner_uid) +
                                    ",gid=" + std::to_string(owner_gid);
  const std::string work_str = work.string();

  Pipe out, err, status;
  // The release byte goes through a socket pair, so that send(MSG_NOSIGNAL) to a child that already
  // died cannot raise SIGPIPE in the caller's process.
  int go_fds[2] = {-1, -1};
  if (v.user && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go_fds) != 0) {
    throw Error("starting the code sandbox", "socketpair: " + errno_text(errno));
  }
  struct FdCloser {
    int* fds;
    ~FdCloser() {
      for (int i = 0; i < 2; ++i) {
        if (fds[i] >= 0) ::close(fds[i]);
      }
    }
  } go_closer{go_fds};
  ChildPlan p;
  p.go_r = go_fds[1];
  p.new_user = v.user;
  p.new_pid = v.pid;
  p.new_mnt = v.mnt;
  p.drop_uid = v.drop_uid;
  p.kill_uid = private_uid && !v.pid;
  p.wall_ns = static_cast<int64_t>(limits.wall_seconds * 1e9);
  p.uid = uid;
  p.gid = gid;
  p.work_dir = work_str.c_str();
  p.tmpfs_options = tmpfs_options.c_str();
  const int abi = m.iso.landlock_abi;
  p.landlock_abi = abi;
  p.ll_fs = kLlWriteFile | kLlRemoveDir | kLlRemoveFile | kLlMakeChar | kLlMakeDir | kLlMakeReg | kLlMakeSock |
            kLlMakeFifo | kLlMakeBlock | kLlMakeSym | (abi >= 2 ? kLlRefer : 0) | (abi >= 3 ? kLlTruncate : 0);
  p.ll_dev_null = kLlWriteFile | (abi >= 3 ? kLlTruncate : 0);
  p.ll_net = abi >= 4 ? (kLlNetBindTcp | kLlNetConnectTcp) : 0;
  p.ll_scoped = abi >= 6 ? (kLlScopeAbstractUnix | kLlScopeSignal) : 0;
  const auto cpu = static_cast<rlim_t>(std::ceil(limits.cpu_seconds));
  p.limits[0] = {RLIMIT_CPU, cpu, cpu + 1};
  p.limits[1] = {RLIMIT_AS, static_cast<rlim_t>(limits.address_space_bytes),
                 static_cast<rlim_t>(limits.address_space_bytes)};
  p.limits[2] = {RLIMIT_FSIZE, static_cast<rlim_t>(limits.file_size_bytes),
                 static_cast<rlim_t>(limits.file_size_bytes)};
  p.limits[3] = {RLIMIT_NPROC, static_cast<rlim_t>(limits.max_processes),
                 static_cast<rlim_t>(limits.max_processes)};
  p.limits[4] = {RLIMIT_CORE, 0, 0};
  p.limits[5] = {RLIMIT_NOFILE, kSandboxMaxOpenFiles, kSandboxMaxOpenFiles};
  for (ChildLimit& l : p.limits) {  // python sets them after dropping root: never above our hard limit
    struct rlimit cur{};
    if (::getrlimit(static_cast<__rlimit_resource_t>(l.resource), &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
      l.value_soft = std::min(l.value_soft, cur.rlim_max);
      l.value_hard = std::min(l.value_hard, cur.rlim_max);
    }
  }
  p.out_w = out.w;
  p.err_w = err.w;
  p.status_w = status.w;
  p.python = python.c_str();
  p.argv = argv.data();
  p.envp = envp.data();

  unsigned long flags = SIGCHLD;
  if (v.user) flags |= CLONE_NEWUSER;
  if (v.pid) flags |= CLONE_NEWPID;
  if (v.net) flags |= CLONE_NEWNET;
  if (v.mnt) flags |= CLONE_NEWNS;
  if (v.pid || v.mnt) flags |= CLONE_NEWIPC | CLONE_NEWUTS;

  SandboxResult res;
  res.temp_dir = tmp.path.string();
  res.isolation = summary(m, limits.python_audit_hook);

  const auto t0 = Clock::now();
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const long cl = ::syscall(SYS_clone, flags, 0, 0, 0, 0);
  if (cl == 0) child_main(p);  // never returns
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (cl < 0) {
    throw Error("starting the code sandbox (" + std::string(v.name) + ")", "clone: " + errno_text(clone_errno),
                "the machine refuses these namespaces; see sandbox_isolation_report()");
  }
  const auto pid = static_cast<pid_t>(cl);
  out.close_w();
  err.close_w();
  status.close_w();
  if (v.user) {
    ::close(go_fds[1]);
    go_fds[1] = -1;
    // setgroups must be denied before an unprivileged gid_map; root keeps it so the child can drop
    // its supplementary groups.
    const std::string proc = "/proc/" + std::to_string(pid) + "/";
    int map_errno = 0;
    auto write_proc = [&](const std::string& file, const std::string& text) {
      if (map_errno != 0) return;
      const int fd = ::open((proc + file).c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) map_errno = errno;
      if (fd >= 0) ::close(fd);
    };
    if (!m.euid_root) write_proc("setgroups", "deny");
    write_proc("uid_map", uid_map);
    write_proc("gid_map", gid_map);
    if (map_errno != 0) {
      kill_pid_and_reap(pid);
      res.status = SandboxStatus::error;
      res.error_message = "sandbox set-up failed while writing the user namespace id maps of pid " +
                          std::to_string(pid) + ": " + errno_text(map_errno) + " [" + v.name + "]";
      return res;
    }
    // If this fails the child is gone already; its status pipe or its reap says why.
    const char byte = 1;
    (void)!::send(go_fds[0], &byte, 1, MSG_NOSIGNAL);
    ::close(go_fds[0]);
    go_fds[0] = -1;
  }
  const int pidfd = static_cast<int>(::syscall(kSysPidfdOpen, pid, 0));

  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(limits.wall_seconds));
  enum class Kill { none, timeout, output } kill_reason = Kill::none;
  auto kill_group = [&] {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  };
  // Stopping a run: with a pid namespace SIGKILL its init (the kernel kills the rest). Without one,
  // SIGTERM asks the init to kill and reap everything itself (nothing is orphaned to the machine's
  // pid 1); if it has not exited a second later (a candidate of the same uid killed it), SIGKILL.
  bool stop_requested = false, backstop_fired = false;
  Clock::time_point backstop{};
  auto stop_run = [&](Kill why) {
    if (kill_reason == Kill::none) kill_reason = why;
    if (stop_requested) return;
    stop_requested = true;
    if (v.pid) {
      kill_group();
    } else {
      ::kill(pid, SIGTERM);
      backstop = Clock::now() + std::chrono::seconds(1);
    }
  };
  bool exited = false;
  int wstatus = 0;
  Clock::time_point drain_deadline{};
  std::string status_bytes;
  const size_t cap = static_cast<size_t>(limits.output_bytes);

  auto read_stream = [&](Pipe& pipe, std::string& text, bool& truncated) {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(pipe.r, buf, sizeof buf);
      if (n > 0) {
        const size_t room = text.size() < cap ? cap - text.size() : 0;
        const size_t keep = std::min(room, static_cast<size_t>(n));
        text.append(buf, keep);
        if (keep < static_cast<size_t>(n)) {
          truncated = true;
          stop_run(Kill::output);
        }
        continue;
      }
      if (n == 0) {
        pipe.close_r();
        return;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) pipe.close_r();
      return;
    }
  };
  auto read_status = [&] {
    char buf[256];
    for (;;) {
      const ssize_t n = ::read(status.r, buf, sizeof buf);
      if (n > 0) {
        status_bytes.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || errno != EAGAIN) status.close_r();  // end of file, or a broken pipe
      return;
    }
  };

  // Messages of the init so far (16 bytes each, written atomically).
  auto for_each_msg = [&](auto&& fn) {
    for (size_t off = 0; off + sizeof(ChildMsg) <= status_bytes.size(); off += sizeof(ChildMsg)) {
      ChildMsg msg;
      std::memcpy(&msg, status_bytes.data() + off, sizeof msg);
      fn(msg);
    }
  };
  auto python_reported = [&] {
    bool seen = false;
    for_each_msg([&](const ChildMsg& msg) { seen = seen || msg.kind == kMsgPythonExit; });
    return seen;
  };
  // Without a pid namespace python has its own process group (pgid = its pid, reported at start).
  auto kill_python_group = [&] {
    for_each_msg([&](const ChildMsg& msg) {
      if (msg.kind == kMsgPythonStarted && msg.wait_status > 1) ::kill(-msg.wait_status, SIGKILL);
    });
  };

  for (;;) {
    if (!exited) {
      const pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
      if (r == pid) {
        exited = true;
        // Leftovers outside a pid namespace (normally the init has killed and reaped them; not if a
        // candidate of the same uid killed the init): the init's group, python's group unless the
        // init reported python's end, and with a private uid everything of it.
        ::kill(-pid, SIGKILL);
        if (!v.pid) {
          if (status.r >= 0) read_status();
          if (!python_reported()) kill_python_group();
          if (private_uid) kill_all_of_uid(uid);
        }
        drain_deadline = Clock::now() + std::chrono::milliseconds(500);
      }
    }
    const auto now = Clock::now();
    if (exited && out.r < 0 && err.r < 0 && status.r < 0) break;
    if (exited && now >= drain_deadline) break;
    if (!exited && now >= deadline) stop_run(Kill::timeout);
    if (!exited && stop_requested && !v.pid && !backstop_fired && now >= backstop) {
      backstop_fired = true;
      kill_group();
      kill_python_group();
      if (private_uid) kill_all_of_uid(uid);
    }
    pollfd fds[4];
    int nfds = 0;
    const int idx_out = out.r >= 0 ? nfds : -1;
    if (out.r >= 0) fds[nfds++] = {out.r, POLLIN, 0};
    const int idx_err = err.r >= 0 ? nfds : -1;
    if (err.r >= 0) fds[nfds++] = {err.r, POLLIN, 0};
    const int idx_st = status.r >= 0 ? nfds : -1;
    if (status.r >= 0) fds[nfds++] = {status.r, POLLIN, 0};
    if (pidfd >= 0 && !exited) fds[nfds++] = {pidfd, POLLIN, 0};
    const auto until = exited ? drain_deadline : (!stop_requested ? deadline : now + std::chrono::milliseconds(20));
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1;
    if (pidfd < 0 && !exited) wait_ms = std::min<long long>(wait_ms, 20);
    wait_ms = std::max<long long>(0, std::min<long long>(wait_ms, 1000));
    const int pr = ::poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(wait_ms));
    if (pr < 0 && errno != EINTR) {
      kill_group();
      break;  // cannot happen with valid fds; the reap below still runs
    }
    if (pr > 0) {
      if (idx_out >= 0 && fds[idx_out].revents) read_stream(out, res.stdout_text, res.stdout_truncated);
      if (idx_err >= 0 && fds[idx_err].revents) read_stream(err, res.stderr_text, res.stderr_truncated);
      if (idx_st >= 0 && fds[idx_st].revents) read_status();
    }
  }
  if (!exited) {  // only after a poll failure
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (!v.pid && private_uid) kill_all_of_uid(uid);
  }
  if (pidfd >= 0) ::close(pidfd);
  if (status.r >= 0) read_status();
  res.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // What happened: a set-up failure first, then the runner's own kills, then python's status.
  bool have_python_status = false;
  int python_status = 0;
  int32_t shim_flags = 0;
  bool setup_failed = false;
  for_each_msg([&](const ChildMsg& msg) {
    if (msg.kind == kMsgSetupError && !setup_failed) {
      setup_failed = true;
      res.error_message = std::string("sandbox set-up failed while ") + step_name(msg.step) + ": " +
                          errno_text(msg.err) + " [" + v.name + "]";
    }
    if (msg.kind == kMsgPythonExit) {
      shim_flags = msg.step;
      have_python_status = msg.err != 0;
      python_status = msg.wait_status;
    }
  });
  if (setup_failed) {
    res.status = SandboxStatus::error;
    return res;
  }
  if (have_python_status) {
    if (WIFEXITED(python_status)) res.exit_code = WEXITSTATUS(python_status);
    if (WIFSIGNALED(python_status)) res.signal = WTERMSIG(python_status);
  }
  if (kill_reason == Kill::timeout || (kill_reason == Kill::none && (shim_flags & kShimTimedOut))) {
    res.status = SandboxStatus::timeout;
  } else if (kill_reason == Kill::output) {
    res.status = SandboxStatus::output_limit;
  } else if (!have_python_status) {
    res.status = SandboxStatus::error;
    res.error_message = std::string("the sandbox init process ended without reporting python's status (") +
                        (WIFSIGNALED(wstatus) ? "signal " + std::to_string(WTERMSIG(wstatus))
                                              : "exit " + std::to_string(WEXITSTATUS(wstatus))) +
                        ")";
  } else if (WIFEXITED(python_status)) {
    res.status = res.exit_code == 0 ? SandboxStatus::ok : SandboxStatus::failed;
  } else if (res.signal == SIGXCPU) {
    res.status = SandboxStatus::timeout;
  } else {
    res.status = SandboxStatus::killed_by_signal;
  }
  return res;
}

Machine probe_machine() {
  Machine m;
  m.iso.python = resolve_python();
  m.euid_root = ::geteuid() == 0;
  m.outer_uid = ::geteuid();
  m.outer_gid = ::getegid();
  const bool private_range = ids_mapped("/proc/self/uid_map", kSandboxUidBase, uint64_t{1} << 28) &&
                             ids_mapped("/proc/self/gid_map", kSandboxUidBase, uint64_t{1} << 28);

  std::vector<Variant> variants;
  if (m.euid_root) {
    variants.push_back({"root-ns", false, true, true, true, true});
    variants.push_back({"root-netns", false, false, true, false, true});
  }
  variants.push_back({"userns", true, true, true, true, m.euid_root});
  variants.push_back({"userns-netns", true, false, true, false, m.euid_root});
  variants.push_back({"plain", false, false, false, false, m.euid_root});

  // Overrides for checking the fallback chain on a machine that allows more (tests, docs).
  if (const char* only = std::getenv("SPIKEFM_SANDBOX_VARIANT"); only != nullptr && *only != '\0') {
    std::vector<Variant> kept;
    for (const Variant& v : variants) {
      if (only == std::string(v.name)) kept.push_back(v);
    }
    if (kept.empty()) {
      throw Error("starting the code sandbox",
                  "SPIKEFM_SANDBOX_VARIANT=" + std::string(only) + " is not a variant available to this user",
                  "use root-ns, root-netns (as root), userns, userns-netns or plain, or unset it");
    }
    variants = kept;
  }
  int abi = landlock_abi();
  if (const char* ll = std::getenv("SPIKEFM_SANDBOX_LANDLOCK"); ll != nullptr && std::string(ll) == "0") abi = 0;

  SandboxLimits probe_limits;
  probe_limits.wall_seconds = 20;  // a cold python start on a loaded machine
  std::string tried;
  for (int ll : {abi, 0}) {
    for (const Variant& v : variants) {
      Machine cand = m;
      cand.variant = v;
      cand.iso.landlock_abi = ll;
      cand.iso.user_namespace = v.user;
      cand.iso.pid_namespace = v.pid;
      cand.iso.net_namespace = v.net;
      cand.iso.mount_namespace = v.mnt;
      cand.iso.uid_dropped = v.drop_uid;
      cand.iso.private_uid = v.drop_uid && private_range;
      cand.iso.variant = v.name;
      SandboxResult r;
      try {
        r = run_variant("import sys\nsys.exit(0)\n", probe_limits, cand);
      } catch (const Error& e) {
        tried += std::string("\n  ") + v.name + " (landlock " + std::to_string(ll) + "): " + e.what();
        continue;
      }
      if (r.status == SandboxStatus::ok) return cand;
      tried += std::string("\n  ") + v.name + " (landlock " + std::to_string(ll) + "): " + to_string(r.status) +
               " " + r.error_message + " " + r.stderr_text.substr(0, 300);
    }
    if (abi == 0) break;
  }
  throw Error("starting the code sandbox", "no sandbox variant could run python on this machine:" + tried,
              "check that " + m.iso.python + " runs and that the temp dir is usable");
}

const Machine& machine() {
  static std::once_flag once;
  static Machine m;
  std::call_once(once, [] { m = probe_machine(); });
  return m;
}

}  // namespace

const char* to_string(SandboxStatus status) {
  switch (status) {
    case SandboxStatus::ok: return "ok";
    case SandboxStatus::failed: return "failed";
    case SandboxStatus::timeout: return "timeout";
    case SandboxStatus::killed_by_signal: return "killed_by_signal";
    case SandboxStatus::output_limit: return "output_limit";
    case SandboxStatus::error: return "error";
  }
  return "unknown";
}

SandboxResult run_python(const std::string& program, const SandboxLimits& limits) {
  validate(limits);
  return run_variant(program, limits, machine());
}

std::vector<SandboxResult> run_python_many(const std::vector<std::string>& programs,
                                           const SandboxLimits& limits, int workers) {
  if (workers < 1 || workers > kSandboxMaxConcurrentRuns) {
    throw Error("running programs in the code sandbox",
                "workers must be in [1, " + std::to_string(kSandboxMaxConcurrentRuns) + "] (got " +
                    std::to_string(workers) + ")");
  }
  validate(limits);
  machine();  // probe once, before the threads start
  std::vector<SandboxResult> results(programs.size());
  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr first_error;
  auto work = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= programs.size()) return;
      {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error) return;
      }
      try {
        results[i] = run_python(programs[i], limits);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
      }
    }
  };
  const size_t n_threads = std::min(static_cast<size_t>(workers), programs.size());
  std::vector<std::thread> threads;
  threads.reserve(n_threads);
  for (size_t t = 0; t < n_threads; ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  return results;
}

const SandboxIsolation& sandbox_isolation() { return machine().iso; }

std::string sandbox_isolation_report() {
  const Machine& m = machine();
  const SandboxIsolation& s = m.iso;
  std::ostringstream r;
  r << "sandbox variant: " << s.variant << " (python " << s.python << ")\n";
  r << "processes: an init process (not python) reaps every orphan and reports python's status; "
    << (s.pid_namespace ? "it is pid 1 of a new pid namespace, so its exit makes the kernel kill every descendant"
        : s.private_uid ? "a child subreaper that kills (kill(-1) as the private uid) and reaps everything left"
                        : "a child subreaper that kills python's process group; processes that leave the "
                          "group (setsid) can survive here")
    << "\n";
  r << "network: "
    << (s.net_namespace ? "new network namespace (only a down loopback)" : "shared with the host")
    << (s.landlock_abi >= 4 ? "; Landlock denies every TCP bind/connect" : "") << "\n";
  r << "filesystem: "
    << (s.mount_namespace ? "mount namespace, / read-only (recursive), tmpfs work dir of temp_dir_bytes"
                          : "host mounts");
  if (s.landlock_abi > 0) {
    r << "; Landlock ABI " << s.landlock_abi << " allows writes only beneath the work dir and to /dev/null";
  } else {
    r << "; no Landlock";
  }
  r << "\n";
  r << "identity: ";
  if (s.user_namespace && !s.uid_dropped) {
    r << "user namespace mapping the caller's uid/gid (no capabilities after exec)";
  } else if (s.private_uid) {
    if (s.user_namespace) r << "user namespace; ";
    r << "root dropped to a private uid per run (" << kSandboxUidBase
      << " + (pid mod 2^22)*64 + slot): RLIMIT_NPROC contains fork bombs per run";
  } else if (s.uid_dropped) {
    if (s.user_namespace) r << "user namespace; ";
    r << "root dropped to uid 65534 (nobody), shared by concurrent runs";
  } else {
    r << "the caller's uid (RLIMIT_NPROC counts all of the caller's processes)";
  }
  r << "; no_new_privs" << (s.landlock_abi >= 6 ? "; Landlock scopes signals and abstract unix sockets" : "")
    << "\n";
  r << "limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_CORE=0, RLIMIT_NOFILE="
    << kSandboxMaxOpenFiles << "; wall clock SIGKILL of the group; output capped per stream\n";
  r << "python: -I -B -u, environment PATH/HOME/LANG only, audit-hook prelude unless disabled "
       "(defence in depth)\n";
  return r.str();
}

}  // namespace spikefm
