//! Messages built without `core::fmt`: `format!` and `Display` pull Rust's formatting machinery
//! (padding, integer and float formatting, `fmt::write`) into the wasm, about 2 KB gzip. Every
//! message the SDK builds is text joined with whole numbers, so these few functions are all it needs.

/// The parts joined, in order.
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// The parts with `sep` between them (std's `join` and `concat` link a generic copy routine per
/// element type, about 1 KB of wasm).
pub fn join(parts: &[&str], sep: &str) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(p);
    }
    out
}

/// `n` in decimal.
pub fn dec(n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[i..].iter().map(|&d| char::from(d)).collect()
}

/// `n` in decimal, with a minus sign when negative.
pub fn signed(n: i64) -> String {
    if n < 0 {
        cat(&["-", &dec(n.unsigned_abs())])
    } else {
        dec(n as u64)
    }
}

/// `n` in lowercase hexadecimal, at least `width` digits (zeros in front).
pub fn hex(n: u64, width: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    let mut i = out.len();
    let mut n = n;
    while n != 0 || out.len() - i < width.max(1) {
        i -= 1;
        out[i] = DIGITS[(n & 15) as usize];
        n >>= 4;
    }
    out[i..].iter().map(|&d| char::from(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges() {
        assert_eq!(dec(0), "0");
        assert_eq!(dec(u64::MAX), "18446744073709551615");
        assert_eq!(signed(i64::MIN), "-9223372036854775808");
        assert_eq!(signed(-5), "-5");
        assert_eq!(hex(0, 1), "0");
        assert_eq!(hex(0, 16), "0000000000000000");
        assert_eq!(hex(u64::MAX, 16), "ffffffffffffffff");
        assert_eq!(hex(0xab, 1), "ab");
        assert_eq!(cat(&[]), "");
        assert_eq!(cat(&["a", "", "bc"]), "abc");
        for parts in [&[][..], &["a"], &["a", "", "bc"], &["", ""]] {
            for sep in ["", ",", ", "] {
                assert_eq!(join(parts, sep), parts.join(sep));
            }
        }
    }

    /// The same text as `format!` over 100,000 seeded values of every magnitude.
    #[test]
    fn same_text_as_format() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x >> (i % 64); // every bit length
            let w = (i % 17) as usize;
            assert_eq!(dec(n), format!("{n}"));
            assert_eq!(signed(n as i64), format!("{}", n as i64));
            assert_eq!(hex(n, w), format!("{n:0w$x}"));
        }
    }
}
