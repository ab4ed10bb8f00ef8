// The energy and latency model (neuromorphic_hw/energy_model.h) on a network small enough to price by
// hand: every component below is worked out in the comments from the counts and the table, not taken
// from the code's output.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>

#include "common/error.h"
#include "neuromorphic_hw/activity.h"
#include "neuromorphic_hw/energy_model.h"
#include "neuromorphic_hw/energy_study.h"
#include "neuromorphic_hw/mapping.h"
#include "snn/graph_engine.h"

namespace spikefm::hw {
namespace {

using snn::OpKind;

// Round numbers so the hand computation is exact in binary floating point where possible.
HwSpec hand_spec() {
  HwSpec s;
  s.name = "hand";
  s.cores = 2;
  s.mesh_cols = 2;
  s.mesh_rows = 1;
  s.neurons_per_core = 100;
  s.synapse_sram_bytes = 1000;
  s.sram_word_bits = 64;
  s.clock_hz = 1e6;
  s.static_w_per_core = 1e-3;
  s.synop_pj = 2;
  s.sram_read_word_pj = 8;
  s.membrane_read_pj = 1;
  s.membrane_write_pj = 1.5;
  s.neuron_update_pj = 3;
  s.spike_local_pj = 0.5;
  s.hop_ew_pj = 4;
  s.hop_ns_pj = 5;
  s.dense_op_pj = 0.25;
  s.dense_mac_pj = 0.75;
  s.dram_byte_pj = 10;
  s.synop_cycles = 1;
  s.neuron_update_cycles = 1;
  s.packet_cycles = 2;
  s.hop_cycles = 3;
  s.dense_op_cycles = 1;
  s.dense_lanes = 2;
  s.mac_units = 4;
  s.mac_clock_hz = 1e6;
  s.mult8_pj = 0.4;
  s.add32_pj = 0.1;
  s.mac_static_w = 2e-3;
  s.formula_e_mac_pj = 4.6;
  s.formula_e_ac_pj = 0.9;
  return s;
}

LayerCounts layer(const char* name, OpKind kind, int64_t units, int64_t neurons_per_unit, int64_t synapses_per_unit) {
  LayerCounts l;
  l.graph = "g";
  l.name = name;
  l.kind = kind;
  l.units = units;
  l.neurons_per_unit = neurons_per_unit;
  l.synapses_per_unit = synapses_per_unit;
  return l;
}

// input → n1 (4 units × 2 neurons) → l2 (3 outputs × 4 inputs) → n3 (3 × 2); a qk product; a
// LayerNorm and the encoding layer on the dense unit.
ActivityCounts hand_counts() {
  ActivityCounts c;
  c.graphs = {"g"};
  c.graph_steps = {10};
  c.graph_runs = {2};
  c.graph_depth = {2};
  c.samples = 2;
  c.tokens = 2;
  c.layers.push_back(layer("in", OpKind::row_input, 0, 0, 0));
  LayerCounts n1 = layer("n1", OpKind::neuron, 4, 2, 0);
  n1.snn.spikes_pos = 10;
  n1.snn.spikes_neg = 2;
  n1.snn.events = 12;
  n1.snn.neuron_updates = 40;
  n1.spike_targets = {2};
  n1.ann.outputs = 8;
  c.layers.push_back(n1);
  LayerCounts l2 = layer("l2", OpKind::linear, 3, 0, 4);
  l2.snn.events = 12;
  l2.snn.sops = 36;
  l2.snn.weight_bytes_read = 36;
  l2.ann.macs = 48;
  l2.ann.nonzero_macs = 30;
  l2.ann.weight_bytes = 24;
  l2.ann.act_reads = 16;
  c.layers.push_back(l2);
  LayerCounts n3 = layer("n3", OpKind::neuron, 3, 2, 0);
  n3.snn.spikes_pos = 6;
  n3.snn.events = 6;
  n3.snn.neuron_updates = 30;
  n3.ann.outputs = 6;
  c.layers.push_back(n3);
  LayerCounts ln = layer("ln", OpKind::layer_norm, 0, 0, 0);
  ln.snn.dense_ops = 100;
  ln.ann.dense_ops = 40;
  c.layers.push_back(ln);
  LayerCounts enc = layer("enc", OpKind::encode_linear, 0, 0, 0);
  enc.snn.dense_macs = 50;
  enc.ann.macs = 20;
  enc.ann.nonzero_macs = 20;
  enc.ann.weight_bytes = 10;
  enc.ann.act_reads = 5;
  c.layers.push_back(enc);
  LayerCounts qk = layer("qk", OpKind::qk_product, 2, 2, 0);
  qk.snn.sops = 10;
  c.layers.push_back(qk);
  return c;
}

// n1 alone on core 0 at (0, 0); l2, n3 and qk on core 1 at (1, 0).
Mapping hand_mapping(const ActivityCounts& c, bool l2_offchip = false) {
  Mapping m;
  m.cores = {{0, 0, 8, 0}, {1, 0, 10, 12}};
  m.layers.resize(c.layers.size());
  m.layers[1] = {{0, 4, false}};
  m.layers[2] = {{1, 3, l2_offchip}};
  m.layers[3] = {{1, 3, false}};
  m.layers[6] = {{1, 2, false}};
  m.cores_used = 2;
  return m;
}

TEST(EnergyModel, HandComputedNetworkPricesEveryComponentExactly) {
  const ActivityCounts c = hand_counts();
  const SnnEnergyReport r = price_snn(c, hand_mapping(c), hand_spec());
  // synaptic: l2 36 SOPs × 2 pJ + qk 10 SOPs × 2 pJ
  EXPECT_DOUBLE_EQ(r.total.synaptic_pj, 72 + 20);
  // weight reads: 36 bytes = 4.5 words of 64 bits × 8 pJ
  EXPECT_DOUBLE_EQ(r.total.weight_read_pj, 36);
  // membrane: l2 accumulators 36 × (1 + 1.5); qk 10 × (2·1 + 1.5); neuron updates (40 + 30) × 2.5
  EXPECT_DOUBLE_EQ(r.total.membrane_pj, 90 + 35 + 175);
  // neuron updates: 70 × 3 pJ
  EXPECT_DOUBLE_EQ(r.total.neuron_pj, 210);
  // routing: n1's 12 events all go from core 0 to core 1: 12 deliveries × 0.5 + 12 EW hops × 4
  EXPECT_DOUBLE_EQ(r.total.routing_pj, 6 + 48);
  // dense: LayerNorm 100 ops × 0.25 + encoding 50 MACs × 0.75
  EXPECT_DOUBLE_EQ(r.total.dense_pj, 25 + 37.5);
  EXPECT_DOUBLE_EQ(r.total.offchip_pj, 0);
  // latency: core 0 = 40 updates + 12 packets × 2 = 64 cycles; core 1 = 36 + 30 + 10 = 76 cycles;
  // dense unit (100 + 50) / 2 lanes = 75 cycles. Step = 76 / 10 steps + 1 hop × 3 = 10.6 cycles
  // = 10.6 us at 1 MHz; (10 steps + 2 runs × (depth 2 − 1)) × 10.6 us = 127.2 us.
  ASSERT_EQ(r.graphs.size(), 1u);
  EXPECT_DOUBLE_EQ(r.graphs[0].busiest_core_cycles, 76);
  EXPECT_DOUBLE_EQ(r.graphs[0].dense_cycles, 75);
  EXPECT_NEAR(r.graphs[0].step_s, 10.6e-6, 1e-15);
  EXPECT_NEAR(r.latency_s, 127.2e-6, 1e-14);
  // static: 1 mW × 2 cores × 127.2 us = 254.4 nJ
  EXPECT_NEAR(r.total.static_pj, 254400, 1e-6);
  // formula: 0.9 × (36 + 10) SOPs + 4.6 × 50 encoding MACs
  EXPECT_NEAR(r.formula_pj, 41.4 + 230, 1e-9);
  // spike-driven: synaptic 92 + weight reads 36 + SOP memory (90 + 35) + routing 54
  EXPECT_DOUBLE_EQ(r.spike_driven_pj, 307);
  EXPECT_NEAR(r.fixed_pj, r.total.total_pj() - 307, 1e-6);
  EXPECT_EQ(r.sops, 46);
  EXPECT_EQ(r.spikes, 18);
}

TEST(EnergyModel, OffChipWeightsArePricedAsDramInsteadOfSram) {
  const ActivityCounts c = hand_counts();
  const SnnEnergyReport r = price_snn(c, hand_mapping(c, true), hand_spec());
  EXPECT_DOUBLE_EQ(r.total.weight_read_pj, 0);
  EXPECT_DOUBLE_EQ(r.total.offchip_pj, 36 * 10);  // 36 bytes × 10 pJ
}

TEST(EnergyModel, AllInFiguresAreNotChargedMemoryTwice) {
  const ActivityCounts c = hand_counts();
  HwSpec s = hand_spec();
  s.synop_all_in = true;
  s.neuron_update_all_in = true;
  const SnnEnergyReport r = price_snn(c, hand_mapping(c), s);
  EXPECT_DOUBLE_EQ(r.total.weight_read_pj, 0);
  EXPECT_DOUBLE_EQ(r.total.membrane_pj, 0);
  EXPECT_DOUBLE_EQ(r.total.synaptic_pj, 92);
  EXPECT_DOUBLE_EQ(r.total.neuron_pj, 210);
}

// With memory, NoC, static, neuron and dense-unit terms off, and the table's synop and encoding MAC
// set to the formula's E_AC and E_MAC, the full model is the literature formula.
TEST(EnergyModel, WithOtherTermsOffTheModelReproducesTheLiteratureFormula) {
  const ActivityCounts c = hand_counts();
  HwSpec s = hand_spec();
  s.synop_pj = s.formula_e_ac_pj;
  s.dense_mac_pj = s.formula_e_mac_pj;
  EnergyOptions off;
  off.memory = off.neuron = off.noc = off.dense = off.static_power = false;
  const SnnEnergyReport r = price_snn(c, hand_mapping(c), s, off);
  EXPECT_DOUBLE_EQ(r.total.total_pj(), r.formula_pj);
  EXPECT_NEAR(r.total.total_pj(), 271.4, 1e-9);
  s.mult8_pj = s.formula_e_mac_pj;
  s.add32_pj = 0;
  const MacArrayReport a = price_mac_array(c, s, 8, false, 0.0, off);
  EXPECT_DOUBLE_EQ(a.total_pj(), a.formula_pj);  // E_MAC × all 68 MACs
  EXPECT_NEAR(a.formula_pj, 4.6 * 68, 1e-9);
}

TEST(EnergyModel, MacArrayBaselineHandComputed) {
  const ActivityCounts c = hand_counts();
  const HwSpec s = hand_spec();
  const MacArrayReport r = price_mac_array(c, s, 4, true, 0.0);
  // MACs executed: linear 30 × (0.4 × 4·8/64 + 0.1) + encoding 20 × (0.4 × 8·8/64 + 0.1)
  EXPECT_NEAR(r.mac_pj, 30 * 0.3 + 20 * 0.5, 1e-12);
  EXPECT_EQ(r.macs, 68);
  EXPECT_EQ(r.executed_macs, 50);
  // weights: (24 + 10) bytes = 4.25 words × 8 pJ
  EXPECT_DOUBLE_EQ(r.weight_read_pj, 34);
  // activations: l2 16 reads × 4 bits, n1 8 + n3 6 outputs × 4 bits, encoding 5 pixels × 8 bits;
  // (64 + 56 + 40) bits = 2.5 words × 8 pJ
  EXPECT_DOUBLE_EQ(r.act_memory_pj, 20);
  EXPECT_DOUBLE_EQ(r.dense_pj, 40 * 0.25);
  // latency: 68 MACs / 4 per cycle + 40 dense ops / 2 lanes = 37 cycles at 1 MHz; static 2 mW × 37 us
  EXPECT_NEAR(r.latency_s, 37e-6, 1e-15);
  EXPECT_NEAR(r.static_pj, 74000, 1e-6);
  // without zero skipping every MAC is paid
  EXPECT_NEAR(price_mac_array(c, s, 4, false, 0.0).mac_pj, 48 * 0.3 + 20 * 0.5, 1e-12);
  // the same residency as an SNN with half its weight bytes off-chip
  const MacArrayReport h = price_mac_array(c, s, 4, true, 0.5);
  EXPECT_DOUBLE_EQ(h.weight_read_pj, 17);
  EXPECT_DOUBLE_EQ(h.offchip_pj, 0.5 * 34 * 10);
}

TEST(EnergyModel, ActivationBitsForCountRangesAndTimesteps) {
  EXPECT_EQ(bits_for_range(0, 8), 4);   // 9 levels
  EXPECT_EQ(bits_for_range(-8, 8), 5);  // 17 levels
  EXPECT_EQ(bits_for_range(0, 1), 1);
  EXPECT_EQ(bits_for_range(0, 7), 3);
  EXPECT_EQ(bits_for_timesteps(1), 1);  // counts 0..1
  EXPECT_EQ(bits_for_timesteps(3), 2);
  EXPECT_EQ(bits_for_timesteps(4), 3);
  EXPECT_EQ(bits_for_timesteps(15), 4);
  EXPECT_THROW(bits_for_timesteps(0), Error);
  EXPECT_THROW(price_mac_array(hand_counts(), hand_spec(), 0, true, 0.0), Error);
}

TEST(EnergyModel, MappingOfOtherCountsIsRejected) {
  const ActivityCounts c = hand_counts();
  Mapping m = hand_mapping(c);
  m.layers.pop_back();
  EXPECT_THROW(price_snn(c, m, hand_spec()), Error);
}

// Counts collected from a real engine: units, neurons and synapses follow the graph, spikes flow to
// the layers that read them, and the statistics are the engine's.
TEST(EnergyModel, EngineCountsDescribeTheGraph) {
  snn::SpikingGraph g;
  g.name = "tiny";
  g.rows_cap = 3;
  snn::OpNode in;
  in.name = "x";
  in.kind = OpKind::row_input;
  in.cols = 4;
  snn::OpNode n1;
  n1.name = "n1";
  n1.kind = OpKind::neuron;
  n1.inputs = {0};
  n1.cols = 4;
  n1.theta = 0.5f;
  n1.lo = -3;
  n1.hi = 3;
  snn::OpNode lin;
  lin.name = "lin";
  lin.kind = OpKind::linear;
  lin.inputs = {1};
  lin.in = 4;
  lin.cols = 5;
  lin.weight = {1, -2, 3, 4, 5, 6, -7, 8, 9, 10, 11, 12, -13, 14, 15, 16, 17, 18, -19, 20};
  lin.scale.assign(5, 0.01f);
  lin.bias.assign(5, 0.0f);
  snn::OpNode n2 = n1;
  n2.name = "n2";
  n2.inputs = {2};
  n2.cols = 5;
  g.nodes = {in, n1, lin, n2};
  g.output = 3;
  snn::GraphEngine e(g);
  e.set_rows(2);
  const float x0[4] = {0.9f, -1.2f, 0.3f, 1.4f}, x1[4] = {-0.6f, 0.8f, 1.1f, -0.2f};
  e.set_input(0, 0, x0);
  e.set_input(0, 1, x1);
  const snn::RunReport rr = e.run({.timesteps = 1, .until_quiet = true, .max_steps = 50});
  ActivityCounts c;
  c.samples = 1;
  add_engine_counts(c, e, rr.steps, 1);
  ASSERT_EQ(c.layers.size(), 4u);
  EXPECT_EQ(c.layers[0].units, 0);
  EXPECT_EQ(c.layers[1].units, 4 * 3);  // C × rows_cap neurons, one per unit (no synapses)
  EXPECT_EQ(c.layers[1].neurons_per_unit, 1);
  EXPECT_EQ(c.layers[2].neurons_per_unit, 3);  // a linear channel: rows_cap accumulators
  EXPECT_EQ(c.layers[3].neurons(), 0);          // n2 shares the compartments of lin
  EXPECT_EQ(c.layers[2].units, 5);
  EXPECT_EQ(c.layers[2].synapses_per_unit, 4);
  EXPECT_EQ(c.layers[2].synapse_bytes_per_unit(), 4);
  EXPECT_EQ(c.layers[1].spike_targets, std::vector<int>{2});
  EXPECT_TRUE(c.layers[3].spike_targets.empty());
  EXPECT_EQ(c.graph_depth, std::vector<int>{2});
  EXPECT_EQ(c.graph_steps, std::vector<int64_t>{rr.steps});
  for (size_t k = 0; k < 4; ++k) EXPECT_TRUE(c.layers[k].snn == e.stats()[k]) << k;
  EXPECT_GT(c.layers[1].spikes(), 0);
  EXPECT_EQ(c.layers[2].snn.events, c.layers[1].snn.events);
  EXPECT_THROW(add_engine_counts(c, e, rr.steps, 1), Error);  // the same graph twice

  // The same layer compressed: int4 codes with one fp16 scale per 2 inputs. Its channels keep one
  // accumulator per row and group, store 4 × 4 bits + 2 × 16 bits (6 bytes), and every event reads
  // a row of 5 int4 codes (3 bytes).
  for (int8_t& w : g.nodes[2].weight) w = static_cast<int8_t>(std::clamp<int>(w, -7, 7));
  g.nodes[2].weight_bits = 4;
  g.nodes[2].group = 2;
  g.nodes[2].scale.assign(10, 0.01f);
  snn::GraphEngine eq(g);
  eq.set_rows(2);
  eq.set_input(0, 0, x0);
  eq.set_input(0, 1, x1);
  const snn::RunReport rq = eq.run({.timesteps = 1, .until_quiet = true, .max_steps = 50});
  ActivityCounts cq;
  cq.samples = 1;
  add_engine_counts(cq, eq, rq.steps, 1);
  EXPECT_EQ(cq.layers[2].weight_bits, 4);
  EXPECT_EQ(cq.layers[2].neurons_per_unit, 3 * 2);
  EXPECT_EQ(cq.layers[2].synapse_bytes_per_unit(), 6);
  EXPECT_GT(cq.layers[2].snn.events, 0);
  EXPECT_EQ(cq.layers[2].snn.weight_bytes_read, cq.layers[2].snn.events * 3);
}

TEST(EnergyModel, StudyComparesAgainstBaselinesAndFindsTheBreakEven) {
  const ActivityCounts c = hand_counts();
  StudyOptions o;
  o.strategy = MappingStrategy::greedy;
  o.qann_bits = 4;
  o.qnn_bits = 3;
  const EnergyStudy s = run_energy_study(c, hand_spec(), o);
  ASSERT_EQ(s.baselines.size(), 3u);
  EXPECT_EQ(s.baselines[1].report.act_bits, 4);
  EXPECT_EQ(s.baselines[2].report.act_bits, 3);
  // break-even: fixed + k · spike_driven = ANN
  const double ann = s.baselines[0].report.total_pj();
  EXPECT_NEAR(s.snn.fixed_pj + s.break_even_spike_scale * s.snn.spike_driven_pj, ann, 1e-6 * ann);
  const Json j = energy_study_json(s);
  EXPECT_NEAR(j["snn_energy_per_sample"]["total_pj"].get<double>(), s.snn.total.total_pj() / 2, 1e-9);
  EXPECT_EQ(j["baselines"].size(), 3u);
}

}  // namespace
}  // namespace spikefm::hw
