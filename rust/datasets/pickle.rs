//! A pickle reader that runs no code: it decodes the opcodes that data files
//! such as CIFAR-10's python batches use into plain values. Globals are never
//! imported or called; a few numpy and codecs names are allowed as symbols,
//! and `ndarray_u8` recognises the two ways numpy pickles an array. Any other
//! global or opcode is an error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::{Error, Result};

/// The globals a data pickle may name (numpy 1.x and 2.x spellings).
const ALLOWED_GLOBALS: [&str; 7] = [
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "_codecs.encode",
];

#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    /// `module.name` of an allowed global, kept as a symbol.
    Global(Rc<str>),
    /// A call recorded by REDUCE / NEWOBJ (never made), with BUILD's state.
    Call(Rc<Call>),
}

#[derive(Debug)]
pub struct Call {
    pub global: Rc<str>,
    pub args: Vec<Value>,
    pub state: RefCell<Option<Value>>,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::Value(format!("{}: {msg} (pickle byte {})", self.what, self.pos))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(self.err(format!(
                "truncated: {n} more bytes expected, file has {}",
                self.b.len()
            )));
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }
    /// A length prefix of `n` bytes, as usize.
    fn len(&mut self, n: usize) -> Result<usize> {
        let v = self.le(n)?;
        usize::try_from(v).map_err(|_| self.err(format!("length {v} too large")))
    }
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.b[self.pos..];
        let Some(n) = rest.iter().position(|&c| c == b'\n') else {
            return Err(self.err("truncated: unterminated text argument"));
        };
        let s =
            std::str::from_utf8(&rest[..n]).map_err(|_| self.err("text argument is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }
}

struct Machine<'a> {
    r: Reader<'a>,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl Machine<'_> {
    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.r.err("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }
    fn top(&self) -> Result<&Value> {
        self.stack
            .last()
            .ok_or_else(|| self.r.err("stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.r.err("no MARK on the stack"))?;
        Ok(self.stack.split_off(m))
    }
    fn global(&self, module: &str, name: &str) -> Result<Value> {
        let full = format!("{module}.{name}");
        if !ALLOWED_GLOBALS.contains(&full.as_str()) {
            return Err(self.r.err(format!(
                "refuses global '{full}': only plain data and numpy uint8 arrays are read, no code is run"
            )));
        }
        Ok(Value::Global(full.into()))
    }
    fn str_value(&self, v: Value) -> Result<Rc<str>> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(self
                .r
                .err(format!("expected a string, got {}", kind(&other)))),
        }
    }
    fn append(&self, list: &Value, items: Vec<Value>) -> Result<()> {
        match list {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => Err(self.r.err(format!("APPEND to a {}", kind(other)))),
        }
    }
    fn set_items(&self, dict: &Value, items: Vec<Value>) -> Result<()> {
        let Value::Dict(d) = dict else {
            return Err(self.r.err(format!("SETITEM on a {}", kind(dict))));
        };
        if items.len() % 2 != 0 {
            return Err(self.r.err("SETITEMS with an odd number of values"));
        }
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }
    fn call(&self, f: Value, args: Value) -> Result<Value> {
        let (Value::Global(global), Value::Tuple(args)) = (f, args) else {
            return Err(self
                .r
                .err("REDUCE/NEWOBJ needs a global and an argument tuple"));
        };
        Ok(Value::Call(Rc::new(Call {
            global,
            args: args.to_vec(),
            state: RefCell::new(None),
        })))
    }
    fn bytes(&mut self, len_bytes: usize) -> Result<Value> {
        let n = self.r.len(len_bytes)?;
        Ok(Value::Bytes(self.r.take(n)?.into()))
    }
    fn unicode(&mut self, len_bytes: usize) -> Result<Value> {
        let n = self.r.len(len_bytes)?;
        let s =
            std::str::from_utf8(self.r.take(n)?).map_err(|_| self.r.err("string is not UTF-8"))?;
        Ok(Value::Str(s.into()))
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.r.u8()?;
            let v = match op {
                0x80 => {
                    self.r.u8()?; // PROTO: every protocol's data opcodes are handled
                    continue;
                }
                0x95 => {
                    self.r.le(8)?; // FRAME: a read-ahead hint
                    continue;
                }
                b'.' => return self.pop(), // STOP
                b'(' => {
                    self.marks.push(self.stack.len());
                    continue;
                }
                b'0' => {
                    self.pop()?;
                    continue;
                }
                b'1' => {
                    self.pop_mark()?;
                    continue;
                }
                b'2' => self.top()?.clone(),
                b'N' => Value::None,
                0x88 => Value::Bool(true),
                0x89 => Value::Bool(false),
                b'J' => Value::Int(self.r.le(4)? as u32 as i32 as i64),
                b'K' => Value::Int(self.r.u8()? as i64),
                b'M' => Value::Int(self.r.le(2)? as i64),
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = self.r.u8()? as usize;
                    if n > 8 {
                        return Err(self.r.err(format!("integer of {n} bytes is too large")));
                    }
                    let raw = self.r.le(n)?;
                    let shift = 64 - 8 * n as u32;
                    Value::Int(if n == 0 {
                        0
                    } else {
                        ((raw << shift) as i64) >> shift
                    })
                }
                b'U' => self.bytes(1)?,
                b'T' | b'B' => self.bytes(4)?,
                b'C' => self.bytes(1)?,
                0x8e | 0x96 => self.bytes(8)?,
                0x8c => self.unicode(1)?,
                b'X' => self.unicode(4)?,
                0x8d => self.unicode(8)?,
                b')' => Value::Tuple(Rc::new([])),
                b't' => Value::Tuple(self.pop_mark()?.into()),
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>>>()?;
                    items.reverse();
                    Value::Tuple(items.into())
                }
                b']' => Value::List(Rc::default()),
                b'l' => Value::List(Rc::new(RefCell::new(self.pop_mark()?))),
                b'}' => Value::Dict(Rc::default()),
                b'd' => {
                    let items = self.pop_mark()?;
                    let d = Value::Dict(Rc::default());
                    self.set_items(&d, items)?;
                    d
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(self.top()?, vec![item])?;
                    continue;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(self.top()?, items)?;
                    continue;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(self.top()?, vec![k, v])?;
                    continue;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(self.top()?, items)?;
                    continue;
                }
                b'q' | b'r' | 0x94 | b'p' => {
                    let key = match op {
                        b'q' => self.r.u8()? as u64,
                        b'r' => self.r.le(4)?,
                        b'p' => {
                            let l = self.r.line()?;
                            l.parse()
                                .map_err(|_| self.r.err(format!("bad PUT index '{l}'")))?
                        }
                        _ => self.memo.len() as u64,
                    };
                    let v = self.top()?.clone();
                    self.memo.insert(key, v);
                    continue;
                }
                b'h' | b'j' | b'g' => {
                    let key = match op {
                        b'h' => self.r.u8()? as u64,
                        b'j' => self.r.le(4)?,
                        _ => {
                            let l = self.r.line()?;
                            l.parse()
                                .map_err(|_| self.r.err(format!("bad GET index '{l}'")))?
                        }
                    };
                    self.memo
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| self.r.err(format!("memo entry {key} is not defined")))?
                }
                b'c' => {
                    let module = self.r.line()?;
                    let name = self.r.line()?;
                    self.global(module, name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.str_value(module)?, self.str_value(name)?);
                    self.global(&module, &name)?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    self.call(f, args)?
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Call(c) => *c.state.borrow_mut() = Some(state),
                        other => return Err(self.r.err(format!("BUILD on a {}", kind(other)))),
                    }
                    continue;
                }
                _ => {
                    self.r.pos -= 1;
                    return Err(self.r.err(format!(
                        "unsupported pickle opcode 0x{op:02x} (only plain data and numpy arrays are read)"
                    )));
                }
            };
            self.stack.push(v);
        }
    }
}

/// Decodes a pickle into plain values without running any code; `what`
/// names the input in errors.
pub fn load(bytes: &[u8], what: &str) -> Result<Value> {
    Machine {
        r: Reader {
            b: bytes,
            pos: 0,
            what,
        },
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    }
    .run()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::Tuple(_) => "tuple",
        Value::List(_) => "list",
        Value::Dict(_) => "dict",
        Value::Global(_) => "global",
        Value::Call(_) => "object",
    }
}

impl Value {
    /// The value under a text key (a Python 3 str or a Python 2 byte string).
    pub fn get(&self, key: &str) -> Option<Value> {
        let Value::Dict(d) = self else { return None };
        d.borrow()
            .iter()
            .find(|(k, _)| match k {
                Value::Str(s) => &**s == key,
                Value::Bytes(b) => &**b == key.as_bytes(),
                _ => false,
            })
            .map(|(_, v)| v.clone())
    }

    /// A list or tuple of integers.
    pub fn ints(&self, what: &str) -> Result<Vec<i64>> {
        let items: Vec<Value> = match self {
            Value::List(l) => l.borrow().clone(),
            Value::Tuple(t) => t.to_vec(),
            other => return Err(bad(what, "a list of integers", other)),
        };
        items
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                other => Err(bad(what, "a list of integers", other)),
            })
            .collect()
    }

    /// Bytes, also from a Python 2 string or `_codecs.encode(s, 'latin1')`
    /// (how Python 3 writes bytes in protocol 2).
    fn raw_bytes(&self, what: &str) -> Result<Rc<[u8]>> {
        match self {
            Value::Bytes(b) => Ok(b.clone()),
            Value::Call(c) if &*c.global == "_codecs.encode" => match c.args.as_slice() {
                [Value::Str(s), Value::Str(enc)] if &**enc == "latin1" || &**enc == "latin-1" => {
                    latin1(s).ok_or_else(|| bad(what, "latin-1 text", self))
                }
                _ => Err(bad(what, "_codecs.encode(text, 'latin1')", self)),
            },
            other => Err(bad(what, "bytes", other)),
        }
    }

    /// A C-ordered numpy uint8 array: its shape and its bytes.
    pub fn ndarray_u8(&self, what: &str) -> Result<(Vec<i64>, Rc<[u8]>)> {
        let Value::Call(c) = self else {
            return Err(bad(what, "a numpy array", self));
        };
        let (shape, dtype, fortran, data) = match &*c.global {
            // ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b') then
            // BUILD (version, shape, dtype, is_fortran, raw bytes).
            g if g.ends_with("multiarray._reconstruct") => match &*c.state.borrow() {
                Some(Value::Tuple(s)) if s.len() == 5 => (
                    s[1].clone(),
                    s[2].clone(),
                    matches!(s[3], Value::Bool(true)),
                    s[4].clone(),
                ),
                _ => return Err(bad(what, "a numpy array state (5-tuple)", self)),
            },
            // Protocol 5: _frombuffer(buffer, dtype, shape, order).
            g if g.ends_with("numeric._frombuffer") => match c.args.as_slice() {
                [buf, dtype, shape, Value::Str(order)] => {
                    (shape.clone(), dtype.clone(), &**order == "F", buf.clone())
                }
                _ => return Err(bad(what, "_frombuffer(buffer, dtype, shape, order)", self)),
            },
            _ => return Err(bad(what, "a numpy array", self)),
        };
        let is_u8 = match &dtype {
            Value::Call(d) if &*d.global == "numpy.dtype" => {
                matches!(
                    d.args.first(),
                    Some(Value::Str(s)) if &**s == "u1"
                ) || matches!(d.args.first(), Some(Value::Bytes(b)) if &**b == b"u1")
            }
            _ => false,
        };
        if !is_u8 {
            return Err(bad(what, "a numpy array of dtype uint8", &dtype));
        }
        if fortran {
            return Err(Error::Value(format!(
                "{what}: a Fortran-ordered array (expected C order)"
            )));
        }
        let shape = shape.ints(what)?;
        let data = data.raw_bytes(what)?;
        let n: i64 = shape.iter().product();
        if n != data.len() as i64 {
            return Err(Error::Value(format!(
                "{what}: array of shape {shape:?} needs {n} bytes, found {}",
                data.len()
            )));
        }
        Ok((shape, data))
    }
}

/// The latin-1 bytes of `s` (every char below 256), from its UTF-8 bytes:
/// ASCII as is, U+0080..U+00FF as the two-byte sequences C2/C3 xx.
fn latin1(s: &str) -> Option<Rc<[u8]>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c @ 0..=0x7f => {
                out.push(c);
                i += 1;
            }
            lead @ (0xc2 | 0xc3) => {
                out.push(((lead & 0x1f) << 6) | (*b.get(i + 1)? & 0x3f));
                i += 2;
            }
            _ => return None,
        }
    }
    Some(out.into())
}

fn bad(what: &str, expected: &str, got: &Value) -> Error {
    Error::Value(format!("{what}: expected {expected}, found {}", kind(got)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{'data': array(uint8, (2, 3)), 'labels': [1, 300]}` as Python 2's
    /// cPickle writes it (protocol 2, byte-string keys, `_reconstruct`).
    fn py2_pickle() -> Vec<u8> {
        let mut p = b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05(K\x01K\x02K\x03\x86cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x06".to_vec();
        p.extend_from_slice(&[9, 8, 7, 6, 5, 4]);
        p.extend_from_slice(b"tbU\x06labelsq\x08]q\x09(K\x01M\x2c\x01eu.");
        p
    }

    #[test]
    fn reads_a_python2_numpy_pickle() {
        let v = load(&py2_pickle(), "t").expect("load");
        let (shape, data) = v.get("data").expect("data").ndarray_u8("t").expect("array");
        assert_eq!(shape, [2, 3]);
        assert_eq!(&*data, &[9, 8, 7, 6, 5, 4]);
        assert_eq!(
            v.get("labels").expect("labels").ints("t").expect("ints"),
            [1, 300]
        );
    }

    #[test]
    fn refuses_other_globals_and_truncation() {
        let evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.";
        let e = load(evil, "f").expect_err("must refuse").to_string();
        assert!(e.contains("refuses global 'os.system'"), "{e}");
        let p = py2_pickle();
        let e = load(&p[..p.len() - 20], "f")
            .expect_err("truncated")
            .to_string();
        assert!(e.contains("truncated") || e.contains("underflow"), "{e}");
    }

    #[test]
    fn latin1_from_utf8() {
        let s: String = (0u32..256).filter_map(char::from_u32).collect();
        let want: Vec<u8> = (0..=255).collect();
        assert_eq!(&*latin1(&s).expect("latin1"), want.as_slice());
        assert!(latin1("\u{100}").is_none());
    }

    #[test]
    fn negative_and_long_ints() {
        let v = load(
            b"\x80\x02]q\x00(J\xfe\xff\xff\xff\x8a\x02\x00\x80\x8a\x00e.",
            "f",
        )
        .expect("load");
        assert_eq!(v.ints("f").expect("ints"), [-2, -32768, 0]);
    }
}
