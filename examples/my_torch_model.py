"""A PyTorch model for ``hessian-rank --model examples/my_torch_model.py:build``.

``build(d, K, seed)`` returns a ``torch.nn.Module`` mapping a batch of inputs (b, d) to
outputs (b, K); hessrank recognises it by its type, measures it on a float64 copy in the mode
it is in (``train()`` or ``eval()``) and leaves it as it was. Per-block ranks name its
parameters as ``named_parameters()`` does: ``--blocks leaves`` gives ``hidden.weight``,
``hidden.bias``, ``out.weight``; ``--blocks layers`` gives ``hidden`` and ``out``.

    hessian-rank run --dataset gaussian --n 40 --dim 8 --K 3 --model examples/my_torch_model.py:build
    hessian-rank spectrum --dataset gaussian --n 40 --dim 8 --K 3 --model examples/my_torch_model.py:build
    hessian-rank train --dataset gaussian --n 40 --dim 8 --K 3 --model examples/my_torch_model.py:build --steps 20

``train`` trains a float64 copy with ``torch.optim`` and saves each checkpoint's
``state_dict`` as ``step<t>.pt``, which ``hessian-rank run --params`` reads.
"""

import torch


class TwoLayerTanh(torch.nn.Module):
    """x -> out(tanh(hidden(x))), the output layer without bias."""

    def __init__(self, d: int, K: int, width: int = 16):
        super().__init__()
        self.hidden = torch.nn.Linear(d, width)
        self.out = torch.nn.Linear(width, K, bias=False)

    def forward(self, x):
        """Outputs (b, K) of a batch (b, d)."""
        return self.out(torch.tanh(self.hidden(x)))


def build(d: int, K: int, seed: int) -> torch.nn.Module:
    """The network for inputs of dimension ``d`` and ``K`` outputs, initialised from ``seed``."""
    torch.manual_seed(seed)
    return TwoLayerTanh(d, K)
