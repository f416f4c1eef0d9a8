//! One writer per root, on the simulated disk (issue 15, finding 3): a second writer on the
//! same `SimFs` root is refused while the first lives, without touching the disk; a crash
//! image holds no lock, since the crash killed its holder; and the store the first writer
//! leaves passes the oracle.

use std::path::Path;

use tally_harness::oracle::{self, Expectation, ROOT, SourceProgress};
use tally_harness::runtime::run_seeded;
use tally_harness::workload::{Workload, batch};
use tally_pipeline::{Error, Pipeline};
use tally_sim::{CrashModel, SimClock, SimFs, World};

#[test]
fn a_second_writer_on_the_same_simulated_root_is_refused() {
    run_seeded(15, async {
        let workload = Workload::small();
        let disk = SimFs::new();
        let world = World::new(disk.clone(), SimClock::default());
        let (first, _) = Pipeline::open(world.clone(), ROOT, workload.config())
            .await
            .unwrap();
        let source = &workload.sources[0];
        let (start, rows, _) = source.part_ranges()[0];
        first
            .ingest_part_of(
                &source.name,
                Some(tally_harness::workload::fingerprint(&source.name)),
                start,
                batch(&source.name, start, rows, workload.payload_bytes, 0),
                false,
            )
            .await
            .unwrap();

        // The second writer: another process on the same disk, while the first lives.
        let before = disk.tree();
        let err = Pipeline::open(world.clone(), ROOT, workload.config())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Locked { root } if root == Path::new(ROOT)),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("another tally process is writing to /store"),
            "{err}"
        );
        assert_eq!(disk.tree(), before, "the refused writer changed nothing");

        // A crash kills the holder: its image opens, and the oracle accepts it.
        let mut expect = Expectation {
            payload_bytes: workload.payload_bytes,
            ..Expectation::default()
        };
        expect.sources.insert(
            source.name.clone(),
            SourceProgress {
                acked: rows,
                attempted: rows,
            },
        );
        let image = disk.crash(CrashModel::Strict, 7);
        oracle::check(&image, Path::new(ROOT), &workload.config(), &expect)
            .await
            .unwrap();

        // Once the first writer is gone, the next one opens and finds its rows.
        drop(first);
        let (second, _) = Pipeline::open(world, ROOT, workload.config())
            .await
            .unwrap();
        assert_eq!(second.source_state(&source.name).await.rows, rows);
    });
}
