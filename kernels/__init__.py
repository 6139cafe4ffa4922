"""Batched multi-adapter LoRA: grouping, layouts, a plain-torch reference,
the CPU grouped path and (imported on demand, it needs Triton) GPU kernels
in :mod:`kernels.triton_lora`."""

from .cpu_grouped import grouped_expand, grouped_lora_linear, grouped_shrink
from .layout import LoRABank, LoRASlice
from .reference import reference_expand, reference_lora_linear, reference_shrink
from .segments import PlannedRows, Segments, SlotPlan, TileSchedule, group_tokens

__all__ = [
    "LoRABank",
    "LoRASlice",
    "Segments",
    "SlotPlan",
    "PlannedRows",
    "TileSchedule",
    "group_tokens",
    "grouped_shrink",
    "grouped_expand",
    "grouped_lora_linear",
    "reference_shrink",
    "reference_expand",
    "reference_lora_linear",
]
