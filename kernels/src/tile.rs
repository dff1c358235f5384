//! `TileConfig`: the register/cache blocking of a matmul kernel, chosen at run time.

use std::fmt;
use std::str::FromStr;

/// Blocking of a matmul: `m` tokens (activation rows) × `n` weight rows per register tile,
/// and `k` elements of the reduction per pass over the tile (a multiple of 32; a `k` at least
/// the row length means "the whole row in one pass"). GEMV kernels use `1 × n × k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileConfig {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl TileConfig {
    pub const fn new(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k }
    }

    /// The GEMV variant of this tile: one token.
    pub const fn for_gemv(self) -> Self {
        Self { m: 1, ..self }
    }
}

impl fmt::Display for TileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.m, self.n, self.k)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("tile '{0}' is not of the form MxNxK with positive integers (e.g. 4x4x512)")]
pub struct ParseTileError(pub String);

impl FromStr for TileConfig {
    type Err = ParseTileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseTileError(s.to_string());
        let mut parts = s.trim().split(['x', 'X']);
        let mut next = || -> Result<usize, ParseTileError> {
            let v: usize = parts.next().ok_or_else(err)?.parse().map_err(|_| err())?;
            if v == 0 { Err(err()) } else { Ok(v) }
        };
        let t = TileConfig::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let t: TileConfig = "4x8x512".parse().unwrap();
        assert_eq!(t, TileConfig::new(4, 8, 512));
        assert_eq!(t.to_string(), "4x8x512");
    }

    #[test]
    fn rejects_malformed() {
        for s in ["", "4x8", "4x8x0", "4x8x512x1", "axbxc", "-1x2x3"] {
            assert!(s.parse::<TileConfig>().is_err(), "{s}");
        }
    }
}
