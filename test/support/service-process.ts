import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The compiled service (`node dist/src/main.js`, built by the pretest step) as a child process,
 * so that tests can send it real signals: SIGTERM for the graceful shutdown, SIGKILL for a crash.
 */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly baseUrl: string;
  /** stdout and stderr so far (JSON log lines). */
  output(): string;
  /** Resolves when a line matching `pattern` has been logged; rejects if the process exits first. */
  waitForOutput(pattern: RegExp, maxWaitMs?: number): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the service with exactly `env` on top of the test environment (no DATABASE_URL unless
 * given) and waits until GET /health answers 200. Rate limiting is off: the tests send bursts.
 */
export async function startService(env: Record<string, string>, maxStartMs = 150_000): Promise<ServiceProcess> {
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    LOG_LEVEL: 'info',
    THROTTLE_LIMIT: '0',
    ...env,
    // The system picks the port when the service binds it, and the service logs it: a port picked
    // here and bound later could be taken in between by another test's process (which then answered
    // this one's health check, and this one had exited).
    PORT: '0',
    HOST: '127.0.0.1',
  };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  const child = spawn(process.execPath, ['dist/src/main.js'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));
  const waitForOutput = async (pattern: RegExp, maxWaitMs = 60_000): Promise<void> => {
    for (let waited = 0; waited <= maxWaitMs; waited += 50) {
      if (pattern.test(output)) return;
      if (hasExited) break;
      await sleep(50);
    }
    if (pattern.test(output)) return;
    throw new Error(`no log line matching ${pattern}${hasExited ? ' (process exited)' : ''}:\n${output}`);
  };

  let port = 0;
  for (let waited = 0; port === 0; waited += 200) {
    if (hasExited) throw new Error(`service exited during start-up:\n${output}`);
    if (waited > maxStartMs) {
      child.kill('SIGKILL');
      throw new Error(`service did not log its port:\n${output}`);
    }
    port = Number(/Listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1] ?? 0);
    if (port === 0) await sleep(200);
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let waited = 0; ; waited += 200) {
    if (hasExited) throw new Error(`service exited during start-up:\n${output}`);
    if (waited > maxStartMs) {
      child.kill('SIGKILL');
      throw new Error(`service did not become healthy:\n${output}`);
    }
    try {
      const res = await fetch(`${baseUrl}/health`);
      if (res.status === 200) break;
    } catch {
      // Not listening yet.
    }
    await sleep(200);
  }
  return { child, port, baseUrl, output: () => output, waitForOutput, exited };
}

/** Sends SIGTERM and waits for the exit. */
export async function stopService(service: ServiceProcess): Promise<{ code: number | null }> {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGTERM');
  return service.exited;
}
