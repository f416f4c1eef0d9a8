//! Coverage probes: marks at the protocol's interesting moments (a table file synced but not
//! yet renamed, a commit renamed but its directory not yet synced, a repair recovery made),
//! which the simulation harness collects to prove its crash points reached those moments.
//!
//! A mark is [`probe!`]`("name")`. Built without the `probes` feature (every production build)
//! it expands to nothing: no code, no cost (the sink below exists, and nothing ever calls
//! it). With it (the simulation harness enables it) it
//! hands the name to the sink installed on the current thread, if any. The simulation runs each
//! seed's tasks on one thread, so a sink set by a run sees exactly that run's marks.

use std::cell::RefCell;
use std::rc::Rc;

/// What receives the marks of the current thread.
pub type Sink = Rc<dyn Fn(&'static str)>;

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Installs `sink` for the current thread; returns the one it replaces.
pub fn set_sink(sink: Option<Sink>) -> Option<Sink> {
    SINK.with(|s| std::mem::replace(&mut *s.borrow_mut(), sink))
}

/// Hands `name` to the current thread's sink. Called by [`probe!`] only.
#[doc(hidden)]
pub fn hit(name: &'static str) {
    // Cloned out first: the sink may itself install another sink.
    let sink = SINK.with(|s| s.borrow().clone());
    if let Some(sink) = sink {
        sink(name);
    }
}

/// Whether marks are compiled in.
pub const ENABLED: bool = cfg!(feature = "probes");

/// Marks a moment of the protocol (see the module's documentation).
#[cfg(feature = "probes")]
#[macro_export]
macro_rules! probe {
    ($name:literal) => {
        $crate::probe::hit($name)
    };
}

/// Marks a moment of the protocol: compiled out in this build.
#[cfg(not(feature = "probes"))]
#[macro_export]
macro_rules! probe {
    ($name:literal) => {{}};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "a second thread shows the sink is per thread"
    )]
    fn a_mark_reaches_the_sink_of_its_thread_only() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        set_sink(Some(Rc::new(move |name| sink.borrow_mut().push(name))));
        hit("here");
        std::thread::scope(|s| {
            s.spawn(|| hit("elsewhere"));
        });
        set_sink(None);
        hit("after");
        assert_eq!(*seen.borrow(), ["here"]);
    }
}
