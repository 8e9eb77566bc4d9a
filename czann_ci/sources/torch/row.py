"""PyTorch modules (in memory, TorchScript files, whole-module pickles) as a source: its row."""

from __future__ import annotations

from typing import Any

from czann_ci.sources.registry import SourceRow, register


def _is_torch_module(model: Any) -> bool:
    return type(model).__module__.startswith("torch") or hasattr(model, "state_dict")


register(
    SourceRow(
        format="torch",
        source="czann_ci.sources.torch.source:TorchSource",
        noun="a torch module (.pt, .pth)",
        plural="PyTorch sources",
        suffixes=(".pt", ".pth"),
        claims_object=_is_torch_module,
        extra="torch",  # checked when the module is loaded (export.py)
    )
)
