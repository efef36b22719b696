//! Real processes on a real disk, killed with SIGKILL at random moments.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use session_fs::Store;
use session_model::SessionId;
use session_store::{DecodeOptions, SessionStore, decode};

const CHILD_DIR: &str = "SESSION_RECOVERY_KILL_CHILD_DIR";
const CHILD_START: &str = "SESSION_RECOVERY_KILL_CHILD_START";
const IDS: [&str; 3] = ["k0", "k1", "k2"];
const KILLS: usize = 200;

fn session(id: &str, tag: u64) -> session_model::Session {
    let doc = format!(
        r#"{{"id": "{id}", "startTime": 1, "isComplete": true, "elements": [], "messages": [], "tag": {tag}}}"#
    );
    decode(doc.as_bytes()).unwrap().session
}

/// Not a test on its own: the body of the child processes the test below kills.
#[test]
fn child_saves_until_killed() {
    let (Ok(dir), Ok(start)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_START)) else {
        return;
    };
    let store = SessionStore::new(Store::open(dir).unwrap(), DecodeOptions::default());
    let mut stdout = std::io::stdout().lock();
    for tag in start.parse::<u64>().unwrap().. {
        let id = IDS[(tag % 3) as usize];
        store.save(&mut session(id, tag)).unwrap();
        writeln!(stdout, "ack {id} {tag}").unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_save() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(0x005e_5510);
    let mut last_acked = [0u64; 3];
    let mut next_start = 1u64;
    let (mut promoted, mut torn, mut acked_total) = (0, 0, 0);
    for round in 0..KILLS {
        let mut child = test_support::ChildGuard::new(
            test_support::rerun_as_child("child_saves_until_killed")
                .env(CHILD_DIR, dir.path())
                .env(CHILD_START, next_start.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Kill it once it has acknowledged a chosen number of saves (1 to 8): the moment
        // is chosen by what the child did, not by a clock, so every round kills a child
        // that acknowledged something and may be anywhere in its next save.
        let after = rng.random_range(1..=8usize);
        let parse = |l: &str| -> Option<(String, u64)> {
            // libtest's own "test ... " prefix may share the first line.
            let mut parts = l[l.rfind("ack ")? + 4..].split(' ');
            Some((parts.next()?.to_owned(), parts.next()?.parse::<u64>().ok()?))
        };
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks = Vec::new();
        for line in lines.by_ref().map_while(Result::ok) {
            acks.extend(parse(&line));
            if acks.len() >= after {
                break;
            }
        }
        assert!(
            acks.len() >= after,
            "round {round}: the child stopped after {} acks",
            acks.len()
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acknowledged between our read and the kill: still in the pipe.
        acks.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
        acked_total += acks.len();
        for (id, tag) in &acks {
            let i = IDS.iter().position(|x| x == id).unwrap();
            last_acked[i] = last_acked[i].max(*tag);
        }
        let highest_begun = acks.last().map_or(next_start, |(_, t)| t + 1);

        let store = SessionStore::new(
            Store::options().exclusive().open(dir.path()).unwrap(),
            DecodeOptions::default(),
        );
        let report = session_recovery::recover(&store).unwrap();
        // A kill between creating and filling a temp leaves it torn: quarantined, never
        // a live file.
        assert!(
            report
                .moved
                .iter()
                .all(|m| m.action != session_recovery::Action::Quarantined || m.file.ends_with(".tmp")),
            "round {round}: {report:?}"
        );
        torn += report.quarantined;
        promoted += report.recovered;
        for (i, id) in IDS.iter().enumerate() {
            let id = SessionId::new(*id).unwrap();
            let found = store
                .load(&id)
                .unwrap_or_else(|e| panic!("round {round}: {e}"))
                .map(|d| d.session.unknown["tag"].as_u64().unwrap());
            if last_acked[i] > 0 {
                let tag = found.unwrap_or_else(|| panic!("round {round}: {id} lost"));
                assert!(
                    tag >= last_acked[i] && tag <= highest_begun,
                    "round {round}: {id} holds {tag}, last acknowledged {}",
                    last_acked[i]
                );
                last_acked[i] = tag;
            }
        }
        assert!(store.fs().maintenance().scan().unwrap().temps.is_empty());
        next_start = highest_begun + 1;
    }
    eprintln!(
        "{KILLS} SIGKILLs, {acked_total} acknowledged saves, {promoted} temps promoted, {torn} torn temps quarantined"
    );
    assert!(acked_total >= KILLS, "every child acknowledged at least one save");
}
