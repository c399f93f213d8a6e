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
mod table;

pub(crate) use table::loss_table;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    #[default]
    Mean,
    Sum,
    None,
    BatchMean,
}

impl Reduction {
    /// The reduction `name` for the loss `kind`: the one check of the option
    /// (`batchmean` is kl_div's alone).
    pub fn for_loss(kind: LossKind, name: &str) -> Result<Self> {
        let r = match name {
            "mean" => Some(Reduction::Mean),
            "sum" => Some(Reduction::Sum),
            "none" => Some(Reduction::None),
            "batchmean" if kind == LossKind::KlDiv => Some(Reduction::BatchMean),
            _ => None,
        };
        r.ok_or_else(|| {
            let also = if kind == LossKind::KlDiv {
                "'mean', 'sum', 'none' or 'batchmean'"
            } else {
                "'mean', 'sum' or 'none'"
            };
            Error::Value(format!(
                "{}: reduction must be {also}, got '{name}'",
                kind.fn_name()
            ))
        })
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

impl LossKind {
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

    /// The canonical name: the function's without `_loss`.
    pub fn name(self) -> &'static str {
        let f = self.fn_name();
        f.strip_suffix("_loss").unwrap_or(f)
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
        Self::ALL.iter().copied().find(|k| k.name() == n)
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

/// Every loss option; each kind reads the ones its table row names (the
/// others keep `Default`'s values, never read).
#[derive(Clone, Debug, Default)]
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
    /// The loss with its defaults from the table (torch's; kl_div:
    /// batchmean, as floDl).
    pub fn new(kind: LossKind) -> Self {
        let mut s = LossSpec {
            kind,
            opts: LossOptions::default(),
        };
        s.set_defaults();
        s
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
        Reduction::for_loss(self.kind, o.reduction.name())?;
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
        let (mut v, r): (Vec<_>, Vec<_>) = self
            .options()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .partition(|(k, _)| *k != "reduction");
        v.extend(r);
        v
    }
}

/// An option's value, as the table's types hold it.
#[derive(Clone, Debug)]
pub enum OptValue {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(&'static str),
    Tensor(Option<Weight>),
}

impl fmt::Display for OptValue {
    /// Python's spelling (reprs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptValue::Float(v) => write!(f, "{v}"),
            OptValue::Int(v) => write!(f, "{v}"),
            OptValue::Bool(v) => f.write_str(if *v { "True" } else { "False" }),
            OptValue::Str(v) => write!(f, "'{v}'"),
            OptValue::Tensor(Some(w)) => write!(f, "<{w:?}>"),
            OptValue::Tensor(None) => f.write_str("None"),
        }
    }
}

/// An option field as an [`OptValue`].
trait ToOptValue {
    fn to_opt_value(&self) -> OptValue;
}

impl ToOptValue for f64 {
    fn to_opt_value(&self) -> OptValue {
        OptValue::Float(*self)
    }
}

impl ToOptValue for i64 {
    fn to_opt_value(&self) -> OptValue {
        OptValue::Int(*self)
    }
}

impl ToOptValue for bool {
    fn to_opt_value(&self) -> OptValue {
        OptValue::Bool(*self)
    }
}

impl ToOptValue for Reduction {
    fn to_opt_value(&self) -> OptValue {
        OptValue::Str(self.name())
    }
}

impl ToOptValue for Option<Weight> {
    fn to_opt_value(&self) -> OptValue {
        OptValue::Tensor(self.clone())
    }
}

/// A table default as its field's type (a reduction is written by name).
trait FromDefault<S> {
    fn from_default(s: S) -> Self;
}

impl<T> FromDefault<T> for T {
    fn from_default(s: T) -> T {
        s
    }
}

impl FromDefault<&'static str> for Reduction {
    /// The table's names are valid (a test builds every default); `Mean`
    /// stands for none.
    fn from_default(s: &'static str) -> Self {
        [
            Reduction::Mean,
            Reduction::Sum,
            Reduction::None,
            Reduction::BatchMean,
        ]
        .into_iter()
        .find(|r| r.name() == s)
        .unwrap_or(Reduction::Mean)
    }
}

/// `LossKind` and everything per kind that the table says.
macro_rules! kinds {
    ($($kind:ident $func:ident $class:ident [$($input:ident),*]
       [$(($opt:ident : $ty:ident = $($d:tt)+)),*] $doc:literal;)*) => {
        /// Every built-in loss.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum LossKind {
            $($kind),*
        }

        impl LossKind {
            pub const ALL: &'static [LossKind] = &[$(LossKind::$kind),*];

            /// The function's name (also used in messages).
            pub fn fn_name(self) -> &'static str {
                match self {
                    $(LossKind::$kind => stringify!($func)),*
                }
            }

            /// The class's name.
            pub fn class_name(self) -> &'static str {
                match self {
                    $(LossKind::$kind => stringify!($class)),*
                }
            }

            /// The names of the tensors the loss takes, in order.
            pub fn inputs(self) -> &'static [&'static str] {
                match self {
                    $(LossKind::$kind => &[$(stringify!($input)),*]),*
                }
            }

            /// The loss's documentation.
            pub fn doc(self) -> &'static str {
                match self {
                    $(LossKind::$kind => $doc),*
                }
            }
        }

        impl LossSpec {
            fn set_defaults(&mut self) {
                match self.kind {
                    $(LossKind::$kind => {
                        $(self.opts.$opt = FromDefault::from_default($($d)+);)*
                    })*
                }
            }

            /// The kind's options, in the signature's order, with their values.
            pub fn options(&self) -> Vec<(&'static str, OptValue)> {
                match self.kind {
                    $(LossKind::$kind => vec![
                        $((stringify!($opt), self.opts.$opt.to_opt_value())),*
                    ]),*
                }
            }
        }
    };
}

loss_table!(kinds);

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
        for &k in LossKind::ALL {
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
        let sum = Reduction::for_loss(LossKind::Mse, "sum").expect("sum");
        assert_eq!(sum, Reduction::Sum);
        let e = Reduction::for_loss(LossKind::Mse, "avg").expect_err("avg");
        assert!(e.to_string().contains("mse_loss: reduction must be"), "{e}");
        assert!(Reduction::for_loss(LossKind::Mse, "batchmean").is_err());
        assert!(Reduction::for_loss(LossKind::KlDiv, "batchmean").is_ok());
        let mut s = LossSpec::new(LossKind::Mse);
        s.opts.reduction = Reduction::BatchMean;
        assert!(s.validate().is_err());
        assert_eq!(
            LossSpec::new(LossKind::KlDiv).opts.reduction,
            Reduction::BatchMean
        );
    }

    #[test]
    fn every_table_default_is_valid() {
        for &k in LossKind::ALL {
            let s = LossSpec::new(k);
            s.validate()
                .unwrap_or_else(|e| panic!("{}: {e}", k.fn_name()));
            let r = s.options();
            assert!(r.iter().any(|(n, _)| *n == "reduction"), "{k:?}");
        }
        assert_eq!(
            LossSpec::new(LossKind::TripletMargin).opts.eps,
            1e-6,
            "per-kind defaults"
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
