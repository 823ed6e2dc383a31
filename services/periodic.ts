// A pass that runs every `intervalMs` until stopped, one at a time (a slow pass is never
// overlapped by the next), without keeping the process alive. What a pass does and logs is
// the caller's; a pass that throws is handed to `onError` and the next one runs as planned.
export function runPeriodically(pass: () => Promise<unknown>, intervalMs: number, onError: (err: unknown) => void): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    running = pass()
      .catch(onError)
      .finally(() => (busy = false));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
