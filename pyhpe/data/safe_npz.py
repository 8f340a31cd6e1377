"""Reading ``.npz`` files whose arrays hold Python objects without running arbitrary pickles.

VideoPose3D's Human3.6M files store nested ``{subject: {action: [array, ...]}}`` dicts as 0-d
object arrays, which ``np.load`` can only read with ``allow_pickle=True`` -- and then a crafted
file runs any code it likes. :func:`load_npz_member` unpickles such members with an unpickler
that resolves only the numpy globals needed to rebuild arrays (dicts, lists, tuples, numbers
and strings need no globals); anything else is refused with an error naming the file.
"""
from __future__ import annotations

import pickle
import zipfile

import numpy as np

# (module, name) pairs an object-array pickle of plain data refers to
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}
_ALLOWED_DTYPE_CLASSES = ("numpy.dtypes", "numpy")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")


def load_npz_member(path: str, key: str, who: str = "pyhpe") -> np.ndarray:
    """``np.load(path)[key]`` for numeric and object arrays, without arbitrary unpickling."""
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: cannot read {str(path)!r}: no such file") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{who}: cannot read {str(path)!r}: not an npz file ({e})") from e
    with zf:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        if key not in names:
            raise KeyError(f"{who}: {str(path)!r} has no {key!r} array (keys: {names})")
        with zf.open(key + ".npy") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, fortran, dtype = read_header(f)
                if not dtype.hasobject:
                    data = np.frombuffer(f.read(), dtype=dtype).copy()
                    return data.reshape(shape, order="F" if fortran else "C")
                arr = _NumpyOnlyUnpickler(f).load()
            except (pickle.UnpicklingError, ValueError, EOFError, AttributeError,
                    ImportError, TypeError) as e:
                raise ValueError(f"{who}: cannot load {key!r} from {str(path)!r}: {e} (only "
                                 f"arrays, dicts, lists, numbers and strings are read)") from e
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{who}: {key!r} in {str(path)!r} is a {type(arr).__name__}, not an array")
    return arr


def load_pickle_safely(path: str, who: str = "pyhpe"):
    """A pickle file of plain data (dicts, lists, tuples, numbers, strings, numpy arrays), e.g.
    mmpose's ``cameras.pkl``, read without running arbitrary code: any other global is refused
    with an error naming the file."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: cannot read {str(path)!r}: no such file") from None
    with f:
        try:
            return _NumpyOnlyUnpickler(f).load()
        except (pickle.UnpicklingError, ValueError, EOFError, AttributeError, ImportError,
                TypeError, IndexError, KeyError) as e:
            raise ValueError(f"{who}: cannot load {str(path)!r}: {e} (only pickles of arrays, "
                             f"dicts, lists, numbers and strings are read)") from e
