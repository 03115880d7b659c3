// Weight files: safetensors read/write, the allow-listed torch zip-pickle reader, format sniffing,
// conversion to the safetensors cache, name maps and state-dict assertions.
export {
  asFloat32Tensor,
  bfloat16ToFloat32,
  WEIGHT_DTYPE_SIZE,
  gather,
  halfToFloat32,
  isContiguous,
  numelOf,
  toFloat32,
  typedArrayOf,
  type WeightDType,
  type ReadOptions,
  type StateDict,
  type TensorInfo,
  type WeightSource,
  type WeightTensor,
} from './tensor.js';
export { MAX_HEADER_BYTES, readSafetensors, SafetensorsReader, writeSafetensors } from './safetensors.js';
export { DangerousGlobalError, PickleError, PyGlobal, PyObject, unpickle } from './torch-pickle.js';
export { LEGACY_FORMAT_MESSAGE, TorchCheckpoint, type TorchOpenOptions } from './torch-zip.js';
export {
  convertToSafetensors,
  detectFormat,
  loadCheckpoint,
  openCached,
  openCheckpoint,
  readAll,
  type LoadOptions,
  type WeightFormat,
} from './load.js';
export {
  assertStateDict,
  composeMaps,
  prefixMap,
  renameKeys,
  splitDim0,
  StateDictMismatchError,
  transpose2d,
  type NameMap,
} from './state-dict.js';
