"""``python -m pyhpe.tasks TASK [options]`` (TASK: bottomup | lift3d | integral | topdown_infer)."""
import sys

from . import run_task, task_names


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("tasks:", ", ".join(task_names()), "(TASK --help for its options)")
        return 0 if argv else 2
    from ..train.utils import CheckpointError
    try:
        return run_task(argv[0], argv[1:])
    except CheckpointError as e:
        print(str(e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
