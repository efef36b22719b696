//! Rows: ids in the order people read them.

use session_station::natural_cmp;

#[test]
fn ids_sort_as_people_read_them() {
    let mut ids = vec![
        "session-109",
        "session-11",
        "session-9",
        "a",
        "session-011",
        "b2",
        "b10",
        "session-x",
    ];
    ids.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(
        ids,
        [
            "a",
            "b2",
            "b10",
            "session-9",
            "session-011",
            "session-11",
            "session-109",
            "session-x"
        ]
    );
}
