//! Classification metrics: accuracy, top-k accuracy, binary accuracy,
//! precision / recall / F1 and the confusion matrix, as scikit-learn computes
//! them with `zero_division=0`.

use tch::{Kind, Tensor};

use super::{host, is_label_kind, is_real_kind, labels, require_samples, without_class_dim};
use crate::tensor::{is_float, kind_of, kind_str, shape_str};
use crate::{Error, Result};

/// How per-class scores become one number (scikit-learn's `average`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Average {
    /// Unweighted mean over the classes that count.
    Macro,
    /// Global TP / FP / FN counts, then one score.
    Micro,
    /// Mean weighted by each class's support (its number of true samples).
    Weighted,
}

impl Average {
    pub const NAMES: [&'static str; 3] = ["macro", "micro", "weighted"];

    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "macro" => Ok(Average::Macro),
            "micro" => Ok(Average::Micro),
            "weighted" => Ok(Average::Weighted),
            _ => Err(Error::Value(format!(
                "unknown average '{name}'; valid averages are {:?}",
                Self::NAMES
            ))),
        }
    }
}

#[derive(Clone, Copy)]
enum Score {
    Precision,
    Recall,
    F1,
}

/// Predictions and targets as flat int64 label vectors of equal length.
///
/// Predictions are either labels of the targets' shape, or logits
/// `[N, C, ...]` (classes on dim 1, targets `[N, ...]`) reduced by argmax.
fn class_pair(pred: &Tensor, targets: &Tensor, f: &str) -> Result<(Tensor, Tensor)> {
    let (ps, ts) = (pred.size(), targets.size());
    let is_logits = !ts.is_empty() && ps.len() == ts.len() + 1 && without_class_dim(pred) == ts;
    if !is_logits && ps != ts {
        return Err(Error::Shape(format!(
            "{f}: predictions shape {} and targets shape {} do not fit; predictions must be \
             labels of the targets' shape or logits [N, C, ...] with classes on dim 1",
            shape_str(pred),
            shape_str(targets)
        )));
    }
    require_samples(targets, &format!("{f}: targets"))?;
    let t = labels(targets, &format!("{f}: targets"))?;
    let p = if is_logits {
        let pk = kind_of(pred, &format!("{f}: logits"))?;
        if !is_real_kind(pk) {
            return Err(Error::DType(format!(
                "{f}: logits must be real numbers, got {}",
                kind_str(pk)
            )));
        }
        if ps[1] == 0 {
            return Err(Error::Shape(format!(
                "{f}: logits of shape {} have no classes",
                shape_str(pred)
            )));
        }
        pred.f_argmax(1, false)?.f_reshape([-1])?
    } else {
        labels(
            pred,
            &format!("{f}: predictions of the targets' shape (pass logits [N, C] for an argmax)"),
        )?
    };
    Ok((p, t))
}

/// The number of classes: `num_classes`, or the largest label + 1. Reads the
/// label range back once and refuses negative or out-of-range labels.
fn class_count(p: &Tensor, t: &Tensor, num_classes: Option<i64>, f: &str) -> Result<i64> {
    if let Some(c) = num_classes {
        if c < 1 {
            return Err(Error::Value(format!(
                "{f}: num_classes must be at least 1, got {c}"
            )));
        }
    }
    let r = host(&Tensor::f_stack(
        &[p.f_min()?, t.f_min()?, p.f_max()?, t.f_max()?],
        0,
    )?)?;
    for (i, what) in [(0, "predictions"), (1, "targets")] {
        if r[i] < 0.0 {
            return Err(Error::Value(format!(
                "{f}: {what} hold the negative label {}; labels must be class indices 0..C-1",
                r[i]
            )));
        }
    }
    let max = r[2].max(r[3]) as i64;
    match num_classes {
        Some(c) if max >= c => {
            let what = if r[2] >= r[3] {
                "predictions"
            } else {
                "targets"
            };
            Err(Error::Value(format!(
                "{f}: {what} hold class {max} but num_classes={c}"
            )))
        }
        Some(c) => Ok(c),
        None => Ok(max + 1),
    }
}

/// `[C, C]` counts, rows = true class, columns = predicted class.
fn confusion(p: &Tensor, t: &Tensor, c: i64) -> Result<Tensor> {
    let flat = t.f_mul_scalar(c)?.f_add(p)?;
    Ok(flat.f_bincount::<Tensor>(None, c * c)?.f_reshape([c, c])?)
}

/// num / den where den > 0, else 0 (scikit-learn's `zero_division=0`).
fn divide(num: &Tensor, den: &Tensor) -> Result<Tensor> {
    let nonzero = den.f_ne(0)?;
    let safe = den.f_where_scalarother(&nonzero, 1.0)?;
    Ok(num.f_div(&safe)?.f_where_scalarother(&nonzero, 0.0)?)
}

fn sum(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_sum(Kind::Double)?)
}

fn prf(
    pred: &Tensor,
    targets: &Tensor,
    average: Average,
    num_classes: Option<i64>,
    score: Score,
    f: &str,
) -> Result<f64> {
    let (p, t) = class_pair(pred, targets, f)?;
    let c = class_count(&p, &t, num_classes, f)?;
    let cm = confusion(&p, &t, c)?.f_to_kind(Kind::Double)?;
    let mut tp = cm.f_diagonal(0, 0, 1)?;
    let mut true_sum = cm.f_sum_dim_intlist([1i64].as_slice(), false, Kind::Double)?;
    let mut pred_sum = cm.f_sum_dim_intlist([0i64].as_slice(), false, Kind::Double)?;
    // The classes that count: scikit-learn's `labels`, i.e. range(num_classes)
    // when given, else the labels present in targets or predictions.
    let counted = match num_classes {
        Some(_) => tp.f_ones_like()?,
        None => true_sum
            .f_add(&pred_sum)?
            .f_gt(0)?
            .f_to_kind(Kind::Double)?,
    };
    if average == Average::Micro {
        tp = sum(&tp.f_mul(&counted)?)?;
        true_sum = sum(&true_sum.f_mul(&counted)?)?;
        pred_sum = sum(&pred_sum.f_mul(&counted)?)?;
    }
    let per_class = match score {
        Score::Precision => divide(&tp, &pred_sum)?,
        Score::Recall => divide(&tp, &true_sum)?,
        Score::F1 => divide(&tp.f_mul_scalar(2.0)?, &true_sum.f_add(&pred_sum)?)?,
    };
    let macro_avg =
        || -> Result<Tensor> { Ok(sum(&per_class.f_mul(&counted)?)?.f_div(&sum(&counted)?)?) };
    let value = match average {
        Average::Micro => per_class,
        Average::Macro => macro_avg()?,
        Average::Weighted => {
            let w = true_sum.f_mul(&counted)?;
            let total = sum(&w)?;
            // All-zero support: scikit-learn falls back to the plain mean.
            let weighted = sum(&per_class.f_mul(&w)?)?.f_div(&total)?;
            weighted.f_where_self(&total.f_gt(0)?, &macro_avg()?)?
        }
    };
    Ok(host(&value.f_reshape([1])?)?[0])
}

/// Precision, tp / (tp + fp) per class, averaged as `average` says.
pub fn precision(
    pred: &Tensor,
    targets: &Tensor,
    average: Average,
    num_classes: Option<i64>,
) -> Result<f64> {
    prf(
        pred,
        targets,
        average,
        num_classes,
        Score::Precision,
        "precision",
    )
}

/// Recall, tp / (tp + fn) per class, averaged as `average` says.
pub fn recall(
    pred: &Tensor,
    targets: &Tensor,
    average: Average,
    num_classes: Option<i64>,
) -> Result<f64> {
    prf(pred, targets, average, num_classes, Score::Recall, "recall")
}

/// F1, 2tp / (2tp + fp + fn) per class, averaged as `average` says.
pub fn f1(
    pred: &Tensor,
    targets: &Tensor,
    average: Average,
    num_classes: Option<i64>,
) -> Result<f64> {
    prf(pred, targets, average, num_classes, Score::F1, "f1")
}

/// `[C, C]` int64 counts on the inputs' device; rows = true class, columns =
/// predicted. C is `num_classes`, else the largest label + 1 (so row i is
/// always class i, including classes absent from both inputs).
pub fn confusion_matrix(
    pred: &Tensor,
    targets: &Tensor,
    num_classes: Option<i64>,
) -> Result<Tensor> {
    let f = "confusion_matrix";
    let (p, t) = class_pair(pred, targets, f)?;
    let c = class_count(&p, &t, num_classes, f)?;
    confusion(&p, &t, c)
}

/// Fraction of correct predictions. Logits `[N, C, ...]` are reduced by
/// argmax over dim 1; integer labels are compared directly; one-hot or
/// probability targets of the logits' shape `[N, C >= 2, ...]` are reduced by
/// argmax over dim 1 too (torchmetrics' class accuracy); other floating
/// predictions of the targets' shape (or `[N, 1]`) are binary probabilities
/// thresholded at 0.5, as in Kaun.
pub fn accuracy(pred: &Tensor, targets: &Tensor) -> Result<f64> {
    let pk = kind_of(pred, "accuracy: predictions")?;
    if is_float(pk) {
        let (ps, ts) = (pred.size(), targets.size());
        let binary = "accuracy (floating predictions of the targets' shape are binary \
                      probabilities thresholded at 0.5)";
        if ps == ts && ps.len() >= 2 && ps[1] >= 2 {
            // [N, C, ...] scores against one-hot or probability targets:
            // class accuracy via argmax of both, as torchmetrics' multiclass
            // accuracy; element-wise multilabel accuracy is binary_accuracy.
            let t = targets.f_argmax(1, false)?;
            return accuracy(pred, &t);
        }
        if ps == ts {
            return binary_impl(pred, targets, 0.5, binary);
        }
        if ps.len() == ts.len() + 1 && ps.len() >= 2 && ps[1] == 1 && without_class_dim(pred) == ts
        {
            return binary_impl(&pred.f_squeeze_dim(1)?, targets, 0.5, binary);
        }
    }
    let (p, t) = class_pair(pred, targets, "accuracy")?;
    let hits = p.f_eq_tensor(&t)?.f_mean(Kind::Double)?;
    Ok(host(&hits.f_reshape([1])?)?[0])
}

/// Fraction of samples whose target is among the `k` highest logits.
pub fn top_k_accuracy(logits: &Tensor, targets: &Tensor, k: i64) -> Result<f64> {
    let f = "top_k_accuracy";
    let (ls, ts) = (logits.size(), targets.size());
    if ls.len() < 2 || without_class_dim(logits) != ts {
        return Err(Error::Shape(format!(
            "{f}: logits shape {} and targets shape {} do not fit; expected logits \
             [N, C, ...] and targets [N, ...]",
            shape_str(logits),
            shape_str(targets)
        )));
    }
    require_samples(targets, &format!("{f}: targets"))?;
    let lk = kind_of(logits, &format!("{f}: logits"))?;
    if !is_real_kind(lk) {
        return Err(Error::DType(format!(
            "{f}: logits must be real numbers, got {}",
            kind_str(lk)
        )));
    }
    let t = labels(targets, &format!("{f}: targets"))?.f_reshape(ts.as_slice())?;
    let c = ls[1];
    if k < 1 || k > c {
        return Err(Error::Value(format!(
            "{f}: k must be between 1 and the number of classes ({c}), got {k}"
        )));
    }
    let (_, top) = logits.f_topk(k, 1, true, false)?;
    let hits = top
        .f_eq_tensor(&t.f_unsqueeze(1)?)?
        .f_any_dim(1, false)?
        .f_mean(Kind::Double)?;
    let r = host(&Tensor::f_stack(
        &[
            hits,
            t.f_min()?.f_to_kind(Kind::Double)?,
            t.f_max()?.f_to_kind(Kind::Double)?,
        ],
        0,
    )?)?;
    if r[1] < 0.0 || r[2] >= c as f64 {
        let bad = if r[1] < 0.0 { r[1] } else { r[2] };
        return Err(Error::Value(format!(
            "{f}: targets hold class {bad} but the logits have {c} classes"
        )));
    }
    Ok(r[0])
}

/// Fraction of samples where `pred > threshold` agrees with a 0/1 target.
pub fn binary_accuracy(pred: &Tensor, targets: &Tensor, threshold: f64) -> Result<f64> {
    binary_impl(pred, targets, threshold, "binary_accuracy")
}

fn binary_impl(pred: &Tensor, targets: &Tensor, threshold: f64, f: &str) -> Result<f64> {
    if !threshold.is_finite() {
        return Err(Error::Value(format!(
            "{f}: threshold must be finite, got {threshold}"
        )));
    }
    if pred.size() != targets.size() {
        return Err(Error::Shape(format!(
            "{f}: predictions shape {} and targets shape {} differ",
            shape_str(pred),
            shape_str(targets)
        )));
    }
    require_samples(targets, &format!("{f}: targets"))?;
    for (t, what) in [(pred, "predictions"), (targets, "targets")] {
        let k = kind_of(t, &format!("{f}: {what}"))?;
        if !is_real_kind(k) && !is_label_kind(k) {
            return Err(Error::DType(format!(
                "{f}: {what} must be real numbers or bool, got {}",
                kind_str(k)
            )));
        }
    }
    let p = match pred.f_kind()? {
        Kind::Bool => pred.f_to_kind(Kind::Float)?,
        _ => pred.shallow_clone(),
    };
    let t = targets.f_to_kind(Kind::Double)?;
    let positive = p.f_gt(threshold)?;
    let hits = positive.f_eq_tensor(&t.f_ne(0)?)?.f_mean(Kind::Double)?;
    let not_binary = t
        .f_ne(0)?
        .f_logical_and(&t.f_ne(1)?)?
        .f_any()?
        .f_to_kind(Kind::Double)?;
    let r = host(&Tensor::f_stack(&[hits, not_binary], 0)?)?;
    if r[1] != 0.0 {
        return Err(Error::Value(format!("{f}: targets must be 0 or 1")));
    }
    Ok(r[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn accuracy_of_logits_and_labels() {
        let logits = Tensor::from_slice(&[0.1f32, 0.9, 0.8, 0.2, 0.3, 0.7]).reshape([3, 2]);
        let t = ints(&[1, 0, 0]);
        assert!((accuracy(&logits, &t).expect("acc") - 2.0 / 3.0).abs() < 1e-12);
        let p = ints(&[1, 2, 3, 4]);
        assert_eq!(accuracy(&p, &ints(&[1, 2, 0, 4])).expect("acc"), 0.75);
    }

    #[test]
    fn prf_closed_form() {
        // true 0 0 1 1 2, predicted 0 1 1 1 0:
        // class 0: tp 1, pred 2, true 2; class 1: tp 2, pred 3, true 2; class 2: 0, 0, 1.
        let (p, t) = (ints(&[0, 1, 1, 1, 0]), ints(&[0, 0, 1, 1, 2]));
        let pm = precision(&p, &t, Average::Macro, None).expect("p");
        assert!((pm - (0.5 + 2.0 / 3.0 + 0.0) / 3.0).abs() < 1e-12);
        let rw = recall(&p, &t, Average::Weighted, None).expect("r");
        assert!((rw - (2.0 * 0.5 + 2.0 * 1.0 + 0.0) / 5.0).abs() < 1e-12);
        let fm = f1(&p, &t, Average::Micro, None).expect("f");
        assert!((fm - 0.6).abs() < 1e-12);
        // A fourth class that nobody uses lowers the macro mean only when
        // num_classes makes it count.
        let p4 = precision(&p, &t, Average::Macro, Some(4)).expect("p4");
        assert!((p4 - (0.5 + 2.0 / 3.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn confusion_rows_are_true_classes() {
        let cm = confusion_matrix(&ints(&[1, 1, 0]), &ints(&[0, 1, 0]), Some(3)).expect("cm");
        let v: Vec<i64> = Vec::try_from(&cm.reshape([-1])).expect("vec");
        assert_eq!(v, vec![1, 1, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Average::from_name("samples").expect_err("err").to_string();
        assert!(e.contains("macro") && e.contains("weighted"), "{e}");
        let logits = Tensor::zeros([4, 3], (Kind::Float, tch::Device::Cpu));
        let e = top_k_accuracy(&logits, &ints(&[0, 1, 2, 0]), 4).expect_err("err");
        assert!(matches!(e, Error::Value(_)), "{e}");
        let e = accuracy(&logits, &ints(&[0, 1])).expect_err("err");
        assert!(matches!(e, Error::Shape(ref m) if m.contains("[4, 3]") && m.contains("[2]")));
        let ft = Tensor::zeros([4], (Kind::Float, tch::Device::Cpu));
        let e = precision(&logits, &ft, Average::Macro, None).expect_err("err");
        assert!(matches!(e, Error::DType(_)), "{e}");
    }

    #[test]
    fn binary_threshold_is_strict() {
        let p = Tensor::from_slice(&[0.5f64, 0.51, 0.2]);
        let t = Tensor::from_slice(&[0.0f64, 1.0, 0.0]);
        assert_eq!(binary_accuracy(&p, &t, 0.5).expect("b"), 1.0);
    }
}
