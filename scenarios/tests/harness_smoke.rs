use tally_faults::Control;
use tally_scenarios::harness::run::run;
use tally_scenarios::harness::scenario::Scenario;
use tally_scenarios::runtime::run_seeded;

#[test]
fn smoke() {
    for control in Control::ALL {
        for seed in 0..4 {
            let spec = Scenario::Standard.spec(seed, None, &[control]);
            let out = run_seeded(seed, run(&spec));
            eprintln!(
                "{control} seed {seed}: model {} points {} violations {} ",
                out.model, out.crash_points, out.violation_count
            );
            for v in out.violations.iter().take(2) {
                eprintln!("   {v}");
            }
        }
    }
}
