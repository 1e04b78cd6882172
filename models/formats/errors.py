"""The one error type every reader raises: a model file that cannot be used, and why, on one line."""
from __future__ import annotations

import os


class ModelFileError(ValueError):
    """A model file dnebot refuses or cannot read. `str()` is one line: the file's name, then the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(problem.split())  # one line, whatever the cause's text looked like
        name = os.path.basename(self.path) if self.path else "model file"
        super().__init__(f"{name}: {self.problem}")

    def for_file(self, path: str | os.PathLike) -> "ModelFileError":
        """The same problem, attributed to `path` (readers deep inside a file do not know its name)."""
        return ModelFileError(path, self.problem)
