//! Claims about `FaultFs`: each kind of fault does exactly what its plan says, on the simulated
//! disk, and a plan works the same over the real disk.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tally_faults::{
    CallKind, Control, Crash, Effect, ErrorKind, Fault, FaultFs, FaultPlan, Moment, Trigger,
};
use tally_sim::{Clock, CrashModel, CreateMode, Fs, FsFile, RealFs, SimFs};

fn plan(faults: Vec<Fault>) -> FaultPlan {
    FaultPlan {
        faults,
        ..FaultPlan::default()
    }
}

fn at_call(index: u64, effect: Effect) -> Fault {
    Fault {
        at: Trigger::Call { index },
        effect,
    }
}

/// A fresh simulated disk and a `FaultFs` applying `plan` over it.
/// Creates `path` through `fs`, which must not have it yet.
async fn create<F: Fs>(fs: &F, path: &str) -> F::File {
    fs.create(Path::new(path), CreateMode::Exclusive)
        .await
        .unwrap()
}

fn on_sim_disk(plan: FaultPlan) -> (SimFs, FaultFs<SimFs>) {
    let disk = SimFs::new();
    let fs = FaultFs::new(disk.clone(), plan).unwrap();
    (disk, fs)
}

/// A plan with only negative `controls`.
fn controls(controls: Vec<Control>) -> FaultPlan {
    FaultPlan {
        controls,
        ..FaultPlan::default()
    }
}

fn file_bytes(disk: &SimFs, path: &str) -> Option<Vec<u8>> {
    disk.tree().remove(path).flatten()
}

#[tokio::test]
async fn a_crash_after_a_call_lets_it_land_and_refuses_every_later_call() {
    let (disk, fs) = on_sim_disk(FaultPlan {
        crash: Some(Crash {
            at: Trigger::Nth {
                kind: CallKind::Write,
                path: "*.log".into(),
                n: 2,
            },
            moment: Moment::After,
            model: CrashModel::Strict,
        }),
        ..FaultPlan::default()
    });
    let crashed_at = Arc::new(Mutex::new(None));
    let hook = crashed_at.clone();
    fs.on_crash(move |call| *hook.lock().unwrap() = Some(call));
    let f = create(&fs, "/a.log").await;
    f.append(b"one").await.unwrap();
    let err = f.append(b"two").await.unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    // The second append reached the disk before the process died.
    assert_eq!(file_bytes(&disk, "/a.log").unwrap(), b"onetwo");
    assert_eq!(fs.crashed_at(), Some(2));
    assert_eq!(*crashed_at.lock().unwrap(), Some(2));
    assert!(f.sync().await.is_err());
    assert!(fs.exists(Path::new("/a.log")).await.is_err());
    assert_eq!(
        disk.op_count(),
        3,
        "nothing after the crash reaches the disk"
    );
}

#[tokio::test]
async fn a_crash_before_a_call_keeps_it_off_the_disk() {
    let (disk, fs) = on_sim_disk(FaultPlan {
        crash: Some(Crash {
            at: Trigger::Nth {
                kind: CallKind::Rename,
                path: "*".into(),
                n: 1,
            },
            moment: Moment::Before,
            model: CrashModel::Kill,
        }),
        ..FaultPlan::default()
    });
    fs.create(Path::new("/x"), CreateMode::Exclusive)
        .await
        .unwrap();
    assert!(fs.rename(Path::new("/x"), Path::new("/y")).await.is_err());
    assert!(disk.tree().contains_key("/x") && !disk.tree().contains_key("/y"));
}

#[tokio::test]
async fn a_transient_error_fails_one_call_and_a_sticky_one_every_later_call_it_applies_to() {
    let (_, fs) = on_sim_disk(plan(vec![
        at_call(
            1,
            Effect::Error {
                error: ErrorKind::Eio,
                sticky: false,
            },
        ),
        at_call(
            3,
            Effect::Error {
                error: ErrorKind::Enospc,
                sticky: true,
            },
        ),
    ]));
    let f = create(&fs, "/f").await; // call 0
    assert!(f.append(b"a").await.is_err()); // call 1: EIO once
    f.append(b"b").await.unwrap(); // call 2
    let err = f.append(b"c").await.unwrap_err(); // call 3: ENOSPC, sticky
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert!(f.append(b"d").await.is_err(), "sticky: later writes fail");
    assert_eq!(
        f.read_all().await.unwrap(),
        b"b",
        "reads still work under ENOSPC"
    );
    assert!(
        fs.unlink(Path::new("/f")).await.is_ok(),
        "ENOSPC does not stop an unlink"
    );
}

#[tokio::test]
async fn a_failed_fsync_loses_the_unsynced_data_for_good() {
    let (disk, fs) = on_sim_disk(plan(vec![Fault {
        at: Trigger::Nth {
            kind: CallKind::Sync,
            path: "/f".into(),
            n: 2,
        },
        effect: Effect::FailSync,
    }]));
    let f = create(&fs, "/f").await;
    fs.sync_dir(Path::new("/")).await.unwrap();
    f.append(b"kept").await.unwrap();
    f.sync().await.unwrap();
    f.append(b"lost").await.unwrap();
    assert!(f.sync().await.is_err());
    // Retrying the sync succeeds, and the data is still gone: it never becomes durable.
    f.sync().await.unwrap();
    assert_eq!(f.read_all().await.unwrap(), b"kept");
    let image = disk.crash(CrashModel::Strict, 0);
    assert_eq!(file_bytes(&image, "/f").unwrap(), b"kept");
}

#[tokio::test]
async fn a_corrupted_read_flips_one_bit_of_that_read_only() {
    let (disk, fs) = on_sim_disk(plan(vec![Fault {
        at: Trigger::Nth {
            kind: CallKind::Read,
            path: "*".into(),
            n: 1,
        },
        effect: Effect::CorruptRead,
    }]));
    let data = vec![0u8; 64];
    let f = create(&fs, "/f").await;
    f.append(&data).await.unwrap();
    let corrupted = fs.read(Path::new("/f")).await.unwrap();
    let flipped: u32 = corrupted.iter().map(|b| b.count_ones()).sum();
    assert_eq!(flipped, 1);
    assert_eq!(fs.read(Path::new("/f")).await.unwrap(), data);
    assert_eq!(
        file_bytes(&disk, "/f").unwrap(),
        data,
        "the disk is untouched"
    );
}

#[tokio::test]
async fn a_flipped_digit_changes_one_digit_and_keeps_the_json_parseable() {
    let flip = |n| Fault {
        at: Trigger::Nth {
            kind: CallKind::Read,
            path: "*".into(),
            n,
        },
        effect: Effect::FlipDigit,
    };
    let (disk, fs) = on_sim_disk(plan(vec![flip(1), flip(3)]));
    let body = br#"{"version":42,"path":"part-0007.parquet","size":1930}"#.to_vec();
    let f = create(&fs, "/c.json").await;
    f.append(&body).await.unwrap();
    let read = fs.read(Path::new("/c.json")).await.unwrap();
    let changed: Vec<usize> = (0..body.len()).filter(|&i| read[i] != body[i]).collect();
    assert_eq!(changed.len(), 1, "one byte changed");
    let (was, now) = (body[changed[0]], read[changed[0]]);
    assert!(was.is_ascii_digit() && now.is_ascii_digit() && was != now);
    let parsed: serde_json::Value = serde_json::from_slice(&read).expect("still JSON");
    assert_ne!(
        parsed,
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    );
    assert_eq!(
        file_bytes(&disk, "/c.json").unwrap(),
        body,
        "the disk is untouched"
    );
    // A read with no digit in it is returned as it is: nothing to change, nothing reported.
    let g = create(&fs, "/plain").await;
    g.append(b"no digits here").await.unwrap();
    assert_eq!(fs.read(Path::new("/c.json")).await.unwrap(), body);
    assert_eq!(
        fs.read(Path::new("/plain")).await.unwrap(),
        b"no digits here"
    );
}

#[tokio::test]
async fn a_clock_jump_moves_the_fault_clock_from_its_call_on() {
    #[derive(Clone)]
    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
        }
        async fn sleep(&self, _: Duration) {}
    }
    let fs = FaultFs::new(
        SimFs::new(),
        plan(vec![at_call(1, Effect::ClockJump { seconds: -3600 })]),
    )
    .unwrap();
    let clock = fs.clock(Fixed);
    let before = clock.now();
    fs.exists(Path::new("/")).await.unwrap();
    assert_eq!(clock.now(), before);
    fs.exists(Path::new("/")).await.unwrap();
    assert_eq!(
        before.duration_since(clock.now()).unwrap(),
        Duration::from_secs(3600)
    );
}

#[tokio::test]
async fn a_lying_directory_sync_leaves_a_new_name_undurable() {
    let (disk, fs) = on_sim_disk(controls(vec![Control::LyingSyncDir]));
    let f = create(&fs, "/f").await;
    f.append(b"x").await.unwrap();
    f.sync().await.unwrap();
    fs.sync_dir(Path::new("/")).await.unwrap();
    assert!(
        fs.sync_dir(Path::new("/missing")).await.is_err(),
        "still notices a missing directory"
    );
    assert!(!disk.crash(CrashModel::Strict, 0).tree().contains_key("/f"));
}

#[tokio::test]
async fn a_lying_sync_leaves_the_data_undurable() {
    let (disk, fs) = on_sim_disk(controls(vec![Control::LyingSync]));
    let f = create(&fs, "/f").await;
    f.append(b"x").await.unwrap();
    f.sync().await.unwrap();
    fs.sync_dir(Path::new("/")).await.unwrap();
    assert_eq!(
        file_bytes(&disk.crash(CrashModel::Strict, 0), "/f").unwrap(),
        b""
    );
}

#[tokio::test]
async fn rename_before_data_makes_the_rename_durable_and_not_the_data() {
    let (disk, fs) = on_sim_disk(controls(vec![Control::RenameBeforeData]));
    // A log that is synced and never renamed: its sync lands at the next call.
    let log = create(&fs, "/log").await;
    log.append(b"log").await.unwrap();
    log.sync().await.unwrap();
    fs.sync_dir(Path::new("/")).await.unwrap();
    // Publish by rename: write, sync, rename, sync_dir — the rename overtakes the data.
    let tmp = create(&fs, "/new.tmp").await;
    tmp.append(b"data").await.unwrap();
    tmp.sync().await.unwrap();
    fs.rename(Path::new("/new.tmp"), Path::new("/new"))
        .await
        .unwrap();
    fs.sync_dir(Path::new("/")).await.unwrap();
    let image = disk.crash(CrashModel::Strict, 0);
    assert_eq!(file_bytes(&image, "/log").unwrap(), b"log");
    assert_eq!(
        file_bytes(&image, "/new").unwrap(),
        b"",
        "the name is durable, the data is not"
    );
    assert_eq!(
        file_bytes(&disk, "/new").unwrap(),
        b"data",
        "reads still see the data"
    );
}

/// The commit protocol's rename is a no-replace one: the control must overtake it as it
/// overtakes a rename, or a sweep under the control would stop showing that the protocol needs
/// its sync before the rename. Without the control the same calls keep the data.
#[tokio::test]
async fn rename_before_data_overtakes_a_no_replace_rename_too() {
    for controlled in [false, true] {
        let plan = controls(if controlled {
            vec![Control::RenameBeforeData]
        } else {
            vec![]
        });
        let (disk, fs) = on_sim_disk(plan);
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        fs.on_event(move |e| sink.lock().unwrap().push(e.what.clone()));
        let tmp = create(&fs, "/_commit_1.json.tmp").await;
        tmp.append(b"data").await.unwrap();
        tmp.sync().await.unwrap();
        fs.rename_noreplace(Path::new("/_commit_1.json.tmp"), Path::new("/1.json"))
            .await
            .unwrap();
        fs.sync_dir(Path::new("/")).await.unwrap();
        let image = disk.crash(CrashModel::Strict, 0);
        let expected: &[u8] = if controlled { b"" } else { b"data" };
        assert_eq!(file_bytes(&image, "/1.json").unwrap(), expected);
        let overtaken = events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("control rename-before-data"));
        assert_eq!(overtaken, controlled);
    }
}

/// A `rename` trigger counts no-replace renames (plans written for publish-by-rename keep
/// hitting a commit that became a no-replace rename); a `rename-noreplace` trigger counts
/// only those.
#[tokio::test]
async fn a_rename_trigger_counts_no_replace_renames_and_not_the_other_way_round() {
    for (kind, crashed_at) in [(CallKind::Rename, 4), (CallKind::RenameNoReplace, 5)] {
        let (disk, fs) = on_sim_disk(FaultPlan {
            crash: Some(Crash {
                at: Trigger::Nth {
                    kind,
                    path: "*".into(),
                    n: 2,
                },
                moment: Moment::Before,
                model: CrashModel::Kill,
            }),
            ..FaultPlan::default()
        });
        for name in ["/a", "/b", "/c"] {
            create(&fs, name).await; // calls 0, 1, 2
        }
        fs.rename(Path::new("/a"), Path::new("/a2")).await.unwrap(); // call 3
        let second = fs.rename_noreplace(Path::new("/b"), Path::new("/b2")).await; // call 4
        let third = fs.rename_noreplace(Path::new("/c"), Path::new("/c2")).await; // call 5
        assert_eq!(fs.crashed_at(), Some(crashed_at), "{kind}");
        assert_eq!(second.is_err(), crashed_at == 4, "{kind}");
        assert!(third.is_err(), "{kind}");
        let tree = disk.tree();
        assert_eq!(
            tree.contains_key("/b2"),
            crashed_at == 5,
            "{kind}: {tree:?}"
        );
        assert!(
            !tree.contains_key("/c2"),
            "crashed before the call: {tree:?}"
        );
    }
}

#[tokio::test]
async fn an_injected_error_fails_a_no_replace_rename_without_reaching_the_disk() {
    let (disk, fs) = on_sim_disk(plan(vec![Fault {
        at: Trigger::Nth {
            kind: CallKind::RenameNoReplace,
            path: "*/1.json".into(),
            n: 1,
        },
        effect: Effect::Error {
            error: ErrorKind::Enospc,
            sticky: false,
        },
    }]));
    create(&fs, "/t").await;
    let err = fs
        .rename_noreplace(Path::new("/t"), Path::new("/1.json"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert!(err.to_string().contains("rename_noreplace"), "{err}");
    assert!(disk.tree().contains_key("/t") && !disk.tree().contains_key("/1.json"));
    fs.rename_noreplace(Path::new("/t"), Path::new("/1.json"))
        .await
        .expect("the fault hit once");
    assert!(disk.tree().contains_key("/1.json"));
}

#[test]
fn plans_name_the_kind_rename_noreplace_and_old_plans_still_parse() {
    let old = r#"{"crash": {"at": {"trigger": "nth", "kind": "rename", "path": "*", "n": 1},
                  "model": "strict"}}"#;
    let old: FaultPlan = serde_json::from_str(old).unwrap();
    assert_eq!(old.to_string(), "crash after rename #1 on * (strict)");
    let new = r#"{"faults": [{"at": {"trigger": "nth", "kind": "rename-noreplace",
                  "path": "*/_delta_log/*", "n": 2}, "effect": {"effect": "fail-sync"}}]}"#;
    let new: FaultPlan = serde_json::from_str(new).unwrap();
    assert_eq!(
        new.to_string(),
        "failing fsync (unsynced data lost) at rename-noreplace #2 on */_delta_log/*"
    );
    let json = serde_json::to_string(&new).unwrap();
    assert_eq!(serde_json::from_str::<FaultPlan>(&json).unwrap(), new);
}

#[tokio::test]
async fn a_plan_applies_over_the_real_disk_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let fs = FaultFs::new(
        RealFs,
        plan(vec![Fault {
            at: Trigger::Nth {
                kind: CallKind::Sync,
                path: "*/f".into(),
                n: 1,
            },
            effect: Effect::FailSync,
        }]),
    )
    .unwrap();
    let f = fs.create(&path, CreateMode::Exclusive).await.unwrap();
    f.append(b"x").await.unwrap();
    let err = f.sync().await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    f.sync().await.unwrap();
    assert_eq!(fs.read(&path).await.unwrap(), b"x");
}

/// The profile the generator tests draw from: a crash, every fault kind, corrupted log reads.
fn profile_of(mix: tally_faults::generate::Mix) -> tally_faults::generate::Profile {
    tally_faults::generate::Profile {
        expected_calls: 500,
        crash: true,
        model: None,
        faults: true,
        corruptible: vec!["*/log/*".into()],
        controls: vec![],
        latency: None,
        mix,
    }
}

#[test]
fn generated_plans_follow_from_the_seed() {
    use tally_faults::generate::{Mix, generate};
    let profile = profile_of(Mix::UNIFORM);
    assert_eq!(generate(7, &profile), generate(7, &profile));
    let distinct: std::collections::BTreeSet<String> =
        (0..50).map(|s| generate(s, &profile).to_string()).collect();
    assert!(
        distinct.len() > 45,
        "seeds give different plans: {}",
        distinct.len()
    );
    assert!((0..50).all(|s| generate(s, &profile).crash.is_some()));
}

/// `rename-noreplace` is never drawn (`rename` triggers count those calls): the kinds drawn
/// are those drawn before it existed, so every seed still names the plan it named.
#[test]
fn generated_plans_keep_their_seeds_and_never_draw_rename_noreplace() {
    use tally_faults::generate::{Mix, generate};
    let profile = profile_of(Mix::UNIFORM);
    let plans: Vec<String> = (0..200)
        .map(|s| generate(s, &profile).to_string())
        .collect();
    assert!(plans.iter().all(|p| !p.contains("rename-noreplace")));
    assert_eq!(
        [plans[0].as_str(), plans[6].as_str()],
        [
            "crash after write #11 on * (torn-4k); clock jump +5483 s at call #385",
            "crash before write #1 on */_delta_log/* (prefix)",
        ],
        "what seeds 0 and 6 gave before `rename-noreplace` existed"
    );
}

/// A skewed mix draws only what it allows: no fault kind it switched off, no trigger on a call
/// kind or path it left out.
#[test]
fn a_mix_draws_only_the_kinds_and_triggers_it_allows() {
    use tally_faults::generate::{Mix, generate};
    use tally_faults::{Effect, Trigger};
    let mix = Mix {
        error: 0.0,
        fail_sync: 0.9,
        corrupt_read: 0.0,
        clock_jump: 0.0,
        by_index: 0.0,
        kinds: Some(vec![CallKind::Sync, CallKind::Rename]),
        patterns: Some(vec!["*/_delta_log/*".into()]),
    };
    let profile = profile_of(mix);
    let plans: Vec<_> = (0..200).map(|s| generate(s, &profile)).collect();
    let triggers = plans.iter().flat_map(|p| {
        p.faults
            .iter()
            .map(|f| &f.at)
            .chain(p.crash.as_ref().map(|c| &c.at))
    });
    for at in triggers {
        match at {
            Trigger::Nth { kind, path, .. } => {
                assert!(matches!(kind, CallKind::Sync | CallKind::Rename), "{at:?}");
                assert_eq!(path, "*/_delta_log/*");
            }
            other => panic!("a trigger by index, which the mix left out: {other:?}"),
        }
    }
    let effects: Vec<_> = plans
        .iter()
        .flat_map(|p| &p.faults)
        .map(|f| &f.effect)
        .collect();
    assert!(
        effects.iter().all(|e| matches!(e, Effect::FailSync)),
        "{effects:?}"
    );
    assert!(
        effects.len() > 150,
        "fail-sync weighted to 0.9: {}",
        effects.len()
    );
}

/// Every event's index against the disk's op log: the entry of that index is the same call.
fn events_name_logged_calls(disk: &SimFs, events: &[tally_faults::FaultEvent]) {
    let log = disk.op_log();
    for e in events {
        let op = log
            .get(e.call as usize)
            .unwrap_or_else(|| panic!("event at #{} past the log's end: {e:?}", e.call));
        assert_eq!(
            (op.kind, op.path.as_str()),
            (e.op, e.path.as_str()),
            "{e:?}"
        );
    }
}

fn recording(fs: &FaultFs<SimFs>) -> Arc<Mutex<Vec<tally_faults::FaultEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    fs.on_event(move |e| sink.lock().unwrap().push(e.clone()));
    events
}

#[tokio::test]
async fn a_call_the_wrapper_answers_itself_takes_its_index_in_the_disk_log() {
    let eio = Effect::Error {
        error: ErrorKind::Eio,
        sticky: false,
    };
    // #0 lock, #1 create, #2 append (refused), #3 append, #4 sync (lying), #5 crash before.
    let mut plan = plan(vec![at_call(2, eio)]);
    plan.controls = vec![Control::LyingSync];
    plan.crash = Some(Crash {
        at: Trigger::Call { index: 5 },
        moment: Moment::Before,
        model: CrashModel::Strict,
    });
    let (disk, fs) = on_sim_disk(plan);
    let events = recording(&fs);
    let _lock = fs.try_lock(Path::new("/")).await.unwrap();
    let f = create(&fs, "/a").await;
    assert!(f.append(b"x").await.is_err());
    f.append(b"y").await.unwrap();
    f.sync().await.unwrap();
    assert!(fs.unlink(Path::new("/a")).await.is_err());
    let kinds: Vec<_> = disk.op_log().iter().map(|op| op.kind).collect();
    use tally_sim::OpKind::*;
    assert_eq!(kinds, [Lock, Create, Append, Append, Sync, Unlink]);
    assert_eq!(fs.crashed_at(), Some(5));
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    events_name_logged_calls(&disk, &events);
    assert!(
        disk.tree().contains_key("/a"),
        "the unlink never reached the disk"
    );
}

#[tokio::test]
async fn a_call_trigger_on_an_index_the_wrapper_never_sees_fires_on_its_next_call() {
    let (disk, fs) = on_sim_disk(FaultPlan {
        crash: Some(Crash {
            at: Trigger::Call { index: 1 },
            moment: Moment::After,
            model: CrashModel::Strict,
        }),
        ..FaultPlan::default()
    });
    let events = recording(&fs);
    create(&fs, "/a").await; // #0
    disk.exists(Path::new("/a")).await.unwrap(); // #1, on the disk directly
    fs.exists(Path::new("/a")).await.unwrap_err(); // #2: the crash fires here, once
    assert_eq!(fs.crashed_at(), Some(2));
    events_name_logged_calls(&disk, &events.lock().unwrap());
}

/// The check above can fail: an event naming another call's index is caught.
#[test]
#[should_panic(expected = "Create")]
fn an_event_naming_another_calls_index_is_caught() {
    let disk = SimFs::new();
    disk.record_answered(tally_sim::OpKind::Create, Path::new("/a"), None, Ok(()));
    let wrong = tally_faults::FaultEvent {
        call: 0,
        op: tally_sim::OpKind::Sync,
        path: "/a".into(),
        what: "crash after this call".into(),
        injected: None,
    };
    events_name_logged_calls(&disk, &[wrong]);
}
