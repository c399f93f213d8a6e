//! Shape layers: Flatten, ZeroPad2d / ReflectionPad2d, PixelShuffle /
//! PixelUnshuffle, Upsample, Unfold, Fold.

use tch::Tensor;

use super::{check_input, Module};
use crate::tensor::shape_str;
use crate::{Error, Result};

fn shape_err(m: &dyn Module, msg: String, x: &Tensor) -> Error {
    Error::Shape(format!(
        "{}: {msg}, got shape {}",
        m.describe(),
        shape_str(x)
    ))
}

/// Flattens dims start..=end into one (floDl name `flatten`).
pub struct Flatten {
    start: i64,
    end: i64,
}

impl Flatten {
    pub fn new(start: i64, end: i64) -> Self {
        Flatten { start, end }
    }
}

impl Module for Flatten {
    fn name(&self) -> &str {
        "flatten"
    }
    fn describe(&self) -> String {
        format!("Flatten(start_dim={}, end_dim={})", self.start, self.end)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = (x.dim() as i64).max(1);
        let norm = |d: i64| if d < 0 { d + n } else { d };
        let (s, e) = (norm(self.start), norm(self.end));
        if s < 0 || s >= n || e < 0 || e >= n || s > e {
            return Err(shape_err(
                self,
                format!(
                    "start_dim {} / end_dim {} do not fit the input",
                    self.start, self.end
                ),
                x,
            ));
        }
        Ok(x.f_flatten(self.start, self.end)?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Zero,
    Reflection,
}

/// Pads the last two dims by (left, right, top, bottom) (floDl names
/// `zero_pad2d`, `reflection_pad2d`).
pub struct Pad2d {
    mode: PadMode,
    pad: [i64; 4],
}

impl Pad2d {
    pub fn new(mode: PadMode, pad: [i64; 4]) -> Result<Self> {
        if pad.iter().any(|&p| p < 0) {
            return Err(Error::Value(format!(
                "{}: padding must be non-negative, got {pad:?}",
                title(mode)
            )));
        }
        Ok(Pad2d { mode, pad })
    }
}

fn title(mode: PadMode) -> &'static str {
    match mode {
        PadMode::Zero => "ZeroPad2d",
        PadMode::Reflection => "ReflectionPad2d",
    }
}

impl Module for Pad2d {
    fn name(&self) -> &str {
        match self.mode {
            PadMode::Zero => "zero_pad2d",
            PadMode::Reflection => "reflection_pad2d",
        }
    }
    fn describe(&self) -> String {
        format!("{}({:?})", title(self.mode), self.pad)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = check_input(self, x, &[3, 4], "[N, C, H, W] or [C, H, W]")?;
        let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
        let [l, r, t, b] = self.pad;
        match self.mode {
            PadMode::Zero => Ok(x.f_constant_pad_nd(self.pad)?),
            PadMode::Reflection => {
                if l >= w || r >= w || t >= h || b >= h {
                    return Err(shape_err(
                        self,
                        "reflection padding must be smaller than the padded dimension".into(),
                        x,
                    ));
                }
                Ok(x.f_reflection_pad2d(self.pad)?)
            }
        }
    }
}

/// [N, C·r², H, W] ↔ [N, C, H·r, W·r] (floDl names `pixel_shuffle`,
/// `pixel_unshuffle`).
pub struct PixelShuffle {
    factor: i64,
    inverse: bool,
}

impl PixelShuffle {
    pub fn new(factor: i64, inverse: bool) -> Result<Self> {
        super::positive(
            if inverse {
                "PixelUnshuffle"
            } else {
                "PixelShuffle"
            },
            "factor",
            factor,
        )?;
        Ok(PixelShuffle { factor, inverse })
    }
}

impl Module for PixelShuffle {
    fn name(&self) -> &str {
        if self.inverse {
            "pixel_unshuffle"
        } else {
            "pixel_shuffle"
        }
    }
    fn describe(&self) -> String {
        let t = if self.inverse {
            "PixelUnshuffle"
        } else {
            "PixelShuffle"
        };
        format!("{t}({})", self.factor)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.size();
        if s.len() < 3 {
            return Err(shape_err(
                self,
                "expected an input [N, C, H, W] or [C, H, W]".into(),
                x,
            ));
        }
        let n = s.len();
        let r = self.factor;
        if self.inverse {
            if s[n - 2] % r != 0 || s[n - 1] % r != 0 {
                return Err(shape_err(
                    self,
                    format!("height and width must be divisible by {r}"),
                    x,
                ));
            }
            Ok(x.f_pixel_unshuffle(r)?)
        } else {
            if s[n - 3] % (r * r) != 0 {
                return Err(shape_err(
                    self,
                    format!("channels must be divisible by {}", r * r),
                    x,
                ));
            }
            Ok(x.f_pixel_shuffle(r)?)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    Nearest,
    Bilinear,
    Bicubic,
}

/// Resizes [N, C, H, W] to a fixed size or by scale factors (floDl name `upsample`).
pub struct Upsample {
    size: Option<[i64; 2]>,
    scale: Option<[f64; 2]>,
    mode: UpsampleMode,
    align_corners: bool,
}

impl Upsample {
    pub fn new(
        size: Option<[i64; 2]>,
        scale: Option<[f64; 2]>,
        mode: UpsampleMode,
        align_corners: bool,
    ) -> Result<Self> {
        match (size, scale) {
            (Some(s), None) if s.iter().all(|&v| v > 0) => {}
            (None, Some(f)) if f.iter().all(|&v| v > 0.0 && v.is_finite()) => {}
            _ => {
                return Err(Error::Value(format!(
                    "Upsample: give exactly one of a positive size or scale_factor, got size={size:?}, scale_factor={scale:?}"
                )))
            }
        }
        if align_corners && mode == UpsampleMode::Nearest {
            return Err(Error::Value(
                "Upsample: align_corners applies to bilinear and bicubic modes only".into(),
            ));
        }
        Ok(Upsample {
            size,
            scale,
            mode,
            align_corners,
        })
    }
}

impl Module for Upsample {
    fn name(&self) -> &str {
        "upsample"
    }
    fn describe(&self) -> String {
        format!(
            "Upsample(size={:?}, scale_factor={:?}, mode={:?})",
            self.size, self.scale, self.mode
        )
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = check_input(self, x, &[4], "[N, C, H, W]")?;
        // As torch.nn.functional.interpolate: the size is floor(in·scale) and
        // the scales themselves go to the kernel.
        let (out, sh, sw) = match (self.size, self.scale) {
            (Some(sz), _) => (sz, None, None),
            (None, Some([fh, fw])) => (
                [
                    (s[2] as f64 * fh).floor() as i64,
                    (s[3] as f64 * fw).floor() as i64,
                ],
                Some(fh),
                Some(fw),
            ),
            (None, None) => return Err(Error::Value("Upsample: no size or scale_factor".into())),
        };
        if out.iter().any(|&v| v <= 0) {
            return Err(shape_err(self, "the output size would be empty".into(), x));
        }
        Ok(match self.mode {
            UpsampleMode::Nearest => x.f_upsample_nearest2d(out, sh, sw)?,
            UpsampleMode::Bilinear => x.f_upsample_bilinear2d(out, self.align_corners, sh, sw)?,
            UpsampleMode::Bicubic => x.f_upsample_bicubic2d(out, self.align_corners, sh, sw)?,
        })
    }
}

/// Sliding-window geometry shared by Unfold and Fold.
#[derive(Clone, Debug)]
pub struct Window {
    pub kernel: [i64; 2],
    pub dilation: [i64; 2],
    pub padding: [i64; 2],
    pub stride: [i64; 2],
}

impl Window {
    fn check(&self, what: &str) -> Result<()> {
        if self
            .kernel
            .iter()
            .chain(&self.dilation)
            .chain(&self.stride)
            .any(|&v| v <= 0)
            || self.padding.iter().any(|&v| v < 0)
        {
            return Err(Error::Value(format!(
                "{what}: kernel_size, dilation and stride must be positive and padding non-negative, got {self:?}"
            )));
        }
        Ok(())
    }
    /// Number of block positions along each spatial dim of an [h, w] image.
    fn blocks(&self, hw: [i64; 2]) -> [i64; 2] {
        let f = |i: usize| {
            (hw[i] + 2 * self.padding[i] - self.dilation[i] * (self.kernel[i] - 1) - 1)
                / self.stride[i]
                + 1
        };
        [f(0), f(1)]
    }
}

/// Extracts sliding blocks: [N, C, H, W] → [N, C·kh·kw, L] (floDl name `unfold`).
pub struct Unfold {
    w: Window,
}

impl Unfold {
    pub fn new(w: Window) -> Result<Self> {
        w.check("Unfold")?;
        Ok(Unfold { w })
    }
}

impl Module for Unfold {
    fn name(&self) -> &str {
        "unfold"
    }
    fn describe(&self) -> String {
        format!("Unfold(kernel_size={:?})", self.w.kernel)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = check_input(self, x, &[4], "[N, C, H, W]")?;
        if self.w.blocks([s[2], s[3]]).iter().any(|&b| b <= 0) {
            return Err(shape_err(
                self,
                "the kernel does not fit the padded input".into(),
                x,
            ));
        }
        let w = &self.w;
        Ok(x.f_im2col(w.kernel, w.dilation, w.padding, w.stride)?)
    }
}

/// Sums sliding blocks back: [N, C·kh·kw, L] → [N, C, H, W] (floDl name `fold`).
pub struct Fold {
    output: [i64; 2],
    w: Window,
}

impl Fold {
    pub fn new(output: [i64; 2], w: Window) -> Result<Self> {
        w.check("Fold")?;
        if output.iter().any(|&v| v <= 0) {
            return Err(Error::Value(format!(
                "Fold: output_size must be positive, got {output:?}"
            )));
        }
        Ok(Fold { output, w })
    }
}

impl Module for Fold {
    fn name(&self) -> &str {
        "fold"
    }
    fn describe(&self) -> String {
        format!(
            "Fold(output_size={:?}, kernel_size={:?})",
            self.output, self.w.kernel
        )
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = check_input(self, x, &[3], "[N, C·kh·kw, L]")?;
        let kk = self.w.kernel[0] * self.w.kernel[1];
        let [bh, bw] = self.w.blocks(self.output);
        if s[1] % kk != 0 || s[2] != bh * bw || bh <= 0 || bw <= 0 {
            return Err(shape_err(
                self,
                format!(
                    "expected [N, C·{kk}, {}] (C·kh·kw channels, {bh}×{bw} blocks)",
                    bh * bw
                ),
                x,
            ));
        }
        let w = &self.w;
        Ok(x.f_col2im(self.output, w.kernel, w.dilation, w.padding, w.stride)?)
    }
}

/// `x.select(dim, index)` as a node (name `select`): drops dimension `dim`
/// keeping position `index`; negative `dim` and `index` count from the end.
pub struct Select {
    dim: i64,
    index: i64,
}

impl Select {
    pub fn new(dim: i64, index: i64) -> Self {
        Select { dim, index }
    }
}

impl Module for Select {
    fn name(&self) -> &str {
        "select"
    }
    fn describe(&self) -> String {
        format!("Select(dim={}, index={})", self.dim, self.index)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.size();
        let n = s.len() as i64;
        let d = if self.dim < 0 { self.dim + n } else { self.dim };
        if d < 0 || d >= n {
            return Err(shape_err(
                self,
                format!(
                    "dim {} is out of range for a {n}-D input (expected -{n}..{})",
                    self.dim,
                    n - 1
                ),
                x,
            ));
        }
        let len = s[d as usize];
        let i = if self.index < 0 {
            self.index + len
        } else {
            self.index
        };
        if i < 0 || i >= len {
            return Err(Error::OutOfRange(format!(
                "{}: index {} is out of range for dimension {} of size {len}, got shape {}",
                self.describe(),
                self.index,
                self.dim,
                shape_str(x)
            )));
        }
        Ok(x.f_select(self.dim, self.index)?)
    }
}

#[cfg(test)]
mod select_tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn select_matches_tensor_select_and_checks_its_arguments() {
        let x = Tensor::randn([2, 3, 4], (Kind::Float, Device::Cpu));
        for (d, i) in [(1, 2), (1, -1), (-1, 0), (0, -2)] {
            let y = Select::new(d, i).forward(&x).unwrap();
            assert!(y.equal(&x.select(d, i)));
        }
        assert!(matches!(
            Select::new(3, 0).forward(&x),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            Select::new(1, 3).forward(&x),
            Err(Error::OutOfRange(_))
        ));
        assert!(matches!(
            Select::new(1, -4).forward(&x),
            Err(Error::OutOfRange(_))
        ));
    }
}
