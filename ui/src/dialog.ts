// Modal dialogs over the window: while one is open, the window behind takes no focus or clicks.

export function setInert(on: boolean): void {
  for (const sel of [".body", "header.top"]) {
    const el = document.querySelector<HTMLElement>(sel);
    if (el) el.inert = on;
  }
}

/// Shows `layer` (a `.backdrop` element) above the window; returns what closes it.
export function openModal(layer: HTMLElement): () => void {
  document.body.append(layer);
  setInert(true);
  return () => {
    layer.remove();
    setInert(false);
  };
}
