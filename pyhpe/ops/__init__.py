from .oks import oks_matrix, oks_matrix_ragged  # noqa: F401
from .heatmap import msra_heatmaps, paf_targets, simcc_labels, udp_heatmaps, unbiased_heatmaps  # noqa: F401
