from .oks import oks_matrix, oks_matrix_ragged  # noqa: F401
from .decode import (affine_transform_points, argmax_decode, dark_decode,  # noqa: F401
                     debiased_soft_argmax, dsnt, simcc_decode, soft_argmax, transform_preds)
