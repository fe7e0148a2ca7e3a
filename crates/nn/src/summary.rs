//! [`Summary`]: a network's layers as a table (name, output shape, parameters,
//! multiply-adds) with one column Gluon's summary lacks: each layer's receptive field on
//! the input, computed down the stack from kernel, stride and dilation (D2L 6.2.6).

use crate::block::{Geometry, Namer};
use kiln_tensor::{Hw, Shape};
use std::fmt;

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

/// One layer of a [`Summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The layer's name in the network (`conv0`).
    pub name: String,
    /// Its kind (`Conv2D`).
    pub kind: &'static str,
    /// Shape of its output.
    pub output: Shape,
    /// Number of parameter elements it owns.
    pub params: u64,
    /// Multiply-adds of its forward pass.
    pub mult_adds: u64,
    /// Receptive field of one of its outputs on the network's input.
    pub receptive_field: ReceptiveField,
}

/// The table returned by [`crate::BlockExt::summary`]; `Display` prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The input shape the summary was computed for.
    pub input: Shape,
    /// One row per layer, in order.
    pub rows: Vec<Row>,
    /// Sum of the parameter column.
    pub total_params: u64,
    /// Sum of the multiply-add column.
    pub total_mult_adds: u64,
}

/// Collects summary rows during a traced forward pass.
pub struct Trace {
    namer: Namer,
    input: Shape,
    rows: Vec<Row>,
    size: (usize, usize),
    jump: (usize, usize),
    global: bool,
}

impl Trace {
    pub(crate) fn new(input: &Shape) -> Self {
        Trace {
            namer: Namer::default(),
            input: input.clone(),
            rows: Vec::new(),
            size: (1, 1),
            jump: (1, 1),
            global: false,
        }
    }

    /// Takes the next name for a container, keeping the numbering in step with the
    /// network's (containers get names but no rows).
    pub fn name(&mut self, prefix: &'static str) -> String {
        self.namer.next(prefix)
    }

    /// Records one layer.
    pub fn row(
        &mut self,
        kind: &'static str,
        prefix: &'static str,
        params: u64,
        mult_adds: u64,
        geometry: Geometry,
        output: &Shape,
    ) {
        match geometry {
            Geometry::Pointwise => {}
            Geometry::Global => self.global = true,
            Geometry::Window {
                kernel,
                stride,
                dilation,
            } => {
                // r_out = r_in + (k − 1)·d·j_in;  j_out = j_in·s
                self.size.0 += (kernel.h - 1) * dilation.h * self.jump.0;
                self.size.1 += (kernel.w - 1) * dilation.w * self.jump.1;
                self.jump = (self.jump.0 * stride.h, self.jump.1 * stride.w);
            }
        }
        let receptive_field = if self.input.rank() != 4 {
            ReceptiveField::Undefined
        } else if self.global {
            ReceptiveField::Global
        } else {
            ReceptiveField::Window(Hw::new(self.size.0, self.size.1))
        };
        self.rows.push(Row {
            name: self.namer.next(prefix),
            kind,
            output: output.clone(),
            params,
            mult_adds,
            receptive_field,
        });
    }

    pub(crate) fn finish(self) -> Summary {
        Summary {
            total_params: self.rows.iter().map(|r| r.params).sum(),
            total_mult_adds: self.rows.iter().map(|r| r.mult_adds).sum(),
            input: self.input,
            rows: self.rows,
        }
    }
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
        let line = "-".repeat(86);
        writeln!(f, "{line}")?;
        writeln!(
            f,
            "{:<24}{:<20}{:>10}{:>14}{:>18}",
            "Layer (type)", "Output shape", "Params", "Mult-adds", "Receptive field"
        )?;
        writeln!(f, "{}", "=".repeat(86))?;
        writeln!(
            f,
            "{:<24}{:<20}{:>10}{:>14}{:>18}",
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
                "{:<24}{:<20}{:>10}{:>14}{:>18}",
                format!("{} ({})", r.name, r.kind),
                tuple(&r.output),
                thousands(r.params),
                thousands(r.mult_adds),
                rf
            )?;
        }
        writeln!(f, "{}", "=".repeat(86))?;
        writeln!(f, "Total params: {}", thousands(self.total_params))?;
        writeln!(f, "Total mult-adds: {}", thousands(self.total_mult_adds))?;
        write!(f, "{line}")
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
