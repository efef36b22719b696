//! Pages of the index: each filter, each order, offsets and limits, against a store of
//! real files.

use session_model::{Direction, Element, ElementKind, Session, SessionId};
use session_station::{ListQuery, SessionIndex, SessionRow, SortKey};
use session_store::{DecodeOptions, SessionStore};

/// Sessions `s-1`..`s-6`: started at n * 1000, from analyzer .1 (odd) or .2 (even),
/// with n messages; `s-2` ignored, `s-5` attempted at 7.
fn index() -> (tempfile::TempDir, SessionStore, SessionIndex) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    for n in 1..=6u64 {
        let device = if n % 2 == 1 { "10.0.0.1" } else { "10.0.0.2" };
        let elements = (0..n)
            .map(|i| {
                Element::new(
                    n * 1_000 + i,
                    Direction::DeviceToPc,
                    ElementKind::Message,
                    b"MSH|x\r".to_vec(),
                )
            })
            .collect();
        let mut session = Session::new(SessionId::new(format!("s-{n}")).unwrap(), n * 1_000, 30)
            .with_addresses(device, "10.0.0.9")
            .with_elements(elements)
            .completed_at(n * 1_000 + 500);
        if n == 5 {
            session.submission.last_attempt_at = Some(7);
        }
        store.save(&mut session).unwrap();
    }
    store.ignore(&SessionId::new("s-2").unwrap()).unwrap();
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    (dir, store, index)
}

fn ids(rows: &[SessionRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

fn page(index: &SessionIndex, query: ListQuery) -> (usize, Vec<String>) {
    let page = index.page(&ListQuery { limit: 10, ..query });
    (
        page.total,
        ids(&page.rows).into_iter().map(str::to_owned).collect(),
    )
}

#[test]
fn the_default_order_is_start_time_and_pages_do_not_overlap() {
    let (_dir, _store, index) = index();
    assert_eq!(
        page(&index, ListQuery::default()).1,
        ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]
    );
    let newest = ListQuery {
        descending: true,
        ..ListQuery::default()
    };
    assert_eq!(
        page(&index, newest.clone()).1,
        ["s-6", "s-5", "s-4", "s-3", "s-2", "s-1"]
    );
    let second = index.page(&ListQuery {
        offset: 2,
        limit: 2,
        ..newest.clone()
    });
    assert_eq!((second.total, ids(&second.rows)), (6, vec!["s-4", "s-3"]));
    let past_the_end = index.page(&ListQuery {
        offset: 6,
        limit: 2,
        ..newest
    });
    assert_eq!((past_the_end.total, past_the_end.rows.len()), (6, 0));
}

#[test]
fn each_filter_passes_only_its_sessions_and_counts_them_all() {
    let (_dir, _store, index) = index();
    let by_device = ListQuery {
        device: Some("10.0.0.2".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        page(&index, by_device),
        (3, vec!["s-2".into(), "s-4".into(), "s-6".into()])
    );
    let unknown_device = ListQuery {
        device: Some("10.0.0.3".into()),
        ..ListQuery::default()
    };
    assert_eq!(page(&index, unknown_device), (0, vec![]));
    let ignored = ListQuery {
        status: Some(session_model::SubmissionStatus::Ignored),
        ..ListQuery::default()
    };
    assert_eq!(page(&index, ignored), (1, vec!["s-2".into()]));
    let window = ListQuery {
        from: Some(2_000),
        to: Some(4_000),
        ..ListQuery::default()
    };
    assert_eq!(
        page(&index, window.clone()).1,
        ["s-2", "s-3", "s-4"],
        "both ends included"
    );
    // A filtered page: the total counts every match, the page only its rows.
    let first_of_window = index.page(&ListQuery {
        limit: 1,
        offset: 1,
        ..window.clone()
    });
    assert_eq!(
        (first_of_window.total, ids(&first_of_window.rows)),
        (3, vec!["s-3"])
    );
    let odd_in_window = ListQuery {
        device: Some("10.0.0.1".into()),
        ..window
    };
    assert_eq!(page(&index, odd_in_window.clone()).1, ["s-3"]);
    assert_eq!(
        index
            .candidates(&odd_in_window)
            .iter()
            .map(|id| &**id)
            .collect::<Vec<_>>(),
        ["s-3"]
    );
}

#[test]
fn every_column_sorts_with_ties_in_start_order() {
    let (_dir, _store, index) = index();
    let sorted = |sort: SortKey, descending: bool| {
        page(
            &index,
            ListQuery {
                sort,
                descending,
                ..ListQuery::default()
            },
        )
        .1
    };
    assert_eq!(
        sorted(SortKey::Messages, true),
        ["s-6", "s-5", "s-4", "s-3", "s-2", "s-1"]
    );
    assert_eq!(
        sorted(SortKey::Device, false),
        ["s-1", "s-3", "s-5", "s-2", "s-4", "s-6"]
    );
    assert_eq!(
        sorted(SortKey::Status, false),
        ["s-2", "s-1", "s-3", "s-4", "s-5", "s-6"],
        "ignored < pending"
    );
    assert_eq!(sorted(SortKey::LastAttempt, true)[0], "s-5");
    assert_eq!(
        sorted(SortKey::Id, true),
        ["s-6", "s-5", "s-4", "s-3", "s-2", "s-1"]
    );
    // A page of a sorted list puts in order only what it needs, and still the right rows.
    let top_two = index.page(&ListQuery {
        sort: SortKey::Messages,
        descending: true,
        limit: 2,
        offset: 1,
        ..ListQuery::default()
    });
    assert_eq!((top_two.total, ids(&top_two.rows)), (6, vec!["s-5", "s-4"]));
    assert_eq!("messageCount".parse::<SortKey>(), Ok(SortKey::Messages));
    assert!(
        "startTime; drop"
            .parse::<SortKey>()
            .unwrap_err()
            .contains("sort must be one of")
    );
}

#[test]
fn a_row_says_what_the_file_says() {
    let (_dir, _store, index) = index();
    let rows = index.rows(&["s-5".into(), "gone".into(), "s-2".into()]);
    assert_eq!(
        ids(&rows),
        ["s-5", "s-2"],
        "in the order asked, the unknown left out"
    );
    let five = &rows[0];
    assert_eq!(five.message_count, Some(5));
    assert_eq!(five.start_time, Some(5_000));
    assert_eq!(five.end_time, Some(5_500));
    assert_eq!(five.device_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(five.lis_ip.as_deref(), Some("10.0.0.9"));
    assert_eq!(five.last_attempt_at, Some(7));
    assert_eq!(five.submission_status.as_deref(), Some("pending"));
    assert_eq!(five.is_complete, Some(true));
    assert!(!five.interrupted && !five.newer);
    assert_eq!(rows[1].submission_status.as_deref(), Some("ignored"));
}

#[test]
fn a_newer_builds_file_is_shown_from_its_familiar_fields() {
    let document = br#"{"id": "s-9", "startTime": 12, "endTime": 15, "isComplete": true,
        "messages": ["a", "b"], "deviceIP": "10.0.0.4", "lisIP": "10.0.0.9", "persistedUntil": 99,
        "interrupted": {"at": 14, "reason": "lisClosed"},
        "submission": {"status": "queuedSomewhere"}, "_metadata": {"version": "9.0.0", "revision": 4}}"#;
    let row = SessionRow::of_newer("s-9".into(), "9.0.0".into(), document);
    assert!(row.newer);
    assert_eq!(row.status, None, "a status this build does not know");
    assert_eq!(row.submission_status.as_deref(), Some("queuedSomewhere"));
    assert_eq!(
        (row.start_time, row.end_time, row.persisted_until),
        (Some(12), Some(15), Some(99))
    );
    assert_eq!((row.message_count, row.is_complete), (Some(2), Some(true)));
    assert!(row.interrupted && row.not_received_by_lis);
    assert_eq!(
        (row.device_ip.as_deref(), row.lis_ip.as_deref()),
        (Some("10.0.0.4"), Some("10.0.0.9"))
    );
    assert_eq!(row.revision, 4);
    let garbage = SessionRow::of_newer("s-8".into(), "9.0.0".into(), b"not json");
    assert_eq!(
        (garbage.start_time, garbage.revision, garbage.interrupted),
        (None, 0, false)
    );
}

#[test]
fn a_sorted_page_of_nothing_or_of_all_but_the_last_row_is_still_in_order() {
    let (_dir, _store, index) = index();
    let by_messages = ListQuery {
        sort: SortKey::Messages,
        descending: true,
        ..ListQuery::default()
    };
    let nothing = index.page(&ListQuery {
        limit: 0,
        ..by_messages.clone()
    });
    assert_eq!((nothing.total, nothing.rows.len()), (6, 0));
    let all_but_one = index.page(&ListQuery {
        limit: 5,
        ..by_messages.clone()
    });
    assert_eq!(ids(&all_but_one.rows), ["s-6", "s-5", "s-4", "s-3", "s-2"]);
    let the_last = index.page(&ListQuery {
        offset: 4,
        limit: 1,
        ..by_messages
    });
    assert_eq!(ids(&the_last.rows), ["s-2"]);
}

#[test]
fn a_session_the_lis_missed_says_so_and_a_crash_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let mut missed = Session::new(SessionId::new("s-1").unwrap(), 1, 30)
        .interrupted_by(session_model::Interruption::lis_closed(5, 120));
    let mut crashed = Session::new(SessionId::new("s-2").unwrap(), 2, 30).interrupted_by(
        session_model::Interruption::new(6, session_model::InterruptionReason::Crash),
    );
    store.save(&mut missed).unwrap();
    store.save(&mut crashed).unwrap();
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let rows = index.rows(&["s-1".into(), "s-2".into()]);
    assert!(rows[0].interrupted && rows[0].not_received_by_lis);
    assert!(rows[1].interrupted && !rows[1].not_received_by_lis);
}

#[test]
fn analyzer_order_walked_from_each_analyzers_rows_is_the_order_a_sort_gives() {
    let (_dir, store, index) = index();
    // Two sessions without an analyzer: they come before every address.
    for (n, start) in [(7u64, 2_500u64), (8, 900)] {
        let mut session = Session::new(SessionId::new(format!("s-{n}")).unwrap(), start, 30);
        store.save(&mut session).unwrap();
        index.refresh(&store, &SessionId::new(format!("s-{n}")).unwrap());
    }
    // `from: 0` passes every session but takes the sorting path: the reference order.
    for descending in [false, true] {
        for (offset, limit) in [(0, 10), (0, 3), (2, 3), (6, 5), (8, 2)] {
            for device in [None, Some("10.0.0.2".to_owned()), Some("10.9.9.9".to_owned())] {
                let walked = ListQuery {
                    sort: SortKey::Device,
                    descending,
                    offset,
                    limit,
                    device: device.clone(),
                    ..ListQuery::default()
                };
                let sorted = ListQuery {
                    from: Some(0),
                    ..walked.clone()
                };
                let (a, b) = (index.page(&walked), index.page(&sorted));
                assert_eq!(
                    (a.total, ids(&a.rows)),
                    (b.total, ids(&b.rows)),
                    "descending {descending}, offset {offset}, limit {limit}, device {device:?}"
                );
            }
        }
    }
    let all = index.page(&ListQuery {
        sort: SortKey::Device,
        limit: 10,
        ..ListQuery::default()
    });
    assert_eq!(
        ids(&all.rows),
        ["s-8", "s-7", "s-1", "s-3", "s-5", "s-2", "s-4", "s-6"]
    );
    // A status or time filter still filters, in analyzer order.
    let filtered = |query: ListQuery| {
        let page = index.page(&ListQuery {
            sort: SortKey::Device,
            limit: 10,
            ..query
        });
        ids(&page.rows).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let ignored = ListQuery {
        status: Some(session_model::SubmissionStatus::Ignored),
        ..ListQuery::default()
    };
    assert_eq!(filtered(ignored), ["s-2"]);
    let until_3000 = ListQuery {
        to: Some(3_000),
        ..ListQuery::default()
    };
    assert_eq!(filtered(until_3000), ["s-8", "s-7", "s-1", "s-3", "s-2"]);
    let from_4000 = ListQuery {
        from: Some(4_000),
        ..ListQuery::default()
    };
    assert_eq!(filtered(from_4000), ["s-5", "s-4", "s-6"]);
}

#[test]
fn a_status_filter_finds_a_newer_builds_file_by_the_word_it_states_with_or_without_an_analyzer() {
    let (dir, store, index) = index();
    for (id, status) in [("s-7", "ignored"), ("s-8", "Ignored"), ("s-9", "stalled")] {
        std::fs::write(
            dir.path().join(format!("{id}.json")),
            format!(
                r#"{{"id": "{id}", "startTime": 9000, "deviceIP": "10.0.0.1", "_metadata": {{"version": "9.0.0"}}, "submission": {{"status": "{status}"}}}}"#
            ),
        )
        .unwrap();
    }
    index.rebuild(&store).unwrap();
    let ignored = ListQuery {
        status: Some(session_model::SubmissionStatus::Ignored),
        ..ListQuery::default()
    };
    // Word for word: "Ignored" and an unknown word are not "ignored".
    assert_eq!(
        page(&index, ignored.clone()),
        (2, vec!["s-2".into(), "s-7".into()])
    );
    let ignored_at_one = ListQuery {
        device: Some("10.0.0.1".into()),
        ..ignored
    };
    assert_eq!(page(&index, ignored_at_one), (1, vec!["s-7".into()]));
    let failed_at_one = ListQuery {
        status: Some(session_model::SubmissionStatus::Failed),
        device: Some("10.0.0.1".into()),
        from: Some(0),
        to: Some(9_000),
        ..ListQuery::default()
    };
    assert_eq!(page(&index, failed_at_one).0, 0);
}
