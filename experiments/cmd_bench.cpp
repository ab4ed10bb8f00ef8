// spikefm bench: run a benchmark end to end and report its score.
//
// One function per task (bench_<task>), chosen by --task in run_bench(); a new benchmark is one more
// function and one more line of the dispatch table. Implemented:
//   code  HumanEval-format code generation (docs/code_tasks.md): n samples per task from a code model
//         (--checkpoint) or an external completions file (--completions), each run with the task's
//         tests in the sandbox (datasets/sandbox.h) on --workers threads; pass@k (unbiased, Chen et al.
//         2021) for k in {1, 10}, k <= n; a breakdown by test category and family when the tasks are in
//         code_meta.jsonl; per-task results as JSONL (--out, atomic).
//   fashion-vqa, med-vqa  exact-match accuracy per question type on the test split: ann/qann score the
//         checkpoint (a --qann checkpoint fake-quantized, as `spikefm eval` does); snn runs
//         a converted model (.snn.h5) in the event-driven engine beside its QANN and adds spikes/SOPs;
//         per-question results as JSONL (--out, atomic).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>

#include "ann_ref/code_model.h"
#include "ann_ref/evaluator.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/progress.h"
#include "convert/simulate.h"
#include "datasets/code_meta.h"
#include "datasets/code_tasks.h"
#include "datasets/sandbox.h"
#include "experiments/cli.h"

namespace spikefm::cli {

namespace {

struct BenchOptions {
  std::string task = "code";
  std::string backend = "ann";           // ann | qann | snn (only ann for code)
  std::filesystem::path checkpoint;      // model to sample from
  std::filesystem::path tasks;           // task file; empty: the shipped test split
  std::filesystem::path completions;     // score these instead of sampling a model
  std::filesystem::path completions_out; // write the sampled completions (HumanEval format)
  std::filesystem::path out;             // per-task results JSONL
  std::filesystem::path meta;            // code_meta.jsonl; empty: the shipped one
  int samples = 1;
  double temperature = 0.8;
  int max_new_tokens = 160;
  uint64_t seed = 1;
  int64_t limit = 0;
  int workers = 2;
  double timeout_s = 5;
  int threads = 0;
  int timesteps = 0;         // snn: T per inference (0: the file's default)
  bool until_quiet = false;  // snn: run every inference until no neuron spikes (exact neurons)
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Mean pass@k of tasks (one count pair per task) — the benchmark score.
double mean_pass_at_k(const std::vector<std::pair<int, int>>& nc, int k) {
  double s = 0;
  for (auto [n, c] : nc) s += pass_at_k(n, c, k);
  return nc.empty() ? 0 : s / static_cast<double>(nc.size());
}

int bench_code(const BenchOptions& o) {
  if (o.backend != "ann") {
    throw Error("--backend " + o.backend, "code generation runs on the ANN backend only for now", "use --backend ann");
  }
  if (o.checkpoint.empty() == o.completions.empty()) {
    throw Error("bench --task code", "needs exactly one source of completions",
                "pass --checkpoint MODEL.h5 (sample a model) or --completions FILE.jsonl (score a file)");
  }
  if (o.samples < 1) throw Error("--samples", "must be >= 1 (got " + std::to_string(o.samples) + ")");
  if (o.workers < 1 || o.workers > kSandboxMaxConcurrentRuns) {
    throw Error("--workers", "must be in [1, " + std::to_string(kSandboxMaxConcurrentRuns) + "] (got " + std::to_string(o.workers) + ")");
  }
  if (!(o.timeout_s > 0) || o.timeout_s > 600) throw Error("--timeout", "must be in (0, 600] seconds");
  if (!(o.temperature >= 0) || o.temperature > 100) throw Error("--temperature", "must be in [0, 100]");

  const std::filesystem::path task_file = o.tasks.empty() ? code_tasks_file("test") : o.tasks;
  std::vector<CodeTask> tasks = load_code_tasks(task_file);
  if (o.limit > 0 && static_cast<int64_t>(tasks.size()) > o.limit) tasks.resize(o.limit);

  // --- completions: sampled or read ---
  std::vector<std::vector<std::string>> by_task;
  double gen_s = 0;
  std::string source;
  if (!o.checkpoint.empty()) {
    if (o.threads > 0) set_code_model_threads(o.threads);
    CodeModel model = CodeModel::load(o.checkpoint);
    source = model.describe();
    log::info("sampling " + std::to_string(o.samples) + " completion(s) of " + std::to_string(tasks.size()) +
              " tasks from " + source);
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Progress> progress;
    if (!o.json) progress.emplace("generate", static_cast<int64_t>(tasks.size()), "tasks");
    for (size_t i = 0; i < tasks.size(); ++i) {
      CodeSampling s;
      s.samples = o.samples;
      s.temperature = o.temperature;
      s.max_new_tokens = o.max_new_tokens;
      s.seed = o.seed * 1000003u + i;  // per task: results do not depend on --limit or order of work
      by_task.push_back(model.complete(tasks[i].prompt, s));
      if (progress) progress->update(static_cast<int64_t>(i + 1));
    }
    if (progress) progress->finish();
    gen_s = seconds_since(t0);
    if (!o.completions_out.empty()) {
      std::vector<CodeCompletion> all;
      for (size_t i = 0; i < tasks.size(); ++i) {
        for (const auto& c : by_task[i]) all.push_back({tasks[i].task_id, c});
      }
      write_completions(o.completions_out, all);
    }
  } else {
    source = o.completions.string();
    std::vector<CodeCompletion> comps = load_completions(o.completions);
    if (o.limit > 0) {  // --limit keeps the first N tasks; completions of the others are dropped
      std::set<std::string> kept;
      for (const auto& t : tasks) kept.insert(t.task_id);
      std::erase_if(comps, [&](const CodeCompletion& c) { return !kept.count(c.task_id); });
    }
    by_task = completions_by_task(tasks, comps);
    for (size_t i = 0; i < tasks.size(); ++i) {
      if (by_task[i].empty()) {
        throw Error("completions " + o.completions.string(), "task " + tasks[i].task_id + " has no completion",
                    "complete every task of the task file, or pass --tasks with only the completed tasks");
      }
    }
  }

  // --- sandbox ---
  std::vector<std::string> programs;
  std::vector<std::pair<size_t, size_t>> origin;  // (task, sample) of every program
  for (size_t i = 0; i < tasks.size(); ++i) {
    for (size_t j = 0; j < by_task[i].size(); ++j) {
      programs.push_back(assemble_program(tasks[i], by_task[i][j]));
      origin.emplace_back(i, j);
    }
  }
  SandboxLimits limits;
  limits.wall_seconds = o.timeout_s;
  limits.cpu_seconds = o.timeout_s;
  std::vector<SandboxResult> results;
  results.reserve(programs.size());
  const auto ts0 = std::chrono::steady_clock::now();
  {
    std::optional<Progress> progress;
    if (!o.json) progress.emplace("sandbox", static_cast<int64_t>(programs.size()), "programs");
    const size_t chunk = static_cast<size_t>(o.workers) * 16;  // progress between chunks; workers stay busy within
    for (size_t b = 0; b < programs.size(); b += chunk) {
      std::vector<std::string> part(programs.begin() + b, programs.begin() + std::min(programs.size(), b + chunk));
      for (auto& r : run_python_many(part, limits, o.workers)) results.push_back(std::move(r));
      if (progress) progress->update(static_cast<int64_t>(results.size()));
    }
    if (progress) progress->finish();
  }
  const double sandbox_s = seconds_since(ts0);

  // --- scores ---
  std::vector<std::pair<int, int>> nc(tasks.size(), {0, 0});
  std::map<std::string, int64_t> status_counts;
  for (size_t p = 0; p < results.size(); ++p) {
    auto& [n, c] = nc[origin[p].first];
    ++n;
    if (results[p].status == SandboxStatus::ok) ++c;
    status_counts[to_string(results[p].status)]++;
  }
  int n_min = nc.empty() ? 0 : nc.front().first;  // pass@k is reported for k <= every task's n
  for (auto [n, c] : nc) n_min = std::min(n_min, n);
  std::vector<int> ks;
  for (int k : {1, 10}) {
    if (k <= n_min) ks.push_back(k);
  }
  auto key = [](int k) { return "pass@" + std::to_string(k); };

  // breakdown by category and family, when every task has metadata
  std::map<std::string, CodeTaskMeta> meta;
  const std::filesystem::path meta_file = o.meta.empty() ? default_code_tasks_dir() / "code_meta.jsonl" : o.meta;
  if (!o.meta.empty() || std::filesystem::exists(meta_file)) meta = load_code_meta(meta_file);
  bool have_meta = !meta.empty();
  for (const auto& t : tasks) have_meta = have_meta && meta.count(t.task_id);
  std::map<std::string, std::vector<std::pair<int, int>>> by_category, by_family;
  if (have_meta) {
    for (size_t i = 0; i < tasks.size(); ++i) {
      by_category[meta.at(tasks[i].task_id).category].push_back(nc[i]);
      by_family[meta.at(tasks[i].task_id).family].push_back(nc[i]);
    }
  }

  Json j;
  j["task"] = "code";
  j["task_file"] = task_file.string();
  j["source"] = source;
  j["tasks"] = tasks.size();
  j["samples_per_task"] = n_min;
  if (!o.checkpoint.empty()) j["temperature"] = o.temperature;
  for (int k : ks) j[key(k)] = mean_pass_at_k(nc, k);
  auto group_json = [&](const std::map<std::string, std::vector<std::pair<int, int>>>& groups) {
    Json g = Json::object();
    for (const auto& [name, v] : groups) {
      Json e{{"tasks", v.size()}};
      for (int k : ks) e[key(k)] = mean_pass_at_k(v, k);
      g[name] = e;
    }
    return g;
  };
  if (have_meta) {
    j["by_category"] = group_json(by_category);
    j["by_family"] = group_json(by_family);
  }
  j["status_counts"] = status_counts;
  j["programs"] = programs.size();
  j["generation_seconds"] = gen_s;
  j["sandbox_seconds"] = sandbox_s;
  j["workers"] = o.workers;
  j["sandbox"] = sandbox_isolation().variant;

  if (!o.out.empty()) {
    std::string lines;
    for (size_t i = 0; i < tasks.size(); ++i) {
      Json t;
      t["task_id"] = tasks[i].task_id;
      if (have_meta) {
        t["family"] = meta.at(tasks[i].task_id).family;
        t["category"] = meta.at(tasks[i].task_id).category;
      }
      t["n"] = nc[i].first;
      t["c"] = nc[i].second;
      for (int k : ks) t[key(k)] = pass_at_k(nc[i].first, nc[i].second, k);
      Json samples = Json::array();
      for (size_t p = 0; p < results.size(); ++p) {
        if (origin[p].first != i) continue;
        const SandboxResult& r = results[p];
        Json s{{"completion", by_task[i][origin[p].second]}, {"status", to_string(r.status)}, {"wall_s", r.wall_s}};
        if (r.status != SandboxStatus::ok) {
          // the last line of stderr says why (AssertionError, SyntaxError, ...)
          std::string err = r.stderr_text;
          while (!err.empty() && err.back() == '\n') err.pop_back();
          const size_t nl = err.rfind('\n');
          s["error"] = nl == std::string::npos ? err : err.substr(nl + 1);
        }
        samples.push_back(s);
      }
      t["samples"] = samples;
      lines += t.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    }
    write_file_atomic(o.out, lines);
  }

  if (o.json) {
    std::printf("%s\n", j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("code benchmark: %zu tasks (%s), %d sample(s) each, from %s\n", tasks.size(), task_file.c_str(), n_min,
              source.c_str());
  for (int k : ks) std::printf("  %-8s %6.2f%%\n", key(k).c_str(), 100.0 * mean_pass_at_k(nc, k));
  auto print_groups = [&](const char* title, const std::map<std::string, std::vector<std::pair<int, int>>>& groups) {
    std::printf("%s:\n", title);
    for (const auto& [name, v] : groups) {
      std::printf("  %-22s %4zu tasks", name.c_str(), v.size());
      for (int k : ks) std::printf("  %s %6.2f%%", key(k).c_str(), 100.0 * mean_pass_at_k(v, k));
      std::printf("\n");
    }
  };
  if (have_meta) {
    print_groups("by category", by_category);
    print_groups("by family", by_family);
  }
  std::printf("sandbox:");
  for (const auto& [s, n] : status_counts) std::printf(" %s %lld", s.c_str(), static_cast<long long>(n));
  std::printf("\nwall time: generation %.1f s, sandbox %.1f s (%zu programs, %d workers, isolation %s)\n", gen_s,
              sandbox_s, programs.size(), o.workers, sandbox_isolation().variant.c_str());
  if (!o.out.empty()) std::printf("per-task results written to %s\n", o.out.c_str());
  return 0;
}

// Per-question results of a VQA bench as JSONL, written atomically.
void write_questions(const std::filesystem::path& path, const std::vector<QuestionResult>& qs) {
  std::string lines;
  for (const QuestionResult& q : qs) {
    lines += Json{{"image", q.image}, {"type", q.type}, {"question", q.question}, {"answer", q.answer},
                  {"prediction", q.prediction}, {"correct", q.correct()}}.dump() + "\n";
  }
  write_file_atomic(path, lines);
}

// fashion-vqa / med-vqa: exact-match accuracy per question type on the test split. ann/qann score
// the checkpoint with the scorer of `spikefm eval` (a --qann checkpoint fake-quantized); snn runs a
// converted model (`spikefm convert` output) through the event-driven engine as `spikefm simulate`
// does, beside the QANN it came from on the same questions, and adds spikes and SOPs per question.
int bench_vqa(const BenchOptions& o) {
  if (!o.completions.empty() || !o.tasks.empty()) {
    throw Error("bench --task " + o.task, "--completions and --tasks apply to --task code",
                "pass --checkpoint M.h5 (a model trained on " + o.task + ")");
  }
  if (o.checkpoint.empty()) throw Error("bench --task " + o.task, "no model given", "pass --checkpoint M.h5");
  Json j{{"task", o.task}, {"backend", o.backend}, {"checkpoint", o.checkpoint.string()}};
  std::vector<std::string> type_names;
  std::vector<int64_t> type_n;
  std::vector<double> type_accuracy;
  std::vector<QuestionResult> questions;
  std::string headline;
  if (o.backend == "snn") {
    SimulateOptions so;
    so.snn = o.checkpoint;
    so.task = o.task;
    so.limit = o.limit;
    so.timesteps = o.timesteps;
    so.until_quiet = o.until_quiet;
    so.keep_questions = !o.out.empty();
    so.progress = !o.json;
    SimulateReport r = simulate_vqa(so);
    type_names = r.type_names;
    type_n = r.type_n;
    for (size_t t = 0; t < r.type_n.size(); ++t) {
      type_accuracy.push_back(r.type_n[t] ? static_cast<double>(r.type_correct[t]) / r.type_n[t] : 0.0);
    }
    questions = std::move(r.questions);
    j["split"] = r.split;
    j["neuron"] = r.neuron;
    j["timesteps"] = r.timesteps;
    j["until_quiet"] = r.until_quiet;
    j["n"] = r.n;
    j["correct"] = std::accumulate(r.type_correct.begin(), r.type_correct.end(), int64_t{0});
    j["accuracy"] = r.accuracy;
    j["qann_accuracy"] = r.qann_accuracy;
    Json qann_types = Json::object();
    for (size_t t = 0; t < r.type_n.size(); ++t) {
      qann_types[r.type_names[t]] = r.type_n[t] ? static_cast<double>(r.type_qann_correct[t]) / r.type_n[t] : 0.0;
    }
    j["qann_accuracy_by_type"] = qann_types;
    j["agreement"] = r.agreement;
    j["max_abs_dlogit"] = r.max_abs_dlogit;
    j["spikes_per_question"] = r.spikes;
    j["sops_per_question"] = r.sops;
    j["dense_macs_per_question"] = r.dense_macs;
    j["seconds"] = r.snn_seconds;
    j["qann_seconds"] = r.qann_seconds;
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s %s split, SNN (%s neurons, T = %d%s; snn backend): exact-match accuracy %.2f%% (%lld), QANN %.2f%%, "
                  "answers agree on %.2f%%, max |dlogit| %.3g\nper question: %.0f spikes, %.0f SOPs, %.0f dense-unit MACs; wall time SNN %.1f s, "
                  "QANN %.1f s\n",
                  r.task.c_str(), r.split.c_str(), r.neuron.c_str(), r.timesteps, r.until_quiet ? " or until quiet" : "",
                  100 * r.accuracy, static_cast<long long>(r.n), 100 * r.qann_accuracy, 100 * r.agreement, r.max_abs_dlogit, r.spikes, r.sops, r.dense_macs,
                  r.snn_seconds, r.qann_seconds);
    headline = buf;
  } else {
    EvalOptions e;
    e.checkpoint = o.checkpoint;
    e.task = o.task;
    e.split = "test";
    e.limit = o.limit;
    e.keep_questions = !o.out.empty();
    e.progress = !o.json;
    EvalReport r = evaluate_vqa(e);
    type_names = r.type_names;
    type_n = r.type_n;
    type_accuracy = r.type_accuracy;
    questions = std::move(r.questions);
    j["model"] = r.model;
    j["split"] = r.split;
    j["n"] = r.n;
    j["correct"] = r.correct;
    j["accuracy"] = r.accuracy;
    j["zero_shot"] = r.zero_shot;
    j["seconds"] = r.seconds;
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s %s split, %s model (%s backend): exact-match accuracy %.2f%% (%lld/%lld) in %.1f s%s\n",
                  o.task.c_str(), r.split.c_str(), r.model.c_str(), o.backend.c_str(), 100 * r.accuracy,
                  static_cast<long long>(r.correct), static_cast<long long>(r.n), r.seconds,
                  r.zero_shot ? " (zero-shot: trained on another task)" : "");
    headline = buf;
  }
  Json types = Json::object();
  for (size_t t = 0; t < type_names.size(); ++t) types[type_names[t]] = {{"n", type_n[t]}, {"accuracy", type_accuracy[t]}};
  j["accuracy_by_type"] = types;
  if (!o.out.empty()) write_questions(o.out, questions);
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s", headline.c_str());
  for (size_t t = 0; t < type_names.size(); ++t) {
    std::printf("  %-12s %6.2f%%  (%lld)\n", type_names[t].c_str(), 100 * type_accuracy[t], static_cast<long long>(type_n[t]));
  }
  if (!o.out.empty()) std::printf("per-question results (%zu lines) written to %s\n", questions.size(), o.out.c_str());
  return 0;
}

int run_bench(const BenchOptions& o) {
  static const std::map<std::string, std::function<int(const BenchOptions&)>> benches = {
      {"code", bench_code},
      {"fashion-vqa", bench_vqa},
      {"med-vqa", bench_vqa},
  };
  auto it = benches.find(o.task);
  if (it == benches.end()) throw Error("bench --task " + o.task, "unknown task", "use code, fashion-vqa or med-vqa");
  if (o.backend != "snn" && (o.timesteps > 0 || o.until_quiet)) {
    throw Error("--timesteps/--until-quiet", "only apply to --backend snn",
                "drop them, or replay a converted model with --backend snn");
  }
  return it->second(o);
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = app.add_subcommand("bench", "Run a benchmark end to end (code: sample, execute in the sandbox, pass@k)");
  c->add_option("--task", o->task, "Benchmark: code (pass@k in the sandbox), fashion-vqa or med-vqa (accuracy per question type)")
      ->check(CLI::IsMember({"code", "fashion-vqa", "med-vqa"}))
      ->capture_default_str();
  c->add_option("--backend", o->backend, "Model backend: ann | qann | snn (code: ann; snn: --checkpoint is the .snn.h5 of spikefm convert)")
      ->check(CLI::IsMember({"ann", "qann", "snn"}))
      ->capture_default_str();
  c->add_option("--checkpoint", o->checkpoint, "Model to sample (code: from spikefm train --task code)");
  c->add_option("--tasks", o->tasks, "Task file (HumanEval JSONL; default: the shipped code_test.jsonl)");
  c->add_option("--completions", o->completions, "Score these completions ({task_id, completion} JSONL) instead of a model");
  c->add_option("--samples", o->samples, "Samples per task (n of pass@k)")->check(CLI::Range(1, 1000))->capture_default_str();
  c->add_option("--temperature", o->temperature, "Sampling temperature (0 = greedy)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--max-new-tokens", o->max_new_tokens, "Longest completion in tokens")->check(CLI::Range(1, 4096))->capture_default_str();
  c->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  c->add_option("--limit", o->limit, "Only the first N tasks (code) or questions (vqa) (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--workers", o->workers, "Parallel sandbox runs")->check(CLI::Range(1, kSandboxMaxConcurrentRuns))->capture_default_str();
  c->add_option("--timeout", o->timeout_s, "Wall-clock and CPU limit per program, seconds")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--threads", o->threads, "libtorch threads for sampling (0 = all cores)")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--timesteps", o->timesteps, "snn: timesteps T per inference (0 = the file's default)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_flag("--until-quiet", o->until_quiet, "snn: run every inference until no neuron spikes (exact neurons)");
  c->add_option("--meta", o->meta, "Task metadata for the breakdown (default: the shipped code_meta.jsonl)");
  c->add_option("--out", o->out, "Per-task (code) or per-question (vqa) results, JSONL (written atomically)");
  c->add_option("--completions-out", o->completions_out, "Write the sampled completions (HumanEval JSONL)");
  c->add_flag("--json", o->json, "Print the summary as one JSON object on stdout (no progress)");
  return [o] {
    if (o->json) Progress::set_enabled(false);
    return run_bench(*o);
  };
}

}  // namespace spikefm::cli
