#!/usr/bin/env node
// Prisma's schema engine, offline: the Prisma CLI starts the program named by
// PRISMA_SCHEMA_ENGINE_BINARY instead of its native `schema-engine` (which it
// would download) and talks JSON-RPC 2.0 to it over stdio, one JSON object a
// line. This program answers as that binary does, with the engine's
// WebAssembly build the `prisma` package ships (build/schema_engine_bg.wasm,
// the CLI's own engine version) loaded through the wasm-bindgen glue of
// @prisma/schema-engine-wasm (same imports and exports), and the pg driver
// adapter as its connection, as Prisma 6's WASM path did.
//
// Arguments as the CLI passes them: --datamodels <file> (repeated),
// --datasource <json {url}>; DATABASE_URL when no datasource names a URL.
// `--version` prints the engine's version.
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const args = process.argv.slice(2);
const datamodelFiles = [];
let datasource = {};
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--datamodels") datamodelFiles.push(args[++i]);
  else if (args[i] === "--datasource") datasource = JSON.parse(args[++i]);
  else if (args[i] === "--version" || args[i] === "-V") {
    process.stdout.write(`schema-engine-cli ${engineVersion()}\n`);
    process.exit(0);
  }
}

function engineVersion() {
  return require(path.join(here, "node_modules/@prisma/engines-version/package.json")).prisma.enginesVersion;
}

// A panic inside the engine reports its message here (the glue calls
// global.PRISMA_WASM_PANIC_REGISTRY.set_message), then traps: the message is
// written as the binary's panic would be, and the program exits with 101.
let panicMessage = "";
globalThis.PRISMA_WASM_PANIC_REGISTRY = {
  set_message(m) {
    panicMessage = String(m);
    process.stderr.write(JSON.stringify({ level: "ERROR", fields: { message: panicMessage, is_panic: true } }) + "\n");
  },
};

// The glue of @prisma/schema-engine-wasm, bound to the prisma package's wasm.
async function loadEngine() {
  const glue = await import(path.join(here, "node_modules/@prisma/schema-engine-wasm/schema_engine_bg.js"));
  const bytes = fs.readFileSync(path.join(here, "node_modules/prisma/build/schema_engine_bg.wasm"));
  const imports = { "./schema_engine_bg.js": glue };
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  glue.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start?.();
  return glue;
}

// @prisma/adapter-pg 7.10.1 refuses PostgreSQL's internal "char" type (oid
// 18), which the engine's introspection queries return (pg_class.relkind,
// pg_constraint.contype…): such columns are handed over as the driver
// adapter's Character type (the one-character text the engine reads them
// as), which the pg adapter has no mapping for.
const CHAR_OID = 18, TEXT_OID = 25;
async function pgAdapterFactory(url) {
  const { PrismaPg } = require(path.join(here, "node_modules/@prisma/adapter-pg"));
  const { ColumnTypeEnum } = require(path.join(here, "node_modules/@prisma/driver-adapter-utils"));
  const factory = new PrismaPg({ connectionString: url });
  const probe = await factory.connect();
  const queryable = Object.getPrototypeOf(Object.getPrototypeOf(probe));
  if (!queryable.__charAsCharacter) {
    const performIO = queryable.performIO;
    const queryRaw = queryable.queryRaw;
    const charColumns = new WeakMap();
    queryable.performIO = async function (query) {
      const res = await performIO.call(this, query);
      const chars = [];
      res.fields.forEach((f, i) => {
        if (f.dataTypeID === CHAR_OID) {
          f.dataTypeID = TEXT_OID;
          chars.push(i);
        }
      });
      if (chars.length) charColumns.set(query, chars);
      return res;
    };
    queryable.queryRaw = async function (query) {
      const rs = await queryRaw.call(this, query);
      for (const i of charColumns.get(query) ?? []) rs.columnTypes[i] = ColumnTypeEnum.Character;
      return rs;
    };
    queryable.__charAsCharacter = true;
  }
  await probe.dispose();
  return factory;
}

const url = datasource.url || process.env.DATABASE_URL;
if (!url) {
  process.stderr.write(JSON.stringify({ level: "ERROR", fields: { message: "no database URL (--datasource or DATABASE_URL)" } }) + "\n");
  process.exit(1);
}

// `cli <command>`: the CLI's one-shot commands (it reads only the exit code
// and, on failure, an ERROR line on stderr).
const cli = args.indexOf("cli");
if (cli >= 0) process.exit(await oneShot(args[cli + 1], url));

async function oneShot(command, url) {
  const pg = require(path.join(here, "node_modules/pg"));
  const fail = (e) => {
    process.stderr.write(JSON.stringify({ level: "ERROR", target: "schema_engine::logger", fields: { message: String(e.message ?? e), error_code: e.code === "3D000" ? "P1003" : "P1001" } }) + "\n");
    return 1;
  };
  try {
    if (command === "can-connect-to-database") {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.end();
      return 0;
    }
    if (command === "create-database") {
      const u = new URL(url);
      const name = decodeURIComponent(u.pathname.slice(1));
      u.pathname = "/postgres";
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      await c.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
      await c.end();
      return 0;
    }
    return fail(new Error(`unsupported command ${command}`));
  } catch (e) {
    return fail(e);
  }
}

const glue = await loadEngine();
const { bindMigrationAwareSqlAdapterFactory } = require(path.join(here, "node_modules/@prisma/driver-adapter-utils"));
const datamodels = datamodelFiles.map((f) => [f, fs.readFileSync(f, "utf8")]);
const log = (msg) => process.stderr.write(JSON.stringify({ level: "INFO", fields: { message: String(msg) } }) + "\n");
const engine = await glue.SchemaEngine.new(
  { datamodels: datamodels.length ? datamodels : undefined },
  log,
  bindMigrationAwareSqlAdapterFactory(await pgAdapterFactory(url)),
);

// The binary's method names that differ from the wasm engine's.
const methods = { getDatabaseVersion: "version" };

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let pending = Promise.resolve();
let printId = 1 << 30;
rl.on("line", (line) => {
  if (!line.trim()) return;
  pending = pending.then(() => handle(line));
});
rl.on("close", () => pending.then(() => process.exit(0)));

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return;
  }
  if (req.method === undefined) return; // the CLI's answer to a print request
  const name = methods[req.method] ?? req.method;
  if (process.env.PRISMA_SHIM_DEBUG) process.stderr.write(`shim <- ${line}\n`);
  try {
    if (typeof engine[name] !== "function") throw Object.assign(new Error(`unknown method ${req.method}`), { code: -32601 });
    let result = await engine[name](req.params ?? {});
    if (name === "diff" && typeof result?.stdout === "string") {
      // The binary prints a diff through the CLI (a "print" request), and
      // answers without stdout.
      if (result.stdout !== "") reply({ jsonrpc: "2.0", id: printId++, method: "print", params: { content: result.stdout.replace(/\n$/, "") } });
      result = { ...result, stdout: null };
    }
    reply({ jsonrpc: "2.0", id: req.id, result: result === undefined ? null : result });
  } catch (e) {
    const err = typeof e === "object" && e !== null ? e : { message: String(e) };
    const message = err.message ?? JSON.stringify(err);
    reply({
      jsonrpc: "2.0",
      id: req.id,
      error: {
        code: err.code ?? 4466,
        message: "An error happened. Check the data field for details.",
        data: { is_panic: false, message, error_code: err.error_code ?? err.errorCode, meta: err.meta },
      },
    });
  }
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}
