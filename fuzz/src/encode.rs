//! Writes fuzz inputs in the byte format `arbitrary` 1.x reads, so the seed corpus can hold
//! valid callbacks. The seed generator decodes every input it writes and checks that it reads
//! back as what was meant, so a change of that format fails there, loudly.
//!
//! The format, as `Unstructured` reads it: integers little-endian from the front; a `bool` is a
//! byte's low bit; a collection is its elements, each preceded by a `true` byte, then a `false`
//! byte; a `&str` or `&[u8]` takes its length from the *end* of the data (1, 2 or 4 big-endian
//! bytes, depending on how much data remains) and its bytes from the front; the last field of a
//! struct takes the rest; an enum's variant is `(u32 * count) >> 32`.

use crate::{CallbackInput, HeaderName, QueryPayload};

#[derive(Debug, Clone)]
enum Op {
    Intake(Vec<u8>),
    Sized(Vec<u8>),
}

/// Builds one input, read by read.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    ops: Vec<Op>,
    rest: Vec<u8>,
}

impl Encoder {
    /// A `bool`.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.ops.push(Op::Intake(vec![u8::from(value)]));
        self
    }

    /// A `u8`.
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.ops.push(Op::Intake(vec![value]));
        self
    }

    /// The variant `index` of an enum of `count` variants.
    pub fn variant(&mut self, index: u32, count: u32) -> &mut Self {
        let value = (u64::from(index) << 32).div_ceil(u64::from(count));
        let value = u32::try_from(value).expect("index < count");
        self.ops.push(Op::Intake(value.to_le_bytes().to_vec()));
        self
    }

    /// A `&str` or `&[u8]` that is not the last field.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.ops.push(Op::Sized(value.to_vec()));
        self
    }

    /// The last field's bytes (taken whole).
    pub fn rest(&mut self, value: &[u8]) -> &mut Self {
        self.rest = value.to_vec();
        self
    }

    /// The input.
    pub fn finish(&self) -> Vec<u8> {
        let front_len: usize = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Intake(b) | Op::Sized(b) => b.len(),
            })
            .sum::<usize>()
            + self.rest.len();
        let sized = self.ops.iter().filter(|op| matches!(op, Op::Sized(_))).count();
        // How many length bytes each sized read takes depends on how much data remains at that
        // read, which depends on the total: iterate to the fixed point (sizes only grow).
        // (width, data remaining at the read) of each sized read.
        let mut widths = vec![(1usize, 0usize); sized];
        loop {
            let total = front_len + widths.iter().map(|(width, _)| width).sum::<usize>();
            let mut consumed = 0;
            let mut next = Vec::with_capacity(sized);
            let mut n = 0;
            for op in &self.ops {
                match op {
                    Op::Intake(b) => consumed += b.len(),
                    Op::Sized(b) => {
                        let remaining = total - consumed;
                        let width = match remaining {
                            0 => 0,
                            1..=256 => 1,
                            257..=65_537 => 2,
                            _ => 4,
                        };
                        assert!(remaining > 1 || b.is_empty(), "no room for a non-empty string");
                        next.push((width, remaining));
                        consumed += width + b.len();
                        n += 1;
                    }
                }
            }
            debug_assert_eq!(n, sized);
            if next.iter().map(|(w, _)| w).eq(widths.iter().map(|(w, _)| w)) {
                widths = next;
                break;
            }
            widths = next;
        }
        let mut front = Vec::with_capacity(front_len);
        let mut tail: Vec<Vec<u8>> = Vec::with_capacity(sized);
        let mut widths = widths.into_iter();
        for op in &self.ops {
            match op {
                Op::Intake(b) => front.extend_from_slice(b),
                Op::Sized(b) => {
                    let (width, remaining) = widths.next().unwrap_or((0, 0));
                    // The length is read big-endian from as many of its bytes as the largest
                    // possible length (`remaining - width`) needs; the others are ignored.
                    let max = remaining.saturating_sub(width);
                    let used = (1..=width).find(|n| max >> (8 * n) == 0).unwrap_or(width);
                    let len = u32::try_from(b.len()).expect("inputs are small").to_be_bytes();
                    let mut chunk = len[4 - used..].to_vec();
                    chunk.resize(width, 0);
                    tail.push(chunk);
                    front.extend_from_slice(b);
                }
            }
        }
        front.extend_from_slice(&self.rest);
        // The first sized read takes its length from the very end.
        for chunk in tail.iter().rev() {
            front.extend_from_slice(chunk);
        }
        front
    }
}

/// The bytes a fuzz target reads as `input`.
pub fn callback_input(input: &CallbackInput<'_>) -> Vec<u8> {
    let mut e = Encoder::default();
    e.bool(input.signed);
    for (name, value) in &input.headers {
        e.bool(true);
        match name {
            HeaderName::Known(n) => e.variant(0, 2).u8(*n),
            HeaderName::Other(name) => e.variant(1, 2).bytes(name.as_bytes()),
        };
        e.bytes(value.as_bytes());
    }
    e.bool(false);
    query(&mut e, &input.query);
    e.rest(input.body);
    e.finish()
}

/// The bytes `parse_kuaidi100` reads as `input`.
pub fn query_payload(input: &QueryPayload<'_>) -> Vec<u8> {
    let mut e = Encoder::default();
    query(&mut e, &input.query);
    e.rest(input.payload);
    e.finish()
}

fn query(e: &mut Encoder, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        e.bool(true).bytes(k.as_bytes()).bytes(v.as_bytes());
    }
    e.bool(false);
}
