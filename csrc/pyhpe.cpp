// pybind11 module pyhpe._C: build information and the stateful C++ classes.
// Only pybind11 is included (not torch/extension.h): this file needs no tensor casters, and
// skipping torch headers saves most of a minute of build time.
// Tensor ops are registered separately with TORCH_LIBRARY (see csrc/<family>/<family>.cpp);
// importing this module loads them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef PYHPE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <string>
#include <vector>

#include "cocoeval/cocoeval.h"
#include "common/cpu_cache.h"
#include "common/cpu_features.h"
#include "common/numpy_exp.h"
#include "cocoeval/extract.h"

namespace py = pybind11;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using LongArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using ByteArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// np.exp of a float64 array on one of pyhpe's numpy exp paths (the probe at import and tests).
py::array_t<double> numpy_exp_array(const DoubleArray& x, int path) {
  pyhpe::cpu::check_numpy_exp_path("pyhpe._C._numpy_exp", path);
  py::array_t<double> out(x.request().shape);
  const double* in = x.data();
  double* o = out.mutable_data();
  const py::ssize_t n = x.size();
  for (py::ssize_t i = 0; i < n; ++i) o[i] = pyhpe::numpy_exp(in[i], path);
  return out;
}

std::string cuda_version() {
#ifdef PYHPE_WITH_CUDA
  return std::to_string(CUDART_VERSION / 1000) + "." + std::to_string((CUDART_VERSION % 1000) / 10);
#else
  return "";
#endif
}

template <typename Array>
Array expect(const py::dict& d, const char* key, int64_t count, int64_t row) {
  if (!d.contains(key)) throw py::value_error(std::string("cocoeval: missing array '") + key + "'");
  Array a = py::cast<Array>(d[key]);
  if (a.size() != count * row) {
    throw py::value_error(std::string("cocoeval: array '") + key + "' has " +
                          std::to_string(a.size()) + " values, expected " +
                          std::to_string(count * row));
  }
  return a;
}

// Owns the numpy buffers that the evaluator borrows.
class PyKeypointEvaluator {
 public:
  PyKeypointEvaluator(const py::dict& gt, const py::dict& dt, const py::dict& params) {
    namespace ce = pyhpe::cocoeval;
    ce::Params p;
    p.num_images = py::cast<int64_t>(params["num_images"]);
    p.num_categories = py::cast<int64_t>(params["num_categories"]);
    p.sigmas = py::cast<std::vector<double>>(params["sigmas"]);
    p.num_keypoints = static_cast<int>(p.sigmas.size());
    p.iou_thrs = py::cast<std::vector<double>>(params["iou_thrs"]);
    p.rec_thrs = py::cast<std::vector<double>>(params["rec_thrs"]);
    p.area_rngs = py::cast<std::vector<double>>(params["area_rngs"]);
    p.max_dets = py::cast<std::vector<int64_t>>(params["max_dets"]);
    p.zero_gt_id_is_unmatched = py::cast<bool>(params["zero_gt_id_is_unmatched"]);
    const int64_t K = p.num_keypoints;
    gt_ = fill(gt, K, /*is_gt=*/true, gt_annotations_);
    dt_ = fill(dt, K, /*is_gt=*/false, dt_annotations_);
    evaluator_ = std::make_unique<ce::KeypointEvaluator>(gt_annotations_, dt_annotations_, p);
  }

  void evaluate() {
    py::gil_scoped_release release;
    evaluator_->evaluate();
  }

  py::dict accumulate(const std::vector<int64_t>& images) {
    pyhpe::cocoeval::Accumulated acc;
    {
      py::gil_scoped_release release;
      acc = evaluator_->accumulate(images);
    }
    const auto& p = evaluator_->params();
    const py::ssize_t T = p.iou_thrs.size(), R = p.rec_thrs.size(), K = p.num_categories,
                      A = p.area_rngs.size() / 2, M = p.max_dets.size();
    py::dict out;
    out["precision"] = py::array_t<double>({T, R, K, A, M}, acc.precision.data());
    out["recall"] = py::array_t<double>({T, K, A, M}, acc.recall.data());
    out["scores"] = py::array_t<double>({T, R, K, A, M}, acc.scores.data());
    return out;
  }

  py::array_t<double> ious(int64_t image, int64_t category) {
    int64_t rows = 0, cols = 0;
    std::vector<double> v = evaluator_->ious(image, category, &rows, &cols);
    return py::array_t<double>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)},
                               v.data());
  }

  py::object image_result(int64_t category, int64_t area, int64_t image) {
    const auto& r = evaluator_->image_result(category, area, image);
    if (!r.present) return py::none();
    const py::ssize_t T = evaluator_->params().iou_thrs.size();
    py::dict d;
    d["dtScores"] = py::array_t<double>(r.num_dt, r.dt_scores.data());
    d["dtMatches"] = py::array_t<int64_t>({T, static_cast<py::ssize_t>(r.num_dt)}, r.dt_matches.data());
    d["dtIgnore"] = py::array_t<uint8_t>({T, static_cast<py::ssize_t>(r.num_dt)}, r.dt_ignore.data());
    d["gtIgnore"] = py::array_t<uint8_t>(r.num_gt, r.gt_ignore.data());
    return d;
  }

 private:
  py::list fill(const py::dict& d, int64_t K, bool is_gt, pyhpe::cocoeval::Annotations& a) {
    const int64_t n = py::cast<int64_t>(d["count"]);
    py::list keep;
    auto longs = [&](const char* key) {
      LongArray arr = expect<LongArray>(d, key, n, 1);
      keep.append(arr);
      return arr.data();
    };
    auto doubles = [&](const char* key, int64_t row) {
      DoubleArray arr = expect<DoubleArray>(d, key, n, row);
      keep.append(arr);
      return arr.data();
    };
    auto bytes = [&](const char* key) {
      ByteArray arr = expect<ByteArray>(d, key, n, 1);
      keep.append(arr);
      return arr.data();
    };
    a.count = n;
    a.image = longs("image");
    a.category = longs("category");
    a.id = longs("id");
    a.keypoints = doubles("keypoints", K * 3);
    a.oks_area = doubles("oks_area", 1);
    a.range_area = doubles("range_area", 1);
    if (is_gt) {
      a.bbox = doubles("bbox", 4);
      a.iscrowd = bytes("iscrowd");
      a.ignore = bytes("ignore");
    } else {
      a.score = doubles("score", 1);
    }
    return keep;
  }

  py::list gt_, dt_;  // keep-alive for the borrowed buffers
  pyhpe::cocoeval::Annotations gt_annotations_, dt_annotations_;
  std::unique_ptr<pyhpe::cocoeval::KeypointEvaluator> evaluator_;
};

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pyhpe C++/CUDA extension: build info and stateful classes; ops live in torch.ops.pyhpe";
  m.def("version", [] { return std::string(PYHPE_VERSION); });
  m.def("torch_version", [] { return std::string(PYHPE_TORCH_VERSION); },
        "torch version the extension was compiled against");
#ifdef PYHPE_WITH_CUDA
  m.def("has_cuda", [] { return true; }, "whether CUDA kernels were compiled");
#else
  m.def("has_cuda", [] { return false; }, "whether CUDA kernels were compiled");
#endif
  m.def("cuda_version", &cuda_version, "CUDA runtime version compiled against ('' if none)");
  m.def("cuda_archs", [] { return std::string(PYHPE_CUDA_ARCHS); },
        "TORCH_CUDA_ARCH_LIST the kernels were compiled for ('' if none)");
  m.def("cpu_has_avx2", &pyhpe::cpu::has_avx2_fma,
        "whether this CPU runs the AVX2 + FMA paths of the CPU kernels");
  m.def("cpu_avx2_enabled", &pyhpe::cpu::avx2_enabled,
        "whether the CPU kernels take their AVX2 + FMA paths now");
  m.def("cpu_cache_bytes", &pyhpe::cpu::cached_bytes,
        "bytes of freed large CPU outputs (the soft-argmax family's gradients) kept for reuse");
  m.def("empty_cpu_cache", &pyhpe::cpu::empty_cache,
        "return the kept CPU blocks (cpu_cache_bytes()) to the system allocator");
  m.def("_set_cpu_avx2", &pyhpe::cpu::set_avx2_enabled, py::arg("on"),
        "switch the AVX2 + FMA paths on (if the CPU has them) or off; returns the old state. "
        "For tests and benchmarks of the fallback paths.");

  m.def("cpu_has_avx512_skx", &pyhpe::cpu::has_avx512_skx,
        "whether this CPU has numpy's AVX512_SKX group (AVX-512 F/CD/BW/DQ/VL)");
  m.def("numpy_exp_path", &pyhpe::cpu::numpy_exp_path,
        "the float64 exp path numpy takes here, which ops copying numpy use: 0 libm, 1 SVML, "
        "2 numpy's AVX-512F kernel");
  m.def("_set_numpy_exp_path", &pyhpe::cpu::set_numpy_exp_path, py::arg("path"),
        "select the float64 exp path (0 libm, 1 SVML, 2 AVX-512F); returns the old one");
  m.def("_numpy_exp", &numpy_exp_array, py::arg("x"), py::arg("path"),
        "exp of a float64 array as numpy computes it on the given path");

  pyhpe::cocoeval::bind_extract(m);

  py::class_<PyKeypointEvaluator>(m, "KeypointEvaluator")
      .def(py::init<const py::dict&, const py::dict&, const py::dict&>(), py::arg("gt"),
           py::arg("dt"), py::arg("params"))
      .def("evaluate", &PyKeypointEvaluator::evaluate)
      .def("accumulate", &PyKeypointEvaluator::accumulate, py::arg("images"))
      .def("ious", &PyKeypointEvaluator::ious, py::arg("image"), py::arg("category"))
      .def("image_result", &PyKeypointEvaluator::image_result, py::arg("category"),
           py::arg("area"), py::arg("image"));
}
