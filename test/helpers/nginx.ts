/**
 * A real nginx (the Debian package) serving a directory on 127.0.0.1, started as a child
 * process with its whole prefix (config, pid, logs, temp dirs) in a temporary directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The nginx binary the tests use. */
export const NGINX = '/usr/sbin/nginx';

/** True when nginx is installed. */
export const haveNginx = existsSync(NGINX);

/** A running nginx. */
export interface NginxServer {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  url: string;
  port: number;
  /** The served directory. */
  root: string;
  /** Requests served so far as `STATUS /path` lines (empty unless `accessLog`). */
  requests(): string[];
  /** Stops nginx and removes its prefix directory. */
  stop(): Promise<void>;
}

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Directory served at `/`. */
  root: string;
  /** More `location` blocks, e.g. `location /broken/ { return 500; }`. */
  locations?: string;
  /** Log every request (see {@link NginxServer.requests}). Default false. */
  accessLog?: boolean;
}

/** A port that was free a moment ago: bind port 0, read it, close (nginx cannot listen on :0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function config(prefix: string, port: number, opts: NginxOptions): string {
  const asRoot = process.getuid?.() === 0;
  return `
daemon off;
master_process on;
worker_processes 1;
${asRoot ? 'user root root;' : ''}
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 512; }
http {
  log_format paths '$status $request_uri';
  ${opts.accessLog ? `access_log ${prefix}/access.log paths;` : 'access_log off;'}
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${opts.root};
    ${opts.locations ?? ''}
  }
}
`;
}

async function attempt(prefix: string, opts: NginxOptions): Promise<{ child: ChildProcess; port: number } | { conflict: true } | { error: string }> {
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, config(prefix, port, opts));
  const child = spawn(NGINX, ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) {
      const log = existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : '';
      if (/Address already in use/.test(stderr + log)) return { conflict: true };
      return { error: `nginx exited at start: ${(stderr + log).trim()}` };
    }
    if (await canConnect(port)) return { child, port };
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  return { error: 'nginx did not start listening within 10 s' };
}

/** Starts nginx serving `opts.root` on a free 127.0.0.1 port (retrying on a port conflict). */
export async function startNginx(opts: NginxOptions): Promise<NginxServer> {
  const prefix = mkdtempSync(join(tmpdir(), 'ostree-sysext-nginx-'));
  mkdirSync(join(prefix, 'tmp'));
  for (let i = 0; i < 5; i++) {
    const r = await attempt(prefix, opts);
    if ('conflict' in r) continue;
    if ('error' in r) {
      rmSync(prefix, { recursive: true, force: true });
      throw new Error(r.error);
    }
    const { child, port } = r;
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      root: opts.root,
      requests() {
        const log = join(prefix, 'access.log');
        return existsSync(log)
          ? readFileSync(log, 'utf8')
              .split('\n')
              .filter((l) => l !== '')
          : [];
      },
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const gone = new Promise((res) => child.once('exit', res));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await gone;
          clearTimeout(timer);
        }
        rmSync(prefix, { recursive: true, force: true });
      },
    };
  }
  rmSync(prefix, { recursive: true, force: true });
  throw new Error('nginx: no free port after 5 attempts');
}
