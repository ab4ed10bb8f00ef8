// Sandboxed runner for generated Python code (HumanEval-style scoring).
//
// run_python(program) executes one candidate program (its body plus the task's tests, one string) as
// `python3 -I -B -u` and returns how it ended, with its stdout/stderr. Candidates come from a model
// and are treated as hostile: the runner must contain them and must never harm or hang the caller.
//
// What every run gets, whatever the machine allows:
//   - a fresh temp dir  <temp_directory_path()>/spikefm_sandbox_XXXXXX/   (removed after the run, also
//     after a kill) holding run.py (the prelude below), candidate.py and work/ (cwd and HOME);
//   - rlimits: RLIMIT_CPU = ceil(cpu_seconds) soft (+1 s hard), RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC,
//     RLIMIT_CORE = 0, RLIMIT_NOFILE = kSandboxMaxOpenFiles (never above the caller's hard limits);
//   - its own session; at the wall-clock limit everything the run started is SIGKILLed (see below);
//   - stdin = /dev/null; stdout/stderr read through pipes with poll(); each stream is stored up to
//     output_bytes, and the first byte beyond that kills the run (status output_limit, *_truncated);
//   - an empty environment but PATH=/usr/bin:/bin, HOME=<work dir>, LANG=C.UTF-8;
//   - a Python prelude (defence in depth, on unless SandboxLimits::python_audit_hook is false): a
//     sys.addaudithook hook that denies open-for-write and file-system changes outside work/, socket
//     creation/connect/bind, os.system/exec*/spawn*/posix_spawn/fork, subprocess, pty and ctypes.
//
// Kernel layers, the strongest set this machine permits, found once per process by probing (a trial
// run of each variant, first one that runs a trivial program wins; see sandbox_isolation_report()):
//   1. root (euid 0, as in our containers): clone(CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWIPC|
//      CLONE_NEWUTS); in the new mount namespace / is made read-only recursively (mount_setattr) and
//      a size-limited tmpfs is mounted on work/; then the child drops root: setgroups(0), setresgid,
//      setresuid to a private uid (kSandboxUidBase + (pid mod 2^22) * 64 + slot), so RLIMIT_NPROC,
//      which counts per real uid, contains a fork bomb to this one run, and uid-based file
//      permissions protect everything root owns (including other processes' /proc/<pid>/environ).
//      If the private uid range is not mapped in this container, uid 65534 (nobody) is used instead.
//   2. user namespaces allowed: clone(CLONE_NEWUSER|...same...); the parent writes the child's id
//      maps. Not root: the caller's uid/gid map to themselves (python, not uid 0 there, has no
//      capabilities after exec). Root: the private uid maps to itself and the child drops to it.
//      Same mount set-up.
//   3. variants 1/2 without the pid/mount namespaces (network namespace only), then
//   4. plain: no namespaces (uid still dropped when root); network isolation then rests on Landlock
//      (TCP only) and the prelude.
//   Two variables of the caller's environment (never passed to the candidate) narrow the probe, to
//   check the fallbacks on a machine that allows more: SPIKEFM_SANDBOX_VARIANT=<name> (one of the
//   names in SandboxIsolation::variant) and SPIKEFM_SANDBOX_LANDLOCK=0.
// On top of every variant, when the kernel has Landlock (ABI >= 1): writes (create, remove, write,
// truncate, rename) are allowed only beneath work/ and to /dev/null; ABI >= 4 also denies every TCP
// bind/connect; ABI >= 6 scopes signals and abstract unix sockets to the sandbox. Landlock also
// stops the candidate from ptrace-reading processes outside it (/proc/<pid>/environ).
// PR_SET_NO_NEW_PRIVS is always set.
//
// The cloned child never runs Python itself: after the set-up it is a tiny init that forks python
// (python alone gets the rlimits and the Landlock domain, so signal scoping shields the init),
// reaps every orphan, enforces the wall clock itself and reports python's wait status through a
// pipe. With a pid namespace it is pid 1 there, immune to the candidate's signals, and its exit
// makes the kernel SIGKILL everything left in the namespace: no descendant outlives the run, setsid()
// does not escape. Without one it is a child subreaper: when python ends (or on timeout, or when the
// runner sends SIGTERM for too much output) it SIGKILLs what is left — every process of the private
// uid via kill(-1), else python's process group — and reaps it, so nothing is orphaned to the
// machine's pid 1. If that init dies anyway (same uid, Landlock < 6), the runner kills python's
// group and, with a private uid, every process of it from a helper, a second later at the latest.
//
// Thread safety: run_python may be called from many threads at once (run_python_many does). The child
// is created with a raw clone() (fork semantics) and runs only raw system calls until execve;
// everything it needs (argv, envp, paths, mount options, rlimits) is prepared before the clone, and
// the caller's process never writes to a pipe (no SIGPIPE).
// At most kSandboxMaxConcurrentRuns runs are active per process; further calls wait for a slot.
//
// Errors: bad limits, a missing python3, or a failure to create the temp dir / pipes / child throw
// spikefm::Error. A failure of the sandbox set-up inside the child (should not happen after the
// probe) is reported as SandboxStatus::error with the failing step in error_message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spikefm {

inline constexpr int kSandboxMaxConcurrentRuns = 64;
inline constexpr int kSandboxMaxOpenFiles = 64;
inline constexpr uint32_t kSandboxUidBase = 0x50000000u;  // private uids: base + (pid % 2^22) * 64 + slot

struct SandboxLimits {
  double cpu_seconds = 5;                          // RLIMIT_CPU (rounded up to whole seconds)
  double wall_seconds = 10;                        // wall clock from start to SIGKILL of the group
  int64_t address_space_bytes = int64_t{512} << 20;  // RLIMIT_AS
  int64_t file_size_bytes = int64_t{1} << 20;      // RLIMIT_FSIZE (largest file it may write)
  int64_t temp_dir_bytes = int64_t{64} << 20;      // size of the tmpfs work dir (mount namespace only)
  int max_processes = 16;  // RLIMIT_NPROC, per uid: includes python and the namespace init (>= 2)
  int64_t output_bytes = int64_t{64} << 10;        // per stream; one byte more kills the run
  bool python_audit_hook = true;  // the prelude layer; tests turn it off to test the kernel layers
};

enum class SandboxStatus {
  ok,                // exited with code 0
  failed,            // exited with a non-zero code (failed assert, exception, syntax error)
  timeout,           // wall-clock limit (group SIGKILLed) or CPU limit (signal = SIGXCPU/SIGKILL)
  killed_by_signal,  // died from a signal it did not get from the runner's limits
  output_limit,      // wrote more than output_bytes to stdout or stderr (group SIGKILLed)
  error,             // the sandbox itself could not be set up (error_message says where)
};

const char* to_string(SandboxStatus status);

struct SandboxResult {
  SandboxStatus status = SandboxStatus::error;
  int exit_code = -1;  // when python exited normally, else -1
  int signal = 0;      // the signal that ended python, else 0
  std::string stdout_text;  // at most output_bytes
  std::string stderr_text;  // at most output_bytes
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  double wall_s = 0;          // from the clone to the reap of the child
  std::string isolation;      // one-line summary of the layers used (see sandbox_isolation_report)
  std::string error_message;  // for status error: the set-up step and errno text
  std::string temp_dir;       // the run's temp dir (already removed); it names the run's processes'
                              // command lines while it runs, e.g. for leftover checks in tests
};

// Runs one program. Thread-safe. Throws spikefm::Error for invalid limits, a missing python3 or a
// failure to create the temp dir, pipes or child; everything the program does is in the result.
SandboxResult run_python(const std::string& program, const SandboxLimits& limits = {});

// Runs programs on `workers` threads (1..kSandboxMaxConcurrentRuns); results in input order. The
// first exception of any run is rethrown after all workers have stopped.
std::vector<SandboxResult> run_python_many(const std::vector<std::string>& programs,
                                           const SandboxLimits& limits, int workers);

// The layers in force on this machine (probed once per process; the probe throws spikefm::Error if
// python3 is absent or no variant can run a trivial program).
struct SandboxIsolation {
  std::string python;           // resolved interpreter, e.g. /usr/bin/python3.11
  bool user_namespace = false;  // variant 2: a user namespace maps the caller's ids
  bool pid_namespace = false;   // init in a new pid namespace: no descendant outlives the run
  bool net_namespace = false;   // new network namespace: no interface but a down loopback
  bool mount_namespace = false;  // read-only / and a tmpfs work dir of temp_dir_bytes
  bool uid_dropped = false;     // root dropped to a non-root uid before exec
  bool private_uid = false;     // ... to a uid of this run alone (RLIMIT_NPROC per run, kill by uid)
  int landlock_abi = 0;         // 0: none; >= 1 fs writes; >= 4 TCP; >= 6 signal/abstract-unix scope
  std::string variant;          // "root-ns", "userns", "root-netns", "userns-netns", "plain"
};
const SandboxIsolation& sandbox_isolation();

// Human-readable, one line per layer, for logs and docs.
std::string sandbox_isolation_report();

}  // namespace spikefm
