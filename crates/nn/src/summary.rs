//! [`Summary`]: a network's blocks as a table (name, output shape, parameters,
//! multiply-adds) with one column Gluon's summary lacks: each block's receptive field on
//! the input (D2L 6.2.6).
//!
//! The table comes from the shape-only pass of [`crate::shape_pass`], during which every
//! block run through [`infer`](crate::shape_pass::infer) gets a row (nested blocks under
//! the block that runs them); no activation is computed. A block that cannot tell its
//! output shape runs its forward on zeros instead, where the blocks it runs through
//! [`call`](crate::hooks::call) get their rows and every op reports its inputs and output
//! ([`kiln_autograd::observe`]). The receptive field travels with the values: a window
//! layer grows the field of its input, a dense layer makes it the whole input, and an op
//! of several inputs (a residual sum, a concatenation) takes the largest of theirs.

use crate::block::{address, name_network, Block, BlockId};
use crate::error::{NnError, Result};
use crate::hooks::BlockCell;
use crate::shape_pass::{Field, ShapeOnly};
use kiln_autograd::{observe, Var};
use kiln_tensor::{Float, Hw, Shape};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// The region of the input one output position depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceptiveField {
    /// A window of this size (h × w) on the input.
    Window(Hw),
    /// The whole input.
    Global,
    /// Not defined (the input is not an image).
    Undefined,
}

/// One block of a [`Summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The block's name in the network (`conv0`).
    pub name: String,
    /// Its kind (`Conv2D`).
    pub kind: &'static str,
    /// How deep it is nested: 0 for the blocks the network runs itself.
    pub depth: usize,
    /// Shape of its output.
    pub output: Shape,
    /// Number of parameter elements it holds, its children's included.
    pub params: u64,
    /// Multiply-adds of its forward pass, its children's included.
    pub mult_adds: u64,
    /// Receptive field of one of its outputs on the network's input.
    pub receptive_field: ReceptiveField,
}

/// The table returned by [`crate::BlockExt::summary`]; `Display` prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The input shape the summary was computed for.
    pub input: Shape,
    /// One row per block run, in the order they started.
    pub rows: Vec<Row>,
    /// Every parameter element of the network, state included (Gluon's count of
    /// `collect_params()`).
    pub total_params: u64,
    /// The elements an optimizer trains (not state, `grad_req` not `null`).
    pub trainable_params: u64,
    /// Multiply-adds of the whole forward pass.
    pub total_mult_adds: u64,
}

/// What a summary in progress keeps.
struct Tracer {
    names: HashMap<BlockId, String>,
    image: bool,
    rows: Vec<Row>,
    /// Rows of the blocks running now, outermost first.
    open: Vec<usize>,
    /// The field of each value seen, by tensor identity.
    fields: HashMap<usize, Field>,
}

thread_local! {
    static TRACER: RefCell<Option<Tracer>> = const { RefCell::new(None) };
}

impl Tracer {
    fn field(&self, id: usize) -> Field {
        self.fields.get(&id).copied().unwrap_or(Field::PIXEL)
    }
}

/// True while a summary is being taken on this thread.
pub(crate) fn tracing() -> bool {
    TRACER.with(|t| t.borrow().is_some())
}

/// Opens a row for `block`, about to run on `x`; false when no summary is being taken.
pub(crate) fn enter<T: Float>(block: &dyn Block<T>, _x: &Var<T>) -> bool {
    open_row(block)
}

/// Closes the row of `block`, which ran on `x` and gave `y` (`None` if it failed).
pub(crate) fn exit<T: Float>(block: &dyn Block<T>, x: &Var<T>, y: Option<&Var<T>>) {
    let out = y.map(|y| {
        let field = match block.children().is_empty() {
            // a layer: its geometry applied to its input's field
            true => field_of(x.id()).through(block.geometry()),
            // a container: where its ops took the value
            false => field_of(y.id()),
        };
        set_field(y.id(), field);
        (y.shape(), field)
    });
    close_row(block, x.shape(), out);
}

/// The field of the value with identity `id` in the summary being taken (a pixel's for a
/// value it has not seen).
pub(crate) fn field_of(id: usize) -> Field {
    TRACER.with(|t| t.borrow().as_ref().map_or(Field::PIXEL, |t| t.field(id)))
}

/// Records the field of the value with identity `id`.
pub(crate) fn set_field(id: usize, field: Field) {
    TRACER.with(|t| {
        if let Some(t) = t.borrow_mut().as_mut() {
            t.fields.insert(id, field);
        }
    })
}

/// Opens a row for `block`, about to run; false when no summary is being taken.
pub(crate) fn open_row<T: Float>(block: &dyn Block<T>) -> bool {
    TRACER.with(|t| {
        let mut t = t.borrow_mut();
        let Some(t) = t.as_mut() else {
            return false;
        };
        // a block with a cell was just named in it; the others by identity
        let name = block
            .cell()
            .and_then(BlockCell::get)
            .or_else(|| t.names.get(&address(block)).cloned())
            .unwrap_or_else(|| block.name());
        let row = Row {
            name,
            kind: block.kind(),
            depth: t.open.len(),
            output: Shape::scalar(),
            params: 0,
            mult_adds: 0,
            receptive_field: ReceptiveField::Undefined,
        };
        t.rows.push(row);
        t.open.push(t.rows.len() - 1);
        true
    })
}

/// Closes the last row opened, of `block`, which ran on an input of shape `input` and
/// gave an output of this shape and field (`None` if it failed).
pub(crate) fn close_row<T: Float>(
    block: &dyn Block<T>,
    input: &Shape,
    out: Option<(&Shape, Field)>,
) {
    TRACER.with(|t| {
        let mut t = t.borrow_mut();
        let Some(t) = t.as_mut() else {
            return;
        };
        let Some(index) = t.open.pop() else {
            return;
        };
        let Some((output, field)) = out else {
            return;
        };
        let mult_adds = if block.children().is_empty() {
            block.mult_adds(input, output)
        } else {
            // its children's rows, which follow its own
            let depth = t.rows[index].depth;
            t.rows[index + 1..]
                .iter()
                .take_while(|r| r.depth > depth)
                .filter(|r| r.depth == depth + 1)
                .fold(0u64, |sum, r| sum.saturating_add(r.mult_adds))
        };
        let receptive_field = if !t.image {
            ReceptiveField::Undefined
        } else if field.global {
            ReceptiveField::Global
        } else {
            ReceptiveField::Window(Hw::new(field.size.0, field.size.1))
        };
        let row = &mut t.rows[index];
        // counted after the block ran, which fixes deferred shapes
        row.params = subtree_params(block);
        row.output = output.clone();
        row.mult_adds = mult_adds;
        row.receptive_field = receptive_field;
    })
}

/// Parameter elements of `block` and its descendants.
fn subtree_params<T: Float>(block: &dyn Block<T>) -> u64 {
    let own = block
        .params()
        .iter()
        .fold(0u64, |n, (_, p)| n.saturating_add(p.shape().numel() as u64));
    block
        .children()
        .into_iter()
        .fold(own, |n, c| n.saturating_add(subtree_params(c)))
}

/// The summary of `net` for an input of `input` (see [`crate::BlockExt::summary`]).
pub(crate) fn summarize<T: Float>(net: &dyn Block<T>, input: &Shape) -> Result<Summary> {
    if tracing() {
        return Err(NnError::invalid(
            "summary",
            "a summary is already being taken on this thread",
        ));
    }
    let x = ShapeOnly::input(input.clone())?;
    let (params, mut names) = name_network(net);
    // the pass fixes shapes but draws no values: ask for initialize() as a forward would
    for (_, p) in params.iter() {
        p.check_initialize_called()?;
    }
    // a network's own row would be the table's total: its children are the top rows; a
    // single layer is its own one row
    let leaf = net.children().is_empty();
    if !leaf {
        names.remove(&address(net));
    }
    let tracer = Tracer {
        names,
        image: input.rank() == 4,
        rows: Vec::new(),
        open: Vec::new(),
        fields: HashMap::new(),
    };
    /// Ends the summary on this thread however the forward pass ends.
    struct Taking;
    impl Drop for Taking {
        fn drop(&mut self) {
            TRACER.with(|t| t.borrow_mut().take());
        }
    }
    TRACER.with(|t| *t.borrow_mut() = Some(tracer));
    let taking = Taking;
    // every op tells the tracer where its output's field comes from
    let on_op: observe::Observer = Rc::new(|_, inputs: &[usize], output| {
        TRACER.with(|t| {
            if let Some(t) = t.borrow_mut().as_mut() {
                let field = inputs
                    .iter()
                    .map(|&i| t.field(i))
                    .reduce(Field::union)
                    .unwrap_or(Field::PIXEL);
                t.fields.insert(output, field);
            }
        })
    });
    let run = observe::with_observer(on_op, || match leaf {
        true => crate::shape_pass::infer(net, &x),
        // the network's own row would be the totals: its children's are the top rows
        false => net
            .infer_shape(&x)
            .unwrap_or_else(|| crate::shape_pass::by_forward(net, &x)),
    });
    let tracer = TRACER.with(|t| t.borrow_mut().take());
    drop(taking);
    run?;
    let Some(tracer) = tracer else {
        return Err(NnError::invalid("summary", "the summary's record was lost"));
    };
    let total_mult_adds = tracer
        .rows
        .iter()
        .filter(|r| r.depth == 0)
        .fold(0u64, |sum, r| sum.saturating_add(r.mult_adds));
    Ok(Summary {
        input: input.clone(),
        rows: tracer.rows,
        total_params: params.count()? as u64,
        trainable_params: params.count_trainable()? as u64,
        total_mult_adds,
    })
}

/// 44426 → "44,426".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn tuple(shape: &Shape) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", dims.join(", "))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| 2 * r.depth + r.name.len() + r.kind.len() + 3)
            .chain([24])
            .max()
            .unwrap_or(24)
            + 2;
        let line = width + 20 + 12 + 16 + 18;
        writeln!(f, "{}", "-".repeat(line))?;
        writeln!(
            f,
            "{:<width$}{:<20}{:>12}{:>16}{:>18}",
            "Layer (type)", "Output shape", "Params", "Mult-adds", "Receptive field"
        )?;
        writeln!(f, "{}", "=".repeat(line))?;
        writeln!(
            f,
            "{:<width$}{:<20}{:>12}{:>16}{:>18}",
            "Input",
            tuple(&self.input),
            0,
            0,
            "1×1"
        )?;
        for r in &self.rows {
            let rf = match r.receptive_field {
                ReceptiveField::Window(hw) => format!("{}×{}", hw.h, hw.w),
                ReceptiveField::Global => format!("{}×{} (all)", self.input[2], self.input[3]),
                ReceptiveField::Undefined => "-".to_string(),
            };
            writeln!(
                f,
                "{:<width$}{:<20}{:>12}{:>16}{:>18}",
                format!("{}{} ({})", "  ".repeat(r.depth), r.name, r.kind),
                tuple(&r.output),
                thousands(r.params),
                thousands(r.mult_adds),
                rf
            )?;
        }
        writeln!(f, "{}", "=".repeat(line))?;
        writeln!(f, "Total params: {}", thousands(self.total_params))?;
        writeln!(f, "Trainable params: {}", thousands(self.trainable_params))?;
        writeln!(
            f,
            "Non-trainable params: {}",
            thousands(self.total_params - self.trainable_params)
        )?;
        writeln!(f, "Total mult-adds: {}", thousands(self.total_mult_adds))?;
        write!(f, "{}", "-".repeat(line))
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(44426), "44,426");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
