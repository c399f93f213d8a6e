//! The one table of built-in losses: per loss its kind, function, class,
//! input tensors, options with their defaults (torch's, where torch has the
//! loss) and doc. `loss/mod.rs` builds `LossKind`, the defaults and the option
//! lists from it; the binding builds each function and class (signature and
//! docstring) from it, so a default is written once.
//!
//! A row: `Kind function Class [inputs] [(option: Type = default), ...] "doc";`.
//! `Type` is `Reduction`, `Weight` (an optional tensor), `f64`, `i64` or `bool`;
//! each option sets the `LossOptions` field of its name.

/// Calls `$m!` with every row.
macro_rules! loss_table {
    ($m:ident) => {
        $m! {
            Mse mse_loss MSELoss [pred, target] [(reduction: Reduction = "mean")]
                "Mean squared error.";
            L1 l1_loss L1Loss [pred, target] [(reduction: Reduction = "mean")]
                "Mean absolute error (alias ``mae``).";
            SmoothL1 smooth_l1_loss SmoothL1Loss [pred, target]
                [(beta: f64 = 1.0), (reduction: Reduction = "mean")]
                "Smooth L1 loss.\n\n0.5·d²/beta where |d| < beta, else |d| − 0.5·beta. ``beta`` \
must be > 0 (floDl;\ntorch also accepts 0, which is ``l1_loss``).";
            Huber huber_loss HuberLoss [pred, target]
                [(delta: f64 = 1.0), (reduction: Reduction = "mean")]
                "Huber loss.\n\n0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta); \
``delta`` must be > 0.";
            PoissonNll poisson_nll_loss PoissonNLLLoss [pred, target]
                [(log_input: bool = true), (full: bool = false), (eps: f64 = 1e-8),
                 (reduction: Reduction = "mean")]
                "Poisson negative log-likelihood.\n\n``exp(x) − t·x`` when ``log_input`` else \
``x − t·log(x + eps)``; ``full`` adds the\nStirling term, as torch.";
            CrossEntropy cross_entropy_loss CrossEntropyLoss [logits, target]
                [(weight: Weight = None), (ignore_index: i64 = -100),
                 (reduction: Reduction = "mean"), (label_smoothing: f64 = 0.0)]
                "Cross entropy of logits.\n\n``logits`` are [N, C, ...] (classes on dim 1). \
``target`` is class indices\n[N, ...] (any integer dtype) or probabilities / \
one-hot of the logits' shape and\ndtype. ``weight`` is per class ([C]); targets \
equal to ``ignore_index`` are\nskipped (an all-ignored batch gives NaN under \
\"mean\", as torch).";
            CrossEntropySparse cross_entropy_sparse CrossEntropySparseLoss [logits, target]
                [(weight: Weight = None), (ignore_index: i64 = -100),
                 (reduction: Reduction = "mean"), (label_smoothing: f64 = 0.0)]
                "``cross_entropy_loss`` for class indices only.";
            Nll nll_loss NLLLoss [log_probs, target]
                [(weight: Weight = None), (ignore_index: i64 = -100),
                 (reduction: Reduction = "mean")]
                "Negative log-likelihood of log-probabilities.";
            Bce bce_loss BCELoss [pred, target]
                [(weight: Weight = None), (reduction: Reduction = "mean")]
                "Binary cross entropy of probabilities.";
            BceWithLogits bce_with_logits_loss BCEWithLogitsLoss [logits, target]
                [(weight: Weight = None), (pos_weight: Weight = None),
                 (reduction: Reduction = "mean")]
                "Binary cross entropy of logits.";
            Focal focal_loss FocalLoss [logits, target]
                [(alpha: f64 = 0.25), (gamma: f64 = 2.0), (ignore_index: i64 = -100),
                 (reduction: Reduction = "mean")]
                "Focal loss of logits against class indices.\n\nfloDl's multi-class focal loss: \
``−alpha·(1 − pt)^gamma·log(pt)`` with ``pt`` the\nsoftmax probability of the \
target class (``target``: class indices, logits\n[N, C, ...]). \"mean\" averages \
over the non-ignored targets, \"sum\" sums, \"none\"\nreturns one value per \
target (0 where ignored). Not in torch; gamma=0 is\n``alpha · cross_entropy``.";
            KlDiv kl_div_loss KLDivLoss [input, target]
                [(reduction: Reduction = "batchmean"), (log_target: bool = false)]
                "Kullback-Leibler divergence.\n\n``input`` is log-probabilities; ``target`` \
probabilities (log-probabilities with\n``log_target``). \"batchmean\" (the \
default, as floDl) is the sum over the batch\nsize; \"mean\" is torch's element \
mean.";
            Ctc ctc_loss CTCLoss [log_probs, targets, input_lengths, target_lengths]
                [(blank: i64 = 0), (reduction: Reduction = "mean"), (zero_infinity: bool = false)]
                "Connectionist temporal classification loss.\n\n``log_probs`` [T, N, C]; lengths \
are tensors or lists of ints. \"mean\" divides each\nsequence's loss by its \
target length, then averages, as torch.";
            TripletMargin triplet_margin_loss TripletMarginLoss [anchor, positive, negative]
                [(margin: f64 = 1.0), (p: f64 = 2.0), (eps: f64 = 1e-6), (swap: bool = false),
                 (reduction: Reduction = "mean")]
                "Triplet margin loss.\n\n``max(d(a, p) − d(a, n) + margin, 0)`` with torch's \
pairwise distance; margin > 0.";
            CosineEmbedding cosine_embedding_loss CosineEmbeddingLoss [input1, input2, target]
                [(margin: f64 = 0.0), (reduction: Reduction = "mean")]
                "Cosine embedding loss.\n\n``target`` in {1, −1}: ``1 − cos`` or \
``max(0, cos − margin)``.";
            HingeEmbedding hinge_embedding_loss HingeEmbeddingLoss [input, target]
                [(margin: f64 = 1.0), (reduction: Reduction = "mean")]
                "Hinge embedding loss.\n\n``target`` in {1, −1}: ``x`` or ``max(0, margin − x)``.";
            MarginRanking margin_ranking_loss MarginRankingLoss [input1, input2, target]
                [(margin: f64 = 0.0), (reduction: Reduction = "mean")]
                "Margin ranking loss.\n\n``max(0, −target·(input1 − input2) + margin)``.";
        }
    };
}

pub(crate) use loss_table;
