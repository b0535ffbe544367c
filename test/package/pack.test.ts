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
 * A second app installs the tarball with its prebuilt binary on a PATH
 * without a C compiler, as a machine without build tools would.
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

function run(cmd: string, args: string[], cwd: string, timeout = 60_000, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false', ...env } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}${r.error ? `, ${r.error}` : ''}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** The README's ```js blocks, in order. */
function readmeExamples(): string[] {
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...md.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

let packedTgz: string | undefined;

/** `npm pack` of the repository, once. */
function pack(): string {
  if (packedTgz) return packedTgz;
  tmp ??= fs.mkdtempSync(path.join(os.tmpdir(), 'maio-pack-'));
  // --ignore-scripts: "prepare" would rebuild dist/ under the running suite and "prepack" build/;
  // this test runs from the dist/ that `npm test` (pretest) has just built, and the tarball packs it.
  const packed = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], ROOT).stdout.trim().split('\n').pop()!;
  packedTgz = path.join(tmp, packed);
  assert.ok(fs.existsSync(packedTgz), `npm pack wrote ${packedTgz}`);
  return packedTgz;
}

function scratchApp(name: string): string {
  const app = path.join(tmp!, name);
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: `scratch-${name}`, version: '1.0.0', private: true }));
  return app;
}

test('npm pack, install the tarball into a scratch app, run the README examples, maio/net and the documented exports from it', { skip: npmMissing ? 'npm is not on PATH' : false, timeout: 180_000 }, (t) => {
  const tgz = pack();
  const app = scratchApp('app');
  // --offline: maio's one dependency (node-gyp-build) is in npm's cache since the repository's install.
  // --build-from-source: the install script (node-gyp-build) builds the addon from the packed native/
  // sources with the local Node headers even when the tarball carries a prebuilt one.
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', tgz], app, 150_000, { npm_config_build_from_source: 'true' });
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

  // The README's node:http example on maio/net, as written and as an ES module.
  const httpExample = blocks.find((b) => b.includes("require('node:http')"));
  assert.ok(httpExample, 'README has the node:http on maio/net example');
  fs.writeFileSync(path.join(app, 'http.cjs'), httpExample);
  fs.writeFileSync(
    path.join(app, 'http.mjs'),
    httpExample.replace("const http = require('node:http');", "import http from 'node:http';").replace("const net = require('maio/net');", "import net from 'maio/net';"),
  );
  for (const file of ['http.cjs', 'http.mjs']) {
    assert.equal(run(process.execPath, [file], app, 30_000).stdout.trim(), 'hello from maio/net', `${file}: the response came back and the process exited`);
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

  // maio/dgram: an echo through node:dgram's API on maio's UdpSocket, as CommonJS and as an ES module.
  const dgramEcho = (dgram: string) => `
    const e = ${dgram}.createSocket('udp4', (m, r) => e.send(m, r.port, r.address));
    e.bind(0, '127.0.0.1', () => {
      const c = ${dgram}.createSocket('udp4', (m) => { console.log(String(m)); c.close(); e.close(); });
      c.send('via maio/dgram', e.address().port, '127.0.0.1');
    });`;
  fs.writeFileSync(path.join(app, 'dgram.cjs'), `const dgram = require('maio/dgram');\n${dgramEcho('dgram')}`);
  fs.writeFileSync(path.join(app, 'dgram.mjs'), `import dgram from 'maio/dgram';\nimport { createSocket } from 'maio/dgram';\nif (dgram.createSocket !== createSocket) throw new Error('named and default exports differ');\n${dgramEcho('dgram')}`);
  for (const file of ['dgram.cjs', 'dgram.mjs']) {
    assert.equal(run(process.execPath, [file], app, 30_000).stdout.trim(), 'via maio/dgram', file);
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
     void p; void createServer;
     // Typed events: each line under @ts-expect-error must fail to compile (else tsc reports it).
     export function events(s: Socket): void {
       s.on('data', (buf) => void buf.length);
       // @ts-expect-error no such event
       s.on('dat', () => {});
       // @ts-expect-error an IoBuffer is not a string
       s.on('data', (buf) => { const t: string = buf; void t; });
     }`;
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

test('without a C compiler on PATH, the package installs and loads its prebuilt binary (prebuildify + node-gyp-build)', { skip: npmMissing ? 'npm is not on PATH' : false, timeout: 180_000 }, (t) => {
  const prebuildify = path.join(ROOT, 'node_modules', '.bin', 'prebuildify');
  if (!fs.existsSync(prebuildify)) return t.skip('prebuildify is not installed in the repo (a devDependency)');
  const npmPrefix = spawnSync('npm', ['prefix', '-g'], { encoding: 'utf8' }).stdout.trim();
  const npmBin = [path.join(npmPrefix, 'lib', 'node_modules', 'npm', 'bin'), path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin')].find((d) => fs.existsSync(path.join(d, 'npm-cli.js')));
  if (npmBin === undefined) return t.skip("npm's npm-cli.js not found next to node or in npm's global prefix");
  const tgz = pack();
  // What `npm pack` runs as "prepack" (npm run build:prebuilt), in a copy: the suite's build/ stays as it is.
  const src = path.join(tmp!, 'prebuild-src');
  fs.mkdirSync(src);
  for (const f of ['package.json', 'binding.gyp', 'native']) fs.cpSync(path.join(ROOT, f), path.join(src, f), { recursive: true });
  // node-gyp as `npm run` gives it to scripts: npm's own copy on PATH, npm's nodedir (where the
  // machine keeps Node's headers; nothing is downloaded).
  const nodedir = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).stdout.trim();
  run(prebuildify, ['--napi', '--strip'], src, 150_000, {
    PATH: `${path.join(npmBin, 'node-gyp-bin')}:${process.env.PATH}`,
    ...(nodedir && nodedir !== 'undefined' && nodedir !== 'null' ? { npm_config_nodedir: nodedir } : {}),
  });
  const built = path.join(src, 'prebuilds', `${process.platform}-${process.arch}`, 'maio.node');
  assert.ok(fs.existsSync(built), `prebuildify wrote ${built}`);
  // The tarball as `npm pack` makes it: the packed files plus prebuilds/.
  const unpacked = path.join(tmp!, 'unpacked');
  fs.mkdirSync(unpacked);
  run('tar', ['xzf', tgz, '-C', unpacked], tmp!);
  fs.cpSync(path.join(src, 'prebuilds'), path.join(unpacked, 'package', 'prebuilds'), { recursive: true });
  const withPrebuilt = path.join(tmp!, 'maio-prebuilt.tgz');
  run('tar', ['czf', withPrebuilt, '-C', unpacked, 'package'], tmp!);

  // A PATH with node and sh (npm runs install scripts with it) and nothing else: no cc, gcc, make or python.
  const bin = path.join(tmp!, 'bin-node-only');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  const bare = { PATH: bin };
  for (const tool of ['cc', 'gcc', 'make']) {
    assert.notEqual(spawnSync('sh', ['-c', `command -v ${tool}`], { env: bare }).status, 0, `${tool} is not on the bare PATH`);
  }
  const app = scratchApp('app-no-compiler');
  run(process.execPath, [path.join(npmBin, 'npm-cli.js'), 'install', '--no-audit', '--no-fund', '--offline', withPrebuilt], app, 150_000, bare);
  const pkg = path.join(app, 'node_modules', 'maio');
  assert.ok(!fs.existsSync(path.join(pkg, 'build')), 'nothing was built: node-gyp-build found the prebuilt binary');
  const out = run(
    process.execPath,
    ['-e', "const m = require('maio'); const s = m.createServer((c) => c.pipe(c)); console.log(m.backend().mode, Object.keys(require.cache).find((f) => f.endsWith('.node'))); s.close();"],
    app,
    30_000,
    bare,
  ).stdout.trim();
  assert.match(out, /^(io_uring|epoll) .*\/node_modules\/maio\/prebuilds\/linux-[a-z0-9]+\/maio\.node$/, `loaded the prebuilt addon: ${out}`);
  t.diagnostic(out);
});
