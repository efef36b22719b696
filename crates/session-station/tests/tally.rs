//! The tally: what each kind of session counts as, and that taking a row away undoes
//! adding it.

use session_model::SubmissionStatus;
use session_station::{Counted, FAILED_NAMED, Tally};

fn row(id: &str, status: SubmissionStatus) -> Counted<'_> {
    Counted {
        id,
        status: Some(status),
        newer: false,
        is_complete: Some(true),
        interrupted: false,
        not_received_by_lis: false,
        start_time: Some(1_000),
        last_error: None,
        last_attempt_at: None,
        next_attempt_at: None,
    }
}

fn count_of(counts: &session_station::SessionCounts, status: SubmissionStatus) -> usize {
    counts
        .by_status
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(0, |(_, n)| *n)
}

#[test]
fn each_kind_of_session_counts_where_status_says() {
    let rows = [
        Counted {
            start_time: Some(5_000),
            ..row("s-2", SubmissionStatus::Pending)
        },
        Counted {
            start_time: Some(3_000),
            ..row("s-1", SubmissionStatus::InFlight)
        },
        Counted {
            is_complete: Some(false),
            interrupted: true,
            not_received_by_lis: true,
            ..row("s-3", SubmissionStatus::Pending)
        },
        Counted {
            last_error: Some("HTTP 400"),
            ..row("s-10", SubmissionStatus::Failed)
        },
        Counted {
            last_error: Some("HTTP 500"),
            ..row("s-9", SubmissionStatus::Failed)
        },
        Counted {
            newer: true,
            status: None,
            ..row("s-11", SubmissionStatus::Pending)
        },
        row("s-4", SubmissionStatus::Submitted),
        Counted {
            is_complete: Some(false),
            ..row("s-5", SubmissionStatus::Ignored)
        },
        Counted {
            is_complete: Some(false),
            ..row("s-6", SubmissionStatus::InFlight)
        },
    ];
    let mut tally = Tally::default();
    rows.iter().for_each(|r| tally.add(r));
    let counts = tally.counts(0, 0);
    assert_eq!((counts.total, counts.newer), (8, 1));
    assert_eq!(count_of(&counts, SubmissionStatus::Pending), 2);
    assert_eq!(count_of(&counts, SubmissionStatus::InFlight), 2);
    assert_eq!(count_of(&counts, SubmissionStatus::Failed), 2);
    assert_eq!(count_of(&counts, SubmissionStatus::Submitted), 1);
    assert_eq!(count_of(&counts, SubmissionStatus::Ignored), 1);
    assert_eq!(counts.by_status.len(), SubmissionStatus::ALL.len());
    // Only the unsettled ones that never finished are incomplete (ignored is settled).
    assert_eq!(
        (counts.incomplete, counts.interrupted, counts.not_received_by_lis),
        (2, 1, 1)
    );
    let oldest = counts.oldest_waiting.as_ref().expect("two complete ones wait");
    assert_eq!(
        (oldest.id.as_str(), oldest.start_time, oldest.status),
        ("s-1", 3_000, SubmissionStatus::InFlight)
    );
    let failed: Vec<(&str, Option<&str>)> = counts
        .failed
        .iter()
        .map(|f| (f.id.as_str(), f.last_error.as_deref()))
        .collect();
    assert_eq!(
        failed,
        [("s-9", Some("HTTP 500")), ("s-10", Some("HTTP 400"))],
        "ids in natural order"
    );
    // Taking every row away again leaves nothing.
    rows.iter().for_each(|r| tally.remove(r));
    assert_eq!(tally.counts(0, 0), Tally::default().counts(0, 0));
}

#[test]
fn a_retry_stored_beyond_the_cap_is_pulled_in_and_tls_errors_need_an_operator() {
    let mut tally = Tally::default();
    let rows = [
        Counted {
            next_attempt_at: Some(10_000),
            ..row("s-1", SubmissionStatus::Pending)
        },
        Counted {
            next_attempt_at: Some(10_001),
            last_error: Some("TLS: unknown issuer"),
            last_attempt_at: Some(50),
            ..row("s-2", SubmissionStatus::Pending)
        },
        Counted {
            last_error: Some("TLS: expired"),
            last_attempt_at: Some(70),
            ..row("s-3", SubmissionStatus::Pending)
        },
        // Not pending: neither pulled in nor waiting on the endpoint.
        Counted {
            next_attempt_at: Some(99_999),
            last_error: Some("TLS: expired"),
            ..row("s-4", SubmissionStatus::Failed)
        },
    ];
    rows.iter().for_each(|r| tally.add(r));
    // now + cap = 10_000: only a next attempt after that is pulled in.
    let counts = tally.counts(9_000, 1_000);
    assert_eq!(counts.retries_pulled_in, 1);
    assert_eq!(tally.counts(9_000, 999).retries_pulled_in, 2);
    assert_eq!(tally.counts(9_000, 1_001).retries_pulled_in, 0);
    let attention = counts
        .endpoint_attention
        .expect("TLS errors wait for an operator");
    assert_eq!(
        (attention.error.as_str(), attention.sessions),
        ("TLS: expired", 2),
        "the newest error"
    );
    tally.remove(&rows[2]);
    tally.remove(&rows[1]);
    let counts = tally.counts(9_000, 1_000);
    assert!(counts.endpoint_attention.is_none());
    assert_eq!(counts.retries_pulled_in, 0);
    assert_eq!(counts.total, 2);
}

#[test]
fn status_names_the_first_failures_and_counts_them_all() {
    let ids: Vec<String> = (1..=FAILED_NAMED + 5).map(|i| format!("s-{i}")).collect();
    let mut tally = Tally::default();
    for id in &ids {
        tally.add(&row(id, SubmissionStatus::Failed));
    }
    let counts = tally.counts(0, 0);
    assert_eq!(count_of(&counts, SubmissionStatus::Failed), FAILED_NAMED + 5);
    let named: Vec<&str> = counts.failed.iter().map(|f| f.id.as_str()).collect();
    let first: Vec<&str> = ids.iter().take(FAILED_NAMED).map(String::as_str).collect();
    assert_eq!(named, first, "the first in natural order: s-10 after s-9");
    // Taking one named away names the next one.
    tally.remove(&row("s-1", SubmissionStatus::Failed));
    let counts = tally.counts(0, 0);
    assert_eq!(count_of(&counts, SubmissionStatus::Failed), FAILED_NAMED + 4);
    assert_eq!(counts.failed.last().map(|f| f.id.as_str()), Some("s-11"));
}
