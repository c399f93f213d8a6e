//! Unroll: a recurrent cell run over the time axis of a batch-first
//! sequence in one node (name `unroll`; floDl has no such module, its
//! benchmarks write the loop by hand).
//!
//! `forward(x)` with x [B, T, F] starts from zero state and returns every
//! step's hidden state stacked, [B, T, H]. It makes exactly the ATen calls of
//! torch's loop `h = zeros; for t: h = cell(x.select(1, t), h)` followed by
//! `torch.stack(hs, 1)` (LSTM: the state is (h, c), the output h), so values
//! and gradients are torch's bit for bit. The input is checked once; each
//! step is one `select` and one cell call. Raw parameter names are the
//! cell's behind `cell.` (`cell.w_ih`, ...).

use std::sync::Arc;

use tch::Tensor;

use super::{check_input, check_kind, GruCell, LstmCell, Module, Parameter};
use crate::tensor::shape_str;
use crate::{Error, Result};

/// The cells `Unroll` can run.
#[derive(Clone)]
pub enum UnrollCell {
    Gru(Arc<GruCell>),
    Lstm(Arc<LstmCell>),
}

impl UnrollCell {
    fn module(&self) -> &dyn Module {
        match self {
            UnrollCell::Gru(c) => &**c,
            UnrollCell::Lstm(c) => &**c,
        }
    }
    fn sizes(&self) -> (i64, i64) {
        match self {
            UnrollCell::Gru(c) => (c.input(), c.hidden()),
            UnrollCell::Lstm(c) => (c.input(), c.hidden()),
        }
    }
    fn weights(&self) -> Vec<Tensor> {
        match self {
            UnrollCell::Gru(c) => c.weights(),
            UnrollCell::Lstm(c) => c.weights(),
        }
    }
}

pub struct Unroll {
    cell: UnrollCell,
}

impl Unroll {
    pub fn new(cell: UnrollCell) -> Self {
        Unroll { cell }
    }

    pub fn cell(&self) -> &UnrollCell {
        &self.cell
    }
}

impl Module for Unroll {
    fn name(&self) -> &str {
        "unroll"
    }

    fn describe(&self) -> String {
        format!("Unroll({})", self.cell.module().describe())
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let size = check_input(self, x, &[3], "[batch, seq, input_size]")?;
        let (input, hidden) = self.cell.sizes();
        let w = self.cell.weights();
        if size[2] != input {
            return Err(Error::Shape(format!(
                "{}: expected input of shape [batch, seq, {input}], got {}",
                self.describe(),
                shape_str(x)
            )));
        }
        if size[1] == 0 {
            return Err(Error::Shape(format!(
                "{}: the sequence is empty (shape {})",
                self.describe(),
                shape_str(x)
            )));
        }
        check_kind(self, x, &w[0])?;
        let (b_ih, b_hh) = (w.get(2), w.get(3));
        let zeros = || x.f_new_zeros([size[0], hidden], (x.f_kind()?, x.device()));
        let mut outs = Vec::with_capacity(size[1] as usize);
        match &self.cell {
            UnrollCell::Gru(_) => {
                let mut h = zeros()?;
                for t in 0..size[1] {
                    h = x.f_select(1, t)?.f_gru_cell(&h, &w[0], &w[1], b_ih, b_hh)?;
                    outs.push(h.shallow_clone());
                }
            }
            UnrollCell::Lstm(_) => {
                let (mut h, mut c) = (zeros()?, zeros()?);
                for t in 0..size[1] {
                    (h, c) = x
                        .f_select(1, t)?
                        .f_lstm_cell(&[&h, &c], &w[0], &w[1], b_ih, b_hh)?;
                    outs.push(h.shallow_clone());
                }
            }
        }
        Ok(Tensor::f_stack(&outs, 1)?)
    }

    fn parameters(&self) -> Vec<Parameter> {
        self.cell
            .module()
            .parameters()
            .into_iter()
            .map(|p| Parameter {
                name: format!("cell.{}", p.name),
                tensor: p.tensor,
            })
            .collect()
    }

    fn sub_modules(&self) -> Vec<Arc<dyn Module>> {
        vec![match &self.cell {
            UnrollCell::Gru(c) => c.clone() as Arc<dyn Module>,
            UnrollCell::Lstm(c) => c.clone() as Arc<dyn Module>,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn loop_ref(cell: &UnrollCell, x: &Tensor) -> Tensor {
        let t = x.size()[1];
        let mut outs = Vec::new();
        match cell {
            UnrollCell::Gru(c) => {
                let mut h: Option<Tensor> = None;
                for i in 0..t {
                    let n = c.forward_step(&x.select(1, i), h.as_ref()).unwrap();
                    outs.push(n.shallow_clone());
                    h = Some(n);
                }
            }
            UnrollCell::Lstm(c) => {
                let mut s: Option<(Tensor, Tensor)> = None;
                for i in 0..t {
                    let (h, cc) = c
                        .forward_step(&x.select(1, i), s.as_ref().map(|(a, b)| (a, b)))
                        .unwrap();
                    outs.push(h.shallow_clone());
                    s = Some((h, cc));
                }
            }
        }
        Tensor::stack(&outs, 1)
    }

    #[test]
    fn unroll_equals_the_step_loop_bit_for_bit() {
        let x = Tensor::randn([3, 5, 4], (Kind::Float, Device::Cpu));
        let cells = [
            UnrollCell::Gru(Arc::new(GruCell::new(4, 6, true, Device::Cpu).unwrap())),
            UnrollCell::Lstm(Arc::new(LstmCell::new(4, 6, true, Device::Cpu).unwrap())),
        ];
        for cell in cells {
            let u = Unroll::new(cell.clone());
            let y = u.forward(&x).unwrap();
            assert_eq!(y.size(), [3, 5, 6]);
            assert!(y.equal(&loop_ref(&cell, &x)));
            let names: Vec<String> = u.parameters().into_iter().map(|p| p.name).collect();
            assert_eq!(names, ["cell.w_ih", "cell.w_hh", "cell.b_ih", "cell.b_hh"]);
        }
    }

    #[test]
    fn unroll_rejects_bad_inputs() {
        let u = Unroll::new(UnrollCell::Gru(Arc::new(
            GruCell::new(4, 6, true, Device::Cpu).unwrap(),
        )));
        for shape in [vec![3, 4], vec![3, 5, 3], vec![3, 0, 4]] {
            let x = Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu));
            assert!(matches!(u.forward(&x), Err(Error::Shape(_))));
        }
    }
}
