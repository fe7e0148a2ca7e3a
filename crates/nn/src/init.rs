//! Initializers, as Gluon's `mxnet.init`: `Uniform`, `Normal`, `Xavier`, `Constant`,
//! `Zero`, `One`. Each draws from the generator it is given, so a seed fixes the result.

use crate::error::{NnError, Result};
use kiln_tensor::rand::Rng;
use kiln_tensor::{Float, Shape, Tensor};

/// Xavier's distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RndType {
    /// Uniform(−s, s).
    Uniform,
    /// Normal(0, s).
    Gaussian,
}

/// Which fan Xavier scales by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorType {
    /// (fan_in + fan_out) / 2.
    Avg,
    /// fan_in.
    In,
    /// fan_out.
    Out,
}

/// How a parameter's initial values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform(−scale, scale). Gluon's default, with scale 0.07.
    Uniform {
        /// Half-width of the interval.
        scale: f64,
    },
    /// Normal(0, sigma).
    Normal {
        /// Standard deviation.
        sigma: f64,
    },
    /// Glorot & Bengio's initializer as MXNet defines it: with
    /// `fan_in = shape[1]·∏shape[2..]`, `fan_out = shape[0]·∏shape[2..]` and the chosen
    /// factor, s = √(magnitude / factor).
    Xavier {
        /// Uniform(−s, s) or Normal(0, s).
        rnd_type: RndType,
        /// Which fan to use.
        factor_type: FactorType,
        /// Scale; 3 by default.
        magnitude: f64,
    },
    /// Every value set to a constant.
    Constant(f64),
    /// Zeros (Gluon's default for biases).
    Zero,
    /// Ones.
    One,
}

impl Default for Init {
    /// Gluon's default initializer: Uniform(−0.07, 0.07).
    fn default() -> Self {
        Init::Uniform { scale: 0.07 }
    }
}

impl Init {
    /// Uniform(−scale, scale).
    pub fn uniform(scale: f64) -> Self {
        Init::Uniform { scale }
    }

    /// Normal(0, sigma).
    pub fn normal(sigma: f64) -> Self {
        Init::Normal { sigma }
    }

    /// Xavier with MXNet's defaults: uniform, factor `avg`, magnitude 3.
    pub fn xavier() -> Self {
        Init::Xavier {
            rnd_type: RndType::Uniform,
            factor_type: FactorType::Avg,
            magnitude: 3.0,
        }
    }

    /// Draws a tensor of `shape` (all dimensions known) from `rng`. Scales that are
    /// negative or not finite are an error, never NaN weights; so is a shape that no
    /// tensor can have or that memory cannot hold (a layer of 2³⁰ × 2³⁰ weights), never an
    /// abort.
    pub fn sample<T: Float>(&self, shape: &Shape, rng: &mut impl Rng) -> Result<Tensor<T>> {
        shape.elements("Init")?;
        let (name, value) = match *self {
            Init::Uniform { scale } => ("Uniform scale", scale),
            Init::Normal { sigma } => ("Normal sigma", sigma),
            Init::Xavier { magnitude, .. } => ("Xavier magnitude", magnitude),
            Init::Constant(v) => ("Constant", v.abs()),
            Init::Zero | Init::One => ("", 0.0),
        };
        if !(value.is_finite() && value >= 0.0) {
            return Err(NnError::invalid(
                "Init",
                format!("{name} must be finite and ≥ 0, got {value}"),
            ));
        }
        Ok(match *self {
            Init::Uniform { scale } => {
                let s = T::from_f64(scale);
                Tensor::try_rand_uniform(shape.clone(), -s, s, rng)?
            }
            Init::Normal { sigma } => {
                Tensor::rand_normal(shape.clone(), T::ZERO, T::from_f64(sigma), rng)?
            }
            Init::Xavier {
                rnd_type,
                factor_type,
                magnitude,
            } => {
                if shape.rank() < 2 {
                    return Err(NnError::invalid(
                        "Xavier",
                        format!("needs a weight of rank ≥ 2, got shape {shape}"),
                    ));
                }
                let receptive: usize = shape[2..].iter().product();
                if shape.numel() == 0 {
                    return Ok(Tensor::try_zeros(shape.clone())?);
                }
                let (fan_in, fan_out) =
                    ((shape[1] * receptive) as f64, (shape[0] * receptive) as f64);
                let factor = match factor_type {
                    FactorType::Avg => (fan_in + fan_out) / 2.0,
                    FactorType::In => fan_in,
                    FactorType::Out => fan_out,
                };
                let s = (magnitude / factor).sqrt();
                match rnd_type {
                    RndType::Uniform => Tensor::try_rand_uniform(
                        shape.clone(),
                        T::from_f64(-s),
                        T::from_f64(s),
                        rng,
                    )?,
                    RndType::Gaussian => {
                        Tensor::rand_normal(shape.clone(), T::ZERO, T::from_f64(s), rng)?
                    }
                }
            }
            Init::Constant(v) => Tensor::try_full(shape.clone(), T::from_f64(v))?,
            Init::Zero => Tensor::try_zeros(shape.clone())?,
            Init::One => Tensor::try_full(shape.clone(), T::ONE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_tensor::rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn xavier_scale_follows_mxnet() {
        // conv weight (6, 1, 5, 5): fan_in 25, fan_out 150, avg 87.5, s = √(3/87.5) ≈ 0.185
        let w: Tensor<f64> = Init::xavier()
            .sample(&Shape::from([6, 1, 5, 5]), &mut StdRng::seed_from_u64(0))
            .unwrap();
        let s = (3.0f64 / 87.5).sqrt();
        let max = w.data().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max <= s && max > 0.8 * s, "max |w| = {max}, bound {s}");
        assert!(Init::xavier()
            .sample::<f32>(&Shape::from([10]), &mut StdRng::seed_from_u64(0))
            .is_err());
    }

    #[test]
    fn constants_and_seeds() {
        let mut rng = StdRng::seed_from_u64(1);
        let c: Tensor<f32> = Init::Constant(0.5)
            .sample(&Shape::from([3]), &mut rng)
            .unwrap();
        assert_eq!(c.data(), &[0.5, 0.5, 0.5]);
        let a: Tensor<f32> = Init::default()
            .sample(&Shape::from([50]), &mut StdRng::seed_from_u64(9))
            .unwrap();
        let b: Tensor<f32> = Init::default()
            .sample(&Shape::from([50]), &mut StdRng::seed_from_u64(9))
            .unwrap();
        assert_eq!(a, b);
        assert!(a.data().iter().all(|v| v.abs() <= 0.07));
    }
}
