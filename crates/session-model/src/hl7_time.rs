//! HL7 v2 timestamps (`TS`/`DTM`: `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`), as found in
//! MSH-7, the time a message was made. Pure: used as evidence of the time, never
//! trusted alone (an analyzer keeps its own clock, often in local time).

/// The epoch milliseconds of an HL7 timestamp, `None` when it is not one. Without an
/// offset the time is read as UTC (the caller allows for the zone it does not know).
pub fn hl7_timestamp_ms(ts: &str) -> Option<u64> {
    let ts = ts.trim();
    let (body, offset_min) = match ts.find(['+', '-']) {
        Some(at) => {
            let (body, zone) = ts.split_at(at);
            let sign: i64 = if zone.starts_with('-') { -1 } else { 1 };
            let digits = &zone[1..];
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
            (body, sign * (h * 60 + m))
        }
        None => (ts, 0),
    };
    let whole = body.split('.').next()?;
    if whole.len() < 4
        || whole.len() % 2 != 0
        || whole.len() > 14
        || !whole.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let part = |from: usize, default: u32| -> Option<u32> {
        whole
            .get(from..from + 2)
            .map_or(Some(default), |p| p.parse().ok())
    };
    let year: i64 = whole[..4].parse().ok()?;
    let (month, day) = (part(4, 1)?, part(6, 1)?);
    let (hour, minute, second) = (part(8, 0)?, part(10, 0)?, part(12, 0)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second) - offset_min * 60;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// MSH-7 of an HL7 message's text, when the message starts with an MSH segment.
pub fn msh7(message: &[u8]) -> Option<&str> {
    let start = message.windows(3).position(|w| w == b"MSH")?;
    let segment = &message[start..];
    let separator = *segment.get(3)?;
    let end = segment
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(segment.len());
    let fields: Vec<&[u8]> = segment[..end].split(|&b| b == separator).collect();
    // MSH-1 is the separator itself, so MSH-7 is the seventh piece after "MSH".
    std::str::from_utf8(fields.get(6)?).ok().filter(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hl7_timestamps_read_as_epoch_milliseconds() {
        assert_eq!(hl7_timestamp_ms("19700101"), Some(0));
        assert_eq!(hl7_timestamp_ms("20000229120000"), Some(951_825_600_000));
        assert_eq!(hl7_timestamp_ms("202511021200"), Some(1_762_084_800_000));
        assert_eq!(
            hl7_timestamp_ms("20251102120000.1234+0100"),
            Some(1_762_081_200_000)
        );
        assert_eq!(hl7_timestamp_ms("20251102120000-0500"), Some(1_762_102_800_000));
        for bad in [
            "",
            "2025",
            "20251",
            "20251302",
            "20251132",
            "2025110225",
            "x0251102",
            "20251102+01",
        ] {
            assert!(hl7_timestamp_ms(bad).is_none() || bad == "2025", "{bad}");
        }
        assert_eq!(hl7_timestamp_ms("2025"), Some(1_735_689_600_000));
    }

    #[test]
    fn msh7_is_found_with_any_field_separator() {
        assert_eq!(
            msh7(b"MSH|^~\\&|AN|LAB|LIS|HOSP|20251102||ORU^R01|1|P|2.5\rPID|1\r\n"),
            Some("20251102")
        );
        assert_eq!(
            msh7(b"\x0bMSH#^~\\&#AN#LAB#LIS#HOSP#202511021200#"),
            Some("202511021200")
        );
        assert_eq!(msh7(b"MSH|^~\\&|AN|LAB||"), None);
        assert_eq!(msh7(b"PID|1||7"), None);
    }
}
