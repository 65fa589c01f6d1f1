"use strict";
/*
 * The sandbox of the extension's fuzz targets (fuzz_targets.js): a child Node process that runs one input at a
 * time under the limits of the server's sandbox (tests/fuzz_support.py): TIMEOUT_MS per input (then the child
 * is killed and replaced: a hang), a heap of MEMORY_BYTES (--max-old-space-size: past it V8 ends the process),
 * at most MEMORY_BYTES of resident memory over the child's life, and at most ALLOCATION_BYTES of ArrayBuffers
 * allocated by one input (what a parser would reserve for a lying length, which the heap limit does not count).
 *
 *   const box = new Sandbox(); const outcome = await box.check("header", bytes); box.close();
 *
 * An outcome is { label, finding, ms, rssMb }: the parser's label, or "finding", "hang", "memory", "crashed",
 * with what went wrong (null when the parser kept its contract).
 */
const { fork } = require("node:child_process");

const TIMEOUT_MS = 5000;
const MEMORY_BYTES = 1 << 30;
const ALLOCATION_BYTES = 256 << 20;
const STARTUP_MS = 60000; // a new child's imports, on a loaded 2-core machine
const mib = (bytes) => Math.round(bytes / 2 ** 20);

// Targets that misbehave on purpose, to show that the limits hold (fuzz.test.js, fuzz_run.js --target hang).
const PROBES = {
  hang: () => {
    for (;;);
  },
  allocate: () => String(new Uint8Array(2 * MEMORY_BYTES).length),
  abort: () => process.abort(),
};

class Sandbox {
  constructor({ timeoutMs = TIMEOUT_MS } = {}) {
    this.timeoutMs = timeoutMs;
    this.child = null;
    this.stderr = "";
    this.started = 0; // child processes, the first included
  }

  /** The child, started (and waited for: its imports are not an input's time) when there is none. */
  async start() {
    if (this.child) return this.child;
    const child = fork(__filename, ["--serve"], { execArgv: [`--max-old-space-size=${mib(MEMORY_BYTES)}`], serialization: "advanced", stdio: ["ignore", "ignore", "pipe", "ipc"] });
    this.stderr = "";
    child.stderr.on("data", (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    await this.answer(child, STARTUP_MS).then((message) => {
      if (!message || message.ready !== true) throw new Error(`the fuzz sandbox did not start: ${this.stderr}`);
    });
    this.child = child;
    this.started += 1;
    return child;
  }

  /** The child's next message, null when it ended first, or "timeout". */
  answer(child, ms) {
    return new Promise((resolve) => {
      const done = (value) => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
        resolve(value);
      };
      const onMessage = (message) => done(message);
      const onExit = (code, signal) => done({ exited: true, code, signal });
      const timer = setTimeout(() => done("timeout"), ms);
      child.on("message", onMessage);
      child.on("exit", onExit);
    });
  }

  async check(name, data) {
    const child = await this.start();
    const started = Date.now();
    child.send({ name, data });
    const message = await this.answer(child, this.timeoutMs);
    if (message === "timeout") {
      this.close();
      return { label: "hang", finding: `${name}: no answer within ${this.timeoutMs / 1000} s`, ms: Date.now() - started, rssMb: null };
    }
    if (message.exited) {
      await new Promise((resolve) => setImmediate(resolve)); // the last of its stderr
      const stderr = this.stderr;
      this.child = null;
      const label = /heap out of memory|allocation failed/i.test(stderr) ? "memory" : "crashed";
      return { label, finding: `${name}: the child process ended (status ${message.code}, signal ${message.signal})\n${stderr.slice(-1500)}`, ms: Date.now() - started, rssMb: null };
    }
    if (message.label === "memory") this.close(); // a process past its memory limit is not trusted with the next input
    return message;
  }

  close() {
    if (this.child) {
      this.child.kill("SIGKILL");
      this.child = null;
    }
  }
}

/** The child: one answer per input, until its parent goes. */
function serve() {
  const { TARGETS } = require("./fuzz_targets.js");
  const checks = Object.fromEntries(Object.entries(TARGETS).map(([name, t]) => [name, t.check]).concat(Object.entries(PROBES)));
  process.on("message", async ({ name, data }) => {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    let label;
    let finding = null;
    try {
      label = await checks[name](bytes);
    } catch (err) {
      label = "finding";
      finding = `${name}: ${err && err.stack ? err.stack.split("\n").slice(0, 8).join("\n") : String(err)}`;
    }
    const ms = performance.now() - started;
    const allocated = process.memoryUsage().arrayBuffers - before;
    const rss = process.resourceUsage().maxRSS * 1024;
    if (allocated > ALLOCATION_BYTES || rss > MEMORY_BYTES) {
      finding = `${name}: ${mib(allocated)} MiB of ArrayBuffers allocated for an input of ${bytes.length} bytes (at most ${mib(ALLOCATION_BYTES)} MiB), peak RSS ${mib(rss)} MiB (at most ${mib(MEMORY_BYTES)} MiB)`;
      label = "memory";
    }
    process.send({ label, finding, ms, rssMb: mib(rss) });
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ ready: true });
}

if (require.main === module && process.argv[2] === "--serve") serve();

module.exports = { Sandbox, PROBES, TIMEOUT_MS, MEMORY_BYTES, ALLOCATION_BYTES };
