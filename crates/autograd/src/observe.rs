//! Watching the ops a computation runs, without recording them: while an observer is set
//! on a thread, every op of that thread reports its inputs and its output (by the address
//! of their tensors). This is how a network summary follows values through branches it
//! cannot see from the blocks alone (a residual sum, a concatenation).

use std::cell::RefCell;
use std::rc::Rc;

/// What an observer is told about one op: its name, the identities of its inputs' tensors
/// and of its output's tensor (see [`crate::Var::id`]).
pub type Observer = Rc<dyn Fn(&'static str, &[usize], usize)>;

thread_local! {
    static OBSERVER: RefCell<Option<Observer>> = const { RefCell::new(None) };
}

/// Runs `body` with `observer` told about every op this thread runs meanwhile; the
/// previous observer (if any) is restored afterwards, also on a panic.
pub fn with_observer<R>(observer: Observer, body: impl FnOnce() -> R) -> R {
    struct Restore(Option<Observer>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OBSERVER.with(|o| *o.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(OBSERVER.with(|o| o.borrow_mut().replace(observer)));
    body()
}

/// Tells the observer, if one is set, that `op` made `output` from `inputs`.
pub(crate) fn notify(op: &'static str, inputs: &[usize], output: usize) {
    let observer = OBSERVER.with(|o| o.borrow().clone());
    if let Some(observer) = observer {
        observer(op, inputs, output);
    }
}

/// True while an observer is set on this thread.
pub(crate) fn active() -> bool {
    OBSERVER.with(|o| o.borrow().is_some())
}
