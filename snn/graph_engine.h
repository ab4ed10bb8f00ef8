// The event-driven engine that runs a SpikingGraph (spiking_graph.h) timestep by timestep.
//
// State is integer wherever the method allows: spike counts S of every neuron, int32 accumulators of
// linear layers and of the two spike×spike products. Float values are recomputed from that state each
// step with the same float operations the quantized ANN uses (ann_ref/qann.h, common/dense_kernels.h),
// so when every neuron has settled the outputs equal the QANN's bit for bit (exact coding).
//
// One timestep, nodes in topological order (a spike reaches every later layer within the step):
//   linear:    acc[r, :] += s · q[:, i] for each spike (r, i, s) of its input      SOPs = out per spike
//   neuron:    X = value of its input; st_bif: S += sign(n* − S), n* = clip(floor(X/θ + 1/2), lo, hi)
//              burst: S += clip(n* − S, −B, B); if_rate: V += X_t − X_{t−1}, spike ±1 at V ≥ θ / V < 0
//   products:  ΔP = ΔS_q · S_k(t−1)ᵀ + S_q(t) · ΔS_kᵀ (SESA-style), each term driven by one side's
//              spikes; SOPs = visible partners per spike
//   dense:     LayerNorm / softmax recomputed on the rows whose input changed (dense-unit ops counted)
// ST-BIF in count form is the membrane rule of SpikeZIP-TF (V = θ/2 + X − θ·S fires +1 iff V ≥ θ and
// S < hi, −1 iff V < 0 and S > lo) evaluated without accumulating float round-off in V.
//
// Rows grow as tokens are appended (set_rows); state persists between runs, so a decoder runs only
// the new token's work once earlier rows have settled (the KV cache as spike counts). Shrinking the
// rows drops the state of the removed tokens (rollback), valid for causal graphs.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "snn/event_linear.h"
#include "snn/layer_stats.h"
#include "snn/spike_events.h"
#include "snn/spiking_graph.h"

namespace spikefm::snn {

struct RunOptions {
  int timesteps = 32;        // steps to run (rate coding: exactly this many)
  bool until_quiet = false;  // exact coding: stop at the first step without any spike
  int max_steps = 1024;      // bound for until_quiet
};

struct RunReport {
  int steps = 0;         // timesteps run
  bool settled = false;  // the last step emitted no spike (exact coding: outputs are final)
  int64_t spikes = 0;    // spike events in this run
};

class GraphEngine {
 public:
  explicit GraphEngine(SpikingGraph graph);  // validates the graph

  const SpikingGraph& graph() const { return g_; }
  void reset();               // all state to zero, no active rows
  int rows() const { return rows_; }
  void set_rows(int rows);    // grow (new rows start empty) or shrink (rollback)
  // Driver input of a pixel_input / row_input node; values: (cols). Marks the row as new input.
  void set_input(int node, int row, const float* values);

  RunReport run(const RunOptions& opts);

  // Value of a token-row node at `row` (cols entries). For rate coding this is (t + 1) × estimate.
  const float* value_row(int node, int row) const;
  // The output node's row as an estimate of the ANN value (rate coding divides by t + 1).
  std::vector<float> output_row(int row) const;
  int steps_in_last_run() const { return t_; }

  // Per node, accumulated over runs since the last reset_stats(); and per timestep of the last run
  // (totals over nodes).
  const std::vector<LayerStats>& stats() const { return stats_; }
  const std::vector<LayerStats>& step_stats() const { return step_stats_; }
  // The ANN-equivalent work of the rows computed by the runs since reset_stats(), per node
  // (layer_stats.h: AnnWork) — what the MAC-array baseline prices.
  const std::vector<AnnWork>& ann_work() const { return ann_; }
  void reset_stats();
  // With tracing on, run() also keeps per-node stats of every step of the last run:
  // trace()[step][node].
  void set_trace(bool on) { trace_on_ = on; }
  const std::vector<std::vector<LayerStats>>& trace() const { return trace_; }

 private:
  // Runtime state of one node. Storage rows: token nodes rows_cap; map nodes heads × rows_cap.
  struct NodeRt {
    int srows = 0, scols = 0;        // storage shape
    std::vector<float> value;        // (srows, scols)
    std::vector<int32_t> acc;        // linear: (rows_cap, groups, out); neuron: S; products: P or O
    std::vector<int32_t> target;     // st_bif / burst: n* per neuron
    std::vector<float> membrane, prev;  // if_rate: V and the last input X
    std::vector<int8_t> delta;       // neuron: spikes of this step (valid on ev_rows only)
    std::vector<int32_t> ev_rows;    // neuron: storage rows with a spike this step
    std::vector<uint8_t> pending;    // neuron: row not at its target yet
    std::vector<float> input;        // pixel_input / row_input: driver values
    std::unique_ptr<EventLinearI8> lin;  // linear: the event-driven kernel (weights transposed)
    SpikeEvents events;              // neuron: this step's spikes as (row, index, value) events
    SpikeEvents grouped;             // grouped linear: the input's events, row r → rows r·G + group
    std::vector<uint8_t> fresh;      // storage row must be (re)computed at the next step
  };
  void step_node(int idx, float k);
  void count_ann_work();  // the rows [ann_from_, rows_) of the run that just ended
  int row_count(const OpNode& n) const;  // rows of the node's storage that are active
  int row_index(const OpNode& n, int i) const;

  SpikingGraph g_;
  std::vector<NodeRt> rt_;
  std::vector<std::vector<uint8_t>> changed_;  // per node, per storage row
  std::vector<LayerStats> stats_, step_stats_;
  std::vector<AnnWork> ann_;
  int ann_from_ = 0;  // first row not yet computed by a finished run
  std::vector<std::vector<LayerStats>> trace_;
  bool trace_on_ = false;
  int rows_ = 0;
  int t_ = 0;           // steps in the current run
  bool fresh_run_ = true;
};

}  // namespace spikefm::snn
