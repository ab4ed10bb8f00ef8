// NirGraph: a NIR (Neuromorphic Intermediate Representation) graph in memory, and its HDF5 file.
//
// What it is
//   NIR describes a spiking network as a graph of declarative nodes (Affine, Conv2d, IF, LIF, ...)
//   connected by identity edges; a node's input is the sum of the outputs of its incoming edges.
//   The file format is the one of the reference Python package `nir` (nir.write / nir.read), as
//   specified in shared/NIR.md; section numbers (§) below refer to that document.
//
// Data model
//   NirGraph   nodes: name -> NirNode (sorted by name, as h5py lists them), edges: (source, target)
//              rows, metadata. Execution order is derived from the edges, never from node order.
//   NirNode    type: the NIR class name, case-sensitive ("Affine", "IF", "I", "NIRGraph", ...);
//              params: member name -> NirParam (numeric array or string); metadata; for "NIRGraph"
//              nodes the nested graph.
//   NirParam   kind (float / int / string), shape (row-major, {} = 0-d scalar) and values.
//   Every type of §4 is understood (members checked on read, written exactly): Input, Output,
//   Affine, Linear, Scale, I, IF, LI, LIF, CubaLI, CubaLIF, Delay, Threshold, Flatten, Conv1d,
//   Conv2d, SumPool2d, AvgPool2d, NIRGraph. Any other type string is kept as read, unchecked (a
//   warning is recorded); whether a type can be simulated is NirSimulator's business.
//
// Shapes (§4; the batch dimension is never stored)
//   Input/Output shape (ndim,) int64;  Affine/Linear weight (out, in), bias (out,);
//   Conv2d weight (C_out, C_in / groups, kH, kW), input_shape (H, W);  neuron parameters: one value
//   per neuron, at the full shape of the layer (e.g. (C, H', W') after a Conv2d).
//
// Checks (check_nir_graph; run by read_nir, write_nir and NirSimulator)
//   every edge names existing nodes; required members present (§4); float parameters finite;
//   parameter arrays of a neuron node share one shape; conv/pool geometry valid; and the shapes
//   derived along the edges (§5: Affine (in) -> (out), the conv output-size rule, Flatten
//   start/end dims, pools keep C) agree on every edge. A mismatch with a different element count
//   is an error; one with the same element count (e.g. (1, 1, 1) vs (1,), as older exporters
//   wrote, §5) is accepted and reported in NirGraph::warnings.
//   Deliberate differences from the reference reader: the Conv2d output width uses kW (the
//   reference uses kH for every dimension) and C_in = weight.shape[1] * groups (the reference
//   ignores groups); no Input/Output nodes are invented for roots/leaves (§5 steps 1 and 3);
//   members that nir.read would reject as unexpected are kept and reported as warnings.
//
// File (write_nir, §8 "Write"; decisions where NIR.md leaves a choice)
//   /version "1.0.7" (vlen UTF-8 scalar); /node = the graph: type "NIRGraph", nodes/<name>/...,
//   edges (E, 2) vlen UTF-8 (an empty graph writes shape (0, 2)), metadata only when non-empty.
//   Per node exactly the members of §4: float parameters as float32, shapes/dims/geometry as int64,
//   padding strings as vlen UTF-8. Conv2d stride/padding/dilation are written as (2,) pairs.
//   Flatten always gets input_type (derived when absent), start_dim and end_dim (1 and -1, the NIR
//   defaults, when absent). v_reset is written only when some entry is nonzero: an all-zero
//   v_reset means the same to every reader (missing v_reset reads as zeros from v1.0.6 on) and
//   omitting it keeps the file readable by nir v1.0 - v1.0.5 (§7). input_type/output_type of
//   other nodes are derived values and never written. Metadata values keep their kind, floats as
//   float64 (a recorded dt stays exact); members of types outside §4 are written as kept. Non-square conv kernels and groups != 1 are
//   refused: the reference reader would reject the file (§4 quirks). Datasets are chunked with a
//   Fletcher-32 checksum (common/h5_file.h); h5py and nir.read read them like contiguous ones.
//   Writes are atomic (temporary file + rename).
//
// Paper: J. E. Pedersen, S. Abreu, M. Jobst, et al., "Neuromorphic intermediate representation: A
//   unified instruction set for interoperable brain-inspired computing", Nature Communications 15,
//   8122 (2024).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/h5_file.h"

namespace spikefm::snn {

// The NIR release whose format write_nir produces (written to /version).
inline constexpr const char* kNirFormatVersion = "1.0.7";

// One member of a node: a numeric array or string(s).
struct NirParam {
  enum class Kind { kFloat, kInt, kString };

  Kind kind = Kind::kFloat;
  Shape shape;                       // row-major; {} = 0-d scalar
  std::vector<double> floats;        // kFloat: shape_numel(shape) values
  std::vector<int64_t> ints;         // kInt: shape_numel(shape) values
  std::vector<std::string> strings;  // kString: shape_numel(shape) values (one for a scalar)

  // Each throws spikefm::Error when the value count does not fill the shape.
  static NirParam of_floats(Shape shape, std::vector<double> values);
  static NirParam of_ints(Shape shape, std::vector<int64_t> values);
  static NirParam of_string(std::string text);  // 0-d

  int64_t size() const { return shape_numel(shape); }
  bool is_numeric() const { return kind != Kind::kString; }
  // The values as doubles (kFloat or kInt; throws for strings).
  std::vector<double> to_doubles() const;

  friend bool operator==(const NirParam&, const NirParam&) = default;
};

using NirParams = std::map<std::string, NirParam>;

struct NirGraph;

struct NirNode {
  std::string type;    // NIR class name, case-sensitive
  NirParams params;    // every member except type and metadata, by member name
  NirParams metadata;  // the optional metadata group (datasets only); unused for NIRGraph nodes,
                       // whose metadata is graph->metadata
  std::unique_ptr<NirGraph> graph;  // the nested graph; set iff type == "NIRGraph"

  NirNode();
  NirNode(const NirNode& other);
  NirNode(NirNode&& other) noexcept;
  NirNode& operator=(const NirNode& other);
  NirNode& operator=(NirNode&& other) noexcept;
  ~NirNode();

  bool has(const std::string& member) const { return params.count(member) != 0; }
  // The member; throws spikefm::Error naming the type and member when it is missing.
  const NirParam& at(const std::string& member) const;

  // --- factories for the primitives of §4 (shapes checked against value counts) ---
  static NirNode input(const Shape& shape);
  static NirNode output(const Shape& shape);
  // weight: (out, in) row-major; bias: (out,), empty = zeros (NIR has no bias-free Affine).
  static NirNode affine(const Shape& weight_shape, std::vector<double> weight, std::vector<double> bias = {});
  static NirNode linear(const Shape& weight_shape, std::vector<double> weight);
  static NirNode scale(const Shape& shape, std::vector<double> scale);
  static NirNode integrator(const Shape& shape, std::vector<double> r);  // type "I"
  // v_reset empty = zeros.
  static NirNode if_neuron(const Shape& shape, std::vector<double> r, std::vector<double> v_threshold,
                           std::vector<double> v_reset = {});
  static NirNode li(const Shape& shape, std::vector<double> tau, std::vector<double> r,
                    std::vector<double> v_leak);
  static NirNode lif(const Shape& shape, std::vector<double> tau, std::vector<double> r,
                     std::vector<double> v_leak, std::vector<double> v_threshold,
                     std::vector<double> v_reset = {});
  // input_hw: (H, W); weight: (C_out, C_in / groups, kH, kW); bias (C_out,), empty = zeros.
  static NirNode conv2d(const Shape& input_hw, const Shape& weight_shape, std::vector<double> weight,
                        std::vector<double> bias = {}, std::array<int64_t, 2> stride = {1, 1},
                        std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
                        int64_t groups = 1);
  static NirNode sum_pool2d(std::array<int64_t, 2> kernel_size, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding = {0, 0});
  static NirNode avg_pool2d(std::array<int64_t, 2> kernel_size, std::array<int64_t, 2> stride,
                            std::array<int64_t, 2> padding = {0, 0});
  // Merges dims start_dim..end_dim of input_type; start_dim 0 turns (C, H, W) into (C*H*W,).
  static NirNode flatten(const Shape& input_type, int64_t start_dim = 0, int64_t end_dim = -1);
  static NirNode subgraph(NirGraph graph);  // type "NIRGraph"
};

bool operator==(const NirNode& a, const NirNode& b);

struct NirGraph {
  std::map<std::string, NirNode> nodes;                   // name -> node
  std::vector<std::pair<std::string, std::string>> edges;  // (source, target)
  NirParams metadata;                                     // the graph's optional metadata group
  std::string version;                 // read_nir: /version of the file ("" if absent); not written
  std::vector<std::string> warnings;   // read_nir: problems tolerated while reading

  // Adds a node; throws spikefm::Error if the name is taken, empty or contains '/'.
  NirNode& add_node(const std::string& name, NirNode node);
  void add_edge(const std::string& source, const std::string& target);
};

// Graph equality: nodes, edges (in order) and metadata; version and warnings are not compared.
bool operator==(const NirGraph& a, const NirGraph& b);

// Input and output shape of one node as derived by check_nir_graph; nullopt = unknown (an
// unrecognised type, or a node no shape reaches).
struct NirNodeType {
  std::optional<Shape> input;
  std::optional<Shape> output;
};

// Node name -> derived shapes. Nodes of nested graphs appear as "<graph node>/<name>".
using NirTypes = std::map<std::string, NirNodeType>;

// Checks the graph as described at the top of this file. Errors are thrown as
// spikefm::Error(what, "<problem naming the node or edge>", fix); tolerated problems are appended
// to *warnings when given. Returns the derived shapes.
NirTypes check_nir_graph(const NirGraph& graph, const std::string& what,
                         std::vector<std::string>* warnings = nullptr);

// Window geometry of a Conv2d, SumPool2d or AvgPool2d node (pools have dilation 1), parsed from
// int64 scalars or (2,) pairs, and padding "same"/"valid" strings. `name` is used in errors.
struct NirWindow2d {
  std::array<int64_t, 2> kernel{};        // (kH, kW)
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> dilation{1, 1};
  std::array<int64_t, 2> pad_begin{};     // zeros added before row 0 / column 0
  std::array<int64_t, 2> pad_end{};       // zeros added after the last row / column
  bool same = false;                      // padding "same": output size = input size (§4)

  // Output (H', W') for input (H, W): floor((in + pad_begin + pad_end - dil*(k-1) - 1)/stride + 1),
  // or the input size for "same". May be <= 0 for a window larger than the input.
  std::array<int64_t, 2> output_size(std::array<int64_t, 2> input_hw) const;
};
NirWindow2d nir_window2d(const NirNode& node, const std::string& name);

// Reads a NIR file (§2-§5, §8 "Read"): vlen or fixed-length strings, empty edges of any dtype,
// chunked/compressed or contiguous datasets, missing v_reset (read as zeros of v_threshold's
// shape), missing metadata; attributes and root objects other than /node and /version are
// ignored. Then runs check_nir_graph. Throws spikefm::Error naming the file and the node.
NirGraph read_nir(const std::filesystem::path& path);

// Writes `graph` as a NIR file (see "File" above) atomically. nir.read 1.0.6+ reads every file it
// writes; older releases read it as far as §7 allows (no AvgPool2d before 1.0.2, no nonzero v_reset
// before 1.0.6).
// Runs check_nir_graph first; throws spikefm::Error naming the node for anything it cannot write.
void write_nir(const std::filesystem::path& path, const NirGraph& graph);

}  // namespace spikefm::snn
