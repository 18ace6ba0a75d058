//! A minimal, safe pickle virtual machine for PyTorch checkpoints.
//!
//! It understands the opcodes `torch.save` emits (protocols 2–5) and builds only
//! [`Value`]s: dicts, lists, tuples, scalars, strings and torch tensors. `GLOBAL`s are
//! limited to the short list in [`Global::resolve`]; any other is refused, so no code
//! named by the file is ever "called". All lengths read from the file are checked against
//! the bytes that remain before anything is allocated.

mod value;

pub use value::{Dict, Global, StorageRef, TensorRef, Value};

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a pickle could not be read. `offset` is the byte position of the opcode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickleError {
    #[error("pickle ends unexpectedly at byte {offset} (reading {what})")]
    Truncated { offset: usize, what: &'static str },
    #[error("unsupported pickle opcode 0x{opcode:02x} at byte {offset}")]
    UnsupportedOpcode { opcode: u8, offset: usize },
    #[error("refusing pickle global `{module}.{name}` at byte {offset}: only tensors, storages and (Ordered)dicts are allowed")]
    UnsupportedGlobal {
        module: String,
        name: String,
        offset: usize,
    },
    #[error("malformed pickle at byte {offset}: {msg}")]
    Malformed { offset: usize, msg: String },
}

/// What the VM asks of its host: resolving a persistent id (`BINPERSID`) to a storage.
pub trait PersistentLoader {
    fn persistent_load(&mut self, pid: &Value) -> Result<Value, String>;
}

/// Runs one pickle from the start of `data` to its `STOP`.
/// Returns the unpickled value and the number of bytes consumed.
pub fn unpickle(
    data: &[u8],
    loader: &mut dyn PersistentLoader,
) -> Result<(Value, usize), PickleError> {
    let mut vm = Vm {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        loader,
        linked: Vec::new(),
    };
    let result = vm.run().and_then(|r| {
        if value::has_cycle(&vm.linked) {
            Err(PickleError::Malformed {
                offset: r.1,
                msg: "a container holds itself (a reference cycle; no checkpoint has one)".into(),
            })
        } else {
            Ok(r)
        }
    });
    if result.is_err() {
        // Reference counting cannot free a cycle: empty every container that may be in one.
        vm.linked.iter().for_each(value::clear_container);
    }
    result
}

struct Vm<'a, 'l> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    loader: &'l mut dyn PersistentLoader,
    /// Every list/dict that was given a container (tuple, list or dict) as an item: the
    /// only places a reference cycle can close.
    linked: Vec<Value>,
}

impl<'a> Vm<'a, '_> {
    fn run(&mut self) -> Result<(Value, usize), PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8("opcode")?;
            match op {
                0x80 => {
                    let proto = self.u8("protocol")?;
                    if proto > 5 {
                        return Err(
                            self.malformed(at, format!("pickle protocol {proto} is newer than 5"))
                        );
                    }
                }
                0x95 => {
                    // FRAME: an 8-byte length hint; the frame's opcodes simply follow.
                    self.take(8, "frame length")?;
                }
                b'.' => {
                    let v = self.pop(at)?;
                    return Ok((v, self.pos));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop(at)?;
                }
                b'1' => {
                    self.pop_mark(at)?;
                }
                b'2' => {
                    let top = self.top(at)?.clone();
                    self.stack.push(top);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let b = self.take(4, "BININT")?;
                    self.stack.push(Value::Int(i64::from(i32::from_le_bytes([
                        b[0], b[1], b[2], b[3],
                    ]))));
                }
                b'K' => {
                    let v = self.u8("BININT1")?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let b = self.take(2, "BININT2")?;
                    self.stack
                        .push(Value::Int(i64::from(u16::from_le_bytes([b[0], b[1]]))));
                }
                0x8a => {
                    let n = usize::from(self.u8("LONG1 length")?);
                    let b = self.take(n, "LONG1")?;
                    self.stack.push(long_value(b));
                }
                0x8b => {
                    let n = self.len_u32("LONG4 length")?;
                    let b = self.take(n, "LONG4")?;
                    self.stack.push(long_value(b));
                }
                b'G' => {
                    let b = self.take(8, "BINFLOAT")?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                // Python 2 str: decoded as Latin-1, like `torch.load(encoding="latin1")`.
                b'T' | b'U' => {
                    let n = if op == b'T' {
                        self.len_u32("BINSTRING length")?
                    } else {
                        usize::from(self.u8("SHORT_BINSTRING length")?)
                    };
                    let b = self.take(n, "BINSTRING")?;
                    let s: String = b.iter().map(|&c| char::from(c)).collect();
                    self.stack.push(Value::Str(Rc::from(s)));
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'B' => self.len_u32("BINBYTES length")?,
                        b'C' => usize::from(self.u8("SHORT_BINBYTES length")?),
                        _ => self.len_u64("BINBYTES8 length")?,
                    };
                    let b = self.take(n, "BINBYTES")?;
                    self.stack.push(Value::Bytes(Rc::from(b)));
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.len_u32("BINUNICODE length")?,
                        0x8c => usize::from(self.u8("SHORT_BINUNICODE length")?),
                        _ => self.len_u64("BINUNICODE8 length")?,
                    };
                    let b = self.take(n, "BINUNICODE")?;
                    let s = std::str::from_utf8(b)
                        .map_err(|_| self.malformed(at, "string is not UTF-8".into()))?;
                    self.stack.push(Value::str(s));
                }
                b')' => self.stack.push(Value::tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.stack.push(Value::tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(
                            self.malformed(at, format!("TUPLE{n} needs {n} values on the stack"))
                        );
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::tuple(items));
                }
                b']' => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'l' => {
                    let items = self.pop_mark(at)?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let v = self.pop(at)?;
                    self.append(at, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    self.append(at, items)?;
                }
                b'}' => self
                    .stack
                    .push(Value::Dict(Rc::new(RefCell::new(Dict::new(false))))),
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let d = Value::Dict(Rc::new(RefCell::new(Dict::new(false))));
                    self.stack.push(d);
                    self.set_items(at, items)?;
                }
                b's' => {
                    let v = self.pop(at)?;
                    let k = self.pop(at)?;
                    self.set_items(at, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    self.set_items(at, items)?;
                }
                b'c' => {
                    let module = self.line("GLOBAL module")?;
                    let name = self.line("GLOBAL name")?;
                    let g = resolve_global(&module, &name, at)?;
                    self.stack.push(Value::Global(g));
                }
                0x93 => {
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => {
                            let g = resolve_global(m, n, at)?;
                            self.stack.push(Value::Global(g));
                        }
                        _ => {
                            return Err(self.malformed(at, "STACK_GLOBAL needs two strings".into()))
                        }
                    }
                }
                b'R' => {
                    let args = self.pop(at)?;
                    let callable = self.pop(at)?;
                    let v = self.reduce(at, &callable, &args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let _state = self.pop(at)?;
                    match self.top(at)? {
                        // OrderedDict state_dicts carry `_metadata` (module versions): not needed.
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => {
                            let kind = other.kind();
                            return Err(
                                self.malformed(at, format!("BUILD on a {kind} is not supported"))
                            );
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop(at)?;
                    let v = self
                        .loader
                        .persistent_load(&pid)
                        .map_err(|msg| self.malformed(at, msg))?;
                    self.stack.push(v);
                }
                b'h' => {
                    let i = u32::from(self.u8("BINGET index")?);
                    self.get(at, i)?;
                }
                b'j' => {
                    let i = self.u32("LONG_BINGET index")?;
                    self.get(at, i)?;
                }
                b'q' => {
                    let i = u32::from(self.u8("BINPUT index")?);
                    self.put(at, i)?;
                }
                b'r' => {
                    let i = self.u32("LONG_BINPUT index")?;
                    self.put(at, i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| self.malformed(at, "memo too large".into()))?;
                    self.put(at, i)?;
                }
                _ => {
                    return Err(PickleError::UnsupportedOpcode {
                        opcode: op,
                        offset: at,
                    })
                }
            }
        }
    }

    fn malformed(&self, offset: usize, msg: String) -> PickleError {
        PickleError::Malformed { offset, msg }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], PickleError> {
        let data: &'a [u8] = self.data;
        let end = self.pos.checked_add(n).filter(|&e| e <= data.len());
        match end {
            Some(end) => {
                let s = &data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(PickleError::Truncated {
                offset: self.pos,
                what,
            }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PickleError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, PickleError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A 4-byte length; whether that many bytes remain is checked by `take`.
    fn len_u32(&mut self, what: &'static str) -> Result<usize, PickleError> {
        Ok(self.u32(what)? as usize)
    }

    fn len_u64(&mut self, what: &'static str) -> Result<usize, PickleError> {
        let at = self.pos;
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        usize::try_from(u64::from_le_bytes(a))
            .map_err(|_| PickleError::Truncated { offset: at, what })
    }

    /// A newline-terminated ASCII line (for `GLOBAL`), at most 256 bytes.
    fn line(&mut self, what: &'static str) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(257)
            .position(|&c| c == b'\n')
            .ok_or(PickleError::Truncated {
                offset: self.pos,
                what,
            })?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self, at: usize) -> Result<Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.malformed(at, "stack underflow (hit a MARK)".into()));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed(at, "stack underflow".into()))
    }

    fn top(&self, at: usize) -> Result<&Value, PickleError> {
        self.stack
            .last()
            .ok_or_else(|| self.malformed(at, "empty stack".into()))
    }

    /// Everything above the last MARK, which is removed.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>, PickleError> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed(at, "no MARK on the stack".into()))?;
        if m > self.stack.len() {
            return Err(self.malformed(at, "MARK above the stack top".into()));
        }
        Ok(self.stack.split_off(m))
    }

    fn append(&mut self, at: usize, items: Vec<Value>) -> Result<(), PickleError> {
        match self.top(at)? {
            Value::List(l) => {
                let l = l.clone();
                if items.iter().any(Value::is_container) {
                    self.linked.push(Value::List(l.clone()));
                }
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.malformed(at, format!("APPEND to a {kind}")))
            }
        }
    }

    fn set_items(&mut self, at: usize, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed(at, "SETITEMS with an odd number of values".into()));
        }
        let d = match self.top(at)? {
            Value::Dict(d) => d.clone(),
            other => {
                let kind = other.kind();
                return Err(self.malformed(at, format!("SETITEM on a {kind}")));
            }
        };
        if items.iter().any(Value::is_container) {
            self.linked.push(Value::Dict(d.clone()));
        }
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.insert(k, v);
        }
        Ok(())
    }

    fn get(&mut self, at: usize, i: u32) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| self.malformed(at, format!("memo key {i} was never stored")))?;
        self.stack.push(v);
        Ok(())
    }

    fn put(&mut self, at: usize, i: u32) -> Result<(), PickleError> {
        let v = self.top(at)?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn reduce(&self, at: usize, callable: &Value, args: &Value) -> Result<Value, PickleError> {
        let Value::Global(g) = callable else {
            return Err(self.malformed(at, format!("REDUCE on a {}", callable.kind())));
        };
        let Value::Tuple(args) = args else {
            return Err(self.malformed(
                at,
                format!("REDUCE arguments are a {}, not a tuple", args.kind()),
            ));
        };
        let r = match g {
            Global::OrderedDict => ordered_dict(args),
            Global::RebuildTensorV2 => rebuild_tensor(args),
            Global::RebuildParameter => match args.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => Err("_rebuild_parameter needs a tensor".to_string()),
            },
            Global::Storage(_) => Err("storage types cannot be called".to_string()),
        };
        r.map_err(|msg| self.malformed(at, msg))
    }
}

fn resolve_global(module: &str, name: &str, offset: usize) -> Result<Global, PickleError> {
    Global::resolve(module, name).ok_or_else(|| PickleError::UnsupportedGlobal {
        module: module.chars().take(100).collect(),
        name: name.chars().take(100).collect(),
        offset,
    })
}

/// LONG1/LONG4 payload: little-endian two's complement.
fn long_value(b: &[u8]) -> Value {
    if b.len() <= 8 {
        let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut a = [fill; 8];
        a[..b.len()].copy_from_slice(b);
        Value::Int(i64::from_le_bytes(a))
    } else {
        Value::BigInt(Rc::from(b))
    }
}

/// `OrderedDict()` or `OrderedDict([(k, v), ...])`.
fn ordered_dict(args: &[Value]) -> Result<Value, String> {
    let mut d = Dict::new(true);
    match args {
        [] => {}
        [Value::List(items)] => {
            for pair in items.borrow().iter() {
                match pair {
                    Value::Tuple(kv) if kv.len() == 2 => d.insert(kv[0].clone(), kv[1].clone()),
                    _ => return Err("OrderedDict items must be (key, value) pairs".into()),
                }
            }
        }
        _ => return Err("unsupported OrderedDict arguments".into()),
    }
    Ok(Value::Dict(Rc::new(RefCell::new(d))))
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
fn rebuild_tensor(args: &[Value]) -> Result<Value, String> {
    if args.len() < 4 {
        return Err(format!(
            "_rebuild_tensor_v2 takes at least 4 arguments, got {}",
            args.len()
        ));
    }
    let Value::Storage(storage) = &args[0] else {
        return Err(format!(
            "_rebuild_tensor_v2: expected a storage, got a {}",
            args[0].kind()
        ));
    };
    let offset = non_negative(&args[1], "storage offset")?;
    let size = int_tuple(&args[2], "size")?;
    let stride = int_tuple(&args[3], "stride")?;
    if size.len() != stride.len() {
        return Err(format!(
            "tensor size has {} dims but stride has {}",
            size.len(),
            stride.len()
        ));
    }
    Ok(Value::Tensor(Rc::new(TensorRef {
        storage: storage.clone(),
        offset,
        size,
        stride,
    })))
}

fn non_negative(v: &Value, what: &str) -> Result<u64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        other => Err(format!(
            "tensor {what} must be a non-negative int, got {other:?}"
        )),
    }
}

fn int_tuple(v: &Value, what: &str) -> Result<Vec<u64>, String> {
    match v {
        Value::Tuple(items) => items.iter().map(|x| non_negative(x, what)).collect(),
        other => Err(format!(
            "tensor {what} must be a tuple, got a {}",
            other.kind()
        )),
    }
}

#[cfg(test)]
mod tests;
