//! Losses over `crate::loss`: one function per loss, and the class forms
//! (`MSELoss()`, `CrossEntropyLoss(label_smoothing=0.1)`, ...), each a
//! subclass of `Loss`, which holds the core `LossSpec` (so a Trainer given
//! one keeps its step in Rust).

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tch::Tensor;

use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::{tensor_arg, to_py};
use crate::loss::{LossKind, LossSpec, Reduction, Weight};

type Opt<'a, 'py> = Option<&'a Bound<'py, PyAny>>;

fn spec(kind: LossKind, reduction: &str) -> PyResult<LossSpec> {
    let mut s = LossSpec::new(kind);
    s.opts.reduction = Reduction::parse(reduction)
        .map_err(|e| e.context(&kind.fn_name()))
        .py()?;
    Ok(s)
}

fn weight(kind: LossKind, arg: &str, w: Opt<'_, '_>) -> PyResult<Option<Weight>> {
    w.filter(|w| !w.is_none())
        .map(|w| {
            Ok(Weight::new(tensor_arg(
                w,
                &format!("{} {arg}", kind.fn_name()),
            )?))
        })
        .transpose()
}

/// A tensor argument; CTC's lengths may also be ints or lists of ints.
fn input(kind: LossKind, name: &str, ob: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let what = format!("{} {name}", kind.fn_name());
    match tensor_arg(ob, &what) {
        Ok(t) => Ok(t),
        Err(e) if name.ends_with("_lengths") => {
            if let Ok(v) = ob.extract::<Vec<i64>>() {
                return Tensor::f_from_slice(&v).map_err(|e| raise(Exc::Torch, e.to_string()));
            }
            if let Ok(v) = ob.extract::<i64>() {
                return Ok(Tensor::from(v));
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn run(py: Python<'_>, s: &LossSpec, args: &[&Bound<'_, PyAny>]) -> PyResult<PyObject> {
    let names = s.kind.inputs();
    if args.len() != names.len() {
        return Err(raise(
            Exc::InputType,
            format!(
                "{} takes {} tensors ({}), got {}",
                s.kind.fn_name(),
                names.len(),
                names.join(", "),
                args.len()
            ),
        ));
    }
    let ts = args
        .iter()
        .zip(names)
        .map(|(a, n)| input(s.kind, n, a))
        .collect::<PyResult<Vec<_>>>()?;
    let refs: Vec<&Tensor> = ts.iter().collect();
    to_py(py, &s.compute_args(&refs).py()?)
}

// ---- option sets shared by the functions and the classes ------------------

fn with_beta(kind: LossKind, v: f64, reduction: &str) -> PyResult<LossSpec> {
    let mut s = spec(kind, reduction)?;
    match kind {
        LossKind::SmoothL1 => s.opts.beta = v,
        LossKind::Huber => s.opts.delta = v,
        _ => s.opts.margin = v,
    }
    Ok(s)
}

fn poisson(log_input: bool, full: bool, eps: f64, reduction: &str) -> PyResult<LossSpec> {
    let mut s = spec(LossKind::PoissonNll, reduction)?;
    (s.opts.log_input, s.opts.full, s.opts.eps) = (log_input, full, eps);
    Ok(s)
}

fn classes(
    kind: LossKind,
    w: Opt<'_, '_>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> PyResult<LossSpec> {
    let mut s = spec(kind, reduction)?;
    s.opts.weight = weight(kind, "weight", w)?;
    s.opts.ignore_index = ignore_index;
    s.opts.label_smoothing = label_smoothing;
    Ok(s)
}

fn binary(kind: LossKind, w: Opt<'_, '_>, pw: Opt<'_, '_>, reduction: &str) -> PyResult<LossSpec> {
    let mut s = spec(kind, reduction)?;
    s.opts.weight = weight(kind, "weight", w)?;
    s.opts.pos_weight = weight(kind, "pos_weight", pw)?;
    Ok(s)
}

fn focal(alpha: f64, gamma: f64, ignore_index: i64, reduction: &str) -> PyResult<LossSpec> {
    let mut s = spec(LossKind::Focal, reduction)?;
    (s.opts.alpha, s.opts.gamma, s.opts.ignore_index) = (alpha, gamma, ignore_index);
    Ok(s)
}

fn kl(reduction: &str, log_target: bool) -> PyResult<LossSpec> {
    let mut s = spec(LossKind::KlDiv, reduction)?;
    s.opts.log_target = log_target;
    Ok(s)
}

fn ctc(blank: i64, reduction: &str, zero_infinity: bool) -> PyResult<LossSpec> {
    let mut s = spec(LossKind::Ctc, reduction)?;
    (s.opts.blank, s.opts.zero_infinity) = (blank, zero_infinity);
    Ok(s)
}

fn triplet(margin: f64, p: f64, eps: f64, swap: bool, reduction: &str) -> PyResult<LossSpec> {
    let mut s = spec(LossKind::TripletMargin, reduction)?;
    (s.opts.margin, s.opts.p, s.opts.eps, s.opts.swap) = (margin, p, eps, swap);
    Ok(s)
}

/// Options are checked when given, not at the first call.
fn checked(s: LossSpec) -> PyResult<LossSpec> {
    s.validate().py()?;
    Ok(s)
}

// ---- functions ------------------------------------------------------------

/// Mean squared error.
#[pyfunction]
#[pyo3(signature = (pred, target, reduction = "mean"))]
fn mse_loss(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    reduction: &str,
) -> PyResult<PyObject> {
    run(py, &spec(LossKind::Mse, reduction)?, &[pred, target])
}

/// Mean absolute error (alias ``mae``).
#[pyfunction]
#[pyo3(signature = (pred, target, reduction = "mean"))]
fn l1_loss(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    reduction: &str,
) -> PyResult<PyObject> {
    run(py, &spec(LossKind::L1, reduction)?, &[pred, target])
}

/// Smooth L1 loss.
///
/// 0.5·d²/beta where |d| < beta, else |d| − 0.5·beta. ``beta`` must be > 0 (floDl;
/// torch also accepts 0, which is ``l1_loss``).
#[pyfunction]
#[pyo3(signature = (pred, target, beta = 1.0, reduction = "mean"))]
fn smooth_l1_loss(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    beta: f64,
    reduction: &str,
) -> PyResult<PyObject> {
    run(
        py,
        &with_beta(LossKind::SmoothL1, beta, reduction)?,
        &[pred, target],
    )
}

/// Huber loss.
///
/// 0.5·d² where |d| < delta, else delta·(|d| − 0.5·delta); ``delta`` must be > 0.
#[pyfunction]
#[pyo3(signature = (pred, target, delta = 1.0, reduction = "mean"))]
fn huber_loss(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    delta: f64,
    reduction: &str,
) -> PyResult<PyObject> {
    run(
        py,
        &with_beta(LossKind::Huber, delta, reduction)?,
        &[pred, target],
    )
}

/// Poisson negative log-likelihood.
///
/// ``exp(x) − t·x`` when ``log_input`` else ``x − t·log(x + eps)``; ``full`` adds the
/// Stirling term, as torch.
#[pyfunction]
#[pyo3(signature = (pred, target, log_input = true, full = false, eps = 1e-8, reduction = "mean"))]
fn poisson_nll_loss(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    log_input: bool,
    full: bool,
    eps: f64,
    reduction: &str,
) -> PyResult<PyObject> {
    run(
        py,
        &poisson(log_input, full, eps, reduction)?,
        &[pred, target],
    )
}

/// Cross entropy of logits.
///
/// ``logits`` are [N, C, ...] (classes on dim 1). ``target`` is class indices
/// [N, ...] (any integer dtype) or probabilities / one-hot of the logits' shape and
/// dtype. ``weight`` is per class ([C]); targets equal to ``ignore_index`` are
/// skipped (an all-ignored batch gives NaN under "mean", as torch).
#[pyfunction]
#[pyo3(signature = (logits, target, weight = None, ignore_index = -100, reduction = "mean", label_smoothing = 0.0))]
fn cross_entropy_loss(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Opt<'_, '_>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> PyResult<PyObject> {
    let s = classes(
        LossKind::CrossEntropy,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
    )?;
    run(py, &s, &[logits, target])
}

/// ``cross_entropy_loss`` for class indices only.
#[pyfunction]
#[pyo3(signature = (logits, target, weight = None, ignore_index = -100, reduction = "mean", label_smoothing = 0.0))]
fn cross_entropy_sparse(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Opt<'_, '_>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> PyResult<PyObject> {
    let s = classes(
        LossKind::CrossEntropySparse,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
    )?;
    run(py, &s, &[logits, target])
}

/// Negative log-likelihood of log-probabilities.
#[pyfunction]
#[pyo3(signature = (log_probs, target, weight = None, ignore_index = -100, reduction = "mean"))]
fn nll_loss(
    py: Python<'_>,
    log_probs: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Opt<'_, '_>,
    ignore_index: i64,
    reduction: &str,
) -> PyResult<PyObject> {
    let s = classes(LossKind::Nll, weight, ignore_index, reduction, 0.0)?;
    run(py, &s, &[log_probs, target])
}

/// Binary cross entropy of probabilities.
#[pyfunction]
#[pyo3(signature = (pred, target, weight = None, reduction = "mean"))]
fn bce_loss(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Opt<'_, '_>,
    reduction: &str,
) -> PyResult<PyObject> {
    run(
        py,
        &binary(LossKind::Bce, weight, None, reduction)?,
        &[pred, target],
    )
}

/// Binary cross entropy of logits.
#[pyfunction]
#[pyo3(signature = (logits, target, weight = None, pos_weight = None, reduction = "mean"))]
fn bce_with_logits_loss(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    weight: Opt<'_, '_>,
    pos_weight: Opt<'_, '_>,
    reduction: &str,
) -> PyResult<PyObject> {
    let s = binary(LossKind::BceWithLogits, weight, pos_weight, reduction)?;
    run(py, &s, &[logits, target])
}

/// Focal loss of logits against class indices.
///
/// floDl's multi-class focal loss: ``−alpha·(1 − pt)^gamma·log(pt)`` with ``pt`` the
/// softmax probability of the target class (``target``: class indices, logits
/// [N, C, ...]). "mean" averages over the non-ignored targets, "sum" sums, "none"
/// returns one value per target (0 where ignored). Not in torch; gamma=0 is
/// ``alpha · cross_entropy``.
#[pyfunction]
#[pyo3(signature = (logits, target, alpha = 0.25, gamma = 2.0, ignore_index = -100, reduction = "mean"))]
fn focal_loss(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    alpha: f64,
    gamma: f64,
    ignore_index: i64,
    reduction: &str,
) -> PyResult<PyObject> {
    run(
        py,
        &focal(alpha, gamma, ignore_index, reduction)?,
        &[logits, target],
    )
}

/// Kullback-Leibler divergence.
///
/// ``input`` is log-probabilities; ``target`` probabilities (log-probabilities with
/// ``log_target``). "batchmean" (the default, as floDl) is the sum over the batch
/// size; "mean" is torch's element mean.
#[pyfunction]
#[pyo3(signature = (input, target, reduction = "batchmean", log_target = false))]
fn kl_div_loss(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    reduction: &str,
    log_target: bool,
) -> PyResult<PyObject> {
    run(py, &kl(reduction, log_target)?, &[input, target])
}

/// Connectionist temporal classification loss.
///
/// ``log_probs`` [T, N, C]; lengths are tensors or lists of ints. "mean" divides each
/// sequence's loss by its target length, then averages, as torch.
#[pyfunction]
#[pyo3(signature = (log_probs, targets, input_lengths, target_lengths, blank = 0, reduction = "mean", zero_infinity = false))]
#[allow(clippy::too_many_arguments)]
fn ctc_loss(
    py: Python<'_>,
    log_probs: &Bound<'_, PyAny>,
    targets: &Bound<'_, PyAny>,
    input_lengths: &Bound<'_, PyAny>,
    target_lengths: &Bound<'_, PyAny>,
    blank: i64,
    reduction: &str,
    zero_infinity: bool,
) -> PyResult<PyObject> {
    let s = ctc(blank, reduction, zero_infinity)?;
    run(py, &s, &[log_probs, targets, input_lengths, target_lengths])
}

/// Triplet margin loss.
///
/// ``max(d(a, p) − d(a, n) + margin, 0)`` with torch's pairwise distance; margin > 0.
#[pyfunction]
#[pyo3(signature = (anchor, positive, negative, margin = 1.0, p = 2.0, eps = 1e-6, swap = false, reduction = "mean"))]
#[allow(clippy::too_many_arguments)]
fn triplet_margin_loss(
    py: Python<'_>,
    anchor: &Bound<'_, PyAny>,
    positive: &Bound<'_, PyAny>,
    negative: &Bound<'_, PyAny>,
    margin: f64,
    p: f64,
    eps: f64,
    swap: bool,
    reduction: &str,
) -> PyResult<PyObject> {
    let s = triplet(margin, p, eps, swap, reduction)?;
    run(py, &s, &[anchor, positive, negative])
}

/// Cosine embedding loss.
///
/// ``target`` in {1, −1}: ``1 − cos`` or ``max(0, cos − margin)``.
#[pyfunction]
#[pyo3(signature = (input1, input2, target, margin = 0.0, reduction = "mean"))]
fn cosine_embedding_loss(
    py: Python<'_>,
    input1: &Bound<'_, PyAny>,
    input2: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    margin: f64,
    reduction: &str,
) -> PyResult<PyObject> {
    let s = with_beta(LossKind::CosineEmbedding, margin, reduction)?;
    run(py, &s, &[input1, input2, target])
}

/// Hinge embedding loss.
///
/// ``target`` in {1, −1}: ``x`` or ``max(0, margin − x)``.
#[pyfunction]
#[pyo3(signature = (input, target, margin = 1.0, reduction = "mean"))]
fn hinge_embedding_loss(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    margin: f64,
    reduction: &str,
) -> PyResult<PyObject> {
    let s = with_beta(LossKind::HingeEmbedding, margin, reduction)?;
    run(py, &s, &[input, target])
}

/// Margin ranking loss.
///
/// ``max(0, −target·(input1 − input2) + margin)``.
#[pyfunction]
#[pyo3(signature = (input1, input2, target, margin = 0.0, reduction = "mean"))]
fn margin_ranking_loss(
    py: Python<'_>,
    input1: &Bound<'_, PyAny>,
    input2: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    margin: f64,
    reduction: &str,
) -> PyResult<PyObject> {
    let s = with_beta(LossKind::MarginRanking, margin, reduction)?;
    run(py, &s, &[input1, input2, target])
}

// ---- classes --------------------------------------------------------------

/// Base of the loss classes: a built-in loss with its options.
#[pyclass(name = "Loss", module = "ferrotorch._core", subclass, frozen)]
pub struct PyLoss {
    pub spec: LossSpec,
}

#[pymethods]
impl PyLoss {
    /// A (pred, target) loss by name with default options (`Loss("mse")`).
    #[new]
    fn new(name: &str) -> PyResult<Self> {
        Ok(PyLoss {
            spec: LossSpec::from_name(name).py()?,
        })
    }

    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<PyObject> {
        self.compute(py, args)
    }

    /// The loss of the given tensors (`loss.compute(pred, target)`).
    #[pyo3(signature = (*args))]
    fn compute(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<PyObject> {
        let items: Vec<Bound<'_, PyAny>> = args.iter().collect();
        let refs: Vec<&Bound<'_, PyAny>> = items.iter().collect();
        run(py, &self.spec, &refs)
    }

    /// The canonical name (`Trainer(loss=name)` accepts it when the loss
    /// takes (pred, target)).
    #[getter]
    fn name(&self) -> &'static str {
        self.spec.kind.name()
    }

    #[getter]
    fn reduction(&self) -> &'static str {
        self.spec.opts.reduction.name()
    }

    /// The names of the tensors the loss takes, in order.
    #[getter]
    fn inputs(&self) -> Vec<&'static str> {
        self.spec.kind.inputs().to_vec()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let cls = slf.get_type().name()?.to_string();
        let opts: Vec<String> = slf
            .get()
            .spec
            .option_pairs()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Ok(format!("{cls}({})", opts.join(", ")))
    }
}

/// The Rust loss `ob` is, or that a `ferrotorch.losses` class instance (a
/// torch module holding it as `_core`) runs as: its `_ft_node()` says, None
/// when Python must run (an overridden forward, hooks).
pub fn loss_core<'py>(ob: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyLoss>>> {
    if let Ok(l) = ob.downcast::<PyLoss>() {
        return Ok(Some(l.clone()));
    }
    match ob.getattr(pyo3::intern!(ob.py(), "_ft_node")) {
        Ok(node) => Ok(node.call0()?.downcast_into::<PyLoss>().ok()),
        Err(_) => Ok(None),
    }
}

/// Whether `ob` is a Rust loss or holds one as `_core` (in its `__dict__`).
pub fn holds_loss(ob: &Bound<'_, PyAny>) -> bool {
    if ob.downcast::<PyLoss>().is_ok() {
        return true;
    }
    ob.getattr(pyo3::intern!(ob.py(), "__dict__"))
        .ok()
        .and_then(|d| d.get_item("_core").ok())
        .is_some_and(|c| c.downcast::<PyLoss>().is_ok())
}

fn class<T: pyo3::PyClass<BaseType = PyLoss>>(
    sub: T,
    s: LossSpec,
) -> PyResult<PyClassInitializer<T>> {
    Ok(PyClassInitializer::from(PyLoss { spec: checked(s)? }).add_subclass(sub))
}

/// MSELoss(reduction="mean").
#[pyclass(name = "MSELoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyMseLoss;
#[pymethods]
impl PyMseLoss {
    #[new]
    #[pyo3(signature = (reduction = "mean"))]
    fn new(reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        class(PyMseLoss, spec(LossKind::Mse, reduction)?)
    }
}

/// L1Loss(reduction="mean").
#[pyclass(name = "L1Loss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyL1Loss;
#[pymethods]
impl PyL1Loss {
    #[new]
    #[pyo3(signature = (reduction = "mean"))]
    fn new(reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        class(PyL1Loss, spec(LossKind::L1, reduction)?)
    }
}

/// SmoothL1Loss(beta=1.0, reduction="mean").
#[pyclass(name = "SmoothL1Loss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PySmoothL1Loss;
#[pymethods]
impl PySmoothL1Loss {
    #[new]
    #[pyo3(signature = (beta = 1.0, reduction = "mean"))]
    fn new(beta: f64, reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        class(
            PySmoothL1Loss,
            with_beta(LossKind::SmoothL1, beta, reduction)?,
        )
    }
}

/// HuberLoss(delta=1.0, reduction="mean").
#[pyclass(name = "HuberLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyHuberLoss;
#[pymethods]
impl PyHuberLoss {
    #[new]
    #[pyo3(signature = (delta = 1.0, reduction = "mean"))]
    fn new(delta: f64, reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        class(PyHuberLoss, with_beta(LossKind::Huber, delta, reduction)?)
    }
}

/// PoissonNLLLoss(log_input=True, full=False, eps=1e-8, reduction="mean").
#[pyclass(name = "PoissonNLLLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyPoissonNllLoss;
#[pymethods]
impl PyPoissonNllLoss {
    #[new]
    #[pyo3(signature = (log_input = true, full = false, eps = 1e-8, reduction = "mean"))]
    fn new(
        log_input: bool,
        full: bool,
        eps: f64,
        reduction: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        class(PyPoissonNllLoss, poisson(log_input, full, eps, reduction)?)
    }
}

/// CrossEntropyLoss(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0).
#[pyclass(name = "CrossEntropyLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyCrossEntropyLoss;
#[pymethods]
impl PyCrossEntropyLoss {
    #[new]
    #[pyo3(signature = (weight = None, ignore_index = -100, reduction = "mean", label_smoothing = 0.0))]
    fn new(
        weight: Opt<'_, '_>,
        ignore_index: i64,
        reduction: &str,
        label_smoothing: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let k = LossKind::CrossEntropy;
        class(
            PyCrossEntropyLoss,
            classes(k, weight, ignore_index, reduction, label_smoothing)?,
        )
    }
}

/// CrossEntropySparseLoss(...): CrossEntropyLoss that accepts class indices only.
#[pyclass(name = "CrossEntropySparseLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyCrossEntropySparseLoss;
#[pymethods]
impl PyCrossEntropySparseLoss {
    #[new]
    #[pyo3(signature = (weight = None, ignore_index = -100, reduction = "mean", label_smoothing = 0.0))]
    fn new(
        weight: Opt<'_, '_>,
        ignore_index: i64,
        reduction: &str,
        label_smoothing: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let k = LossKind::CrossEntropySparse;
        let s = classes(k, weight, ignore_index, reduction, label_smoothing)?;
        class(PyCrossEntropySparseLoss, s)
    }
}

/// NLLLoss(weight=None, ignore_index=-100, reduction="mean").
#[pyclass(name = "NLLLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyNllLoss;
#[pymethods]
impl PyNllLoss {
    #[new]
    #[pyo3(signature = (weight = None, ignore_index = -100, reduction = "mean"))]
    fn new(
        weight: Opt<'_, '_>,
        ignore_index: i64,
        reduction: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        class(
            PyNllLoss,
            classes(LossKind::Nll, weight, ignore_index, reduction, 0.0)?,
        )
    }
}

/// BCELoss(weight=None, reduction="mean").
#[pyclass(name = "BCELoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyBceLoss;
#[pymethods]
impl PyBceLoss {
    #[new]
    #[pyo3(signature = (weight = None, reduction = "mean"))]
    fn new(weight: Opt<'_, '_>, reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        class(PyBceLoss, binary(LossKind::Bce, weight, None, reduction)?)
    }
}

/// BCEWithLogitsLoss(weight=None, pos_weight=None, reduction="mean").
#[pyclass(name = "BCEWithLogitsLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyBceWithLogitsLoss;
#[pymethods]
impl PyBceWithLogitsLoss {
    #[new]
    #[pyo3(signature = (weight = None, pos_weight = None, reduction = "mean"))]
    fn new(
        weight: Opt<'_, '_>,
        pos_weight: Opt<'_, '_>,
        reduction: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let s = binary(LossKind::BceWithLogits, weight, pos_weight, reduction)?;
        class(PyBceWithLogitsLoss, s)
    }
}

/// FocalLoss(alpha=0.25, gamma=2.0, ignore_index=-100, reduction="mean").
#[pyclass(name = "FocalLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyFocalLoss;
#[pymethods]
impl PyFocalLoss {
    #[new]
    #[pyo3(signature = (alpha = 0.25, gamma = 2.0, ignore_index = -100, reduction = "mean"))]
    fn new(
        alpha: f64,
        gamma: f64,
        ignore_index: i64,
        reduction: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        class(PyFocalLoss, focal(alpha, gamma, ignore_index, reduction)?)
    }
}

/// KLDivLoss(reduction="batchmean", log_target=False).
#[pyclass(name = "KLDivLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyKlDivLoss;
#[pymethods]
impl PyKlDivLoss {
    #[new]
    #[pyo3(signature = (reduction = "batchmean", log_target = false))]
    fn new(reduction: &str, log_target: bool) -> PyResult<PyClassInitializer<Self>> {
        class(PyKlDivLoss, kl(reduction, log_target)?)
    }
}

/// CTCLoss(blank=0, reduction="mean", zero_infinity=False).
#[pyclass(name = "CTCLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyCtcLoss;
#[pymethods]
impl PyCtcLoss {
    #[new]
    #[pyo3(signature = (blank = 0, reduction = "mean", zero_infinity = false))]
    fn new(blank: i64, reduction: &str, zero_infinity: bool) -> PyResult<PyClassInitializer<Self>> {
        class(PyCtcLoss, ctc(blank, reduction, zero_infinity)?)
    }
}

/// TripletMarginLoss(margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean").
#[pyclass(name = "TripletMarginLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyTripletMarginLoss;
#[pymethods]
impl PyTripletMarginLoss {
    #[new]
    #[pyo3(signature = (margin = 1.0, p = 2.0, eps = 1e-6, swap = false, reduction = "mean"))]
    fn new(
        margin: f64,
        p: f64,
        eps: f64,
        swap: bool,
        reduction: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        class(
            PyTripletMarginLoss,
            triplet(margin, p, eps, swap, reduction)?,
        )
    }
}

/// CosineEmbeddingLoss(margin=0.0, reduction="mean").
#[pyclass(name = "CosineEmbeddingLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyCosineEmbeddingLoss;
#[pymethods]
impl PyCosineEmbeddingLoss {
    #[new]
    #[pyo3(signature = (margin = 0.0, reduction = "mean"))]
    fn new(margin: f64, reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        let s = with_beta(LossKind::CosineEmbedding, margin, reduction)?;
        class(PyCosineEmbeddingLoss, s)
    }
}

/// HingeEmbeddingLoss(margin=1.0, reduction="mean").
#[pyclass(name = "HingeEmbeddingLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyHingeEmbeddingLoss;
#[pymethods]
impl PyHingeEmbeddingLoss {
    #[new]
    #[pyo3(signature = (margin = 1.0, reduction = "mean"))]
    fn new(margin: f64, reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        let s = with_beta(LossKind::HingeEmbedding, margin, reduction)?;
        class(PyHingeEmbeddingLoss, s)
    }
}

/// MarginRankingLoss(margin=0.0, reduction="mean").
#[pyclass(name = "MarginRankingLoss", module = "ferrotorch._core", extends = PyLoss, frozen)]
pub struct PyMarginRankingLoss;
#[pymethods]
impl PyMarginRankingLoss {
    #[new]
    #[pyo3(signature = (margin = 0.0, reduction = "mean"))]
    fn new(margin: f64, reduction: &str) -> PyResult<PyClassInitializer<Self>> {
        let s = with_beta(LossKind::MarginRanking, margin, reduction)?;
        class(PyMarginRankingLoss, s)
    }
}

/// The names `Trainer(loss=...)` accepts.
#[pyfunction]
fn loss_names() -> Vec<&'static str> {
    LossKind::NAMES.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mse_loss, m)?)?;
    m.add_function(wrap_pyfunction!(l1_loss, m)?)?;
    m.add_function(wrap_pyfunction!(smooth_l1_loss, m)?)?;
    m.add_function(wrap_pyfunction!(huber_loss, m)?)?;
    m.add_function(wrap_pyfunction!(poisson_nll_loss, m)?)?;
    m.add_function(wrap_pyfunction!(cross_entropy_loss, m)?)?;
    m.add_function(wrap_pyfunction!(cross_entropy_sparse, m)?)?;
    m.add_function(wrap_pyfunction!(nll_loss, m)?)?;
    m.add_function(wrap_pyfunction!(bce_loss, m)?)?;
    m.add_function(wrap_pyfunction!(bce_with_logits_loss, m)?)?;
    m.add_function(wrap_pyfunction!(focal_loss, m)?)?;
    m.add_function(wrap_pyfunction!(kl_div_loss, m)?)?;
    m.add_function(wrap_pyfunction!(ctc_loss, m)?)?;
    m.add_function(wrap_pyfunction!(triplet_margin_loss, m)?)?;
    m.add_function(wrap_pyfunction!(cosine_embedding_loss, m)?)?;
    m.add_function(wrap_pyfunction!(hinge_embedding_loss, m)?)?;
    m.add_function(wrap_pyfunction!(margin_ranking_loss, m)?)?;
    m.add_function(wrap_pyfunction!(loss_names, m)?)?;
    m.add_class::<PyLoss>()?;
    m.add_class::<PyMseLoss>()?;
    m.add_class::<PyL1Loss>()?;
    m.add_class::<PySmoothL1Loss>()?;
    m.add_class::<PyHuberLoss>()?;
    m.add_class::<PyPoissonNllLoss>()?;
    m.add_class::<PyCrossEntropyLoss>()?;
    m.add_class::<PyCrossEntropySparseLoss>()?;
    m.add_class::<PyNllLoss>()?;
    m.add_class::<PyBceLoss>()?;
    m.add_class::<PyBceWithLogitsLoss>()?;
    m.add_class::<PyFocalLoss>()?;
    m.add_class::<PyKlDivLoss>()?;
    m.add_class::<PyCtcLoss>()?;
    m.add_class::<PyTripletMarginLoss>()?;
    m.add_class::<PyCosineEmbeddingLoss>()?;
    m.add_class::<PyHingeEmbeddingLoss>()?;
    m.add_class::<PyMarginRankingLoss>()?;
    Ok(())
}
