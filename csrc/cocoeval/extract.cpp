// One pass over a list of annotation dicts with the CPython API: several times faster than
// numpy arrays built from list comprehensions, which dominated end-to-end evaluation time.
#include "cocoeval/extract.h"

#include <pybind11/numpy.h>

#include <cmath>
#include <limits>
#include <string>

namespace py = pybind11;

namespace pyhpe {
namespace cocoeval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void fail(PyObject* type, const std::string& msg) {
  PyErr_SetString(type, msg.c_str());
  throw py::error_already_set();
}

double as_double(PyObject* v, Py_ssize_t i, const char* key) {
  const double d = PyFloat_AsDouble(v);
  if (d == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    fail(PyExc_TypeError, std::string("annotation ") + std::to_string(i) + ": '" + key +
                              "' must be numeric");
  }
  return d;
}

// Writes `n` numbers of a list/tuple into out; returns false if the length differs.
bool read_numbers(PyObject* seq_obj, double* out, Py_ssize_t n, Py_ssize_t i, const char* key) {
  PyObject* seq = PySequence_Fast(seq_obj, "not a sequence");
  if (seq == nullptr) {
    PyErr_Clear();
    fail(PyExc_TypeError, std::string("annotation ") + std::to_string(i) + ": '" + key +
                              "' must be a list of numbers");
  }
  const Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
  if (len != n) {
    Py_DECREF(seq);
    return false;
  }
  PyObject** items = PySequence_Fast_ITEMS(seq);
  for (Py_ssize_t j = 0; j < n; ++j) {
    PyObject* v = items[j];
    out[j] = PyFloat_CheckExact(v) ? PyFloat_AS_DOUBLE(v) : as_double(v, i, key);
  }
  Py_DECREF(seq);
  return true;
}

// Returns a dict of arrays; `has_*` byte arrays say where optional keys were present.
// image_id/category_id/id must be integers: a TypeError lets the caller fall back to a
// generic path (COCO also allows e.g. string image ids).
py::dict extract_annotations(py::list anns, int64_t K) {
  const Py_ssize_t n = PyList_GET_SIZE(anns.ptr());
  py::array_t<int64_t> image({n}), category({n}), id({n}), num_kp({n});
  py::array_t<double> kp({n, static_cast<Py_ssize_t>(3 * K)}), area({n}), bbox({n, Py_ssize_t(4)}),
      score({n});
  py::array_t<uint8_t> iscrowd({n}), has_id({n}), has_area({n}), has_bbox({n}), has_score({n}),
      has_num_kp({n}), kp_ok({n});
  int64_t *pi = image.mutable_data(), *pc = category.mutable_data(), *pid = id.mutable_data(),
          *pnk = num_kp.mutable_data();
  double *pk = kp.mutable_data(), *pa = area.mutable_data(), *pb = bbox.mutable_data(),
         *ps = score.mutable_data();
  uint8_t *pcrowd = iscrowd.mutable_data(), *hid = has_id.mutable_data(),
          *harea = has_area.mutable_data(), *hbox = has_bbox.mutable_data(),
          *hscore = has_score.mutable_data(), *hnk = has_num_kp.mutable_data(),
          *kok = kp_ok.mutable_data();
  py::str k_image("image_id"), k_cat("category_id"), k_id("id"), k_kp("keypoints"),
      k_area("area"), k_bbox("bbox"), k_score("score"), k_crowd("iscrowd"),
      k_nk("num_keypoints");
  auto get = [](PyObject* d, const py::str& key) { return PyDict_GetItem(d, key.ptr()); };
  auto as_int = [](PyObject* v, Py_ssize_t i, const char* key) -> int64_t {
    if (!PyLong_Check(v)) {
      fail(PyExc_TypeError, std::string("annotation ") + std::to_string(i) + ": '" + key +
                                "' is not an int");
    }
    const long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) throw py::error_already_set();
    return x;
  };
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* d = PyList_GET_ITEM(anns.ptr(), i);
    if (!PyDict_Check(d)) fail(PyExc_TypeError, "annotations must be dicts");
    PyObject* v = get(d, k_image);
    if (!v) fail(PyExc_KeyError, "annotation " + std::to_string(i) + " has no 'image_id'");
    pi[i] = as_int(v, i, "image_id");
    v = get(d, k_cat);
    if (!v) fail(PyExc_KeyError, "annotation " + std::to_string(i) + " has no 'category_id'");
    pc[i] = as_int(v, i, "category_id");
    v = get(d, k_id);
    hid[i] = v != nullptr;
    pid[i] = v ? as_int(v, i, "id") : 0;
    v = get(d, k_kp);
    kok[i] = v != nullptr && read_numbers(v, pk + i * 3 * K, 3 * K, i, "keypoints");
    if (!kok[i]) std::fill(pk + i * 3 * K, pk + (i + 1) * 3 * K, kNaN);
    v = get(d, k_area);
    harea[i] = v != nullptr;
    pa[i] = v ? as_double(v, i, "area") : kNaN;
    v = get(d, k_bbox);
    hbox[i] = v != nullptr && read_numbers(v, pb + i * 4, 4, i, "bbox");
    if (!hbox[i]) std::fill(pb + i * 4, pb + i * 4 + 4, kNaN);
    v = get(d, k_score);
    hscore[i] = v != nullptr;
    ps[i] = v ? as_double(v, i, "score") : kNaN;
    v = get(d, k_crowd);
    int truth = 0;
    if (v) {
      truth = PyObject_IsTrue(v);
      if (truth < 0) throw py::error_already_set();
    }
    pcrowd[i] = static_cast<uint8_t>(truth);
    v = get(d, k_nk);
    hnk[i] = v != nullptr;
    pnk[i] = v ? static_cast<int64_t>(as_double(v, i, "num_keypoints") == 0.0 ? 0 : 1) : -1;
  }
  py::dict out;
  out["image_id"] = image;
  out["category_id"] = category;
  out["id"] = id;
  out["has_id"] = has_id;
  out["keypoints"] = kp;
  out["keypoints_ok"] = kp_ok;
  out["area"] = area;
  out["has_area"] = has_area;
  out["bbox"] = bbox;
  out["has_bbox"] = has_bbox;
  out["score"] = score;
  out["has_score"] = has_score;
  out["iscrowd"] = iscrowd;
  out["num_keypoints_nonzero"] = num_kp;
  out["has_num_keypoints"] = has_num_kp;
  return out;
}

}  // namespace

void bind_extract(py::module_& m) {
  m.def("extract_annotations", &extract_annotations, py::arg("annotations"), py::arg("K"),
        "Flat numpy arrays from a list of COCO annotation/result dicts (see pyhpe/eval/coco.py)");
}

}  // namespace cocoeval
}  // namespace pyhpe
