//! Q4_0: 32 weights per block as 4-bit values with an offset of 8 and one f16 scale.
//! Low nibbles hold elements 0..16, high nibbles elements 16..32.

use half::f16;

use super::QK;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; QK / 2],
}

const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);

/// Reference quantization (FACTS.md): the signed value of largest magnitude `max` gives
/// `d = max / -8`; `q = min(15, trunc(x/d + 8.5))`.
pub fn quantize_row(src: &[f32], dst: &mut [BlockQ4_0]) {
    assert_eq!(
        src.len(),
        dst.len() * QK,
        "q4_0 row length must be a multiple of 32"
    );
    for (x, b) in src.chunks_exact(QK).zip(dst.iter_mut()) {
        *b = quantize_block(x);
    }
}

#[inline]
pub fn quantize_block(x: &[f32]) -> BlockQ4_0 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; QK / 2];
    for (j, q) in qs.iter_mut().enumerate() {
        let lo = ((x[j] * id + 8.5) as i32).min(15) as u8;
        let hi = ((x[j + QK / 2] * id + 8.5) as i32).min(15) as u8;
        *q = lo | (hi << 4);
    }
    BlockQ4_0 {
        d: f16::from_f32(d),
        qs,
    }
}

pub fn dequantize_row(src: &[BlockQ4_0], dst: &mut [f32]) {
    assert_eq!(
        dst.len(),
        src.len() * QK,
        "q4_0 row length must be a multiple of 32"
    );
    for (b, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (j, &q) in b.qs.iter().enumerate() {
            y[j] = d * (f32::from(q & 15) - 8.0);
            y[j + QK / 2] = d * (f32::from(q >> 4) - 8.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_magnitude_maps_to_minus_eight() {
        let mut x = [0.1f32; 32];
        x[20] = -3.0;
        let b = quantize_block(&x);
        // d = -3 / -8 = 0.375; x = -3 -> -8 -> nibble 0.
        assert_eq!(b.d.to_f32(), 0.375);
        assert_eq!(b.qs[4] >> 4, 0);
        let mut y = [0.0f32; 32];
        dequantize_row(&[b], &mut y);
        assert_eq!(y[20], -3.0);
    }

    #[test]
    fn positive_max_clamps_to_fifteen() {
        let mut x = [0.0f32; 32];
        x[0] = 4.0; // d = -0.5; 4 * -2 + 8.5 = 0.5 -> 0
        x[1] = -4.0; // -4 * -2 + 8.5 = 16.5 -> clamped to 15
        let b = quantize_block(&x);
        assert_eq!(b.qs[0] & 15, 0);
        assert_eq!(b.qs[1] & 15, 15);
    }

    #[test]
    fn round_trip_error_is_within_one_step() {
        let x: Vec<f32> = (0..96)
            .map(|i| ((i * 53 % 96) as f32 - 47.0) * 0.021)
            .collect();
        let mut b = vec![BlockQ4_0::default(); 3];
        quantize_row(&x, &mut b);
        let mut y = vec![0.0; 96];
        dequantize_row(&b, &mut y);
        for (blk, (xs, ys)) in b.iter().zip(x.chunks(32).zip(y.chunks(32))) {
            let d = blk.d.to_f32().abs();
            for (a, c) in xs.iter().zip(ys) {
                assert!((a - c).abs() <= d * 1.01, "{a} vs {c} (d {d})");
            }
        }
    }
}
