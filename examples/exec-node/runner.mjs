// A small asyncio.run look-alike in JavaScript, speaking the conformance worker protocol.
//
// It is a mini event loop in the shape of CPython's asyncio (3.11): a FIFO ready
// queue of callbacks run one snapshot per iteration, futures whose done callbacks
// are scheduled with call_soon, tasks that step coroutines (here: JavaScript
// generator functions, `yield*` standing for `await`), cancellation requests
// counted per task, and a `run()` that creates the main task, runs the loop until
// it is done and then cancels the tasks left over, finalizes async generators and
// closes the loop. On top of it sits an interpreter of the scenario model
// (conformance/scenario.py) that records what the Python interpreter
// (conformance/interpreter.py) records: log lines, outcome, task states, process
// state, the end of the program (what garbage collection reports) and hints.
//
// Nothing is special-cased per scenario: every observation comes from running the
// loop. See README.md for what it implements and how to run it.
//
// Usage: node runner.mjs            (reads requests on stdin, one JSON line each)

import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

// ------------------------------------------------------------------ options

/** Deliberate mistakes, for showing that the harness catches them (see broken-runner.mjs). */
const options = { skipLeftoverCancellation: false };

/** What this runner declares it implements (conformance/protocol.py vocabulary). */
export const IMPLEMENTS = [
  "mode:run",
  "call:run",
  "call:run_object",
  "runner:debug=false",
  "runner:debug=true",
  'runner:sigint_handler="custom"',
  'runner:sigint_handler="ignored"',
  'runner:thread="other"',
  "op:yield",
  "op:spawn",
  "op:await",
  "op:cancel",
  "op:raise",
  "op:return",
  "op:set_var",
  "op:get_var",
  "op:uncancel",
  "op:stop_loop",
  "op:nested_run",
  "op:timeout",
  "op:executor",
  "op:agen",
  "op:group",
  "op:sigint",
  "op:interrupt_main",
  "op:set_sigint_handler",
  'runner:task_factory="custom"',
  'runner:task_factory="legacy"',
  'runner:loop_fails="create"',
  'runner:loop_fails="set_debug"',
  "task:on_cancel=swallow",
  "task:on_cancel=cleanup",
  "task:finally",
];

// --------------------------------------------------------- Python-ish values

/** A Python exception: type name, args, and the links Python keeps between exceptions. */
class PyExc {
  constructor(type, args = []) {
    this.type = type;
    this.args = args;
    this.context = null; // __context__
    this.cause = null; // __cause__
    this.origin = null; // the scenario step that raised this very object
    this.exceptions = null; // an exception group's exceptions
  }
}

/** BaseException subclasses that are not Exception subclasses. */
const BASE_ONLY = new Set(["CancelledError", "KeyboardInterrupt", "SystemExit", "GeneratorExit"]);

const isPy = (e) => e instanceof PyExc;
/** `except Exception` */
const isException = (e) => isPy(e) && !BASE_ONLY.has(e.type) && e.type !== "BaseExceptionGroup";
const isCancelled = (e) => isPy(e) && e.type === "CancelledError";
const escapesLoop = (e) => isPy(e) && (e.type === "KeyboardInterrupt" || e.type === "SystemExit");

/** Something JavaScript threw that is not a Python exception: a bug here, never behaviour. */
function internal(e) {
  if (!isPy(e)) throw e;
}

const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python's repr() of a str. */
function strRepr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === " " || !NOT_PRINTABLE.test(ch)) out += ch;
    else {
      const cp = ch.codePointAt(0);
      if (cp < 0x100) out += "\\x" + cp.toString(16).padStart(2, "0");
      else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
      else out += "\\U" + cp.toString(16).padStart(8, "0");
    }
  }
  return out + quote;
}

/** Python's repr() of the values a scenario handles (int, str, None, bool). */
function repr(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return strRepr(value);
  throw new Error(`no repr for ${typeof value}`);
}

/** conformance.interpreter.normalize_text: drop addresses and object reprs from a message. */
function normalizeText(text) {
  text = text.split("\n")[0];
  text = text.replace(/ at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}/g, "");
  text = text.replace(/coroutine '(?:[\p{L}\p{N}_<>]+\.)+([\p{L}\p{N}_]+)'/gu, "coroutine '$1'");
  let previous = null;
  while (previous !== text) {
    previous = text;
    text = text.replace(/<[^<>]*>/g, "\0");
  }
  return text.replaceAll("\0", "<\u2026>");
}

function normalizeArg(arg) {
  if (arg === null || typeof arg === "number" || typeof arg === "boolean") return arg;
  return normalizeText(String(arg));
}

/** Python's repr() of an exception: ValueError('x'), ExceptionGroup('m', [ValueError('x')]). */
function exceptionRepr(exc) {
  if (exc.exceptions) return `${exc.type}(${strRepr(exc.args[0])}, [${exc.exceptions.map(exceptionRepr).join(", ")}])`;
  return `${exc.type}(${exc.args.map(repr).join(", ")})`;
}

/** The args of an exception as the observation holds them (a group's list of exceptions as its repr). */
function normalizedArgs(exc) {
  if (exc.exceptions) return [normalizeArg(exc.args[0]), normalizeText(`[${exc.exceptions.map(exceptionRepr).join(", ")}]`)];
  return exc.args.map(normalizeArg);
}

/** One-line form for the log: ValueError('x'); a group lists its exceptions the same way. */
function formatException(exc) {
  if (exc.exceptions) {
    return `${exc.type}(${repr(normalizeArg(exc.args[0]))}, [${exc.exceptions.map(formatException).join(", ")}])`;
  }
  return `${exc.type}(${exc.args.map((a) => repr(normalizeArg(a))).join(", ")})`;
}

/** Type, args, origin, and one level of cause / context (and of a group's exceptions). */
function describeException(exc, depth = 0) {
  const summary = { type: exc.type, args: normalizedArgs(exc) };
  if (exc.origin !== null) summary.origin = exc.origin;
  if (depth === 0) {
    if (exc.cause) summary.cause = describeException(exc.cause, 1);
    if (exc.context) summary.context = describeException(exc.context, 1);
    if (exc.exceptions) summary.exceptions = exc.exceptions.map((e) => describeException(e, 1));
  }
  return summary;
}

/** BaseExceptionGroup(message, exceptions): an ExceptionGroup when they all are Exceptions. */
function exceptionGroup(message, exceptions) {
  const group = new PyExc(exceptions.every(isException) ? "ExceptionGroup" : "BaseExceptionGroup", [message]);
  group.exceptions = [...exceptions];
  return group;
}

/** Python orders str by code point. */
function comparePy(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

const reportRepr = (r) =>
  `{'message': ${repr(r.message)}, 'exception': ${repr(r.exception)}, 'task': ${repr(r.task)}}`;

// ------------------------------------------------- exception state (sys.exc_info)
//
// Python sets __context__ when an exception is raised while another one is being
// handled (an except or finally block). Each coroutine chain has its own stack of
// handled exceptions, saved while it is suspended; beneath it is whatever the code
// that runs the loop is handling (asyncio.run's `with` block while it closes after
// run() raised).

const loopHandled = [];
let currentTask = null;
let runningLoop = null;

function handledStack() {
  return currentTask ? currentTask.handled : loopHandled;
}

/**
 * The exception a `raise` now chains to. A task resumed by a throw has only the
 * coroutines the exception has reached linked to what runs the loop (CPython
 * resumes each of them on its own): the handlers of coroutines further out, at
 * indexes below the task's `linkFloor`, are not seen.
 */
function topHandled() {
  if (currentTask && currentTask.handled.length > currentTask.linkFloor) return currentTask.handled.at(-1);
  return loopHandled.length ? loopHandled.at(-1) : null;
}

/** What `raise exc` (or C code's PyErr_SetObject) does to exc.__context__. */
function chain(exc) {
  const handled = topHandled();
  if (handled) chainWith(exc, handled);
  return exc;
}

function raise(exc) {
  throw chain(exc);
}

/**
 * Whether the running task was resumed by throwing an exception into it. Then,
 * as in CPython's coroutine.throw(), each coroutine the exception propagates out
 * through on its way up chains it with the exception that coroutine is handling.
 */
let throwPath = false;

/** _PyErr_ChainStackItem: exc.__context__ = handled, unless that makes a cycle. */
function chainWith(exc, handled) {
  if (handled === exc) return;
  for (let o = handled; o.context; o = o.context) {
    if (o.context === exc) {
      o.context = null;
      break;
    }
  }
  exc.context = handled;
}

/** Run the generator `body` while `exc` is being handled (an except or finally block). */
function* handling(exc, body) {
  const task = currentTask;
  const stack = handledStack();
  const index = stack.push(exc) - 1;
  // Control coming back here in a task resumed by a throw: this coroutine is resumed, and linked again.
  const relink = () => {
    if (task !== null && throwPath) task.linkFloor = Math.min(task.linkFloor, index);
  };
  try {
    const value = yield* body;
    relink();
    return value;
  } catch (e) {
    relink();
    if (throwPath && isPy(e)) chainWith(e, exc);
    throw e;
  } finally {
    stack.splice(stack.lastIndexOf(exc), 1);
  }
}

function handlingSync(exc, body) {
  const stack = handledStack();
  stack.push(exc);
  try {
    return body();
  } finally {
    stack.splice(stack.lastIndexOf(exc), 1);
  }
}

// ------------------------------------------------------------- coroutines
//
// A coroutine is a generator. It yields null for a bare `yield` (give the other
// ready callbacks one turn, as asyncio.sleep(0) does) or a Future it waits for;
// `return` ends it. Async generators also yield AsyncYield values to their consumer.

/** Every coroutine object made during one scenario: finalized at the end (never awaited, GeneratorExit). */
let coroutines = [];

class Coroutine {
  constructor(name, generator) {
    this.name = name;
    this.gen = generator;
    this.started = false;
    this.finished = false;
    coroutines.push(this);
  }

  resume(how, value) {
    if (this.finished) raise(new PyExc("RuntimeError", ["cannot reuse already awaited coroutine"]));
    this.started = true;
    let r;
    try {
      r = how === "send" ? this.gen.next(value) : this.gen.throw(value);
    } catch (e) {
      this.finished = true;
      throw e;
    }
    if (r.done) this.finished = true;
    return r;
  }

  send(value) {
    return this.resume("send", value);
  }

  throw(exc) {
    return this.resume("throw", exc);
  }
}

function* sleep0() {
  yield null;
}

/** Coroutines left suspended when closing them failed: finalized once more after their caller. */
let abandoned = [];

/**
 * `await inner`, where closing the awaiting coroutine (GeneratorExit from garbage
 * collection) follows Python's coroutine.close(): the inner coroutine is closed
 * first; if it returns instead of raising, the awaiting one gets a fresh
 * GeneratorExit, and if it awaits instead, a RuntimeError.
 */
function* awaitWithCloseSemantics(inner) {
  let r = inner.next();
  for (;;) {
    if (r.done) return r.value;
    let sent;
    try {
      sent = yield r.value;
    } catch (e) {
      if (!(isPy(e) && e.type === "GeneratorExit")) {
        r = inner.throw(e);
        continue;
      }
      if (inner.throw(e).done) throw new PyExc("GeneratorExit");
      abandoned.push(inner);
      raise(new PyExc("RuntimeError", ["coroutine ignored GeneratorExit"]));
    }
    r = inner.next(sent);
  }
}

// --------------------------------------------------------------- futures

const PENDING = "PENDING";
const CANCELLED = "CANCELLED";
const FINISHED = "FINISHED";

/** Every task made during one scenario, in creation order. */
let allTasks = [];
/** Every other future that was given an exception: "never retrieved" at the end, unless it was. */
let failedFutures = [];

class Future {
  constructor(loop) {
    this.loop = loop;
    this.state = PENDING;
    this.value = null;
    this.exc = null;
    this.callbacks = [];
    this.cancelMessage = null;
    this.cancelledExc = null;
    this.logTraceback = false;
    this.blocking = false;
  }

  done() {
    return this.state !== PENDING;
  }

  cancelled() {
    return this.state === CANCELLED;
  }

  futureCancel(msg = null) {
    this.logTraceback = false;
    if (this.state !== PENDING) return false;
    this.state = CANCELLED;
    this.cancelMessage = msg;
    this.scheduleCallbacks();
    return true;
  }

  cancel(msg = null) {
    return this.futureCancel(msg);
  }

  scheduleCallbacks() {
    const callbacks = this.callbacks;
    this.callbacks = [];
    for (const [callback, context] of callbacks) this.loop.callSoon(() => callback(this), context);
  }


  makeCancelledError() {
    if (this.cancelledExc !== null) {
      const exc = this.cancelledExc;
      this.cancelledExc = null;
      return exc;
    }
    return new PyExc("CancelledError", this.cancelMessage === null ? [] : [this.cancelMessage]);
  }

  result() {
    if (this.state === CANCELLED) raise(this.makeCancelledError());
    if (this.state !== FINISHED) raise(new PyExc("InvalidStateError", ["Result is not ready."]));
    this.logTraceback = false;
    if (this.exc !== null) raise(this.exc);
    return this.value;
  }

  exception() {
    if (this.state === CANCELLED) raise(this.makeCancelledError());
    if (this.state !== FINISHED) raise(new PyExc("InvalidStateError", ["Exception is not set."]));
    this.logTraceback = false;
    return this.exc;
  }

  addDoneCallback(callback, context = null) {
    if (this.state !== PENDING) this.loop.callSoon(() => callback(this), context);
    else this.callbacks.push([callback, context]);
  }

  removeDoneCallback(callback) {
    this.callbacks = this.callbacks.filter(([cb]) => cb !== callback);
  }

  setResult(value) {
    if (this.state !== PENDING) raise(new PyExc("InvalidStateError", [`${this.state}: set_result`]));
    this.value = value;
    this.state = FINISHED;
    this.scheduleCallbacks();
  }

  setException(exc) {
    if (this.state !== PENDING) raise(new PyExc("InvalidStateError", [`${this.state}: set_exception`]));
    this.exc = exc;
    this.state = FINISHED;
    this.scheduleCallbacks();
    this.logTraceback = true;
    if (!(this instanceof Task)) failedFutures.push(this);
  }

  className() {
    return "Future";
  }
}

/** `await future` (Future.__await__). */
function* awaitFuture(future) {
  if (!future.done()) {
    future.blocking = true;
    yield future;
  }
  if (!future.done()) raise(new PyExc("RuntimeError", ["await wasn't used with future"]));
  return future.result();
}

class Task extends Future {
  constructor(coro, loop, context) {
    super(loop);
    this.coro = coro;
    this.context = context;
    this.mustCancel = false;
    this.futWaiter = null;
    this.cancelRequests = 0;
    this.logDestroyPending = true;
    this.handled = [];
    this.linkFloor = 0;
    loop.callSoon(() => this.step(null), context);
    allTasks.push(this);
  }

  cancel(msg = null) {
    this.logTraceback = false;
    if (this.done()) return false;
    this.cancelRequests += 1;
    if (this.futWaiter !== null && this.futWaiter.cancel(msg)) return true;
    this.mustCancel = true;
    this.cancelMessage = msg;
    return true;
  }

  cancelling() {
    return this.cancelRequests;
  }

  uncancel() {
    if (this.cancelRequests > 0) this.cancelRequests -= 1;
    return this.cancelRequests;
  }

  hasUncancel() {
    return true;
  }

  className() {
    return "Task";
  }

  step(exc) {
    if (this.done()) throw new Error("step of a task that is done");
    if (this.mustCancel) {
      if (!isCancelled(exc)) exc = this.makeCancelledError();
      this.mustCancel = false;
    }
    this.futWaiter = null;
    if (currentTask !== null) throw new Error("a task steps inside another");
    currentTask = this;
    throwPath = exc !== null;
    this.linkFloor = throwPath ? this.handled.length : 0;
    try {
      let r;
      try {
        r = exc === null ? this.coro.send(null) : this.coro.throw(exc);
      } catch (e) {
        internal(e);
        if (isCancelled(e)) {
          this.cancelledExc = e;
          this.futureCancel();
        } else if (escapesLoop(e)) {
          this.setException(e);
          throw e;
        } else {
          this.setException(e);
        }
        return;
      }
      if (r.done) {
        if (this.mustCancel) {
          this.mustCancel = false;
          this.futureCancel(this.cancelMessage);
        } else {
          this.setResult(r.value === undefined ? null : r.value);
        }
        return;
      }
      const result = r.value;
      if (result instanceof Future) {
        if (!result.blocking) throw new Error("yield was used instead of yield from");
        if (result === this) throw new Error("Task cannot await on itself");
        result.blocking = false;
        result.addDoneCallback((f) => this.wakeup(f), this.context);
        this.futWaiter = result;
        if (this.mustCancel && this.futWaiter.cancel(this.cancelMessage)) this.mustCancel = false;
      } else if (result === null) {
        this.loop.callSoon(() => this.step(null), this.context);
      } else {
        throw new Error(`Task got bad yield: ${result}`);
      }
    } finally {
      currentTask = null;
      throwPath = false;
    }
  }

  /** task_wakeup: the result of the awaited future goes into the coroutine. */
  wakeup(future) {
    if (future.state === CANCELLED) {
      this.step(chain(future.makeCancelledError()));
    } else {
      future.logTraceback = false;
      this.step(future.exc);
    }
  }
}

/** A Task class as written before Python 3.11: no uncancel(). */
class TaskWithoutUncancel extends Task {
  uncancel() {
    raise(new PyExc("AttributeError", ["uncancel"]));
  }

  hasUncancel() {
    return false;
  }

  className() {
    return "_TaskWithoutUncancel";
  }
}

// ---------------------------------------------------- gather, wait, shield, wait_for

class GatheringFuture extends Future {
  constructor(children, loop) {
    super(loop);
    this.children = children;
    this.cancelRequested = false;
  }

  /** Cancelling the gathering cancels its children. */
  cancel(msg = null) {
    if (this.done()) return false;
    let cancelled = false;
    for (const child of this.children) if (child.cancel(msg)) cancelled = true;
    if (cancelled) this.cancelRequested = true;
    return cancelled;
  }

  className() {
    return "_GatheringFuture";
  }
}

/** asyncio.gather(*children, return_exceptions=...) of distinct tasks. */
function gather(loop, children, returnExceptions) {
  let finished = 0;
  let outer = null;
  const done = (future) => {
    finished += 1;
    if (outer === null || outer.done()) {
      if (!future.cancelled()) future.exception();
      return;
    }
    if (!returnExceptions) {
      if (future.cancelled()) {
        outer.setException(future.makeCancelledError());
        return;
      }
      const exc = future.exception();
      if (exc !== null) {
        outer.setException(exc);
        return;
      }
    }
    if (finished === children.length) {
      const results = children.map((child) => {
        if (child.cancelled()) return new PyExc("CancelledError", [child.cancelMessage ?? ""]);
        const exc = child.exception();
        return exc !== null ? exc : child.result();
      });
      // CPython asks the last child here (the loop above rebinds its variable), not the one that finished.
      if (outer.cancelRequested) outer.setException(children.at(-1).makeCancelledError());
      else outer.setResult(results);
    }
  };
  for (const child of children) child.addDoneCallback(done);
  outer = new GatheringFuture(children, loop);
  return outer;
}

/** asyncio.wait(children, return_when=...): the children done when it returns. */
function* wait(loop, children, returnWhen) {
  const waiter = loop.createFuture();
  let counter = children.length;
  const onCompletion = (future) => {
    counter -= 1;
    if (
      counter <= 0 ||
      returnWhen === "first_completed" ||
      (returnWhen === "first_exception" && !future.cancelled() && future.exception() !== null)
    ) {
      if (!waiter.done()) waiter.setResult(null);
    }
  };
  for (const child of children) child.addDoneCallback(onCompletion);
  try {
    yield* awaitFuture(waiter);
  } finally {
    for (const child of children) child.removeDoneCallback(onCompletion);
  }
  return children.filter((child) => child.done());
}

/** asyncio.shield(inner): a future that cancelling does not pass on to inner. */
function shield(loop, inner) {
  if (inner.done()) return inner;
  const outer = loop.createFuture();
  const innerDone = (i) => {
    if (outer.cancelled()) {
      if (!i.cancelled()) i.exception();
      return;
    }
    if (i.cancelled()) {
      outer.cancel();
    } else {
      const exc = i.exception();
      if (exc !== null) outer.setException(exc);
      else outer.setResult(i.result());
    }
  };
  inner.addDoneCallback(innerDone);
  outer.addDoneCallback(() => {
    if (!inner.done()) inner.removeDoneCallback(innerDone);
  });
  return outer;
}

function releaser(waiter) {
  return () => {
    if (!waiter.done()) waiter.setResult(null);
  };
}

function* cancelAndWait(loop, future) {
  const waiter = loop.createFuture();
  const release = releaser(waiter);
  future.addDoneCallback(release);
  try {
    future.cancel();
    yield* awaitFuture(waiter);
  } finally {
    future.removeDoneCallback(release);
  }
}

/** `raise TimeoutError() from exc` inside `except CancelledError as exc`. */
function timeoutFrom(exc) {
  const timeoutError = new PyExc("TimeoutError");
  timeoutError.cause = exc;
  handlingSync(exc, () => raise(timeoutError));
}

/** The result of a future, its cancellation turned into a TimeoutError. */
function resultOrTimeout(future) {
  try {
    return future.result();
  } catch (e) {
    internal(e);
    if (isCancelled(e)) timeoutFrom(e);
    throw e;
  }
}

/** asyncio.wait_for(future, 0 or a day) as Python 3.11 has it. */
function* waitFor(loop, future, deadline) {
  if (deadline === "expired") {
    if (future.done()) return future.result();
    yield* cancelAndWait(loop, future);
    return resultOrTimeout(future);
  }
  const waiter = loop.createFuture();
  const timeoutHandle = loop.callLater(releaser(waiter));
  const release = releaser(waiter);
  future.addDoneCallback(release);
  try {
    try {
      yield* awaitFuture(waiter);
    } catch (e) {
      internal(e);
      if (!isCancelled(e)) throw e;
      const handler = function* () {
        if (future.done()) return future.result();
        future.removeDoneCallback(release);
        yield* cancelAndWait(loop, future);
        throw e;
      };
      return yield* handling(e, handler());
    }
    if (future.done()) return future.result();
    future.removeDoneCallback(release);
    yield* cancelAndWait(loop, future);
    return resultOrTimeout(future);
  } finally {
    timeoutHandle.cancel();
  }
}

const isBaseError = (e) => isPy(e) && (e.type === "KeyboardInterrupt" || e.type === "SystemExit");

/** asyncio.TaskGroup (3.11); it cancels its children in the order they were made. */
class TaskGroup {
  constructor() {
    this.entered = false;
    this.exiting = false;
    this.aborting = false;
    this.loop = null;
    this.parentTask = null;
    this.parentCancelRequested = false;
    this.tasks = new Set();
    this.errors = [];
    this.baseError = null;
    this.onCompletedFut = null;
  }

  enter() {
    this.loop = runningLoop;
    this.parentTask = currentTask;
    if (this.loop === null || this.parentTask === null) {
      raise(new PyExc("RuntimeError", ["TaskGroup <TaskGroup> cannot determine the parent task"]));
    }
    this.entered = true;
  }

  createTask(coro) {
    if (!this.entered) raise(new PyExc("RuntimeError", ["TaskGroup <TaskGroup> has not been entered"]));
    if (this.exiting && !this.tasks.size) raise(new PyExc("RuntimeError", ["TaskGroup <TaskGroup> is finished"]));
    if (this.aborting) raise(new PyExc("RuntimeError", ["TaskGroup <TaskGroup> is shutting down"]));
    const task = this.loop.createTask(coro);
    task.addDoneCallback((t) => this.onTaskDone(t));
    this.tasks.add(task);
    return task;
  }

  *exit(exc) {
    this.exiting = true;
    if (exc !== null && isBaseError(exc) && this.baseError === null) this.baseError = exc;
    let propagateCancellation = exc !== null && isCancelled(exc) ? exc : null;
    if (this.parentCancelRequested && this.parentTask.uncancel() === 0) propagateCancellation = null;
    if (exc !== null && !this.aborting) this.abort();
    while (this.tasks.size) {
      if (this.onCompletedFut === null) this.onCompletedFut = this.loop.createFuture();
      try {
        yield* awaitFuture(this.onCompletedFut);
      } catch (e) {
        internal(e);
        if (!isCancelled(e)) throw e;
        if (!this.aborting) {
          propagateCancellation = e;
          this.abort();
        }
      }
      this.onCompletedFut = null;
    }
    if (this.baseError !== null) raise(this.baseError);
    if (propagateCancellation !== null && !this.errors.length) raise(propagateCancellation);
    if (exc !== null && !isCancelled(exc)) this.errors.push(exc);
    if (this.errors.length) {
      const group = exceptionGroup("unhandled errors in a TaskGroup", this.errors);
      this.errors = null;
      raise(group); // from None: no cause
    }
  }

  abort() {
    this.aborting = true;
    for (const task of this.tasks) if (!task.done()) task.cancel();
  }

  onTaskDone(task) {
    this.tasks.delete(task);
    if (this.onCompletedFut !== null && !this.tasks.size && !this.onCompletedFut.done()) {
      this.onCompletedFut.setResult(true);
    }
    if (task.cancelled()) return;
    const exc = task.exception();
    if (exc === null) return;
    this.errors.push(exc);
    if (isBaseError(exc) && this.baseError === null) this.baseError = exc;
    if (this.parentTask.done()) {
      this.loop.callExceptionHandler({
        message: "Task <Task> has errored out but its parent task <Task> is already completed",
        exception: exc,
        task,
      });
      return;
    }
    if (!this.aborting && !this.parentCancelRequested) {
      this.abort();
      this.parentCancelRequested = true;
      this.parentTask.cancel();
    }
  }
}

// ------------------------------------------------------------ event loop

let contextNow = new Map(); // the contextvars context the running code sees

class Handle {
  constructor(callback, context) {
    this.callback = callback;
    this.context = context;
    this.cancelled = false;
  }

  cancel() {
    this.cancelled = true;
  }

  run(loop) {
    const previous = contextNow;
    contextNow = this.context;
    try {
      this.callback();
    } catch (e) {
      internal(e);
      if (escapesLoop(e)) throw e;
      loop.callExceptionHandler({ message: "Exception in callback", exception: e });
    } finally {
      contextNow = previous;
    }
  }
}

const MAX_CALLBACKS = 200000;

class EventLoop {
  constructor() {
    this.ready = [];
    this.scheduled = []; // timers; only ones that never come (see Timeout)
    this.stopping = false;
    this.running = false;
    this.closed = false;
    this.debug = false;
    this.exceptionHandler = null;
    this.asyncgens = new Set();
    this.asyncgensShutdownCalled = false;
    this.defaultExecutor = false;
    this.executorShutdownCalled = false;
    this.callbacksRun = 0;
    this.taskFactory = null;
    this.setDebugFails = false;
  }

  setDebug(enabled) {
    if (this.setDebugFails) {
      const exc = new PyExc("RuntimeError", ["set_debug failed"]);
      exc.origin = LOOP_FAILURE_ORIGIN;
      raise(exc);
    }
    this.debug = enabled;
  }

  checkClosed() {
    if (this.closed) raise(new PyExc("RuntimeError", ["Event loop is closed"]));
  }

  callSoon(callback, context = null) {
    this.checkClosed();
    const handle = new Handle(callback, context ?? new Map(contextNow));
    this.ready.push(handle);
    return handle;
  }

  callLater(callback) {
    this.checkClosed();
    const handle = new Handle(callback, new Map(contextNow));
    this.scheduled.push(handle);
    return handle;
  }

  createFuture() {
    return new Future(this);
  }

  createTask(coro, context = null) {
    this.checkClosed();
    if (this.taskFactory !== null) return this.taskFactory(this, coro, context);
    return new Task(coro, this, context ?? new Map(contextNow));
  }

  runOnce() {
    if (!this.ready.length && !this.stopping) {
      throw new Error("the event loop would wait forever: no callback is ready");
    }
    const ntodo = this.ready.length;
    for (let i = 0; i < ntodo; i++) {
      const handle = this.ready.shift();
      if (handle.cancelled) continue;
      if (++this.callbacksRun > MAX_CALLBACKS) throw new Error("too many callbacks: a runaway scenario");
      handle.run(this);
    }
  }

  runForever() {
    this.checkClosed();
    if (this.running) raise(new PyExc("RuntimeError", ["This event loop is already running"]));
    if (runningLoop !== null) {
      raise(new PyExc("RuntimeError", ["Cannot run the event loop while another loop is running"]));
    }
    this.running = true;
    runningLoop = this;
    try {
      for (;;) {
        this.runOnce();
        if (this.stopping) break;
      }
    } finally {
      this.stopping = false;
      this.running = false;
      runningLoop = null;
    }
  }

  runUntilComplete(awaitable) {
    this.checkClosed();
    if (this.running) raise(new PyExc("RuntimeError", ["This event loop is already running"]));
    const newTask = !(awaitable instanceof Future);
    const future = newTask ? this.createTask(awaitable) : awaitable;
    if (newTask) future.logDestroyPending = false;
    const stopWhenDone = (f) => {
      if (!f.cancelled() && escapesLoop(f.exception())) return;
      f.loop.stop();
    };
    future.addDoneCallback(stopWhenDone);
    try {
      this.runForever();
    } catch (e) {
      internal(e);
      if (newTask && future.done() && !future.cancelled()) future.exception();
      throw e;
    } finally {
      future.removeDoneCallback(stopWhenDone);
    }
    if (!future.done()) raise(new PyExc("RuntimeError", ["Event loop stopped before Future completed."]));
    return future.result();
  }

  stop() {
    this.stopping = true;
  }

  close() {
    if (this.running) raise(new PyExc("RuntimeError", ["Cannot close a running event loop"]));
    if (this.closed) return;
    this.closed = true;
    this.ready = [];
    this.scheduled = [];
    this.executorShutdownCalled = true;
    this.defaultExecutor = false;
  }

  setExceptionHandler(handler) {
    this.exceptionHandler = handler;
  }

  callExceptionHandler(context) {
    if (this.exceptionHandler) this.exceptionHandler(context);
    // The default handler only logs: nothing anyone observes.
  }

  /** run_in_executor(None, job): the job runs at once (the loop waits for it), its future is never awaited. */
  runInExecutor(job) {
    this.checkClosed();
    if (this.executorShutdownCalled) raise(new PyExc("RuntimeError", ["Executor shutdown has been called"]));
    this.defaultExecutor = true;
    const future = this.createFuture();
    job();
    return future;
  }

  *shutdownAsyncgens() {
    this.asyncgensShutdownCalled = true;
    if (!this.asyncgens.size) return null;
    const closing = [...this.asyncgens];
    this.asyncgens.clear();
    const children = closing.map((agen) => this.createTask(new Coroutine("aclose", agen.aclose())));
    for (const child of children) child.logDestroyPending = false;
    const results = yield* awaitFuture(gather(this, children, true));
    results.forEach((result, i) => {
      if (isException(result)) {
        this.callExceptionHandler({
          message: `an error occurred during closing of asynchronous generator <async_generator ${closing[i].name}>`,
          exception: result,
        });
      }
    });
    return null;
  }

  *shutdownDefaultExecutor() {
    this.executorShutdownCalled = true;
    if (!this.defaultExecutor) return null;
    // A helper thread joins the executor's (idle) workers and then resolves this future.
    const future = this.createFuture();
    this.callSoon(() => {
      if (!future.done()) future.setResult(null);
    });
    yield* awaitFuture(future);
    return null;
  }
}

// ------------------------------------------------------------ async generators

class AsyncYield {
  constructor(value) {
    this.value = value;
  }
}

class AsyncGenerator {
  constructor(name, generator) {
    this.name = name;
    this.gen = generator;
    this.hooked = false;
    this.running = false;
    this.finished = false;
  }

  /** Drive the generator until it yields to its consumer, passing its own awaits through. */
  *drive(first) {
    let r;
    try {
      r = first();
      for (;;) {
        if (r.done) {
          this.finished = true;
          return { done: true };
        }
        if (r.value instanceof AsyncYield) return { done: false, value: r.value.value };
        let sent;
        try {
          sent = yield r.value;
        } catch (e) {
          r = this.gen.throw(e);
          continue;
        }
        r = this.gen.next(sent);
      }
    } catch (e) {
      this.finished = true;
      throw e;
    }
  }

  firstIteration() {
    if (this.hooked) return;
    this.hooked = true;
    const loop = runningLoop;
    if (loop === null) return;
    if (loop.asyncgensShutdownCalled) {
      session.warn(
        `ResourceWarning: asynchronous generator <async_generator ${this.name}> was scheduled after loop.shutdown_asyncgens() call`,
      );
    }
    loop.asyncgens.add(this);
  }

  *anext() {
    this.firstIteration();
    const r = yield* this.drive(() => this.gen.next());
    if (r.done) raise(new PyExc("StopAsyncIteration"));
    return r.value;
  }

  *aclose() {
    if (this.finished) return null;
    let r;
    try {
      r = yield* this.drive(() => this.gen.throw(new PyExc("GeneratorExit")));
    } catch (e) {
      internal(e);
      if (e.type === "GeneratorExit" || e.type === "StopAsyncIteration") return null;
      throw e;
    }
    if (r.done) return null;
    raise(new PyExc("RuntimeError", ["async generator ignored GeneratorExit"]));
  }
}

// -------------------------------------------------------------- the process

/** What a runner changes in the process: the SIGINT handler and the thread's current loop. */
const process_ = {
  sigint: "default", // "default" | "custom" | "SIG_IGN" | a runner's handler
  threadLoop: null,
  mainThread: true,
};

// ------------------------------------------------------------- the Runner

class Runner {
  constructor(debug) {
    this.debug = debug;
    this.phase = "fresh";
    this.loop = null;
    this.context = null;
    this.madeLoopCurrent = false;
  }

  ensureReady() {
    if (this.phase === "closed") raise(new PyExc("RuntimeError", ["Runner is closed"]));
    if (this.phase === "ready") return;
    this.loop = session.newEventLoop();
    if (!this.madeLoopCurrent) {
      process_.threadLoop = this.loop;
      this.madeLoopCurrent = true;
    }
    if (this.debug !== null) this.loop.setDebug(this.debug);
    this.context = new Map(contextNow);
    this.phase = "ready";
  }

  run(coro) {
    // 3.11: the argument is checked first (a generator counts as a coroutine), then the running loop.
    if (!(coro instanceof Coroutine) && !isGenerator(coro)) {
      raise(new PyExc("ValueError", [`a coroutine was expected, got ${objectRepr(coro)}`]));
    }
    if (runningLoop !== null) {
      raise(new PyExc("RuntimeError", ["Runner.run() cannot be called from a running event loop"]));
    }
    this.ensureReady();
    const main = coro instanceof Coroutine ? coro : new Coroutine("<genexpr>", coro);
    const task = this.loop.createTask(main, this.context);
    const handler = this.installSigintHandler(task);
    this.sigintCount = 0;
    try {
      return this.loop.runUntilComplete(task);
    } catch (e) {
      internal(e);
      if (isCancelled(e)) {
        // A cancellation that only our SIGINT handler asked for becomes a KeyboardInterrupt.
        handlingSync(e, () => {
          if (this.sigintCount > 0 && task.hasUncancel() && task.uncancel() === 0) {
            raise(new PyExc("KeyboardInterrupt"));
          }
        });
      }
      throw e;
    } finally {
      if (handler !== null && process_.sigint === handler) process_.sigint = "default";
    }
  }

  /** Only in the main thread, and only over Python's default handler. */
  installSigintHandler(mainTask) {
    if (!process_.mainThread || process_.sigint !== "default") return null;
    const handler = { runner: this, mainTask };
    process_.sigint = handler;
    return handler;
  }

  /** The runner's handler: the first SIGINT cancels the main task, a later one raises KeyboardInterrupt. */
  handleSigint(mainTask) {
    this.sigintCount += 1;
    if (this.sigintCount > 1 || mainTask.done()) raise(new PyExc("KeyboardInterrupt"));
    mainTask.cancel();
    this.loop.callSoon(() => {}); // call_soon_threadsafe(_wake_up)
  }

  close() {
    if (this.phase !== "ready") return;
    const loop = this.loop;
    try {
      if (!options.skipLeftoverCancellation) this.cancelLeftoverTasks(loop);
      loop.runUntilComplete(new Coroutine("shutdown_asyncgens", loop.shutdownAsyncgens()));
      loop.runUntilComplete(new Coroutine("shutdown_default_executor", loop.shutdownDefaultExecutor()));
    } finally {
      if (this.madeLoopCurrent) process_.threadLoop = null;
      loop.close();
      this.loop = null;
      this.phase = "closed";
    }
  }

  cancelLeftoverTasks(loop) {
    // One snapshot, in creation order (CPython leaves the order open).
    const leftovers = allTasks.filter((task) => task.loop === loop && !task.done());
    if (!leftovers.length) return;
    for (const task of leftovers) task.cancel();
    loop.runUntilComplete(gather(loop, leftovers, true));
    for (const task of leftovers) {
      if (task.cancelled()) continue;
      const error = task.exception();
      if (error !== null) {
        loop.callExceptionHandler({
          message: "unhandled exception during asyncio.run() shutdown",
          exception: error,
          task,
        });
      }
    }
  }
}

/** asyncio.run(main, debug=...): refuse inside a running loop, else `with Runner() as r: return r.run(main)`. */
function asyncioRun(main, debug) {
  if (runningLoop !== null) {
    raise(new PyExc("RuntimeError", ["asyncio.run() cannot be called from a running event loop"]));
  }
  const runner = new Runner(debug);
  runner.ensureReady();
  let result;
  try {
    result = runner.run(main);
  } catch (e) {
    internal(e);
    // __exit__ runs while the exception is being handled.
    handlingSync(e, () => runner.close());
    throw e;
  }
  runner.close();
  return result;
}

function isGenerator(value) {
  return value !== null && typeof value === "object" && typeof value.next === "function" && typeof value.throw === "function";
}

function objectRepr(value) {
  if (value === null || value === undefined) return "None";
  if (typeof value === "number") return String(value);
  return `<${typeof value === "function" ? "function" : "object"}>`;
}

// ----------------------------------------------------------- the interpreter

const UNSET = "<unset>";
/** The origin (as for raise steps) of what `loop_fails` makes a loop raise. */
const LOOP_FAILURE_ORIGIN = "$.runner.loop_fails";
const DEADLINES = ["expired", "never"];

/** One execution of one scenario; mirrors conformance.interpreter._Session. */
class Session {
  constructor(scenario) {
    this.scenario = scenario;
    this.config = scenario.runner;
    this.tasks = new Map(); // label -> Task, in the order they were made
    this.labels = new Map(); // Task -> label
    this.loops = [];
    this.records = [];
    this.current = { log: [], reports: [] };
    this.hints = { pending_at_main_exit: [] };
    this.warnings = [];
    this.agenCount = 0;
    this.executorCount = 0;
    this.coroutineLabels = new Map(); // coroutine -> its task's label, for the task factory
    this.loopsAsked = 0;
  }

  /** A new event loop for a runner, through the scenario's hooks when it configures them (loop_fails, task_factory). */
  newEventLoop() {
    const config = this.config;
    const loopFails = config.loop_fails ?? "never";
    const taskFactory = config.task_factory ?? "none";
    if (loopFails === "never" && taskFactory === "none") return new EventLoop();
    const first = this.loopsAsked === 0;
    this.loopsAsked += 1;
    if (first && loopFails === "create") {
      const exc = new PyExc("RuntimeError", ["loop creation failed"]);
      exc.origin = LOOP_FAILURE_ORIGIN;
      raise(exc);
    }
    const loop = new EventLoop();
    this.loopLabel(loop);
    if (first && loopFails === "set_debug") loop.setDebugFails = true;
    if (taskFactory !== "none") loop.taskFactory = (l, coro, context) => this.makeTask(l, coro, context);
    return loop;
  }

  /** The scenario's task factory: logs the scenario's tasks it makes; `legacy` makes a main task without uncancel(). */
  makeTask(loop, coro, context) {
    const label = this.coroutineLabels.get(coro);
    if (label !== undefined) {
      this.log(label, `task_factory context=${context !== null ? "True" : "False"} sigint=${sigintState()}`);
    }
    const main = label !== undefined && label.endsWith(".t0");
    const TaskClass = this.config.task_factory === "legacy" && main ? TaskWithoutUncancel : Task;
    return new TaskClass(coro, loop, context ?? new Map(contextNow));
  }

  log(label, event) {
    this.current.log.push(`${label} ${event}`);
  }

  warn(text) {
    this.warnings.push(text);
  }

  loopLabel(loop) {
    let index = this.loops.indexOf(loop);
    if (index < 0) index = this.loops.push(loop) - 1;
    return `loop${index}`;
  }

  register(label, task) {
    this.tasks.set(label, task);
    this.labels.set(task, label);
  }

  /** The tasks not done now: a close may be about to cancel them (hints). */
  noteLeftovers(exclude = "") {
    const pending = this.hints.pending_at_main_exit;
    const known = [...pending, exclude];
    for (const [name, task] of this.tasks) if (!task.done() && !known.includes(name)) pending.push(name);
  }

  onLoopException(context) {
    const subject = context.task ?? context.future ?? null;
    this.current.reports.push({
      message: normalizeText(String(context.message ?? "")),
      exception: context.exception ? formatException(context.exception) : null,
      task: subject === null ? null : (this.labels.get(subject) ?? "other"),
    });
  }

  value(value) {
    if (value === null || value === undefined) return null;
    if (["number", "string", "boolean"].includes(typeof value)) return value;
    if (value instanceof EventLoop) return this.loopLabel(value);
    return "<object>";
  }

  // -------------------------------------------------------------- driving

  execute() {
    process_.sigint = { default: "default", custom: "custom", ignored: "SIG_IGN" }[this.config.sigint_handler ?? "default"];
    process_.mainThread = (this.config.thread ?? "main") === "main";
    process_.threadLoop = null;
    const [call] = this.scenario.calls;
    this.record(call, "$.calls[0]", () => asyncioRun(this.mainObject(call), this.config.debug ?? null));
    const end = this.end();
    return { calls: this.records, end, hints: this.hints };
  }

  mainObject(call) {
    if (call.call === "run") {
      const coro = new Coroutine("_task", this.taskCoroutine("r0.t0", call.main.tasks, 0));
      this.coroutineLabels.set(coro, "r0.t0");
      return coro;
    }
    switch (call.object) {
      case "int":
        return 1;
      case "none":
        return null;
      case "lambda":
        return () => null;
      case "generator":
        return (function* () {})();
      case "awaitable":
        return { await: () => sleep0() };
      case "awaited": {
        // A coroutine already run to its end: running it again fails.
        const coro = new Coroutine("_finished", (function* () {
          return "finished";
        })());
        coro.send(null);
        return coro;
      }
      default:
        throw new Error(`unknown object ${call.object}`);
    }
  }

  record(call, path, action) {
    const record = { call: call.call, path, log: [], reports: [] };
    this.records.push(record);
    this.current = record;
    try {
      record.outcome = { returned: this.value(action()) };
    } catch (e) {
      internal(e);
      record.outcome = { raised: describeException(e) };
    }
    record.reports.sort((a, b) => comparePy(reportRepr(a), reportRepr(b)));
    record.log = agensUnordered(record.log);
    record.tasks = Object.fromEntries([...this.tasks].map(([label, task]) => [label, taskState(task)]));
    record.state = { thread_loop: this.threadLoopState(), sigint: sigintState(), threads: false };
  }

  threadLoopState() {
    const loop = process_.threadLoop;
    if (loop === null) return "none";
    return this.loops.includes(loop) ? this.loopLabel(loop) : "other";
  }

  /** Release everything: what garbage collection of tasks, coroutines and generators reports. */
  end() {
    const end = { log: [], reports: [] };
    this.current = end;
    end.loops = Object.fromEntries(
      this.loops.map((loop, i) => [`loop${i}`, loop.running ? "running" : loop.closed ? "closed" : "open"]),
    );
    process_.sigint = "default";
    for (const loop of this.loops) if (!loop.closed && !loop.running) loop.close();
    contextNow = new Map();
    for (const task of allTasks) {
      if (task.state === PENDING && task.logDestroyPending) {
        task.loop.callExceptionHandler({ message: "Task was destroyed but it is pending!", task });
      }
      if (task.logTraceback) {
        task.loop.callExceptionHandler({
          message: `${task.className()} exception was never retrieved`,
          exception: task.exc,
          future: task,
        });
      }
    }
    for (const future of failedFutures) {
      if (future.logTraceback) {
        future.loop.callExceptionHandler({
          message: `${future.className()} exception was never retrieved`,
          exception: future.exc,
          future,
        });
      }
    }
    // Coroutines: a suspended one is closed (GeneratorExit), one never started warns.
    this.tasks = new Map(); // released: what closing coroutines notes sees no task
    for (const coro of [...coroutines]) {
      if (coro.finished || coro.name === "aclose") continue;
      if (!coro.started) {
        this.warn(`RuntimeWarning: coroutine '${coro.name}' was never awaited`);
        continue;
      }
      throwPath = true;
      closeQuietly(() => coro.throw(new PyExc("GeneratorExit")));
      while (abandoned.length) {
        const inner = abandoned.shift();
        closeQuietly(() => inner.throw(new PyExc("GeneratorExit")));
      }
      throwPath = false;
    }
    end.log.sort((a, b) => comparePy(a.split(" ", 1)[0], b.split(" ", 1)[0]));
    end.reports.sort((a, b) => comparePy(reportRepr(a), reportRepr(b)));
    end.warnings = this.warnings.map(normalizeText).sort(comparePy);
    return end;
  }

  // ---------------------------------------------------------------- tasks

  *taskCoroutine(label, specs, index) {
    if (index === 0) {
      const loop = runningLoop;
      loop.setExceptionHandler((context) => this.onLoopException(context));
      if (currentTask !== null) this.register(label, currentTask);
      this.log(label, `start ${this.loopLabel(loop)} debug=${loop.debug ? "True" : "False"}`);
    } else {
      this.log(label, "start");
    }
    try {
      let value;
      try {
        value = yield* awaitWithCloseSemantics(this.taskBody(label, specs, specs[index]));
      } catch (e) {
        internal(e);
        this.log(label, `exit raised ${formatException(e)}`);
        throw e;
      }
      this.log(label, `exit returned ${repr(value)}`);
      return value;
    } finally {
      if (index === 0) this.noteLeftovers(label);
    }
  }

  *taskBody(label, specs, spec) {
    const onCancel = spec.on_cancel ?? { action: "propagate" };
    const finallySteps = spec.finally ?? [];
    let failure = null;
    let value = null;
    try {
      const [returned, result] = yield* this.steps(label, specs, spec.steps, `${label}.steps`);
      value = returned ? result : null;
    } catch (e) {
      internal(e);
      failure = e;
    }
    if (failure !== null && isCancelled(failure)) {
      const exc = failure;
      try {
        value = yield* handling(exc, this.cancelHandler(label, specs, onCancel, exc));
        failure = null;
      } catch (e) {
        internal(e);
        failure = e;
      }
    }
    if (finallySteps.length) {
      this.log(label, "finally");
      const body = this.steps(label, specs, finallySteps, `${label}.finally`);
      const [returned, result] = failure !== null ? yield* handling(failure, body) : yield* body;
      if (returned) return result;
    }
    if (failure !== null) throw failure;
    return value;
  }

  *cancelHandler(label, specs, onCancel, exc) {
    if (this.config.mode === "run") this.noteLeftovers();
    this.log(label, `cancelled ${formatException(exc)}`);
    if (onCancel.action === "swallow") return onCancel.value ?? null;
    if (onCancel.action === "cleanup") {
      const [returned, value] = yield* this.steps(label, specs, onCancel.steps ?? [], `${label}.cleanup`);
      if (returned) return value;
    }
    throw exc;
  }

  *steps(label, specs, steps, path) {
    const run = label.slice(0, label.lastIndexOf("."));
    for (let position = 0; position < steps.length; position++) {
      const step = steps[position];
      switch (step.op) {
        case "yield":
          yield* sleep0();
          this.log(label, "yield");
          break;
        case "spawn": {
          const child = `${run}.t${step.task}`;
          this.log(label, `spawn ${child}`);
          this.spawn(child, specs, step.task);
          break;
        }
        case "await":
          yield* this.awaitChild(label, `${run}.t${step.task}`, step.catch ?? false);
          break;
        case "cancel":
          this.cancel(label, `${run}.t${step.task}`, step.msg ?? null);
          break;
        case "raise": {
          const exc = new PyExc(step.exc, step.arg === undefined || step.arg === null ? [] : [step.arg]);
          exc.origin = `${path}[${position}]`;
          this.log(label, `raise ${formatException(exc)}`);
          raise(exc);
          break;
        }
        case "return":
          this.log(label, `return ${repr(step.value ?? null)}`);
          return [true, step.value ?? null];
        case "set_var":
          contextNow.set(step.var, step.value ?? null);
          this.log(label, `set ${step.var}=${repr(step.value ?? null)}`);
          break;
        case "get_var":
          this.log(label, `get ${step.var} -> ${repr(contextNow.has(step.var) ? contextNow.get(step.var) : UNSET)}`);
          break;
        case "uncancel":
          if (currentTask === null) raise(new PyExc("RuntimeError", ["no running event loop"]));
          this.log(label, `uncancel -> ${currentTask.uncancel()}`);
          break;
        case "stop_loop":
          this.log(label, "stop_loop");
          if (runningLoop === null) raise(new PyExc("RuntimeError", ["no running event loop"]));
          runningLoop.stop();
          break;
        case "sigint":
        case "interrupt_main":
          // Both run the Python-level SIGINT handler at once, in this task (interrupt_main: not under SIG_IGN).
          this.log(label, step.op);
          this.deliverSigint();
          break;
        case "set_sigint_handler":
          this.log(label, "set_sigint_handler");
          process_.sigint = "custom";
          break;
        case "nested_run":
          this.nestedRun(label, step.how ?? "runner");
          break;
        case "timeout": {
          const [returned, value] = yield* this.timeout(label, specs, step, `${path}[${position}].steps`);
          if (returned) return [true, value];
          break;
        }
        case "executor":
          yield* this.executor(label, step.await ?? true);
          break;
        case "agen":
          yield* this.startAgen(label, specs, step, `${path}[${position}].finally`);
          break;
        case "group": {
          const [returned, value] = yield* this.group(label, specs, step, `${path}[${position}].steps`);
          if (returned) return [true, value];
          break;
        }
        default:
          throw new Error(`unsupported step ${step.op}`);
      }
    }
    return [false, null];
  }

  /** Make task `index` of the graph with `create` (the loop's create_task, or a TaskGroup's) and label it. */
  spawn(child, specs, index, create = null) {
    const coro = new Coroutine("_task", this.taskCoroutine(child, specs, index));
    this.coroutineLabels.set(coro, child);
    let task;
    if (create !== null) {
      task = create(coro);
    } else {
      const loop = runningLoop;
      if (loop === null) raise(new PyExc("RuntimeError", ["There is no current event loop in thread 'MainThread'."]));
      task = loop.createTask(coro);
    }
    this.register(child, task);
    return task;
  }

  /** Spawn the group's children and wait for them as `step.how` says; log the outcome. */
  *group(label, specs, step, path) {
    const run = label.slice(0, label.lastIndexOf("."));
    const children = step.tasks.map((index) => `${run}.t${index}`);
    const name = groupName(step);
    this.log(label, `${name} [${children.join(", ")}]`);
    let outcome;
    try {
      if (step.how === "taskgroup") return yield* this.taskGroup(label, specs, step, children, path);
      const loop = runningLoop;
      const tasks = children.map((child, i) => this.spawn(child, specs, step.tasks[i]));
      if (step.how === "gather") {
        const results = yield* awaitFuture(gather(loop, tasks, step.return_exceptions ?? false));
        outcome = `[${results.map((r) => (r instanceof PyExc ? formatException(r) : repr(r))).join(", ")}]`;
      } else if (step.how === "wait") {
        const done = yield* wait(loop, tasks, step.return_when ?? "all_completed");
        const finished = children.filter((_, i) => done.includes(tasks[i]));
        const unfinished = children.filter((_, i) => !done.includes(tasks[i]));
        outcome = `done [${finished.join(", ")}] pending [${unfinished.join(", ")}]`;
      } else if (step.how === "shield") {
        outcome = repr(yield* awaitFuture(shield(loop, tasks[0])));
      } else if (step.how === "wait_for") {
        outcome = repr(yield* waitFor(loop, tasks[0], step.deadline ?? "never"));
      } else {
        throw new Error(`unknown group ${step.how}`);
      }
    } catch (e) {
      internal(e);
      this.log(label, `${name} raised ${formatException(e)}`);
      if (isException(e) && step.catch) return [false, null];
      throw e;
    }
    this.log(label, `${name} -> ${outcome}`);
    return [false, null];
  }

  /** `async with TaskGroup() as group:` the children made in it and the group's steps as its body. */
  *taskGroup(label, specs, step, children, path) {
    const group = new TaskGroup();
    group.enter();
    let failure = null;
    let result;
    try {
      children.forEach((child, i) => this.spawn(child, specs, step.tasks[i], (coro) => group.createTask(coro)));
      result = yield* this.steps(label, specs, step.steps ?? [], path);
    } catch (e) {
      internal(e);
      failure = e;
    }
    if (failure !== null) {
      yield* handling(failure, group.exit(failure));
      throw failure;
    }
    yield* group.exit(null);
    return result;
  }

  *awaitChild(label, child, catchIt) {
    const task = this.tasks.get(child);
    if (task === undefined) {
      this.log(label, `await ${child} skipped: not spawned`);
      return;
    }
    let value;
    try {
      value = yield* awaitFuture(task);
    } catch (e) {
      internal(e);
      this.log(label, `await ${child} raised ${formatException(e)}`);
      if (isException(e) && catchIt) return;
      throw e;
    }
    this.log(label, `await ${child} -> ${repr(value)}`);
  }

  cancel(label, victim, msg) {
    const task = this.tasks.get(victim);
    if (task === undefined) {
      this.log(label, `cancel ${victim} skipped: not spawned`);
      return;
    }
    this.log(label, `cancel ${victim} -> ${task.cancel(msg) ? "True" : "False"}`);
  }

  /** Call the installed SIGINT handler. */
  deliverSigint() {
    const handler = process_.sigint;
    if (handler === "SIG_IGN") return;
    if (handler === "default") raise(new PyExc("KeyboardInterrupt")); // signal.default_int_handler
    if (handler === "custom") {
      this.current.log.push("sigint custom handler");
      return;
    }
    handler.runner.handleSigint(handler.mainTask);
  }

  nestedRun(label, how) {
    const coro = new Coroutine("_nested_main", (function* () {})());
    this.log(label, `nested_run ${how}`);
    let value;
    try {
      value = asyncioRun(coro, this.config.debug ?? null);
    } catch (e) {
      internal(e);
      if (!isException(e)) throw e;
      this.log(label, `nested_run ${how} raised ${formatException(e)}`);
      return;
    }
    this.log(label, `nested_run ${how} -> ${repr(this.value(value))}`);
  }

  /** `async with asyncio.timeout(...)` around the nested steps; logs only what leaves it raising. */
  *timeout(label, specs, step, path) {
    const deadline = step.deadline ?? "never";
    if (!DEADLINES.includes(deadline)) throw new Error(`unknown deadline ${deadline}`);
    const name = `timeout(${deadline})`;
    this.log(label, name);
    try {
      const timeout = new Timeout(deadline);
      timeout.enter();
      let failure = null;
      let result;
      try {
        result = yield* this.steps(label, specs, step.steps ?? [], path);
      } catch (e) {
        internal(e);
        failure = e;
      }
      if (failure !== null) {
        handlingSync(failure, () => timeout.exit(failure));
        throw failure;
      }
      timeout.exit(null);
      return result;
    } catch (e) {
      internal(e);
      this.log(label, `${name} raised ${formatException(e)}`);
      if (isException(e) && step.catch) return [false, null];
      throw e;
    }
  }

  *executor(label, wait) {
    const loop = runningLoop;
    if (loop === null) raise(new PyExc("RuntimeError", ["no running event loop"]));
    const name = `${label.split(".")[0]}.e${this.executorCount}`;
    this.executorCount += 1;
    const result = wait ? loop.createFuture() : null;
    loop.runInExecutor(() => {
      // The job hands its result to the loop (call_soon_threadsafe) before the loop thread goes on.
      if (result !== null) loop.callSoon(() => result.done() || result.setResult(name));
      return name;
    });
    this.log(label, `executor ${name} ran`);
    if (result !== null) {
      const value = yield* awaitFuture(result);
      this.log(label, `executor ${value} awaited`);
    }
  }

  *startAgen(label, specs, step, path) {
    const name = `${label.split(".")[0]}.g${this.agenCount}`;
    this.agenCount += 1;
    const agen = new AsyncGenerator(name, this.agenBody(name, specs, step.finally ?? [], path));
    yield* agen.anext();
    this.log(label, `agen ${name} started`);
  }

  *agenBody(name, specs, finallySteps, path) {
    let failure = null;
    try {
      yield new AsyncYield(1);
      yield new AsyncYield(2);
    } catch (e) {
      internal(e);
      this.log(name, `closed by ${e.type}`);
      failure = e;
    }
    this.log(name, "finally");
    const body = this.steps(name, specs, finallySteps, path);
    if (failure !== null) yield* handling(failure, body);
    else yield* body;
    if (failure !== null) throw failure;
  }
}

/** asyncio.timeout (3.11): an expired deadline cancels the task from the next loop iteration. */
class Timeout {
  constructor(deadline) {
    this.deadline = deadline;
    this.state = "created";
    this.handle = null;
    this.task = null;
    this.cancellingAtEntry = 0;
  }

  enter() {
    const task = currentTask;
    if (task === null) raise(new PyExc("RuntimeError", ["no running event loop"]));
    this.state = "entered";
    this.task = task;
    this.cancellingAtEntry = task.cancelling();
    const onTimeout = () => {
      this.task.cancel();
      this.state = "expiring";
      this.handle = null;
    };
    // An expired deadline is due at once (call_soon); the other never comes (a timer that never fires).
    this.handle = this.deadline === "expired" ? task.loop.callSoon(onTimeout) : task.loop.callLater(onTimeout);
  }

  exit(exc) {
    if (this.handle !== null) {
      this.handle.cancel();
      this.handle = null;
    }
    if (this.state === "expiring") {
      this.state = "expired";
      if (this.task.uncancel() <= this.cancellingAtEntry && isCancelled(exc)) {
        const timeoutError = new PyExc("TimeoutError");
        timeoutError.cause = exc;
        raise(timeoutError);
      }
    } else if (this.state === "entered") {
      this.state = "exited";
    }
  }
}

/** Close a coroutine during garbage collection: whatever it raises is unraisable, and if it awaits, it stays so. */
function closeQuietly(close) {
  try {
    close();
  } catch (e) {
    internal(e);
  }
}

/** How a group step names itself in the log. */
function groupName(step) {
  if (step.how === "gather") return step.return_exceptions ? "gather(return_exceptions)" : "gather";
  if (step.how === "wait") return `wait(${step.return_when ?? "all_completed"})`;
  if (step.how === "wait_for") return `wait_for(${step.deadline ?? "never"})`;
  return step.how;
}

function taskState(task) {
  if (!task.done()) return task.cancelling() ? "pending (cancel requested)" : "pending";
  if (task.cancelled()) return "cancelled";
  if (task.exc !== null) return `raised ${formatException(task.exc)}`;
  return `returned ${repr(task.value)}`;
}

function sigintState() {
  const handler = process_.sigint;
  return typeof handler === "string" ? handler : "other";
}

/** Sort each run of consecutive async-generator lines by generator label (the order among them is open). */
function agensUnordered(log) {
  const out = [];
  let run = [];
  for (const line of [...log, ""]) {
    if (/^r\d+\.g\d+ /.test(line)) {
      run.push(line);
      continue;
    }
    run.sort((a, b) => comparePy(a.split(" ", 1)[0], b.split(" ", 1)[0]));
    out.push(...run);
    run = [];
    if (line) out.push(line);
  }
  return out;
}

// ------------------------------------------------------------- the protocol

let session = null;

/** Run one scenario (a parsed JSON document) in a fresh world; return its observation. */
export function execute(scenario) {
  if (scenario.schema !== 1) throw new Error(`unsupported schema ${scenario.schema}`);
  if (scenario.runner.mode !== "run" || scenario.calls.length !== 1) throw new Error("only mode 'run' is implemented");
  allTasks = [];
  failedFutures = [];
  coroutines = [];
  abandoned = [];
  currentTask = null;
  throwPath = false;
  runningLoop = null;
  loopHandled.length = 0;
  contextNow = new Map();
  session = new Session(scenario);
  try {
    return session.execute();
  } finally {
    session = null;
  }
}

/** JSON with every non-ASCII character escaped, as the driver's own lines are. */
function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

function reply(message) {
  process.stdout.write(asciiJson(message) + "\n");
}

function answer(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (e) {
    reply({ error: `malformed request: ${e.message}`, traceback: "" });
    return;
  }
  const id = request.id;
  try {
    if (request.orders !== undefined) throw new Error("this worker is never a reference: no order search");
    const scenario = typeof request.scenario === "string" ? JSON.parse(request.scenario) : request.scenario;
    reply({ id, observation: execute(scenario) });
  } catch (e) {
    reply({ id, error: `${e?.name ?? "Error"}: ${e?.message ?? String(e)}`, traceback: String(e?.stack ?? "") });
  }
}

/** Serve requests on stdin until it ends. `overrides` sets the deliberate mistakes of a broken variant. */
export function serve(overrides = {}, spec = "node-runner") {
  Object.assign(options, overrides);
  reply({
    ready: { spec, kind: "run", version: "0.1" },
    protocol: 1,
    implements: IMPLEMENTS,
    node: process.version,
    pid: process.pid,
  });
  const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
  input.on("line", (line) => {
    if (line.trim()) answer(line);
  });
  input.on("close", () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) serve();
