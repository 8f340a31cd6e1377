"""Multi-person grouping of part candidates (bottom-up decoding)."""
from .deepcut import (DEEPERCUT_STAGES_LSP, DeepCutDecoder, SPLPSolution,  # noqa: F401
                      check_feasible, deepcut_group, deepcut_group_incremental,
                      geometric_pairwise, logit_cost, people_to_keypoints,
                      regression_pairwise, splp_objective)

__all__ = ["DEEPERCUT_STAGES_LSP", "DeepCutDecoder", "SPLPSolution", "check_feasible",
           "deepcut_group", "deepcut_group_incremental", "geometric_pairwise", "logit_cost",
           "people_to_keypoints", "regression_pairwise", "splp_objective"]
