//! Bindings of the layer catalogue beyond Linear/LayerNorm: one class per
//! layer (argument conversion only), plus the `init_*` functions.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tch::Tensor;

use super::errors::{raise, Exc, IntoPyResult};
use super::nn::{base, device_arg, PyModuleBase};
use super::tensor::{tensor_arg, to_py};
use crate::nn::{self, init, Activation, DropoutKind, RnnKind};

/// An int or a sequence of `n` ints (`kernel_size=3` or `(3, 5)`).
fn ints(ob: &Bound<'_, PyAny>, n: usize, what: &str) -> PyResult<Vec<i64>> {
    if let Ok(v) = ob.extract::<i64>() {
        return Ok(vec![v; n]);
    }
    match ob.extract::<Vec<i64>>() {
        Ok(v) if v.len() == n => Ok(v),
        _ => Err(raise(
            Exc::InputType,
            format!("{what}: expected an int or a sequence of {n} ints, got {ob}"),
        )),
    }
}

fn pair(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<[i64; 2]> {
    let v = ints(ob, 2, what)?;
    Ok([v[0], v[1]])
}

/// One layer class: its Python name, its signature, and the core module its
/// constructor builds from the converted arguments (an expression that may
/// use `?`).
macro_rules! layer {
    ($(#[$doc:meta])* $py:ident, $name:literal, ($($sig:tt)*), |$($arg:ident: $ty:ty),*| $make:expr) => {
        $(#[$doc])*
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = ($($sig)*))]
            #[allow(clippy::too_many_arguments)]
            fn new($($arg: $ty),*) -> PyResult<PyClassInitializer<Self>> {
                Ok(base(Arc::new($make)).add_subclass($py))
            }
        }
    };
}

/// Defines a parameter-free activation class.
macro_rules! unit_module {
    ($py:ident, $name:literal, $inner:expr, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            fn new() -> PyClassInitializer<Self> {
                base(Arc::new($inner)).add_subclass($py)
            }
        }
    };
}

unit_module!(
    PySigmoid,
    "Sigmoid",
    Activation::Sigmoid,
    "Sigmoid: 1/(1+e^-x)."
);
unit_module!(PyTanh, "Tanh", Activation::Tanh, "Tanh.");
unit_module!(PySilu, "SiLU", Activation::Silu, "SiLU: x·sigmoid(x).");
unit_module!(
    PyMish,
    "Mish",
    Activation::Mish,
    "Mish: x·tanh(softplus(x))."
);
unit_module!(
    PySelu,
    "SELU",
    Activation::Selu,
    "SELU with torch's constants."
);
unit_module!(
    PyHardswish,
    "Hardswish",
    Activation::Hardswish,
    "Hardswish."
);
unit_module!(
    PyHardsigmoid,
    "Hardsigmoid",
    Activation::Hardsigmoid,
    "Hardsigmoid."
);

layer!(
    /// LeakyReLU(negative_slope=0.01).
    PyLeakyRelu,
    "LeakyReLU",
    (negative_slope = 0.01),
    |negative_slope: f64| nn::LeakyRelu {
        slope: negative_slope,
    }
);

layer!(
    /// ELU(alpha=1.0).
    PyElu, "ELU", (alpha = 1.0), |alpha: f64| nn::Elu { alpha });

layer!(
    /// Softplus(beta=1.0, threshold=20.0).
    PySoftplus,
    "Softplus",
    (beta = 1.0, threshold = 20.0),
    |beta: f64, threshold: f64| {
        if beta == 0.0 || beta.is_nan() {
            return Err(raise(
                Exc::Config,
                format!("Softplus: beta must be non-zero, got {beta}"),
            ));
        }
        nn::Softplus { beta, threshold }
    }
);

layer!(
    /// Softmax(dim).
    PySoftmax, "Softmax", (dim), |dim: i64| nn::Softmax { dim });

layer!(
    /// LogSoftmax(dim).
    PyLogSoftmax, "LogSoftmax", (dim), |dim: i64| {
    nn::LogSoftmax { dim }
});

layer!(
    /// PReLU(num_parameters=1, init=0.25).
    PyPRelu,
    "PReLU",
    (num_parameters = 1, init = 0.25, device = None),
    |num_parameters: i64, init: f64, device: Option<&str>| nn::PRelu::new(
        num_parameters,
        init,
        device_arg(device)?
    )
    .py()?
);

/// Builds a (transposed) convolution from torch-style arguments.
#[allow(clippy::too_many_arguments)]
fn conv(
    dims: usize,
    transposed: bool,
    in_channels: i64,
    out_channels: i64,
    kernel_size: &Bound<'_, PyAny>,
    stride: &Bound<'_, PyAny>,
    padding: &Bound<'_, PyAny>,
    output_padding: &Bound<'_, PyAny>,
    dilation: &Bound<'_, PyAny>,
    groups: i64,
    bias: bool,
    device: Option<&str>,
) -> PyResult<Arc<nn::Conv>> {
    let opts = nn::ConvOptions {
        kernel: ints(kernel_size, dims, "kernel_size")?,
        stride: ints(stride, dims, "stride")?,
        padding: ints(padding, dims, "padding")?,
        dilation: ints(dilation, dims, "dilation")?,
        output_padding: ints(output_padding, dims, "output_padding")?,
        groups,
        bias,
    };
    Ok(Arc::new(
        nn::Conv::new(
            dims,
            transposed,
            in_channels,
            out_channels,
            opts,
            device_arg(device)?,
        )
        .py()?,
    ))
}

macro_rules! conv_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (in_channels, out_channels, kernel_size, stride = None, padding = None, dilation = None, groups = 1, bias = true, device = None))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                py: Python<'_>,
                in_channels: i64,
                out_channels: i64,
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                dilation: Option<&Bound<'_, PyAny>>,
                groups: i64,
                bias: bool,
                device: Option<&str>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let one = 1i64.into_pyobject(py)?.into_any();
                let zero = 0i64.into_pyobject(py)?.into_any();
                let m = conv(
                    $dims,
                    false,
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride.unwrap_or(&one),
                    padding.unwrap_or(&zero),
                    &zero,
                    dilation.unwrap_or(&one),
                    groups,
                    bias,
                    device,
                )?;
                Ok(base(m).add_subclass($py))
            }
        }
    };
}

macro_rules! conv_t_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True, dilation=1)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (in_channels, out_channels, kernel_size, stride = None, padding = None, output_padding = None, groups = 1, bias = true, dilation = None, device = None))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                py: Python<'_>,
                in_channels: i64,
                out_channels: i64,
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                output_padding: Option<&Bound<'_, PyAny>>,
                groups: i64,
                bias: bool,
                dilation: Option<&Bound<'_, PyAny>>,
                device: Option<&str>,
            ) -> PyResult<PyClassInitializer<Self>> {
                let one = 1i64.into_pyobject(py)?.into_any();
                let zero = 0i64.into_pyobject(py)?.into_any();
                let m = conv(
                    $dims,
                    true,
                    in_channels,
                    out_channels,
                    kernel_size,
                    stride.unwrap_or(&one),
                    padding.unwrap_or(&zero),
                    output_padding.unwrap_or(&zero),
                    dilation.unwrap_or(&one),
                    groups,
                    bias,
                    device,
                )?;
                Ok(base(m).add_subclass($py))
            }
        }
    };
}

conv_class!(PyConv1d, "Conv1d", 1);
conv_class!(PyConv2d, "Conv2d", 2);
conv_class!(PyConv3d, "Conv3d", 3);
conv_t_class!(PyConvTranspose1d, "ConvTranspose1d", 1);
conv_t_class!(PyConvTranspose2d, "ConvTranspose2d", 2);
conv_t_class!(PyConvTranspose3d, "ConvTranspose3d", 3);

layer!(
    /// RMSNorm(size, eps=1e-5): x/√(mean(x²)+eps)·weight over the last dim.
    PyRmsNorm,
    "RMSNorm",
    (size, eps = 1e-5, device = None),
    |size: i64, eps: f64, device: Option<&str>| nn::RmsNorm::new(size, eps, device_arg(device)?)
        .py()?
);

layer!(
    /// BatchNorm over [N, C] or [N, C, L] (torch's BatchNorm1d).
    PyBatchNorm,
    "BatchNorm",
    (num_features, eps = 1e-5, momentum = 0.1, device = None),
    |num_features: i64, eps: f64, momentum: f64, device: Option<&str>| nn::BatchNorm::new(
        num_features,
        false,
        eps,
        momentum,
        device_arg(device)?
    )
    .py()?
);

layer!(
    /// BatchNorm2d over [N, C, H, W].
    PyBatchNorm2d,
    "BatchNorm2d",
    (num_features, eps = 1e-5, momentum = 0.1, device = None),
    |num_features: i64, eps: f64, momentum: f64, device: Option<&str>| nn::BatchNorm::new(
        num_features,
        true,
        eps,
        momentum,
        device_arg(device)?
    )
    .py()?
);

layer!(
    /// GroupNorm(num_groups, num_channels, eps=1e-5, affine=True).
    PyGroupNorm,
    "GroupNorm",
    (
        num_groups,
        num_channels,
        eps = 1e-5,
        affine = true,
        device = None
    ),
    |num_groups: i64, num_channels: i64, eps: f64, affine: bool, device: Option<&str>| {
        nn::GroupNorm::new(num_groups, num_channels, eps, affine, device_arg(device)?).py()?
    }
);

layer!(
    /// InstanceNorm(num_features, affine=False, eps=1e-5): input statistics always.
    PyInstanceNorm,
    "InstanceNorm",
    (num_features, affine = false, eps = 1e-5, device = None),
    |num_features: i64, affine: bool, eps: f64, device: Option<&str>| nn::InstanceNorm::new(
        num_features,
        affine,
        eps,
        device_arg(device)?
    )
    .py()?
);

macro_rules! dropout_class {
    ($py:ident, $name:literal, $kind:expr) => {
        #[doc = concat!($name, "(p=0.5): identity in eval mode or when p = 0.")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (p = 0.5))]
            fn new(p: f64) -> PyResult<PyClassInitializer<Self>> {
                Ok(base(Arc::new(nn::Dropout::new($kind, p).py()?)).add_subclass($py))
            }
        }
    };
}

dropout_class!(PyDropout, "Dropout", DropoutKind::Plain);
dropout_class!(PyDropout2d, "Dropout2d", DropoutKind::Channel2d);
dropout_class!(PyAlphaDropout, "AlphaDropout", DropoutKind::Alpha);

layer!(
    /// Embedding(num_embeddings, embedding_dim, padding_idx=None).
    PyEmbedding,
    "Embedding",
    (
        num_embeddings,
        embedding_dim,
        padding_idx = None,
        device = None
    ),
    |num_embeddings: i64, embedding_dim: i64, padding_idx: Option<i64>, device: Option<&str>| {
        nn::Embedding::new(
            num_embeddings,
            embedding_dim,
            padding_idx,
            device_arg(device)?,
        )
        .py()?
    }
);

/// EmbeddingBag(num_embeddings, embedding_dim, mode="mean").
#[pyclass(name = "EmbeddingBag", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyEmbeddingBag {
    inner: Arc<nn::EmbeddingBag>,
}

#[pymethods]
impl PyEmbeddingBag {
    #[new]
    #[pyo3(signature = (num_embeddings, embedding_dim, mode = "mean", device = None))]
    fn new(
        num_embeddings: i64,
        embedding_dim: i64,
        mode: &str,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let mode = match mode {
            "sum" => nn::BagMode::Sum,
            "mean" => nn::BagMode::Mean,
            "max" => nn::BagMode::Max,
            m => {
                return Err(raise(
                    Exc::Config,
                    format!("EmbeddingBag: mode must be 'sum', 'mean' or 'max', got '{m}'"),
                ))
            }
        };
        let m = Arc::new(
            nn::EmbeddingBag::new(num_embeddings, embedding_dim, mode, device_arg(device)?).py()?,
        );
        Ok(base(m.clone()).add_subclass(PyEmbeddingBag { inner: m }))
    }

    /// Bags of 1-D `indices` starting at the positions in `offsets`.
    fn forward_bag(
        &self,
        py: Python<'_>,
        indices: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
    ) -> PyResult<PyObject> {
        let i = tensor_arg(indices, "indices")?;
        let o = tensor_arg(offsets, "offsets")?;
        let out = self.inner.forward_bag(&i, &o).py()?;
        to_py(py, &out)
    }

    /// `bag(input)` for 2-D bags, `bag(input, offsets)` for 1-D input.
    #[pyo3(signature = (input, offsets = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        offsets: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let x = tensor_arg(input, "input")?;
        let out = match offsets {
            Some(o) => self.inner.forward_bag(&x, &tensor_arg(o, "offsets")?),
            None => nn::Module::forward(&*self.inner, &x),
        }
        .py()?;
        to_py(py, &out)
    }
}

/// GRUCell(input_size, hidden_size, bias=True): `cell(x, h=None)` → h'.
#[pyclass(name = "GRUCell", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyGruCell {
    inner: Arc<nn::GruCell>,
}

fn opt_param(py: Python<'_>, t: Option<Tensor>) -> PyResult<PyObject> {
    match t {
        Some(t) => to_py(py, &t),
        None => Ok(py.None()),
    }
}

#[pymethods]
impl PyGruCell {
    #[new]
    #[pyo3(signature = (input_size, hidden_size, bias = true, device = None))]
    fn new(
        input_size: i64,
        hidden_size: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m =
            Arc::new(nn::GruCell::new(input_size, hidden_size, bias, device_arg(device)?).py()?);
        Ok(base(m.clone()).add_subclass(PyGruCell { inner: m }))
    }

    #[pyo3(signature = (input, hx = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        hx: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        self.forward_step(py, input, hx)
    }

    /// h' from x and h (None: zeros).
    #[pyo3(signature = (input, hx = None))]
    fn forward_step(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        hx: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let x = tensor_arg(input, "input")?;
        let h = hx.map(|h| tensor_arg(h, "hx")).transpose()?;
        let out = self.inner.forward_step(&x, h.as_ref()).py()?;
        to_py(py, &out)
    }

    #[getter]
    fn weight_ih(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(0))
    }
    #[getter]
    fn weight_hh(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(1))
    }
    #[getter]
    fn bias_ih(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(2))
    }
    #[getter]
    fn bias_hh(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(3))
    }
}

/// LSTMCell(input_size, hidden_size, bias=True): `cell(x, (h, c)=None)` → (h', c').
#[pyclass(name = "LSTMCell", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyLstmCell {
    inner: Arc<nn::LstmCell>,
}

fn state_pair(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<(Tensor, Tensor)> {
    let t = ob
        .downcast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .ok_or_else(|| {
            raise(
                Exc::InputType,
                format!("{what}: expected a tuple (h, c) of tensors"),
            )
        })?;
    Ok((
        tensor_arg(&t.get_item(0)?, &format!("{what}[0]"))?,
        tensor_arg(&t.get_item(1)?, &format!("{what}[1]"))?,
    ))
}

#[pymethods]
impl PyLstmCell {
    #[new]
    #[pyo3(signature = (input_size, hidden_size, bias = true, device = None))]
    fn new(
        input_size: i64,
        hidden_size: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m =
            Arc::new(nn::LstmCell::new(input_size, hidden_size, bias, device_arg(device)?).py()?);
        Ok(base(m.clone()).add_subclass(PyLstmCell { inner: m }))
    }

    /// (h', c') from x and (h, c) (None: zeros), as torch.nn.LSTMCell.
    #[pyo3(signature = (input, hx = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        hx: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(PyObject, PyObject)> {
        let x = tensor_arg(input, "input")?;
        let s = hx.map(|s| state_pair(s, "hx")).transpose()?;
        let (h, c) = self
            .inner
            .forward_step(&x, s.as_ref().map(|(h, c)| (h, c)))
            .py()?;
        Ok((to_py(py, &h)?, to_py(py, &c)?))
    }

    /// floDl's packed form: state and result are cat(h, c), [B, 2H].
    #[pyo3(signature = (input, state = None))]
    fn forward_step(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let x = tensor_arg(input, "input")?;
        let s = state.map(|s| tensor_arg(s, "state")).transpose()?;
        let out = self.inner.forward_packed(&x, s.as_ref()).py()?;
        to_py(py, &out)
    }

    #[getter]
    fn weight_ih(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(0))
    }
    #[getter]
    fn weight_hh(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(1))
    }
    #[getter]
    fn bias_ih(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(2))
    }
    #[getter]
    fn bias_hh(&self, py: Python<'_>) -> PyResult<PyObject> {
        opt_param(py, self.inner.param(3))
    }
}

fn rnn_new(
    kind: RnnKind,
    input_size: i64,
    hidden_size: i64,
    num_layers: i64,
    bias: bool,
    batch_first: bool,
    device: Option<&str>,
) -> PyResult<Arc<nn::Rnn>> {
    Ok(Arc::new(
        nn::Rnn::new(
            kind,
            input_size,
            hidden_size,
            num_layers,
            batch_first,
            bias,
            device_arg(device)?,
        )
        .py()?,
    ))
}

/// GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False).
#[pyclass(name = "GRU", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyGru {
    inner: Arc<nn::Rnn>,
}

#[pymethods]
impl PyGru {
    #[new]
    #[pyo3(signature = (input_size, hidden_size, num_layers = 1, bias = true, batch_first = false, device = None))]
    fn new(
        input_size: i64,
        hidden_size: i64,
        num_layers: i64,
        bias: bool,
        batch_first: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = rnn_new(
            RnnKind::Gru,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            device,
        )?;
        Ok(base(m.clone()).add_subclass(PyGru { inner: m }))
    }

    /// (output, h_n) from the sequence and h0 [layers, B, H] (None: zeros).
    #[pyo3(signature = (input, h0 = None))]
    fn forward_seq(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        h0: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(PyObject, PyObject)> {
        let x = tensor_arg(input, "input")?;
        let h0 = h0.map(|h| tensor_arg(h, "h0")).transpose()?;
        let (out, st) = self
            .inner
            .forward_seq(&x, h0.as_ref().map(std::slice::from_ref))
            .py()?;
        Ok((to_py(py, &out)?, to_py(py, &st[0])?))
    }

    #[getter]
    fn batch_first(&self) -> bool {
        self.inner.batch_first()
    }
}

/// LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False).
#[pyclass(name = "LSTM", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyLstm {
    inner: Arc<nn::Rnn>,
}

#[pymethods]
impl PyLstm {
    #[new]
    #[pyo3(signature = (input_size, hidden_size, num_layers = 1, bias = true, batch_first = false, device = None))]
    fn new(
        input_size: i64,
        hidden_size: i64,
        num_layers: i64,
        bias: bool,
        batch_first: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = rnn_new(
            RnnKind::Lstm,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            device,
        )?;
        Ok(base(m.clone()).add_subclass(PyLstm { inner: m }))
    }

    /// (output, (h_n, c_n)) from the sequence and (h0, c0) (None: zeros).
    #[pyo3(signature = (input, hx = None))]
    fn forward_seq(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        hx: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(PyObject, (PyObject, PyObject))> {
        let x = tensor_arg(input, "input")?;
        let s = hx
            .map(|s| state_pair(s, "hx"))
            .transpose()?
            .map(|(h, c)| vec![h, c]);
        let (out, st) = self.inner.forward_seq(&x, s.as_deref()).py()?;
        Ok((to_py(py, &out)?, (to_py(py, &st[0])?, to_py(py, &st[1])?)))
    }

    #[getter]
    fn batch_first(&self) -> bool {
        self.inner.batch_first()
    }
}

/// MultiheadAttention(embed_dim, num_heads, bias=True), batch first.
#[pyclass(name = "MultiheadAttention", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyMha {
    inner: Arc<nn::MultiheadAttention>,
}

#[pymethods]
impl PyMha {
    #[new]
    #[pyo3(signature = (embed_dim, num_heads, bias = true, device = None))]
    fn new(
        embed_dim: i64,
        num_heads: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(
            nn::MultiheadAttention::new(embed_dim, num_heads, bias, device_arg(device)?).py()?,
        );
        Ok(base(m.clone()).add_subclass(PyMha { inner: m }))
    }

    /// Attention of query [B, L, E] over key, value [B, S, E]; returns the output.
    #[pyo3(signature = (query, key, value, attn_mask = None, key_padding_mask = None))]
    fn forward_ext(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        attn_mask: Option<&Bound<'_, PyAny>>,
        key_padding_mask: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let q = tensor_arg(query, "query")?;
        let k = tensor_arg(key, "key")?;
        let v = tensor_arg(value, "value")?;
        let am = attn_mask.map(|m| tensor_arg(m, "attn_mask")).transpose()?;
        let kp = key_padding_mask
            .map(|m| tensor_arg(m, "key_padding_mask"))
            .transpose()?;
        let out = self
            .inner
            .forward_ext(&q, &k, &v, am.as_ref(), kp.as_ref())
            .py()?;
        to_py(py, &out)
    }

    #[getter]
    fn embed_dim(&self) -> i64 {
        self.inner.embed_dim()
    }
    #[getter]
    fn num_heads(&self) -> i64 {
        self.inner.num_heads()
    }
}

/// Bilinear(in1_features, in2_features, out_features, bias=True): `m(x1, x2)`.
#[pyclass(name = "Bilinear", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyBilinear {
    inner: Arc<nn::Bilinear>,
}

#[pymethods]
impl PyBilinear {
    #[new]
    #[pyo3(signature = (in1_features, in2_features, out_features, bias = true, device = None))]
    fn new(
        in1_features: i64,
        in2_features: i64,
        out_features: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(
            nn::Bilinear::new(
                in1_features,
                in2_features,
                out_features,
                bias,
                device_arg(device)?,
            )
            .py()?,
        );
        Ok(base(m.clone()).add_subclass(PyBilinear { inner: m }))
    }

    /// bilinear(x1, x2); with one input, bilinear(x1, x1).
    #[pyo3(signature = (input1, input2 = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        input1: &Bound<'_, PyAny>,
        input2: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let a = tensor_arg(input1, "input1")?;
        let b = match input2 {
            Some(b) => tensor_arg(b, "input2")?,
            None => a.shallow_clone(),
        };
        let out = self.inner.forward_bilinear(&a, &b).py()?;
        to_py(py, &out)
    }
}

macro_rules! maxpool_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(kernel_size, stride=None (= kernel_size), padding=0, dilation=1, ceil_mode=False)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (kernel_size, stride = None, padding = None, dilation = None, ceil_mode = false))]
            fn new(
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                dilation: Option<&Bound<'_, PyAny>>,
                ceil_mode: bool,
            ) -> PyResult<PyClassInitializer<Self>> {
                let k = ints(kernel_size, $dims, "kernel_size")?;
                let s = stride.map(|s| ints(s, $dims, "stride")).transpose()?.unwrap_or_else(|| k.clone());
                let p = padding.map(|p| ints(p, $dims, "padding")).transpose()?.unwrap_or(vec![0; $dims]);
                let d = dilation.map(|d| ints(d, $dims, "dilation")).transpose()?.unwrap_or(vec![1; $dims]);
                let m = nn::MaxPool::new($dims, k, s, p, d, ceil_mode).py()?;
                Ok(base(Arc::new(m)).add_subclass($py))
            }
        }
    };
}

macro_rules! avgpool_class {
    ($py:ident, $name:literal, $dims:expr) => {
        #[doc = concat!($name, "(kernel_size, stride=None (= kernel_size), padding=0, ceil_mode=False, count_include_pad=True)")]
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = (kernel_size, stride = None, padding = None, ceil_mode = false, count_include_pad = true))]
            fn new(
                kernel_size: &Bound<'_, PyAny>,
                stride: Option<&Bound<'_, PyAny>>,
                padding: Option<&Bound<'_, PyAny>>,
                ceil_mode: bool,
                count_include_pad: bool,
            ) -> PyResult<PyClassInitializer<Self>> {
                let k = ints(kernel_size, $dims, "kernel_size")?;
                let s = stride.map(|s| ints(s, $dims, "stride")).transpose()?.unwrap_or_else(|| k.clone());
                let p = padding.map(|p| ints(p, $dims, "padding")).transpose()?.unwrap_or(vec![0; $dims]);
                let m = nn::AvgPool::new($dims, k, s, p, ceil_mode, count_include_pad).py()?;
                Ok(base(Arc::new(m)).add_subclass($py))
            }
        }
    };
}

maxpool_class!(PyMaxPool1d, "MaxPool1d", 1);
maxpool_class!(PyMaxPool2d, "MaxPool2d", 2);
avgpool_class!(PyAvgPool1d, "AvgPool1d", 1);
avgpool_class!(PyAvgPool2d, "AvgPool2d", 2);

layer!(
    /// AdaptiveAvgPool2d(output_size): int or (h, w).
    PyAdaptiveAvgPool2d,
    "AdaptiveAvgPool2d",
    (output_size),
    |output_size: &Bound<'_, PyAny>| nn::AdaptivePool2d::new(
        false,
        pair(output_size, "output_size")?
    )
    .py()?
);

layer!(
    /// AdaptiveMaxPool2d(output_size): int or (h, w).
    PyAdaptiveMaxPool2d,
    "AdaptiveMaxPool2d",
    (output_size),
    |output_size: &Bound<'_, PyAny>| nn::AdaptivePool2d::new(
        true,
        pair(output_size, "output_size")?
    )
    .py()?
);

layer!(
    /// PixelShuffle(upscale_factor): [N, C·r², H, W] → [N, C, H·r, W·r].
    PyPixelShuffle,
    "PixelShuffle",
    (upscale_factor),
    |upscale_factor: i64| nn::PixelShuffle::new(upscale_factor, false).py()?
);

layer!(
    /// PixelUnshuffle(downscale_factor): the inverse of PixelShuffle.
    PyPixelUnshuffle,
    "PixelUnshuffle",
    (downscale_factor),
    |downscale_factor: i64| nn::PixelShuffle::new(downscale_factor, true).py()?
);

layer!(
    /// Upsample(size=None, scale_factor=None, mode="nearest", align_corners=False).
    PyUpsample,
    "Upsample",
    (
        size = None,
        scale_factor = None,
        mode = "nearest",
        align_corners = None
    ),
    |size: Option<&Bound<'_, PyAny>>,
     scale_factor: Option<&Bound<'_, PyAny>>,
     mode: &str,
     align_corners: Option<bool>| {
        let mode = match mode {
            "nearest" => nn::UpsampleMode::Nearest,
            "bilinear" => nn::UpsampleMode::Bilinear,
            "bicubic" => nn::UpsampleMode::Bicubic,
            m => {
                return Err(raise(
                    Exc::Config,
                    format!("Upsample: mode must be 'nearest', 'bilinear' or 'bicubic', got '{m}'"),
                ))
            }
        };
        let size = size.map(|s| pair(s, "size")).transpose()?;
        let scale = match scale_factor {
            None => None,
            Some(f) => Some(if let Ok(v) = f.extract::<f64>() {
                [v, v]
            } else {
                let v: Vec<f64> = f.extract().map_err(|_| {
                    raise(
                        Exc::InputType,
                        format!("scale_factor: expected a float or 2 floats, got {f}"),
                    )
                })?;
                if v.len() != 2 {
                    return Err(raise(
                        Exc::InputType,
                        format!("scale_factor: expected 2 floats, got {}", v.len()),
                    ));
                }
                [v[0], v[1]]
            }),
        };
        nn::Upsample::new(size, scale, mode, align_corners.unwrap_or(false)).py()?
    }
);

fn window(
    kernel_size: &Bound<'_, PyAny>,
    dilation: &Bound<'_, PyAny>,
    padding: &Bound<'_, PyAny>,
    stride: &Bound<'_, PyAny>,
) -> PyResult<nn::Window> {
    Ok(nn::Window {
        kernel: pair(kernel_size, "kernel_size")?,
        dilation: pair(dilation, "dilation")?,
        padding: pair(padding, "padding")?,
        stride: pair(stride, "stride")?,
    })
}

layer!(
    /// Unfold(kernel_size, dilation=1, padding=0, stride=1): sliding blocks.
    PyUnfold,
    "Unfold",
    (kernel_size, dilation = None, padding = None, stride = None),
    |py: Python<'_>,
     kernel_size: &Bound<'_, PyAny>,
     dilation: Option<&Bound<'_, PyAny>>,
     padding: Option<&Bound<'_, PyAny>>,
     stride: Option<&Bound<'_, PyAny>>| {
        let one = 1i64.into_pyobject(py)?.into_any();
        let zero = 0i64.into_pyobject(py)?.into_any();
        let w = window(
            kernel_size,
            dilation.unwrap_or(&one),
            padding.unwrap_or(&zero),
            stride.unwrap_or(&one),
        )?;
        nn::Unfold::new(w).py()?
    }
);

layer!(
    /// Fold(output_size, kernel_size, dilation=1, padding=0, stride=1): sums blocks back.
    PyFold,
    "Fold",
    (
        output_size,
        kernel_size,
        dilation = None,
        padding = None,
        stride = None
    ),
    |py: Python<'_>,
     output_size: &Bound<'_, PyAny>,
     kernel_size: &Bound<'_, PyAny>,
     dilation: Option<&Bound<'_, PyAny>>,
     padding: Option<&Bound<'_, PyAny>>,
     stride: Option<&Bound<'_, PyAny>>| {
        let one = 1i64.into_pyobject(py)?.into_any();
        let zero = 0i64.into_pyobject(py)?.into_any();
        let w = window(
            kernel_size,
            dilation.unwrap_or(&one),
            padding.unwrap_or(&zero),
            stride.unwrap_or(&one),
        )?;
        nn::Fold::new(pair(output_size, "output_size")?, w).py()?
    }
);

layer!(
    /// Flatten(start_dim=1, end_dim=-1).
    PyFlatten,
    "Flatten",
    (start_dim = 1, end_dim = -1),
    |start_dim: i64, end_dim: i64| nn::Flatten::new(start_dim, end_dim)
);

fn pad4(ob: &Bound<'_, PyAny>) -> PyResult<[i64; 4]> {
    let v = ints(ob, 4, "padding")?;
    Ok([v[0], v[1], v[2], v[3]])
}

layer!(
    /// ZeroPad2d(padding): int or (left, right, top, bottom).
    PyZeroPad2d, "ZeroPad2d", (padding), |padding: &Bound<
    '_,
    PyAny,
>| nn::Pad2d::new(
    nn::PadMode::Zero,
    pad4(padding)?
)
.py()?);

layer!(
    /// ReflectionPad2d(padding): int or (left, right, top, bottom).
    PyReflectionPad2d,
    "ReflectionPad2d",
    (padding),
    |padding: &Bound<'_, PyAny>| nn::Pad2d::new(nn::PadMode::Reflection, pad4(padding)?).py()?
);

fn shape_arg(ob: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(v) = ob.extract::<i64>() {
        return Ok(vec![v]);
    }
    ob.extract::<Vec<i64>>().map_err(|_| {
        raise(
            Exc::InputType,
            format!("shape: expected a sequence of ints, got {ob}"),
        )
    })
}

fn init_out(py: Python<'_>, t: crate::Result<Tensor>) -> PyResult<PyObject> {
    to_py(py, &t.py()?)
}

/// kaiming_uniform(shape, fan_in, a=0.0, device=None): U(±√(6/((1+a²)·fan_in))).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, a = 0.0, device = None))]
fn init_kaiming_uniform(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    a: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::kaiming_uniform(&shape_arg(shape)?, fan_in, a, device_arg(device)?),
    )
}

/// kaiming_normal(shape, fan_in, a=0.0, device=None): N(0, 2/((1+a²)·fan_in)).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, a = 0.0, device = None))]
fn init_kaiming_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    a: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::kaiming_normal(&shape_arg(shape)?, fan_in, a, device_arg(device)?),
    )
}

/// xavier_uniform(shape, fan_in, fan_out, gain=1.0, device=None).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, fan_out, gain = 1.0, device = None))]
fn init_xavier_uniform(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    fan_out: i64,
    gain: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::xavier_uniform(
            &shape_arg(shape)?,
            fan_in,
            fan_out,
            gain,
            device_arg(device)?,
        ),
    )
}

/// xavier_normal(shape, fan_in, fan_out, gain=1.0, device=None).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, fan_out, gain = 1.0, device = None))]
fn init_xavier_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    fan_out: i64,
    gain: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::xavier_normal(
            &shape_arg(shape)?,
            fan_in,
            fan_out,
            gain,
            device_arg(device)?,
        ),
    )
}

/// orthogonal(shape, gain=1.0, device=None).
#[pyfunction]
#[pyo3(signature = (shape, gain = 1.0, device = None))]
fn init_orthogonal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    gain: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::orthogonal(&shape_arg(shape)?, gain, device_arg(device)?),
    )
}

/// trunc_normal(shape, mean=0, std=1, a=-2, b=2, device=None); bounds in std units.
#[pyfunction]
#[pyo3(signature = (shape, mean = 0.0, std = 1.0, a = -2.0, b = 2.0, device = None))]
fn init_trunc_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::trunc_normal(&shape_arg(shape)?, mean, std, a, b, device_arg(device)?),
    )
}

/// uniform(shape, low=0, high=1, device=None).
#[pyfunction]
#[pyo3(signature = (shape, low = 0.0, high = 1.0, device = None))]
fn init_uniform(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    low: f64,
    high: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::uniform(&shape_arg(shape)?, low, high, device_arg(device)?),
    )
}

/// normal(shape, mean=0, std=1, device=None).
#[pyfunction]
#[pyo3(signature = (shape, mean = 0.0, std = 1.0, device = None))]
fn init_normal(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    mean: f64,
    std: f64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::normal(&shape_arg(shape)?, mean, std, device_arg(device)?),
    )
}

/// uniform_bias(shape, fan_in, device=None): U(±1/√fan_in).
#[pyfunction]
#[pyo3(signature = (shape, fan_in, device = None))]
fn init_uniform_bias(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fan_in: i64,
    device: Option<&str>,
) -> PyResult<PyObject> {
    init_out(
        py,
        init::uniform_bias(&shape_arg(shape)?, fan_in, device_arg(device)?),
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySigmoid>()?;
    m.add_class::<PyTanh>()?;
    m.add_class::<PySilu>()?;
    m.add_class::<PyMish>()?;
    m.add_class::<PySelu>()?;
    m.add_class::<PyHardswish>()?;
    m.add_class::<PyHardsigmoid>()?;
    m.add_class::<PyLeakyRelu>()?;
    m.add_class::<PyElu>()?;
    m.add_class::<PySoftplus>()?;
    m.add_class::<PySoftmax>()?;
    m.add_class::<PyLogSoftmax>()?;
    m.add_class::<PyPRelu>()?;
    m.add_class::<PyConv1d>()?;
    m.add_class::<PyConv2d>()?;
    m.add_class::<PyConv3d>()?;
    m.add_class::<PyConvTranspose1d>()?;
    m.add_class::<PyConvTranspose2d>()?;
    m.add_class::<PyConvTranspose3d>()?;
    m.add_class::<PyRmsNorm>()?;
    m.add_class::<PyBatchNorm>()?;
    m.add_class::<PyBatchNorm2d>()?;
    m.add_class::<PyGroupNorm>()?;
    m.add_class::<PyInstanceNorm>()?;
    m.add_class::<PyDropout>()?;
    m.add_class::<PyDropout2d>()?;
    m.add_class::<PyAlphaDropout>()?;
    m.add_class::<PyEmbedding>()?;
    m.add_class::<PyEmbeddingBag>()?;
    m.add_class::<PyGruCell>()?;
    m.add_class::<PyLstmCell>()?;
    m.add_class::<PyGru>()?;
    m.add_class::<PyLstm>()?;
    m.add_class::<PyMha>()?;
    m.add_class::<PyBilinear>()?;
    m.add_class::<PyMaxPool1d>()?;
    m.add_class::<PyMaxPool2d>()?;
    m.add_class::<PyAvgPool1d>()?;
    m.add_class::<PyAvgPool2d>()?;
    m.add_class::<PyAdaptiveAvgPool2d>()?;
    m.add_class::<PyAdaptiveMaxPool2d>()?;
    m.add_class::<PyPixelShuffle>()?;
    m.add_class::<PyPixelUnshuffle>()?;
    m.add_class::<PyUpsample>()?;
    m.add_class::<PyUnfold>()?;
    m.add_class::<PyFold>()?;
    m.add_class::<PyFlatten>()?;
    m.add_class::<PyZeroPad2d>()?;
    m.add_class::<PyReflectionPad2d>()?;
    m.add_function(wrap_pyfunction!(init_kaiming_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(init_kaiming_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_xavier_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(init_xavier_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_orthogonal, m)?)?;
    m.add_function(wrap_pyfunction!(init_trunc_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_uniform, m)?)?;
    m.add_function(wrap_pyfunction!(init_normal, m)?)?;
    m.add_function(wrap_pyfunction!(init_uniform_bias, m)?)?;
    Ok(())
}
