"""Reading annotation json files with errors that name the reader and the file."""
from __future__ import annotations

import json


def read_json(path, who: str):
    """The parsed json file at ``path``; FileNotFoundError / ValueError naming ``who`` and the
    file when it is missing or not json."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: no such file {str(path)!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{who}: {str(path)!r} is not a json file ({e})") from e
