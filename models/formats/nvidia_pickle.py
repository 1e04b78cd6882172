"""stylegan2-ada-pytorch and stylegan3 network pickles → NetworkFile (reference §1).

The unpickled objects are inert `PersistentObject` records (see safe_pickle). The generator to render is `G_ema`;
its settings come from the Generator's `_init_kwargs`, read with the defaults of the source that wrote the file
(ADA-PT nests synthesis options and defaults to fp32 / no clamp; stylegan3's StyleGAN2 takes them flat and defaults to
4 fp16 resolutions / clamp 256, §1.6), then checked against what the layers themselves recorded.
"""
from __future__ import annotations

from typing import Any

from models.formats.errors import ModelFileError
from models.formats.network_file import NetworkFile
from models.formats.safe_pickle import PersistentObject

ADA_PT = "stylegan2-ada-pytorch"
SG3 = "stylegan3"

# sha256 of known `module_src` texts → source name. Hashes of NVIDIA's released files belong here once they are
# taken from real pickles; until then sources are recognised by what they define (`identify_source`).
KNOWN_SOURCES: dict[str, str] = {}

SOURCE_DEFAULTS = {
    ADA_PT: dict(num_fp16_res=0, conv_clamp=None),
    SG3: dict(num_fp16_res=4, conv_clamp=256),
}
TOP_KWARGS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}
MAPPING_KWARGS = {"num_layers": "mapping_layers", "embed_features": "mapping_embed_features",
                  "layer_features": "mapping_layer_features", "activation": "mapping_activation",
                  "lr_multiplier": "mapping_lr_multiplier", "w_avg_beta": "w_avg_beta"}
SYNTHESIS_KWARGS = {"channel_base": "channel_base", "channel_max": "channel_max", "num_fp16_res": "num_fp16_res",
                    "conv_clamp": "conv_clamp", "architecture": "architecture", "resample_filter": "resample_filter",
                    "use_noise": "use_noise", "activation": "activation"}
# Accepted and ignored: they choose memory layout or kernel fusion, which do not change fp32 results.
NEUTRAL_SYNTHESIS_KWARGS = {"fp16_channels_last", "fused_modconv_default"}
ALIAS_FREE_KWARGS = {"magnitude_ema_beta", "conv_kernel", "use_radial_filters", "channels_last_weights",
                     "first_cutoff", "first_stopband", "last_stopband_rel", "margin_size", "output_scale",
                     "num_critical"}
ALIAS_FREE = ("this is a StyleGAN3 alias-free generator (stylegan3-t / stylegan3-r), a different architecture "
              "dnebot cannot run; use a StyleGAN2 model (stylegan3's --cfg=stylegan2 files are supported)")


def identify_source(module_src: str) -> str:
    """Which code defined the Generator: a known hash, else what the source defines."""
    import hashlib
    digest = hashlib.sha256(module_src.encode("utf-8")).hexdigest()
    if digest in KNOWN_SOURCES:
        return KNOWN_SOURCES[digest]
    if "SynthesisInput" in module_src or "filtered_lrelu" in module_src:
        return "stylegan3-alias-free"
    if "def modulated_conv2d" in module_src and "class SynthesisNetwork" in module_src:
        return SG3 if "fused_modconv_default" in module_src else ADA_PT
    if "class G_style" in module_src or "G_style(" in module_src:
        return "stylegan1"
    return "unknown"


def pick_generator(top: Any, path: str) -> PersistentObject:
    """The generator to render: G_ema of a snapshot dict, or a bare pickled Generator."""
    if isinstance(top, PersistentObject):
        return top
    if isinstance(top, dict) and "G_ema" in top:
        g = top["G_ema"]
        if not isinstance(g, PersistentObject):
            raise ModelFileError(path, f"its G_ema is a {type(g).__name__}, not a network")
        return g
    if isinstance(top, dict) and ("G" in top or "D" in top):
        raise ModelFileError(path, f"the snapshot has no G_ema (keys: {', '.join(map(str, top))}); "
                                   "dnebot renders G_ema, as NVIDIA's generate.py does")
    raise ModelFileError(path, "not a StyleGAN network pickle: it holds a "
                               f"{describe(top)}, not a snapshot with G_ema")


def describe(obj: Any) -> str:
    if isinstance(obj, dict):
        keys = ", ".join(map(str, list(obj)[:6]))
        return f"dict with keys [{keys}]" if obj else "empty dict"
    return type(obj).__name__


def _modules(record: PersistentObject) -> dict:
    return record.state.get("_modules") or {}


def flatten_tensors(record: PersistentObject, prefix: str = "") -> dict:
    """`_parameters` and `_buffers` of the whole module tree, names joined with '.' as in a state_dict."""
    out = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (record.state.get(group) or {}).items():
            if value is not None:
                out[prefix + name] = value
    for name, child in _modules(record).items():
        if isinstance(child, PersistentObject):
            out.update(flatten_tensors(child, f"{prefix}{name}."))
    return out


def _config_from_kwargs(kwargs: dict, source: str, path: str) -> tuple[dict, str]:
    layout = "nested" if "synthesis_kwargs" in kwargs else "flat"
    defaults = SOURCE_DEFAULTS[SG3 if (source == SG3 or (source != ADA_PT and layout == "flat")) else ADA_PT]
    if ALIAS_FREE_KWARGS & set(kwargs):
        raise ModelFileError(path, ALIAS_FREE)
    synthesis = dict(kwargs.get("synthesis_kwargs") or {})
    synthesis.update({k: v for k, v in kwargs.items() if k not in TOP_KWARGS})
    mapping = dict(kwargs.get("mapping_kwargs") or {})
    unknown = [f"{k}" for k in synthesis if k not in SYNTHESIS_KWARGS and k not in NEUTRAL_SYNTHESIS_KWARGS]
    unknown += [f"mapping_kwargs.{k}" for k in mapping if k not in MAPPING_KWARGS]
    if unknown:
        raise ModelFileError(path, f"the Generator has setting(s) dnebot does not know: {', '.join(sorted(unknown))}; "
                                   "refusing to guess how they change the image")
    config = {k: kwargs[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels") if k in kwargs}
    config.update(defaults)
    config.update({SYNTHESIS_KWARGS[k]: v for k, v in synthesis.items() if k in SYNTHESIS_KWARGS})
    config.update({MAPPING_KWARGS[k]: v for k, v in mapping.items()})
    if "resample_filter" in config:
        config["resample_filter"] = [float(x) for x in config["resample_filter"]]
    for key in ("conv_clamp",):
        if config.get(key) is not None:
            config[key] = float(config[key])
    return config, layout


def _layer_settings(g: PersistentObject) -> dict:
    """What the layers themselves recorded; unpickling restores these, not the init kwargs, so they win."""
    found: dict[str, Any] = {}
    mapping = _modules(g).get("mapping")
    if isinstance(mapping, PersistentObject):
        found["mapping_layers"] = sum(1 for n in _modules(mapping) if n.startswith("fc"))
    synthesis = _modules(g).get("synthesis")
    if isinstance(synthesis, PersistentObject):
        blocks = [b for n, b in _modules(synthesis).items() if n.startswith("b") and isinstance(b, PersistentObject)]
        if blocks:
            found["num_fp16_res"] = sum(1 for b in blocks if b.state.get("use_fp16"))
            if "architecture" in blocks[-1].state:
                found["architecture"] = blocks[-1].state["architecture"]
            conv1 = _modules(blocks[-1]).get("conv1")
            if isinstance(conv1, PersistentObject) and "conv_clamp" in conv1.state:
                clamp = conv1.state["conv_clamp"]
                found["conv_clamp"] = None if clamp is None else float(clamp)
    return found


def read(top: Any, path: str) -> NetworkFile:
    g = pick_generator(top, path)
    synthesis = _modules(g).get("synthesis")
    source = identify_source(g.module_src)
    if source == "stylegan3-alias-free" or (isinstance(synthesis, PersistentObject) and "input" in _modules(synthesis)):
        raise ModelFileError(path, ALIAS_FREE)
    if g.class_name != "Generator":
        raise ModelFileError(path, f"its G_ema is a {g.class_name}, not a StyleGAN2 Generator")
    if source in ("unknown", "stylegan1"):
        raise ModelFileError(path, "its Generator was defined by code dnebot does not recognise (a fork of "
                                   f"stylegan2-ada-pytorch? source sha256 {g.module_src_sha256[:16]}); refusing to "
                                   "guess how it renders")
    kwargs = g.state.get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise ModelFileError(path, "its Generator records no init kwargs, so its settings are unknown")
    config, layout = _config_from_kwargs(kwargs, source, path)

    # Unpickling restores the layers as they were built; init kwargs that disagree with them mean a broken file.
    log2_res = int(config.get("img_resolution", 1024)).bit_length() - 1
    for key, value in _layer_settings(g).items():
        expected = config.get(key, {"architecture": "skip", "mapping_layers": 8}.get(key))
        if key == "num_fp16_res":  # a count of fp16 blocks; b4 is never fp16
            expected = min(expected, log2_res - 2)
        if value != expected:
            raise ModelFileError(path, f"its Generator's init kwargs give {key}={expected!r} but its layers "
                                       f"were built with {key}={value!r}; the file is inconsistent")

    tensors = flatten_tensors(g)
    return NetworkFile(path=path, format=f"{source} network pickle", config=config, tensors=tensors, source={
        "format": f"{source} network pickle",
        "code": source,
        "module_src_sha256": g.module_src_sha256,
        "module_src_known": g.module_src_sha256 in KNOWN_SOURCES,
        "kwargs_layout": layout,
        "snapshot_keys": sorted(map(str, top)) if isinstance(top, dict) else [],
    })
