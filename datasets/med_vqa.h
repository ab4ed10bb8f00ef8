// Med-VQA: a VQA-RAD-style medical visual question answering benchmark built, with known ground
// truth, from two real scans: a head CT, Cranium.inv3 of the Debian package invesalius-examples (read
// by inv3_reader.h; 108 x 256 x 256 voxels of 1.5 x 0.957 x 0.957 mm, int16 HU), and a brain MR,
// example4d.nii.gz of python3-nibabel (read by nifti.h; a 128 x 96 x 24 echo-planar volume of
// 2 x 2 x 2.2 mm at 2 time points). See docs/benchmarks.md. Everything below the MR section is
// about the CT images.
//
// MR images (MedVqaOptions::mr_fraction of every split, 20% by default; image i is MR when a hash of
// (seed, split, i) says so, independently of the CT draws, so the CT images at the other indices are
// exactly those of mr_fraction = 0). Axial only (the volume is an axial slab through the middle of
// the brain), one of its time points, in radiological convention like the CT (image up = anterior,
// image right = patient LEFT; the file stores x toward the patient's left, y anterior, z superior —
// "LAS", checked with nibabel; other orientations are not detected), on the CT's pixel grid (same mm
// per pixel), centred on the brain (voxels above 20% of the reference). Gray = 255 * value / ref,
// rounded and clamped, ref = the volume's 99.5th percentile (MR has no absolute scale, hence no
// window). Same rotation/scale/shift augmentation as the CT; noise sigma U(1, 4)% of ref. No findings
// are inserted; MR images are asked modality (mri), plane (axial) and organ (brain) only. Slices are
// dealt to splits by index like the CT's (below), among those whose brain area is >= 35% of the
// largest.
//
// Patient axes of the volume. The .inv3 file carries no direction cosines, so they are fixed here:
//   z (depth)  inferior -> superior   (verified from anatomy: maxilla at z = 0, vertex at the top)
//   y (rows)   posterior -> anterior  (verified: the face and frontal sinus lie at high rows; InVesalius
//                                      flips DICOM rows on import)
//   x (cols)   patient right -> left  (assumed: the DICOM default row direction, which InVesalius keeps;
//                                      a head is too symmetric to verify this from the image)
// The midline is the plane x_mm = a + b*y_mm + c*z_mm fitted to the centres of the cranial cavity
// row by row; "left"/"right" below are the patient's, relative to that plane.
//
// Images (image_size x image_size uint8, default 48). A slice in one plane through an integer voxel
// position along its normal, sampled on an isotropic grid (one pixel = fov_mm / image_size in both
// directions, whatever the voxel spacing; 2x2 sub-samples per pixel, trilinear) in radiological
// convention, the same for every image of a plane:
//   axial     image up = anterior,  image right = patient LEFT   (seen from the feet)
//   coronal   image up = superior,  image right = patient LEFT   (seen from the front)
//   sagittal  image up = superior,  image right = posterior      (face on the left; no left/right)
// Never flipped. Outside the scanned volume is air (-1024 HU): coronal and sagittal images show the
// scan's straight lower edge. Augmentations (MedVqaOptions::augment): rotation U(-10, 10) degrees,
// scale U(0.95, 1.05), shift U(-6, 6) mm per axis, Gaussian noise sigma U(1, 4) HU per pixel.
// Window, then round and clamp to 0..255: gray = 255 * (HU - (L - W/2)) / W, with
//   brain  W 80 / L 40 HU   (75% of images)      bone  W 2000 / L 500 HU   (25%)
// (standard head-CT presets; sources in docs/benchmarks.md).
//
// Findings. Half the images (Bernoulli 0.5) are abnormal with 1..3 lesions, all of one density,
// added to the HU before the window:
//   hyperdense  +35..+55 HU   (acute haemorrhage: 60..80 HU against parenchyma at 25..40 HU)
//   hypodense   -15..-30 HU   (infarct / oedema: 10..25 HU against the same parenchyma)
// Each is an ellipsoid cut through its centre by the image plane (semi-axes a >= b in the plane,
// n <= a across it), with a soft edge: weight 1 inside r = 0.85, raised cosine to 0 at r = 1.15
// (r = normalised ellipsoid radius). Size class = the longest diameter 2a:
//   small 10..16 mm   medium 20..28 mm   large 32..40 mm
// Placement (centre drawn uniformly in the slice, rejected until every rule holds):
//   - >= 90% of the nominal ellipse on brain tissue: cranial-cavity voxels whose 3x3x3 mean is in
//     15..45 HU (this scan's parenchyma peaks at 20..25 HU and its CSF near 0, hence 15 rather than
//     the textbook 20), and the whole soft edge inside the cavity;
//   - soft edges >= 3 mm apart;
//   - on axial/coronal images, the soft edge >= 2 mm clear of the midline and of the image's
//     vertical centre line, on the lesion's side (so a lesion never spills to the other side).
// Balance: count uniform in 1..3; a single lesion is left or right (1/2 each); two or three are
// both-sided (1/2), all left (1/4) or all right (1/4), so left/right/both are 1/3 each; the largest
// lesion's class is uniform, the others are of a smaller class (small when the largest is small),
// which keeps three lesions placeable in one hemisphere. Normal images draw and place the same
// configuration, then drop it, so slice positions say nothing about the answer.
//
// Ground-truth rule for the bone window: a +35 HU lesion is ~4 gray levels in a 2000 HU window and
// a hypodense one ~2, below the noise. Lesions are inserted in bone-window images too (drawn the same
// way), but the finding questions (abnormal, count, side, size, density) are asked only of
// brain-window images; answers always reflect what was inserted.
//
// Question types (closed answers; the first paraphrase is canonical, asked in val/test; train picks
// one by a hash of image, type and seed):
//   type      asked of                      answers
//   modality  every image                   ct mri
//   plane     every image                   axial coronal sagittal
//   organ     every image                   brain
//   level     axial CT images               lower middle upper   (thirds of the axial slice range)
//   window    every CT image                brain bone
//   abnormal  brain window                  yes no
//   count     brain window                  0 1 2 3
//   side      brain window, axial/coronal   left right both none
//   size      brain window                  small medium large none   (of the largest lesion)
//   density   brain window                  hyperdense hypodense none
//
// Splits: along each plane's normal, candidate slices (brain area >= 35% of the plane's largest) are
// dealt by voxel index: index mod 10 in 0..6 -> train, 7 -> val, 8..9 -> test, so no slice position
// (hence no image) is shared between splits. Image i of a split is generated from its own
// std::mt19937_64 seeded by hash(seed, split, i): the same seed gives identical pixels and questions.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/fashion_mnist.h"  // ImageSet
#include "datasets/inv3_reader.h"
#include "datasets/nifti.h"
#include "datasets/tokenizer.h"

namespace spikefm {

enum class MedQuestionType { modality, plane, organ, level, window, abnormal, count, side, size, density };
inline constexpr int kMedQuestionTypes = 10;

enum class MedModality { ct, mr };
enum class CtPlane { axial, coronal, sagittal };
enum class CtWindow { brain, bone };
enum class LesionSide { right, left };
enum class LesionSize { small, medium, large };

struct MedVqaOptions {
  uint64_t seed = 0;
  int64_t image_size = 48;  // pixels per side, >= 32
  int64_t train_images = 4000, val_images = 500, test_images = 1000;
  std::filesystem::path ct_path;  // empty: default_inv3_path()
  std::filesystem::path mr_path;  // empty: default_nifti_mr_path()
  double mr_fraction = 0.2;       // share of MR images in every split, in [0, 1); 0 = CT only, no MR file read
  bool augment = true;            // rotation/scale/shift and noise; off renders the plain slice
};

struct MedVqaLesion {
  std::array<double, 3> center_mm{};     // (z, y, x) in volume mm (voxel index * spacing), on the image plane
  std::array<double, 3> semi_axes_mm{};  // (a, b, n): in-plane a >= b, and n along the plane normal; a >= n
  double angle_rad = 0;                  // axis a from the plane's image-right axis toward image-down
  double delta_hu = 0;                   // > 0 hyperdense, < 0 hypodense
  LesionSide side = LesionSide::right;   // of the centre relative to the midline
  LesionSize size = LesionSize::small;   // of the longest diameter 2a
};

// Everything an image was generated from; answers follow from it alone.
struct MedVqaImageRecord {
  MedModality modality = MedModality::ct;
  CtPlane plane = CtPlane::axial;  // always axial for MR
  int64_t slice = 0;  // voxel index along the normal: z (axial), y (coronal), x (sagittal); MR: z
  int64_t frame = 0;  // MR: the time point; CT: 0
  CtWindow window = CtWindow::brain;  // MR: brain, unused (no window question)
  std::vector<MedVqaLesion> lesions;  // empty for a normal image (and every MR image)
  // Augmentation: the slice is rotated by rotation_rad (clockwise on screen), scaled, then shifted.
  double rotation_rad = 0, scale = 1, shift_u_mm = 0, shift_v_mm = 0;
  double noise_hu = 0;      // per-pixel Gaussian sigma (MR: in the volume's units)
  uint64_t noise_seed = 0;  // of the noise generator
};

struct MedVqaSample {
  int64_t image;   // index into images(split)
  int type;        // MedQuestionType as int
  int paraphrase;  // index into questions(type)
};

class MedVqa {
 public:
  // Loads the CT from options.ct_path (or default_inv3_path()) and, when mr_fraction > 0, the MR from
  // options.mr_path (or default_nifti_mr_path()), and builds the three splits.
  explicit MedVqa(const MedVqaOptions& options);
  // Builds from already loaded volumes (tests and sweeps reuse one load); a null mr is loaded from
  // options.mr_path when mr_fraction > 0.
  MedVqa(const MedVqaOptions& options, std::shared_ptr<const CtVolume> volume,
         std::shared_ptr<const NiftiVolume> mr = nullptr);
  ~MedVqa();
  MedVqa(MedVqa&&) noexcept;
  MedVqa& operator=(MedVqa&&) noexcept;

  // split = "train" | "val" | "test"; any other name throws an Error listing these.
  // labels[i] = plane + 3 * window + 6 * lesion count (0..23) for CT, 24 for MR; see the enums above.
  const ImageSet& images(const std::string& split) const;
  const std::vector<MedVqaImageRecord>& records(const std::string& split) const;

  // Every image with every question type that applies to it (table above), image-major, types in
  // enum order.
  std::vector<MedVqaSample> samples(const std::string& split) const;
  std::string question_text(const MedVqaSample& s) const;
  std::string answer(const std::string& split, const MedVqaSample& s) const;

  // The answer of a type for a record; throws if the type is not asked of that image.
  std::string answer_for(const MedVqaImageRecord& r, int type) const;
  // Whether a question type is asked of an image (the "asked of" column).
  static bool applies(const MedVqaImageRecord& r, int type);

  // The image of a record before the window: (image_size, image_size), row-major, in HU (CT) or the
  // MR volume's units. with_noise adds the record's noise; with_lesions = false leaves the findings out.
  std::vector<float> render_hu(const MedVqaImageRecord& r, bool with_lesions, bool with_noise) const;
  // (W, L) in HU of a window: brain (80, 40), bone (2000, 500).
  static std::array<double, 2> window_width_level(CtWindow w);

  // The fitted midline x_mm = a + b*y_mm + c*z_mm as (a, b, c), and the square field of view.
  std::array<double, 3> midline() const;
  double fov_mm() const;
  // MR: the brain's centre in the axial plane, (x, y) in mm (voxel index * spacing), on which MR
  // images are centred, and the intensity that maps to gray 255. Throw when the benchmark has no MR.
  std::array<double, 2> mr_centre_mm() const;
  double mr_reference() const;
  // Candidate MR slice indices (z) in a split (ascending); empty without MR.
  const std::vector<int64_t>& mr_slices(const std::string& split) const;
  // Candidate slice indices of a plane in a split (ascending).
  const std::vector<int64_t>& slices(CtPlane plane, const std::string& split) const;

  // Writes n test images as dir/med_vqa_<k>.png (k = 0..n-1, chosen to cover planes, windows and
  // normal/abnormal) and dir/med_vqa_samples.md, a table of each image's canonical questions and
  // answers. Returns the PNG paths.
  std::vector<std::filesystem::path> write_sample_pngs(const std::filesystem::path& dir, int n) const;

  const MedVqaOptions& options() const;

  // "modality", "plane", "organ", "level", "window", "abnormal", "count", "side", "size", "density".
  static const std::vector<std::string>& type_names();
  // The paraphrases of a type, canonical first; every possible answer of a type.
  static const std::vector<std::string>& questions(int type);
  static const std::vector<std::string>& answers(int type);
  // The type whose paraphrase equals `question` after normalisation (ASCII lower-case, whitespace
  // runs collapsed, ends trimmed, one trailing '?' optional), else std::nullopt.
  static std::optional<int> question_type(std::string_view question);
  // Over every paraphrase and every answer; independent of data and seed.
  static WordTokenizer make_tokenizer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikefm
