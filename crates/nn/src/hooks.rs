//! How a network runs a block: [`call`] (Gluon's `block(x)`, its `__call__`) runs the
//! block's `forward`, then its forward hooks, and tells a running summary what it saw.
//! [`BlockCell`] is what the framework keeps inside a block: the name its network gave it
//! and its hooks.

use crate::block::Block;
use crate::error::{NnError, Result};
use kiln_autograd::Var;
use kiln_tensor::Float;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// A forward hook: called with the block, its input and its output after every
/// [`call`] of it (Gluon's `register_forward_hook`).
pub type ForwardHook<T> = Rc<dyn Fn(&dyn Block<T>, &Var<T>, &Var<T>)>;

/// The hooks of one block, each under its handle's number. A hook is kept type-erased so
/// that blocks generic over nothing (pooling) can hold hooks of any element type.
type HookList = RefCell<Vec<(u64, Box<dyn Any>)>>;
type Hooks = Rc<HookList>;

/// What the framework keeps inside a block: the name its network gave it (`conv0`,
/// `dense2`, …) and its forward hooks. A block that has one returns it from
/// [`Block::cell`]; a user block gets names and hooks by holding one too.
#[derive(Default)]
pub struct BlockCell {
    name: RefCell<Option<String>>,
    hooks: Hooks,
    next_hook: Cell<u64>,
}

impl BlockCell {
    /// A cell with no name and no hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The assigned name, if any.
    pub fn get(&self) -> Option<String> {
        self.name.borrow().clone()
    }

    pub(crate) fn set(&self, name: String) {
        *self.name.borrow_mut() = Some(name);
    }

    /// True when at least one hook is registered.
    pub fn has_hooks(&self) -> bool {
        !self.hooks.borrow().is_empty()
    }

    /// Registers `hook`; the handle removes it.
    pub fn register<T: Float>(&self, hook: ForwardHook<T>) -> HookHandle {
        let id = self.next_hook.get();
        self.next_hook.set(id + 1);
        self.hooks.borrow_mut().push((id, Box::new(hook)));
        HookHandle {
            hooks: Rc::downgrade(&self.hooks),
            id,
        }
    }

    /// Runs the hooks registered for element type `T`, in registration order.
    fn run<T: Float>(&self, block: &dyn Block<T>, x: &Var<T>, y: &Var<T>) {
        // copied out first, so that a hook may register or remove hooks
        let hooks: Vec<ForwardHook<T>> = self
            .hooks
            .borrow()
            .iter()
            .filter_map(|(_, h)| h.downcast_ref::<ForwardHook<T>>().cloned())
            .collect();
        for hook in hooks {
            hook(block, x, y);
        }
    }
}

impl std::fmt::Debug for BlockCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCell")
            .field("name", &self.get())
            .field("hooks", &self.hooks.borrow().len())
            .finish()
    }
}

/// Removes the hook it was returned for (Gluon's `HookHandle.detach`).
#[derive(Debug)]
pub struct HookHandle {
    hooks: Weak<HookList>,
    id: u64,
}

impl HookHandle {
    /// Removes the hook; nothing happens if the block is gone.
    pub fn detach(self) {
        if let Some(hooks) = self.hooks.upgrade() {
            hooks.borrow_mut().retain(|(id, _)| *id != self.id);
        }
    }
}

/// Runs `block` on `x` as a network does: its `forward`, then its forward hooks, and, while
/// a summary is being taken, a row for it. Containers run their children through this
/// (Gluon's `child(x)`); a user block should too, so that hooks and summaries see inside it.
pub fn call<T: Float>(block: &dyn Block<T>, x: &Var<T>) -> Result<Var<T>> {
    let traced = crate::summary::enter(block, x);
    let y = block.forward(x);
    if traced {
        crate::summary::exit(block, x, y.as_ref().ok());
    }
    let y = y?;
    if let Some(cell) = block.cell() {
        cell.run(block, x, &y);
    }
    Ok(y)
}

/// True when `block` must be run on its own, not fused with its neighbours: it has hooks,
/// or a summary is being taken (both need its own output).
pub(crate) fn must_run_alone<T: Float>(block: &dyn Block<T>) -> bool {
    crate::summary::tracing() || block.cell().is_some_and(BlockCell::has_hooks)
}

/// Registers `hook` on `block`; an error if the block keeps no [`BlockCell`].
pub(crate) fn register<T: Float>(block: &dyn Block<T>, hook: ForwardHook<T>) -> Result<HookHandle> {
    block.cell().map(|cell| cell.register(hook)).ok_or_else(|| {
        NnError::invalid(
            block.kind(),
            "this block keeps no BlockCell, so it cannot hold hooks; register the hook on the \
             container that runs it, or wrap the block in one",
        )
    })
}
