"""Writes TensorFlow StyleGAN2 / StyleGAN2-ADA pickles from one of our Generators (reference §3.1, §3.3).

The file is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects, each pickled as NEWOBJ of that class and
a BUILD with its `__getstate__` dict: version, name, static_kwargs, components, build_module_src, build_func_name,
variables (list of (local name, ndarray)). Weights are laid out as TF stores them — dense [in, out], conv
[kh, kw, in, out] (up-convs and skips spatially flipped), const [1, C, 4, 4], noise [1, 1, r, r], style biases
without the +1. `build_module_src` is a stand-in holding only the build functions' signatures (their defaults are
what a reader must see); NVIDIA's code is not reproduced.
"""
from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import torch

from tests.formats.pickle_writer import FixturePickler, GlobalName, NumpyArray

NETWORK = GlobalName("dnnlib.tflib.network", "Network")

SG2_SRC_TEMPLATE = '''"""Stand-in for NVlabs/stylegan2 training/networks_stylegan2.py: signatures only (fixture)."""

def G_main(latents_in, labels_in, truncation_psi=0.5, truncation_cutoff=None, truncation_psi_val=None,
           truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9, is_training=False,
           is_validation=False, is_template_graph=False, components=dnnlib.EasyDict(), mapping_func='G_mapping',
           synthesis_func='G_synthesis_stylegan2', **kwargs):
    pass

def G_mapping(latents_in, labels_in, latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None,
              mapping_layers=8, mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity='lrelu',
              normalize_latents={normalize_latents}, dtype='float32', **_kwargs):
    pass

def G_synthesis_stylegan2(dlatents_in, dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10,
                          fmap_decay=1.0, fmap_min=1, fmap_max=512, randomize_noise=True, architecture='skip',
                          nonlinearity='lrelu', dtype='float32', resample_kernel=[1,3,3,1], fused_modconv=True,
                          **_kwargs):
    pass

def G_style(latents_in, labels_in, truncation_psi=0.7, truncation_cutoff=8, **kwargs):
    pass  # StyleGAN1's generator, here so the StyleGAN1 fixture can name it
'''


def build_module_src(normalize_latents: bool = True) -> str:
    return SG2_SRC_TEMPLATE.replace("{normalize_latents}", repr(normalize_latents))


class TFNetworkStandIn:
    def __init__(self, state: dict):
        self.state = state


class TFPickler(FixturePickler):
    """Writes TFNetworkStandIn exactly as pickle writes a `Network` at protocol >= 2: NEWOBJ, then BUILD state."""

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, TFNetworkStandIn):
            memo = self.memo.get(id(obj))
            if memo is not None:
                self.write(self.get(memo[0]))
                return
            self.save(NETWORK)
            self.save(())
            self.write(pickle.NEWOBJ)
            self.memoize(obj)
            self.save(obj.state)
            self.write(pickle.BUILD)
            return
        super().save(obj, save_persistent_id)


def _var(a: Any) -> NumpyArray:
    return NumpyArray(np.asarray(a, dtype=np.float32))


def tf_variables(G: torch.nn.Module) -> tuple[list, list, list]:
    """(top-level, mapping, synthesis) variable lists in TF layout, inverse of reference §3.3."""
    sd = {k: v.detach().numpy() for k, v in G.state_dict().items()}
    top = [("dlatent_avg", _var(sd["mapping.w_avg"])), ("lod", _var(np.float32(0)))]
    mapping = []
    if "mapping.embed.weight" in sd:
        mapping += [("LabelEmbed/weight", _var(sd["mapping.embed.weight"].T)),
                    ("LabelEmbed/bias", _var(sd["mapping.embed.bias"]))]
    for i in range(G.config.mapping_layers):
        mapping += [(f"Dense{i}/weight", _var(sd[f"mapping.fc{i}.weight"].T)),
                    (f"Dense{i}/bias", _var(sd[f"mapping.fc{i}.bias"]))]

    def conv(w: np.ndarray, flip: bool) -> np.ndarray:
        w = w.transpose(2, 3, 1, 0)  # [out, in, kh, kw] → [kh, kw, in, out]
        return w[::-1, ::-1] if flip else w

    synthesis = []
    for res in G.config.block_resolutions:  # TF creates the noise variables first, in layer order
        for layer in (["conv1"] if res == 4 else ["conv0", "conv1"]):
            key = f"synthesis.b{res}.{layer}.noise_const"
            if key in sd:
                index = 0 if res == 4 else 2 * int(math.log2(res)) - (5 if layer == "conv0" else 4)
                synthesis.append((f"noise{index}", _var(sd[key][None, None])))
    for res in G.config.block_resolutions:
        b = f"synthesis.b{res}"
        tf = f"{res}x{res}"
        if res == 4:
            synthesis.append((f"{tf}/Const/const", _var(sd[f"{b}.const"][None])))
        for ours, theirs, flip in (("conv0", "Conv0_up", True), ("conv1", "Conv" if res == 4 else "Conv1", False)):
            if f"{b}.{ours}.weight" not in sd:
                continue
            synthesis += [(f"{tf}/{theirs}/weight", _var(conv(sd[f"{b}.{ours}.weight"], flip))),
                          (f"{tf}/{theirs}/mod_weight", _var(sd[f"{b}.{ours}.affine.weight"].T)),
                          (f"{tf}/{theirs}/mod_bias", _var(sd[f"{b}.{ours}.affine.bias"] - 1))]
            if f"{b}.{ours}.noise_strength" in sd:
                synthesis.append((f"{tf}/{theirs}/noise_strength", _var(sd[f"{b}.{ours}.noise_strength"])))
            synthesis.append((f"{tf}/{theirs}/bias", _var(sd[f"{b}.{ours}.bias"])))
        if f"{b}.torgb.weight" in sd:
            synthesis += [(f"{tf}/ToRGB/weight", _var(conv(sd[f"{b}.torgb.weight"], False))),
                          (f"{tf}/ToRGB/mod_weight", _var(sd[f"{b}.torgb.affine.weight"].T)),
                          (f"{tf}/ToRGB/mod_bias", _var(sd[f"{b}.torgb.affine.bias"] - 1)),
                          (f"{tf}/ToRGB/bias", _var(sd[f"{b}.torgb.bias"]))]
        if f"{b}.skip.weight" in sd:
            synthesis.append((f"{tf}/Skip/weight", _var(conv(sd[f"{b}.skip.weight"], True))))
    return top, mapping, synthesis


def static_kwargs_for(config: Any, explicit_defaults: bool = False) -> dict:
    """G's static_kwargs: what the training script passed (TF spelling); defaults are left to the build functions."""
    c = config
    kwargs = dict(num_channels=c.img_channels, resolution=c.img_resolution, label_size=c.c_dim)
    values = dict(latent_size=c.z_dim, dlatent_size=c.w_dim, mapping_layers=c.mapping_layers,
                  mapping_lrmul=c.mapping_lr_multiplier, fmap_base=c.channel_base // 2, fmap_max=c.channel_max,
                  architecture=c.architecture, nonlinearity=c.activation, mapping_nonlinearity=c.mapping_activation,
                  resample_kernel=list(c.resample_filter),
                  mapping_fmaps=c.mapping_layer_features or c.w_dim)
    defaults = dict(mapping_fmaps=512, latent_size=512, dlatent_size=512, mapping_layers=8, mapping_lrmul=0.01, fmap_base=16384,
                    fmap_max=512, architecture="skip", nonlinearity="lrelu", mapping_nonlinearity="lrelu",
                    resample_kernel=[1, 3, 3, 1])
    for key, value in values.items():
        if explicit_defaults or value != defaults[key]:
            kwargs[key] = value
    if c.num_fp16_res or c.conv_clamp is not None:  # StyleGAN2-ADA (TF) training passes these
        kwargs.update(num_fp16_res=c.num_fp16_res, conv_clamp=c.conv_clamp)
    if c.mapping_embed_features is not None:
        kwargs["label_fmaps"] = c.mapping_embed_features
    return kwargs


def tf_generator_state(G: torch.nn.Module, name: str = "Gs", version: int = 4, static_kwargs: dict | None = None,
                       module_src: str | None = None, synthesis_func: str = "G_synthesis_stylegan2") -> dict:
    src = module_src if module_src is not None else build_module_src(G.config.normalize_latents)
    top, mapping, synthesis = tf_variables(G)
    kwargs = static_kwargs if static_kwargs is not None else static_kwargs_for(G.config)

    def network(net_name: str, func: str, variables: list, components: dict) -> TFNetworkStandIn:
        return TFNetworkStandIn(dict(version=version, name=net_name, static_kwargs=dict(kwargs),
                                     components=components, build_module_src=src, build_func_name=func,
                                     variables=variables))

    components = {"mapping": network("G_mapping", "G_mapping", mapping, {}),
                  "synthesis": network("G_synthesis", synthesis_func, synthesis, {})}
    return network(name, "G_main", top, components).state


def write_tf_pickle(path: Any, G: torch.nn.Module, protocol: int = 4, **state_kwargs: Any) -> None:
    """(G, D, Gs) as SG2-TF training_loop saves it with pickle.HIGHEST_PROTOCOL (4 on the Python 3.6/3.7 of 2020)."""
    gs = TFNetworkStandIn(tf_generator_state(G, "Gs", **state_kwargs))
    g = TFNetworkStandIn(tf_generator_state(G, "G", **state_kwargs))
    d = TFNetworkStandIn(dict(version=gs.state["version"], name="D", static_kwargs={}, components={},
                              build_module_src=gs.state["build_module_src"], build_func_name="D_stylegan2",
                              variables=[("4x4/Dense0/weight", _var(np.ones((16, 8))))]))
    with open(path, "wb") as f:
        TFPickler(f, protocol=protocol).dump((g, d, gs))


def write_stylegan1_pickle(path: Any) -> None:
    """A StyleGAN1 (NVlabs/stylegan, state version 3) (G, D, Gs) skeleton, for the refusal test."""
    def net(name: str, func: str) -> TFNetworkStandIn:
        return TFNetworkStandIn(dict(version=3, name=name, static_kwargs=dict(resolution=512, num_channels=3),
                                     components={}, build_module_src=build_module_src(), build_func_name=func,
                                     variables=[("dlatent_avg", _var(np.zeros(512)))]))
    with open(path, "wb") as f:
        TFPickler(f, protocol=4).dump((net("G", "G_style"), net("D", "D_basic"), net("Gs", "G_style")))
