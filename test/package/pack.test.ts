/**
 * The package as a user gets it: `npm pack`, install the tarball into a
 * scratch app in a temp dir (its install script builds the addon with
 * node-gyp; the Node headers are local, so this works offline), then run the
 * README's examples there as CommonJS and as an ES module, maio/net through
 * require and import, the documented paths (fanOut, forward, forwardBoth,
 * Proxy) through both entries, and the types through tsc under the module
 * resolutions node, node16 and bundler. Everything runs
 * from node_modules/maio, so a file missing from package.json "files", an
 * export the docs name but index.ts lacks, or a broken ESM entry fails here.
 */
import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..'); // the repo, above dist/
const npmMissing = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status !== 0;

let tmp: string | undefined;
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string, timeout = 60_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}${r.error ? `, ${r.error}` : ''}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** The README's ```js blocks, in order. */
function readmeExamples(): string[] {
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...md.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('npm pack, install the tarball into a scratch app, run the README examples, maio/net and the documented exports from it', { skip: npmMissing ? 'npm is not on PATH' : false, timeout: 180_000 }, (t) => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'maio-pack-'));
  // --ignore-scripts: "prepare" would rebuild dist/ under the running suite; this test runs from the
  // dist/ that `npm test` (pretest) has just built, and the tarball packs that same dist/.
  const packed = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], ROOT).stdout.trim().split('\n').pop()!;
  const tgz = path.join(tmp, packed);
  assert.ok(fs.existsSync(tgz), `npm pack wrote ${tgz}`);

  const app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }));
  // maio has no dependencies, so --offline needs no registry; its install script (node-gyp rebuild)
  // builds the addon from the packed native/ sources with the local Node headers.
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', tgz], app, 150_000);
  const pkg = path.join(app, 'node_modules', 'maio');
  assert.ok(fs.existsSync(path.join(pkg, 'build', 'Release', 'maio.node')), "the tarball's install script built build/Release/maio.node");
  assert.ok(!fs.existsSync(path.join(pkg, 'test')) && !fs.existsSync(path.join(pkg, 'dist', 'test')), 'tests are not packed');

  // The README's examples, as they are written (the echo server and client, then the buffer API).
  const blocks = readmeExamples();
  const echo = blocks.find((b) => b.includes('maio.createServer('));
  const buffers = blocks.find((b) => b.includes('pool.alloc(1500)'));
  assert.ok(echo && buffers, 'README has the echo and buffer examples');
  const requireLine = "const maio = require('maio'); // or: import * as maio from 'maio'";
  assert.ok(echo.includes(requireLine), 'the echo example starts by requiring maio');
  const example = `${echo}\n${buffers}`;
  fs.writeFileSync(path.join(app, 'readme.cjs'), example);
  fs.writeFileSync(path.join(app, 'readme.mjs'), example.replace(requireLine, "import * as maio from 'maio';"));
  for (const file of ['readme.cjs', 'readme.mjs']) {
    const out = run(process.execPath, [file], app, 30_000).stdout;
    assert.match(out, /^hello, maio$/m, `${file}: the echo came back`);
    assert.match(out, /^11 bytes read; maio backend: (io_uring|epoll) /m, `${file}: stats and backend at 'close'`);
    assert.match(out, /inUse/, `${file}: pool.stats() printed`);
    t.diagnostic(`${file}: ${out.trim().split('\n').length} lines`);
  }

  // maio/net, both ways: an echo through node:net's API on maio sockets.
  const netEcho = (net: string) => `
    const server = ${net}.createServer((s) => s.pipe(s));
    server.listen(0, '127.0.0.1', () => {
      const c = ${net}.connect(server.address().port, '127.0.0.1', () => c.end('via maio/net'));
      let got = '';
      c.setEncoding('utf8');
      c.on('data', (d) => (got += d));
      c.on('close', () => { console.log(got); server.close(); });
    });`;
  fs.writeFileSync(path.join(app, 'net.cjs'), `const net = require('maio/net');\n${netEcho('net')}`);
  fs.writeFileSync(path.join(app, 'net.mjs'), `import net from 'maio/net';\nimport { createServer, connect } from 'maio/net';\nif (net.createServer !== createServer || net.connect !== connect) throw new Error('named and default exports differ');\n${netEcho('net')}`);
  for (const file of ['net.cjs', 'net.mjs']) {
    assert.equal(run(process.execPath, [file], app, 30_000).stdout.trim(), 'via maio/net', file);
  }

  // What the docs name is exported, from both entries, and deep imports stay refused.
  const names = ['fanOut', 'forward', 'forwardBoth', 'Proxy', 'createServer', 'connect', 'createPool', 'backend', 'stats'];
  fs.writeFileSync(
    path.join(app, 'exports.cjs'),
    `const m = require('maio');
     const missing = ${JSON.stringify(names)}.filter((n) => typeof m[n] !== 'function');
     if (missing.length) throw new Error('not functions in require("maio"): ' + missing);
     let deep = null;
     try { require('maio/dist/src/paths/fan-out'); } catch (e) { deep = e.code; }
     console.log(deep);`,
  );
  fs.writeFileSync(
    path.join(app, 'exports.mjs'),
    `import * as m from 'maio';
     import maio, { fanOut, forward, forwardBoth, Proxy } from 'maio';
     const missing = ${JSON.stringify(names)}.filter((n) => typeof m[n] !== 'function');
     if (missing.length) throw new Error('not functions in import "maio": ' + missing);
     if (fanOut !== maio.fanOut || forward !== maio.forward || forwardBoth !== maio.forwardBoth || Proxy !== maio.Proxy) throw new Error('ESM and CJS differ');
     console.log('ok');`,
  );
  assert.equal(run(process.execPath, ['exports.cjs'], app).stdout.trim(), 'ERR_PACKAGE_PATH_NOT_EXPORTED');
  assert.equal(run(process.execPath, ['exports.mjs'], app).stdout.trim(), 'ok');

  // The types: a TypeScript user of the installed package, under each module resolution a project may use.
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) {
    t.diagnostic('typescript is not installed in the repo: types not checked');
    return;
  }
  const use = `import { fanOut, forward, forwardBoth, Proxy, createServer, type FanOutResult, type ForwarderStats, type ProxyOptions, type IoBuffer, type Socket } from 'maio';
     import * as net from 'maio/net';
     const opts: ProxyOptions = { listen: { host: '127.0.0.1', port: 0 }, upstreams: [{ host: '127.0.0.1', port: 1 }] };
     const p: Proxy = new Proxy(opts);
     export function relay(a: Socket, b: Socket, buf: IoBuffer, all: Socket[]): [FanOutResult, ForwarderStats, number] {
       const both = forwardBoth(a, b, { mode: 'buffers' });
       void both.finished;
       return [fanOut(buf, all), forward(a, b).stats(), net.createServer().listenerCount('x')];
     }
     void p; void createServer;`;
  fs.writeFileSync(path.join(app, 'use.ts'), use);
  fs.writeFileSync(path.join(app, 'use-esm.mts'), use);
  // node (node10) reads "types" and "typesVersions"; node16 and bundler read "exports".
  const resolutions = [
    { moduleResolution: 'node', module: 'commonjs', files: ['use.ts'] },
    { moduleResolution: 'node16', module: 'node16', files: ['use.ts', 'use-esm.mts'] },
    { moduleResolution: 'bundler', module: 'esnext', files: ['use.ts'] },
  ];
  for (const { moduleResolution, module, files } of resolutions) {
    const config = `tsconfig.${moduleResolution}.json`;
    fs.writeFileSync(
      path.join(app, config),
      JSON.stringify({
        compilerOptions: { module, moduleResolution, target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')] },
        files,
      }),
    );
    run(process.execPath, [tsc, '-p', config], app, 60_000);
    t.diagnostic(`types check under moduleResolution ${moduleResolution} (${files.join(', ')})`);
  }
});
