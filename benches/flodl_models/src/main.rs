//! floDl's own Rust training loop on the five benchmark models of
//! `benches/vs_pytorch.py`, at its CPU size (width D=64, batch 32, 4 fixed
//! random batches, Adam lr 1e-3, MSE loss, loss read to the host every step).
//!
//! The architectures are floDl's benchmark models (benchmarks/src/tier1/mlp.rs
//! and tier2/*.rs in the floDl repository) shrunk to D=64, exactly as the
//! `ft_*` builders of vs_pytorch.py describe them. The step is the one of
//! floDl's benchmark harness: forward, mse_loss, zero_grad, backward,
//! optimizer.step, loss.item(). floDl needs no end_step/detach per step for
//! these models (its harness calls none).
//!
//! floDl has no set_num_threads; run with OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
//! for one intra-op thread (libtorch's OpenMP pool reads them at start-up).
//!
//! Output, one line per model on stdout:
//!     FLODL <model> <median_us_per_step> <min_us> <max_us>
//! where median/min/max are over the timed rounds (each round = `--steps`
//! steps, its figure = round time / steps). Loss notes go to stderr.
//!
//! Usage: flodl_models [--rounds N] [--steps M] [--warmup W] [--model NAME]
//!
//! `--serve --model NAME`: build and warm up one model, print `READY <params>`,
//! then for each line `N` on stdin run N steps and print their total
//! microseconds (`quit` or end of input stops). vs_flodl.py uses it to
//! alternate floDl and ferrotorch in short chunks, so both meet the same
//! machine speed.

use std::process::ExitCode;
use std::time::Instant;

use flodl::*;

const D: i64 = 64;
const BATCH: i64 = 32;
const N_BATCHES: usize = 4;
const LR: f64 = 1e-3;
const MODELS: [&str; 5] = [
    "mlp",
    "residual_tower",
    "gated_routing",
    "feedback_fixed",
    "iterative_refine",
];

/// Linear(D,D), GELU, LayerNorm(D) as a nested graph (fresh weights).
fn block() -> Result<Graph> {
    FlowBuilder::from(Linear::new(D, D)?)
        .through(GELU)
        .through(LayerNorm::new(D)?)
        .build()
}

fn mlp() -> Result<Graph> {
    let mut b = FlowBuilder::from(Linear::new(D, D)?)
        .through(GELU)
        .through(LayerNorm::new(D)?);
    for _ in 0..3 {
        b = b
            .through(Linear::new(D, D)?)
            .through(GELU)
            .through(LayerNorm::new(D)?);
    }
    b.through(Linear::new(D, D)?).build()
}

fn residual_tower() -> Result<Graph> {
    let mut b = FlowBuilder::from(Linear::new(D, D)?);
    for _ in 0..12 {
        b = b.also(block()?);
    }
    b.through(Linear::new(D, D)?).build()
}

fn gated_routing() -> Result<Graph> {
    let experts: Vec<Box<dyn Module>> = (0..8)
        .map(|_| block().map(|g| Box::new(g) as Box<dyn Module>))
        .collect::<Result<_>>()?;
    FlowBuilder::from(Linear::new(D, D)?)
        .through(GELU)
        .gate(SoftmaxRouter::new(D, 8)?, experts)
        .through(Linear::new(D, D)?)
        .build()
}

/// feedback_fixed (iters=10) / iterative_refine (iters=8): a loop node whose
/// body is a residual over ONE block shared by every iteration.
fn refine(iters: usize) -> Result<Graph> {
    let body = FlowBuilder::new().also(block()?).build()?;
    FlowBuilder::from(Linear::new(D, D)?)
        .through(GELU)
        .through(LayerNorm::new(D)?)
        .loop_body(body)
        .for_n(iters)
        .through(Linear::new(D, D)?)
        .build()
}

fn build(name: &str) -> Result<Graph> {
    match name {
        "mlp" => mlp(),
        "residual_tower" => residual_tower(),
        "gated_routing" => gated_routing(),
        "feedback_fixed" => refine(10),
        "iterative_refine" => refine(8),
        _ => unreachable!("model names are checked in main"),
    }
}

struct Args {
    rounds: usize,
    steps: usize,
    warmup: usize,
    model: Option<String>,
    serve: bool,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args { rounds: 10, steps: 200, warmup: 50, model: None, serve: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |s: String| s.parse::<usize>().map_err(|_| format!("{flag}: not a count: {s}"));
        match flag.as_str() {
            "--rounds" => a.rounds = num(val()?)?,
            "--steps" => a.steps = num(val()?)?,
            "--warmup" => a.warmup = num(val()?)?,
            "--serve" => a.serve = true,
            "--model" => {
                let m = val()?;
                if !MODELS.contains(&m.as_str()) {
                    return Err(format!("unknown model {m}; one of {}", MODELS.join(", ")));
                }
                a.model = Some(m);
            }
            "-h" | "--help" => {
                return Err(format!(
                    "usage: flodl_models [--rounds N] [--steps M] [--warmup W] [--model NAME]\n\
                     models: {}",
                    MODELS.join(", ")
                ))
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.serve && a.model.is_none() {
        return Err("--serve needs --model".into());
    }
    if a.rounds == 0 || a.steps == 0 {
        return Err("--rounds and --steps must be at least 1".into());
    }
    Ok(a)
}

/// Warm-up, then `rounds` timed rounds of `steps` steps; us/step per round.
/// Serving: warm-up, then chunks of steps on request (see the module docs).
fn bench(name: &str, args: &Args, batches: &[(Variable, Variable)]) -> Result<Vec<f64>> {
    let model = build(name)?;
    let params = model.parameters();
    let mut opt = Adam::new(&params, LR);
    model.train();

    let mut step = |i: usize| -> Result<f64> {
        let (x, y) = &batches[i % N_BATCHES];
        let pred = model.forward(x)?;
        let loss = mse_loss(&pred, y)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()?;
        loss.item()
    };

    let mut first = f64::NAN;
    for i in 0..args.warmup {
        let l = step(i)?;
        if i == 0 {
            first = l;
        }
    }
    let mut last = f64::NAN;
    let n_params: i64 = params.iter().map(|p| p.variable.numel()).sum();
    if args.serve {
        use std::io::{BufRead, Write};
        let mut out = std::io::stdout();
        let _ = writeln!(out, "READY {n_params}");
        let _ = out.flush();
        let mut done = 0usize;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let Ok(n) = line.trim().parse::<usize>() else { break };
            let t0 = Instant::now();
            for _ in 0..n {
                last = step(done)?;
                done += 1;
            }
            let _ = writeln!(out, "{:.3}", t0.elapsed().as_secs_f64() * 1e6);
            let _ = out.flush();
        }
        eprintln!("flodl_models: {name}: served {done} steps, last loss {last:.4}");
        return Ok(Vec::new());
    }
    let mut times = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let t0 = Instant::now();
        for i in 0..args.steps {
            last = step(i)?;
        }
        times.push(t0.elapsed().as_secs_f64() / args.steps as f64 * 1e6);
    }
    eprintln!("flodl_models: {name}: {n_params} params, loss {first:.4} (first warm-up step) -> {last:.4} (last step)");
    Ok(times)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn run(args: &Args) -> Result<()> {
    manual_seed(0);
    let opts = TensorOptions { dtype: DType::Float32, device: Device::CPU };
    let mut batches = Vec::with_capacity(N_BATCHES);
    for _ in 0..N_BATCHES {
        let x = Tensor::randn(&[BATCH, D], opts)?;
        let y = Tensor::randn(&[BATCH, D], opts)?;
        batches.push((Variable::new(x, false), Variable::new(y, false)));
    }
    let names: Vec<&str> = match &args.model {
        Some(m) => vec![m.as_str()],
        None => MODELS.to_vec(),
    };
    for name in names {
        let t = bench(name, args, &batches)?;
        if args.serve {
            continue;
        }
        let lo = t.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = t.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        println!("FLODL {name} {:.3} {lo:.3} {hi:.3}", median(&t));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flodl_models: error: {e}");
            ExitCode::FAILURE
        }
    }
}
