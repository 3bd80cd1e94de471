//! The search space: each tuned run parameter as a coordinate the samplers work in (a real
//! interval, the logarithm of one, or a list of choices) and back.

use serde_json::Value;

use super::rng::Rng;
use crate::workflow::{ParamMap, Tunable};

/// How a sampler sees one parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coordinate {
    /// A real interval (the logarithm for log ranges; integers widened by half a step each
    /// side so that rounding gives every value the same share).
    Interval { lo: f64, hi: f64 },
    /// One of `n` choices, by index.
    Categorical { n: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    pub name: String,
    pub tunable: Tunable,
}

impl Dimension {
    pub fn coordinate(&self) -> Coordinate {
        match self.tunable {
            Tunable::Range { min, max, log } if log => Coordinate::Interval {
                lo: min.ln(),
                hi: max.ln(),
            },
            Tunable::Range { min, max, .. } => Coordinate::Interval { lo: min, hi: max },
            Tunable::Integer { min, max } => Coordinate::Interval {
                lo: min as f64 - 0.5,
                hi: max as f64 + 0.5,
            },
            Tunable::Choice(ref values) => Coordinate::Categorical { n: values.len() },
        }
    }

    /// The parameter value at coordinate `x` (an index for choices).
    pub fn value_at(&self, x: f64) -> Value {
        match &self.tunable {
            Tunable::Range { min, max, log } => {
                let v = if *log { x.exp() } else { x };
                Value::from(v.clamp(*min, *max))
            }
            Tunable::Integer { min, max } => Value::from((x.round() as i64).clamp(*min, *max)),
            Tunable::Choice(values) => values
                .get((x.max(0.0) as usize).min(values.len().saturating_sub(1)))
                .cloned()
                .unwrap_or(Value::Null),
        }
    }

    /// The coordinate of a value this dimension produced (or a user typed), if it fits.
    pub fn coordinate_of(&self, value: &Value) -> Option<f64> {
        match &self.tunable {
            Tunable::Range { min, max, log } => {
                let v = value.as_f64().filter(|v| (*min..=*max).contains(v))?;
                Some(if *log { v.ln() } else { v })
            }
            Tunable::Integer { min, max } => value
                .as_f64()
                .filter(|v| (*min as f64..=*max as f64).contains(v))
                .map(f64::round),
            Tunable::Choice(values) => values.iter().position(|c| c == value).map(|i| i as f64),
        }
    }

    fn uniform(&self, rng: &mut Rng) -> f64 {
        match self.coordinate() {
            Coordinate::Interval { lo, hi } => lo + (hi - lo) * rng.uniform(),
            Coordinate::Categorical { n } => rng.below(n) as f64,
        }
    }

    /// `k` evenly spread coordinates (every choice, for choices).
    fn levels(&self, k: usize) -> Vec<f64> {
        match self.coordinate() {
            Coordinate::Categorical { n } => (0..n).map(|i| i as f64).collect(),
            Coordinate::Interval { lo, hi } => {
                let mut levels: Vec<f64> = (0..k)
                    .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / k as f64)
                    .collect();
                if matches!(self.tunable, Tunable::Integer { .. }) {
                    levels.iter_mut().for_each(|x| *x = x.round());
                    levels.dedup();
                }
                levels
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub dimensions: Vec<Dimension>,
}

impl SearchSpace {
    pub fn new(parameters: &indexmap::IndexMap<String, Tunable>) -> Self {
        SearchSpace {
            dimensions: parameters
                .iter()
                .map(|(name, tunable)| Dimension {
                    name: name.clone(),
                    tunable: tunable.clone(),
                })
                .collect(),
        }
    }

    /// The run parameters at point `x`.
    pub fn params_at(&self, x: &[f64]) -> ParamMap {
        self.dimensions
            .iter()
            .zip(x)
            .map(|(d, &x)| (d.name.clone(), d.value_at(x)))
            .collect()
    }

    /// The point of a trial's parameters, if every one fits the space.
    pub fn point_of(&self, params: &Value) -> Option<Vec<f64>> {
        self.dimensions
            .iter()
            .map(|d| d.coordinate_of(params.get(&d.name)?))
            .collect()
    }

    pub fn random_point(&self, rng: &mut Rng) -> Vec<f64> {
        self.dimensions.iter().map(|d| d.uniform(rng)).collect()
    }

    /// `n` points of a full-factorial grid (cells centred in each interval, every choice),
    /// in a seeded random order, so that a short budget still spreads over the space;
    /// topped up with random points when the grid is smaller than `n`.
    pub fn grid_points(&self, n: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
        if self.dimensions.is_empty() || n == 0 {
            return Vec::new();
        }
        let per_dim = (n as f64)
            .powf(1.0 / self.dimensions.len() as f64)
            .ceil()
            .max(2.0) as usize;
        let mut grid: Vec<Vec<f64>> = vec![Vec::new()];
        for d in &self.dimensions {
            let levels = d.levels(per_dim);
            grid = grid
                .into_iter()
                .flat_map(|p| {
                    levels.iter().map(move |&l| {
                        let mut p = p.clone();
                        p.push(l);
                        p
                    })
                })
                .collect();
            // Enough cells already: stop the product from growing without bound.
            if grid.len() > 100_000 {
                grid.truncate(100_000);
            }
        }
        rng.shuffle(&mut grid);
        grid.truncate(n);
        while grid.len() < n {
            grid.push(self.random_point(rng));
        }
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use serde_json::json;

    fn space() -> SearchSpace {
        let mut p = IndexMap::new();
        p.insert(
            "gain".to_string(),
            Tunable::Range {
                min: -6.0,
                max: 6.0,
                log: false,
            },
        );
        p.insert(
            "rate".to_string(),
            Tunable::Range {
                min: 0.001,
                max: 1.0,
                log: true,
            },
        );
        p.insert("steps".to_string(), Tunable::Integer { min: 10, max: 12 });
        p.insert(
            "scheduler".to_string(),
            Tunable::Choice(vec![json!("ddim"), json!("dpm")]),
        );
        SearchSpace::new(&p)
    }

    #[test]
    fn values_map_to_coordinates_and_back() {
        let s = space();
        let params = json!({"gain": 1.5, "rate": 0.01, "steps": 11, "scheduler": "dpm"});
        let x = s.point_of(&params).unwrap();
        assert!((x[1] - 0.01f64.ln()).abs() < 1e-12);
        let back = s.params_at(&x);
        assert_eq!(back["gain"], json!(1.5));
        assert!((back["rate"].as_f64().unwrap() - 0.01).abs() < 1e-12);
        assert_eq!(back["steps"], json!(11));
        assert_eq!(back["scheduler"], json!("dpm"));
        assert!(
            s.point_of(&json!({"gain": 9.0, "rate": 0.1, "steps": 11, "scheduler": "dpm"}))
                .is_none()
        );
    }

    #[test]
    fn random_points_stay_inside_and_integers_are_fair() {
        let s = space();
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            let p = s.params_at(&s.random_point(&mut rng));
            let gain = p["gain"].as_f64().unwrap();
            assert!((-6.0..=6.0).contains(&gain));
            let rate = p["rate"].as_f64().unwrap();
            assert!((0.001..=1.0).contains(&rate));
            counts[(p["steps"].as_i64().unwrap() - 10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_grid_start_covers_every_choice_without_repeats() {
        let s = space();
        let points = s.grid_points(16, &mut Rng::new(1));
        assert_eq!(points.len(), 16);
        let mut seen: Vec<String> = points.iter().map(|p| format!("{p:?}")).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 16);
        let schedulers: std::collections::HashSet<String> = points
            .iter()
            .map(|p| s.params_at(p)["scheduler"].to_string())
            .collect();
        assert_eq!(schedulers.len(), 2);
    }
}
