"""Mixed precision on CPU: ``tools/train.py --amp`` without a GPU."""
import contextlib
from typing import Iterator, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward passes run under ``torch.autocast('cpu', dtype)``.

    MMEngine's ``AmpOptimWrapper`` refuses to start without a GPU (an assertion in its
    constructor), although torch autocasts on CPU in bfloat16. bfloat16 has float32's range, so
    no loss scaling is needed; the backward pass and the update run in float32 as usual. Our losses
    compute in float32 under autocast (``mmincseg/models/losses``). ``tools/train.py --amp``
    picks this wrapper when CUDA is absent and MMEngine's ``AmpOptimWrapper`` otherwise.

    Args:
        dtype (str | torch.dtype): Autocast dtype. Defaults to ``'bfloat16'`` (fp16 autocast
            on CPU is slow and needs loss scaling).
        **kwargs: Passed to ``OptimWrapper`` (``optimizer``, ``clip_grad``...).
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of ``OptimWrapper`` plus CPU autocast."""
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
