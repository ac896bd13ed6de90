/**
 * A minimal `DOMException` (https://webidl.spec.whatwg.org/#idl-DOMException): the
 * error type of `atob`, `crypto.getRandomValues` and `structuredClone`. Instances are
 * real `Error`s (stack, `instanceof Error`); `name`, `message`, `code` are prototype
 * getters over private fields, and the legacy `*_ERR` constants are present.
 */
import { ObjectDefineProperty, stringSplit } from '../intrinsics.ts';
import { dataDesc, ErrorCaptureStackTrace } from './saved.ts';
import { defineInterface, toDOMString } from './webidl.ts';

// Index = legacy code; an empty slot is a code with no modern name.
const NAMES = stringSplit(
  ',IndexSizeError,,HierarchyRequestError,WrongDocumentError,InvalidCharacterError,,NoModificationAllowedError,' +
  'NotFoundError,NotSupportedError,InUseAttributeError,InvalidStateError,SyntaxError,InvalidModificationError,' +
  'NamespaceError,InvalidAccessError,,TypeMismatchError,SecurityError,NetworkError,AbortError,URLMismatchError,' +
  'QuotaExceededError,TimeoutError,InvalidNodeTypeError,DataCloneError' as string, ',' as any);
const CONSTANTS = stringSplit(
  ',INDEX_SIZE,DOMSTRING_SIZE,HIERARCHY_REQUEST,WRONG_DOCUMENT,INVALID_CHARACTER,NO_DATA_ALLOWED,' +
  'NO_MODIFICATION_ALLOWED,NOT_FOUND,NOT_SUPPORTED,INUSE_ATTRIBUTE,INVALID_STATE,SYNTAX,INVALID_MODIFICATION,' +
  'NAMESPACE,INVALID_ACCESS,VALIDATION,TYPE_MISMATCH,SECURITY,NETWORK,ABORT,URL_MISMATCH,QUOTA_EXCEEDED,TIMEOUT,' +
  'INVALID_NODE_TYPE,DATA_CLONE' as string, ',' as any);

/** Brand check for structuredClone (internal). */
export let isDOMException: (v: unknown) => v is DOMException;

/**
 * @example
 * try { atob('*'); } catch (e) { e instanceof DOMException; e.name; } // true, 'InvalidCharacterError'
 */
export class DOMException extends Error {
  #name: string;
  #message: string;

  constructor(message: unknown = '', options: unknown = 'Error') {
    const msg = toDOMString(message);
    let name: string;
    let cause: { value: unknown } | undefined;
    if (typeof options === 'object' && options !== null) {
      const o = options as { name?: unknown; cause?: unknown };
      name = o.name === undefined ? 'Error' : toDOMString(o.name);
      if ('cause' in o) cause = { value: o.cause };
    } else {
      name = toDOMString(options);
    }
    // An own `message` too: bare V8 builds the stack header from data properties only
    // (a getter-only message gives "Name" instead of "Name: message" outside Node).
    super(msg);
    this.#name = name;
    this.#message = msg;
    if (cause !== undefined) ObjectDefineProperty(this, 'cause', dataDesc(cause.value, false));
    if (ErrorCaptureStackTrace !== undefined) ErrorCaptureStackTrace(this, DOMException);
  }

  get name(): string {
    return this.#name;
  }

  get message(): string {
    return this.#message;
  }

  get code(): number {
    const name = this.#name;
    for (let i = 1; i < NAMES.length; i++) if (NAMES[i] === name) return i;
    return 0;
  }

  static {
    isDOMException = (v) => typeof v === 'object' && v !== null && #name in v;
  }
}

defineInterface(DOMException, 'DOMException');
for (let code = 1; code < CONSTANTS.length; code++) {
  const desc = { __proto__: null, value: code, writable: false, enumerable: true, configurable: false } as PropertyDescriptor;
  ObjectDefineProperty(DOMException, `${CONSTANTS[code]}_ERR`, desc);
  ObjectDefineProperty(DOMException.prototype, `${CONSTANTS[code]}_ERR`, desc);
}

/** Shorthand for throwing a named DOMException. */
export const domException = (name: string, message: string): DOMException => new DOMException(message, name);
