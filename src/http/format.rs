//! Human-readable renderings for the pages: times, zxids, sizes.

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC` (0 as `-`).
pub fn time_ms(ms: i64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A zxid as ZooKeeper prints it.
pub fn zxid(z: i64) -> String {
    format!("0x{:x}", z as u64)
}

/// A byte count, short.
pub fn size(n: i64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_and_readable() {
        assert_eq!(time_ms(0), "-");
        assert_eq!(time_ms(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(time_ms(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(zxid(0x1_0000_0005), "0x100000005");
        assert_eq!(size(2048), "2.0 KiB");
    }
}
