/**
 * An admission's release (accept/admission.ts, state/admission.ts): a session may report its
 * end more than once (close after error, drain after close), and its place is freed once.
 */
export function releaseOnce(release: () => void): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release();
  };
}
