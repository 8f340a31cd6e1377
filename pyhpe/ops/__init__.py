from .oks import oks_matrix, oks_matrix_ragged  # noqa: F401
