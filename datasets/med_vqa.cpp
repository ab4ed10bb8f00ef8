#include "datasets/med_vqa.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "datasets/png_writer.h"

namespace spikefm {

namespace {

constexpr double kPi = 3.14159265358979323846;
using Vec3 = std::array<double, 3>;  // (z, y, x) in mm

// ---- tunables of the benchmark (the header documents each) ------------------------------------------
constexpr double kAbnormalFraction = 0.5;
constexpr double kBoneWindowFraction = 0.25;
constexpr double kBoneHu = 300;       // inner table of the skull, for the cavity barrier
constexpr int kBarrierRadiusVox = 2;  // no cavity voxel within this many voxels of bone
constexpr int kOpeningRadiusVox = 3;  // per-slice opening that detaches the face from the cavity
constexpr double kBrainLoHu = 15, kBrainHiHu = 45;
constexpr double kCandidateAreaFraction = 0.35;
constexpr double kFovMarginMm = 50;                     // cavity extent + skull, scalp and a little air
constexpr double kEdgeInner = 0.85, kEdgeOuter = 1.15;  // soft edge of a lesion, in normalised radius
constexpr double kLesionGapMm = 3, kMidlineClearMm = 2;
constexpr double kMinBrainFraction = 0.9;
constexpr double kHyperLoHu = 35, kHyperHiHu = 55, kHypoLoHu = -30, kHypoHiHu = -15;
constexpr std::array<std::array<double, 2>, 3> kSizeDiameterMm = {{{10, 16}, {20, 28}, {32, 40}}};
constexpr double kMaxRotationDeg = 10, kScaleLo = 0.95, kScaleHi = 1.05, kMaxShiftMm = 6;
constexpr double kNoiseLoHu = 1, kNoiseHiHu = 4;
constexpr double kAirHu = -1024;
constexpr int kSplitCycle = 10;  // slice index mod 10: 0..6 train, 7 val, 8..9 test
constexpr double kMrReferencePercentile = 0.995;  // MR value shown as gray 255
constexpr double kMrForegroundFraction = 0.2;     // MR brain mask: above this share of the reference
constexpr double kMrNoiseLo = 0.01, kMrNoiseHi = 0.04;  // MR noise sigma, as a share of the reference
constexpr uint8_t kMrLabel = 24;

const std::array<std::string, 3> kSplitNames = {"train", "val", "test"};

int split_of_slice(int64_t k) {
  const int m = static_cast<int>(k % kSplitCycle);
  return m <= 6 ? 0 : (m == 7 ? 1 : 2);
}

// ---- deterministic random numbers (std distributions differ between standard libraries) -------------

// SplitMix64 finaliser (Steele, Lea & Flood 2014).
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
double uniform(std::mt19937_64& rng, double lo, double hi) { return lo + (hi - lo) * uniform01(rng); }

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: rejection keeps it unbiased
  for (;;) {
    const uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

// Two independent standard normal numbers (Box-Muller).
std::array<double, 2> normal_pair(std::mt19937_64& rng) {
  const double u1 = (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
  const double u2 = uniform01(rng);
  const double radius = std::sqrt(-2.0 * std::log(u1));
  return {radius * std::cos(2 * kPi * u2), radius * std::sin(2 * kPi * u2)};
}

Vec3 add(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// Image axes of a plane before augmentation, in volume (z, y, x) directions (radiological display).
struct PlaneAxes {
  Vec3 right, down, normal;
};
PlaneAxes plane_axes(CtPlane p) {
  switch (p) {
    case CtPlane::axial:
      return {{0, 0, 1}, {0, -1, 0}, {1, 0, 0}};  // right = +x (patient left), up = anterior
    case CtPlane::coronal:
      return {{0, 0, 1}, {-1, 0, 0}, {0, 1, 0}};  // right = +x (patient left), up = superior
    case CtPlane::sagittal:
      return {{0, -1, 0}, {-1, 0, 0}, {0, 0, 1}};  // right = posterior, up = superior
  }
  return {};
}

// Lesion axes (a, b, n) in volume directions.
std::array<Vec3, 3> lesion_axes(CtPlane plane, double angle) {
  const PlaneAxes ax = plane_axes(plane);
  const double c = std::cos(angle), s = std::sin(angle);
  return {add(scaled(ax.right, c), scaled(ax.down, s)), add(scaled(ax.right, -s), scaled(ax.down, c)), ax.normal};
}

// Soft-edge weight of a normalised radius: 1 inside kEdgeInner, raised cosine to 0 at kEdgeOuter.
double edge_weight(double r) {
  if (r <= kEdgeInner) return 1.0;
  if (r >= kEdgeOuter) return 0.0;
  return 0.5 * (1.0 + std::cos(kPi * (r - kEdgeInner) / (kEdgeOuter - kEdgeInner)));
}

// The largest 6-connected component of a (D, R, C) mask (all zero if the mask is empty).
std::vector<uint8_t> largest_component(const std::vector<uint8_t>& mask, int64_t D, int64_t R, int64_t C) {
  const size_t n = mask.size();
  // state: 0 unvisited, 1 visited; the best component is flooded again at the end into `out`.
  std::vector<uint8_t> state(n, 0);
  std::vector<int64_t> queue;
  auto flood = [&](size_t seed, std::vector<uint8_t>& mark, uint8_t value) {
    queue.clear();
    mark[seed] = value;
    queue.push_back(static_cast<int64_t>(seed));
    for (size_t q = 0; q < queue.size(); ++q) {
      const int64_t v = queue[q];
      const int64_t x = v % C, y = (v / C) % R, z = v / (R * C);
      auto visit = [&](bool ok, int64_t j) {
        if (ok && mask[static_cast<size_t>(j)] && mark[static_cast<size_t>(j)] != value) {
          mark[static_cast<size_t>(j)] = value;
          queue.push_back(j);
        }
      };
      visit(x > 0, v - 1);
      visit(x < C - 1, v + 1);
      visit(y > 0, v - C);
      visit(y < R - 1, v + C);
      visit(z > 0, v - R * C);
      visit(z < D - 1, v + R * C);
    }
    return queue.size();
  };
  size_t best_seed = n, best_size = 0;
  for (size_t s = 0; s < n; ++s) {
    if (!mask[s] || state[s]) continue;
    const size_t size = flood(s, state, 1);
    if (size > best_size) {
      best_size = size;
      best_seed = s;
    }
  }
  std::vector<uint8_t> out(n, 0);
  if (best_seed < n) flood(best_seed, out, 1);
  return out;
}

// Square (Chebyshev) dilation of a (R, C) mask by r pixels, separable: rows, then columns.
std::vector<uint8_t> dilate2d(const std::vector<uint8_t>& in, int64_t R, int64_t C, int64_t r) {
  std::vector<uint8_t> tmp(in.size()), out(in.size());
  for (int64_t y = 0; y < R; ++y) {
    for (int64_t x = 0; x < C; ++x) {
      uint8_t b = 0;
      for (int64_t xx = std::max<int64_t>(0, x - r); xx <= std::min(C - 1, x + r) && !b; ++xx)
        b = in[static_cast<size_t>(y * C + xx)];
      tmp[static_cast<size_t>(y * C + x)] = b;
    }
  }
  for (int64_t y = 0; y < R; ++y) {
    for (int64_t x = 0; x < C; ++x) {
      uint8_t b = 0;
      for (int64_t yy = std::max<int64_t>(0, y - r); yy <= std::min(R - 1, y + r) && !b; ++yy)
        b = tmp[static_cast<size_t>(yy * C + x)];
      out[static_cast<size_t>(y * C + x)] = b;
    }
  }
  return out;
}

// Square erosion: the complement of the dilated complement (outside the image counts as set).
std::vector<uint8_t> erode2d(const std::vector<uint8_t>& in, int64_t R, int64_t C, int64_t r) {
  std::vector<uint8_t> inv(in.size());
  for (size_t i = 0; i < in.size(); ++i) inv[i] = !in[i];
  std::vector<uint8_t> out = dilate2d(inv, R, C, r);
  for (auto& v : out) v = !v;
  return out;
}

// ---- questions ---------------------------------------------------------------------------------------

std::string normalise_question(std::string_view q) {
  std::string out;
  bool pending_space = false;
  for (char c : q) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (!out.empty() && out.back() == '?') out.pop_back();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

int check_type(int type, const std::string& what) {
  if (type < 0 || type >= kMedQuestionTypes) {
    throw Error(what,
                "question type " + std::to_string(type) + " is outside 0.." + std::to_string(kMedQuestionTypes - 1));
  }
  return type;
}

const char* plane_name(CtPlane p) {
  static constexpr const char* names[] = {"axial", "coronal", "sagittal"};
  return names[static_cast<int>(p)];
}

// Draws rotation, scale, shift and a noise sigma in U(noise_lo, noise_hi), then the noise seed, and
// keeps them in the record when `augment` is on (drawn either way, so that augment on/off leave the
// later draws alike).
void draw_augmentation(std::mt19937_64& rng, bool augment, double noise_lo, double noise_hi, MedVqaImageRecord& r) {
  const double rot = uniform(rng, -kMaxRotationDeg, kMaxRotationDeg) * kPi / 180;
  const double scale = uniform(rng, kScaleLo, kScaleHi);
  const double su = uniform(rng, -kMaxShiftMm, kMaxShiftMm), sv = uniform(rng, -kMaxShiftMm, kMaxShiftMm);
  const double noise = uniform(rng, noise_lo, noise_hi);
  r.noise_seed = rng();
  if (augment) {
    r.rotation_rad = rot;
    r.scale = scale;
    r.shift_u_mm = su;
    r.shift_v_mm = sv;
    r.noise_hu = noise;
  }
}

// Slice coordinates (qu, qv) in mm of point (row, col) of the (2N, 2N) sub-sample grid (2 x 2 per
// pixel, at offsets 0.25 and 0.75; half = N / 2, pix = mm per pixel): its display coordinates (mm from
// the image centre, u right, v down) through the inverse of p = scale * R(rotation) * q + shift.
std::array<double, 2> slice_coords(const MedVqaImageRecord& r, double pix, double half, double row, double col) {
  const double cr = std::cos(r.rotation_rad), sr = std::sin(r.rotation_rad);
  const double u = ((col + 0.5) * 0.5 - half) * pix - r.shift_u_mm;
  const double v = ((row + 0.5) * 0.5 - half) * pix - r.shift_v_mm;
  return {(cr * u + sr * v) / r.scale, (-sr * u + cr * v) / r.scale};
}

// Adds the record's Gaussian noise (sigma noise_hu, generator seeded by noise_seed) to n values.
void add_noise(const MedVqaImageRecord& r, int64_t n, float* out) {
  if (r.noise_hu <= 0) return;
  std::mt19937_64 noise_rng(r.noise_seed);
  for (int64_t i = 0; i < n; i += 2) {
    const auto z = normal_pair(noise_rng);
    out[i] = static_cast<float>(static_cast<double>(out[i]) + r.noise_hu * z[0]);
    if (i + 1 < n) out[i + 1] = static_cast<float>(static_cast<double>(out[i + 1]) + r.noise_hu * z[1]);
  }
}

}  // namespace

// ---- the anatomy of the volume, computed once ------------------------------------------------------------

struct MedVqa::Impl {
  MedVqaOptions options;
  std::shared_ptr<const CtVolume> vol;
  int64_t D = 0, R = 0, C = 0;
  double sz = 1, sy = 1, sx = 1;
  std::vector<uint8_t> cavity;  // (D, R, C): 1 inside the cranial cavity
  std::vector<uint8_t> brain;   // (D, R, C): cavity and smoothed HU in [20, 45]
  double mid_a = 0, mid_b = 0, mid_c = 0;
  double yc = 0, zc = 0;  // centre of the cavity's bounding box, mm
  double fov = 0;
  int64_t axial_lo = 0, axial_hi = 0;                         // range of axial candidates (all splits)
  std::array<std::array<std::vector<int64_t>, 3>, 3> slices;  // [split][plane]
  // MR (absent when options.mr_fraction = 0).
  std::shared_ptr<const NiftiVolume> mr;
  int64_t mx = 0, my = 0, mz = 0, mt = 0;  // voxels along x (toward patient left), y (anterior), z; time points
  double msx = 1, msy = 1;                 // in-plane spacing, mm
  double mr_ref = 1;                       // value shown as gray 255
  double mr_cx = 0, mr_cy = 0;             // brain centre in the axial plane, mm
  std::array<std::vector<int64_t>, 3> mr_slices;  // [split]
  struct Split {
    ImageSet images;
    std::vector<MedVqaImageRecord> records;
  };
  std::array<Split, 3> splits;

  size_t idx(int64_t z, int64_t y, int64_t x) const { return static_cast<size_t>((z * R + y) * C + x); }

  double midline_x(double y_mm, double z_mm) const { return mid_a + mid_b * y_mm + mid_c * z_mm; }

  // Nearest voxel of a point; false outside the volume.
  bool voxel(const Vec3& p, int64_t& z, int64_t& y, int64_t& x) const {
    z = static_cast<int64_t>(std::floor(p[0] / sz + 0.5));
    y = static_cast<int64_t>(std::floor(p[1] / sy + 0.5));
    x = static_cast<int64_t>(std::floor(p[2] / sx + 0.5));
    return z >= 0 && z < D && y >= 0 && y < R && x >= 0 && x < C;
  }
  bool in_mask(const std::vector<uint8_t>& m, const Vec3& p) const {
    int64_t z, y, x;
    return voxel(p, z, y, x) && m[idx(z, y, x)];
  }

  // Centre of the image of slice k of a plane, before augmentation (mm).
  Vec3 image_center(CtPlane p, int64_t k) const {
    switch (p) {
      case CtPlane::axial: {
        const double z = static_cast<double>(k) * sz;
        return {z, yc, midline_x(yc, z)};
      }
      case CtPlane::coronal: {
        const double y = static_cast<double>(k) * sy;
        return {zc, y, midline_x(y, zc)};
      }
      case CtPlane::sagittal:
        return {zc, yc, static_cast<double>(k) * sx};
    }
    return {};
  }

  void analyse();
  void analyse_mr();
  void build_split(int split, int64_t n);
  MedVqaImageRecord generate(int split, int64_t i) const;
  MedVqaImageRecord generate_mr(int split, int64_t i) const;
  bool place(const MedVqaImageRecord& r, MedVqaLesion& lesion, LesionSide side, bool constrain_side,
             const std::vector<MedVqaLesion>& placed, std::mt19937_64& rng) const;
  void render(const MedVqaImageRecord& r, bool with_lesions, bool with_noise, float* out) const;
  void render_mr(const MedVqaImageRecord& r, bool with_noise, float* out) const;
};

void MedVqa::Impl::analyse() {
  const std::string what = "building Med-VQA from " + options.ct_path.string();
  D = vol->depth;
  R = vol->rows;
  C = vol->cols;
  sz = vol->spacing_mm[0];
  sy = vol->spacing_mm[1];
  sx = vol->spacing_mm[2];
  if (static_cast<int64_t>(vol->hu.size()) != D * R * C || D < 8 || R < 32 || C < 32) {
    throw Error(what, "the volume is " + std::to_string(D) + "x" + std::to_string(R) + "x" + std::to_string(C) +
                          " with " + std::to_string(vol->hu.size()) +
                          " voxels; a head CT of at least 8x32x32 is needed");
  }
  const size_t n = static_cast<size_t>(D * R * C);

  // 1. Cranial cavity, in three steps:
  //    a. the head: the largest 6-connected 3-D component of HU > -300 (drops the CT table and the
  //       headrest, which the foam separates from the head);
  //    b. per axial slice, a pixel is enclosed when head bone (HU >= 300) lies somewhere along at
  //       least 7 of the 8 rays leaving it (axes and diagonals) — robust to the gaps that thin
  //       temporal bone, sutures and foramina leave in the skull ring — and no bone lies within 2
  //       voxels of it (keeps partial-volume bone out);
  //    c. the largest 6-connected 3-D component of the enclosed pixels (the brain; sinuses, orbits and
  //       muscles enclosed by facial bones form small separate components).
  const std::vector<uint8_t> head = [&] {
    std::vector<uint8_t> m(n);
    for (size_t s = 0; s < n; ++s) m[s] = vol->hu[s] > -300;
    return largest_component(m, D, R, C);
  }();
  std::vector<uint8_t> enclosed(n, 0);
  {
    const auto RC = static_cast<size_t>(R * C);
    std::vector<uint8_t> bone(RC), barrier(RC), seen(RC), rays(RC), slice(RC);
    constexpr int kDirs[8][2] = {{0, 1}, {0, -1}, {1, 0}, {-1, 0}, {1, 1}, {1, -1}, {-1, 1}, {-1, -1}};
    for (int64_t z = 0; z < D; ++z) {
      const size_t base = idx(z, 0, 0);
      for (size_t i = 0; i < RC; ++i) bone[i] = head[base + i] && vol->hu[base + i] >= kBoneHu;
      barrier = dilate2d(bone, R, C, kBarrierRadiusVox);
      // seen[p] = bone at p or anywhere before p along direction d; one pass per direction, visiting
      // pixels so that p - d comes before p.
      std::fill(rays.begin(), rays.end(), 0);
      for (const auto& d : kDirs) {
        const int64_t dy = d[0], dx = d[1];
        for (int64_t yi = 0; yi < R; ++yi) {
          const int64_t y = dy >= 0 ? yi : R - 1 - yi;
          for (int64_t xi = 0; xi < C; ++xi) {
            const int64_t x = dx >= 0 ? xi : C - 1 - xi;
            const int64_t py = y - dy, px = x - dx;
            const bool before = py >= 0 && py < R && px >= 0 && px < C && seen[static_cast<size_t>(py * C + px)];
            const auto i = static_cast<size_t>(y * C + x);
            seen[i] = bone[i] || before;
            rays[i] += before;
          }
        }
      }
      for (size_t i = 0; i < RC; ++i) slice[i] = head[base + i] && rays[i] >= 7 && !barrier[i];
      // Keep the slice's largest part after an opening by 3 voxels, which cuts the thin bridges to the
      // orbits and nasal cavity that facial bones enclose too.
      std::vector<uint8_t> core = largest_component(erode2d(slice, R, C, kOpeningRadiusVox), 1, R, C);
      core = dilate2d(core, R, C, kOpeningRadiusVox);
      for (size_t i = 0; i < RC; ++i) enclosed[base + i] = slice[i] && core[i];
    }
  }
  cavity = largest_component(enclosed, D, R, C);

  // 2. Brain tissue: cavity voxels whose 3x3x3 mean HU is in [20, 45] (parenchyma; CSF and bone out).
  brain.assign(n, 0);
  for (int64_t z = 0; z < D; ++z) {
    for (int64_t y = 0; y < R; ++y) {
      for (int64_t x = 0; x < C; ++x) {
        if (!cavity[idx(z, y, x)]) continue;
        double sum = 0;
        int cnt = 0;
        for (int64_t dz = -1; dz <= 1; ++dz) {
          for (int64_t dy = -1; dy <= 1; ++dy) {
            for (int64_t dx = -1; dx <= 1; ++dx) {
              const int64_t zz = z + dz, yy = y + dy, xx = x + dx;
              if (zz < 0 || zz >= D || yy < 0 || yy >= R || xx < 0 || xx >= C) continue;
              sum += vol->hu[idx(zz, yy, xx)];
              ++cnt;
            }
          }
        }
        const double mean = sum / cnt;
        brain[idx(z, y, x)] = mean >= kBrainLoHu && mean <= kBrainHiHu;
      }
    }
  }

  // 3. Midline: least-squares plane x = a + b*y + c*z through the centres of the cavity's rows that
  //    are at least 60 mm wide.
  {
    double m[3][3] = {}, v[3] = {};
    int64_t rows_used = 0;
    for (int64_t z = 0; z < D; ++z) {
      for (int64_t y = 0; y < R; ++y) {
        int64_t lo = -1, hi = -1;
        for (int64_t x = 0; x < C; ++x) {
          if (!cavity[idx(z, y, x)]) continue;
          if (lo < 0) lo = x;
          hi = x;
        }
        if (lo < 0 || static_cast<double>(hi - lo + 1) * sx < 60) continue;
        const double f[3] = {1.0, static_cast<double>(y) * sy, static_cast<double>(z) * sz};
        const double t = 0.5 * static_cast<double>(lo + hi) * sx;
        for (int a = 0; a < 3; ++a) {
          v[a] += f[a] * t;
          for (int b = 0; b < 3; ++b) m[a][b] += f[a] * f[b];
        }
        ++rows_used;
      }
    }
    if (rows_used < 20) {
      throw Error(
          what,
          "found no cranial cavity (" + std::to_string(rows_used) + " rows of it wider than 60 mm): is this a head CT?",
          "pass a head CT project");
    }
    // Solve the 3x3 normal equations by Cramer's rule.
    auto det3 = [](const double a[3][3]) {
      return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
             a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    };
    const double d = det3(m);
    double sol[3];
    for (int k = 0; k < 3; ++k) {
      double mk[3][3];
      for (int a = 0; a < 3; ++a) {
        for (int b = 0; b < 3; ++b) mk[a][b] = (b == k) ? v[a] : m[a][b];
      }
      sol[k] = std::abs(d) > 0 ? det3(mk) / d : 0.0;
    }
    if (std::abs(d) == 0) sol[0] = v[0] / m[0][0];  // degenerate: one slice, one row; constant midline
    mid_a = sol[0];
    mid_b = sol[1];
    mid_c = sol[2];
  }

  // 4. Field of view and centre: the cavity's bounding box.
  int64_t lo[3] = {D, R, C}, hi[3] = {-1, -1, -1};
  for (int64_t z = 0; z < D; ++z) {
    for (int64_t y = 0; y < R; ++y) {
      for (int64_t x = 0; x < C; ++x) {
        if (!cavity[idx(z, y, x)]) continue;
        const int64_t c[3] = {z, y, x};
        for (int a = 0; a < 3; ++a) {
          lo[a] = std::min(lo[a], c[a]);
          hi[a] = std::max(hi[a], c[a]);
        }
      }
    }
  }
  const double sp[3] = {sz, sy, sx};
  double extent = 0;
  for (int a = 0; a < 3; ++a) extent = std::max(extent, static_cast<double>(hi[a] - lo[a] + 1) * sp[a]);
  fov = extent + kFovMarginMm;
  zc = 0.5 * static_cast<double>(lo[0] + hi[0]) * sz;
  yc = 0.5 * static_cast<double>(lo[1] + hi[1]) * sy;

  // 5. Candidate slices per plane: brain area >= 35% of the plane's largest; dealt to splits.
  const int64_t extent_of[3] = {D, R, C};
  for (int p = 0; p < 3; ++p) {
    std::vector<int64_t> area(static_cast<size_t>(extent_of[p]), 0);
    for (int64_t z = 0; z < D; ++z) {
      for (int64_t y = 0; y < R; ++y) {
        for (int64_t x = 0; x < C; ++x) {
          if (brain[idx(z, y, x)]) ++area[static_cast<size_t>(p == 0 ? z : (p == 1 ? y : x))];
        }
      }
    }
    const int64_t best = *std::max_element(area.begin(), area.end());
    std::vector<int64_t> all;
    for (int64_t k = 0; k < extent_of[p]; ++k) {
      if (best > 0 &&
          static_cast<double>(area[static_cast<size_t>(k)]) >= kCandidateAreaFraction * static_cast<double>(best)) {
        all.push_back(k);
        slices[static_cast<size_t>(split_of_slice(k))][static_cast<size_t>(p)].push_back(k);
      }
    }
    if (p == 0 && !all.empty()) {
      axial_lo = all.front();
      axial_hi = all.back();
    }
    for (int s = 0; s < 3; ++s) {
      if (slices[static_cast<size_t>(s)][static_cast<size_t>(p)].empty()) {
        throw Error(what,
                    "no " + std::string(plane_name(static_cast<CtPlane>(p))) + " slice with enough brain for the " +
                        kSplitNames[static_cast<size_t>(s)] + " split",
                    "pass a head CT covering the brain");
      }
    }
  }
}

// The MR volume: reference intensity, brain centre and candidate slices (see the header).
void MedVqa::Impl::analyse_mr() {
  const std::string what = "building Med-VQA's MR images from " + options.mr_path.string();
  mx = mr->dim[0], my = mr->dim[1], mz = mr->dim[2], mt = mr->dim[3];
  msx = mr->pixdim[0], msy = mr->pixdim[1];
  if (mx < 32 || my < 32 || mz < kSplitCycle || mt < 1 || !(msx > 0) || !(msy > 0) ||
      static_cast<int64_t>(mr->data.size()) != mx * my * mz * mt) {
    throw Error(what,
                "the volume is " + std::to_string(mx) + "x" + std::to_string(my) + "x" + std::to_string(mz) + "x" +
                    std::to_string(mt) + " voxels of " + std::to_string(msx) + " x " + std::to_string(msy) +
                    " mm; an axial brain MR of at least 32x32x" + std::to_string(kSplitCycle) + " is needed",
                "pass another volume, or set the MR share to 0");
  }
  std::vector<float> sorted(mr->data);
  const auto k = static_cast<size_t>(kMrReferencePercentile * static_cast<double>(sorted.size() - 1));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
  mr_ref = sorted[k];
  if (!(mr_ref > 0)) {
    throw Error(what, "its 99.5th percentile is " + std::to_string(mr_ref) + "; an MR with positive values is needed");
  }
  // Brain mask of the first time point: its centre (mean position over every slice) and area per slice.
  const double thr = kMrForegroundFraction * mr_ref;
  std::vector<int64_t> area(static_cast<size_t>(mz), 0);
  double sx_sum = 0, sy_sum = 0;
  int64_t count = 0;
  for (int64_t z = 0; z < mz; ++z) {
    for (int64_t y = 0; y < my; ++y) {
      for (int64_t x = 0; x < mx; ++x) {
        if (mr->data[static_cast<size_t>((z * my + y) * mx + x)] <= thr) continue;
        ++area[static_cast<size_t>(z)];
        sx_sum += static_cast<double>(x);
        sy_sum += static_cast<double>(y);
        ++count;
      }
    }
  }
  if (count == 0) throw Error(what, "no voxel is above 20% of the 99.5th percentile");
  mr_cx = sx_sum / static_cast<double>(count) * msx;
  mr_cy = sy_sum / static_cast<double>(count) * msy;
  const int64_t best = *std::max_element(area.begin(), area.end());
  for (int64_t z = 0; z < mz; ++z) {
    if (static_cast<double>(area[static_cast<size_t>(z)]) >= kCandidateAreaFraction * static_cast<double>(best)) {
      mr_slices[static_cast<size_t>(split_of_slice(z))].push_back(z);
    }
  }
  for (int s = 0; s < 3; ++s) {
    if (mr_slices[static_cast<size_t>(s)].empty()) {
      throw Error(what, "no axial slice with enough brain for the " + kSplitNames[static_cast<size_t>(s)] + " split",
                  "pass an MR covering at least 10 slices of brain");
    }
  }
}

// Draws a centre for `lesion` (size fields set) on the record's plane and checks the placement rules;
// false when none is found in a bounded number of draws.
bool MedVqa::Impl::place(const MedVqaImageRecord& r, MedVqaLesion& lesion, LesionSide side, bool constrain_side,
                         const std::vector<MedVqaLesion>& placed, std::mt19937_64& rng) const {
  const PlaneAxes ax = plane_axes(r.plane);
  const Vec3 centre = image_center(r.plane, r.slice);
  const auto axes = lesion_axes(r.plane, lesion.angle_rad);
  const double a = lesion.semi_axes_mm[0], b = lesion.semi_axes_mm[1];
  const double reach = kEdgeOuter * a;  // no point of the soft edge is farther from the centre
  constexpr int kDraws = 200;
  constexpr double kStepMm = 1.5;
  for (int attempt = 0; attempt < kDraws; ++attempt) {
    const double u = uniform(rng, -0.5 * fov, 0.5 * fov), v = uniform(rng, -0.5 * fov, 0.5 * fov);
    const Vec3 c = add(centre, add(scaled(ax.right, u), scaled(ax.down, v)));
    if (!in_mask(brain, c)) continue;
    if (constrain_side) {
      // Clear of the fitted midline and of the image's centre line, on the wanted side.
      const double to_mid = c[2] - midline_x(c[1], c[0]);
      const double to_centre_line = c[2] - centre[2];
      const double sign = side == LesionSide::left ? 1.0 : -1.0;  // patient left = +x
      if (sign * to_mid < reach + kMidlineClearMm || sign * to_centre_line < reach + kMidlineClearMm) continue;
    }
    bool apart = true;
    for (const auto& o : placed) {
      const Vec3 d = sub(c, Vec3{o.center_mm[0], o.center_mm[1], o.center_mm[2]});
      if (std::sqrt(dot(d, d)) < reach + kEdgeOuter * o.semi_axes_mm[0] + kLesionGapMm) apart = false;
    }
    if (!apart) continue;
    // Footprint on a 1.5 mm grid: >= 90% of the nominal ellipse in brain tissue, soft edge in the cavity.
    int inside = 0, in_brain = 0;
    bool ok = true;
    for (double s = -kEdgeOuter * a; s <= kEdgeOuter * a && ok; s += kStepMm) {
      for (double t = -kEdgeOuter * b; t <= kEdgeOuter * b; t += kStepMm) {
        const double rr = std::sqrt((s / a) * (s / a) + (t / b) * (t / b));
        if (rr > kEdgeOuter) continue;
        const Vec3 p = add(c, add(scaled(axes[0], s), scaled(axes[1], t)));
        if (!in_mask(cavity, p)) {
          ok = false;
          break;
        }
        if (rr <= 1.0) {
          ++inside;
          in_brain += in_mask(brain, p);
        }
      }
    }
    if (!ok || inside == 0 || in_brain < kMinBrainFraction * inside) continue;
    lesion.center_mm = c;
    lesion.side = c[2] > midline_x(c[1], c[0]) ? LesionSide::left : LesionSide::right;
    return true;
  }
  return false;
}

MedVqaImageRecord MedVqa::Impl::generate(int split, int64_t i) const {
  // MR or CT: from a hash of its own, so the CT draws below do not depend on the MR share.
  if (mr) {
    std::mt19937_64 pick(mix64(mix64(options.seed) ^ mix64(0x4D520000ULL + static_cast<uint64_t>(split)) ^
                               (static_cast<uint64_t>(i) * 0xC2B2AE3D27D4EB4FULL)));
    if (uniform01(pick) < options.mr_fraction) return generate_mr(split, i);
  }
  std::mt19937_64 rng(mix64(mix64(options.seed) ^ mix64(0x5EED0000ULL + static_cast<uint64_t>(split)) ^
                            (static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ULL)));
  MedVqaImageRecord r;
  const bool abnormal = uniform01(rng) < kAbnormalFraction;
  r.window = uniform01(rng) < kBoneWindowFraction ? CtWindow::bone : CtWindow::brain;
  r.plane = static_cast<CtPlane>(uniform_below(rng, 3));

  // The lesion configuration (drawn for normal images too, see the header).
  const int count = 1 + static_cast<int>(uniform_below(rng, 3));
  std::vector<LesionSide> sides(static_cast<size_t>(count));
  if (count == 1) {
    sides[0] = uniform_below(rng, 2) ? LesionSide::left : LesionSide::right;
  } else {
    const double u = uniform01(rng);
    for (int k = 0; k < count; ++k) {
      if (u < 0.5) {
        sides[static_cast<size_t>(k)] =
            k == 0 ? LesionSide::left
                   : (k == 1 ? LesionSide::right : (uniform_below(rng, 2) ? LesionSide::left : LesionSide::right));
      } else {
        sides[static_cast<size_t>(k)] = u < 0.75 ? LesionSide::left : LesionSide::right;
      }
    }
  }
  const bool hyper = uniform01(rng) < 0.5;
  const int largest = static_cast<int>(uniform_below(rng, 3));
  std::vector<MedVqaLesion> config(static_cast<size_t>(count));
  for (int k = 0; k < count; ++k) {
    MedVqaLesion& l = config[static_cast<size_t>(k)];
    // The others: a smaller class, uniform (small when the largest is small): lesions of two
    // large/medium classes rarely fit beside each other in one hemisphere of a slice.
    const int cls =
        k == 0 ? largest : static_cast<int>(uniform_below(rng, static_cast<uint64_t>(std::max(largest, 1))));
    l.size = static_cast<LesionSize>(cls);
    const auto& range = kSizeDiameterMm[static_cast<size_t>(cls)];
    const double a = 0.5 * uniform(rng, range[0], range[1]);
    l.semi_axes_mm = {a, a * uniform(rng, 0.7, 1.0), a * uniform(rng, 0.7, 1.0)};
    l.angle_rad = uniform(rng, 0, kPi);
    l.delta_hu = hyper ? uniform(rng, kHyperLoHu, kHyperHiHu) : uniform(rng, kHypoLoHu, kHypoHiHu);
  }

  const auto& cands = slices[static_cast<size_t>(split)][static_cast<size_t>(r.plane)];
  const bool constrain_side = r.plane != CtPlane::sagittal;
  bool done = false;
  for (int attempt = 0; attempt < 400 && !done; ++attempt) {
    r.slice = cands[static_cast<size_t>(uniform_below(rng, cands.size()))];
    std::vector<MedVqaLesion> placed;
    done = true;
    for (int k = 0; k < count && done; ++k) {
      MedVqaLesion l = config[static_cast<size_t>(k)];
      if (place(r, l, sides[static_cast<size_t>(k)], constrain_side, placed, rng)) {
        placed.push_back(l);
      } else {
        done = false;
      }
    }
    if (done) r.lesions = std::move(placed);
  }
  if (!done) {
    throw Error("building Med-VQA image " + std::to_string(i) + " of " + kSplitNames[static_cast<size_t>(split)],
                "could not place " + std::to_string(count) + " lesion(s) in 400 " + plane_name(r.plane) + " slices",
                "the volume has too little brain tissue for this benchmark");
  }
  if (!abnormal) r.lesions.clear();

  // Augmentation, drawn whether or not it is used so that augment on/off give the same slices and lesions.
  draw_augmentation(rng, options.augment, kNoiseLoHu, kNoiseHiHu, r);
  return r;
}

void MedVqa::Impl::render(const MedVqaImageRecord& r, bool with_lesions, bool with_noise, float* out) const {
  const int64_t N = options.image_size;
  const double pix = fov / static_cast<double>(N);
  const PlaneAxes ax = plane_axes(r.plane);
  const Vec3 centre = image_center(r.plane, r.slice);
  const double half = 0.5 * static_cast<double>(N);

  // Sub-samples form a regular (2N, 2N) grid; q = the slice's own in-plane coordinates of one.
  // Every map below is affine, so a point and two steps describe it exactly.
  const auto q00 = slice_coords(r, pix, half, 0, 0), q01 = slice_coords(r, pix, half, 0, 1),
             q10 = slice_coords(r, pix, half, 1, 0);
  const double dqu_col = q01[0] - q00[0], dqv_col = q01[1] - q00[1];
  const double dqu_row = q10[0] - q00[0], dqv_row = q10[1] - q00[1];

  // The slice as a 2-D array: voxel coordinates (s, t) along two volume axes; the third axis is the
  // slice index itself (the plane passes through voxel centres).
  const CtVolume& V = *vol;
  const int64_t k = r.slice;
  int as = 1, at = 2;  // volume axes (0 z, 1 y, 2 x) of s and t
  int64_t base = 0, stride_s = 0, ns = 0, nt = 0;
  switch (r.plane) {
    case CtPlane::axial:
      as = 1, at = 2, base = k * R * C, stride_s = C, ns = R, nt = C;
      break;
    case CtPlane::coronal:
      as = 0, at = 2, base = k * C, stride_s = R * C, ns = D, nt = C;
      break;
    case CtPlane::sagittal:
      as = 0, at = 1, base = k, stride_s = R * C, ns = D, nt = R;
      break;
  }
  const int64_t stride_t = r.plane == CtPlane::sagittal ? C : 1;
  const double sp[3] = {sz, sy, sx};
  // (s, t) = (centre + qu * right + qv * down)[as, at] / spacing
  auto st_of = [&](double qu, double qv) -> std::array<double, 2> {
    return {(centre[static_cast<size_t>(as)] + qu * ax.right[static_cast<size_t>(as)] +
             qv * ax.down[static_cast<size_t>(as)]) /
                sp[as],
            (centre[static_cast<size_t>(at)] + qu * ax.right[static_cast<size_t>(at)] +
             qv * ax.down[static_cast<size_t>(at)]) /
                sp[at]};
  };
  const auto st00 = st_of(q00[0], q00[1]), st01 = st_of(q01[0], q01[1]), st10 = st_of(q10[0], q10[1]);
  const double ds_col = st01[0] - st00[0], dt_col = st01[1] - st00[1];
  const double ds_row = st10[0] - st00[0], dt_row = st10[1] - st00[1];
  const int16_t* hu = V.hu.data() + base;
  auto voxel_at = [&](int64_t s, int64_t t) -> double {
    return (s >= 0 && s < ns && t >= 0 && t < nt) ? hu[s * stride_s + t * stride_t] : kAirHu;
  };

  // Lesions in the slice's (qu, qv) coordinates: the plane passes through each centre, so the
  // normalised radius is sqrt((d.A / a)^2 + (d.B / b)^2) with A, B the in-plane axes.
  struct L {
    double cu, cv, ca, sa, inv_a, inv_b, delta, reach2;
  };
  std::vector<L> lesions;
  if (with_lesions) {
    for (const auto& l : r.lesions) {
      const Vec3 d = sub(l.center_mm, centre);
      const double reach = kEdgeOuter * l.semi_axes_mm[0];
      lesions.push_back({dot(d, ax.right), dot(d, ax.down), std::cos(l.angle_rad), std::sin(l.angle_rad),
                         1 / l.semi_axes_mm[0], 1 / l.semi_axes_mm[1], l.delta_hu, reach * reach});
    }
  }

  std::fill(out, out + N * N, 0.0f);
  std::vector<double> acc(static_cast<size_t>(N));
  for (int64_t row = 0; row < 2 * N; ++row) {
    if (row % 2 == 0) std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t col = 0; col < 2 * N; ++col) {
      const double rr = static_cast<double>(row), cc = static_cast<double>(col);
      const double s = st00[0] + rr * ds_row + cc * ds_col, t = st00[1] + rr * dt_row + cc * dt_col;
      const double s0f = std::floor(s), t0f = std::floor(t);
      const auto s0 = static_cast<int64_t>(s0f), t0 = static_cast<int64_t>(t0f);
      const double fs = s - s0f, ft = t - t0f;
      double v;
      if (s0 >= 0 && s0 + 1 < ns && t0 >= 0 && t0 + 1 < nt) {
        const int16_t* p = hu + s0 * stride_s + t0 * stride_t;
        v = (1 - fs) * ((1 - ft) * p[0] + ft * p[stride_t]) +
            fs * ((1 - ft) * p[stride_s] + ft * p[stride_s + stride_t]);
      } else {
        v = (1 - fs) * ((1 - ft) * voxel_at(s0, t0) + ft * voxel_at(s0, t0 + 1)) +
            fs * ((1 - ft) * voxel_at(s0 + 1, t0) + ft * voxel_at(s0 + 1, t0 + 1));
      }
      if (!lesions.empty()) {
        const double qu = q00[0] + rr * dqu_row + cc * dqu_col, qv = q00[1] + rr * dqv_row + cc * dqv_col;
        for (const auto& l : lesions) {
          const double du = qu - l.cu, dv = qv - l.cv;
          if (du * du + dv * dv >= l.reach2) continue;
          const double a = (du * l.ca + dv * l.sa) * l.inv_a, b = (-du * l.sa + dv * l.ca) * l.inv_b;
          v += l.delta * edge_weight(std::sqrt(a * a + b * b));
        }
      }
      acc[static_cast<size_t>(col / 2)] += v;
    }
    if (row % 2 == 1) {
      for (int64_t j = 0; j < N; ++j) out[(row / 2) * N + j] = static_cast<float>(0.25 * acc[static_cast<size_t>(j)]);
    }
  }
  if (with_noise) add_noise(r, N * N, out);
}

MedVqaImageRecord MedVqa::Impl::generate_mr(int split, int64_t i) const {
  std::mt19937_64 rng(mix64(mix64(options.seed) ^ mix64(0x4D52AA00ULL + static_cast<uint64_t>(split)) ^
                            (static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ULL)));
  MedVqaImageRecord r;
  r.modality = MedModality::mr;
  r.plane = CtPlane::axial;
  const auto& cands = mr_slices[static_cast<size_t>(split)];
  r.slice = cands[static_cast<size_t>(uniform_below(rng, cands.size()))];
  r.frame = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(mt)));
  draw_augmentation(rng, options.augment, kMrNoiseLo * mr_ref, kMrNoiseHi * mr_ref, r);
  return r;
}

// Axial MR slice on the CT's pixel grid: display (u right, v down) in mm from the image centre maps,
// through the inverse augmentation, to slice coordinates (qu, qv), then to x = cx + qu (image right =
// patient left = +x) and y = cy - qv (image up = anterior = +y). 2 x 2 sub-samples per pixel,
// bilinear, 0 outside the volume.
void MedVqa::Impl::render_mr(const MedVqaImageRecord& r, bool with_noise, float* out) const {
  const int64_t N = options.image_size;
  const double pix = fov / static_cast<double>(N);
  const double half = 0.5 * static_cast<double>(N);
  const float* plane = mr->data.data() + (r.frame * mz + r.slice) * my * mx;  // (my, mx)
  auto value = [&](int64_t x, int64_t y) -> double {
    return (x >= 0 && x < mx && y >= 0 && y < my) ? plane[y * mx + x] : 0.0;
  };
  for (int64_t row = 0; row < N; ++row) {
    for (int64_t col = 0; col < N; ++col) {
      double acc = 0;
      for (int sub = 0; sub < 4; ++sub) {
        const auto q = slice_coords(r, pix, half, static_cast<double>(2 * row + sub / 2),
                                    static_cast<double>(2 * col + sub % 2));
        const double x = (mr_cx + q[0]) / msx, y = (mr_cy - q[1]) / msy;
        const double x0f = std::floor(x), y0f = std::floor(y);
        const auto x0 = static_cast<int64_t>(x0f), y0 = static_cast<int64_t>(y0f);
        const double fx = x - x0f, fy = y - y0f;
        acc += (1 - fy) * ((1 - fx) * value(x0, y0) + fx * value(x0 + 1, y0)) +
               fy * ((1 - fx) * value(x0, y0 + 1) + fx * value(x0 + 1, y0 + 1));
      }
      out[row * N + col] = static_cast<float>(0.25 * acc);
    }
  }
  if (with_noise) add_noise(r, N * N, out);
}

void MedVqa::Impl::build_split(int split, int64_t n) {
  Split& s = splits[static_cast<size_t>(split)];
  const int64_t N = options.image_size;
  s.records.resize(static_cast<size_t>(n));
  s.images.n = n;
  s.images.rows = N;
  s.images.cols = N;
  s.images.pixels.resize(static_cast<size_t>(n * N * N));  // (n, N, N)
  s.images.labels.resize(static_cast<size_t>(n));          // (n,)
  std::vector<float> hu(static_cast<size_t>(N * N));
  for (int64_t i = 0; i < n; ++i) {
    MedVqaImageRecord& r = s.records[static_cast<size_t>(i)];
    r = generate(split, i);
    // Gray = 255 * (value - lo) / width: the CT window (lo = L - W/2), or MR's 0..reference.
    double lo = 0, width = mr_ref;
    if (r.modality == MedModality::mr) {
      render_mr(r, true, hu.data());
      s.images.labels[static_cast<size_t>(i)] = kMrLabel;
    } else {
      render(r, true, true, hu.data());
      const auto [w, l] = window_width_level(r.window);
      lo = l - 0.5 * w;
      width = w;
      s.images.labels[static_cast<size_t>(i)] = static_cast<uint8_t>(
          static_cast<int>(r.plane) + 3 * static_cast<int>(r.window) + 6 * static_cast<int>(r.lesions.size()));
    }
    uint8_t* px = s.images.pixels.data() + i * N * N;
    for (int64_t k = 0; k < N * N; ++k) {
      const double g = std::floor(255.0 * (hu[static_cast<size_t>(k)] - lo) / width + 0.5);
      px[k] = static_cast<uint8_t>(std::clamp(g, 0.0, 255.0));
    }
  }
}

// ---- public API ----------------------------------------------------------------------------------------

MedVqa::MedVqa(const MedVqaOptions& options)
    : MedVqa(options, std::make_shared<const CtVolume>(
                          load_inv3(options.ct_path.empty() ? default_inv3_path() : options.ct_path))) {}

MedVqa::MedVqa(const MedVqaOptions& options, std::shared_ptr<const CtVolume> volume,
               std::shared_ptr<const NiftiVolume> mr)
    : impl_(std::make_unique<Impl>()) {
  const std::string what = "building Med-VQA";
  if (options.image_size < 32 || options.image_size > 1024) {
    throw Error(what, "image_size must be in [32, 1024] (got " + std::to_string(options.image_size) + ")");
  }
  const int64_t counts[3] = {options.train_images, options.val_images, options.test_images};
  const char* names[3] = {"train_images", "val_images", "test_images"};
  for (int s = 0; s < 3; ++s) {
    if (counts[s] < 0 || counts[s] > 10'000'000) {
      throw Error(what, std::string(names[s]) + " must be in [0, 10000000] (got " + std::to_string(counts[s]) + ")");
    }
  }
  if (!(options.mr_fraction >= 0 && options.mr_fraction < 1)) {
    throw Error(what, "the MR share must be in [0, 1) (got " + std::to_string(options.mr_fraction) + ")");
  }
  if (!volume) throw Error(what, "no CT volume given");
  impl_->options = options;
  if (impl_->options.ct_path.empty()) impl_->options.ct_path = default_inv3_path();
  if (impl_->options.mr_path.empty()) impl_->options.mr_path = default_nifti_mr_path();
  impl_->vol = std::move(volume);
  impl_->analyse();
  if (options.mr_fraction > 0) {
    impl_->mr = mr ? std::move(mr) : std::make_shared<const NiftiVolume>(read_nifti(impl_->options.mr_path));
    impl_->analyse_mr();
  }
  for (int s = 0; s < 3; ++s) impl_->build_split(s, counts[s]);
}

MedVqa::~MedVqa() = default;
MedVqa::MedVqa(MedVqa&&) noexcept = default;
MedVqa& MedVqa::operator=(MedVqa&&) noexcept = default;

namespace {
int split_index(const std::string& name) {
  for (int s = 0; s < 3; ++s) {
    if (name == kSplitNames[static_cast<size_t>(s)]) return s;
  }
  throw Error("selecting a Med-VQA split", "unknown split '" + name + "'", "use one of: train, val, test");
}
}  // namespace

const ImageSet& MedVqa::images(const std::string& split) const {
  return impl_->splits[static_cast<size_t>(split_index(split))].images;
}

const std::vector<MedVqaImageRecord>& MedVqa::records(const std::string& split) const {
  return impl_->splits[static_cast<size_t>(split_index(split))].records;
}

const MedVqaOptions& MedVqa::options() const { return impl_->options; }
std::array<double, 3> MedVqa::midline() const { return {impl_->mid_a, impl_->mid_b, impl_->mid_c}; }
double MedVqa::fov_mm() const { return impl_->fov; }

const std::vector<int64_t>& MedVqa::slices(CtPlane plane, const std::string& split) const {
  const int p = static_cast<int>(plane);
  if (p < 0 || p > 2) throw Error("listing Med-VQA slices", "plane " + std::to_string(p) + " is not 0..2");
  return impl_->slices[static_cast<size_t>(split_index(split))][static_cast<size_t>(p)];
}

std::array<double, 2> MedVqa::mr_centre_mm() const {
  if (!impl_->mr) throw Error("asking for the MR centre", "this Med-VQA has no MR images (MR share 0)");
  return {impl_->mr_cx, impl_->mr_cy};
}

double MedVqa::mr_reference() const {
  if (!impl_->mr) throw Error("asking for the MR reference", "this Med-VQA has no MR images (MR share 0)");
  return impl_->mr_ref;
}

const std::vector<int64_t>& MedVqa::mr_slices(const std::string& split) const {
  return impl_->mr_slices[static_cast<size_t>(split_index(split))];
}

std::array<double, 2> MedVqa::window_width_level(CtWindow w) {
  return w == CtWindow::bone ? std::array<double, 2>{2000, 500} : std::array<double, 2>{80, 40};
}

std::vector<float> MedVqa::render_hu(const MedVqaImageRecord& r, bool with_lesions, bool with_noise) const {
  if (static_cast<int>(r.plane) < 0 || static_cast<int>(r.plane) > 2 || r.scale <= 0) {
    throw Error("rendering a Med-VQA image", "the record has plane " + std::to_string(static_cast<int>(r.plane)) +
                                                 " and scale " + std::to_string(r.scale) +
                                                 " (need plane 0..2, scale > 0)");
  }
  const int64_t N = impl_->options.image_size;
  std::vector<float> out(static_cast<size_t>(N * N));  // (N, N)
  if (r.modality == MedModality::mr) {
    const auto& m = *impl_;
    if (!m.mr || r.slice < 0 || r.slice >= m.mz || r.frame < 0 || r.frame >= m.mt) {
      throw Error("rendering a Med-VQA MR image", "slice " + std::to_string(r.slice) + ", time point " +
                                                     std::to_string(r.frame) + " is not in this benchmark's MR");
    }
    impl_->render_mr(r, with_noise, out.data());
  } else {
    impl_->render(r, with_lesions, with_noise, out.data());
  }
  return out;
}

const std::vector<std::string>& MedVqa::type_names() {
  static const std::vector<std::string> names = {"modality", "plane", "organ", "level", "window",
                                                 "abnormal", "count", "side",  "size",  "density"};
  return names;
}

const std::vector<std::string>& MedVqa::questions(int type) {
  static const std::array<std::vector<std::string>, kMedQuestionTypes> q = {{
      {"what imaging modality is this?", "what kind of scan is this?", "how was this image taken?"},
      {"in which plane is this image?", "what plane is this slice in?", "which plane is shown?"},
      {"what organ is shown?", "which organ is imaged?", "what organ is this?"},
      {"at what level is this axial slice?", "how high in the head is this slice?",
       "which part of the head is this slice from?"},
      {"which window is used?", "is this a brain window or a bone window?", "what window setting is shown?"},
      {"is there a lesion?", "is there an abnormality?", "is anything abnormal in this image?"},
      {"how many lesions are there?", "how many lesions are seen?", "what is the number of lesions?"},
      {"which side is the lesion on?", "on which side of the brain is the abnormality?",
       "is the lesion on the left or the right?"},
      {"how large is the largest lesion?", "what size is the lesion?", "how big is the lesion?"},
      {"is the lesion hyperdense or hypodense?", "what is the density of the lesion?",
       "is the lesion brighter or darker than the brain?"},
  }};
  return q[static_cast<size_t>(check_type(type, "listing Med-VQA questions"))];
}

const std::vector<std::string>& MedVqa::answers(int type) {
  static const std::array<std::vector<std::string>, kMedQuestionTypes> a = {{
      {"ct", "mri"},
      {"axial", "coronal", "sagittal"},
      {"brain"},
      {"lower", "middle", "upper"},
      {"brain", "bone"},
      {"yes", "no"},
      {"0", "1", "2", "3"},
      {"left", "right", "both", "none"},
      {"small", "medium", "large", "none"},
      {"hyperdense", "hypodense", "none"},
  }};
  return a[static_cast<size_t>(check_type(type, "listing Med-VQA answers"))];
}

std::optional<int> MedVqa::question_type(std::string_view question) {
  const std::string q = normalise_question(question);
  for (int t = 0; t < kMedQuestionTypes; ++t) {
    for (const auto& p : questions(t)) {
      if (normalise_question(p) == q) return t;
    }
  }
  return std::nullopt;
}

bool MedVqa::applies(const MedVqaImageRecord& r, int type) {
  const auto t = static_cast<MedQuestionType>(check_type(type, "checking a Med-VQA question type"));
  if (r.modality == MedModality::mr) {
    return t == MedQuestionType::modality || t == MedQuestionType::plane || t == MedQuestionType::organ;
  }
  switch (t) {
    case MedQuestionType::modality:
    case MedQuestionType::plane:
    case MedQuestionType::organ:
    case MedQuestionType::window:
      return true;
    case MedQuestionType::level:
      return r.plane == CtPlane::axial;
    case MedQuestionType::abnormal:
    case MedQuestionType::count:
    case MedQuestionType::size:
    case MedQuestionType::density:
      return r.window == CtWindow::brain;
    case MedQuestionType::side:
      return r.window == CtWindow::brain && r.plane != CtPlane::sagittal;
  }
  return false;
}

std::string MedVqa::answer_for(const MedVqaImageRecord& r, int type) const {
  const std::string what = "answering a Med-VQA question";
  if (!applies(r, type)) {
    throw Error(what, "question type '" + type_names()[static_cast<size_t>(type)] + "' is not asked of " +
                          (r.modality == MedModality::mr
                               ? std::string("an MR image")
                               : std::string("a ") + plane_name(r.plane) +
                                     (r.window == CtWindow::bone ? " bone-window" : " brain-window") + " CT image"));
  }
  const auto& ans = answers(type);
  const auto& les = r.lesions;
  switch (static_cast<MedQuestionType>(type)) {
    case MedQuestionType::modality:
      return ans[static_cast<size_t>(r.modality)];
    case MedQuestionType::plane:
      return ans[static_cast<size_t>(r.plane)];
    case MedQuestionType::organ:
      return ans[0];
    case MedQuestionType::level: {
      const double span = static_cast<double>(impl_->axial_hi - impl_->axial_lo + 1);
      const double t = static_cast<double>(r.slice - impl_->axial_lo) / span;
      return ans[t < 1.0 / 3 ? 0 : (t < 2.0 / 3 ? 1 : 2)];
    }
    case MedQuestionType::window:
      return ans[static_cast<size_t>(r.window)];
    case MedQuestionType::abnormal:
      return les.empty() ? "no" : "yes";
    case MedQuestionType::count:
      return ans[les.size()];
    case MedQuestionType::side: {
      if (les.empty()) return "none";
      bool left = false, right = false;
      for (const auto& l : les) (l.side == LesionSide::left ? left : right) = true;
      return left && right ? "both" : (left ? "left" : "right");
    }
    case MedQuestionType::size: {
      if (les.empty()) return "none";
      int best = 0;
      for (const auto& l : les) best = std::max(best, static_cast<int>(l.size));
      return ans[static_cast<size_t>(best)];
    }
    case MedQuestionType::density:
      if (les.empty()) return "none";
      return les[0].delta_hu > 0 ? "hyperdense" : "hypodense";
  }
  return {};
}

std::vector<MedVqaSample> MedVqa::samples(const std::string& split) const {
  const auto& recs = records(split);
  const bool vary = split == "train";
  std::vector<MedVqaSample> out;
  out.reserve(recs.size() * 8);
  for (size_t i = 0; i < recs.size(); ++i) {
    for (int t = 0; t < kMedQuestionTypes; ++t) {
      if (!applies(recs[i], t)) continue;
      int paraphrase = 0;
      if (vary) {
        const uint64_t key = static_cast<uint64_t>(i) * kMedQuestionTypes + static_cast<uint64_t>(t);
        const uint64_t h = mix64(mix64(impl_->options.seed) ^ (key * 0x9E3779B97F4A7C15ULL));
        paraphrase = static_cast<int>(h % questions(t).size());
      }
      out.push_back({static_cast<int64_t>(i), t, paraphrase});
    }
  }
  return out;
}

std::string MedVqa::question_text(const MedVqaSample& s) const {
  const auto& qs = questions(s.type);
  if (s.paraphrase < 0 || s.paraphrase >= static_cast<int>(qs.size())) {
    throw Error("building a Med-VQA question", "paraphrase " + std::to_string(s.paraphrase) + " of type " +
                                                   type_names()[static_cast<size_t>(s.type)] + " is outside 0.." +
                                                   std::to_string(qs.size() - 1));
  }
  return qs[static_cast<size_t>(s.paraphrase)];
}

std::string MedVqa::answer(const std::string& split, const MedVqaSample& s) const {
  const auto& recs = records(split);
  if (s.image < 0 || s.image >= static_cast<int64_t>(recs.size())) {
    throw Error("answering a Med-VQA question", "image " + std::to_string(s.image) + " is outside the " + split +
                                                    " split (" + std::to_string(recs.size()) + " images)");
  }
  return answer_for(recs[static_cast<size_t>(s.image)], s.type);
}

WordTokenizer MedVqa::make_tokenizer() {
  std::vector<std::string> texts;
  for (int t = 0; t < kMedQuestionTypes; ++t) {
    for (const auto& q : questions(t)) texts.push_back(q);
    for (const auto& a : answers(t)) texts.push_back(a);
  }
  return WordTokenizer::build(texts);
}

std::vector<std::filesystem::path> MedVqa::write_sample_pngs(const std::filesystem::path& dir, int n) const {
  const std::string what = "writing Med-VQA sample images to " + dir.string();
  const auto& recs = records("test");
  const ImageSet& set = images("test");
  if (n < 0 || n > static_cast<int>(recs.size())) {
    throw Error(what, "n = " + std::to_string(n) + " is outside 0.." + std::to_string(recs.size()) +
                          " (the test split's size)");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(what, "cannot create the directory: " + ec.message());
  // One image per (plane, window, normal/abnormal) first, then the rest in order.
  std::vector<size_t> chosen;
  std::set<int> kinds;
  for (size_t i = 0; i < recs.size() && static_cast<int>(chosen.size()) < n; ++i) {
    const int kind = recs[i].modality == MedModality::mr
                         ? 12
                         : static_cast<int>(recs[i].plane) * 4 + static_cast<int>(recs[i].window) * 2 +
                               !recs[i].lesions.empty();
    if (kinds.insert(kind).second) chosen.push_back(i);
  }
  for (size_t i = 0; i < recs.size() && static_cast<int>(chosen.size()) < n; ++i) {
    if (std::find(chosen.begin(), chosen.end(), i) == chosen.end()) chosen.push_back(i);
  }
  const int64_t N = set.rows;
  std::vector<std::filesystem::path> paths;
  std::string md = "| image | test index | questions (canonical) and answers |\n|---|---|---|\n";
  for (size_t k = 0; k < chosen.size(); ++k) {
    const size_t i = chosen[k];
    const std::vector<uint8_t> px(set.pixels.begin() + static_cast<std::ptrdiff_t>(i * N * N),
                                  set.pixels.begin() + static_cast<std::ptrdiff_t>((i + 1) * N * N));
    const auto path = dir / ("med_vqa_" + std::to_string(k) + ".png");
    write_png_gray8(path, px, N, N);
    paths.push_back(path);
    md += "| ![med_vqa_" + std::to_string(k) + "](" + path.filename().string() + ") | " + std::to_string(i) + " | ";
    bool first = true;
    for (int t = 0; t < kMedQuestionTypes; ++t) {
      if (!applies(recs[i], t)) continue;
      md += (first ? "" : "<br>") + questions(t)[0] + " **" + answer_for(recs[i], t) + "**";
      first = false;
    }
    md += " |\n";
  }
  write_file_atomic(dir / "med_vqa_samples.md", md);
  return paths;
}

}  // namespace spikefm
