//! `JournalRecords` on bytes built here: where a journal's readable part ends, and
//! whether what follows a bad record is damage or a write a crash cut short.

use std::path::PathBuf;

use session_fs::{JOURNAL_HEADER, JournalEnd, JournalRecords};

fn record(payload: &[u8]) -> Vec<u8> {
    let mut framed = (payload.len() as u32).to_le_bytes().to_vec();
    framed.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    framed.extend_from_slice(payload);
    framed
}

fn read_all(bytes: &[u8]) -> (Vec<Vec<u8>>, JournalEnd) {
    let mut records = JournalRecords::new(bytes, bytes.len() as u64, PathBuf::from("j.journal"));
    let read: Vec<Vec<u8>> = records.by_ref().map(|r| r.expect("no I/O error")).collect();
    (read, records.end().expect("an end once read"))
}

fn journal(parts: &[&[u8]]) -> Vec<u8> {
    let mut bytes = JOURNAL_HEADER.to_vec();
    for part in parts {
        bytes.extend_from_slice(part);
    }
    bytes
}

#[test]
fn exactly_one_head_of_zeros_after_the_records_is_a_clean_end() {
    let bytes = journal(&[&record(b"one"), &[0; 8]]);
    let (read, end) = read_all(&bytes);
    assert_eq!(read, vec![b"one".to_vec()]);
    assert_eq!(
        end,
        JournalEnd {
            torn_bytes: 0,
            header_ok: true,
            damaged: false
        }
    );
    // Seven bytes are less than a head: torn.
    let (_, end) = read_all(&journal(&[&record(b"one"), &[0; 7]]));
    assert_eq!(end.torn_bytes, 7);
}

#[test]
fn a_bad_record_before_a_whole_one_is_damage_and_before_a_cut_one_is_not() {
    let mut bad = record(b"bad!");
    bad[8] ^= 0xff;
    let good = record(b"after");
    let (read, end) = read_all(&journal(&[&record(b"one"), &bad, &good]));
    assert_eq!(read, vec![b"one".to_vec()]);
    assert!(end.damaged, "{end:?}");
    assert_eq!(end.torn_bytes, (bad.len() + good.len()) as u64);
    // The record after it claims 3 bytes more than are left: a cut write, not damage,
    // and reading it never runs past the end.
    let mut cut = record(b"after");
    cut[..4].copy_from_slice(&(5u32 + 3).to_le_bytes());
    let (read, end) = read_all(&journal(&[&record(b"one"), &bad, &cut]));
    assert_eq!(read, vec![b"one".to_vec()]);
    assert!(!end.damaged, "{end:?}");
    // Nothing after it at all: the last write was cut.
    let (_, end) = read_all(&journal(&[&record(b"one"), &bad]));
    assert!(!end.damaged, "{end:?}");
    assert_eq!(end.torn_bytes, bad.len() as u64);
}

#[test]
fn a_reader_shows_where_it_is_never_what_it_read() {
    let bytes = journal(&[&record(b"SECRET")]);
    let mut records = JournalRecords::new(&bytes[..], bytes.len() as u64, PathBuf::from("x.journal"));
    let _ = records.next();
    let shown = format!("{records:?}");
    assert!(shown.starts_with("JournalRecords {"), "{shown}");
    assert!(
        shown.contains("x.journal") && shown.contains("remaining: 0"),
        "{shown}"
    );
    assert!(!shown.contains("SECRET"), "{shown}");
}
