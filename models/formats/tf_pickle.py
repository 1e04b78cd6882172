"""TensorFlow StyleGAN2 / StyleGAN2-ADA pickles → NetworkFile, without TensorFlow (reference §3).

The file is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` states; we render Gs. Settings are the build
function's keyword arguments: those recorded in `static_kwargs`, and for the rest the defaults written in the
pickled `build_module_src` — read with `ast`, never executed — so a fork that changed a default (shawwn's
`normalize_latents=False`, §3.4) renders as its authors saw it. Weights are renamed and re-laid-out as NVIDIA's
legacy.py does (§3.3): transposes, the up-conv flip, +1 on style biases, noise maps, dlatent_avg.
"""
from __future__ import annotations

import ast
import hashlib
import math
import operator
import re
from typing import Any

import numpy as np

from models.formats.errors import ModelFileError
from models.formats.network_file import NetworkFile
from models.formats.safe_pickle import TFNetwork

# TF build kwarg → (GeneratorConfig key, the value NVIDIA's legacy.py assumes when the kwarg is absent)
TF_KWARGS: dict[str, tuple[str, Any]] = {
    "latent_size": ("z_dim", 512),
    "label_size": ("c_dim", 0),
    "dlatent_size": ("w_dim", 512),
    "resolution": ("img_resolution", 1024),
    "num_channels": ("img_channels", 3),
    "mapping_layers": ("mapping_layers", 8),
    "label_fmaps": ("mapping_embed_features", None),
    "mapping_fmaps": ("mapping_layer_features", None),
    "mapping_nonlinearity": ("mapping_activation", "lrelu"),
    "mapping_lrmul": ("mapping_lr_multiplier", 0.01),
    "w_avg_beta": ("w_avg_beta", 0.995),
    "dlatent_avg_beta": ("w_avg_beta", 0.995),
    "fmap_base": ("channel_base", 16384),  # TF halves it: channels = fmap_base / 2**stage vs channel_base / res
    "fmap_max": ("channel_max", 512),
    "num_fp16_res": ("num_fp16_res", 0),
    "conv_clamp": ("conv_clamp", None),
    "architecture": ("architecture", "skip"),
    "resample_kernel": ("resample_filter", [1, 3, 3, 1]),
    "use_noise": ("use_noise", True),
    "nonlinearity": ("activation", "lrelu"),
    "normalize_latents": ("normalize_latents", True),
}
# Only the value legacy.py's channel formula assumes can be honoured; anything else changes every shape.
FIXED_KWARGS = {"fmap_decay": 1.0, "fmap_min": 1}
# Run-time options with no effect on NVIDIA-PyTorch rendering (generate.py passes psi and noise itself).
IGNORED_KWARGS = {"truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                  "style_mixing_prob", "structure", "conditioning", "fused_modconv", "randomize_noise", "dtype",
                  "is_training", "is_validation", "return_dlatents", "synthesis_func", "mapping_func",
                  "is_template_graph", "components", "dlatent_broadcast", "num_layers", "lod_in"}
SYNTHESIS_FUNCS = {"G_synthesis_stylegan2", "G_synthesis"}
STYLEGAN1 = ("this is a StyleGAN1 (2019, NVlabs/stylegan) TensorFlow generator: a different architecture "
             "(AdaIN, no weight demodulation) that dnebot cannot run; use a StyleGAN2 or StyleGAN2-ADA model")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.LShift: operator.lshift, ast.Pow: operator.pow}


def is_tf_pickle(top: Any) -> bool:
    return isinstance(top, TFNetwork) or (isinstance(top, tuple) and bool(top)
                                          and all(isinstance(x, TFNetwork) for x in top))


def _constant(node: ast.AST) -> Any:
    """Value of a default written as a literal or simple arithmetic (`16 << 10`); anything else → KeyError."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_constant(e) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_constant(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _constant(node.left), _constant(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)) and abs(right) < 64:
            return _BINOPS[type(node.op)](left, right)
    raise KeyError("not a constant")


def source_defaults(module_src: str, func_name: str) -> dict[str, Any]:
    """Keyword defaults of `func_name` in `module_src`, parsed (not run). Unparseable source or defaults → {}."""
    try:
        tree = ast.parse(module_src)
    except (SyntaxError, ValueError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == func_name:
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
            out = {}
            for arg, default in pairs:
                try:
                    out[arg.arg] = _constant(default)
                except KeyError:
                    pass
            return out
    return {}


def _pick_gs(top: Any, path: str) -> TFNetwork:
    if isinstance(top, TFNetwork):
        return top
    if len(top) == 3:
        return top[2]
    raise ModelFileError(path, f"a tuple of {len(top)} TensorFlow networks; expected (G, D, Gs)")


def _settings(gs: dict, mapping: dict, synthesis: dict, path: str) -> tuple[dict, dict]:
    static = dict(gs.get("static_kwargs") or {})
    unknown = sorted(k for k in static if k not in TF_KWARGS and k not in FIXED_KWARGS and k not in IGNORED_KWARGS)
    if unknown:
        raise ModelFileError(path, f"the TensorFlow generator has setting(s) dnebot does not know: "
                                   f"{', '.join(unknown)}; refusing to guess how they change the image")
    defaults: dict[str, Any] = {}
    for state in (gs, mapping, synthesis):
        defaults.update(source_defaults(state.get("build_module_src") or "", state.get("build_func_name") or ""))
    for key, assumed in FIXED_KWARGS.items():
        value = static.get(key, defaults.get(key, assumed))
        if value != assumed:
            raise ModelFileError(path, f"the TensorFlow generator uses {key}={value!r}; dnebot supports only "
                                       f"{key}={assumed!r} (NVIDIA's channel layout)")
    config: dict[str, Any] = {}
    from_source: dict[str, Any] = {}
    for tf_key, (key, assumed) in TF_KWARGS.items():
        if tf_key in static:
            value = static[tf_key]
        elif tf_key in defaults:
            value = defaults[tf_key]
            if value != assumed:
                from_source[tf_key] = value
        elif key in config:
            continue  # w_avg_beta has two TF spellings
        else:
            value = assumed
        config[key] = value
    config["channel_base"] = int(config["channel_base"]) * 2
    if config["w_avg_beta"] is None:
        config["w_avg_beta"] = 1.0
    if config["mapping_layer_features"] == config["w_dim"]:
        config["mapping_layer_features"] = None
    if config["mapping_embed_features"] == config["w_dim"]:
        config["mapping_embed_features"] = None
    config["resample_filter"] = [float(x) for x in config["resample_filter"]]
    if config["conv_clamp"] is not None:
        config["conv_clamp"] = float(config["conv_clamp"])
    return config, from_source


def _variables(state: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Variables of a network and its components, named by component key: mapping/Dense0/weight, dlatent_avg."""
    out = {}
    for name, value in state.get("variables") or []:
        out[prefix + name] = np.asarray(value)
    for key, component in (state.get("components") or {}).items():
        if isinstance(component, TFNetwork):
            out.update(_variables(component.state, f"{prefix}{key}/"))
    return out


def _conv_weight(w: np.ndarray, flip: bool) -> np.ndarray:
    if flip:  # TF's up-conv correlates with the stored kernel; ours convolves (reference §3.3)
        w = w[::-1, ::-1]
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _layer(tensors: dict, ours: str, tf: dict[str, np.ndarray], flip: bool = False) -> None:
    transforms = {
        "weight": lambda w: _conv_weight(w, flip),
        "bias": lambda b: b,
        "noise_strength": lambda s: s.reshape(()),
        "mod_weight": lambda w: np.ascontiguousarray(w.T),
        "mod_bias": lambda b: b + 1,  # TF adds the 1 at run time; NVIDIA PyTorch stores it
    }
    names = {"weight": "weight", "bias": "bias", "noise_strength": "noise_strength", "mod_weight": "affine.weight",
             "mod_bias": "affine.bias"}
    for tf_name, array in tf.items():
        tensors[f"{ours}.{names[tf_name]}"] = np.asarray(transforms[tf_name](array), dtype=np.float32)


_LAYER_RE = re.compile(r"synthesis/(\d+)x\1/(Conv|Conv0_up|Conv1|ToRGB|Skip|Const)/(\w+)$")


def convert_variables(variables: dict[str, np.ndarray], path: str) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    layers: dict[tuple[str, bool], dict[str, np.ndarray]] = {}
    unknown = []
    for name, value in variables.items():
        value = np.asarray(value)
        if name in ("lod", "synthesis/lod"):
            continue  # progressive-growing level, unused by StyleGAN2
        if name == "dlatent_avg":
            tensors["mapping.w_avg"] = value.astype(np.float32)
        elif m := re.fullmatch(r"mapping/(Dense(\d+)|LabelEmbed)/(weight|bias)", name):
            layer = f"fc{m.group(2)}" if m.group(2) is not None else "embed"
            tensors[f"mapping.{layer}.{m.group(3)}"] = np.ascontiguousarray(
                value.T if m.group(3) == "weight" else value, dtype=np.float32)
        elif name.startswith("mapping/LabelConcat"):
            raise ModelFileError(path, "a conditional TensorFlow StyleGAN2 model with LabelConcat labels; only "
                                       "StyleGAN2-ADA's LabelEmbed conditioning can be converted")
        elif m := re.fullmatch(r"synthesis/noise(\d+)", name):
            i = int(m.group(1))
            res = 2 ** ((i + 5) // 2)
            layer = "conv1" if (i == 0 or i % 2 == 0) else "conv0"
            tensors[f"synthesis.b{res}.{layer}.noise_const"] = value.reshape(value.shape[-2:]).astype(np.float32)
        elif m := _LAYER_RE.fullmatch(name):
            res, kind, var = m.groups()
            if kind == "Const":
                tensors[f"synthesis.b{res}.const"] = value[0].astype(np.float32)
                continue
            ours = {"Conv": "conv1", "Conv0_up": "conv0", "Conv1": "conv1", "ToRGB": "torgb", "Skip": "skip"}[kind]
            if var not in ("weight", "bias", "noise_strength", "mod_weight", "mod_bias"):
                unknown.append(name)
                continue
            layers.setdefault((f"synthesis.b{res}.{ours}", kind in ("Conv0_up", "Skip")), {})[var] = value
        elif "ToRGB_lod" in name:
            raise ModelFileError(path, "a progressive 'orig' TensorFlow generator (ToRGB_lod layers, StyleGAN2 "
                                       "config-e); dnebot cannot convert it")
        else:
            unknown.append(name)
    if unknown:
        raise ModelFileError(path, f"TensorFlow variable(s) dnebot does not know: {', '.join(sorted(unknown)[:4])}"
                                   " (a modified StyleGAN2?)")
    for (ours, flip), tf in layers.items():
        _layer(tensors, ours, tf, flip)
    return tensors


def read(top: Any, path: str) -> NetworkFile:
    gs = _pick_gs(top, path).state
    version = gs.get("version")
    if version == 3 or gs.get("build_func_name") == "G_style":
        raise ModelFileError(path, STYLEGAN1)
    if version not in (4, 5):
        raise ModelFileError(path, f"TensorFlow network state version {version!r}; dnebot reads versions 4 and 5 "
                                   "(StyleGAN2, StyleGAN2-ADA)")
    components = gs.get("components") or {}
    mapping, synthesis = components.get("mapping"), components.get("synthesis")
    if not isinstance(mapping, TFNetwork) or not isinstance(synthesis, TFNetwork):
        raise ModelFileError(path, f"the TensorFlow network {gs.get('name')!r} has no mapping and synthesis "
                                   "components; not a StyleGAN2 generator")
    synthesis_func = synthesis.state.get("build_func_name")
    if synthesis_func not in SYNTHESIS_FUNCS:
        raise ModelFileError(path, f"its synthesis network is built by {synthesis_func!r}; dnebot converts "
                                   f"{' and '.join(sorted(SYNTHESIS_FUNCS))} (StyleGAN2 config-e/f, ADA) only")
    config, from_source = _settings(gs, mapping.state, synthesis.state, path)
    tensors = convert_variables(_variables(gs), path)
    if config["c_dim"] and "mapping.embed.weight" not in tensors:
        raise ModelFileError(path, f"label_size={config['c_dim']} but the mapping network has no LabelEmbed layer")
    kind = "stylegan2-ada tensorflow pickle" if synthesis_func == "G_synthesis" else "stylegan2 tensorflow pickle"
    src = gs.get("build_module_src") or ""
    return NetworkFile(path=path, format=kind, config=config, tensors=tensors, source={
        "format": kind,
        "tf_state_version": version,
        "build_funcs": [gs.get("build_func_name"), mapping.state.get("build_func_name"), synthesis_func],
        "build_module_src_sha256": hashlib.sha256(src.encode("utf-8")).hexdigest(),
        "static_kwargs": {k: v for k, v in (gs.get("static_kwargs") or {}).items()
                          if isinstance(v, (int, float, str, bool, list, type(None)))},
        "defaults_from_build_module_src": from_source,
    })


def noise_index(res: int, layer: str) -> int:
    """TF noise variable index of a layer (reference §3.3): 2·log2(r) − 5 for conv0, − 4 for conv1, 0 at 4×4."""
    return 0 if res == 4 else 2 * int(math.log2(res)) - (5 if layer == "conv0" else 4)
