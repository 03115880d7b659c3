// A pickle reader that never evaluates anything, for the data.pkl inside torch checkpoints.
//
// A pickle is a program for a small stack machine whose GLOBAL/REDUCE opcodes import and call any
// Python callable, so the usual unpickler runs whatever a file names. This one implements the
// opcodes torch.save emits (protocols 2 to 5) over plain JS values and gives meaning to a short
// ALLOW-LIST of globals (OrderedDict, torch's tensor rebuild functions, storage types, torch.Size,
// a few inert builtins), each re-implemented here in a few lines of JS. Every other global becomes an
// inert placeholder (PyGlobal); "calling" one records its name and arguments in a PyObject and runs
// nothing. That is how Lightning's hyper-parameter objects, argparse.Namespace, pathlib paths or
// numpy scalars come through: as records, never as code.
//
// Safety does not depend on a deny-list, since nothing is ever executed. The deny-list is there to
// REFUSE hostile files with a clear message: a checkpoint has no legitimate reason to name os.system,
// builtins.eval or subprocess.Popen, so the moment the pickle NAMES one (GLOBAL / STACK_GLOBAL), the
// whole load fails with a DangerousGlobalError naming it and no tensor is returned. Refusing at the
// name rather than at the call also catches files that would invoke it through a construct this
// reader does not model (BUILD's __setstate__, a placeholder's method, ...). Names that legitimate
// hyper-parameters use (builtins.getattr for enums pickled by name, functools.partial,
// types.SimpleNamespace) are deliberately not on the list: they load as placeholders like any other.
//
// Resources are bounded: the caller bounds the pickle's size; the memo, the stack and the nesting
// of MARKs have limits; every length read from the stream is checked against the bytes left before
// anything is allocated; big integers are capped; the copying done by allow-listed constructors
// (set(), OrderedDict(items)) is charged against a budget proportional to the pickle's size.
import { type WeightDType } from './tensor.js';

export class PickleError extends Error {
  override name = 'PickleError';
  constructor(
    message: string,
    /** The stream ended early: a longer read of the same file might succeed. */
    readonly truncated = false,
  ) {
    super(message);
  }
}

/** The pickle names a callable that can only serve to run code. Nothing from the file is used. */
export class DangerousGlobalError extends PickleError {
  override name = 'DangerousGlobalError';
  constructor(
    readonly global: string,
    readonly position: number,
    source = 'pickle',
  ) {
    super(
      `${source}: refusing to load: the pickle names the dangerous global '${global}' (at byte ${position}); ` +
        `a checkpoint never needs it, so this file was likely crafted to run code. Nothing was loaded or executed.`,
    );
  }
}

/** A reference to a global that is not on the allow-list. Inert: it is never resolved or called. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What "calling" a placeholder gives: a record of the class/function name and the arguments. */
export class PyObject {
  /** BUILD's argument (normally the instance __dict__). */
  state: unknown = undefined;
  /** Items added by SETITEM(S) (dict subclasses such as Lightning's AttributeDict). */
  readonly dictItems = new Map<unknown, unknown>();
  /** Items added by APPEND(S) (list subclasses). */
  readonly listItems: unknown[] = [];
  constructor(
    readonly cls: string,
    readonly args: readonly unknown[],
    readonly kwargs?: unknown,
  ) {}
}

/** torch.<X>Storage: the element type of a storage named in a persistent id. */
export class StorageType {
  constructor(
    readonly qualname: string,
    /** null for storage types this reader does not support (complex, quantized, ...). */
    readonly dtype: WeightDType | null,
  ) {}
}

/** torch.float32 and friends, as values (hparams) or as _rebuild_tensor_v3's dtype argument. */
export class TorchDType {
  constructor(
    readonly qualname: string,
    readonly dtype: WeightDType | null,
  ) {}
}

/** A storage of the archive (the bytes of `data/<key>`), as returned by persistent_load. */
export interface StorageRef {
  key: string;
  storageType: StorageType;
  location: string;
  /** Number of elements of the storage's dtype. */
  numel: number;
}

/**
 * A tensor found while unpickling: a view of a storage (dtype, shape, strides and offset in elements),
 * as torch's _rebuild_tensor functions describe it. No data is read here.
 */
export class PickledTensor {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    /** The tensor's dtype when it differs from the storage type's (_rebuild_tensor_v3). */
    readonly dtypeOverride: TorchDType | null = null,
  ) {}
  get dtype(): WeightDType | null {
    return this.dtypeOverride ? this.dtypeOverride.dtype : this.storage.storageType.dtype;
  }
  get dtypeName(): string {
    return this.dtypeOverride ? this.dtypeOverride.qualname : this.storage.storageType.qualname;
  }
}

/** A tensor rebuilt by a function this reader does not support (quantized, sparse, meta, subclass). */
export class UnsupportedTensor extends PyObject {}

/** Python values map to: None→null, bool, int→number (bigint beyond 2^53), float→number, str→string,
 * bytes→Uint8Array, list→array, tuple→frozen array, dict→Map, set→Set, plus the classes above. */
export type PyValue = unknown;

// ---------------------------------------------------------------------------------------------
// Globals

const STORAGE_DTYPES: Record<string, WeightDType | null> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
  ComplexFloatStorage: null,
  ComplexDoubleStorage: null,
  QInt8Storage: null,
  QUInt8Storage: null,
  QInt32Storage: null,
  QUInt4x2Storage: null,
  QUInt2x4Storage: null,
};

const TORCH_DTYPES: Record<string, WeightDType | null> = {
  float64: 'F64',
  double: 'F64',
  float32: 'F32',
  float: 'F32',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
  complex64: null,
  complex128: null,
  uint16: null,
  uint32: null,
  uint64: null,
  float8_e4m3fn: null,
  float8_e5m2: null,
};

/**
 * Globals that serve only to run code, touch files or the network, or load further pickles: naming
 * one refuses the file. Kept to names with no place in a checkpoint, so that legitimate hyper-parameter
 * objects (types.SimpleNamespace, functools.partial of an optimizer, an enum pickled by name through
 * getattr) still load as inert placeholders. Whole modules here, single members below.
 */
const DANGEROUS_MODULES = [
  'os',
  'posix',
  'nt',
  'subprocess',
  'sys',
  'shutil',
  'socket',
  'pty',
  'importlib',
  'runpy',
  'pickle',
  '_pickle',
  'marshal',
  'ctypes',
  'code',
  'codeop',
  'commands',
  'webbrowser',
  'multiprocessing',
  'asyncio',
  'signal',
  'pdb',
  'bdb',
  'timeit',
  'cProfile',
  'profile',
  'trace',
  'doctest',
  'pydoc',
  'http',
  'urllib',
  'ftplib',
  'smtplib',
  'telnetlib',
  'dill',
  'cloudpickle',
  'joblib',
  'torch.serialization',
  'torch.hub',
  'numpy.testing',
];
const DANGEROUS_NAMES = new Set([
  'builtins.eval',
  'builtins.exec',
  'builtins.compile',
  'builtins.open',
  'builtins.__import__',
  'builtins.setattr',
  'builtins.delattr',
  'builtins.globals',
  'builtins.locals',
  'builtins.vars',
  'builtins.input',
  'builtins.breakpoint',
  'builtins.execfile',
  'builtins.apply',
  'builtins.file',
  'builtins.reload',
  'io.open',
  'io.open_code',
  'io.FileIO',
  '_io.open',
  '_io.open_code',
  '_io.FileIO',
  'types.FunctionType',
  'types.CodeType',
  'types.LambdaType',
  'types.ModuleType',
  'operator.attrgetter',
  'operator.methodcaller',
  'torch.load',
  'torch.storage._load_from_bytes',
  'torch.jit.load',
  'numpy.load',
  'numpy.loadtxt',
  'numpy.fromfile',
]);

/** Python 2 module names that protocol <= 2 pickles still use. */
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg', exceptions: 'builtins' };

export function isDangerousGlobal(module: string, name: string): boolean {
  const m = PY2_MODULES[module] ?? module;
  if (DANGEROUS_NAMES.has(`${m}.${name}`)) return true;
  return DANGEROUS_MODULES.some((d) => m === d || m.startsWith(`${d}.`));
}

/** An allow-listed callable, re-implemented in JS over PyValues. */
class Callable {
  constructor(
    readonly qualname: string,
    /** `charge(n)` accounts for n elements copied, against the unpickler's work bound. */
    readonly call: (args: readonly PyValue[], charge: (n: number) => void) => PyValue,
  ) {}
}

function int(v: PyValue, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new PickleError(`${what}: expected an integer, got ${describe(v)}`);
}

function intTuple(v: PyValue, what: string): number[] {
  if (!Array.isArray(v)) throw new PickleError(`${what}: expected a tuple of integers, got ${describe(v)}`);
  return v.map((x, i) => int(x, `${what}[${i}]`));
}

function storageArg(v: PyValue, fn: string): StorageRef {
  if (typeof v === 'object' && v !== null && 'key' in v && (v as StorageRef).storageType instanceof StorageType) {
    return v as StorageRef;
  }
  throw new PickleError(`${fn}: expected a storage (persistent id) as first argument, got ${describe(v)}`);
}

function rebuildTensor(fn: string, args: readonly PyValue[], dtypeArgIndex?: number): PickledTensor {
  if (args.length < 4) throw new PickleError(`${fn}: expected at least 4 arguments, got ${args.length}`);
  const storage = storageArg(args[0], fn);
  const offset = int(args[1], `${fn} storage_offset`);
  const shape = intTuple(args[2], `${fn} size`);
  const stride = intTuple(args[3], `${fn} stride`);
  if (shape.length !== stride.length) {
    throw new PickleError(`${fn}: size has ${shape.length} dimensions but stride has ${stride.length}`);
  }
  let dtype: TorchDType | null = null;
  if (dtypeArgIndex !== undefined) {
    const d = args[dtypeArgIndex];
    if (!(d instanceof TorchDType)) throw new PickleError(`${fn}: expected a torch dtype, got ${describe(d)}`);
    dtype = d;
  }
  return new PickledTensor(storage, offset, shape, stride, dtype);
}

function makeAllowList(): Map<string, Callable | StorageType | TorchDType> {
  const m = new Map<string, Callable | StorageType | TorchDType>();
  const fn = (q: string, call: (a: readonly PyValue[], charge: (n: number) => void) => PyValue) =>
    m.set(q, new Callable(q, call));
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES))
    m.set(`torch.${name}`, new StorageType(`torch.${name}`, dtype));
  for (const [name, dtype] of Object.entries(TORCH_DTYPES))
    m.set(`torch.${name}`, new TorchDType(`torch.${name}`, dtype));

  fn('torch._utils._rebuild_tensor', (a) => rebuildTensor('_rebuild_tensor', a));
  fn('torch._utils._rebuild_tensor_v2', (a) => rebuildTensor('_rebuild_tensor_v2', a));
  fn('torch._utils._rebuild_tensor_v3', (a) => rebuildTensor('_rebuild_tensor_v3', a, 6));
  const param = (a: readonly PyValue[]) => {
    if (!(a[0] instanceof PickledTensor || a[0] instanceof UnsupportedTensor)) {
      throw new PickleError(`_rebuild_parameter: expected a tensor, got ${describe(a[0])}`);
    }
    return a[0];
  };
  fn('torch._utils._rebuild_parameter', param);
  fn('torch._utils._rebuild_parameter_with_state', param);
  for (const q of [
    'torch._utils._rebuild_qtensor',
    'torch._utils._rebuild_sparse_tensor',
    'torch._utils._rebuild_sparse_csr_tensor',
    'torch._utils._rebuild_meta_tensor_no_storage',
    'torch._utils._rebuild_wrapper_subclass',
    'torch._utils._rebuild_device_tensor_from_numpy',
    'torch._utils._rebuild_xla_tensor',
    'torch._utils._rebuild_mlc_tensor',
    'torch._tensor._rebuild_from_type',
    'torch._tensor._rebuild_from_type_v2',
    'torch._utils._rebuild_nested_tensor',
  ]) {
    fn(q, (a) => new UnsupportedTensor(q, a));
  }
  fn('torch.Size', (a) => Object.freeze(intTuple(a[0] ?? [], 'torch.Size')));
  // Copying constructors are charged per element: a pickle could otherwise call them over and over on
  // one large memoized container (quadratic work from a small file).
  fn('collections.OrderedDict', (a, charge) => dictFrom(a[0], 'OrderedDict', charge));
  fn('builtins.set', (a, charge) => new Set(iterable(a[0], 'set', charge)));
  fn('builtins.frozenset', (a, charge) => new Set(iterable(a[0], 'frozenset', charge)));
  fn('builtins.bytearray', (a) => (a[0] instanceof Uint8Array ? a[0] : new PyObject('builtins.bytearray', a)));
  // Protocol 2 pickles bytes as _codecs.encode(<latin-1 str>, 'latin1').
  fn('_codecs.encode', (a) => {
    const [s, enc] = a;
    if (typeof s === 'string' && (enc === 'latin1' || enc === 'latin-1')) {
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
      return out;
    }
    if (typeof s === 'string' && (enc === 'utf-8' || enc === 'utf8' || enc === undefined))
      return new TextEncoder().encode(s);
    return new PyObject('_codecs.encode', a);
  });
  // copyreg._reconstructor(cls, base, state) builds an instance of cls: a placeholder here.
  fn(
    'copyreg._reconstructor',
    (a) => new PyObject(a[0] instanceof PyGlobal ? a[0].qualname : 'copyreg._reconstructor', a),
  );
  return m;
}

function iterable(v: PyValue, what: string, charge: (n: number) => void): Iterable<PyValue> {
  if (v === undefined) return [];
  if (Array.isArray(v) || v instanceof Set || v instanceof Map) {
    charge(v instanceof Array ? v.length : v.size);
    return v instanceof Map ? v.keys() : v;
  }
  throw new PickleError(`${what}(): cannot iterate over ${describe(v)}`);
}

function dictFrom(v: PyValue, what: string, charge: (n: number) => void): Map<PyValue, PyValue> {
  const d = new Map<PyValue, PyValue>();
  if (v === undefined) return d;
  if (v instanceof Map) {
    charge(v.size);
    return new Map(v);
  }
  for (const pair of iterable(v, what, charge)) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new PickleError(`${what}(): expected (key, value) pairs`);
    d.set(pair[0], pair[1]);
  }
  return d;
}

const ALLOWED = makeAllowList();

/** A short description of a value for error messages. */
export function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return Object.isFrozen(v) ? `tuple(${v.length})` : `list(${v.length})`;
  if (v instanceof Map) return `dict(${v.size})`;
  if (v instanceof Set) return `set(${v.size})`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (v instanceof PickledTensor) return `tensor ${v.dtypeName} [${v.shape.join(', ')}]`;
  if (v instanceof PyObject) return `${v.cls}(...)`;
  if (v instanceof PyGlobal) return `global ${v.qualname}`;
  if (v instanceof Callable) return `global ${v.qualname}`;
  if (v instanceof StorageType || v instanceof TorchDType) return v.qualname;
  if (typeof v === 'string') return `str ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

// ---------------------------------------------------------------------------------------------
// The machine

export interface UnpickleOptions {
  /** Resolves BINPERSID/PERSID ids; without it a persistent id is an error. */
  persistentLoad?: (pid: PyValue) => PyValue;
  maxMemo?: number;
  maxStack?: number;
  maxMarkDepth?: number;
  /** Largest integer (LONG4) in bytes. */
  maxLongBytes?: number;
  /** Elements that allow-listed constructors may copy in all (default 16 per pickle byte + 1M). */
  maxWork?: number;
  /** Name of the pickle for error messages. */
  what?: string;
}

export const PICKLE_LIMITS = { maxMemo: 1 << 22, maxStack: 1 << 22, maxMarkDepth: 10_000, maxLongBytes: 4096 };

/**
 * Runs the pickle in `data` up to its STOP opcode and returns the value it built, or throws. Bytes
 * after STOP are ignored (the legacy torch format concatenates several pickles).
 */
export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  return new Unpickler(data, opts).run();
}

class Unpickler {
  private pos = 0;
  private stack: PyValue[] = [];
  private marks: PyValue[][] = [];
  private memo = new Map<number, PyValue>();
  private readonly dv: DataView;
  private readonly what: string;
  private readonly lim: typeof PICKLE_LIMITS;
  private opPos = 0;
  private work = 0;
  private readonly maxWork: number;
  private readonly charge = (n: number): void => {
    this.work += n;
    // Thrown bare: call() adds the pickle's name and position.
    if (this.work > this.maxWork) throw new PickleError(`containers copied exceed ${this.maxWork} elements`);
  };

  constructor(
    private readonly data: Uint8Array,
    private readonly opts: UnpickleOptions,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.what = opts.what ?? 'pickle';
    this.lim = {
      maxMemo: opts.maxMemo ?? PICKLE_LIMITS.maxMemo,
      maxStack: opts.maxStack ?? PICKLE_LIMITS.maxStack,
      maxMarkDepth: opts.maxMarkDepth ?? PICKLE_LIMITS.maxMarkDepth,
      maxLongBytes: opts.maxLongBytes ?? PICKLE_LIMITS.maxLongBytes,
    };
    this.maxWork = opts.maxWork ?? 16 * data.length + 1_000_000;
  }

  private fail(msg: string, truncated = false): never {
    throw new PickleError(`${this.what}: ${msg} (opcode at byte ${this.opPos})`, truncated);
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.data.length) {
      this.fail(`truncated pickle: needs ${n} more bytes, ${this.data.length - this.pos} left`, true);
    }
  }
  private u8(): number {
    this.need(1);
    return this.data[this.pos++]!;
  }
  private u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.data.length)) this.fail(`length ${v} exceeds the pickle's size`);
    return Number(v);
  }
  private bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('truncated pickle: unterminated text argument', true);
    const s = new TextDecoder('latin1').decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  private utf8(n: number): string {
    return new TextDecoder('utf-8').decode(this.bytes(n));
  }
  private latin1(n: number): string {
    return new TextDecoder('latin1').decode(this.bytes(n));
  }

  private push(v: PyValue): void {
    if (this.stack.length >= this.lim.maxStack) this.fail(`stack exceeds ${this.lim.maxStack} items`);
    this.stack.push(v);
  }
  private pop(): PyValue {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack.pop();
  }
  private top(): PyValue {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }
  private popMark(): PyValue[] {
    const items = this.stack;
    const prev = this.marks.pop();
    if (!prev) this.fail('no MARK on the stack');
    this.stack = prev;
    return items;
  }
  private memoPut(i: number, v: PyValue): void {
    if (!this.memo.has(i) && this.memo.size >= this.lim.maxMemo) this.fail(`memo exceeds ${this.lim.maxMemo} entries`);
    this.memo.set(i, v);
  }
  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) this.fail(`memo has no entry ${i}`);
    return this.memo.get(i);
  }

  private global(module: string, name: string): PyValue {
    if (isDangerousGlobal(module, name)) throw new DangerousGlobalError(`${module}.${name}`, this.opPos, this.what);
    const m = PY2_MODULES[module] ?? module;
    return ALLOWED.get(`${m}.${name}`) ?? new PyGlobal(m, name);
  }

  private call(fn: PyValue, args: PyValue, op: string): PyValue {
    if (!Array.isArray(args)) this.fail(`${op}: arguments are ${describe(args)}, not a tuple`);
    if (fn instanceof Callable) {
      try {
        return fn.call(args, this.charge);
      } catch (err) {
        if (err instanceof PickleError) this.fail(err.message);
        throw err;
      }
    }
    if (fn instanceof PyGlobal) return new PyObject(fn.qualname, args);
    if (fn instanceof PyObject) return new PyObject(`${fn.cls}(...)`, args);
    return this.fail(`${op}: ${describe(fn)} is not callable`);
  }

  private long(bytes: Uint8Array): number | bigint {
    if (bytes.length === 0) return 0;
    let v = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
    if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  run(): PyValue {
    for (;;) {
      this.opPos = this.pos;
      const op = this.u8();
      switch (op) {
        case 0x80: // PROTO
          if (this.u8() > 5) this.fail('unsupported pickle protocol (> 5)');
          break;
        case 0x95: // FRAME: framing is only a read-ahead hint
          this.u64();
          break;
        case 0x2e: {
          // STOP
          const v = this.pop();
          if (this.marks.length) this.fail('STOP with an open MARK');
          return v;
        }
        case 0x28: // MARK
          if (this.marks.length >= this.lim.maxMarkDepth) this.fail(`nesting exceeds ${this.lim.maxMarkDepth} MARKs`);
          this.marks.push(this.stack);
          this.stack = [];
          break;
        case 0x30: // POP
          if (this.stack.length) this.stack.pop();
          else this.popMark();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.push(this.top());
          break;

        case 0x4e: // NONE
          this.push(null);
          break;
        case 0x88: // NEWTRUE
          this.push(true);
          break;
        case 0x89: // NEWFALSE
          this.push(false);
          break;
        case 0x4a: // BININT
          this.push(this.i32());
          break;
        case 0x4b: // BININT1
          this.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.push(this.u16());
          break;
        case 0x8a: // LONG1
          this.push(this.long(this.bytes(this.u8())));
          break;
        case 0x8b: {
          // LONG4
          const n = this.i32();
          if (n < 0 || n > this.lim.maxLongBytes) this.fail(`LONG4 of ${n} bytes exceeds ${this.lim.maxLongBytes}`);
          this.push(this.long(this.bytes(n)));
          break;
        }
        case 0x49: {
          // INT (text): protocol 0, also how protocol 1 writes booleans
          const s = this.line();
          if (s === '01') this.push(true);
          else if (s === '00') this.push(false);
          else {
            if (!/^[-+]?\d{1,18}$/.test(s)) this.fail(`bad INT ${JSON.stringify(s)}`);
            this.push(Number(s));
          }
          break;
        }
        case 0x47: // BINFLOAT (big-endian)
          this.need(8);
          this.push(this.dv.getFloat64(this.pos, false));
          this.pos += 8;
          break;

        case 0x58: // BINUNICODE
          this.push(this.utf8(this.u32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.push(this.utf8(this.u8()));
          break;
        case 0x8d: // BINUNICODE8
          this.push(this.utf8(this.u64()));
          break;
        case 0x54: // BINSTRING (Python 2 str)
          this.push(this.latin1(this.i32()));
          break;
        case 0x55: // SHORT_BINSTRING
          this.push(this.latin1(this.u8()));
          break;
        case 0x42: // BINBYTES
          this.push(this.bytes(this.u32()).slice());
          break;
        case 0x43: // SHORT_BINBYTES
          this.push(this.bytes(this.u8()).slice());
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8
          this.push(this.bytes(this.u64()).slice());
          break;

        case 0x29: // EMPTY_TUPLE
          this.push(Object.freeze([]));
          break;
        case 0x85: // TUPLE1
          this.push(Object.freeze([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(Object.freeze([a, b, c]));
          break;
        }
        case 0x74: // TUPLE
          this.push(Object.freeze(this.popMark()));
          break;
        case 0x5d: // EMPTY_LIST
          this.push([]);
          break;
        case 0x6c: // LIST
          this.push(this.popMark());
          break;
        case 0x7d: // EMPTY_DICT
          this.push(new Map());
          break;
        case 0x64: {
          // DICT
          const items = this.popMark();
          if (items.length % 2) this.fail('DICT with an odd number of items');
          const d = new Map<PyValue, PyValue>();
          for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
          this.push(d);
          break;
        }
        case 0x8f: // EMPTY_SET
          this.push(new Set());
          break;
        case 0x90: {
          // ADDITEMS
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set)) this.fail(`ADDITEMS on ${describe(s)}`);
          for (const x of items) s.add(x);
          break;
        }
        case 0x91: // FROZENSET
          this.push(new Set(this.popMark()));
          break;

        case 0x61: // APPEND
          this.append([this.pop()]);
          break;
        case 0x65: // APPENDS
          this.append(this.popMark());
          break;
        case 0x73: {
          // SETITEM
          const v = this.pop();
          const k = this.pop();
          this.setItems([k, v]);
          break;
        }
        case 0x75: // SETITEMS
          this.setItems(this.popMark());
          break;

        case 0x71: // BINPUT
          this.memoPut(this.u8(), this.top());
          break;
        case 0x72: // LONG_BINPUT
          this.memoPut(this.u32(), this.top());
          break;
        case 0x94: // MEMOIZE
          this.memoPut(this.memo.size, this.top());
          break;
        case 0x70: {
          // PUT (text)
          const s = this.line();
          if (!/^\d{1,10}$/.test(s)) this.fail(`bad PUT index ${JSON.stringify(s)}`);
          this.memoPut(Number(s), this.top());
          break;
        }
        case 0x68: // BINGET
          this.push(this.memoGet(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.push(this.memoGet(this.u32()));
          break;
        case 0x67: {
          // GET (text)
          const s = this.line();
          if (!/^\d{1,10}$/.test(s)) this.fail(`bad GET index ${JSON.stringify(s)}`);
          this.push(this.memoGet(Number(s)));
          break;
        }

        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.push(this.global(module, name));
          break;
        }
        case 0x69: {
          // INST "module\nname\n" (protocol 0): MARK args INST builds an instance of module.name
          const cls = this.global(this.line(), this.line());
          this.push(this.call(cls, Object.freeze(this.popMark()), 'INST'));
          break;
        }
        case 0x6f: {
          // OBJ (protocol 1): MARK cls args OBJ
          const [cls, ...args] = this.popMark();
          this.push(this.call(cls, Object.freeze(args), 'OBJ'));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') {
            this.fail(`STACK_GLOBAL needs two strings, got ${describe(module)} and ${describe(name)}`);
          }
          this.push(this.global(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const fn = this.pop();
          this.push(this.call(fn, args, 'REDUCE'));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args)
          const args = this.pop();
          const cls = this.pop();
          this.push(this.call(cls, args, 'NEWOBJ'));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (cls instanceof PyGlobal) {
            if (!Array.isArray(args)) this.fail(`NEWOBJ_EX: arguments are ${describe(args)}`);
            this.push(new PyObject(cls.qualname, args, kwargs));
          } else this.push(this.call(cls, args, 'NEWOBJ_EX'));
          break;
        }
        case 0x62: {
          // BUILD: obj.__setstate__(state) or obj.__dict__.update(state)
          const state = this.pop();
          const obj = this.top();
          if (obj instanceof PyObject) obj.state = state;
          else if (obj instanceof Map || obj instanceof PickledTensor) {
            // OrderedDict state (a state_dict's _metadata) and tensor backward hooks carry nothing we use.
          } else this.fail(`BUILD on ${describe(obj)}`);
          break;
        }
        case 0x51: {
          // BINPERSID
          const pid = this.pop();
          if (!this.opts.persistentLoad) this.fail('a persistent id outside a torch archive');
          try {
            this.push(this.opts.persistentLoad(pid));
          } catch (err) {
            if (err instanceof PickleError) this.fail(err.message);
            throw err;
          }
          break;
        }
        default: {
          const name = UNSUPPORTED[op];
          this.fail(
            name
              ? `unsupported pickle opcode ${name} (0x${op.toString(16)})`
              : `unknown pickle opcode 0x${op.toString(16)} (corrupt data?)`,
          );
        }
      }
    }
  }

  private append(items: PyValue[]): void {
    const target = this.top();
    if (Array.isArray(target) && !Object.isFrozen(target)) {
      for (const x of items) {
        if (target.length >= this.lim.maxStack) this.fail('list too long');
        target.push(x);
      }
    } else if (target instanceof PyObject) for (const x of items) target.listItems.push(x);
    else this.fail(`APPEND to ${describe(target)}`);
  }

  private setItems(items: PyValue[]): void {
    if (items.length % 2) this.fail('SETITEMS with an odd number of items');
    const target = this.top();
    const d = target instanceof Map ? target : target instanceof PyObject ? target.dictItems : undefined;
    if (!d) this.fail(`SETITEM on ${describe(target)}`);
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  }
}

/** Opcodes of older or out-of-band protocols that torch.save never writes; named in errors. */
const UNSUPPORTED: Record<number, string> = {
  0x50: 'PERSID',
  0x4c: 'LONG',
  0x46: 'FLOAT',
  0x53: 'STRING',
  0x56: 'UNICODE',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};
