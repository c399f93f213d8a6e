//! Losses. Each checks its inputs (naming both shapes or dtypes when they
//! disagree), then calls libtorch's own kernel where one exists, so values and
//! gradients are torch's. A [`LossSpec`] (kind + options) is what a Trainer
//! holds to keep the whole step in Rust; [`LossKind::from_name`] is the
//! registry of losses usable by name.
//!
//! One file per family: `regression`, `classification`, `sequence` (CTC),
//! `embedding` (margin and distance losses).

mod classification;
mod embedding;
mod regression;
mod sequence;

use std::fmt;
use std::sync::Arc;

use tch::{Kind, Tensor};

use crate::tensor::{is_float, kind_of, kind_str, require_float, shape_str, SharedTensor};
use crate::{Error, Result};

pub use classification::{
    bce_loss, bce_with_logits_loss, cross_entropy_loss, cross_entropy_sparse, focal_loss,
    kl_div_loss, nll_loss,
};
pub use embedding::{
    cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss, triplet_margin_loss,
};
pub use regression::{huber_loss, l1_loss, mse_loss, poisson_nll_loss, smooth_l1_loss};
pub use sequence::ctc_loss;

/// How per-element losses are reduced. `BatchMean` (sum / batch size) is
/// kl_div's own and its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Mean,
    Sum,
    None,
    BatchMean,
}

impl Reduction {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "none" => Ok(Reduction::None),
            "batchmean" => Ok(Reduction::BatchMean),
            _ => Err(Error::Value(format!(
                "reduction must be 'mean', 'sum' or 'none' ('batchmean' for kl_div_loss), got '{name}'"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
            Reduction::None => "none",
            Reduction::BatchMean => "batchmean",
        }
    }

    /// ATen's enum; batchmean is a sum that kl_div divides afterwards.
    fn tch(self) -> tch::Reduction {
        match self {
            Reduction::Mean => tch::Reduction::Mean,
            Reduction::Sum | Reduction::BatchMean => tch::Reduction::Sum,
            Reduction::None => tch::Reduction::None,
        }
    }
}

/// Every built-in loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    Mse,
    L1,
    SmoothL1,
    Huber,
    PoissonNll,
    CrossEntropy,
    CrossEntropySparse,
    Nll,
    Bce,
    BceWithLogits,
    Focal,
    KlDiv,
    Ctc,
    TripletMargin,
    CosineEmbedding,
    HingeEmbedding,
    MarginRanking,
}

impl LossKind {
    pub const ALL: [LossKind; 17] = [
        LossKind::Mse,
        LossKind::L1,
        LossKind::SmoothL1,
        LossKind::Huber,
        LossKind::PoissonNll,
        LossKind::CrossEntropy,
        LossKind::CrossEntropySparse,
        LossKind::Nll,
        LossKind::Bce,
        LossKind::BceWithLogits,
        LossKind::Focal,
        LossKind::KlDiv,
        LossKind::Ctc,
        LossKind::TripletMargin,
        LossKind::CosineEmbedding,
        LossKind::HingeEmbedding,
        LossKind::MarginRanking,
    ];

    /// The names `Trainer(loss=...)` accepts: every (pred, target) loss.
    /// Each also answers to `<name>_loss`; `mae` and `ce` are aliases.
    pub const NAMES: [&'static str; 14] = [
        "mse",
        "l1",
        "mae",
        "smooth_l1",
        "huber",
        "poisson_nll",
        "cross_entropy",
        "cross_entropy_sparse",
        "nll",
        "bce",
        "bce_with_logits",
        "focal",
        "kl_div",
        "hinge_embedding",
    ];

    /// The canonical name (the function is `<name>_loss`, except
    /// `cross_entropy_sparse`).
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "mse",
            LossKind::L1 => "l1",
            LossKind::SmoothL1 => "smooth_l1",
            LossKind::Huber => "huber",
            LossKind::PoissonNll => "poisson_nll",
            LossKind::CrossEntropy => "cross_entropy",
            LossKind::CrossEntropySparse => "cross_entropy_sparse",
            LossKind::Nll => "nll",
            LossKind::Bce => "bce",
            LossKind::BceWithLogits => "bce_with_logits",
            LossKind::Focal => "focal",
            LossKind::KlDiv => "kl_div",
            LossKind::Ctc => "ctc",
            LossKind::TripletMargin => "triplet_margin",
            LossKind::CosineEmbedding => "cosine_embedding",
            LossKind::HingeEmbedding => "hinge_embedding",
            LossKind::MarginRanking => "margin_ranking",
        }
    }

    /// The function name used in messages.
    pub fn fn_name(self) -> String {
        match self {
            LossKind::CrossEntropySparse => "cross_entropy_sparse".into(),
            k => format!("{}_loss", k.name()),
        }
    }

    /// The names of the tensors the loss takes, in order.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            LossKind::Ctc => &["log_probs", "targets", "input_lengths", "target_lengths"],
            LossKind::TripletMargin => &["anchor", "positive", "negative"],
            LossKind::CosineEmbedding | LossKind::MarginRanking => &["input1", "input2", "target"],
            LossKind::CrossEntropy | LossKind::CrossEntropySparse | LossKind::Focal => {
                &["logits", "target"]
            }
            LossKind::BceWithLogits => &["logits", "target"],
            _ => &["pred", "target"],
        }
    }

    /// Any loss by name (canonical, `<name>_loss`, or an alias), whatever
    /// its inputs.
    pub fn lookup(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        let n = n.strip_suffix("_loss").unwrap_or(&n);
        match n {
            "mae" => return Some(LossKind::L1),
            "ce" => return Some(LossKind::CrossEntropy),
            _ => {}
        }
        Self::ALL.into_iter().find(|k| k.name() == n)
    }

    /// A loss usable as `Trainer(loss=name)`: one taking (pred, target).
    /// Unknown names and losses of other inputs list the valid names.
    pub fn from_name(name: &str) -> Result<Self> {
        match Self::lookup(name) {
            Some(k) if k.inputs().len() == 2 => Ok(k),
            Some(k) => Err(Error::Value(format!(
                "loss '{name}' takes ({}), not (pred, target), so it cannot be given by name; \
                 built-in (pred, target) losses are {:?}",
                k.inputs().join(", "),
                Self::NAMES
            ))),
            None => Err(Error::Value(format!(
                "unknown loss '{name}'; built-in losses are {:?}",
                Self::NAMES
            ))),
        }
    }

    /// The loss with its default options.
    pub fn compute(self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        LossSpec::new(self).compute(pred, target)
    }
}

/// A class-weight style tensor option, shareable across threads.
#[derive(Clone)]
pub struct Weight(Arc<SharedTensor>);

impl Weight {
    pub fn new(t: Tensor) -> Self {
        Weight(Arc::new(SharedTensor::new(t)))
    }
    pub fn tensor(&self) -> Tensor {
        self.0.handle()
    }
}

impl fmt::Debug for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor of shape {}", shape_str(&self.0.handle()))
    }
}

/// Every loss option; each kind reads the ones it documents.
#[derive(Clone, Debug)]
pub struct LossOptions {
    pub reduction: Reduction,
    /// smooth_l1 (> 0).
    pub beta: f64,
    /// huber (> 0).
    pub delta: f64,
    /// poisson_nll: the input is a log-rate; `full` adds Stirling's term.
    pub log_input: bool,
    pub full: bool,
    /// poisson_nll (1e-8) and triplet_margin (1e-6).
    pub eps: f64,
    /// Class weights [C] (cross_entropy, nll) or element weights (bce*).
    pub weight: Option<Weight>,
    /// bce_with_logits.
    pub pos_weight: Option<Weight>,
    /// cross_entropy, nll, focal: targets equal to it are skipped.
    pub ignore_index: i64,
    /// cross_entropy, in [0, 1].
    pub label_smoothing: f64,
    /// focal.
    pub alpha: f64,
    pub gamma: f64,
    /// kl_div: the target is given as log-probabilities.
    pub log_target: bool,
    /// ctc.
    pub blank: i64,
    pub zero_infinity: bool,
    /// triplet_margin (1), cosine_embedding (0), hinge_embedding (1),
    /// margin_ranking (0).
    pub margin: f64,
    /// triplet_margin: the norm degree.
    pub p: f64,
    pub swap: bool,
}

/// A loss and its options: what `Trainer` holds for a built-in loss.
#[derive(Clone, Debug)]
pub struct LossSpec {
    pub kind: LossKind,
    pub opts: LossOptions,
}

impl LossSpec {
    /// The loss with torch's defaults (kl_div: batchmean, as floDl).
    pub fn new(kind: LossKind) -> Self {
        let margin = match kind {
            LossKind::TripletMargin | LossKind::HingeEmbedding => 1.0,
            _ => 0.0,
        };
        LossSpec {
            kind,
            opts: LossOptions {
                reduction: if kind == LossKind::KlDiv {
                    Reduction::BatchMean
                } else {
                    Reduction::Mean
                },
                beta: 1.0,
                delta: 1.0,
                log_input: true,
                full: false,
                eps: if kind == LossKind::TripletMargin {
                    1e-6
                } else {
                    1e-8
                },
                weight: None,
                pos_weight: None,
                ignore_index: -100,
                label_smoothing: 0.0,
                alpha: 0.25,
                gamma: 2.0,
                log_target: false,
                blank: 0,
                zero_infinity: false,
                margin,
                p: 2.0,
                swap: false,
            },
        }
    }

    /// A (pred, target) loss by name with default options.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(Self::new(LossKind::from_name(name)?))
    }

    /// Checks the options, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let o = &self.opts;
        let f = self.kind.fn_name();
        let bad = |arg: &str, want: &str, got: f64| {
            Err(Error::Value(format!(
                "{f}: {arg} must be {want}, got {got}"
            )))
        };
        if o.reduction == Reduction::BatchMean && self.kind != LossKind::KlDiv {
            return Err(Error::Value(format!(
                "{f}: reduction 'batchmean' is only for kl_div_loss; use 'mean', 'sum' or 'none'"
            )));
        }
        match self.kind {
            LossKind::SmoothL1 if o.beta.is_nan() || o.beta <= 0.0 => bad("beta", "> 0", o.beta),
            LossKind::Huber if o.delta.is_nan() || o.delta <= 0.0 => bad("delta", "> 0", o.delta),
            LossKind::PoissonNll if o.eps.is_nan() || o.eps < 0.0 => bad("eps", ">= 0", o.eps),
            LossKind::CrossEntropy | LossKind::CrossEntropySparse
                if !(0.0..=1.0).contains(&o.label_smoothing) =>
            {
                bad("label_smoothing", "in [0, 1]", o.label_smoothing)
            }
            LossKind::Focal if !(o.alpha >= 0.0 && o.alpha.is_finite()) => {
                bad("alpha", "finite and >= 0", o.alpha)
            }
            LossKind::Focal if !(o.gamma >= 0.0 && o.gamma.is_finite()) => {
                bad("gamma", "finite and >= 0", o.gamma)
            }
            LossKind::TripletMargin if o.margin.is_nan() || o.margin <= 0.0 => {
                bad("margin", "> 0", o.margin)
            }
            LossKind::TripletMargin if o.p.is_nan() || o.p <= 0.0 => bad("p", "> 0", o.p),
            LossKind::TripletMargin if o.eps.is_nan() || o.eps < 0.0 => bad("eps", ">= 0", o.eps),
            LossKind::Ctc if o.blank < 0 => bad("blank", ">= 0", o.blank as f64),
            _ if o.margin.is_nan() => bad("margin", "a number", o.margin),
            _ => Ok(()),
        }
    }

    /// A (pred, target) loss.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        self.compute_args(&[pred, target])
    }

    /// The loss of `inputs`, given in the order of [`LossKind::inputs`].
    pub fn compute_args(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.validate()?;
        let names = self.kind.inputs();
        if inputs.len() != names.len() {
            return Err(Error::Value(format!(
                "{} takes {} tensors ({}), got {}",
                self.kind.fn_name(),
                names.len(),
                names.join(", "),
                inputs.len()
            )));
        }
        let o = &self.opts;
        let i = inputs;
        match self.kind {
            LossKind::Mse => regression::mse(i[0], i[1], o),
            LossKind::L1 => regression::l1(i[0], i[1], o),
            LossKind::SmoothL1 => regression::smooth_l1(i[0], i[1], o),
            LossKind::Huber => regression::huber(i[0], i[1], o),
            LossKind::PoissonNll => regression::poisson_nll(i[0], i[1], o),
            LossKind::CrossEntropy => classification::cross_entropy(i[0], i[1], o, false),
            LossKind::CrossEntropySparse => classification::cross_entropy(i[0], i[1], o, true),
            LossKind::Nll => classification::nll(i[0], i[1], o),
            LossKind::Bce => classification::bce(i[0], i[1], o),
            LossKind::BceWithLogits => classification::bce_with_logits(i[0], i[1], o),
            LossKind::Focal => classification::focal(i[0], i[1], o),
            LossKind::KlDiv => classification::kl_div(i[0], i[1], o),
            LossKind::Ctc => sequence::ctc(i[0], i[1], i[2], i[3], o),
            LossKind::TripletMargin => embedding::triplet_margin(i[0], i[1], i[2], o),
            LossKind::CosineEmbedding => embedding::cosine_embedding(i[0], i[1], i[2], o),
            LossKind::HingeEmbedding => embedding::hinge_embedding(i[0], i[1], o),
            LossKind::MarginRanking => embedding::margin_ranking(i[0], i[1], i[2], o),
        }
    }

    /// The options that matter for this kind, as `name=value` pairs (for
    /// reprs), the reduction last.
    pub fn option_pairs(&self) -> Vec<(&'static str, String)> {
        let o = &self.opts;
        let w = |w: &Option<Weight>| match w {
            Some(w) => format!("<{w:?}>"),
            None => "None".into(),
        };
        let b = |b: bool| if b { "True" } else { "False" }.to_string();
        let mut v: Vec<(&'static str, String)> = match self.kind {
            LossKind::SmoothL1 => vec![("beta", o.beta.to_string())],
            LossKind::Huber => vec![("delta", o.delta.to_string())],
            LossKind::PoissonNll => vec![
                ("log_input", b(o.log_input)),
                ("full", b(o.full)),
                ("eps", o.eps.to_string()),
            ],
            LossKind::CrossEntropy | LossKind::CrossEntropySparse => vec![
                ("weight", w(&o.weight)),
                ("ignore_index", o.ignore_index.to_string()),
                ("label_smoothing", o.label_smoothing.to_string()),
            ],
            LossKind::Nll => vec![
                ("weight", w(&o.weight)),
                ("ignore_index", o.ignore_index.to_string()),
            ],
            LossKind::Bce => vec![("weight", w(&o.weight))],
            LossKind::BceWithLogits => {
                vec![("weight", w(&o.weight)), ("pos_weight", w(&o.pos_weight))]
            }
            LossKind::Focal => vec![
                ("alpha", o.alpha.to_string()),
                ("gamma", o.gamma.to_string()),
                ("ignore_index", o.ignore_index.to_string()),
            ],
            LossKind::KlDiv => vec![("log_target", b(o.log_target))],
            LossKind::Ctc => vec![
                ("blank", o.blank.to_string()),
                ("zero_infinity", b(o.zero_infinity)),
            ],
            LossKind::TripletMargin => vec![
                ("margin", o.margin.to_string()),
                ("p", o.p.to_string()),
                ("eps", o.eps.to_string()),
                ("swap", b(o.swap)),
            ],
            LossKind::CosineEmbedding | LossKind::HingeEmbedding | LossKind::MarginRanking => {
                vec![("margin", o.margin.to_string())]
            }
            LossKind::Mse | LossKind::L1 => vec![],
        };
        v.push(("reduction", format!("'{}'", o.reduction.name())));
        v
    }
}

// ---- shared checks -------------------------------------------------------

/// Whether autocast is on for `t`'s device type in this thread. Under
/// autocast, mixed float dtypes are torch's normal case: the dispatcher's
/// autocast kernels (reached through the same ATen call F makes) cast them by
/// torch's policy, so the dtype check stands aside.
fn autocast_on(t: &Tensor) -> bool {
    let dev = match t.device() {
        tch::Device::Cpu => crate::amp::AutocastDevice::Cpu,
        tch::Device::Cuda(_) => crate::amp::AutocastDevice::Cuda,
        _ => return false,
    };
    crate::amp::is_autocast_enabled(dev).unwrap_or(false)
}

/// Two float tensors of one dtype and one shape (no silent broadcasting).
fn same_float(f: &str, a_name: &str, a: &Tensor, b_name: &str, b: &Tensor) -> Result<Kind> {
    let ak = require_float(a, &format!("{f} {a_name}"))?;
    let bk = require_float(b, &format!("{f} {b_name}"))?;
    if ak != bk && !autocast_on(a) {
        return Err(Error::DType(format!(
            "{f}: {a_name} is {} but {b_name} is {}",
            kind_str(ak),
            kind_str(bk)
        )));
    }
    same_shape(f, a_name, a, b_name, b)?;
    Ok(ak)
}

fn same_shape(f: &str, a_name: &str, a: &Tensor, b_name: &str, b: &Tensor) -> Result<()> {
    if a.size() != b.size() {
        return Err(Error::Shape(format!(
            "{f}: {a_name} shape {} and {b_name} shape {} differ",
            shape_str(a),
            shape_str(b)
        )));
    }
    Ok(())
}

fn is_int(k: Kind) -> bool {
    matches!(
        k,
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
    )
}

/// A ±1-style target: integers, or floats of the input's dtype.
fn sign_target(f: &str, input_kind: Kind, target: &Tensor) -> Result<()> {
    let tk = kind_of(target, &format!("{f} target"))?;
    if !(is_int(tk) || tk == input_kind || (is_float(tk) && autocast_on(target))) {
        return Err(Error::DType(format!(
            "{f}: target must be integer or {} like the input, got {}",
            kind_str(input_kind),
            kind_str(tk)
        )));
    }
    Ok(())
}

/// An option tensor (class weights...) of the input's dtype.
fn weight_of(f: &str, arg: &str, w: &Option<Weight>, kind: Kind) -> Result<Option<Tensor>> {
    let Some(w) = w else { return Ok(None) };
    let t = w.tensor();
    let wk = kind_of(&t, &format!("{f} {arg}"))?;
    if wk != kind && !autocast_on(&t) {
        return Err(Error::DType(format!(
            "{f}: {arg} is {} but the input is {}",
            kind_str(wk),
            kind_str(kind)
        )));
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn names_resolve_and_unknown_lists_choices() {
        assert_eq!(LossKind::from_name("MSE").expect("mse"), LossKind::Mse);
        assert_eq!(
            LossKind::from_name("cross_entropy_loss").expect("ce"),
            LossKind::CrossEntropy
        );
        assert_eq!(LossKind::from_name("mae").expect("mae"), LossKind::L1);
        let err = LossKind::from_name("hinge2")
            .expect_err("error")
            .to_string();
        assert!(
            err.contains("'hinge2'") && err.contains("cross_entropy") && err.contains("focal"),
            "{err}"
        );
    }

    #[test]
    fn every_listed_name_resolves_to_a_two_input_loss() {
        for n in LossKind::NAMES {
            let k = LossKind::from_name(n).expect(n);
            assert_eq!(k.inputs().len(), 2, "{n}");
            let k2 = LossKind::from_name(&format!("{n}_loss")).expect(n);
            assert_eq!(k, k2);
        }
        for k in LossKind::ALL {
            assert_eq!(LossKind::lookup(k.name()), Some(k));
        }
    }

    #[test]
    fn multi_input_losses_are_not_trainer_names() {
        for n in [
            "ctc",
            "triplet_margin",
            "cosine_embedding",
            "margin_ranking",
        ] {
            let e = LossKind::from_name(n).expect_err(n).to_string();
            assert!(e.contains("not (pred, target)") && e.contains("mse"), "{e}");
        }
    }

    #[test]
    fn flodl_closed_forms() {
        let (p, q) = (t(&[1.0, 2.0, 3.0]), t(&[1.5, 2.5, 3.5]));
        let v = |r: Result<Tensor>| r.expect("loss").double_value(&[]);
        assert!((v(mse_loss(&p, &q)) - 0.25).abs() < 1e-7);
        assert!((v(l1_loss(&p, &q)) - 0.5).abs() < 1e-7);
        let (a, b) = (t(&[1.0, 5.0]), t(&[1.5, 2.0]));
        assert!((v(smooth_l1_loss(&a, &b, 1.0)) - 1.3125).abs() < 1e-7);
        let e = smooth_l1_loss(&a, &b, -1.0).expect_err("beta < 0");
        assert!(
            matches!(e, Error::Value(ref m) if m.contains("beta")),
            "{e}"
        );
        assert!(smooth_l1_loss(&a, &b, 0.0).is_err());
        // huber(delta) = delta * smooth_l1(beta = delta)
        assert!((v(huber_loss(&a, &b, 2.0)) - 2.0 * v(smooth_l1_loss(&a, &b, 2.0))).abs() < 1e-6);
    }

    #[test]
    fn shape_and_dtype_errors_name_both() {
        let e = mse_loss(&Tensor::zeros([3, 2], tch::kind::FLOAT_CPU), &t(&[1.0; 6]))
            .expect_err("shape");
        let m = e.to_string();
        assert!(
            matches!(e, Error::Shape(_)) && m.contains("[3, 2]") && m.contains("[6]"),
            "{m}"
        );
        let d = Tensor::from_slice(&[1.0f64, 2.0]);
        let e = l1_loss(&t(&[1.0, 2.0]), &d).expect_err("dtype");
        assert!(
            matches!(e, Error::DType(ref m) if m.contains("float32") && m.contains("float64")),
            "{e}"
        );
    }

    #[test]
    fn reduction_names() {
        assert_eq!(Reduction::parse("sum").expect("sum"), Reduction::Sum);
        assert!(Reduction::parse("avg").is_err());
        let mut s = LossSpec::new(LossKind::Mse);
        s.opts.reduction = Reduction::BatchMean;
        assert!(s.validate().is_err());
        assert_eq!(
            LossSpec::new(LossKind::KlDiv).opts.reduction,
            Reduction::BatchMean
        );
    }

    #[test]
    fn cross_entropy_uniform_logits_is_log_c() {
        let logits = Tensor::zeros([4, 5], tch::kind::FLOAT_CPU);
        let target = Tensor::from_slice(&[0i64, 1, 2, 3]);
        let v = cross_entropy_loss(&logits, &target)
            .expect("ce")
            .double_value(&[]);
        assert!((v - 5f64.ln()).abs() < 1e-6);
    }
}
