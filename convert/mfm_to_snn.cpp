#include "convert/mfm_to_snn.h"

#include <cmath>

#include "ann_ref/checkpoint.h"
#include "ann_ref/qann.h"
#include "common/error.h"
#include "common/h5_file.h"

namespace spikefm {

namespace {

using snn::OpKind;
using snn::OpNode;
using snn::SpikingGraph;

std::vector<float> to_vec(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

class GraphBuilder {
 public:
  GraphBuilder(SpikingGraph& g, QannRef& ref, const ConvertOptions& o) : g_(g), ref_(ref), o_(o) {}

  int add(OpNode n) {
    g_.nodes.push_back(std::move(n));
    return static_cast<int>(g_.nodes.size()) - 1;
  }
  int input(const std::string& name, OpKind kind, int cols) {
    OpNode n;
    n.name = name;
    n.kind = kind;
    n.cols = cols;
    return add(n);
  }
  int cols(int node) const { return g_.nodes[node].cols; }

  // Spiking neurons in place of QANN quantizer q; returns the node and its θ as the SNN uses it.
  int neuron(const std::string& name, int src, const Qcfs& q, float* theta_out) {
    OpNode n;
    n.name = name;
    n.kind = OpKind::neuron;
    n.inputs = {src};
    n.cols = g_.nodes[src].is_map() ? 0 : g_.nodes[src].cols;
    n.heads = g_.nodes[src].heads;
    n.lo = static_cast<int>(q->lo());
    n.hi = static_cast<int>(q->hi());
    if (o_.neuron == "if_rate") {
      n.neuron = snn::NeuronKind::if_rate;
      n.theta = q->lambda.item<float>();  // threshold balancing: θ = the activation clip λ
    } else {
      n.neuron = o_.neuron == "burst" ? snn::NeuronKind::burst : snn::NeuronKind::st_bif;
      n.burst = o_.neuron == "burst" ? o_.burst : 1;
      n.theta = q->theta();  // λ / L, exactly as the QANN quantizer
    }
    *theta_out = n.theta;
    return add(n);
  }

  // Linear rows [row0, row0 + rows) of `layer` driven by the spikes of `src` (step theta_in).
  int linear(const std::string& name, int src, float theta_in, const QLinear& layer, int64_t row0 = 0,
             int64_t rows = -1, OpKind kind = OpKind::linear) {
    const IntLinear& w = ref_.weights(layer);
    const torch::Tensor& q = w.q;
    if (rows < 0) rows = q.size(0);
    OpNode n;
    n.name = name;
    n.kind = kind;
    n.inputs = {src};
    n.in = static_cast<int>(q.size(1));
    n.cols = static_cast<int>(rows);
    torch::Tensor qs = q.narrow(0, row0, rows).to(torch::kInt8).contiguous();
    n.weight.assign(qs.data_ptr<int8_t>(), qs.data_ptr<int8_t>() + qs.numel());
    n.weight_bits = w.bits;
    n.group = w.group;
    n.scale = to_vec(w.s.narrow(0, row0, rows) * theta_in);  // θ_in · s in float32, as QannRef::linear
    n.bias = to_vec(layer->bias.narrow(0, row0, rows));
    return add(n);
  }

  int layer_norm(const std::string& name, int src, const torch::nn::LayerNorm& ln) {
    OpNode n;
    n.name = name;
    n.kind = OpKind::layer_norm;
    n.inputs = {src};
    n.cols = g_.nodes[src].cols;
    n.gamma = to_vec(ln->weight);
    n.beta = to_vec(ln->bias);
    n.eps = static_cast<float>(ln->options.eps());
    return add(n);
  }

  int sum(const std::string& name, int a, int b) {
    OpNode n;
    n.name = name;
    n.kind = OpKind::add;
    n.inputs = {a, b};
    n.cols = g_.nodes[a].cols;
    return add(n);
  }

  // One pre-LN transformer block (mfm.h), mirroring QannRef::block.
  int block(const std::string& p, int x, Block& b) {
    auto& at = b->attn;
    const int H = at->heads, d = at->head_dim, C = H * d;  // C: q/k/v columns (< width after head pruning)
    float th_a, th_q, th_k, th_v, th_p, th_o, th_m, th_f;
    int a = neuron(p + "q_ln1", layer_norm(p + "ln1", x, b->ln1), b->q_ln1, &th_a);
    int lq = linear(p + "attn.q", a, th_a, at->qkv, 0, C);
    int lk = linear(p + "attn.k", a, th_a, at->qkv, C, C);
    int lv = linear(p + "attn.v", a, th_a, at->qkv, 2 * C, C);
    int nq = neuron(p + "attn.q_q", lq, at->q_q, &th_q);
    int nk = neuron(p + "attn.q_k", lk, at->q_k, &th_k);
    int nv = neuron(p + "attn.q_v", lv, at->q_v, &th_v);
    OpNode qk;
    qk.name = p + "attn.qk";
    qk.kind = OpKind::qk_product;
    qk.inputs = {nq, nk};
    qk.heads = H;
    qk.causal = at->causal;
    qk.prod_scale = (th_q * th_k) * static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    int s = add(qk);
    OpNode sm;
    sm.name = p + "attn.softmax";
    sm.kind = OpKind::softmax;
    sm.inputs = {s};
    sm.heads = H;
    sm.causal = at->causal;
    int np = neuron(p + "attn.q_p", add(sm), at->q_p, &th_p);
    OpNode av;
    av.name = p + "attn.av";
    av.kind = OpKind::av_product;
    av.inputs = {np, nv};
    av.heads = H;
    av.cols = C;
    av.causal = at->causal;
    av.prod_scale = th_p * th_v;
    int o = neuron(p + "attn.q_o", add(av), at->q_o, &th_o);
    int h = sum(p + "res1", x, linear(p + "attn.proj", o, th_o, at->proj));
    int m = neuron(p + "q_ln2", layer_norm(p + "ln2", h, b->ln2), b->q_ln2, &th_m);
    int f = neuron(p + "mlp.act", linear(p + "mlp.fc1", m, th_m, b->mlp->fc1), b->mlp->act, &th_f);
    return sum(p + "res2", h, linear(p + "mlp.fc2", f, th_f, b->mlp->fc2));
  }

 private:
  SpikingGraph& g_;
  QannRef& ref_;
  const ConvertOptions& o_;
};

}  // namespace

snn::SnnModel convert_checkpoint(const std::filesystem::path& checkpoint, const ConvertOptions& o) {
  if (o.neuron != "st_bif" && o.neuron != "burst" && o.neuron != "if_rate") {
    throw Error("--neuron " + o.neuron, "unknown neuron model", "use st-bif, burst or if-rate");
  }
  if (o.burst < 1 || o.burst > 127) throw Error("--burst", "must be in [1, 127]");
  Checkpoint ck = load_checkpoint(checkpoint);
  // A QANN fine-tuned from a compressed model keeps each layer's codes and group scales (/quant): the
  // spiking layers take them unchanged.
  QannRef ref(ck.model, read_quant_store(H5File::open(checkpoint)));  // refuses a model that is not QANN-configured
  torch::NoGradGuard ng;
  Mfm& m = ref.model();
  const MfmConfig& c = m->config();
  const auto coding = o.neuron == "if_rate" ? snn::Coding::rate : snn::Coding::exact;

  snn::SnnModel out;
  out.source_checkpoint = checkpoint.string();
  out.neuron = o.neuron;
  out.levels = c.max_levels();  // per-site levels (site_levels) may exceed act_levels
  out.default_timesteps = o.timesteps;
  out.train_seed = ck.meta.seed;
  out.image_size = c.image_size;
  out.patch = c.patch;
  out.stride = c.stride;
  out.enc_pos = to_vec(m->enc_pos);
  out.tok_embed = to_vec(m->tok_embed->weight);
  out.dec_pos = to_vec(m->dec_pos);
  out.dec_width = c.dec_width;
  out.max_text_len = c.max_text_len;
  out.vocab = ck.vocab;

  // --- encoder: pixels → image tokens in decoder width ---
  SpikingGraph& eg = out.encoder;
  eg.name = "encoder";
  eg.rows_cap = c.num_patches();
  eg.coding = coding;
  {
    GraphBuilder gb(eg, ref, o);
    int px = gb.input("pixels", OpKind::pixel_input, c.patch_dim());
    int pos = gb.input("enc_pos", OpKind::row_input, c.enc_width);
    int x = gb.sum("embed", gb.linear("patch_embed", px, kPixelTheta, m->patch_embed, 0, -1, OpKind::encode_linear), pos);
    int i = 0;
    for (const auto& mod : *m->enc_blocks) {
      Block b(std::dynamic_pointer_cast<BlockImpl>(mod));
      x = gb.block("enc." + std::to_string(i++) + ".", x, b);
    }
    float th;
    int e = gb.neuron("q_enc", gb.layer_norm("enc_ln", x, m->enc_ln), m->q_enc, &th);
    eg.output = gb.linear("projector", e, th, m->projector);
  }
  // --- decoder: [image tokens, text] → logits ---
  SpikingGraph& dg = out.decoder;
  dg.name = "decoder";
  dg.rows_cap = c.num_patches() + c.max_text_len;
  dg.coding = coding;
  {
    GraphBuilder gb(dg, ref, o);
    int x = gb.input("x0", OpKind::row_input, c.dec_width);
    int i = 0;
    for (const auto& mod : *m->dec_blocks) {
      Block b(std::dynamic_pointer_cast<BlockImpl>(mod));
      x = gb.block("dec." + std::to_string(i++) + ".", x, b);
    }
    float th;
    int e = gb.neuron("q_dec", gb.layer_norm("dec_ln", x, m->dec_ln), m->q_dec, &th);
    dg.output = gb.linear("lm_head", e, th, m->lm_head);
  }
  out.validate();
  return out;
}

}  // namespace spikefm
