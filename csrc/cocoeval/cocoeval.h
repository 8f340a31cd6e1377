// COCO keypoint evaluation core: per-image OKS + greedy matching (COCOeval.evaluateImg) and
// precision/recall accumulation (COCOeval.accumulate), bit-for-bit with pycocotools.
// Inputs are flat arrays prepared by pyhpe/eval/coco.py (which mirrors COCO.loadRes and
// COCOeval._prepare); summarize() stays in numpy there so its means are numpy's too.
#pragma once

#include <stdint.h>

#include <vector>

namespace pyhpe {
namespace cocoeval {

// Borrowed views; the caller keeps the buffers alive for the evaluator's lifetime.
struct Annotations {
  int64_t count = 0;
  const int64_t* image = nullptr;     // index into the sorted image ids
  const int64_t* category = nullptr;  // index into the sorted category ids
  const int64_t* id = nullptr;
  const double* keypoints = nullptr;  // count x K x 3
  const double* oks_area = nullptr;   // area used in the OKS denominator
  const double* range_area = nullptr; // area tested against the area ranges
  const double* bbox = nullptr;       // count x 4 (GT only; nullptr for detections)
  const double* score = nullptr;      // detections only
  const uint8_t* iscrowd = nullptr;   // GT only
  const uint8_t* ignore = nullptr;    // GT only: iscrowd or no keypoints (already resolved)
};

struct Params {
  int64_t num_images = 0;
  int64_t num_categories = 0;
  int num_keypoints = 0;
  std::vector<double> sigmas;
  std::vector<double> iou_thrs;
  std::vector<double> rec_thrs;
  std::vector<double> area_rngs;  // A x 2 (lo, hi), both inclusive
  std::vector<int64_t> max_dets;  // sorted ascending
  // pycocotools marks "unmatched" with GT id 0, so a match to a GT whose id is 0 counts as
  // a miss in accumulate(); xtcocotools uses -1 instead.
  bool zero_gt_id_is_unmatched = true;
};

// evaluateImg's output for one (category, area range, image).
struct ImageResult {
  bool present = false;  // false where pycocotools returns None (no GT and no detection)
  int64_t num_dt = 0, num_gt = 0;
  std::vector<double> dt_scores;      // D, sorted high to low, cut at max_dets.back()
  std::vector<int64_t> dt_matches;    // T x D: matched GT id, or the "unmatched" sentinel
  std::vector<uint8_t> dt_ignore;     // T x D
  std::vector<uint8_t> gt_ignore;     // G, in matching order (non-ignored first)
};

struct Accumulated {
  std::vector<double> precision;  // T x R x K x A x M
  std::vector<double> recall;     // T x K x A x M
  std::vector<double> scores;     // T x R x K x A x M
};

class KeypointEvaluator {
 public:
  KeypointEvaluator(const Annotations& gt, const Annotations& dt, Params params);

  // OKS matrices and matching for every (category, area range, image).
  void evaluate();
  // Precision/recall over the images in `image_indices` (all images when empty).
  Accumulated accumulate(const std::vector<int64_t>& image_indices) const;

  // OKS of image/category: detections (score-sorted, cut) x GT (original order).
  std::vector<double> ious(int64_t image, int64_t category, int64_t* rows, int64_t* cols) const;
  const ImageResult& image_result(int64_t category, int64_t area, int64_t image) const;
  const Params& params() const { return params_; }
  bool evaluated() const { return evaluated_; }

 private:
  int64_t group(int64_t image, int64_t category) const { return category * params_.num_images + image; }
  std::vector<int64_t> sorted_detections(int64_t g) const;
  std::vector<double> oks_block(int64_t g, const std::vector<int64_t>& dts, int64_t* rows,
                                int64_t* cols) const;
  void compute_group(int64_t g);

  Annotations gt_, dt_;
  Params params_;
  int64_t unmatched_;
  // Annotation indices of each (category, image) group, in input order.
  std::vector<int64_t> gt_start_, gt_index_, dt_start_, dt_index_;
  std::vector<ImageResult> results_;  // [category][area][image]
  bool evaluated_ = false;
};

}  // namespace cocoeval
}  // namespace pyhpe
