#include "convert/mlp_to_nir.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <sstream>
#include <thread>

#include "ann_ref/mlp_classifier.h"
#include "common/error.h"
#include "common/progress.h"
#include "snn/nir_sim.h"

namespace spikefm {

namespace {

void check_timesteps(int timesteps, const std::string& what) {
  if (timesteps < 1) {
    throw Error(what, "timesteps must be >= 1 (got " + std::to_string(timesteps) + ")", "pass --timesteps T");
  }
}

std::vector<double> to_doubles(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

std::string fmt(double v, int precision = 3) {
  std::ostringstream s;
  s.precision(precision);
  s << v;
  return s.str();
}

}  // namespace

NirCountError nir_if_count_error(int timesteps, int levels) {
  check_timesteps(timesteps, "NIR count error");
  if (levels < 1) throw Error("NIR count error", "levels must be >= 1 (got " + std::to_string(levels) + ")");
  // In units of θ: V = T, constant current u + 1/2 per step, reset to 0 (the exported if1), then the
  // clip at L.
  const int points = levels * 100 + 1;
  NirCountError e;
  for (int i = 0; i < points; ++i) {
    const double u = i / 100.0;
    const double n = std::clamp(std::floor(u + 0.5), 0.0, static_cast<double>(levels));
    double v = 0;
    int c = 0;
    for (int s = 0; s < timesteps; ++s) {
      v += u + 0.5;
      if (v > timesteps) {
        ++c;
        v = 0;
      }
    }
    const double d = std::abs(std::min(c, levels) - n);  // clip{k} keeps the first L spikes
    e.match_fraction += d == 0;
    e.mean_abs += d;
    e.max_abs = std::max(e.max_abs, d);
  }
  e.match_fraction /= points;
  e.mean_abs /= points;
  return e;
}

snn::NirGraph mlp_to_nir(const std::filesystem::path& mlp_checkpoint, int timesteps) {
  const std::string ctx = "exporting " + mlp_checkpoint.string() + " to NIR";
  check_timesteps(timesteps, ctx);
  snn::NirGraph g;
  try {
    const MlpCheckpoint ck = load_mlp_checkpoint(mlp_checkpoint);
    const float T = static_cast<float>(timesteps);
    const int L = ck.config.levels;
    g.add_node("input", snn::NirNode::input({ck.layers.front().in}));
    std::vector<std::string> prev = {"input"};  // nodes whose (summed) outputs feed the next Affine
    float prev_spike_value = 0;  // V_{k-1} = activation carried by one spike of the layer below; 0: pixels
    for (size_t k = 0; k < ck.layers.size(); ++k) {
      const MlpLayerWeights& w = ck.layers[k];
      // Computed in float32 (the precision the file stores), so the graph equals what read_nir returns.
      std::vector<float> weight = w.weight;  // (out, in)
      if (prev_spike_value != 0) {
        for (float& x : weight) x *= prev_spike_value;
      }
      std::vector<float> bias = w.bias;  // (out,)
      float theta = 0;
      if (w.has_act) {
        theta = w.lambda / static_cast<float>(L);
        for (float& b : bias) b += 0.5f * theta;
      }
      snn::NirNode& aff = g.add_node(w.name, snn::NirNode::affine({w.out, w.in}, to_doubles(weight), to_doubles(bias)));
      aff.metadata["spikefm_role"] = snn::NirParam::of_string(
          w.has_act ? (k == 0 ? "W x + b + theta/2; x = pixel/255 at every step"
                              : "(T*theta_prev) W y + b + theta/2; y = clipped spikes of the layer below")
                    : (k == 0 ? "W x + b; x = pixel/255 at every step: the logits at every step"
                              : "(T*theta_prev) W y + b; mean over T steps = the QANN logits"));
      for (const auto& p : prev) g.add_edge(p, w.name);
      prev = {w.name};
      if (!w.has_act) continue;

      const std::string id = std::to_string(k + 1), if_name = "if" + id, clip_name = "clip" + id,
                        neg_name = "neg" + id;
      const size_t N = static_cast<size_t>(w.out);
      const float v_threshold = T * theta;
      snn::NirNode& neuron = g.add_node(
          if_name, snn::NirNode::if_neuron({w.out}, std::vector<double>(N, 1.0), std::vector<double>(N, v_threshold)));
      neuron.metadata["qann_lambda"] = snn::NirParam::of_floats({}, {w.lambda});
      neuron.metadata["qann_theta"] = snn::NirParam::of_floats({}, {theta});
      neuron.metadata["qann_levels"] = snn::NirParam::of_ints({}, {L});
      neuron.metadata["spikefm_role"] = snn::NirParam::of_string(
          "rate code of the QANN layer: v_threshold = T*theta, reset to v_reset = 0 (NIR IF), spike count over T "
          "steps ~ the unclipped QANN count floor(z/theta + 1/2)");
      // The clip at L: clip{k} counts the spikes of if{k} and passes on every one after the L-th
      // (threshold L + 1/2, reset to L); neg{k} subtracts them, so fc{k+1} sees at most L spikes.
      snn::NirNode& clip = g.add_node(
          clip_name, snn::NirNode::if_neuron({w.out}, std::vector<double>(N, 1.0), std::vector<double>(N, L + 0.5),
                                             std::vector<double>(N, static_cast<double>(L))));
      clip.metadata["spikefm_role"] = snn::NirParam::of_string(
          "QCFS clip at L levels: input = spikes of " + if_name + "; fires on each of its spikes after the L-th "
          "(v_threshold = L + 1/2, v_reset = L), subtracted by " + neg_name);
      g.add_node(neg_name, snn::NirNode::scale({w.out}, std::vector<double>(N, -1.0)));
      g.add_edge(w.name, if_name);
      g.add_edge(if_name, clip_name);
      g.add_edge(clip_name, neg_name);
      prev = {if_name, neg_name};
      prev_spike_value = v_threshold;
    }
    g.add_node("output", snn::NirNode::output({ck.layers.back().out}));
    for (const auto& p : prev) g.add_edge(p, "output");

    const NirCountError ce = nir_if_count_error(timesteps, L);
    auto& md = g.metadata;
    md["producer"] = snn::NirParam::of_string("spikefm 0.1.0 mlp_to_nir");
    md["source_checkpoint"] = snn::NirParam::of_string(mlp_checkpoint.filename().string());
    md["model"] = snn::NirParam::of_string("MLP " + ck.config.describe() + ", QCFS hidden activations, L = " +
                                           std::to_string(L));
    md["dt"] = snn::NirParam::of_floats({}, {1.0});
    md["timesteps"] = snn::NirParam::of_ints({}, {timesteps});
    md["input_encoding"] = snn::NirParam::of_string(
        "rate coding by constant current: the input node receives pixel/255 (float32, the row-major image) at "
        "every one of the T = timesteps steps");
    md["neuron_dynamics"] = snn::NirParam::of_string(
        "discrete IF (NIR.md 6, r = 1, dt = 1): v <- v + I; spike if v > v_threshold; then v <- v_reset (0 for "
        "if<k>, L for clip<k>): a reset to a value, not by subtraction; v = 0 at the start of each input");
    md["qann_mapping"] = snn::NirParam::of_string(
        "hidden layer k of the QANN h = theta*clip(floor(z/theta + 1/2), 0, L), theta = lambda/L: v_threshold = "
        "T*theta; affine bias = b + theta/2 (rounding offset spread over T steps); the next affine weight = "
        "T*theta*W (one spike carries v_threshold of activation); spike count over T steps ~ QANN count; the clip at "
        "L levels is node clip<k> (IF, v_threshold = L + 1/2, v_reset = L, fed by if<k>) subtracted through "
        "neg<k> (Scale -1): the next layer receives the first L spikes of each neuron");
    md["readout"] = snn::NirParam::of_string(
        "logits ~ mean over the T steps of the output node (its affine bias is added every step); class = argmax "
        "of the summed output");
    md["qann_deviation"] = snn::NirParam::of_string(
        "with the reset to zero the first hidden layer passes min(floor(T/(floor(T/(u+1/2))+1)), L) spikes over T "
        "steps for u = z/theta, instead of the QANN count clip(floor(u+1/2), 0, L): equal for " + fmt(100.0 * ce.match_fraction) +
        " % of u in [0, L] at this T, error at most " + fmt(ce.max_abs) + " level(s) (mean " + fmt(ce.mean_abs) +
        "); exactly L above the clip when T >= L (when T < L the clip is at T levels); deeper hidden layers see "
        "spike trains, not constant currents, so their counts match only on average; the clip neurons' nonzero "
        "v_reset needs NIR readers >= 1.0.6");
    md["qann_count_match_fraction"] = snn::NirParam::of_floats({}, {ce.match_fraction});
    md["qann_count_max_error_levels"] = snn::NirParam::of_floats({}, {ce.max_abs});
    snn::check_nir_graph(g, "exported MLP graph");
  } catch (const Error& e) {
    throw e.with_context(ctx);
  }
  return g;
}

NirRunReport simulate_nir_classifier(const snn::NirGraph& graph, const ImageSet& images, int timesteps,
                                     int64_t limit, bool progress) {
  const std::string what = "simulating the NIR classifier";
  check_timesteps(timesteps, what);
  if (limit < 0) throw Error(what, "limit must be >= 0 (got " + std::to_string(limit) + ")");
  std::optional<snn::NirSimulator> probe;
  try {
    probe.emplace(graph);
  } catch (const Error& e) {
    throw e.with_context(what);
  }
  const int64_t px = images.rows * images.cols;
  if (probe->input_size() != px) {
    throw Error(what, "the Input node has " + std::to_string(probe->input_size()) + " elements " +
                          shape_str(probe->input_shape()) + ", the images have " + std::to_string(px),
                "export the graph for " + std::to_string(images.rows) + "x" + std::to_string(images.cols) + " images");
  }
  if (probe->output_size() != kFashionClasses) {
    throw Error(what, "the Output node has " + std::to_string(probe->output_size()) + " elements, a classifier needs " +
                          std::to_string(kFashionClasses));
  }
  const int64_t n = limit > 0 ? std::min(limit, images.n) : images.n;

  NirRunReport rep;
  rep.timesteps = timesteps;
  rep.n = n;
  rep.predictions.assign(static_cast<size_t>(n), -1);
  rep.outputs.assign(static_cast<size_t>(n * kFashionClasses), 0.0f);
  std::vector<snn::NirNodeStats> totals;  // summed over images, execution order

  const int threads = static_cast<int>(std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, std::max<int64_t>(1, n)));
  std::vector<std::vector<snn::NirNodeStats>> partial(static_cast<size_t>(threads));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  std::atomic<int64_t> done{0};
  std::atomic<bool> failed{false};
  auto work = [&](int t) {
    try {
      snn::NirSimulator sim(graph);
      std::vector<std::vector<float>> steps(static_cast<size_t>(timesteps), std::vector<float>(static_cast<size_t>(px)));
      std::vector<snn::NirNodeStats>& acc = partial[static_cast<size_t>(t)];
      for (int64_t i = t; i < n; i += threads) {
        const uint8_t* img = images.pixels.data() + i * px;
        for (int64_t j = 0; j < px; ++j) steps[0][static_cast<size_t>(j)] = static_cast<float>(img[j]) * kMlpInputScale;
        for (size_t s = 1; s < steps.size(); ++s) steps[s] = steps[0];
        const snn::NirRunResult r = sim.run(steps);
        std::vector<double> sum(static_cast<size_t>(kFashionClasses), 0.0);
        for (const auto& row : r.output) {
          for (size_t c = 0; c < sum.size(); ++c) sum[c] += row[c];
        }
        rep.predictions[static_cast<size_t>(i)] = static_cast<int>(std::max_element(sum.begin(), sum.end()) - sum.begin());
        for (size_t c = 0; c < sum.size(); ++c) {
          rep.outputs[static_cast<size_t>(i) * sum.size() + c] = static_cast<float>(sum[c] / timesteps);
        }
        if (acc.empty()) acc = r.nodes;
        else {
          for (size_t k = 0; k < acc.size(); ++k) {
            acc[k].spikes += r.nodes[k].spikes;
            acc[k].neuron_updates += r.nodes[k].neuron_updates;
            acc[k].input_events += r.nodes[k].input_events;
            acc[k].synaptic_ops += r.nodes[k].synaptic_ops;
          }
        }
        ++done;
      }
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
      failed = true;
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  {
    std::optional<Progress> bar;
    if (progress) bar.emplace("NIR simulation T=" + std::to_string(timesteps), n, "img");
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
    if (bar) {
      // The main thread draws progress while the workers run, then does its own share.
      std::thread self(work, 0);
      while (done.load() < n && !failed.load()) {
        bar->update(done.load());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      self.join();
      bar->finish();
    } else {
      work(0);
    }
    for (auto& th : pool) th.join();
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& e : errors) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const Error& err) {
        throw err.with_context(what);
      }
    }
  }

  for (const auto& acc : partial) {
    if (acc.empty()) continue;
    if (totals.empty()) totals = acc;
    else {
      for (size_t k = 0; k < totals.size(); ++k) {
        totals[k].spikes += acc[k].spikes;
        totals[k].neuron_updates += acc[k].neuron_updates;
        totals[k].input_events += acc[k].input_events;
        totals[k].synaptic_ops += acc[k].synaptic_ops;
      }
    }
  }
  const double per = n > 0 ? 1.0 / static_cast<double>(n) : 0.0;
  for (const auto& s : totals) {
    NirNodeActivity a;
    a.name = s.name;
    a.type = s.type;
    a.size = s.size;
    a.spikes = static_cast<double>(s.spikes) * per;
    a.neuron_updates = static_cast<double>(s.neuron_updates) * per;
    a.input_events = static_cast<double>(s.input_events) * per;
    a.synaptic_ops = static_cast<double>(s.synaptic_ops) * per;
    rep.spikes += a.spikes;
    rep.neuron_updates += a.neuron_updates;
    rep.input_events += a.input_events;
    rep.synaptic_ops += a.synaptic_ops;
    rep.nodes.push_back(a);
  }
  for (int64_t i = 0; i < n; ++i) rep.correct += rep.predictions[static_cast<size_t>(i)] == images.labels[static_cast<size_t>(i)];
  rep.accuracy = n > 0 ? static_cast<double>(rep.correct) / static_cast<double>(n) : 0.0;
  return rep;
}

std::vector<float> run_nir_file(const std::filesystem::path& path, const std::vector<float>& input, int timesteps) {
  const std::string ctx = "running NIR file " + path.string();
  try {
    check_timesteps(timesteps, "NIR run");
    const snn::NirGraph g = snn::read_nir(path);
    snn::NirSimulator sim(g);
    if (static_cast<int64_t>(input.size()) != sim.input_size()) {
      throw Error("input", "has " + std::to_string(input.size()) + " values, the Input node " +
                               shape_str(sim.input_shape()) + " takes " + std::to_string(sim.input_size()),
                  "pass " + std::to_string(sim.input_size()) + " values (row-major)");
    }
    for (size_t i = 0; i < input.size(); ++i) {
      if (!std::isfinite(input[i])) {
        throw Error("input", "value " + std::to_string(i) + " is " + std::to_string(input[i]), "pass finite values");
      }
    }
    const snn::NirRunResult r = sim.run(std::vector<std::vector<float>>(static_cast<size_t>(timesteps), input));
    std::vector<double> sum(static_cast<size_t>(sim.output_size()), 0.0);
    for (const auto& row : r.output) {
      for (size_t c = 0; c < sum.size(); ++c) sum[c] += row[c];
    }
    std::vector<float> mean(sum.size());
    for (size_t c = 0; c < sum.size(); ++c) mean[c] = static_cast<float>(sum[c] / timesteps);
    return mean;
  } catch (const Error& e) {
    throw e.with_context(ctx);
  }
}

}  // namespace spikefm
