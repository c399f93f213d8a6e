//! Recurrent layers: GRUCell, LSTMCell (one step) and GRU, LSTM (whole
//! sequences through libtorch's fused `at::gru` / `at::lstm`).
//!
//! Raw parameter names are floDl's: `w_ih, w_hh, b_ih, b_hh` per cell, and
//! per layer for GRU/LSTM (a graph then numbers the repeats `w_ih_0, ...`).
//! All are U(±1/√hidden), drawn in that order, as torch.nn does.

use tch::{Device, Tensor};

use super::{check_input, check_kind, init, param, positive, Module, Parameter};
use crate::tensor::{shape_str, SharedTensor};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnKind {
    Gru,
    Lstm,
}

impl RnnKind {
    fn gates(self) -> i64 {
        match self {
            RnnKind::Gru => 3,
            RnnKind::Lstm => 4,
        }
    }
}

/// w_ih [g·H, in], w_hh [g·H, H], b_ih, b_hh [g·H], all U(±1/√H).
fn cell_params(
    kind: RnnKind,
    input: i64,
    hidden: i64,
    bias: bool,
    device: Device,
) -> Result<Vec<SharedTensor>> {
    let g = kind.gates() * hidden;
    let b = 1.0 / (hidden as f64).sqrt();
    let mut shapes = vec![vec![g, input], vec![g, hidden]];
    if bias {
        shapes.push(vec![g]);
        shapes.push(vec![g]);
    }
    shapes
        .iter()
        .map(|s| {
            Ok(SharedTensor::new(init::into_param(init::uniform(
                s, -b, b, device,
            )?)?))
        })
        .collect()
}

const NAMES: [&str; 4] = ["w_ih", "w_hh", "b_ih", "b_hh"];

fn named(ps: &[SharedTensor]) -> Vec<Parameter> {
    ps.iter().zip(NAMES).map(|(t, n)| param(n, t)).collect()
}

/// Checks a [B, H] state against the input's batch, dtype and hidden size.
fn check_state(
    what: &str,
    s: &Tensor,
    name: &str,
    batch: i64,
    hidden: i64,
    x: &Tensor,
) -> Result<()> {
    if s.size() != [batch, hidden] {
        return Err(Error::Shape(format!(
            "{what}: expected {name} of shape [{batch}, {hidden}], got {}",
            shape_str(s)
        )));
    }
    if s.f_kind()? != x.f_kind()? {
        return Err(Error::DType(format!(
            "{what}: {name} dtype differs from the input's"
        )));
    }
    Ok(())
}

/// One GRU step (floDl name `grucell`); `forward` starts from h = 0.
pub struct GruCell {
    input: i64,
    hidden: i64,
    params: Vec<SharedTensor>,
}

impl GruCell {
    pub fn new(input: i64, hidden: i64, bias: bool, device: Device) -> Result<Self> {
        positive("GRUCell", "input_size", input)?;
        positive("GRUCell", "hidden_size", hidden)?;
        Ok(GruCell {
            input,
            hidden,
            params: cell_params(RnnKind::Gru, input, hidden, bias, device)?,
        })
    }
    pub fn param(&self, i: usize) -> Option<Tensor> {
        self.params.get(i).map(|t| t.handle())
    }
    pub fn input(&self) -> i64 {
        self.input
    }
    pub fn hidden(&self) -> i64 {
        self.hidden
    }
    /// The parameters as read now (substitutes resolved once), for a caller
    /// that runs many steps (`Unroll`).
    pub(crate) fn weights(&self) -> Vec<Tensor> {
        self.params.iter().map(|t| t.handle()).collect()
    }

    /// h' = GRU(x, h); `h` None means zeros.
    pub fn forward_step(&self, x: &Tensor, h: Option<&Tensor>) -> Result<Tensor> {
        let size = check_input(self, x, &[2], "[batch, input_size]")?;
        super::check_dim(self, x, 1, self.input, "input features")?;
        let p: Vec<Tensor> = self.params.iter().map(SharedTensor::handle).collect();
        check_kind(self, x, &p[0])?;
        let h = match h {
            Some(h) => {
                check_state(&self.describe(), h, "h", size[0], self.hidden, x)?;
                h.shallow_clone()
            }
            None => x.f_new_zeros([size[0], self.hidden], (x.f_kind()?, x.device()))?,
        };
        Ok(x.f_gru_cell(&h, &p[0], &p[1], p.get(2), p.get(3))?)
    }
}

impl Module for GruCell {
    fn name(&self) -> &str {
        "grucell"
    }
    fn describe(&self) -> String {
        format!("GRUCell({}, {})", self.input, self.hidden)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_step(x, None)
    }
    fn parameters(&self) -> Vec<Parameter> {
        named(&self.params)
    }
}

/// One LSTM step (floDl name `lstmcell`); `forward` starts from zeros and
/// returns h only.
pub struct LstmCell {
    input: i64,
    hidden: i64,
    params: Vec<SharedTensor>,
}

impl LstmCell {
    pub fn new(input: i64, hidden: i64, bias: bool, device: Device) -> Result<Self> {
        positive("LSTMCell", "input_size", input)?;
        positive("LSTMCell", "hidden_size", hidden)?;
        Ok(LstmCell {
            input,
            hidden,
            params: cell_params(RnnKind::Lstm, input, hidden, bias, device)?,
        })
    }
    pub fn param(&self, i: usize) -> Option<Tensor> {
        self.params.get(i).map(|t| t.handle())
    }
    pub fn hidden(&self) -> i64 {
        self.hidden
    }
    pub fn input(&self) -> i64 {
        self.input
    }
    /// The parameters as read now (substitutes resolved once), for a caller
    /// that runs many steps (`Unroll`).
    pub(crate) fn weights(&self) -> Vec<Tensor> {
        self.params.iter().map(|t| t.handle()).collect()
    }

    /// (h', c') = LSTM(x, (h, c)); `state` None means zeros.
    pub fn forward_step(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, Tensor)> {
        let size = check_input(self, x, &[2], "[batch, input_size]")?;
        super::check_dim(self, x, 1, self.input, "input features")?;
        let p: Vec<Tensor> = self.params.iter().map(SharedTensor::handle).collect();
        check_kind(self, x, &p[0])?;
        let (h, c) = match state {
            Some((h, c)) => {
                let what = self.describe();
                check_state(&what, h, "h", size[0], self.hidden, x)?;
                check_state(&what, c, "c", size[0], self.hidden, x)?;
                (h.shallow_clone(), c.shallow_clone())
            }
            None => (
                x.f_new_zeros([size[0], self.hidden], (x.f_kind()?, x.device()))?,
                x.f_new_zeros([size[0], self.hidden], (x.f_kind()?, x.device()))?,
            ),
        };
        Ok(x.f_lstm_cell(&[&h, &c], &p[0], &p[1], p.get(2), p.get(3))?)
    }

    /// floDl's packed form: state and result are cat(h, c) of shape [B, 2H].
    pub fn forward_packed(&self, x: &Tensor, state: Option<&Tensor>) -> Result<Tensor> {
        let (h, c) = match state {
            Some(s) => {
                let b = x.size().first().copied().unwrap_or(0);
                if s.size() != [b, 2 * self.hidden] {
                    return Err(Error::Shape(format!(
                        "{}: expected a packed state cat(h, c) of shape [{b}, {}], got {}",
                        self.describe(),
                        2 * self.hidden,
                        shape_str(s)
                    )));
                }
                (
                    s.f_narrow(1, 0, self.hidden)?,
                    s.f_narrow(1, self.hidden, self.hidden)?,
                )
            }
            None => {
                let (h, c) = self.forward_step(x, None)?;
                return Ok(Tensor::f_cat(&[h, c], 1)?);
            }
        };
        let (h, c) = self.forward_step(x, Some((&h, &c)))?;
        Ok(Tensor::f_cat(&[h, c], 1)?)
    }
}

impl Module for LstmCell {
    fn name(&self) -> &str {
        "lstmcell"
    }
    fn describe(&self) -> String {
        format!("LSTMCell({}, {})", self.input, self.hidden)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_step(x, None)?.0)
    }
    fn parameters(&self) -> Vec<Parameter> {
        named(&self.params)
    }
}

/// Multi-layer GRU or LSTM over whole sequences (floDl names `gru`, `lstm`).
pub struct Rnn {
    kind: RnnKind,
    input: i64,
    hidden: i64,
    layers: i64,
    batch_first: bool,
    bias: bool,
    params: Vec<Vec<SharedTensor>>,
}

impl Rnn {
    pub fn new(
        kind: RnnKind,
        input: i64,
        hidden: i64,
        layers: i64,
        batch_first: bool,
        bias: bool,
        device: Device,
    ) -> Result<Self> {
        let what = match kind {
            RnnKind::Gru => "GRU",
            RnnKind::Lstm => "LSTM",
        };
        positive(what, "input_size", input)?;
        positive(what, "hidden_size", hidden)?;
        positive(what, "num_layers", layers)?;
        let params = (0..layers)
            .map(|l| {
                cell_params(
                    kind,
                    if l == 0 { input } else { hidden },
                    hidden,
                    bias,
                    device,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Rnn {
            kind,
            input,
            hidden,
            layers,
            batch_first,
            bias,
            params,
        })
    }
    pub fn kind(&self) -> RnnKind {
        self.kind
    }
    pub fn batch_first(&self) -> bool {
        self.batch_first
    }
    pub fn layers(&self) -> i64 {
        self.layers
    }

    /// Runs the sequence from `state` (GRU: [h0]; LSTM: [h0, c0], each
    /// [layers, B, H]; None means zeros). Returns the output and the final
    /// state in the same form.
    pub fn forward_seq(
        &self,
        x: &Tensor,
        state: Option<&[Tensor]>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let layout = if self.batch_first {
            "[batch, seq, input_size]"
        } else {
            "[seq, batch, input_size]"
        };
        let size = check_input(self, x, &[3], layout)?;
        super::check_dim(self, x, 2, self.input, "input features")?;
        let flat: Vec<Tensor> = self
            .params
            .iter()
            .flatten()
            .map(SharedTensor::handle)
            .collect();
        check_kind(self, x, &flat[0])?;
        let batch = if self.batch_first { size[0] } else { size[1] };
        let want = [self.layers, batch, self.hidden];
        let n_state = if self.kind == RnnKind::Lstm { 2 } else { 1 };
        let state: Vec<Tensor> = match state {
            Some(s) => {
                if s.len() != n_state {
                    return Err(Error::Value(format!(
                        "{}: expected {n_state} initial state tensor(s), got {}",
                        self.describe(),
                        s.len()
                    )));
                }
                for t in s {
                    if t.size() != want {
                        return Err(Error::Shape(format!(
                            "{}: expected an initial state of shape {want:?}, got {}",
                            self.describe(),
                            shape_str(t)
                        )));
                    }
                    check_kind(self, t, &flat[0])?;
                }
                s.iter().map(|t| t.shallow_clone()).collect()
            }
            None => (0..n_state)
                .map(|_| x.f_new_zeros(want, (x.f_kind()?, x.device())))
                .collect::<std::result::Result<_, _>>()?,
        };
        match self.kind {
            RnnKind::Gru => {
                let (out, h) = x.f_gru(
                    &state[0],
                    &flat,
                    self.bias,
                    self.layers,
                    0.0,
                    false,
                    false,
                    self.batch_first,
                )?;
                Ok((out, vec![h]))
            }
            RnnKind::Lstm => {
                let hx: Vec<&Tensor> = state.iter().collect();
                let (out, h, c) = x.f_lstm(
                    &hx,
                    &flat.iter().collect::<Vec<_>>(),
                    self.bias,
                    self.layers,
                    0.0,
                    false,
                    false,
                    self.batch_first,
                )?;
                Ok((out, vec![h, c]))
            }
        }
    }
}

impl Module for Rnn {
    fn name(&self) -> &str {
        match self.kind {
            RnnKind::Gru => "gru",
            RnnKind::Lstm => "lstm",
        }
    }
    fn describe(&self) -> String {
        let t = match self.kind {
            RnnKind::Gru => "GRU",
            RnnKind::Lstm => "LSTM",
        };
        format!(
            "{t}({}, {}, num_layers={})",
            self.input, self.hidden, self.layers
        )
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_seq(x, None)?.0)
    }
    fn parameters(&self) -> Vec<Parameter> {
        self.params.iter().flat_map(|l| named(l)).collect()
    }
}
