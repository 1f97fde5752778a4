"""The one pattern behind every loss module: a thin ``nn.Module`` twin of a loss function.

``DiceLoss(smooth_nr=1.0)(logits, target)`` is ``dice_loss(logits, target, smooth_nr=1.0)``. The
keyword arguments are checked against the function's signature when the module is built, and
tensor arguments (class weights) are registered as buffers so that ``module.to(device)`` moves them.
Each twin's constructor carries the function's keyword-only signature, so ``help(DiceLoss)`` and
``inspect.signature(DiceLoss)`` show the arguments, not ``**kwargs``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn


class LossModule(nn.Module):
    """Base class: subclasses set ``function`` to the loss function they wrap."""

    function: ClassVar[Callable[..., torch.Tensor]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        options = [
            p
            for p in inspect.signature(cls.function).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)

        def __init__(self: LossModule, **kwargs: Any) -> None:
            LossModule.__init__(self, **kwargs)

        __init__.__signature__ = inspect.Signature([self_, *options])  # type: ignore[attr-defined]
        __init__.__doc__ = f"Keyword arguments of :func:`{cls.function.__name__}`."
        cls.__init__ = __init__  # type: ignore[method-assign]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        try:
            inspect.signature(self.function).bind(None, None, **kwargs)
        except TypeError as err:
            raise ValueError(f"{type(self).__name__}: {err}") from None
        self._options = {k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor)}
        self._buffer_names = [k for k, v in kwargs.items() if isinstance(v, torch.Tensor)]
        for name in self._buffer_names:
            self.register_buffer(name, kwargs[name])

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        buffers = {name: getattr(self, name) for name in self._buffer_names}
        return type(self).function(logits, target, **self._options, **buffers)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options.items())
