use super::*;

struct NoPids;
impl PersistentLoader for NoPids {
    fn persistent_load(&mut self, _pid: &Value) -> Result<Value, String> {
        Err("no storages here".into())
    }
}

fn run(bytes: &[u8]) -> Result<Value, PickleError> {
    unpickle(bytes, &mut NoPids).map(|(v, _)| v)
}

/// `{'a': [1, -2, 3.5], 'b': ('x', None, True)}`, protocol 2, with memo puts/gets.
fn sample() -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
    p.extend([0x8c, 1, b'a', b']', b'q', 1, b'(', b'K', 1, b'J']);
    p.extend((-2i32).to_le_bytes());
    p.push(b'G');
    p.extend(3.5f64.to_be_bytes());
    p.extend([
        b'e', b'X', 1, 0, 0, 0, b'b', 0x8c, 1, b'x', b'N', 0x88, 0x87, b'u', b'.',
    ]);
    p
}

#[test]
fn reads_containers_scalars_and_memo() {
    let v = run(&sample()).unwrap();
    let Value::Dict(ref d) = v else {
        panic!("not a dict")
    };
    let d = d.borrow();
    assert_eq!(d.len(), 2);
    let Some(Value::List(l)) = d.get_str("a") else {
        panic!()
    };
    let l = l.borrow();
    assert!(matches!(l[..], [Value::Int(1), Value::Int(-2), Value::Float(f)] if f == 3.5));
    let Some(Value::Tuple(t)) = d.get_str("b") else {
        panic!()
    };
    assert!(matches!(&t[..], [Value::Str(s), Value::None, Value::Bool(true)] if &**s == "x"));
}

#[test]
fn memo_shares_mutations_like_python() {
    // d = {}; memo[0] = d; d['k'] = 1 (SETITEM after PUT); return (memo[0], d) → both see 'k'.
    let p = [
        0x80, 2, b'}', b'q', 0, 0x8c, 1, b'k', b'K', 1, b's', b'h', 0, 0x86, b'.',
    ];
    let v = run(&p).unwrap();
    let Value::Tuple(ref t) = v else { panic!() };
    let Value::Dict(d) = &t[1] else { panic!() };
    assert_eq!(d.borrow().len(), 1);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let p = sample();
    for n in 0..p.len() {
        assert!(run(&p[..n]).is_err(), "prefix of {n} bytes");
    }
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let p = sample();
    for i in 0..p.len() {
        for b in [0u8, 0x80, 0xff, b'(', b'.', b'h'] {
            let mut q = p.clone();
            q[i] = b;
            let _ = run(&q); // must not panic
        }
    }
}

#[test]
fn unknown_globals_are_refused() {
    let p = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85R.";
    match run(p) {
        Err(PickleError::UnsupportedGlobal { module, name, .. }) => {
            assert_eq!((module.as_str(), name.as_str()), ("os", "system"))
        }
        other => panic!("{other:?}"),
    }
    // STACK_GLOBAL is checked the same way.
    let p = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
    assert!(matches!(run(p), Err(PickleError::UnsupportedGlobal { .. })));
}

#[test]
fn huge_claimed_lengths_are_refused_before_allocating() {
    for op in [b'X', b'B', b'T'] {
        let mut p = vec![0x80, 2, op];
        p.extend(u32::MAX.to_le_bytes());
        p.extend(b"abc.");
        assert!(
            matches!(run(&p), Err(PickleError::Truncated { .. })),
            "opcode {op}"
        );
    }
    let mut p = vec![0x80, 4, 0x8d];
    p.extend(u64::MAX.to_le_bytes());
    assert!(matches!(run(&p), Err(PickleError::Truncated { .. })));
}

#[test]
fn malformed_streams_are_errors() {
    // Each stream fails for its own reason, at the opcode that breaks it (not, say, at a
    // truncation the test did not mean).
    let malformed = |offset: usize, msg: &str| PickleError::Malformed {
        offset,
        msg: msg.into(),
    };
    let cases: [(&[u8], PickleError); 10] = [
        // empty stack at STOP
        (b"\x80\x02.", malformed(2, "stack underflow")),
        // memo key never stored
        (
            b"\x80\x02h\x05.",
            malformed(2, "memo key 5 was never stored"),
        ),
        // TUPLE1 across a MARK
        (
            b"\x80\x02K\x01(\x85.",
            malformed(5, "TUPLE1 needs 1 values on the stack"),
        ),
        // SETITEMS without a MARK
        (b"\x80\x02K\x01u.", malformed(4, "no MARK on the stack")),
        // SETITEM with nothing under the key and value
        (b"\x80\x02K\x01K\x02s.", malformed(6, "empty stack")),
        // SETITEM on an int
        (
            b"\x80\x02K\x01K\x02K\x03s.",
            malformed(8, "SETITEM on a int"),
        ),
        // calling an int
        (b"\x80\x02K\x01)R.", malformed(5, "REDUCE on a int")),
        // unknown opcode
        (
            b"\x80\x02\xff.",
            PickleError::UnsupportedOpcode {
                opcode: 0xff,
                offset: 2,
            },
        ),
        // protocol 7
        (
            b"\x80\x07N.",
            malformed(0, "pickle protocol 7 is newer than 5"),
        ),
        // persistent id rejected by the loader (its message is passed on)
        (b"\x80\x02NQ.", malformed(3, "no storages here")),
    ];
    for (p, want) in cases {
        assert_eq!(run(p).expect_err("a malformed stream"), want, "{p:?}");
    }
}

#[test]
fn deep_nesting_is_survivable() {
    let mut p = vec![0x80, 2, b'N'];
    p.extend(std::iter::repeat_n(0x85, 200_000));
    p.push(b'.');
    assert!(run(&p).is_ok());
}

#[test]
fn long_integers_decode() {
    assert!(matches!(
        run(b"\x80\x02\x8a\x02\xff\x7f."),
        Ok(Value::Int(32767))
    ));
    assert!(matches!(run(b"\x80\x02\x8a\x01\xff."), Ok(Value::Int(-1))));
    assert!(matches!(run(b"\x80\x02\x8a\x00."), Ok(Value::Int(0))));
    assert!(matches!(
        run(b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."),
        Ok(Value::BigInt(_))
    ));
}

#[test]
fn self_containing_containers_are_refused_and_freed() {
    // d = {}; d['a'] = d  (BINPUT / BINGET), and l = []; l.append(l)  (DUP).
    let dict = [0x80, 2, b'}', b'q', 0, 0x8c, 1, b'a', b'h', 0, b's', b'.'];
    let list = [0x80, 2, b']', b'2', b'a', b'.'];
    for p in [&dict[..], &list[..]] {
        let err = run(p).unwrap_err().to_string();
        assert!(err.contains("reference cycle"), "{err}");
    }
    // Containers nested without a cycle (shared, even) are fine.
    let shared = [
        0x80, 2, b']', b'q', 0, b']', b'h', 0, b'a', b'h', 0, b'a', b'.',
    ];
    assert!(run(&shared).is_ok());

    // What the reader does after refusing: a cycle found, then broken, frees it.
    let l = Rc::new(RefCell::new(Vec::new()));
    let weak = Rc::downgrade(&l);
    let d = Value::Dict(Rc::new(RefCell::new(value::Dict::new(false))));
    if let Value::Dict(dd) = &d {
        dd.borrow_mut()
            .insert(Value::str("l"), Value::List(l.clone()));
    }
    l.borrow_mut().push(Value::tuple(vec![d.clone()]));
    let roots = [Value::List(l.clone())];
    assert!(value::has_cycle(&roots));
    roots.iter().for_each(value::clear_container);
    drop((roots, l, d));
    assert!(weak.upgrade().is_none(), "the cycle was freed");
}
