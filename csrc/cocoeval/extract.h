// Fast conversion of COCO annotation dicts into flat numpy arrays (pyhpe._C.extract_annotations).
#pragma once

#include <pybind11/pybind11.h>

namespace pyhpe {
namespace cocoeval {

void bind_extract(pybind11::module_& m);

}  // namespace cocoeval
}  // namespace pyhpe
