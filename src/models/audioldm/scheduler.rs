//! The noise schedulers AudioLDM checkpoints name in `scheduler/scheduler_config.json`:
//! diffusers' `DDIMScheduler` (deterministic, `eta = 0`) and `DPMSolverMultistepScheduler`
//! (DPM-Solver++ of order 1 to 3). Schedule arithmetic is done in f64 on the f32
//! cumulative products diffusers keeps, so timesteps and coefficients match it.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Deserializer};

/// `scheduler_config.json`: the union of the two schedulers' fields, with diffusers'
/// defaults. `_class_name` picks the scheduler.
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerConfig {
    #[serde(rename = "_class_name")]
    pub class_name: String,
    #[serde(default = "train_steps")]
    pub num_train_timesteps: usize,
    #[serde(default = "beta_start")]
    pub beta_start: f64,
    #[serde(default = "beta_end")]
    pub beta_end: f64,
    #[serde(default = "linear")]
    pub beta_schedule: String,
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    #[serde(default)]
    pub timestep_spacing: Option<String>,
    #[serde(default)]
    pub steps_offset: usize,
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
    #[serde(default)]
    pub thresholding: bool,
    // DDIM
    #[serde(default = "yes")]
    pub clip_sample: bool,
    #[serde(default = "one")]
    pub clip_sample_range: f64,
    #[serde(default = "yes")]
    pub set_alpha_to_one: bool,
    // DPM-Solver
    #[serde(default = "two")]
    pub solver_order: usize,
    #[serde(default = "dpmpp")]
    pub algorithm_type: String,
    #[serde(default = "midpoint")]
    pub solver_type: String,
    #[serde(default = "yes")]
    pub lower_order_final: bool,
    #[serde(default)]
    pub euler_at_final: bool,
    #[serde(default = "zero")]
    pub final_sigmas_type: String,
    #[serde(default, deserialize_with = "float_or_infinity")]
    pub lambda_min_clipped: Option<f64>,
    #[serde(default)]
    pub variance_type: Option<String>,
    #[serde(default)]
    pub use_karras_sigmas: bool,
    #[serde(default)]
    pub use_exponential_sigmas: bool,
    #[serde(default)]
    pub use_beta_sigmas: bool,
    #[serde(default)]
    pub use_lu_lambdas: bool,
    #[serde(default)]
    pub use_flow_sigmas: bool,
    #[serde(default)]
    pub use_dynamic_shifting: bool,
}

fn train_steps() -> usize {
    1000
}
fn beta_start() -> f64 {
    0.0001
}
fn beta_end() -> f64 {
    0.02
}
fn linear() -> String {
    "linear".into()
}
fn epsilon() -> String {
    "epsilon".into()
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn two() -> usize {
    2
}
fn dpmpp() -> String {
    "dpmsolver++".into()
}
fn midpoint() -> String {
    "midpoint".into()
}
fn zero() -> String {
    "zero".into()
}

/// diffusers writes `-Infinity` for an unclipped `lambda_min_clipped`; [`parse_config`]
/// turns such bare literals into strings, read back here.
fn float_or_infinity<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::Number(v)) => Ok(Some(v)),
        Some(Value::Text(t)) => match t.as_str() {
            "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
            "Infinity" => Ok(Some(f64::INFINITY)),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not a number"
            ))),
        },
    }
}

/// Parses a scheduler configuration, accepting the non-JSON literals `Infinity`,
/// `-Infinity` and `NaN` that Python's `json` module writes.
pub fn parse_config(text: &str) -> std::result::Result<SchedulerConfig, String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if let Some(lit) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|lit| rest.starts_with(lit))
        {
            out.push('"');
            out.push_str(lit);
            out.push('"');
            rest = &rest[lit.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str(&out).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Prediction {
    Epsilon,
    Sample,
    Velocity,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Spacing {
    Leading,
    Trailing,
    Linspace,
}

fn spacing(cfg: &SchedulerConfig, default: Spacing) -> std::result::Result<Spacing, String> {
    match cfg.timestep_spacing.as_deref() {
        None => Ok(default),
        Some("leading") => Ok(Spacing::Leading),
        Some("trailing") => Ok(Spacing::Trailing),
        Some("linspace") => Ok(Spacing::Linspace),
        Some(other) => Err(format!("unsupported timestep_spacing `{other}`")),
    }
}

/// The cumulative products of `1 - beta`, as f32 like diffusers keeps them.
fn alphas_cumprod(cfg: &SchedulerConfig) -> std::result::Result<Vec<f32>, String> {
    let n = cfg.num_train_timesteps;
    if n < 2 {
        return Err("num_train_timesteps must be at least 2".into());
    }
    let linspace = |a: f64, b: f64| -> Vec<f64> {
        (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect()
    };
    let mut betas: Vec<f32> = match (&cfg.trained_betas, cfg.beta_schedule.as_str()) {
        (Some(b), _) if b.len() == n => b.iter().map(|&v| v as f32).collect(),
        (Some(b), _) => {
            return Err(format!(
                "trained_betas has {} values for {n} timesteps",
                b.len()
            ));
        }
        (None, "linear") => linspace(cfg.beta_start, cfg.beta_end)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        (None, "scaled_linear") => linspace(cfg.beta_start.sqrt(), cfg.beta_end.sqrt())
            .into_iter()
            .map(|v| (v as f32) * (v as f32))
            .collect(),
        (None, "squaredcos_cap_v2") => {
            let bar = |t: f64| {
                ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
                    .cos()
                    .powi(2)
            };
            (0..n)
                .map(|i| {
                    let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
                    (1.0 - bar(t2) / bar(t1)).min(0.999) as f32
                })
                .collect()
        }
        (None, other) => return Err(format!("unsupported beta_schedule `{other}`")),
    };
    if cfg.rescale_betas_zero_snr {
        betas = rescale_zero_terminal_snr(&betas);
    }
    let mut acc = 1.0f32;
    Ok(betas
        .iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc
        })
        .collect())
}

/// diffusers' `rescale_zero_terminal_snr`: shifts the schedule so the last step is pure noise.
fn rescale_zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    let mut sqrt_bar: Vec<f64> = betas
        .iter()
        .map(|&b| {
            acc *= 1.0 - b as f64;
            acc.sqrt()
        })
        .collect();
    let (first, last) = (sqrt_bar[0], sqrt_bar[sqrt_bar.len() - 1]);
    for v in &mut sqrt_bar {
        *v = (*v - last) * first / (first - last);
    }
    let bar: Vec<f64> = sqrt_bar.iter().map(|v| v * v).collect();
    let mut out = Vec::with_capacity(bar.len());
    out.push((1.0 - bar[0]) as f32);
    for w in bar.windows(2) {
        out.push((1.0 - w[1] / w[0]) as f32);
    }
    out
}

fn prediction(cfg: &SchedulerConfig) -> std::result::Result<Prediction, String> {
    match cfg.prediction_type.as_str() {
        "epsilon" => Ok(Prediction::Epsilon),
        "sample" => Ok(Prediction::Sample),
        "v_prediction" => Ok(Prediction::Velocity),
        other => Err(format!("unsupported prediction_type `{other}`")),
    }
}

/// `a * x + b * y`, the one operation every update is made of.
fn axpby(a: f64, x: &Tensor, b: f64, y: &Tensor) -> Result<Tensor> {
    x.affine(a, 0.0)? + y.affine(b, 0.0)?
}

/// DDIM with `eta = 0`.
#[derive(Debug, Clone)]
pub struct Ddim {
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f64,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: usize,
    clip: Option<f64>,
    num_inference_steps: usize,
    timesteps: Vec<usize>,
}

impl Ddim {
    pub fn new(cfg: &SchedulerConfig) -> std::result::Result<Self, String> {
        if cfg.thresholding {
            return Err("thresholding is not supported".into());
        }
        let alphas_cumprod = alphas_cumprod(cfg)?;
        let final_alpha_cumprod = if cfg.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0] as f64
        };
        Ok(Self {
            alphas_cumprod,
            final_alpha_cumprod,
            prediction: prediction(cfg)?,
            spacing: spacing(cfg, Spacing::Leading)?,
            steps_offset: cfg.steps_offset,
            clip: cfg.clip_sample.then_some(cfg.clip_sample_range),
            num_inference_steps: 0,
            timesteps: Vec::new(),
        })
    }

    fn set_timesteps(&mut self, steps: usize) {
        let n = self.alphas_cumprod.len();
        self.num_inference_steps = steps;
        self.timesteps = match self.spacing {
            Spacing::Leading => {
                let ratio = n / steps;
                (0..steps)
                    .rev()
                    .map(|i| i * ratio + self.steps_offset)
                    .collect()
            }
            Spacing::Trailing => {
                let ratio = n as f64 / steps as f64;
                arange_down(n as f64, ratio)
                    .map(|v| (v.round_ties_even() as usize).saturating_sub(1))
                    .collect()
            }
            Spacing::Linspace => (0..steps)
                .rev()
                .map(|i| linspace_point(0.0, (n - 1) as f64, steps, i).round_ties_even() as usize)
                .collect(),
        };
    }

    fn alpha(&self, t: isize) -> f64 {
        if t >= 0 {
            self.alphas_cumprod[(t as usize).min(self.alphas_cumprod.len() - 1)] as f64
        } else {
            self.final_alpha_cumprod
        }
    }

    fn step(&self, output: &Tensor, t: usize, sample: &Tensor) -> Result<Tensor> {
        let n = self.alphas_cumprod.len();
        let prev = t as isize - (n / self.num_inference_steps.max(1)) as isize;
        let a_t = self.alpha(t as isize);
        let a_prev = self.alpha(prev);
        let b_t = 1.0 - a_t;
        let (mut x0, eps) = match self.prediction {
            Prediction::Epsilon => (
                axpby(1.0 / a_t.sqrt(), sample, -b_t.sqrt() / a_t.sqrt(), output)?,
                output.clone(),
            ),
            Prediction::Sample => {
                let eps = axpby(1.0 / b_t.sqrt(), sample, -a_t.sqrt() / b_t.sqrt(), output)?;
                (output.clone(), eps)
            }
            Prediction::Velocity => (
                axpby(a_t.sqrt(), sample, -b_t.sqrt(), output)?,
                axpby(a_t.sqrt(), output, b_t.sqrt(), sample)?,
            ),
        };
        if let Some(range) = self.clip {
            x0 = x0.clamp(-range as f32, range as f32)?;
        }
        axpby(a_prev.sqrt(), &x0, (1.0 - a_prev).sqrt(), &eps)
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, t: usize) -> Result<Tensor> {
        let a = self.alpha(t as isize);
        axpby(a.sqrt(), original, (1.0 - a).sqrt(), noise)
    }
}

/// `start, start - step, …` while above zero, as numpy's `arange(start, 0, -step)`.
fn arange_down(start: f64, step: f64) -> impl Iterator<Item = f64> {
    let count = (start / step).ceil() as usize;
    (0..count).map(move |i| start - i as f64 * step)
}

/// Point `i` of numpy's `linspace(a, b, n)`.
fn linspace_point(a: f64, b: f64, n: usize, i: usize) -> f64 {
    if n <= 1 {
        return a;
    }
    if i == n - 1 {
        return b;
    }
    a + (b - a) / (n - 1) as f64 * i as f64
}

/// DPM-Solver++ (multistep, data prediction), orders 1 to 3.
#[derive(Debug, Clone)]
pub struct DpmSolver {
    alphas_cumprod: Vec<f32>,
    prediction: Prediction,
    spacing: Spacing,
    steps_offset: usize,
    order: usize,
    heun: bool,
    lower_order_final: bool,
    euler_at_final: bool,
    final_sigma_zero: bool,
    lambda_min_clipped: f64,
    timesteps: Vec<usize>,
    sigmas: Vec<f64>,
    outputs: Vec<Option<Tensor>>,
    lower_order_nums: usize,
    step_index: Option<usize>,
    begin_index: Option<usize>,
}

impl DpmSolver {
    pub fn new(cfg: &SchedulerConfig) -> std::result::Result<Self, String> {
        if cfg.algorithm_type != "dpmsolver++" {
            return Err(format!(
                "algorithm_type `{}` is not supported (only \"dpmsolver++\")",
                cfg.algorithm_type
            ));
        }
        if !(1..=3).contains(&cfg.solver_order) {
            return Err(format!(
                "solver_order {} is not 1, 2 or 3",
                cfg.solver_order
            ));
        }
        let heun = match cfg.solver_type.as_str() {
            "midpoint" => false,
            "heun" => true,
            other => return Err(format!("unsupported solver_type `{other}`")),
        };
        let final_sigma_zero = match cfg.final_sigmas_type.as_str() {
            "zero" => true,
            "sigma_min" => false,
            other => return Err(format!("unsupported final_sigmas_type `{other}`")),
        };
        let unsupported = [
            (cfg.thresholding, "thresholding"),
            (cfg.use_karras_sigmas, "use_karras_sigmas"),
            (cfg.use_exponential_sigmas, "use_exponential_sigmas"),
            (cfg.use_beta_sigmas, "use_beta_sigmas"),
            (cfg.use_lu_lambdas, "use_lu_lambdas"),
            (cfg.use_flow_sigmas, "use_flow_sigmas"),
            (cfg.use_dynamic_shifting, "use_dynamic_shifting"),
        ];
        if let Some((_, name)) = unsupported.iter().find(|(on, _)| *on) {
            return Err(format!("{name} is not supported"));
        }
        if let Some(v) = &cfg.variance_type {
            return Err(format!("variance_type `{v}` is not supported"));
        }
        Ok(Self {
            alphas_cumprod: alphas_cumprod(cfg)?,
            prediction: prediction(cfg)?,
            spacing: spacing(cfg, Spacing::Linspace)?,
            steps_offset: cfg.steps_offset,
            order: cfg.solver_order,
            heun,
            lower_order_final: cfg.lower_order_final,
            euler_at_final: cfg.euler_at_final,
            final_sigma_zero,
            lambda_min_clipped: cfg.lambda_min_clipped.unwrap_or(f64::NEG_INFINITY),
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            outputs: Vec::new(),
            lower_order_nums: 0,
            step_index: None,
            begin_index: None,
        })
    }

    fn sigma_of(&self, t: usize) -> f64 {
        let a = self.alphas_cumprod[t];
        ((1.0 - a) / a).sqrt() as f64
    }

    fn set_timesteps(&mut self, steps: usize) {
        let n = self.alphas_cumprod.len();
        // Timesteps whose log-SNR falls below lambda_min_clipped are cut from the top.
        let clipped = self
            .alphas_cumprod
            .iter()
            .rev()
            .take_while(|&&a| {
                let a = a as f64;
                a.sqrt().ln() - (1.0 - a).sqrt().ln() < self.lambda_min_clipped
            })
            .count();
        let last = n - clipped;
        self.timesteps = match self.spacing {
            Spacing::Linspace => (1..=steps)
                .rev()
                .map(|i| {
                    linspace_point(0.0, (last - 1) as f64, steps + 1, i).round_ties_even() as usize
                })
                .collect(),
            Spacing::Leading => {
                let ratio = last / (steps + 1);
                (1..=steps)
                    .rev()
                    .map(|i| i * ratio + self.steps_offset)
                    .collect()
            }
            Spacing::Trailing => {
                let ratio = n as f64 / steps as f64;
                arange_down(last as f64, ratio)
                    .map(|v| (v.round_ties_even() as usize).saturating_sub(1))
                    .collect()
            }
        };
        let mut sigmas: Vec<f64> = self
            .timesteps
            .iter()
            .map(|&t| self.sigma_of(t.min(n - 1)))
            .collect();
        sigmas.push(if self.final_sigma_zero {
            0.0
        } else {
            self.sigma_of(0)
        });
        // diffusers stores the sigmas as f32.
        self.sigmas = sigmas.into_iter().map(|s| s as f32 as f64).collect();
        self.outputs = vec![None; self.order];
        self.lower_order_nums = 0;
        self.step_index = None;
        self.begin_index = None;
    }

    fn alpha_sigma(sigma: f64) -> (f64, f64) {
        let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
        (alpha, sigma * alpha)
    }

    fn lambda(sigma: f64) -> (f64, f64, f64) {
        let (a, s) = Self::alpha_sigma(sigma);
        (a, s, a.ln() - s.ln())
    }

    fn data_prediction(&self, output: &Tensor, sample: &Tensor, i: usize) -> Result<Tensor> {
        let (alpha, sigma) = Self::alpha_sigma(self.sigmas[i]);
        match self.prediction {
            Prediction::Epsilon => axpby(1.0 / alpha, sample, -sigma / alpha, output),
            Prediction::Sample => Ok(output.clone()),
            Prediction::Velocity => axpby(alpha, sample, -sigma, output),
        }
    }

    fn step(&mut self, output: &Tensor, t: usize, sample: &Tensor) -> Result<Tensor> {
        let i = match self.step_index {
            Some(i) => i,
            None => self.begin_index.unwrap_or_else(|| self.index_for(t)),
        };
        if i + 1 >= self.sigmas.len() {
            return Err(candle_core::Error::msg(
                "scheduler stepped past its last timestep",
            ));
        }
        let len = self.timesteps.len();
        let lower_final = i == len - 1
            && (self.euler_at_final
                || (self.lower_order_final && len < 15)
                || self.final_sigma_zero);
        let lower_second = i + 2 == len && self.lower_order_final && len < 15;
        let x0 = self.data_prediction(output, sample, i)?;
        self.outputs.rotate_left(1);
        if let Some(last) = self.outputs.last_mut() {
            *last = Some(x0.clone());
        }

        let (alpha_t, sigma_t, lambda_t) = Self::lambda(self.sigmas[i + 1]);
        let (_, sigma_s0, lambda_s0) = Self::lambda(self.sigmas[i]);
        let h = lambda_t - lambda_s0;
        let e = (-h).exp() - 1.0;
        let ratio = sigma_t / sigma_s0;
        let prev = if self.order == 1 || self.lower_order_nums < 1 || lower_final {
            axpby(ratio, sample, -alpha_t * e, &x0)?
        } else if self.order == 2 || self.lower_order_nums < 2 || lower_second {
            let m1 = self.previous(2)?;
            let (_, _, lambda_s1) = Self::lambda(self.sigmas[i - 1]);
            let r0 = (lambda_s0 - lambda_s1) / h;
            let d1 = ((&x0 - m1)? * (1.0 / r0))?;
            let base = axpby(ratio, sample, -alpha_t * e, &x0)?;
            if self.heun {
                (base + d1.affine(alpha_t * (e / h + 1.0), 0.0)?)?
            } else {
                (base + d1.affine(-0.5 * alpha_t * e, 0.0)?)?
            }
        } else {
            let m1 = self.previous(2)?;
            let m2 = self.previous(3)?;
            let (_, _, lambda_s1) = Self::lambda(self.sigmas[i - 1]);
            let (_, _, lambda_s2) = Self::lambda(self.sigmas[i - 2]);
            let r0 = (lambda_s0 - lambda_s1) / h;
            let r1 = (lambda_s1 - lambda_s2) / h;
            let d1_0 = ((&x0 - m1)? * (1.0 / r0))?;
            let d1_1 = ((m1 - m2)? * (1.0 / r1))?;
            let diff = (&d1_0 - &d1_1)?;
            let d1 = (&d1_0 + diff.affine(r0 / (r0 + r1), 0.0)?)?;
            let d2 = diff.affine(1.0 / (r0 + r1), 0.0)?;
            let base = axpby(ratio, sample, -alpha_t * e, &x0)?;
            let with_d1 = (base + d1.affine(alpha_t * (e / h + 1.0), 0.0)?)?;
            (with_d1 + d2.affine(-alpha_t * ((e + h) / (h * h) - 0.5), 0.0)?)?
        };
        if self.lower_order_nums < self.order {
            self.lower_order_nums += 1;
        }
        self.step_index = Some(i + 1);
        Ok(prev)
    }

    /// The data prediction `back` steps ago (1 is the current one).
    fn previous(&self, back: usize) -> Result<&Tensor> {
        self.outputs[self.outputs.len() - back]
            .as_ref()
            .ok_or_else(|| candle_core::Error::msg("multistep solver is missing an earlier step"))
    }

    fn index_for(&self, t: usize) -> usize {
        let hits: Vec<usize> = (0..self.timesteps.len())
            .filter(|&i| self.timesteps[i] == t)
            .collect();
        // diffusers takes the second match so that a repeated first timestep is not skipped.
        match hits.len() {
            0 => self.timesteps.len() - 1,
            1 => hits[0],
            _ => hits[1],
        }
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, t: usize) -> Result<Tensor> {
        let i = self
            .step_index
            .or(self.begin_index)
            .unwrap_or_else(|| self.index_for(t));
        let (alpha, sigma) = Self::alpha_sigma(self.sigmas[i]);
        axpby(alpha, original, sigma, noise)
    }
}

/// One of the supported schedulers, chosen by the configuration's `_class_name`.
#[derive(Debug, Clone)]
pub enum Scheduler {
    Ddim(Ddim),
    DpmSolver(DpmSolver),
}

impl Scheduler {
    pub fn new(cfg: &SchedulerConfig) -> std::result::Result<Self, String> {
        match cfg.class_name.as_str() {
            "DDIMScheduler" => Ok(Scheduler::Ddim(Ddim::new(cfg)?)),
            "DPMSolverMultistepScheduler" => Ok(Scheduler::DpmSolver(DpmSolver::new(cfg)?)),
            other => Err(format!(
                "scheduler `{other}` is not supported (DDIMScheduler, DPMSolverMultistepScheduler)"
            )),
        }
    }

    /// Prepares `steps` denoising steps; resets any multistep history.
    pub fn set_timesteps(&mut self, steps: usize) -> std::result::Result<(), String> {
        let train = match self {
            Scheduler::Ddim(s) => s.alphas_cumprod.len(),
            Scheduler::DpmSolver(s) => s.alphas_cumprod.len(),
        };
        if steps == 0 || steps > train {
            return Err(format!("steps must be between 1 and {train}, not {steps}"));
        }
        match self {
            Scheduler::Ddim(s) => s.set_timesteps(steps),
            Scheduler::DpmSolver(s) => s.set_timesteps(steps),
        }
        Ok(())
    }

    pub fn timesteps(&self) -> &[usize] {
        match self {
            Scheduler::Ddim(s) => &s.timesteps,
            Scheduler::DpmSolver(s) => &s.timesteps,
        }
    }

    /// Starts denoising at step `index` instead of the first (audio-to-audio).
    pub fn set_begin_index(&mut self, index: usize) {
        if let Scheduler::DpmSolver(s) = self {
            s.begin_index = Some(index);
        }
    }

    /// How far initial noise is scaled; 1 for both schedulers.
    pub fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    /// One denoising step from `sample` at timestep `t` given the model's prediction.
    pub fn step(&mut self, output: &Tensor, t: usize, sample: &Tensor) -> Result<Tensor> {
        if self.timesteps().is_empty() {
            return Err(candle_core::Error::msg(
                "the scheduler has no timesteps: call set_timesteps first",
            ));
        }
        match self {
            Scheduler::Ddim(s) => s.step(output, t, sample),
            Scheduler::DpmSolver(s) => s.step(output, t, sample),
        }
    }

    /// `original` noised to timestep `t`.
    pub fn add_noise(&self, original: &Tensor, noise: &Tensor, t: usize) -> Result<Tensor> {
        match self {
            Scheduler::Ddim(s) => s.add_noise(original, noise, t),
            Scheduler::DpmSolver(s) => s.add_noise(original, noise, t),
        }
    }
}
