"""Writes stylegan2-ada-pytorch / stylegan3 network pickles from one of our Generators, byte-layout faithful.

Layout (reference §1.1-§1.4): the top level is a training snapshot dict (G, D, G_ema, augment_pipe,
training_set_kwargs); every network module pickles as `torch_utils.persistence._reconstruct_persistent_obj(meta)`
with meta = {type, version 6, module_src, class_name, state}; `state` is the nn.Module `__dict__` (training,
_parameters, _buffers, _modules OrderedDicts, hook dicts, the class's plain attributes with numpy float64 gains,
_init_args, _init_kwargs); kwargs dicts are dnnlib EasyDicts; tensors are legacy storage streams.

The `module_src` strings are short stand-ins that carry the markers a reader identifies a source by; NVIDIA's
sources are not reproduced here.
"""
from __future__ import annotations

import collections
import math
from typing import Any, Callable

import numpy as np
import torch

from tests.formats.pickle_writer import (GlobalName, NumpyScalar, TorchParameter, TorchTensor, dump, easydict)

RECONSTRUCT = GlobalName("torch_utils.persistence", "_reconstruct_persistent_obj")

ADA_SRC = '''"""Stand-in for stylegan2-ada-pytorch training/networks.py (fixture)."""
@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module): ...
def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                     demodulate=True, flip_weight=True, fused_modconv=True): ...
class MappingNetwork(torch.nn.Module): ...
class SynthesisLayer(torch.nn.Module): ...
class SynthesisBlock(torch.nn.Module): ...
class SynthesisNetwork(torch.nn.Module): ...
class Generator(torch.nn.Module): ...
class Discriminator(torch.nn.Module): ...
'''
SG3_SG2_SRC = ADA_SRC.replace("stylegan2-ada-pytorch training/networks.py",
                              "stylegan3 training/networks_stylegan2.py") + \
    "class SynthesisBlock:  # fused_modconv_default = True\n    ...\n"
SG3_ALIAS_FREE_SRC = '''"""Stand-in for stylegan3 training/networks_stylegan3.py (fixture)."""
from torch_utils.ops import filtered_lrelu
class MappingNetwork(torch.nn.Module): ...
class SynthesisInput(torch.nn.Module): ...
class SynthesisLayer(torch.nn.Module): ...
class SynthesisNetwork(torch.nn.Module): ...
class Generator(torch.nn.Module): ...
'''

SG3_DEFAULTS = dict(num_fp16_res=4, conv_clamp=256)
FLAVOURS = ("ada", "ada-legacy", "sg3")


class PersistentRecord:
    """One persistent network object as `persistence.py`'s `__reduce__` writes it."""

    def __init__(self, class_name: str, module_src: str, state: dict):
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return RECONSTRUCT, (self.meta,)


def module_state(params: dict, buffers: dict, modules: dict, attrs: dict, init_kwargs: dict) -> dict:
    """An nn.Module `__dict__` as torch 1.7-1.9 had it (the torch of 2020-2021 snapshots)."""
    hooks = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
             "_load_state_dict_pre_hooks")
    state: dict[str, Any] = {"training": False,
                             "_parameters": collections.OrderedDict(params),
                             "_buffers": collections.OrderedDict(buffers),
                             "_non_persistent_buffers_set": set()}
    state.update({name: collections.OrderedDict() for name in hooks})
    state["_modules"] = collections.OrderedDict(modules)
    state.update(attrs)
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs
    return state


def _attrs(module: torch.nn.Module, flavour: str) -> dict:
    """The plain attributes NVIDIA's classes keep (reference §1.2), read off our equivalent module."""
    kind = type(module).__name__
    m = module
    if kind == "FullyConnectedLayer":
        return dict(activation=m.activation, weight_gain=NumpyScalar(m.weight_gain), bias_gain=m.bias_gain)
    if kind == "MappingNetwork":
        return dict(z_dim=m.z_dim, c_dim=m.c_dim, w_dim=m.w_dim, num_ws=m.num_ws, num_layers=m.num_layers,
                    w_avg_beta=m.w_avg_beta)
    if kind == "SynthesisLayer":
        return dict(resolution=m.resolution, up=m.up, use_noise=m.use_noise, activation=m.activation,
                    conv_clamp=m.conv_clamp, padding=m.padding, act_gain=NumpyScalar(m.act_gain))
    if kind == "ToRGBLayer":
        return dict(conv_clamp=m.conv_clamp, weight_gain=NumpyScalar(m.weight_gain))
    if kind == "Conv2dLayer":
        return dict(activation=m.activation, up=m.up, down=1, conv_clamp=m.conv_clamp, padding=m.padding,
                    weight_gain=NumpyScalar(m.weight_gain), act_gain=float(m.act_gain))
    if kind == "SynthesisBlock":
        attrs = dict(in_channels=m.in_channels, w_dim=m.w_dim, resolution=m.resolution, img_channels=m.img_channels,
                     is_last=m.is_last, architecture=m.architecture, use_fp16=m.use_fp16, channels_last=False,
                     num_conv=m.num_conv, num_torgb=m.num_torgb)
        if flavour == "sg3":
            attrs["fused_modconv_default"] = "inference_only"
        return attrs
    if kind == "SynthesisNetwork":
        return dict(w_dim=m.w_dim, img_resolution=m.img_resolution,
                    img_resolution_log2=int(math.log2(m.img_resolution)), img_channels=m.img_channels,
                    block_resolutions=list(m.block_resolutions), num_ws=m.num_ws)
    if kind == "Generator":
        return dict(z_dim=m.z_dim, c_dim=m.c_dim, w_dim=m.w_dim, img_resolution=m.img_resolution,
                    img_channels=m.img_channels, num_ws=m.num_ws)
    raise ValueError(f"no NVIDIA counterpart for {kind}")


def generator_init_kwargs(config: Any, flavour: str) -> dict:
    """Generator `_init_kwargs` as each source records them (reference §1.2, §1.6)."""
    c = config
    common = dict(z_dim=c.z_dim, w_dim=c.w_dim)
    tail = dict(c_dim=c.c_dim, img_resolution=c.img_resolution, img_channels=c.img_channels)
    if flavour == "ada-legacy":  # legacy.py's convert_tf_generator spells everything out
        mapping = easydict(num_layers=c.mapping_layers, embed_features=c.mapping_embed_features,
                           layer_features=c.mapping_layer_features, activation=c.mapping_activation,
                           lr_multiplier=c.mapping_lr_multiplier, w_avg_beta=c.w_avg_beta)
        synthesis = easydict(channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=c.num_fp16_res,
                             conv_clamp=c.conv_clamp, architecture=c.architecture,
                             resample_filter=list(c.resample_filter), use_noise=c.use_noise, activation=c.activation)
        return dict(common, mapping_kwargs=mapping, synthesis_kwargs=synthesis, **tail)
    if not c.normalize_latents:
        raise ValueError("NVIDIA's PyTorch MappingNetwork always normalises z; no pickle can say otherwise")
    # A training run passes only what train.py sets; runs with other settings (a customised train.py) carry the
    # differing ones where the Generator takes them.
    mapping_defaults = dict(embed_features=(c.mapping_embed_features, None),
                            layer_features=(c.mapping_layer_features, None),
                            activation=(c.mapping_activation, "lrelu"), lr_multiplier=(c.mapping_lr_multiplier, 0.01))
    synthesis_defaults = dict(architecture=(c.architecture, "skip"), activation=(c.activation, "lrelu"),
                              use_noise=(c.use_noise, True),
                              resample_filter=(list(c.resample_filter), [1, 3, 3, 1]))
    mapping = easydict(num_layers=c.mapping_layers,
                       **{k: v for k, (v, d) in mapping_defaults.items() if v != d})
    odd_synthesis = {k: v for k, (v, d) in synthesis_defaults.items() if v != d}
    if flavour == "ada":  # ADA-PT train.py
        synthesis = easydict(channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=c.num_fp16_res,
                             conv_clamp=c.conv_clamp, **odd_synthesis)
        return dict(common, mapping_kwargs=mapping, synthesis_kwargs=synthesis, **tail)
    if flavour == "sg3":  # SG3 train.py --cfg=stylegan2: flat kwargs, fp16/clamp only when they differ from defaults
        flat = dict(common, mapping_kwargs=mapping, channel_base=c.channel_base, channel_max=c.channel_max,
                    fused_modconv_default="inference_only", **odd_synthesis)
        for key, default in SG3_DEFAULTS.items():
            if getattr(c, key) != default:
                flat[key] = getattr(c, key)
        return dict(flat, **tail)
    raise ValueError(f"flavour must be one of {FLAVOURS}")


def generator_record(G: torch.nn.Module, flavour: str = "ada", module_src: str | None = None,
                     transform: Callable[[np.ndarray], np.ndarray] = lambda a: a,
                     channels_last: bool = False) -> PersistentRecord:
    """G as a persistent-object tree. `transform` alters weights (to make G differ from G_ema in a snapshot)."""
    src = module_src or (SG3_SG2_SRC if flavour == "sg3" else ADA_SRC)

    def record(module: torch.nn.Module, fp16_block: bool) -> PersistentRecord:
        kind = type(module).__name__
        fp16_block = fp16_block or (kind == "SynthesisBlock" and module.use_fp16)
        params = {n: None if p is None else
                  TorchParameter(transform(p.detach().numpy()), channels_last=channels_last and fp16_block)
                  for n, p in module._parameters.items()}
        buffers = {n: TorchTensor(b.numpy()) for n, b in module._buffers.items() if b is not None}
        children = {n: record(child, fp16_block) for n, child in module._modules.items()}
        init_kwargs = generator_init_kwargs(G.config, flavour) if kind == "Generator" else {}
        return PersistentRecord(kind, src, module_state(params, buffers, children, _attrs(module, flavour),
                                                        init_kwargs))

    return record(G, False)


def _conv(src: str, rng: np.random.Generator, out_ch: int, in_ch: int, k: int, bias: bool = True,
          down: int = 1) -> PersistentRecord:
    params = {"weight": TorchParameter(rng.standard_normal((out_ch, in_ch, k, k), dtype=np.float32))}
    if bias:
        params["bias"] = TorchParameter(np.zeros(out_ch, np.float32))
    buffers = {"resample_filter": TorchTensor(np.full((4, 4), 1 / 16, np.float32))}
    attrs = dict(activation="lrelu", up=1, down=down, conv_clamp=None, padding=k // 2,
                 weight_gain=NumpyScalar(1 / math.sqrt(in_ch * k * k)), act_gain=NumpyScalar(math.sqrt(2)))
    return PersistentRecord("Conv2dLayer", src, module_state(params, buffers, {}, attrs, {}))


def discriminator_record(config: Any, src: str = ADA_SRC, seed: int = 1) -> PersistentRecord:
    """A resnet Discriminator with ADA-PT's parameter shapes (it is never rendered; it gives a snapshot its size)."""
    rng = np.random.default_rng(seed)
    ch = config.channels
    blocks = {}
    for r in reversed(config.block_resolutions[1:]):
        children = {}
        if r == config.img_resolution:
            children["fromrgb"] = _conv(src, rng, ch(r), config.img_channels, 1)
        children["conv0"] = _conv(src, rng, ch(r), ch(r), 3)
        children["conv1"] = _conv(src, rng, ch(r // 2), ch(r), 3, down=2)
        children["skip"] = _conv(src, rng, ch(r // 2), ch(r), 1, bias=False, down=2)
        blocks[f"b{r}"] = PersistentRecord("DiscriminatorBlock", src, module_state(
            {}, {"resample_filter": TorchTensor(np.full((4, 4), 1 / 16, np.float32))}, children,
            dict(resolution=r, architecture="resnet"), {}))
    c4 = ch(4)
    epilogue = {"conv": _conv(src, rng, c4, c4 + 1, 3),
                "fc": PersistentRecord("FullyConnectedLayer", src, module_state(
                    {"weight": TorchParameter(rng.standard_normal((c4, c4 * 16), dtype=np.float32)),
                     "bias": TorchParameter(np.zeros(c4, np.float32))}, {}, {},
                    dict(activation="lrelu", weight_gain=NumpyScalar(1 / math.sqrt(c4 * 16)), bias_gain=1), {})),
                "out": PersistentRecord("FullyConnectedLayer", src, module_state(
                    {"weight": TorchParameter(rng.standard_normal((1, c4), dtype=np.float32)),
                     "bias": TorchParameter(np.zeros(1, np.float32))}, {}, {},
                    dict(activation="linear", weight_gain=NumpyScalar(1 / math.sqrt(c4)), bias_gain=1), {}))}
    blocks["b4"] = PersistentRecord("DiscriminatorEpilogue", src, module_state({}, {}, epilogue,
                                                                               dict(resolution=4), {}))
    kwargs = dict(c_dim=config.c_dim, img_resolution=config.img_resolution, img_channels=config.img_channels,
                  architecture="resnet", channel_base=config.channel_base, channel_max=config.channel_max)
    return PersistentRecord("Discriminator", src, module_state({}, {}, blocks, dict(kwargs), kwargs))


def snapshot(G: torch.nn.Module, flavour: str = "ada", with_d: bool = True, training_copy: bool = True,
             channels_last: bool = False, module_src: str | None = None) -> dict:
    """The dict a training run pickles (ADA-PT training_loop) or legacy.py writes (flavour 'ada-legacy')."""
    src = module_src or (SG3_SG2_SRC if flavour == "sg3" else ADA_SRC)
    g_ema = generator_record(G, flavour, src, channels_last=channels_last)
    # The raw training G differs from G_ema; negated weights make a reader that renders G instead fail loudly.
    g = generator_record(G, flavour, src, transform=lambda a: -a, channels_last=channels_last) \
        if training_copy else g_ema
    d = discriminator_record(G.config, src) if with_d else None
    if flavour == "ada-legacy":
        return dict(G=g, D=d, G_ema=g_ema, training_set_kwargs=None, augment_pipe=None)
    dataset = dict(class_name="training.dataset.ImageFolderDataset", path="~/datasets/faces.zip", use_labels=False,
                   max_size=70000, xflip=True, resolution=G.config.img_resolution)
    return dict(training_set_kwargs=dataset, G=g, D=d, G_ema=g_ema, augment_pipe=None)


def write_network_pickle(path: Any, G: torch.nn.Module, flavour: str = "ada", protocol: int | None = None,
                         **snapshot_kwargs: Any) -> None:
    """Write a network pickle. Protocol defaults to what the source's Python wrote: 3 (ADA-PT, py3.7), 4 (SG3)."""
    if protocol is None:
        protocol = 4 if flavour == "sg3" else 3
    with open(path, "wb") as f:
        dump(snapshot(G, flavour, **snapshot_kwargs), f, protocol)


def write_alias_free_pickle(path: Any, protocol: int = 4) -> None:
    """A StyleGAN3 (alias-free, stylegan3-r) snapshot skeleton: enough for a reader to recognise and refuse it."""
    src = SG3_ALIAS_FREE_SRC
    rng = np.random.default_rng(0)
    synthesis_input = PersistentRecord("SynthesisInput", src, module_state(
        {"weight": TorchParameter(rng.standard_normal((16, 4), dtype=np.float32))},
        {"transform": TorchTensor(np.eye(3, dtype=np.float32))}, {}, dict(w_dim=16, channels=16, size=[36, 36],
                                                                           sampling_rate=16, bandwidth=2), {}))
    synthesis = PersistentRecord("SynthesisNetwork", src, module_state({}, {}, {"input": synthesis_input},
                                                                       dict(w_dim=16, num_ws=8), {}))
    init_kwargs = dict(z_dim=16, w_dim=16, mapping_kwargs=easydict(num_layers=2), channel_base=32768,
                       channel_max=512, magnitude_ema_beta=0.999, conv_kernel=1, use_radial_filters=True,
                       c_dim=0, img_resolution=32, img_channels=3)
    G = PersistentRecord("Generator", src, module_state({}, {}, {"synthesis": synthesis}, dict(z_dim=16, w_dim=16),
                                                        init_kwargs))
    with open(path, "wb") as f:
        dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f, protocol)
