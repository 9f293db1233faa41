//! The range coder that turns model probabilities into bits.
//!
//! A carry-propagating range coder in the style of LZMA's: 32-bit range, 64-bit low, bytes out
//! most significant first. Symbols are coded as a cumulative-frequency interval `[cum, cum+freq)`
//! of a `total` at most [`MAX_TOTAL`]. The encoder ends its output with as few bytes as still
//! decode correctly when the decoder pads the input with zero bytes, so a record of a few symbols
//! costs a few bytes.
//!
//! The decoder never panics, whatever bytes it is given: wrong input decodes to wrong symbols,
//! which the checksums around every record catch.

/// The largest frequency total a symbol may be coded against.
pub const MAX_TOTAL: u32 = 1 << 16;

const TOP: u32 = 1 << 24;

/// Range encoder writing into a byte vector.
#[derive(Debug)]
pub struct RangeEncoder<'a> {
    low: u64,
    range: u32,
    cache: u8,
    cache_size: u64,
    out: &'a mut Vec<u8>,
    start: usize,
    first: bool,
}

impl<'a> RangeEncoder<'a> {
    /// A new encoder appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> RangeEncoder<'a> {
        let start = out.len();
        RangeEncoder {
            low: 0,
            range: u32::MAX,
            cache: 0,
            cache_size: 1,
            out,
            start,
            first: true,
        }
    }

    /// Codes the interval `[cum, cum + freq)` of `total`.
    #[inline]
    pub fn encode(&mut self, cum: u32, freq: u32, total: u32) {
        debug_assert!(freq > 0 && cum + freq <= total && total <= MAX_TOTAL);
        self.encode_scaled(self.range / total, cum, freq);
    }

    /// [`encode`](Self::encode) with `total = MAX_TOTAL`: the range is scaled by a shift.
    #[inline]
    pub fn encode_pow2(&mut self, cum: u32, freq: u32) {
        debug_assert!(freq > 0 && cum + freq <= MAX_TOTAL);
        self.encode_scaled(self.range >> MAX_TOTAL.trailing_zeros(), cum, freq);
    }

    /// Narrows to `[cum, cum + freq)` in units of `r` (the range divided by the total).
    #[inline]
    fn encode_scaled(&mut self, r: u32, cum: u32, freq: u32) {
        self.low += u64::from(r) * u64::from(cum);
        self.range = r * freq;
        self.normalize();
    }

    /// Codes one bit with probability `p1` (of 4096) that it is 1.
    #[inline]
    pub fn encode_bit(&mut self, p1: u32, bit: bool) {
        debug_assert!((1..4096).contains(&p1));
        let bound = (self.range >> 12) * p1;
        if bit {
            self.range = bound;
        } else {
            self.low += u64::from(bound);
            self.range -= bound;
        }
        self.normalize();
    }

    /// Shifts bytes out until the range is at least `TOP` again.
    #[inline]
    fn normalize(&mut self) {
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    #[inline]
    fn shift_low(&mut self) {
        if self.low < 0xFF00_0000 || self.low > 0xFFFF_FFFF {
            let carry = (self.low >> 32) as u8;
            let mut temp = self.cache;
            loop {
                // The very first byte is always zero (the cache starts empty): it is not written.
                if self.first {
                    self.first = false;
                } else {
                    self.out.push(temp.wrapping_add(carry));
                }
                temp = 0xFF;
                self.cache_size -= 1;
                if self.cache_size == 0 {
                    break;
                }
            }
            self.cache = (self.low >> 24) as u8;
        }
        self.cache_size += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    /// The information coded so far, in bits: 8 for every byte shifted out (written, pending
    /// in the carry cache, or the dropped first byte) plus what the range has narrowed since
    /// its last shift. It grows by exactly `log2(range before / range after)` with each symbol
    /// or bit, the interval shrink the coder really applies, so the difference of two readings
    /// is what the symbols between them cost. Read only by the cost trace ([`crate::cost`]);
    /// the normal path never calls it.
    pub fn bits_spent(&self) -> f64 {
        let shifted =
            (self.out.len() - self.start) as u64 + u64::from(!self.first) + self.cache_size - 1;
        shifted as f64 * 8.0 + f64::from(u32::MAX).log2() - f64::from(self.range).log2()
    }

    /// Ends the code: picks the value in the final interval with the most trailing zero bits,
    /// writes it, and drops trailing zero bytes (the decoder reads zeros past the end).
    pub fn finish(mut self) {
        let hi = self.low + u64::from(self.range) - 1;
        for bits in (0..=32).rev() {
            let mask = (1u64 << bits) - 1;
            let v = (self.low + mask) & !mask;
            if v <= hi {
                self.low = v;
                break;
            }
        }
        for _ in 0..5 {
            self.shift_low();
        }
        while self.out.len() > self.start && self.out.last() == Some(&0) {
            self.out.pop();
        }
    }
}

/// Range decoder reading from a byte slice; reads past the end as zeros.
#[derive(Debug)]
pub struct RangeDecoder<'a> {
    code: u32,
    range: u32,
    input: &'a [u8],
    pos: usize,
    r: u32,
}

impl<'a> RangeDecoder<'a> {
    /// A decoder over `input` (the encoder's output).
    pub fn new(input: &'a [u8]) -> RangeDecoder<'a> {
        let mut d = RangeDecoder {
            code: 0,
            range: u32::MAX,
            input,
            pos: 0,
            r: 1,
        };
        for _ in 0..4 {
            d.code = (d.code << 8) | u32::from(d.next_byte());
        }
        d
    }

    #[inline]
    fn next_byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// How many bytes past the end of the input the decoder has read (as zeros; the encoder drops
    /// trailing zero bytes, so reading past the end is normal).
    pub fn overrun(&self) -> usize {
        self.pos.saturating_sub(self.input.len())
    }

    /// The cumulative frequency the next symbol falls at, in `0..total`.
    #[inline]
    pub fn decode_freq(&mut self, total: u32) -> u32 {
        self.r = (self.range / total).max(1);
        (self.code / self.r).min(total - 1)
    }

    /// [`decode_scale`](Self::decode_scale) with `total = MAX_TOTAL`: no division.
    #[inline]
    pub fn decode_scale_pow2(&mut self) -> (u32, u32) {
        self.r = self.range >> MAX_TOTAL.trailing_zeros();
        (self.r, self.code)
    }

    /// Starts decoding a symbol of a distribution of `total` without dividing twice: returns
    /// the scale `r` and the code. The symbol is the first interval `[cum, cum + freq)` with
    /// `code < r * (cum + freq)` (the same as `decode_freq(total) < cum + freq`); finish
    /// with [`decode_update`](Self::decode_update).
    #[inline]
    pub fn decode_scale(&mut self, total: u32) -> (u32, u32) {
        self.r = (self.range / total).max(1);
        (self.r, self.code)
    }

    /// Consumes the symbol with interval `[cum, cum + freq)`, after
    /// [`decode_freq`](Self::decode_freq) or [`decode_scale`](Self::decode_scale).
    #[inline]
    pub fn decode_update(&mut self, cum: u32, freq: u32) {
        self.code = self.code.wrapping_sub(self.r.wrapping_mul(cum));
        self.range = self.r.wrapping_mul(freq);
        self.normalize();
    }

    /// Decodes one bit coded with probability `p1` (of 4096) of being 1.
    #[inline]
    pub fn decode_bit(&mut self, p1: u32) -> bool {
        let bound = (self.range >> 12) * p1;
        let bit = if self.code < bound {
            self.range = bound;
            true
        } else {
            self.code = self.code.wrapping_sub(bound);
            self.range -= bound;
            false
        };
        self.normalize();
        bit
    }

    #[inline]
    fn normalize(&mut self) {
        while self.range < TOP {
            // A corrupt input can drive the range to zero; keep it codable.
            if self.range == 0 {
                self.range = u32::MAX;
            }
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next_byte());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as u32
    }

    #[test]
    fn round_trips_mixed_symbols_and_bits() {
        for len in [0usize, 1, 2, 5, 100, 10_000] {
            let mut seed = len as u64;
            let mut ops = Vec::new();
            for _ in 0..len {
                let total = 2 + lcg(&mut seed) % (MAX_TOTAL - 2);
                let cum = lcg(&mut seed) % (total - 1);
                let freq = 1 + lcg(&mut seed) % (total - cum);
                let p1 = 1 + lcg(&mut seed) % 4095;
                let bit = lcg(&mut seed) % 3 == 0;
                ops.push((cum, freq, total, p1, bit));
            }
            let mut out = Vec::new();
            let mut enc = RangeEncoder::new(&mut out);
            for &(cum, freq, total, p1, bit) in &ops {
                enc.encode(cum, freq, total);
                enc.encode_bit(p1, bit);
            }
            enc.finish();
            let mut dec = RangeDecoder::new(&out);
            for &(cum, freq, total, p1, bit) in &ops {
                let f = dec.decode_freq(total);
                assert!(f >= cum && f < cum + freq, "len {len}");
                dec.decode_update(cum, freq);
                assert_eq!(dec.decode_bit(p1), bit);
            }
        }
    }

    #[test]
    fn few_symbols_cost_few_bytes() {
        let mut out = Vec::new();
        let enc = RangeEncoder::new(&mut out);
        enc.finish();
        assert!(out.is_empty());
        let mut enc = RangeEncoder::new(&mut out);
        enc.encode(10, 1, 256);
        enc.finish();
        assert!(out.len() <= 2, "{out:?}");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        let bytes: Vec<u8> = (0..64).map(|_| lcg(&mut seed) as u8).collect();
        let mut dec = RangeDecoder::new(&bytes);
        for i in 0..10_000u32 {
            let total = 1 + i % 60_000;
            let f = dec.decode_freq(total);
            assert!(f < total);
            dec.decode_update(f, 1);
            dec.decode_bit(1 + i % 4095);
        }
    }
}
