//! [`Summary`]: a network's blocks as a table (name, output shape, parameters,
//! multiply-adds) with one column Gluon's summary lacks: each block's receptive field on
//! the input (D2L 6.2.6).
//!
//! The table comes from one forward pass in predict mode during which every block run
//! through [`call`](crate::hooks::call) gets a row (nested blocks under the block that
//! runs them), and every op reports its inputs and output
//! ([`kiln_autograd::observe`]). The receptive field travels with the values: a window
//! layer grows the field of its input, a dense layer makes it the whole input, and an op
//! of several inputs (a residual sum, a concatenation) takes the largest of theirs.

use crate::block::{address, name_network, Block, Geometry};
use crate::error::{NnError, Result};
use kiln_autograd::{observe, Var};
use kiln_tensor::{Float, Hw, Shape, Tensor};
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

/// How far one value reaches back into the input: the field's size and the step between
/// neighbouring positions, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    size: (usize, usize),
    jump: (usize, usize),
    global: bool,
}

impl Field {
    const PIXEL: Field = Field {
        size: (1, 1),
        jump: (1, 1),
        global: false,
    };

    /// The field of a value computed from values with these fields: the largest.
    fn union(self, other: Field) -> Field {
        Field {
            size: (self.size.0.max(other.size.0), self.size.1.max(other.size.1)),
            jump: (self.jump.0.max(other.jump.0), self.jump.1.max(other.jump.1)),
            global: self.global || other.global,
        }
    }

    /// The field after a layer of this geometry.
    fn through(self, geometry: Geometry) -> Field {
        match geometry {
            Geometry::Pointwise => self,
            Geometry::Global => Field {
                global: true,
                ..self
            },
            // r_out = r_in + (k − 1)·d·j_in;  j_out = j_in·s
            Geometry::Window {
                kernel,
                stride,
                dilation,
            } => Field {
                size: (
                    self.size.0 + (kernel.h - 1) * dilation.h * self.jump.0,
                    self.size.1 + (kernel.w - 1) * dilation.w * self.jump.1,
                ),
                jump: (self.jump.0 * stride.h, self.jump.1 * stride.w),
                global: self.global,
            },
        }
    }
}

/// What a summary in progress keeps.
struct Tracer {
    names: HashMap<usize, String>,
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
    TRACER.with(|t| {
        let mut t = t.borrow_mut();
        let Some(t) = t.as_mut() else {
            return false;
        };
        let name = t
            .names
            .get(&address(block))
            .cloned()
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

/// Closes the row of `block`, which ran on `x` and gave `y` (`None` if it failed).
pub(crate) fn exit<T: Float>(block: &dyn Block<T>, x: &Var<T>, y: Option<&Var<T>>) {
    TRACER.with(|t| {
        let mut t = t.borrow_mut();
        let Some(t) = t.as_mut() else {
            return;
        };
        let Some(index) = t.open.pop() else {
            return;
        };
        let Some(y) = y else {
            return;
        };
        let leaf = block.children().is_empty();
        let field = if leaf {
            // a layer: its geometry applied to its input's field
            let field = t.field(x.id()).through(block.geometry());
            t.fields.insert(y.id(), field);
            field
        } else {
            // a container: where its ops took the value
            t.field(y.id())
        };
        let mult_adds = if leaf {
            block.mult_adds(x.shape(), y.shape())
        } else {
            // its children's rows, which follow its own
            let depth = t.rows[index].depth;
            t.rows[index + 1..]
                .iter()
                .take_while(|r| r.depth > depth)
                .filter(|r| r.depth == depth + 1)
                .map(|r| r.mult_adds)
                .sum()
        };
        let receptive_field = if !t.image {
            ReceptiveField::Undefined
        } else if field.global {
            ReceptiveField::Global
        } else {
            ReceptiveField::Window(Hw::new(field.size.0, field.size.1))
        };
        let row = &mut t.rows[index];
        // counted after the forward, which fixes deferred shapes
        row.params = subtree_params(block);
        row.output = y.shape().clone();
        row.mult_adds = mult_adds;
        row.receptive_field = receptive_field;
    })
}

/// Parameter elements of `block` and its descendants.
fn subtree_params<T: Float>(block: &dyn Block<T>) -> u64 {
    let own: u64 = block
        .params()
        .iter()
        .map(|(_, p)| p.shape().numel() as u64)
        .sum();
    own + block
        .children()
        .into_iter()
        .map(subtree_params)
        .sum::<u64>()
}

/// The summary of `net` for an input of `input` (see [`crate::BlockExt::summary`]).
pub(crate) fn summarize<T: Float>(net: &dyn Block<T>, input: &Shape) -> Result<Summary> {
    if tracing() {
        return Err(NnError::invalid(
            "summary",
            "a summary is already being taken on this thread",
        ));
    }
    let (params, mut names) = name_network(net);
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
    let x = Var::constant(Tensor::zeros(input.clone()));
    let run = observe::with_observer(on_op, || match leaf {
        true => crate::hooks::call(net, &x),
        false => net.forward(&x),
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
        .map(|r| r.mult_adds)
        .sum();
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
