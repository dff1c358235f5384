//! Deterministic random numbers for synthetic models and benchmark prompts.
//!
//! Our own generator (xoshiro256** seeded through SplitMix64) rather than a crate's, so a
//! seed gives the same model bit for bit across crate versions and machines. For the same
//! reason the Gaussian sampler uses no platform `ln`/`sin`/`cos` (whose last bits differ
//! between C libraries): it evaluates its own series with IEEE basic operations and
//! `sqrt`, which are exactly specified.

/// SplitMix64: a 64-bit counter through a bijective mixer. Used to expand seeds.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }
}

/// SplitMix64's finaliser: a bijection on u64 with good avalanche.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**: 256 bits of state, period 2^256 - 1, fast and statistically strong.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
    /// The second value of the last Box-Muller pair.
    spare: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        // SplitMix64 outputs are a bijection of distinct counters, so four of them are
        // never all zero (the one state xoshiro must avoid).
        Rng { s, spare: None }
    }

    /// An independent stream for `(seed, stream)`, e.g. one per tensor row, so that parts
    /// of a model can be generated in any order or in parallel with the same result.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Self::new(mix64(seed) ^ mix64(stream ^ 0xD1B5_4A32_D192_ED03).rotate_left(17))
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[0, n)` without modulo bias; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift with rejection of the short zone.
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Standard normal N(0, 1) by the Box-Muller transform; values come in pairs, the
    /// second is kept for the next call.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (z0, z1) = self.normal_pair();
        self.spare = Some(z1);
        z0
    }

    /// Fills `out` with `mean + std * N(0, 1)`, rounded to f32.
    pub fn fill_normal(&mut self, out: &mut [f32], mean: f64, std: f64) {
        let mut pairs = out.chunks_exact_mut(2);
        for p in &mut pairs {
            let (a, b) = self.normal_pair();
            p[0] = (mean + std * a) as f32;
            p[1] = (mean + std * b) as f32;
        }
        if let [last] = pairs.into_remainder() {
            *last = (mean + std * self.normal()) as f32;
        }
    }

    fn normal_pair(&mut self) -> (f64, f64) {
        // u1 in (0, 1] so the logarithm is finite; u2 in [0, 1) is an angle in turns.
        let u1 = ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let u2 = self.next_f64();
        let r = (-2.0 * ln_unit(u1)).sqrt();
        let (c, s) = cos_sin_turns(u2);
        (r * c, r * s)
    }
}

/// Natural logarithm of `x` in `(0, 1]` (in practice `x >= 2^-53`), to about 1 ulp, with
/// only IEEE basic operations: `x = m * 2^e`, `m` in `[sqrt(1/2), sqrt(2))`, and
/// `ln m = 2 atanh(s)` with `s = (m-1)/(m+1)`, `|s| <= 0.172`.
fn ln_unit(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    // 2s * sum_k z^k / (2k+1); z <= 0.0295, so twelve terms leave < 1e-19.
    let mut p = 1.0 / 23.0;
    for k in (0..11).rev() {
        p = p * z + 1.0 / f64::from(2 * k + 1);
    }
    e as f64 * LN2 + 2.0 * s * p
}

/// `(cos 2πt, sin 2πt)` for `t` in `[0, 1)`: reduce to the nearest quarter turn, so the
/// remaining angle is within ±π/4, and evaluate Taylor series there.
fn cos_sin_turns(t: f64) -> (f64, f64) {
    let q = (t * 4.0).round();
    let x = (t - q * 0.25) * std::f64::consts::TAU;
    let z = x * x;
    // sin x = x (1 - z/3! + z^2/5! - ...), cos x = 1 - z/2! + z^2/4! - ...
    let mut s = 0.0;
    let mut c = 0.0;
    for k in (1..=9).rev() {
        let k = f64::from(k);
        s = 1.0 - z / ((2.0 * k) * (2.0 * k + 1.0)) * s;
        c = 1.0 - z / ((2.0 * k - 1.0) * (2.0 * k)) * c;
    }
    let s = x * s;
    match q as u8 & 3 {
        0 => (c, s),
        1 => (-s, c),
        2 => (-c, -s),
        _ => (s, -c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_output() {
        // Reference value of SplitMix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn xoshiro_matches_reference_output() {
        // xoshiro256** from state {1, 2, 3, 4}, as in the reference implementation.
        let mut r = Rng {
            s: [1, 2, 3, 4],
            spare: None,
        };
        let got: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(got, [11520, 0, 1509978240, 1215971899390074240]);
    }

    #[test]
    fn own_ln_and_trig_agree_with_libm() {
        let mut r = Rng::new(7);
        for _ in 0..20_000 {
            let x = ((r.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
            let want = x.ln();
            assert!(
                (ln_unit(x) - want).abs() <= 4e-16 * want.abs().max(1.0),
                "ln {x}"
            );
            let t = r.next_f64();
            let (c, s) = cos_sin_turns(t);
            let a = t * std::f64::consts::TAU;
            assert!(
                (c - a.cos()).abs() < 1e-15 && (s - a.sin()).abs() < 1e-15,
                "t {t}"
            );
        }
        assert_eq!(ln_unit(1.0), 0.0);
        assert!((ln_unit(f64::EPSILON / 2.0) + 53.0 * std::f64::consts::LN_2).abs() < 1e-13);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut r = Rng::new(42);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
    }

    #[test]
    fn normals_are_pinned_bit_for_bit() {
        // Synthetic models must not change between versions: if this fails, every model
        // generated from a seed changed too.
        let mut r = Rng::new(1);
        let got: Vec<u64> = (0..4).map(|_| r.normal().to_bits()).collect();
        assert_eq!(got, PINNED_NORMALS);
    }
    /// -0.83274143446567, -0.10752148995725, -0.81732098111511, 0.66473296917503 (within
    /// 1 ulp of libm's Box-Muller on the same uniforms).
    const PINNED_NORMALS: [u64; 4] = [
        13829047924427963358,
        13815784197391633216,
        13828909029332036432,
        4604162601849831513,
    ];

    #[test]
    fn uniforms_stay_in_range_and_below_is_unbiased_enough() {
        let mut r = Rng::new(3);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            counts[r.below(3) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..3).map(|i| Rng::for_stream(5, i).next_u64()).collect();
        assert_ne!(a[0], a[1]);
        assert_ne!(a[1], a[2]);
        assert_eq!(Rng::for_stream(5, 1).next_u64(), a[1]);
        assert_ne!(Rng::for_stream(6, 1).next_u64(), a[1]);
    }
}
