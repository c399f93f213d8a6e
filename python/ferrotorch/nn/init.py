"""Initialisation functions (floDl's signatures): each returns a new float32
tensor of ``shape`` drawn from torch's global generator, on ``device``.

floDl is the oracle: under the same ``manual_seed`` these return floDl's
exact bits, because they do floDl's arithmetic (an f32 ``rand``/``randn``
draw, then ``* scale + shift``); that lands within about one ulp of the bound
from the matching ``torch.nn.init`` call, whose ``uniform_`` rounds
differently. Two functions follow torch instead (PyTorch's numerics win; no
floDl layer uses them): ``orthogonal`` uses torch's QR algorithm (floDl:
Gram-Schmidt; both Haar-distributed) and ``trunc_normal`` truncates by
inverse CDF (floDl clamps a normal draw); both equal torch.nn.init's.
"""

from .._core import (
    init_kaiming_normal as kaiming_normal,
)
from .._core import (
    init_kaiming_uniform as kaiming_uniform,
)
from .._core import (
    init_normal as normal,
)
from .._core import (
    init_orthogonal as orthogonal,
)
from .._core import (
    init_trunc_normal as trunc_normal,
)
from .._core import (
    init_uniform as uniform,
)
from .._core import (
    init_uniform_bias as uniform_bias,
)
from .._core import (
    init_xavier_normal as xavier_normal,
)
from .._core import (
    init_xavier_uniform as xavier_uniform,
)

__all__ = [
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
    "orthogonal",
    "trunc_normal",
    "uniform",
    "normal",
    "uniform_bias",
]
