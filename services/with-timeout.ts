/**
 * Rejects with `message` when `promise` has not settled within `ms`. BullMQ waits for Redis
 * indefinitely, so calls in a request path or a periodic pass are bounded with this. A late
 * rejection of `promise` after the timeout is expected and swallowed.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => undefined);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
