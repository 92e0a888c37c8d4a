"""MPO adapters inside PEFT: a ``peft.LoraConfig`` whose ``nn.Linear`` targets get MPO cores.

PEFT's bookkeeping only (adapter names, active set, merge list); the adapter is
``MPOAdapter`` and its math the core's. ``peft`` is imported when a function here is called.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import torch
from torch import nn

from .._checks import check_int
from .adapters import MPOAdapter, fold

__all__ = ["mpo_lora_config", "mpo_lora_layer"]

# LoraConfig options whose LoRA-specific meaning has no MPO counterpart here.
_UNSUPPORTED = {"use_dora": False, "lora_bias": False, "fan_in_fan_out": False}


def mpo_lora_config(*, n_cores: int = 4, **lora_options: Any) -> Any:
    """A ``peft.LoraConfig`` whose ``nn.Linear`` targets get MPO adapters instead of ``B·A``.

    ``lora_options`` are ``LoraConfig``'s (``target_modules``, ``r``, ``lora_alpha``,
    ``lora_dropout``, ``rank_pattern``, ``use_rslora``, ``modules_to_save``…). ``r`` is the
    MPO's ``max_bond`` and ``n_cores`` its number of cores; the scaling is LoRA's,
    ``lora_alpha / r`` (``/ √r`` with ``use_rslora``). The adapters start at ``ΔW = 0`` (see
    [MPOAdapter][tnkit.torch.MPOAdapter]); ``init_lora_weights`` must stay ``True``, and
    DoRA, ``lora_bias`` and ``fan_in_fan_out`` are refused. It uses PEFT's experimental
    ``LoraConfig._register_custom_module``: the mapping is not saved in
    ``adapter_config.json``, so pass this config again to ``PeftModel.from_pretrained``.

    Example:
        >>> import torch
        >>> from peft import get_peft_model
        >>> from tnkit.torch.peft_interop import mpo_lora_config
        >>> base = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())
        >>> config = mpo_lora_config(target_modules=["0"], r=4, lora_alpha=4, n_cores=3)
        >>> model = get_peft_model(base, config)
        >>> model.get_nb_trainable_parameters()
        (384, 4544)
    """
    from peft import LoraConfig  # optional dependency

    n_cores = check_int(n_cores, "n_cores", minimum=1)
    for name, default in _UNSUPPORTED.items():
        if lora_options.get(name, default) != default:
            raise ValueError(f"{name}: not supported by MPO adapters, got {lora_options[name]!r}")
    init = lora_options.get("init_lora_weights", True)
    if init is not True:
        raise ValueError(f"init_lora_weights: MPO adapters start at ΔW = 0 (True), got {init!r}")
    config = LoraConfig(**lora_options)
    layer = functools.partial(mpo_lora_layer(), n_cores=n_cores)
    config._register_custom_module({nn.Linear: layer})
    return config


@functools.cache
def mpo_lora_layer() -> type:
    """The class of PEFT's MPO layers, ``MPOLoraLinear`` (a ``peft`` LoRA layer; built on the
    first call, when ``peft`` is imported)."""
    from peft.tuners.lora import LoraLayer  # optional dependency
    from peft.tuners.tuners_utils import check_adapters_to_merge  # optional dependency

    class MPOLoraLinear(nn.Module, LoraLayer):
        """A frozen ``nn.Linear`` plus one [MPOAdapter][tnkit.torch.MPOAdapter] per PEFT
        adapter name, under ``lora_mpo.<adapter name>``."""

        adapter_layer_names = ("lora_mpo",)

        def __init__(
            self,
            base_layer: nn.Module,
            adapter_name: str,
            config: Any,
            r: int = 0,
            lora_alpha: int = 1,
            *,
            n_cores: int = 4,
            **kwargs: Any,
        ) -> None:
            super().__init__()
            LoraLayer.__init__(self, base_layer, **kwargs)
            self.n_cores = n_cores
            self.fan_in_fan_out = False
            self.lora_mpo = nn.ModuleDict()
            self._active_adapter = adapter_name
            self.update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config, **kwargs)

        def update_layer(
            self, adapter_name: str, r: int, lora_alpha: float, config: Any, **kwargs: Any
        ) -> None:
            r = check_int(r, "r", minimum=1)
            self.r[adapter_name] = r
            self.lora_alpha[adapter_name] = lora_alpha
            self.use_rslora[adapter_name] = config.use_rslora
            self.use_dora[adapter_name] = False
            self.lora_bias[adapter_name] = False
            self.scaling[adapter_name] = lora_alpha / (math.sqrt(r) if config.use_rslora else r)
            dropout = config.lora_dropout
            self.lora_dropout[adapter_name] = nn.Dropout(dropout) if dropout else nn.Identity()
            self.lora_mpo[adapter_name] = MPOAdapter(
                self.in_features, self.out_features, n_cores=self.n_cores, max_bond=r
            )
            self._move_adapter_to_device_of_base_layer(adapter_name)
            self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

        def get_delta_weight(self, adapter: str) -> torch.Tensor:
            return self.lora_mpo[adapter].delta_weight() * self.scaling[adapter]

        def merge(self, safe_merge: bool = False, adapter_names: Any = None) -> None:
            weight = self.get_base_layer().weight
            for name in check_adapters_to_merge(self, adapter_names):
                if name not in self.lora_mpo:
                    continue
                merged = weight.detach().clone() if safe_merge else weight
                fold(merged, self.lora_mpo[name], +1, self.scaling[name])
                if safe_merge:
                    if not torch.isfinite(merged).all():
                        raise ValueError(f"NaNs in the merged weights of adapter {name!r}")
                    with torch.no_grad():
                        weight.copy_(merged)
                self.merged_adapters.append(name)

        def unmerge(self) -> None:
            if not self.merged:
                warnings.warn("Already unmerged. Nothing to do.", stacklevel=2)
                return
            weight = self.get_base_layer().weight
            while self.merged_adapters:
                name = self.merged_adapters.pop()
                if name in self.lora_mpo:
                    fold(weight, self.lora_mpo[name], -1, self.scaling[name])

        def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            self._check_forward_args(x, *args, **kwargs)
            if kwargs.pop("adapter_names", None) is not None:
                raise ValueError("adapter_names: mixed-adapter batches are not supported")
            if self.disable_adapters and self.merged:
                self.unmerge()
            result = self.base_layer(x, *args, **kwargs)
            if self.disable_adapters or self.merged:
                return result
            for name in self.active_adapters:
                if name in self.lora_mpo:
                    delta = self.lora_mpo[name](self.lora_dropout[name](x)) * self.scaling[name]
                    result = result + delta.to(result.dtype)
            return result

        def supports_lora_conversion(self, adapter_name: str = "default") -> bool:
            return False

        def __repr__(self) -> str:
            return "lora.mpo." + super().__repr__()

    return MPOLoraLinear
