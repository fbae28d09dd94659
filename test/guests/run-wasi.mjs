// Reference runner for the guest programs (Node >= 20, `node:wasi`, WASI preview1).
// Used to produce/verify the *.expected files; mvvm does not need it.
//   node run-wasi.mjs [--dir HOST::GUEST]... [--env K=V]... prog.wasm [args...]
// Exit status = the guest's exit code. stdout/stderr are the guest's own.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';
import process from 'node:process';

const argv = process.argv.slice(2);
const preopens = {}; const env = {};
while (argv.length && argv[0].startsWith('--')) {
  const opt = argv.shift(); const val = argv.shift();
  if (opt === '--dir') { const [host, guest] = val.split('::'); preopens[guest ?? host] = host; }
  else if (opt === '--env') { const i = val.indexOf('='); env[val.slice(0, i)] = val.slice(i + 1); }
  else { console.error(`unknown option ${opt}`); process.exit(2); }
}
const file = argv[0];
const wasi = new WASI({ version: 'preview1', args: argv, env, preopens, returnOnExit: true });
const module = await WebAssembly.compile(readFileSync(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
const code = wasi.start(instance);
process.exitCode = code ?? 0;
