//! GRU and LSTM (cells and layers) over `crate::nn::rnn`.

use super::prelude::*;

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

/// The core cell behind `cell`: a GRUCell or LSTMCell (the extension class,
/// or a `ferrotorch.nn` layer whose forward is its Rust cell's).
fn unroll_cell(cell: &Bound<'_, PyAny>) -> PyResult<nn::UnrollCell> {
    let core = if cell.downcast::<PyModuleBase>().is_ok() {
        Some(cell.clone())
    } else if cell.hasattr(pyo3::intern!(cell.py(), "_ft_node"))? {
        let node = cell.call_method0(pyo3::intern!(cell.py(), "_ft_node"))?;
        if node.is_none() {
            return Err(raise(
                Exc::Config,
                format!(
                    "Unroll: cell {} runs Python (its own forward, hooks or replaced tensors); \
                     Unroll runs the Rust cell, so give a plain GRUCell or LSTMCell",
                    cell.get_type().name()?
                ),
            ));
        }
        Some(node)
    } else {
        None
    };
    if let Some(c) = &core {
        if let Ok(g) = c.downcast::<PyGruCell>() {
            return Ok(nn::UnrollCell::Gru(g.get().inner.clone()));
        }
        if let Ok(l) = c.downcast::<PyLstmCell>() {
            return Ok(nn::UnrollCell::Lstm(l.get().inner.clone()));
        }
    }
    Err(raise(
        Exc::InputType,
        format!(
            "Unroll: cell must be a ferrotorch GRUCell or LSTMCell, got {}",
            cell.get_type().name()?
        ),
    ))
}

/// Unroll(cell): runs a GRUCell or LSTMCell over the time axis of a batch-first
/// input [B, T, F] from zero state, in one Rust node; returns every step's
/// hidden state stacked, [B, T, H] (the GIL is released).
#[pyclass(name = "Unroll", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyUnroll;

#[pymethods]
impl PyUnroll {
    #[new]
    #[pyo3(signature = (cell))]
    fn new(cell: &Bound<'_, PyAny>) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(nn::Unroll::new(unroll_cell(cell)?));
        Ok(base(m).add_subclass(PyUnroll))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyUnroll>()?;
    m.add_class::<PyGruCell>()?;
    m.add_class::<PyLstmCell>()?;
    m.add_class::<PyGru>()?;
    m.add_class::<PyLstm>()?;
    Ok(())
}
