#include "cocoeval/cocoeval.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "common/cpu_features.h"
#include "oks/oks_math.h"

namespace pyhpe {
namespace cocoeval {
namespace {

// np.spacing(1): pycocotools adds it to tp + fp.
constexpr double kEps = 2.220446049250313e-16;

// Order of np.argsort(-scores, kind='mergesort'): descending score, stable, and NaN scores
// last (numpy sorts NaN after every number). `-a < -b` alone is no strict weak ordering once a
// NaN appears, which std::stable_sort may answer with any order (or worse).
inline bool score_before(double a, double b) {
  const double x = -a, y = -b;
  return x < y || (y != y && x == x);
}

// Annotation indices grouped by category * num_images + image, stable within a group.
void group_indices(const Annotations& a, int64_t num_images, int64_t num_groups,
                   std::vector<int64_t>& start, std::vector<int64_t>& index) {
  start.assign(num_groups + 1, 0);
  for (int64_t i = 0; i < a.count; ++i) ++start[a.category[i] * num_images + a.image[i] + 1];
  for (int64_t g = 0; g < num_groups; ++g) start[g + 1] += start[g];
  index.resize(a.count);
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < a.count; ++i) index[fill[a.category[i] * num_images + a.image[i]]++] = i;
}

}  // namespace

KeypointEvaluator::KeypointEvaluator(const Annotations& gt, const Annotations& dt, Params params)
    : gt_(gt), dt_(dt), params_(std::move(params)) {
  const Params& p = params_;
  if (p.num_keypoints <= 0 || static_cast<int>(p.sigmas.size()) != p.num_keypoints)
    throw std::invalid_argument("cocoeval: sigmas must have num_keypoints entries");
  if (p.area_rngs.size() % 2 != 0) throw std::invalid_argument("cocoeval: area_rngs must be A x 2");
  if (p.max_dets.empty()) throw std::invalid_argument("cocoeval: max_dets must not be empty");
  if (!std::is_sorted(p.max_dets.begin(), p.max_dets.end()))
    throw std::invalid_argument("cocoeval: max_dets must be sorted ascending");
  const int64_t num_groups = p.num_images * p.num_categories;
  for (const Annotations* a : {&gt_, &dt_}) {
    for (int64_t i = 0; i < a->count; ++i) {
      if (a->image[i] < 0 || a->image[i] >= p.num_images || a->category[i] < 0 ||
          a->category[i] >= p.num_categories)
        throw std::invalid_argument("cocoeval: image/category index out of range");
    }
  }
  unmatched_ = p.zero_gt_id_is_unmatched ? 0 : -1;
  group_indices(gt_, p.num_images, num_groups, gt_start_, gt_index_);
  group_indices(dt_, p.num_images, num_groups, dt_start_, dt_index_);
}

std::vector<int64_t> KeypointEvaluator::sorted_detections(int64_t g) const {
  std::vector<int64_t> d(dt_index_.begin() + dt_start_[g], dt_index_.begin() + dt_start_[g + 1]);
  // np.argsort(-score, kind='mergesort'): stable, highest score first.
  std::stable_sort(d.begin(), d.end(),
                   [&](int64_t a, int64_t b) { return score_before(dt_.score[a], dt_.score[b]); });
  const size_t max_det = static_cast<size_t>(params_.max_dets.back());
  if (d.size() > max_det) d.resize(max_det);
  return d;
}

std::vector<double> KeypointEvaluator::ious(int64_t image, int64_t category, int64_t* rows,
                                            int64_t* cols) const {
  if (image < 0 || image >= params_.num_images || category < 0 ||
      category >= params_.num_categories)
    throw std::out_of_range("cocoeval: ious index out of range");
  const int64_t g = group(image, category);
  return oks_block(g, sorted_detections(g), rows, cols);
}

// computeOks: detections in score order (cut) x GT in input order; empty when either is.
std::vector<double> KeypointEvaluator::oks_block(int64_t g, const std::vector<int64_t>& dts,
                                                 int64_t* rows, int64_t* cols) const {
  const int64_t G = gt_start_[g + 1] - gt_start_[g];
  const int64_t D = static_cast<int64_t>(dts.size());
  const int K = params_.num_keypoints;
  const int exp_path = cpu::numpy_exp_path();
  *rows = G == 0 ? 0 : D;
  *cols = D == 0 ? 0 : G;
  std::vector<double> out(static_cast<size_t>((*rows) * (*cols)));
  for (int64_t i = 0; i < *rows; ++i) {
    const int64_t d = dts[i];
    for (int64_t j = 0; j < *cols; ++j) {
      const int64_t t = gt_index_[gt_start_[g] + j];
      out[i * G + j] = oks::compute_oks<double>(
          dt_.keypoints + d * K * 3, 3, gt_.keypoints + t * K * 3, params_.sigmas.data(), K,
          gt_.oks_area[t], gt_.bbox + t * 4, 0.0, oks::kModeCoco, false, 0.0, exp_path);
    }
  }
  return out;
}

void KeypointEvaluator::compute_group(int64_t g) {
  const Params& p = params_;
  const int64_t image = g % p.num_images, category = g / p.num_images;
  const int64_t A = static_cast<int64_t>(p.area_rngs.size() / 2);
  const int64_t T = static_cast<int64_t>(p.iou_thrs.size());
  const std::vector<int64_t> dts = sorted_detections(g);
  const int64_t G = gt_start_[g + 1] - gt_start_[g];
  const int64_t D = static_cast<int64_t>(dts.size());
  const int64_t* gts = gt_index_.data() + gt_start_[g];
  int64_t rows = 0, cols = 0;
  const std::vector<double> oks = oks_block(g, dts, &rows, &cols);
  const bool zero_mode = p.zero_gt_id_is_unmatched;
  auto is_unmatched = [&](int64_t v) { return zero_mode ? v == 0 : v < 0; };
  auto gt_taken = [&](int64_t v) { return zero_mode ? v > 0 : v >= 0; };

  std::vector<uint8_t> gt_ig(G);
  std::vector<int64_t> order(G);
  std::vector<int64_t> gtm(T * G);
  for (int64_t a = 0; a < A; ++a) {
    ImageResult& r = results_[(category * A + a) * p.num_images + image];
    r = ImageResult();
    if (G == 0 && D == 0) continue;
    r.present = true;
    const double lo = p.area_rngs[2 * a], hi = p.area_rngs[2 * a + 1];
    for (int64_t j = 0; j < G; ++j) {
      const int64_t t = gts[j];
      gt_ig[j] = gt_.ignore[t] || gt_.range_area[t] < lo || gt_.range_area[t] > hi;
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t x, int64_t y) { return gt_ig[x] < gt_ig[y]; });
    r.num_dt = D;
    r.num_gt = G;
    r.gt_ignore.resize(G);
    for (int64_t j = 0; j < G; ++j) r.gt_ignore[j] = gt_ig[order[j]];
    r.dt_scores.resize(D);
    for (int64_t i = 0; i < D; ++i) r.dt_scores[i] = dt_.score[dts[i]];
    r.dt_matches.assign(T * D, unmatched_);
    r.dt_ignore.assign(T * D, 0);
    std::fill(gtm.begin(), gtm.end(), unmatched_);
    if (rows > 0 && cols > 0) {
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < D; ++i) {
          double best = std::min(p.iou_thrs[t], 1 - 1e-10);
          int64_t m = -1;
          for (int64_t j = 0; j < G; ++j) {
            const int64_t gt_index = gts[order[j]];
            if (gt_taken(gtm[t * G + j]) && !gt_.iscrowd[gt_index]) continue;
            if (m > -1 && r.gt_ignore[m] == 0 && r.gt_ignore[j] == 1) break;
            const double v = oks[i * G + order[j]];
            if (v < best) continue;
            best = v;
            m = j;
          }
          if (m == -1) continue;
          r.dt_ignore[t * D + i] = r.gt_ignore[m];
          r.dt_matches[t * D + i] = gt_.id[gts[order[m]]];
          gtm[t * G + m] = dt_.id[dts[i]];
        }
      }
    }
    for (int64_t i = 0; i < D; ++i) {
      const double area = dt_.range_area[dts[i]];
      if (!(area < lo || area > hi)) continue;
      for (int64_t t = 0; t < T; ++t) {
        if (is_unmatched(r.dt_matches[t * D + i])) r.dt_ignore[t * D + i] = 1;
      }
    }
  }
}

void KeypointEvaluator::evaluate() {
  const int64_t A = static_cast<int64_t>(params_.area_rngs.size() / 2);
  const int64_t num_groups = params_.num_images * params_.num_categories;
  results_.assign(num_groups * A, ImageResult());
  at::parallel_for(0, num_groups, 64, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) compute_group(g);
  });
  evaluated_ = true;
}

const ImageResult& KeypointEvaluator::image_result(int64_t category, int64_t area,
                                                   int64_t image) const {
  const int64_t A = static_cast<int64_t>(params_.area_rngs.size() / 2);
  if (!evaluated_) throw std::logic_error("cocoeval: call evaluate() first");
  if (category < 0 || category >= params_.num_categories || area < 0 || area >= A || image < 0 ||
      image >= params_.num_images)
    throw std::out_of_range("cocoeval: image_result index out of range");
  return results_[(category * A + area) * params_.num_images + image];
}

Accumulated KeypointEvaluator::accumulate(const std::vector<int64_t>& image_indices) const {
  if (!evaluated_) throw std::logic_error("cocoeval: call evaluate() first");
  const Params& p = params_;
  const int64_t T = static_cast<int64_t>(p.iou_thrs.size());
  const int64_t R = static_cast<int64_t>(p.rec_thrs.size());
  const int64_t K = p.num_categories;
  const int64_t A = static_cast<int64_t>(p.area_rngs.size() / 2);
  const int64_t M = static_cast<int64_t>(p.max_dets.size());
  for (int64_t i : image_indices) {
    if (i < 0 || i >= p.num_images) throw std::out_of_range("cocoeval: image index out of range");
  }
  Accumulated out;
  out.precision.assign(T * R * K * A * M, -1.0);
  out.recall.assign(T * K * A * M, -1.0);
  out.scores.assign(T * R * K * A * M, -1.0);
  const bool zero_mode = p.zero_gt_id_is_unmatched;

  at::parallel_for(0, K * A * M, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> scores;
    std::vector<int64_t> order;
    std::vector<double> tp, fp, pr;
    std::vector<uint8_t> by_image, outcome;
    for (int64_t kam = begin; kam < end; ++kam) {
      const int64_t k = kam / (A * M), a = (kam / M) % A, m = kam % M;
      const int64_t max_det = p.max_dets[m];
      scores.clear();
      by_image.clear();
      int64_t npig = 0;
      bool any = false;
      for (int64_t img : image_indices) {
        const ImageResult& r = results_[(k * A + a) * p.num_images + img];
        if (!r.present) continue;
        any = true;
        const int64_t n = std::min<int64_t>(r.num_dt, max_det);
        for (int64_t i = 0; i < n; ++i) {
          scores.push_back(r.dt_scores[i]);
          // the detection's outcome per threshold (0 ignored, 1 true, 2 false positive),
          // read here in image order (each image's cells are contiguous)
          for (int64_t t = 0; t < T; ++t) {
            const int64_t cell = t * r.num_dt + i;
            const int64_t match = r.dt_matches[cell];
            const bool matched = zero_mode ? match != 0 : match >= 0;
            by_image.push_back(r.dt_ignore[cell] ? 0 : (matched ? 1 : 2));
          }
        }
        for (uint8_t ig : r.gt_ignore) npig += ig == 0;
      }
      if (!any || npig == 0) continue;
      const int64_t nd = static_cast<int64_t>(scores.size());
      order.resize(nd);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t x, int64_t y) { return score_before(scores[x], scores[y]); });
      tp.resize(nd);
      fp.resize(nd);
      pr.resize(nd);
      // in score order, one row per threshold, for the threshold loops below
      outcome.resize(T * nd);
      for (int64_t s = 0; s < nd; ++s) {
        const uint8_t* src = by_image.data() + order[s] * T;
        for (int64_t t = 0; t < T; ++t) outcome[t * nd + s] = src[t];
      }
      for (int64_t t = 0; t < T; ++t) {
        double tp_sum = 0, fp_sum = 0;
        const uint8_t* oc = outcome.data() + t * nd;
        for (int64_t s = 0; s < nd; ++s) {
          tp_sum += oc[s] == 1;
          fp_sum += oc[s] == 2;
          tp[s] = tp_sum;
          fp[s] = fp_sum;
        }
        const double npig_d = static_cast<double>(npig);
        const int64_t recall_cell = ((t * K + k) * A + a) * M + m;
        out.recall[recall_cell] = nd ? tp[nd - 1] / npig_d : 0.0;
        for (int64_t s = 0; s < nd; ++s) pr[s] = tp[s] / (fp[s] + tp[s] + kEps);
        for (int64_t s = nd - 1; s > 0; --s) {
          if (pr[s] > pr[s - 1]) pr[s - 1] = pr[s];
        }
        // np.searchsorted(rc, recThrs, side='left'); cells past the last detection stay 0.
        int64_t s = 0;
        for (int64_t ri = 0; ri < R; ++ri) {
          while (s < nd && tp[s] / npig_d < p.rec_thrs[ri]) ++s;
          const int64_t cell = (((t * R + ri) * K + k) * A + a) * M + m;
          if (s < nd) {
            out.precision[cell] = pr[s];
            out.scores[cell] = scores[order[s]];
          } else {
            out.precision[cell] = 0.0;
            out.scores[cell] = 0.0;
          }
        }
      }
    }
  });
  return out;
}

}  // namespace cocoeval
}  // namespace pyhpe
