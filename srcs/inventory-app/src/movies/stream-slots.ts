/** Frees a stream slot; calling it again does nothing. */
export type ReleaseSlot = () => void;

export interface StreamSlots {
  /** A free slot's release, or undefined when every slot is taken. */
  take(): ReleaseSlot | undefined;
}

/**
 * At most `max` unpaged lists stream at once: each holds a pooled connection for as long as its
 * client reads, so more would starve the requests that need one briefly.
 */
export function createStreamSlots(max: number): StreamSlots {
  let active = 0;
  return {
    take() {
      if (active >= max) return undefined;
      active++;
      let released = false;
      return () => {
        if (!released) active--;
        released = true;
      };
    },
  };
}
