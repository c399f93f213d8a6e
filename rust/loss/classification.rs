//! Classification losses: cross_entropy (indices or probabilities),
//! cross_entropy_sparse (indices only), nll, bce, bce_with_logits, focal,
//! kl_div. Logits are [batch, classes, ...]; index targets drop dim 1.

use tch::{Kind, Tensor};

use super::{is_int, same_float, weight_of, LossKind, LossOptions, LossSpec, Reduction};
use crate::tensor::{is_float, kind_of, kind_str, require_float, shape_str};
use crate::{Error, Result};

/// Logits of rank >= 2 (classes on dim 1), or rank 1 (one unbatched sample,
/// classes on dim 0) where torch accepts that; returns their dtype.
fn class_logits(f: &str, what: &str, logits: &Tensor, unbatched: bool) -> Result<Kind> {
    let k = require_float(logits, &format!("{f} {what}"))?;
    let min = if unbatched { 1 } else { 2 };
    if logits.dim() < min {
        let also = if unbatched { " or [classes]" } else { "" };
        return Err(Error::Shape(format!(
            "{f}: {what} must be [batch, classes, ...]{also}, got shape {}",
            shape_str(logits)
        )));
    }
    Ok(k)
}

/// The class dimension: 1, or 0 for unbatched [classes] logits (as torch).
fn class_dim(logits: &Tensor) -> usize {
    usize::from(logits.dim() >= 2)
}

/// The shape class-index targets must have: the logits' without the class dim.
fn index_shape(logits: &Tensor) -> Vec<i64> {
    let mut s = logits.size();
    s.remove(class_dim(logits));
    s
}

/// Class-index targets as int64, of the logits' shape without dim 1.
fn class_target(f: &str, what: &str, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    let tk = kind_of(target, &format!("{f} target"))?;
    if !is_int(tk) {
        return Err(Error::DType(format!(
            "{f}: target must hold class indices (int64), got {}",
            kind_str(tk)
        )));
    }
    let expect = index_shape(logits);
    if target.size() != expect {
        return Err(Error::Shape(format!(
            "{f}: {what} shape {} needs a target of shape {:?}, got {}",
            shape_str(logits),
            expect,
            shape_str(target)
        )));
    }
    Ok(if tk == Kind::Int64 {
        target.shallow_clone()
    } else {
        target.f_to_kind(Kind::Int64)?
    })
}

/// Per-class weights: shape [C] and the logits' dtype.
fn class_weight(f: &str, logits: &Tensor, o: &LossOptions, k: Kind) -> Result<Option<Tensor>> {
    let w = weight_of(f, "weight", &o.weight, k)?;
    if let Some(w) = &w {
        let c = logits.size()[class_dim(logits)];
        if w.size() != [c] {
            return Err(Error::Shape(format!(
                "{f}: weight must have shape [{c}] (one per class of logits shape {}), got {}",
                shape_str(logits),
                shape_str(w)
            )));
        }
    }
    Ok(w)
}

pub(super) fn cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    o: &LossOptions,
    sparse: bool,
) -> Result<Tensor> {
    let f = if sparse {
        "cross_entropy_sparse"
    } else {
        "cross_entropy_loss"
    };
    let lk = class_logits(f, "logits", logits, true)?;
    let tk = kind_of(target, &format!("{f} target"))?;
    let target = if is_float(tk) && !sparse && target.size() == logits.size() {
        // Probabilities (or one-hot) per class, as torch.
        if tk != lk && !super::autocast_on(logits) {
            return Err(Error::DType(format!(
                "{f}: probability target is {} but logits are {}",
                kind_str(tk),
                kind_str(lk)
            )));
        }
        target.shallow_clone()
    } else if is_float(tk) && !sparse && target.size() != index_shape(logits) {
        return Err(Error::Shape(format!(
            "{f}: logits shape {} needs class indices of shape {:?} or probabilities of \
             shape {}, got target shape {}",
            shape_str(logits),
            index_shape(logits),
            shape_str(logits),
            shape_str(target)
        )));
    } else {
        class_target(f, "logits", logits, target)?
    };
    let w = class_weight(f, logits, o, lk)?;
    Ok(logits.f_cross_entropy_loss(
        &target,
        w.as_ref(),
        o.reduction.tch(),
        o.ignore_index,
        o.label_smoothing,
    )?)
}

pub(super) fn nll(log_probs: &Tensor, target: &Tensor, o: &LossOptions) -> Result<Tensor> {
    let f = "nll_loss";
    let lk = class_logits(f, "log-probabilities", log_probs, true)?;
    let target = class_target(f, "log-probabilities", log_probs, target)?;
    let w = class_weight(f, log_probs, o, lk)?;
    Ok(log_probs.f_nll_loss_nd(&target, w.as_ref(), o.reduction.tch(), o.ignore_index)?)
}

/// An element-weight option broadcast to `target`'s shape (as torch does for bce).
fn element_weight(
    f: &str,
    arg: &str,
    w: &Option<super::Weight>,
    target: &Tensor,
    k: Kind,
) -> Result<Option<Tensor>> {
    let Some(w) = weight_of(f, arg, w, k)? else {
        return Ok(None);
    };
    let e = w.f_expand(target.size(), false).map_err(|_| {
        Error::Shape(format!(
            "{f}: {arg} shape {} does not broadcast to target shape {}",
            shape_str(&w),
            shape_str(target)
        ))
    })?;
    Ok(Some(e))
}

pub(super) fn bce(pred: &Tensor, target: &Tensor, o: &LossOptions) -> Result<Tensor> {
    let f = "bce_loss";
    let k = same_float(f, "prediction", pred, "target", target)?;
    let w = element_weight(f, "weight", &o.weight, target, k)?;
    Ok(pred.f_binary_cross_entropy(target, w.as_ref(), o.reduction.tch())?)
}

pub(super) fn bce_with_logits(logits: &Tensor, target: &Tensor, o: &LossOptions) -> Result<Tensor> {
    let f = "bce_with_logits_loss";
    let k = same_float(f, "logits", logits, "target", target)?;
    let w = element_weight(f, "weight", &o.weight, target, k)?;
    let pw = element_weight(f, "pos_weight", &o.pos_weight, target, k)?;
    Ok(logits.f_binary_cross_entropy_with_logits(
        target,
        w.as_ref(),
        pw.as_ref(),
        o.reduction.tch(),
    )?)
}

/// floDl's focal loss: `-alpha * (1 - pt)^gamma * log(pt)` with `pt` the
/// softmax probability of the target class. Targets equal to `ignore_index`
/// contribute 0 and are left out of the mean (as cross_entropy does), so an
/// all-ignored batch gives NaN under "mean", like torch's cross_entropy.
pub(super) fn focal(logits: &Tensor, target: &Tensor, o: &LossOptions) -> Result<Tensor> {
    let f = "focal_loss";
    let k = class_logits(f, "logits", logits, false)?;
    let t = class_target(f, "logits", logits, target)?;
    let valid = t.f_ne(o.ignore_index)?;
    let safe = t.f_masked_fill(&valid.f_logical_not()?, 0)?;
    let logpt = logits
        .f_log_softmax(1, None)?
        .f_gather(1, &safe.f_unsqueeze(1)?, false)?
        .f_squeeze_dim(1)?;
    let modulator = logpt
        .f_exp()?
        .f_neg()?
        .f_add_scalar(1.0)?
        .f_pow_tensor_scalar(o.gamma)?;
    let loss = modulator.f_mul(&logpt)?.f_mul_scalar(-o.alpha)?;
    // where (not a multiply) so ignored positions get exactly zero gradient.
    let loss = loss.f_where_self(&valid, &loss.f_zeros_like()?)?;
    Ok(match o.reduction {
        Reduction::None => loss,
        Reduction::Sum | Reduction::BatchMean => loss.f_sum(None)?,
        Reduction::Mean => loss.f_sum(None)?.f_div(&valid.f_sum(k)?)?,
    })
}

pub(super) fn kl_div(input: &Tensor, target: &Tensor, o: &LossOptions) -> Result<Tensor> {
    let f = "kl_div_loss";
    same_float(f, "input (log-probabilities)", input, "target", target)?;
    let out = input.f_kl_div(target, o.reduction.tch(), o.log_target)?;
    if o.reduction == Reduction::BatchMean && input.dim() > 0 {
        return Ok(out.f_div_scalar(input.size()[0])?);
    }
    Ok(out)
}

/// Cross entropy (mean, ignore_index -100) of logits [N, C, ...] against class
/// indices [N, ...] or probabilities [N, C, ...].
pub fn cross_entropy_loss(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    LossKind::CrossEntropy.compute(logits, target)
}

/// Cross entropy against class indices only.
pub fn cross_entropy_sparse(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    LossKind::CrossEntropySparse.compute(logits, target)
}

/// Negative log-likelihood of log-probabilities (mean, ignore_index -100).
pub fn nll_loss(log_probs: &Tensor, target: &Tensor) -> Result<Tensor> {
    LossKind::Nll.compute(log_probs, target)
}

/// Binary cross entropy of probabilities (mean).
pub fn bce_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    LossKind::Bce.compute(pred, target)
}

/// Binary cross entropy of logits (mean), numerically stable.
pub fn bce_with_logits_loss(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    LossKind::BceWithLogits.compute(logits, target)
}

/// Focal loss (mean over non-ignored targets).
pub fn focal_loss(logits: &Tensor, target: &Tensor, alpha: f64, gamma: f64) -> Result<Tensor> {
    let mut s = LossSpec::new(LossKind::Focal);
    s.opts.alpha = alpha;
    s.opts.gamma = gamma;
    s.compute(logits, target)
}

/// KL divergence of log-probabilities against probabilities, batchmean.
pub fn kl_div_loss(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    LossKind::KlDiv.compute(input, target)
}
