"""NetworkFile → Generator, without a second random-initialised copy of the weights."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from models import ops
from models.formats.errors import ModelFileError
from models.formats.network_file import DERIVED_SUFFIXES, NetworkFile
from models.networks import Generator, GeneratorConfig


def generator_config(net: NetworkFile) -> GeneratorConfig:
    try:
        return GeneratorConfig.from_dict(net.config)
    except (TypeError, ValueError) as e:
        raise ModelFileError(net.path, f"its settings do not describe a StyleGAN2 generator dnebot can build: {e}")


def check_weights(net: NetworkFile, G: Generator) -> None:
    expected = {k: tuple(v.shape) for k, v in G.state_dict().items() if not k.endswith(DERIVED_SUFFIXES)}
    found = {k: tuple(v.shape) for k, v in net.weights().items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(f"{k} {found[k]} (expected {expected[k]})" for k in set(found) & set(expected)
                   if found[k] != expected[k])
    problems = []
    if missing:
        problems.append(f"missing weights {', '.join(missing[:4])}" + (f" and {len(missing) - 4} more" if len(missing) > 4 else ""))
    if unexpected:
        problems.append(f"unexpected weights {', '.join(unexpected[:4])}" + (f" and {len(unexpected) - 4} more" if len(unexpected) > 4 else ""))
    if wrong:
        problems.append(f"wrong shapes {', '.join(wrong[:3])}")
    if problems:
        raise ModelFileError(net.path, "its weights do not match its settings: " + "; ".join(problems))


def build_generator(net: NetworkFile) -> Generator:
    """An eval-mode fp32 CPU Generator holding the file's weights."""
    config = generator_config(net)
    with torch.device("meta"):
        G = Generator(config)
    check_weights(net, G)
    G = G.to_empty(device="cpu")
    state = {}
    with warnings.catch_warnings():
        # Arrays that view the file's bytes are read-only; load_state_dict only copies out of them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for name, array in net.weights().items():
            state[name] = torch.from_numpy(np.asarray(array))
    resample_filter = ops.setup_filter(config.resample_filter)
    for name, _ in G.named_buffers():
        if name.endswith(DERIVED_SUFFIXES):
            state[name] = resample_filter
    with torch.no_grad():
        G.load_state_dict(state, strict=True)
    return G.eval()
