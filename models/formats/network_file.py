"""What every reader returns: one generator's settings and weights, in our (ADA-PT) names, plus where it came from."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

# Constants the generator recomputes from its config; files may carry them, we never load them.
DERIVED_SUFFIXES = (".resample_filter",)


@dataclass
class NetworkFile:
    path: str
    format: str                      # e.g. "stylegan2-ada-pytorch pickle", "tensorflow stylegan2 pickle"
    config: dict                     # GeneratorConfig.from_dict() arguments
    tensors: dict[str, np.ndarray]   # ADA-PT state_dict names → arrays (may be read-only views of the file)
    source: dict = field(default_factory=dict)   # how the file was made: stored as the safetensors `source`
    lineage: dict | None = None      # our own files carry one; foreign files get `default_lineage()`

    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(self.path))[0]

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.tensors.items() if not k.endswith(DERIVED_SUFFIXES)}

    def parameter_count(self) -> int:
        """Trainable parameters (buffers such as w_avg and noise_const excluded), as NVIDIA counts them."""
        buffers = (".w_avg", ".noise_const") + DERIVED_SUFFIXES
        return int(sum(v.size for k, v in self.tensors.items() if not k.endswith(buffers)))

    def noise_fingerprint(self) -> str | None:
        """Hash of the noise_const buffers. Fine-tuning copies them unchanged (reference §5.3), so two files with
        the same fingerprint descend from the same trained ancestor; independent trainings draw different noise."""
        names = sorted(k for k in self.tensors if k.endswith(".noise_const"))
        if not names:
            return None
        h = hashlib.sha256()
        for k in names:
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.tensors[k], dtype="<f4").tobytes())
        return h.hexdigest()

    def default_lineage(self) -> dict:
        fingerprint = self.noise_fingerprint()
        ancestor = f"noise-{fingerprint[:12]}" if fingerprint else self.name
        return {"name": self.name, "fine_tuned_from": None, "ancestor": ancestor}
