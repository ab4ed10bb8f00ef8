#include "convert/simulate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "ann_ref/checkpoint.h"
#include "ann_ref/qann.h"
#include "ann_ref/vqa_batch.h"
#include "ann_ref/vqa_task.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/h5_file.h"
#include "common/progress.h"
#include "decoding/token_model.h"
#include "snn/snn_token_model.h"

namespace spikefm {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Greedy answers of the integer QANN for a batch of images asked one prompt (batched, KV cache).
std::vector<std::vector<int>> qann_greedy(QannRef& ref, QannCache& primed, const std::vector<int>& prompt, int max_new) {
  const int64_t B = primed.nk.empty() ? 0 : primed.nk[0].size(0);
  QannCache cache = primed;
  torch::Tensor p = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), torch::kInt64);
  torch::Tensor logits = ref.decode(p.unsqueeze(0).expand({B, p.size(0)}).contiguous(), cache).select(1, p.size(0) - 1);
  std::vector<std::vector<int>> out(B);
  std::vector<bool> done(B, false);
  for (int step = 0; step < max_new; ++step) {
    torch::Tensor next = logits.argmax(-1);
    auto a = next.accessor<int64_t, 1>();
    bool all = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      if (a[b] == WordTokenizer::kEos) done[b] = true;
      else out[b].push_back(static_cast<int>(a[b]));
      all &= done[b];
    }
    const int64_t text = cache.len - ref.model()->config().num_patches();
    if (all || step + 1 == max_new || text >= ref.model()->config().max_text_len) break;
    logits = ref.decode(next.view({B, 1}), cache).select(1, 0);
  }
  return out;
}

// One traced spiking run: counts per step and node.
struct TracedRun {
  std::string graph;
  int64_t sample = 0;
  int question = 0, token = 0;
  std::vector<std::vector<snn::LayerStats>> steps;
};

void write_trace(const std::filesystem::path& path, const snn::SnnTokenModel& m, const std::vector<TracedRun>& runs,
                 const SimulateOptions& o) {
  AtomicFile out(path);
  {
    H5File f = H5File::create(out.temp_path());
    f.set_deflate(4);
    f.set_attr("/", "format_version", int64_t{1});
    f.set_attr("/", "kind", std::string("spikefm-trace"));
    f.set_attr("/", "snn", o.snn.string());
    for (const snn::GraphEngine* e : {&m.encoder(), &m.decoder()}) {
      std::vector<std::string> names;
      for (const auto& n : e->graph().nodes) names.push_back(n.name);
      f.write_strings("/nodes/" + e->graph().name, names, {static_cast<int64_t>(names.size())});
    }
    for (size_t k = 0; k < runs.size(); ++k) {
      const TracedRun& r = runs[k];
      const std::string g = "/runs/" + std::to_string(k);
      const int64_t S = static_cast<int64_t>(r.steps.size()), N = S ? static_cast<int64_t>(r.steps[0].size()) : 0;
      std::vector<int64_t> pos(S * N), neg(S * N), sops(S * N), dense(S * N);
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t n = 0; n < N; ++n) {
          const auto& st = r.steps[s][n];
          pos[s * N + n] = st.spikes_pos;
          neg[s * N + n] = st.spikes_neg;
          sops[s * N + n] = st.sops;
          dense[s * N + n] = st.dense_ops + st.dense_macs;
        }
      }
      f.write(g + "/spikes_pos", pos.data(), {S, N});
      f.write(g + "/spikes_neg", neg.data(), {S, N});
      f.write(g + "/sops", sops.data(), {S, N});
      f.write(g + "/dense_ops", dense.data(), {S, N});
      f.set_attr(g, "graph", r.graph);
      f.set_attr(g, "sample", r.sample);
      f.set_attr(g, "question", int64_t{r.question});
      f.set_attr(g, "token", int64_t{r.token});
    }
    f.close();
  }
  out.commit();
}

}  // namespace

SimulateReport simulate_vqa(const SimulateOptions& o) {
  if (!o.task.empty() && o.task != "fashion-vqa" && o.task != "med-vqa") {
    throw Error("--task " + o.task, "a spiking MFM runs a VQA task", "use fashion-vqa or med-vqa, or leave --task out");
  }
  if (o.limit < 0) throw Error("--limit", "must be >= 0");
  snn::SnnModel sm = snn::SnnModel::load(o.snn);
  const std::filesystem::path qpath = o.qann_checkpoint.empty() ? std::filesystem::path(sm.source_checkpoint) : o.qann_checkpoint;
  if (!std::filesystem::exists(qpath)) {
    throw Error("finding the QANN for " + o.snn.string(), "checkpoint " + qpath.string() + " does not exist",
                "pass it with --qann");
  }
  Checkpoint ck = load_checkpoint(qpath);
  if (ck.vocab != sm.vocab) throw Error("--qann " + qpath.string(), "its vocabulary differs from the spiking model's");
  // The task is the one the QANN was trained on; an explicit --task must agree with it.
  const std::string task_name = o.task.empty() ? ck.meta.task : o.task;
  if (task_name != ck.meta.task) {
    throw Error("--task " + o.task, "the spiking model " + o.snn.string() + " was converted from a " + ck.meta.task +
                " model (" + qpath.string() + ")", "use --task " + ck.meta.task + ", or leave --task out");
  }
  QannRef ref(ck.model, read_quant_store(H5File::open(qpath)));  // a compressed QANN keeps its codes
  WordTokenizer tok(sm.vocab);
  // Fashion carves its val split with the training seed; Med-VQA is fixed (vqa_task.h).
  std::unique_ptr<VqaTask> task = make_vqa_task(task_name, o.data_dir, static_cast<uint64_t>(sm.train_seed));
  if (task->tokenizer().vocab() != sm.vocab) {
    throw Error("simulating " + o.snn.string() + " on " + task_name, "its vocabulary is not the task's",
                "convert a QANN trained on " + task_name);
  }
  const ImageSet& set = task->images(o.split);
  if (set.rows != sm.image_size || set.cols != sm.image_size) {
    throw Error("simulating " + o.snn.string() + " on " + task_name,
                "it reads " + std::to_string(sm.image_size) + " px images, the task has " + std::to_string(set.rows));
  }

  snn::RunOptions run;
  run.timesteps = o.timesteps > 0 ? o.timesteps : sm.default_timesteps;
  run.until_quiet = o.until_quiet;
  snn::SnnTokenModel snn_model(sm, run);
  std::vector<TracedRun> traced;
  const bool tracing = !o.trace.empty();

  SimulateReport rep;
  rep.task = task_name;
  rep.split = o.split;
  rep.neuron = sm.neuron;
  rep.timesteps = run.timesteps;
  rep.until_quiet = run.until_quiet;
  // Every (image, type) of the split, image-major, types ascending (the canonical question each);
  // --limit keeps the first N.
  std::vector<TaskSample> samples = task->samples(o.split);
  if (o.limit > 0 && static_cast<int64_t>(samples.size()) > o.limit) samples.resize(static_cast<size_t>(o.limit));
  const int64_t total = static_cast<int64_t>(samples.size());
  const int n_types = task->num_types();
  std::vector<std::vector<int>> prompts(static_cast<size_t>(n_types));
  for (int q = 0; q < n_types; ++q) prompts[q] = prompt_tokens(tok, task->paraphrases(q)[0]);

  int64_t correct = 0, qann_correct = 0, agree = 0;
  rep.type_names = task->type_names();
  rep.type_n.assign(n_types, 0);
  rep.type_correct.assign(n_types, 0);
  rep.type_qann_correct.assign(n_types, 0);
  std::optional<Progress> progress;
  if (o.progress) progress.emplace("simulate", total, "questions");
  torch::NoGradGuard ng;
  const int64_t batch = 64;
  for (size_t s0 = 0; s0 < samples.size();) {
    // The samples of up to `batch` consecutive images.
    const int64_t i0 = samples[s0].image;
    size_t s1 = s0;
    while (s1 < samples.size() && samples[s1].image < i0 + batch) ++s1;
    const int64_t i1 = samples[s1 - 1].image + 1;
    std::vector<int64_t> idx;
    for (int64_t i = i0; i < i1; ++i) idx.push_back(i);
    torch::Tensor images = image_batch(set, idx);  // (B, S, S)
    // --- QANN: batched greedy generation of every type asked in the batch (timed) ---
    auto tq = Clock::now();
    QannCache primed;
    ref.prime(ref.image_prefix(images), primed);
    std::vector<std::vector<std::vector<int>>> qann_answers(static_cast<size_t>(n_types));  // [type][image - i0]
    for (size_t k = s0; k < s1; ++k) {
      auto& a = qann_answers[samples[k].type];
      if (a.empty()) a = qann_greedy(ref, primed, prompts[samples[k].type], o.max_new_tokens);
    }
    rep.qann_seconds += since(tq);
    // --- SNN: one sample at a time through the TokenModel interface (timed) ---
    for (size_t s = s0; s < s1; ++s) {
      const int64_t i = samples[s].image;
      const int q = samples[s].type;
      std::span<const float> px(images[i - i0].data_ptr<float>(), static_cast<size_t>(sm.image_size) * sm.image_size);
      const int64_t sample = static_cast<int64_t>(s);
      const bool trace_this = tracing && sample < o.trace_samples;
      snn_model.set_trace(trace_this);
      const int64_t enc_before = snn_model.encoder_steps();
      auto keep_trace = [&](int token) {
        if (!trace_this) return;
        if (snn_model.encoder_steps() != enc_before && token == 0) {
          traced.push_back({"encoder", sample, q, 0, snn_model.encoder().trace()});
        }
        traced.push_back({"decoder", sample, q, token, snn_model.decoder().trace()});
      };
      auto ts = Clock::now();
      std::vector<std::vector<float>> step_logits;
      std::vector<int> answer;
      step_logits.push_back(snn_model.begin(px, prompts[q]));
      keep_trace(0);
      rep.inferences++;
      for (int k = 0; k < o.max_new_tokens; ++k) {
        int next = decoding::argmax(step_logits.back());
        if (next == WordTokenizer::kEos) break;
        answer.push_back(next);
        if (k + 1 == o.max_new_tokens || snn_model.text_length() >= sm.max_text_len) break;
        step_logits.push_back(snn_model.append(next));
        keep_trace(k + 1);
        rep.inferences++;
      }
      rep.snn_seconds += since(ts);
      // --- compare: QANN logits teacher-forced on the SNN's tokens (not timed) ---
      std::vector<int64_t> seq(prompts[q].begin(), prompts[q].end());
      for (size_t k = 0; k + 1 < step_logits.size(); ++k) seq.push_back(answer[k]);
      QannCache one;
      one.nk.resize(primed.nk.size());
      one.nv.resize(primed.nv.size());
      for (size_t l = 0; l < primed.nk.size(); ++l) {
        one.nk[l] = primed.nk[l].narrow(0, i - i0, 1);
        one.nv[l] = primed.nv[l].narrow(0, i - i0, 1);
      }
      one.len = primed.len;
      torch::Tensor ql = ref.decode(torch::tensor(seq, torch::kInt64).unsqueeze(0), one).squeeze(0).contiguous();
      for (size_t k = 0; k < step_logits.size(); ++k) {
        const float* row = ql[static_cast<int64_t>(prompts[q].size() - 1 + k)].data_ptr<float>();
        for (size_t v = 0; v < step_logits[k].size(); ++v) {
          rep.max_abs_dlogit = std::max(rep.max_abs_dlogit, static_cast<double>(std::fabs(step_logits[k][v] - row[v])));
        }
      }
      const std::string want = task->answer(o.split, i, q);
      const std::string got = tok.decode(answer), qgot = tok.decode(qann_answers[q][i - i0]);
      correct += got == want;
      qann_correct += qgot == want;
      agree += got == qgot;
      rep.type_n[q]++;
      rep.type_correct[q] += got == want;
      rep.type_qann_correct[q] += qgot == want;
      if (o.keep_questions) {
        rep.questions.push_back({i, rep.type_names[q], task->paraphrases(q)[0], want, got});
      }
      rep.n++;
    }
    if (progress) {
      char extra[96];
      std::snprintf(extra, sizeof extra, "agreement %.4f, accuracy %.4f", static_cast<double>(agree) / rep.n,
                    static_cast<double>(correct) / rep.n);
      progress->update(rep.n, extra);
    }
    s0 = s1;
  }
  if (progress) progress->finish();
  if (rep.n == 0) throw Error("simulate", "no samples to run", "check --limit and --split");
  if (tracing) write_trace(o.trace, snn_model, traced, o);
  rep.accuracy = static_cast<double>(correct) / rep.n;
  rep.qann_accuracy = static_cast<double>(qann_correct) / rep.n;
  rep.agreement = static_cast<double>(agree) / rep.n;
  rep.steps_per_inference = static_cast<double>(snn_model.decoder_steps()) / std::max<int64_t>(1, rep.inferences);
  rep.unsettled_runs = snn_model.runs_unsettled();

  rep.totals.push_back({snn_model.encoder().graph().name, snn_model.encoder().stats(), snn_model.encoder().ann_work(),
                        snn_model.encoder_steps(), snn_model.encoder_runs()});
  rep.totals.push_back({snn_model.decoder().graph().name, snn_model.decoder().stats(), snn_model.decoder().ann_work(),
                        snn_model.decoder_steps(), snn_model.decoder_runs()});
  // --- activity per layer and per sample ---
  int64_t neurons_rows = 0, synapses = 0, linear_sops = 0;
  double total_spikes = 0;
  for (const snn::GraphEngine* eng : {&snn_model.encoder(), &snn_model.decoder()}) {
    const auto& g = eng->graph();
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      const auto& st = eng->stats()[k];
      const auto& node = g.nodes[k];
      LayerActivity la;
      la.graph = g.name;
      la.name = node.name;
      la.kind = snn::op_kind_name(node.kind);
      la.spikes = static_cast<double>(st.spikes_pos + st.spikes_neg) / rep.n;
      la.sops = static_cast<double>(st.sops) / rep.n;
      la.neuron_updates = static_cast<double>(st.neuron_updates) / rep.n;
      la.dense_ops = static_cast<double>(st.dense_ops) / rep.n;
      la.dense_macs = static_cast<double>(st.dense_macs) / rep.n;
      la.weight_bytes = static_cast<double>(st.weight_bytes_read) / rep.n;
      if (node.kind == snn::OpKind::linear) {
        la.synapses = static_cast<int64_t>(node.in) * node.cols;
        synapses += la.synapses;
        linear_sops += st.sops;
      }
      rep.spikes += la.spikes;
      rep.sops += la.sops;
      rep.neuron_updates += la.neuron_updates;
      rep.dense_ops += la.dense_ops;
      rep.dense_macs += la.dense_macs;
      rep.weight_bytes += la.weight_bytes;
      total_spikes += static_cast<double>(st.spikes_pos + st.spikes_neg);
      neurons_rows += st.neuron_updates;
      rep.layers.push_back(std::move(la));
    }
  }
  const double steps = std::max(1.0, rep.steps_per_inference);
  const double inferences = static_cast<double>(rep.inferences);
  rep.spikes_per_neuron = neurons_rows > 0 ? total_spikes / (static_cast<double>(neurons_rows) / steps) : 0.0;
  rep.sops_per_synapse = synapses > 0 ? static_cast<double>(linear_sops) / (static_cast<double>(synapses) * inferences) : 0.0;
  return rep;
}

}  // namespace spikefm
