// The unpickler at the opcode level: values, bounds, and corrupt streams.
import { describe, expect, it } from 'vitest';
import { PickleError, PyObject, unpickle } from '../../../src/main/engine/weights/torch-pickle.js';
import { Pickle } from '../../fixtures/weights/torch-zip-writer.js';

const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

describe('unpickle', () => {
  it('decodes the scalar and container opcodes torch.save emits', () => {
    const p = new Pickle().proto(2).op(0x7d).mark(); // {
    p.str('i')
      .int(-7)
      .str('big')
      .int(2 ** 40)
      .str('u16')
      .int(40000);
    p.str('f').op(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0); // BINFLOAT 1.5, big-endian
    p.str('t').op(0x88).str('n').op(0x4e);
    p.str('tup').int(1).int(2).op(0x86); // TUPLE2
    p.str('lst').op(0x5d).mark().int(1).int(2).op(0x65); // EMPTY_LIST MARK .. APPENDS
    p.str('short').op(0x8c, 2, 0x68, 0x69); // SHORT_BINUNICODE 'hi'
    p.str('bytes').op(0x43, 2, 9, 8); // SHORT_BINBYTES
    p.str('memo').str('v').op(0x71, 5).op(0x30).op(0x68, 5); // BINPUT 5, POP, BINGET 5 -> 'v' again
    p.setitems().stop();
    const v = unpickle(p.bytes()) as Map<string, unknown>;
    expect(Object.fromEntries(v)).toEqual({
      i: -7,
      big: 2 ** 40,
      u16: 40000,
      f: 1.5,
      t: true,
      n: null,
      tup: [1, 2],
      lst: [1, 2],
      short: 'hi',
      bytes: new Uint8Array([9, 8]),
      memo: 'v',
    });
    expect(Object.isFrozen(v.get('tup'))).toBe(true);
  });

  it('reads protocol 4 framing, MEMOIZE and STACK_GLOBAL placeholders', () => {
    const body = new Pickle().op(0x8c, 1, 0x6d, 0x94).op(0x8c, 1, 0x4e, 0x94).op(0x93).op(0x29).op(0x81).stop().bytes();
    const framed = new Pickle().proto(4).op(0x95, body.length, 0, 0, 0, 0, 0, 0, 0).raw(body).bytes();
    const v = unpickle(framed) as PyObject;
    expect(v).toBeInstanceOf(PyObject);
    expect(v.cls).toBe('m.N');
  });

  it('LONG1 decodes two’s complement of any width, beyond 2^53 as bigint', () => {
    expect(unpickle(new Pickle().op(0x8a, 1, 0xff).stop().bytes())).toBe(-1);
    expect(unpickle(new Pickle().op(0x8a, 0).stop().bytes())).toBe(0);
    expect(unpickle(new Pickle().op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1).stop().bytes())).toBe(2n ** 64n);
  });

  const BAD: [string, number[], RegExp][] = [
    [
      'truncated string length',
      [0x80, 2, 0x58, ...u32(0x7fffffff), 0x61],
      /truncated pickle: needs 2147483647 more bytes/,
    ],
    ['BINBYTES8 over the size', [0x80, 4, 0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0], /exceeds the pickle's size/],
    ['unknown opcode', [0x80, 2, 0xff], /unknown pickle opcode 0xff/],
    ['out-of-band buffer', [0x80, 5, 0x97], /unsupported pickle opcode NEXT_BUFFER/],
    ['memo miss', [0x80, 2, 0x68, 3, 0x2e], /memo has no entry 3/],
    ['stack underflow', [0x80, 2, 0x52], /stack underflow/],
    ['no STOP', [0x80, 2, 0x4e], /truncated pickle/],
    ['STOP inside a MARK', [0x80, 2, 0x28, 0x4e, 0x2e], /STOP with an open MARK/],
    ['REDUCE on a number', [0x80, 2, 0x4b, 1, 0x29, 0x52, 0x2e], /REDUCE: number 1 is not callable/],
    ['APPEND to a tuple', [0x80, 2, 0x29, 0x4b, 1, 0x61, 0x2e], /APPEND to tuple/],
    ['persistent id outside an archive', [0x80, 2, 0x4b, 1, 0x51, 0x2e], /persistent id outside a torch archive/],
    ['protocol 6', [0x80, 6], /unsupported pickle protocol/],
    ['huge LONG4', [0x80, 2, 0x8b, ...u32(1 << 20)], /LONG4 of 1048576 bytes exceeds 4096/],
  ];
  it.each(BAD)('fails cleanly on %s', (_name, bytes, message) => {
    expect(() => unpickle(Uint8Array.from(bytes))).toThrow(PickleError);
    expect(() => unpickle(Uint8Array.from(bytes))).toThrow(message);
  });

  it('bounds MARK nesting, the stack and the memo', () => {
    const deep = new Uint8Array(20_002).fill(0x28);
    deep[0] = 0x80;
    deep[1] = 2;
    expect(() => unpickle(deep)).toThrow(/nesting exceeds 10000 MARKs/);
    const many = new Pickle().proto(2);
    for (let i = 0; i < 101; i++) many.op(0x4e);
    expect(() => unpickle(many.stop().bytes(), { maxStack: 100 })).toThrow(/stack exceeds 100 items/);
    const memo = new Pickle().proto(4).op(0x4e);
    for (let i = 0; i < 11; i++) memo.op(0x94);
    expect(() => unpickle(memo.stop().bytes(), { maxMemo: 10 })).toThrow(/memo exceeds 10 entries/);
  });

  it('bounds the copying done by allow-listed constructors (no quadratic blow-up from a small file)', () => {
    // a set of 1000 items, then set(<it>) called 2000 times through the memo: 2M copies from ~12 KB
    const p = new Pickle().proto(2).global('builtins', 'set').op(0x71, 1).op(0x5d).mark();
    for (let i = 0; i < 1000; i++) p.int(i);
    p.op(0x65).op(0x71, 2).op(0x30).mark();
    for (let i = 0; i < 2000; i++) p.op(0x68, 1).op(0x68, 2).op(0x85).reduce();
    p.op(0x74).stop();
    expect(() => unpickle(p.bytes())).toThrow(/pickle: containers copied exceed \d+ elements \(opcode at byte \d+\)/);
    expect(() => unpickle(p.bytes(), { maxWork: 3_000_000 })).not.toThrow();
  });

  it('an allow-listed callable given wrong arguments fails as a pickle error, not a crash', () => {
    const p = new Pickle()
      .proto(2)
      .global('torch._utils', '_rebuild_tensor_v2')
      .mark()
      .int(1)
      .int(2)
      .int(3)
      .int(4)
      .op(0x74)
      .reduce()
      .stop();
    expect(() => unpickle(p.bytes())).toThrow(/_rebuild_tensor_v2: expected a storage/);
  });
});
