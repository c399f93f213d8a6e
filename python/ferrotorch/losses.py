"""Losses: functions returning torch tensors (autograd-connected) and class forms.

Every loss checks its inputs (shapes and dtypes must match: :class:`ShapeError`
and :class:`DTypeError` name both) and then runs libtorch's own kernel, so values
and gradients equal ``torch.nn.functional``. Under ``torch.autocast`` (CPU or
CUDA) mixed float dtypes are accepted and cast by torch's autocast policy, so
each loss returns the dtype and value ``torch.nn.functional`` returns there.
Cross entropy and nll also take one unbatched sample (``logits[C]``, a 0-dim
class index or ``[C]`` probabilities), as torch does. ``reduction`` is ``"mean"``,
``"sum"`` or ``"none"`` (``kl_div_loss`` also ``"batchmean"``, its default); bad
options raise :class:`ConfigError` naming the argument.

Each class (``MSELoss()``, ``CrossEntropyLoss(label_smoothing=0.1)``, ...) holds
the loss and its options in Rust: call it (``loss(pred, target)``) or use
``loss.compute(pred, target)``; given to ``Trainer(loss=...)`` it keeps the whole
step in Rust. ``Trainer(loss="name")`` accepts the names in :data:`LOSS_NAMES`
(every loss taking ``(pred, target)``; also ``"<name>_loss"``).
"""

from ._core import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    CrossEntropySparseLoss,
    CTCLoss,
    FocalLoss,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    Loss,
    MarginRankingLoss,
    MSELoss,
    NLLLoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    TripletMarginLoss,
    bce_loss,
    bce_with_logits_loss,
    cosine_embedding_loss,
    cross_entropy_loss,
    cross_entropy_sparse,
    ctc_loss,
    focal_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div_loss,
    l1_loss,
    loss_names,
    margin_ranking_loss,
    mse_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    triplet_margin_loss,
)

#: Names ``Trainer(loss=...)`` accepts.
LOSS_NAMES = tuple(loss_names())

mae = l1_loss
MAELoss = L1Loss


__all__ = [
    "LOSS_NAMES",
    "Loss",
    "mse_loss",
    "l1_loss",
    "mae",
    "smooth_l1_loss",
    "huber_loss",
    "poisson_nll_loss",
    "cross_entropy_loss",
    "cross_entropy_sparse",
    "nll_loss",
    "bce_loss",
    "bce_with_logits_loss",
    "focal_loss",
    "kl_div_loss",
    "ctc_loss",
    "triplet_margin_loss",
    "cosine_embedding_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "MSELoss",
    "L1Loss",
    "MAELoss",
    "SmoothL1Loss",
    "HuberLoss",
    "PoissonNLLLoss",
    "CrossEntropyLoss",
    "CrossEntropySparseLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "FocalLoss",
    "KLDivLoss",
    "CTCLoss",
    "TripletMarginLoss",
    "CosineEmbeddingLoss",
    "HingeEmbeddingLoss",
    "MarginRankingLoss",
]
